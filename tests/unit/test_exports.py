"""The public API is complete, typed and tidy (no live server, no event loop)."""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import os
import sys
import types
from pathlib import Path

import pytest

import lkanyio
import lkanyio.api

# Classes users receive and read but are meant to share a base: the rest are @final.
BASES = {"LocalTrack", "Participant", "RemoteTrack", "Track", "TrackPublication"}

PUBLIC = sorted(
    name
    for name in dir(lkanyio)
    if not name.startswith("_") and not inspect.ismodule(getattr(lkanyio, name))
)
SUBMODULES = ["api", "demo", "testing", "worker"]


import lkanyio.worker  # noqa: E402 - after PUBLIC: a submodule, not one of lkanyio's names

WORKER = sorted(lkanyio.worker.__all__)
WORKER_PROTOCOL = {"Job", "JobStatus", "JobType"}
"""livekit-protocol's messages and enumerations, re-exported as they are (as ``lkanyio.api``
does): lkanyio.worker's own names are the rest."""


def _is_class(value: object) -> bool:
    # Python 3.10 counts a parametrized alias such as RpcHandler (Callable[[...], ...]) as a class.
    return inspect.isclass(value) and not isinstance(value, types.GenericAlias)


def test_no_stray_modules_are_public() -> None:
    assert len(PUBLIC) > 50, PUBLIC
    modules = [
        n
        for n in dir(lkanyio)
        if not n.startswith(("_", "@")) and inspect.ismodule(getattr(lkanyio, n))
    ]  # "@py_builtins": pytest rewrites the asserts of a package with a pytest11 plugin
    assert set(modules) <= set(SUBMODULES), modules


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_say_they_are_lkanyio(name: str) -> None:
    value = getattr(lkanyio, name)
    if _is_class(value) or inspect.isfunction(value):
        assert value.__module__ == "lkanyio", f"{name} shows as {value.__module__}.{name}"


@functools.cache
def _final_in_source() -> frozenset[str]:
    """Names of the package's classes decorated ``@final``, read from its source files."""
    names = set()
    for path in Path(lkanyio.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(d, ast.Name) and d.id == "final")
                or (isinstance(d, ast.Attribute) and d.attr == "final")
                for d in node.decorator_list
            ):
                names.add(node.name)
    return frozenset(names)


def _is_final(cls: type) -> bool:
    if sys.version_info >= (3, 11):
        return bool(getattr(cls, "__final__", False))
    # typing.final marks classes only from 3.11 on; before that, read the decorators.  Not with
    # inspect.getsource: it looks for the class in lkanyio/__init__.py, the rewritten __module__.
    return cls.__name__ in _final_in_source()


def test_public_classes_are_final_except_the_shared_bases() -> None:
    open_classes = sorted(
        name
        for name in PUBLIC
        if _is_class(value := getattr(lkanyio, name))
        and not issubclass(value, (enum.Enum, BaseException))
        and not _is_final(value)
    )
    assert open_classes == sorted(BASES)


def test_every_public_name_is_visible_to_mypy_strict(tmp_path: Path) -> None:
    """``mypy --strict`` sees each name as an explicit export (no implicit re-exports)."""
    from mypy import api

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import lkanyio\n"
        + "".join(f"import lkanyio.{name}\n" for name in SUBMODULES)
        + "".join(f"_{i} = lkanyio.{name}\n" for i, name in enumerate(PUBLIC))
        + "".join(f"_w{i} = lkanyio.worker.{name}\n" for i, name in enumerate(WORKER))
        + "".join(f"_api{i} = lkanyio.api.{name}\n" for i, name in enumerate(lkanyio.api.__all__))
    )
    root = Path(__file__).resolve().parents[2]
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--config-file",
            str(root / "pyproject.toml"),
            "--cache-dir",
            os.environ.get("MYPY_CACHE_DIR", str(root / ".mypy_cache")),  # scripts/test's
            str(probe),
        ]
    )
    assert status == 0, stdout + stderr


@pytest.mark.parametrize("name", WORKER)
def test_worker_names_say_they_are_lkanyio_worker_and_are_final(name: str) -> None:
    value = getattr(lkanyio.worker, name)
    if name in WORKER_PROTOCOL:
        from livekit.protocol import agent

        assert value is getattr(agent, name)
        return
    assert _is_class(value), name
    expected = "lkanyio" if issubclass(value, BaseException) else "lkanyio.worker"
    assert value.__module__ == expected, f"{name} shows as {value.__module__}.{name}"
    if not issubclass(value, BaseException):
        assert _is_final(value), name


def test_the_worker_package_lists_every_public_name() -> None:
    public = {n for n in dir(lkanyio.worker) if not n.startswith(("_", "@"))} - {"annotations"}
    assert public == set(WORKER)

