"""WebhookReceiver: a body and its token, as livekit-server signs them (no server here; the
real server's webhooks are in tests/integration/test_api_webhooks.py)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from livekit import api as lkapi

import lkanyio
from lkanyio import api

KEY = "APIkey"
SECRET = "s" * 40
BODY = json.dumps(
    {"event": "room_started", "room": {"sid": "RM_x", "name": "r1"}, "id": "EV_1", "createdAt": "5"}
)


def _token(body: str | bytes, *, secret: str = SECRET, key: str = KEY) -> str:
    raw = body.encode() if isinstance(body, str) else body
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).to_jwt()


def _receiver() -> api.WebhookReceiver:
    return api.WebhookReceiver(api.TokenVerifier(KEY, SECRET))


def test_a_signed_body_gives_its_event_as_livekit_api_reads_it() -> None:
    token = _token(BODY)
    event = _receiver().receive(BODY, token)
    assert isinstance(event, api.WebhookEvent)
    assert (event.event, event.room.name, event.id, event.created_at) == (
        "room_started",
        "r1",
        "EV_1",
        5,
    )
    assert event == lkapi.WebhookReceiver(lkapi.TokenVerifier(KEY, SECRET)).receive(BODY, token)
    assert _receiver().receive(BODY.encode(), f"Bearer {token}") == event


def test_a_changed_body_is_refused() -> None:
    token = _token(BODY)
    changed = BODY.replace("r1", "r2")
    with pytest.raises(lkanyio.WebhookError, match="the body does not match the sha256"):
        _receiver().receive(changed, token)


def test_a_webhook_signed_with_another_secret_or_key_is_refused() -> None:
    with pytest.raises(lkanyio.WebhookError, match="signature does not match") as info:
        _receiver().receive(BODY, _token(BODY, secret="t" * 40))
    assert isinstance(info.value.__cause__, lkanyio.InvalidTokenError)
    with pytest.raises(lkanyio.WebhookError, match="issued by key 'Other'"):
        _receiver().receive(BODY, _token(BODY, key="Other"))


def test_a_token_without_a_body_hash_or_a_body_that_is_no_event_is_refused() -> None:
    bare = api.AccessToken(KEY, SECRET).to_jwt()
    with pytest.raises(lkanyio.WebhookError, match="no sha256"):
        _receiver().receive(BODY, bare)
    with pytest.raises(lkanyio.WebhookError, match="not a webhook event"):
        _receiver().receive("not json", _token("not json"))
    not_b64 = api.AccessToken(KEY, SECRET).with_sha256("%%%").to_jwt()
    with pytest.raises(lkanyio.WebhookError, match="not base64"):
        _receiver().receive(BODY, not_b64)
