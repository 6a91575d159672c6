"""lkanyio.api is a leaf: complete, typed, tidy, and it never pulls in the room machinery.

A process that only mints tokens or manages rooms must not load the native core, the room shell,
aiohttp or livekit-api.  Two checks, as for the sans-IO core (test_core_layout.py): what the
package's files say they import, and what importing it does to ``sys.modules``.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lkanyio
from lkanyio import api

SRC = Path(lkanyio.__file__).parent
API = SRC / "api"
LEAF_IMPORTS = {"_errors"}
"""What lkanyio.api may import from the rest of lkanyio: the error family, nothing else."""
FORBIDDEN = (
    "aiohttp",
    "livekit.api",
    "livekit.rtc",
    "cffi",
    "_cffi_backend",
    "lkanyio._native",
    "lkanyio._media",
    "lkanyio._room",
    "lkanyio._port",
)

OURS = sorted(api.__all__)
CLASSES = [name for name in OURS if inspect.isclass(getattr(api, name))]


def test_every_file_imports_only_the_error_family_of_lkanyio() -> None:
    files = sorted(API.glob("*.py"))
    assert len(files) > 5, files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                where = f"{path.name}:{node.lineno} imports {'.' * node.level}{node.module}"
                assert node.level == 2, where
                assert node.module in LEAF_IMPORTS, where
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for name in names:
                    assert not name.startswith(
                        ("lkanyio.", "aiohttp", "livekit.api", "livekit.rtc")
                    ), f"{path.name}:{node.lineno} imports {name}"


def test_importing_it_loads_no_room_machinery_native_core_or_livekit_api() -> None:
    # The child registers an empty ``lkanyio`` package so that lkanyio/__init__.py (the whole
    # SDK) does not run: what is loaded is what lkanyio.api itself pulls in.
    code = f"""
import json, sys, types
pkg = types.ModuleType("lkanyio")
pkg.__path__ = [{str(SRC)!r}]
sys.modules["lkanyio"] = pkg
import lkanyio.api
lkanyio.api.AccessToken("k", "s" * 32).with_identity("a").to_jwt()
lkanyio.api.LiveKitAPI("ws://127.0.0.1:1", "k", "s" * 32)
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "lkanyio.api._client" in loaded
    bad = [m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert bad == []
    ours = {m for m in loaded if m.startswith("lkanyio.") and not m.startswith("lkanyio.api")}
    assert ours == {"lkanyio._errors", "lkanyio._checks"}  # _errors' own pure helper


def test_all_lists_every_name_of_lkanyio_s_own() -> None:
    import importlib

    protocol = {
        name
        for module in (
            "agent",
            "agent_dispatch",
            "connector_twilio",
            "connector_whatsapp",
            "egress",
            "ingress",
            "models",
            "room",
            "sip",
            "webhook",
        )
        for name in vars(importlib.import_module(f"livekit.protocol.{module}"))
        if not name.startswith("_")
    }
    public = {
        n for n in dir(api) if not n.startswith("_") and not inspect.ismodule(getattr(api, n))
    }
    assert public - protocol == set(api.__all__)


def test_the_names_livekit_api_users_reach_for_are_here() -> None:
    for name in (
        "AccessToken",
        "VideoGrants",
        "SIPGrants",
        "TokenVerifier",
        "WebhookReceiver",
        "LiveKitAPI",
        "Claims",
        "ServerError",
        "TwirpError",
        "TwirpErrorCode",
        "ServerErrorCode",
        "SipCallError",
        "RoomConfiguration",
        "RoomAgentDispatch",
        "CreateRoomRequest",
        "ListParticipantsRequest",
        "WebhookEvent",
        "CreateAgentDispatchRequest",
        "RoomCompositeEgressRequest",
        "CreateIngressRequest",
        "CreateSIPParticipantRequest",
        "DialWhatsAppCallRequest",
        "ConnectTwilioCallRequest",
    ):
        assert hasattr(api, name), name
    assert api.ServerError is lkanyio.TwirpError
    assert api.TwirpErrorCode is api.ServerErrorCode


def test_every_name_livekit_api_exports_is_here() -> None:
    from livekit import api as theirs

    public = {
        n for n in dir(theirs) if not n.startswith("_") and not inspect.ismodule(getattr(theirs, n))
    }
    missing = sorted(public - set(dir(api)) - {"__version__"})
    assert missing == []


@pytest.mark.parametrize("name", OURS)
def test_names_say_where_they_live(name: str) -> None:
    value = getattr(api, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        expected = "lkanyio" if issubclass(value, BaseException) else "lkanyio.api"
        assert value.__module__ == expected, f"{name} shows as {value.__module__}.{name}"


@pytest.mark.parametrize(
    "name", [n for n in CLASSES if not issubclass(getattr(api, n), BaseException)]
)
def test_classes_are_final(name: str) -> None:
    from test_exports import _is_final

    assert _is_final(getattr(api, name)), name


def test_errors_are_lkanyio_errors_also_at_the_top() -> None:
    for name in CLASSES:
        value = getattr(api, name)
        if issubclass(value, BaseException):
            assert issubclass(value, lkanyio.LiveKitError), name
            assert getattr(lkanyio, value.__name__) is value, name


def test_the_whole_package_imported_for_the_api_leaves_the_native_library_unloaded() -> None:
    # ``from lkanyio import api`` runs lkanyio/__init__.py too: its Python modules load, but the
    # native core (liblivekit_ffi) is loaded only when a room or media object needs it.
    code = """
from lkanyio import api
api.AccessToken("k", "s" * 32).with_identity("a").to_jwt()
api.LiveKitAPI("ws://127.0.0.1:1", "k", "s" * 32)
print("livekit_ffi" in open("/proc/self/maps").read())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
