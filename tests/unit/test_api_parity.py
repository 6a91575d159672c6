"""lkanyio.api has every service method, builder and field livekit-api 1.2 has, with the same
arguments (``timeout=`` excepted: callers bound calls with ``anyio.fail_after``)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from livekit import api as theirs
from livekit.api import (
    agent_dispatch_service,
    connector_service,
    egress_service,
    ingress_service,
    room_service,
    sip_service,
)

from lkanyio import api

SERVICES = [
    (room_service.RoomService, api.RoomService),
    (agent_dispatch_service.AgentDispatchService, api.AgentDispatchService),
    (egress_service.EgressService, api.EgressService),
    (ingress_service.IngressService, api.IngressService),
    (sip_service.SipService, api.SipService),
    (connector_service.ConnectorService, api.ConnectorService),
]
LEFT_OUT = {"timeout"}
"""livekit-api's per-call timeouts: lkanyio's calls are bounded by the caller's cancel scope."""


def _methods(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(function).parameters.values()
        if p.name not in LEFT_OUT
    ]


@pytest.mark.parametrize(("their_cls", "our_cls"), SERVICES, ids=lambda c: c.__name__)
def test_every_service_method_is_here_with_the_same_arguments(
    their_cls: type, our_cls: type
) -> None:
    their_methods, our_methods = _methods(their_cls), _methods(our_cls)
    assert len(their_methods) >= 4
    missing = sorted(set(their_methods) - set(our_methods))
    assert missing == [], f"{our_cls.__name__} lacks {missing}"
    assert sorted(set(our_methods) - set(their_methods)) == []
    for name, function in their_methods.items():
        ours = our_methods[name]
        assert inspect.iscoroutinefunction(ours), name
        new = getattr(ours, "__deprecated_for__", None)
        if new is not None:  # a deprecated alias passes its arguments on to the new method
            assert name == new.replace("_", "_sip_", 1), name
            new_names = {p[0] for p in _parameters(our_methods[new])}
            assert {p[0] for p in _parameters(function)} <= new_names, name
            continue
        assert _parameters(ours) == _parameters(function), name


def test_the_client_has_every_service_and_constructor() -> None:
    ours = {n for n in dir(api.LiveKitAPI) if not n.startswith("_")}
    theirs_names = {n for n in dir(theirs.LiveKitAPI) if not n.startswith("_")}
    assert theirs_names - ours == set()
    assert [
        p
        for p in _parameters(api.LiveKitAPI.__init__)
        if p[1] is not inspect.Parameter.KEYWORD_ONLY
    ] == [
        p
        for p in _parameters(theirs.LiveKitAPI.__init__)
        if p[1] is not inspect.Parameter.KEYWORD_ONLY
    ]


@pytest.mark.parametrize("name", ["AccessToken", "TokenVerifier", "WebhookReceiver"])
def test_token_and_webhook_classes_have_the_same_methods(name: str) -> None:
    their_methods, our_methods = _methods(getattr(theirs, name)), _methods(getattr(api, name))
    assert set(their_methods) == set(our_methods)
    for method, function in their_methods.items():
        assert [p[0] for p in _parameters(our_methods[method])] == [
            p[0] for p in _parameters(function)
        ], method


@pytest.mark.parametrize(
    "name",
    [
        "VideoGrants",
        "SIPGrants",
        "InferenceGrants",
        "ObservabilityGrants",
        "AgentGrants",
        "AgentEndpointGrants",
        "AgentThreadGrants",
    ],
)
def test_grants_have_the_same_fields_and_defaults(name: str) -> None:
    def fields(cls: Any) -> list[tuple[str, Any]]:
        return [(f.name, f.default) for f in dataclasses.fields(cls)]

    assert fields(getattr(api, name)) == fields(getattr(theirs, name))


def test_claims_have_the_same_fields() -> None:
    from livekit.api.access_token import Claims

    assert [f.name for f in dataclasses.fields(api.Claims)] == [
        f.name for f in dataclasses.fields(Claims)
    ]


def test_the_parity_page_lists_every_name_of_livekit_api() -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "parity.md").read_text()
    rows = dict(re.findall(r"^\| `(livekit\.api\.\w+)` \| `(lkanyio\.api\.\w+)` \|", page, re.M))
    own = {
        name
        for name in dir(theirs)
        if getattr(getattr(theirs, name), "__module__", "").startswith("livekit.api")
    }
    services = {cls.__name__ for cls, _ in SERVICES}
    assert set(rows) == {f"livekit.api.{n}" for n in own | services | {"Claims"}}
    for ours in rows.values():
        assert hasattr(api, ours.removeprefix("lkanyio.api.")), ours
