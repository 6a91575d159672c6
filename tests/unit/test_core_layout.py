"""The sans-IO core (``lkanyio._core``) imports neither anyio/trio nor the native module.

The worker protocol (``_core/_worker.py``) may import livekit-protocol's messages, and nothing in
the core imports the worker shell (``lkanyio.worker``) or the room shell.

Two checks: an AST scan of its files (what they *say* they import), and a child process that
imports the package alone (what importing it *does* to ``sys.modules``).  Plus the event
classification the bridge relies on, over real protocol messages.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lkanyio
from lkanyio._core import KEYED_EVENTS, Action, classify
from lkanyio._proto import ffi_pb2

SRC = Path(lkanyio.__file__).parent
CORE = SRC / "_core"
FORBIDDEN = ("anyio", "trio", "sniffio", "cffi", "_cffi_backend", "lkanyio._native",
             "lkanyio._bridge")
PURE_DATA = ("_events", "_types")
"""Modules of lkanyio the core may import at run time: data only (the public event classes and
enumerations; ``_types`` loads the protocol modules, which are protobuf, not the native core)."""
PROTOCOL_DATA = {"_worker.py": ("livekit.protocol", "google.protobuf")}
"""Third-party packages a core file may import: the agent worker protocol's messages (protobuf
classes from livekit-protocol, data like ``_types``)."""
FEATURES = ("_participant", "_publication", "_rpc", "_e2ee", "_data_streams", "_data_tracks",
            "_track_permissions")
"""The room's features: they reach the room through its port (``_port.RoomPort``) only."""


def _type_checking_blocks(tree: ast.AST) -> set[ast.AST]:
    """Every node inside an ``if TYPE_CHECKING:`` block."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.body:
                inside.update(ast.walk(child))
    return inside


def _imports(path: Path, *, runtime_only: bool = False) -> list[tuple[int, str]]:
    """Every import in ``path`` as (relative level, dotted name); ``runtime_only``: not
    those under ``if TYPE_CHECKING:`` (type annotations only)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_blocks(tree) if runtime_only else set()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                module = node.module or ""
                found.append((node.level, module or f".{alias.name}"))
    return found


def test_core_files_import_only_the_standard_library_each_other_and_data() -> None:
    files = sorted(CORE.glob("*.py"))
    assert files, CORE
    for path in files:
        for level, name in _imports(path, runtime_only=True):
            where = f"{path.name}: {'.' * level}{name}"
            if level == 2:
                assert name.lstrip(".").split(".")[-1] in PURE_DATA, f"{where} is not data"
                continue
            assert level <= 1, f"{where} reaches outside lkanyio._core"
            if level == 0:
                if name.startswith(PROTOCOL_DATA.get(path.name, ())):
                    continue
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names, f"{where} is not the standard library"


def test_the_import_check_sees_what_it_checks(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nfrom .. import _events\nimport anyio\n"
        "if TYPE_CHECKING:\n    from .._room import Room\n"
    )
    assert _imports(sample, runtime_only=True) == [(0, "typing"), (2, "._events"), (0, "anyio")]
    assert (2, "_room") in _imports(sample)


def test_importing_the_core_loads_no_async_library_and_no_native_module() -> None:
    # The child registers an empty ``lkanyio`` package so that lkanyio/__init__.py (the whole
    # SDK) does not run: what is loaded afterwards is what lkanyio._core itself pulls in.
    code = f"""
import json, sys, types
pkg = types.ModuleType("lkanyio")
pkg.__path__ = [{str(SRC)!r}]
sys.modules["lkanyio"] = pkg
import lkanyio._core
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "lkanyio._core._session" in loaded
    bad = [m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert bad == []
    ours = {m for m in loaded if m.startswith("lkanyio.")}
    allowed = {f"lkanyio.{name}" for name in (*PURE_DATA, "_proto")}
    assert {m for m in ours if not m.startswith("lkanyio._core")} <= allowed, ours


def test_importing_the_worker_protocol_loads_no_async_library_and_nothing_else_of_ours() -> None:
    code = f"""
