"""The house's plan: which folder may import which, checked by AST; and the sans-IO core.

The layers, lowest first (``docs/contributing.md`` says the same in prose):

* ground — leaf modules every layer may use: ``_errors``, ``_types``, ``_checks``,
  ``_resource``, ``_streams``, ``_stats``, ``_rtc_config``, ``_events`` (the public event
  classes: data at run time), the protocol types (``_native._proto``) and the typed request
  helpers (``_native._requests``);
* ``_core/`` — sans-IO: the correlator, event classification, the room session, and the worker
  protocol (``_core/_worker*.py``); imports only the ground and itself;
* ``_native/`` — cffi, the shim, protobuf plumbing, one driver per backend;
* ``_media/`` — tracks, frames, sources, streams, processing;
* the room — the shell (``_room``, ``_port``) and its features at the package top;
* public — ``lkanyio`` itself; ``api/`` (the server API: ``_errors`` and the core only, never
  the room or ``_native``); ``worker/`` (the public room API, ``api/``, the core, the ground);
  ``testing/`` (the public API and the ground); the CLI and the demo (anything).

An arrow may point down or sideways inside a layer, never up, at run time (``if TYPE_CHECKING:``
imports do not run).  The core is held to it at the type level too: the session is generic over
the objects it holds (the shell names the public views), and of the ground, ``_events`` alone
names them, in the types of its fields (what users see; at run time it is data).  Plus: the
core imports no async library and no native module, and features reach the room only through
its port.
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
from lkanyio._native._proto import ffi_pb2

SRC = Path(lkanyio.__file__).parent
CORE = SRC / "_core"
FORBIDDEN = ("anyio", "trio", "sniffio", "cffi", "_cffi_backend", "lkanyio._native._ffi",
             "lkanyio._native._bridge", "lkanyio._native._backends")
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


@pytest.mark.parametrize(
    ("module", "loads"),
    [("lkanyio._core", "lkanyio._core._session"),
     ("lkanyio._core._worker", "livekit.protocol.agent")],  # not imported by _core/__init__
)
def test_importing_the_core_loads_no_async_library_and_no_native_module(
    module: str, loads: str
) -> None:
    # The child registers an empty ``lkanyio`` package so that lkanyio/__init__.py (the whole
    # SDK) does not run: what is loaded afterwards is what the core itself pulls in.
    code = f"""
import json, sys, types
pkg = types.ModuleType("lkanyio")
pkg.__path__ = [{str(SRC)!r}]
sys.modules["lkanyio"] = pkg
import {module}
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert loads in loaded
    bad = [m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + ".")]
    assert bad == []
    ours = {m for m in loaded if m.startswith("lkanyio.")}
    allowed = {f"lkanyio.{name}" for name in (*PURE_DATA, "_native", "_native._proto")}
    assert {m for m in ours if not m.startswith("lkanyio._core")} <= allowed, ours


# -- the plan: which layer may import which ---------------------------------------------------

GROUND = frozenset({
    "_errors", "_types", "_checks", "_checkpoints", "_resource", "_streams", "_stats",
    "_rtc_config", "_events",
    "_native", "_native._proto", "_native._requests",
})
"""Leaf modules (dotted, relative to ``lkanyio``): they import nothing but each other.  Of
``_native/`` only the protocol types and the typed request helpers are ground: no cffi."""
APPS = frozenset({"_cli", "__main__", "demo"})
"""Applications shipped with the package: they may use anything."""
ALLOWED: dict[str, frozenset[str]] = {
    "ground": frozenset({"ground"}),
    "core": frozenset({"ground", "core"}),
    "native": frozenset({"ground", "core", "native"}),
    "media": frozenset({"ground", "core", "native", "media"}),
    "room": frozenset({"ground", "core", "native", "media", "room"}),
    "public": frozenset({"ground", "core", "native", "media", "room", "public", "api", "worker"}),
    "api": frozenset({"core", "api"}),  # plus ``_errors`` (API_GROUND)
    "worker": frozenset({"ground", "core", "public", "api", "worker"}),
    "testing": frozenset({"ground", "public", "api", "testing"}),
    "app": frozenset(
        {"ground", "core", "native", "media", "room", "public", "api", "worker", "testing", "app"}
    ),
}
"""Which layers a layer may import at run time (the core: at the type level too)."""
API_GROUND = frozenset({"_errors"})
"""The only ground modules ``api/`` may import: the server API shares the error family only."""
def layer(module: str) -> str:
    """The layer of ``module``, dotted relative to ``lkanyio`` (``""`` is the package)."""
    top = module.split(".")[0]
    if module in GROUND:
        return "ground"
    if module == "":
        return "public"
    if top in ("_core", "_native", "_media", "api", "worker", "testing"):
        return {"_core": "core", "_native": "native", "_media": "media"}.get(top, top)
    if module in APPS:
        return "app"
    return "room"  # the shell and its features, at the package top


def _module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _exists(root: Path, module: str) -> bool:
    base = root.joinpath(*module.split(".")) if module else root
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file() or (
        base.is_dir() and module != ""
    ) or module == ""


