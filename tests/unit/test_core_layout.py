"""The sans-IO core (``lkanyio._core``) imports neither anyio/trio nor the native module.

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

CORE = Path(lkanyio.__file__).parent / "_core"
FORBIDDEN = ("anyio", "trio", "sniffio", "cffi", "_cffi_backend", "lkanyio._native",
             "lkanyio._bridge", "google.protobuf", "_lkffi_proto")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every import in ``path`` as (relative level, dotted name)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_core_files_import_only_the_standard_library_and_each_other() -> None:
    files = sorted(CORE.glob("*.py"))
    assert files, CORE
    for path in files:
        for level, name in _imports(path):
            where = f"{path.name}: {'.' * level}{name}"
            assert level <= 1, f"{where} reaches outside lkanyio._core"
            if level == 0:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names, f"{where} is not the standard library"


def test_importing_the_core_loads_no_async_library_and_no_native_module() -> None:
    # The child registers an empty ``lkanyio`` package so that lkanyio/__init__.py (the whole
    # SDK) does not run: what is loaded afterwards is what lkanyio._core itself pulls in.
    code = f"""
import json, sys, types
pkg = types.ModuleType("lkanyio")
pkg.__path__ = [{str(CORE.parent)!r}]
sys.modules["lkanyio"] = pkg
import lkanyio._core
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "lkanyio._core" in loaded
    bad = [m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert bad == []
    ours = {m for m in loaded if m.startswith("lkanyio.")}
    assert all(m.startswith("lkanyio._core") for m in ours), ours


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