import json, sys, types
pkg = types.ModuleType("lkanyio")
pkg.__path__ = [{str(SRC)!r}]
sys.modules["lkanyio"] = pkg
import lkanyio._core._worker
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "livekit.protocol.agent" in loaded
    bad = [m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert bad == []
    ours = {m for m in loaded if m.startswith("lkanyio.")}
    allowed = {f"lkanyio.{name}" for name in (*PURE_DATA, "_proto")}
    assert {m for m in ours if not m.startswith("lkanyio._core")} <= allowed, ours


@pytest.mark.parametrize("feature", FEATURES)
def test_no_feature_imports_the_room_at_run_time(feature: str) -> None:
    path = SRC / f"{feature}.py"
    runtime = [name for level, name in _imports(path, runtime_only=True) if level == 1]
    assert not [name for name in runtime if name.split(".")[0] == "_room"], runtime


@pytest.mark.parametrize("feature", FEATURES)
def test_no_feature_touches_the_rooms_privates(feature: str) -> None:
    # What features reached for before the port: the room's task group, flags, handler slot,
    # waiters and maps.  Through the port they need none of them.
    room_privates = {"_room", "_tg", "_closing", "_closed", "_rpc_handler", "_wait_state",
                     "_unpublished", "_require_connected_handle",
                     "_check_connected", "_remote", "_local", "_session"}
    tree = ast.parse((SRC / f"{feature}.py").read_text())
    touched = sorted({
        node.attr for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in room_privates
    })
    assert touched == [], f"{feature} reaches into the room: {touched}"


def test_only_the_session_writes_its_records() -> None:
    # A view (participant, publication) reads its record; an assignment to a record's field
    # anywhere but the session would be a second owner of the state.
    writers = []
    for path in sorted(SRC.rglob("*.py")):
        if path == CORE / "_session.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = (
                node.targets if isinstance(node, ast.Assign)
                else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                else []
            )
            for target in targets:
                while isinstance(target, (ast.Attribute, ast.Subscript)):
                    target = target.value
                    if isinstance(target, ast.Attribute) and target.attr == "_record":
                        writers.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert writers == []


def _event(**member: object) -> ffi_pb2.FfiEvent:
    event = ffi_pb2.FfiEvent()
    for name, fields in member.items():
        target = getattr(event, name)
        target.SetInParent()
        for field, value in dict(fields).items():  # type: ignore[call-overload]
            setattr(target, field, value)
    return event


@pytest.mark.parametrize(("which", "key_field"), sorted(KEYED_EVENTS.items()))
def test_keyed_events_route_by_their_handle(which: str, key_field: str) -> None:
    event = _event(**{which: {key_field: 4711}})
    action, message, key = classify(event)
    assert (action, key) == (Action.ROUTE, 4711)
    assert message == getattr(event, which)


def test_every_keyed_event_exists_in_the_protocol() -> None:
    members = {f.name for f in ffi_pb2.FfiEvent.DESCRIPTOR.oneofs_by_name["message"].fields}
    assert set(KEYED_EVENTS) <= members
    for which, key_field in KEYED_EVENTS.items():
        assert key_field in getattr(ffi_pb2.FfiEvent(), which).DESCRIPTOR.fields_by_name


def test_callbacks_resolve_by_async_id() -> None:
    members = {f.name for f in ffi_pb2.FfiEvent.DESCRIPTOR.oneofs_by_name["message"].fields}
    callbacks = members - set(KEYED_EVENTS) - {"logs", "panic", "track_event"}
    assert {"connect", "publish_data"} <= callbacks
    for which in sorted(callbacks):
        action, _, key = classify(_event(**{which: {"async_id": (1 << 63) | 5}}))
        assert (action, key) == (Action.RESOLVE, (1 << 63) | 5), which


def test_logs_panic_track_event_and_empty() -> None:
    assert classify(_event(logs={}))[0] is Action.LOGS
    event = _event(panic={"message": "boom"})
    assert classify(event) == (Action.PANIC, event.panic, 0)
    assert classify(_event(track_event={}))[0] is Action.IGNORE
    assert classify(ffi_pb2.FfiEvent())[0] is Action.IGNORE