def import_arrows(root: Path, *, type_level: bool) -> set[tuple[str, str]]:
    """Every (importer, imported) pair between modules of the package at ``root``.

    ``type_level``: include imports under ``if TYPE_CHECKING:``.  Names imported from a
    package resolve to its submodule when there is one (``from . import _events``), otherwise
    to the package (``from . import Driver``).
    """
    arrows: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*.py")):
        module = _module_of(root, path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for level, name in _imports(path, runtime_only=not type_level):
            if level == 0:
                if name != "lkanyio" and not name.startswith("lkanyio."):
                    continue
                targets = [name.partition(".")[2]]
            else:
                base = package.split(".") if package else []
                base = base[: len(base) - (level - 1)] if level > 1 else base
                if name.startswith("."):  # ``from . import x``: x may be a module
                    parent = ".".join(base)
                    child = ".".join([*base, name[1:]])
                    targets = [child if _exists(root, child) else parent]
                else:
                    targets = [".".join([*base, name])]
            for target in targets:
                while target and not _exists(root, target):
                    target = target.rpartition(".")[0]
                if target != module:
                    arrows.add((module, target))
    return arrows


def violations(root: Path) -> list[str]:
    """Every arrow of the package at ``root`` that breaks the plan, as ``a -> b`` lines."""
    bad = []
    runtime = import_arrows(root, type_level=False)
    for importer, imported in sorted(runtime):
        source, target = layer(importer), layer(imported)
        allowed = target in ALLOWED[source] or (source == "api" and imported in API_GROUND)
        if not allowed:
            bad.append(f"{importer or 'lkanyio'} ({source}) -> {imported} ({target})")
    for importer, imported in sorted(import_arrows(root, type_level=True)):
        if layer(importer) != "core":
            continue
        if (importer, imported) in runtime:
            continue  # told above
        if layer(imported) not in ALLOWED["core"]:
            bad.append(f"{importer} (core, type level) -> {imported} ({layer(imported)})")
    return bad


def test_every_module_keeps_to_the_plan() -> None:
    assert violations(SRC) == []


def test_the_core_names_no_higher_layer_even_at_the_type_level() -> None:
    found = {
        (importer, imported)
        for importer, imported in import_arrows(SRC, type_level=True)
        if layer(importer) == "core" and layer(imported) not in ALLOWED["core"]
    }
    assert found == set()
    # What the session imports at the type level sits below it (the test sees those arrows).
    assert ("_core._session", "_native._proto") in import_arrows(SRC, type_level=True)


def test_the_folders_are_the_layers() -> None:
    for folder, expected in [("_core", "core"), ("_native", "native"), ("_media", "media")]:
        modules = {_module_of(SRC, p) for p in (SRC / folder).rglob("*.py")}
        assert modules, folder
        assert {layer(m) for m in modules} - {"ground"} == {expected}, folder


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    return root


def test_the_plan_accepts_the_planned_subpackages(tmp_path: Path) -> None:
    root = _package(tmp_path / "lkanyio", {
        "_errors.py": "",
        "_room.py": "from ._errors import x\nfrom ._core import _session\n",
        "_core/_session.py": "from .. import _events\n",
        "_core/_worker.py": "import json\nfrom .._errors import LiveKitError\n",
        "_events.py": "",
        "api/_twirp.py": "from .._errors import APIError\nfrom .._core import _worker\n",
        "worker/_worker.py": (
            "from .. import Room\nfrom ..api import LiveKitAPI\nfrom .._core._worker import W\n"
            "from .._errors import LiveKitError\nimport lkanyio\n"
        ),
        "testing/_server.py": "from .. import api\nfrom .._rtc_config import x\n",
        "_rtc_config.py": "",
    })
    assert violations(root) == []


@pytest.mark.parametrize(
    ("name", "text", "arrow"),
    [
        ("api/_x.py", "from .._room import Room\n", "api._x (api) -> _room (room)"),
        ("api/_x.py", "from .._native._bridge import b\n", "api._x (api) -> _native._bridge"),
        ("api/_x.py", "from .._types import T\n", "api._x (api) -> _types (ground)"),
        ("worker/_x.py", "from .._room import Room\n", "worker._x (worker) -> _room (room)"),
        ("worker/_x.py", "from .._media import _audio\n", "worker._x (worker) -> _media (media)"),
        ("_core/_worker.py", "from ..worker import W\n", "_core._worker (core) -> worker"),
        (
            "_core/_x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .._room import R\n",
            "_core._x (core, type level) -> _room (room)",
        ),
        (
            "_core/_x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .._participant import RemoteParticipant\n",
            "_core._x (core, type level) -> _participant (room)",
        ),
        (
            "_core/_x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .._media._audio import A\n",
            "_core._x (core, type level) -> _media._audio (media)",
        ),
        ("_native/_x.py", "from .._media import _audio\n", "_native._x (native) -> _media (media)"),
        ("_media/_x.py", "from .._participant import P\n", "_media._x (media) -> _participant"),
        ("_errors.py", "from ._core import c\n", "_errors (ground) -> _core (core)"),
        ("_room.py", "import lkanyio.testing\n", "_room (room) -> testing (testing)"),
    ],
)
def test_the_plan_refuses_an_arrow_upward(tmp_path: Path, name: str, text: str, arrow: str) -> None:
    root = _package(tmp_path / "lkanyio", {
        "_room.py": "", "_participant.py": "", "_types.py": "", "_errors.py": "",
        "_native/_bridge.py": "", "_media/_audio.py": "", "worker/_w.py": "",
        "testing/_s.py": "", "_core/_c.py": "", name: text,
    })
    found = violations(root)
    assert len(found) == 1, found
    assert found[0].startswith(arrow), found


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
