"""lkanyio.api is a leaf: complete, typed, tidy, and it never pulls in the room machinery.

A process that only mints tokens or manages rooms must not load the native core, the room shell,
aiohttp or livekit-api.  Two checks, as for the sans-IO core (test_core_layout.py): what the
package's files say they import, and what importing it does to ``sys.modules``.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
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
    "lkanyio._bridge",
    "lkanyio._room",
    "lkanyio._proto",
)

OURS = sorted(
    name
    for name in dir(api)
    if not name.startswith("_")
    and not inspect.ismodule(value := getattr(api, name))
    and getattr(value, "__module__", "lkanyio").startswith("lkanyio")
)
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
    assert "lkanyio.api._livekit_api" in loaded
    bad = [m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert bad == []
    ours = {m for m in loaded if m.startswith("lkanyio.") and not m.startswith("lkanyio.api")}
    # _errors imports _checks (a leaf of the ground, since the refold): nothing else of ours
    assert ours == {"lkanyio._errors", "lkanyio._checks"}


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
    cls = getattr(api, name)
    if sys.version_info >= (3, 11):
        assert getattr(cls, "__final__", False), name
    else:  # typing.final marks classes only from 3.11 on: read the decorators
        finals = {
            node.name
            for path in API.glob("*.py")
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ClassDef)
            and any(
                (isinstance(d, ast.Name) and d.id == "final")
                or (isinstance(d, ast.Attribute) and d.attr == "final")
                for d in node.decorator_list
            )
        }
        assert name in finals


def test_errors_are_lkanyio_errors_also_at_the_top() -> None:
    for name in CLASSES:
        value = getattr(api, name)
        if issubclass(value, BaseException):
            assert issubclass(value, lkanyio.LiveKitError), name
            assert getattr(lkanyio, value.__name__) is value, name


def test_every_name_is_visible_to_mypy_strict(tmp_path: Path) -> None:
    from mypy import api as mypy

    probe = tmp_path / "probe.py"
    probe.write_text(
        "from lkanyio import api\n"
        + "".join(f"_{i} = api.{name}\n" for i, name in enumerate(OURS))
        + "_x = api.CreateRoomRequest(name='r')\n"
    )
    root = Path(__file__).resolve().parents[2]
    stdout, stderr, status = mypy.run(
        [
            "--strict",
            "--no-error-summary",
            "--config-file",
            str(root / "pyproject.toml"),
            "--cache-dir",
            os.environ.get("MYPY_CACHE_DIR", str(root / ".mypy_cache")),
            str(probe),
        ]
    )
    assert status == 0, stdout + stderr
