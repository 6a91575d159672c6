"""One resource base: every closable object gets aclose and async with from lkanyio._resource."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import anyio
import pytest

import lkanyio
from lkanyio._resource import Resource

pytestmark = pytest.mark.anyio

CLOSABLE = [
    lkanyio.EventStream,
    lkanyio.AudioSource,
    lkanyio.VideoSource,
    lkanyio.LocalAudioTrack,
    lkanyio.LocalVideoTrack,
    lkanyio.TextStreamReader,
    lkanyio.ByteStreamReader,
    lkanyio.AudioStream,
    lkanyio.VideoStream,
    lkanyio.DataTrackStream,
]


@pytest.mark.parametrize("cls", CLOSABLE, ids=lambda c: c.__name__)
def test_closable_classes_share_the_base(cls: type) -> None:
    assert issubclass(cls, Resource)
    for name in ("aclose", "__aenter__", "__aexit__"):
        owner = next(k for k in cls.__mro__ if name in vars(k))
        assert owner is Resource or not issubclass(owner, Resource), (cls, name, owner)


def test_no_module_repeats_the_trio() -> None:
    # A class that defines aclose as "close, then checkpoint" is what the base is for.
    package = Path(lkanyio.__file__).parent
    repeated = []
    for path in sorted(package.glob("*.py")):
        if path.name == "_resource.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AsyncFunctionDef) and node.name == "aclose":
                body = [s for s in node.body if not isinstance(s, ast.Expr)
                        or not isinstance(s.value, ast.Constant)]
                if len(body) == 2 and "close()" in ast.unparse(body[0]) and "checkpoint" in (
                    ast.unparse(body[1])
                ):
                    repeated.append(f"{path.name}:{node.lineno}")
    assert repeated == []


async def test_async_with_closes_even_when_cancelled() -> None:
    async with lkanyio.AudioSource(48_000, 1) as source:
        assert not source.closed
    assert source.closed
    source = lkanyio.VideoSource(16, 16)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await source.aclose()  # released before the checkpoint that raises
    assert scope.cancelled_caught
    assert source.closed
    assert inspect.iscoroutinefunction(source.__aexit__)
