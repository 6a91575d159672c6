"""The running loop's checkpoints and events, without anyio's per-call lookup of the library.

``anyio.lowlevel.checkpoint()`` and ``anyio.Event()`` ask sniffio which library runs on every
call (on asyncio that is ``asyncio.current_task()`` and a lookup of the backend module: about
a tenth of the Python a received audio frame ran, counted in opcodes).  lkanyio's hot paths
(requests, event streams) call these instead: they find the loop as the bridge does (asyncio's
running loop, one C call; otherwise trio) and call anyio's own backend for it, so anyio's
semantics (its cancel scopes on asyncio) are unchanged.  Anything else (no loop, an anyio
without these backends) falls back to the public anyio functions.
"""

from __future__ import annotations

import sys
from asyncio import _get_running_loop
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["checkpoint", "checkpoint_if_cancelled", "new_event"]

_Ops = tuple[
    "Callable[[], Awaitable[None]]",
    "Callable[[], Awaitable[None]]",
    "Callable[[], anyio.Event]",
]

_ANYIO: _Ops = (
    anyio.lowlevel.checkpoint,
    anyio.lowlevel.checkpoint_if_cancelled,
    anyio.Event,
)
"""The public functions: they find the library themselves (and raise when none runs)."""

_asyncio_ops: _Ops | None = None
_trio_ops: _Ops | None = None


def _load(library: str) -> _Ops:
    """The checkpoints and event factory of ``library`` (asyncio's through anyio's backend)."""
    global _asyncio_ops, _trio_ops
    backend: Any
    ops: _Ops
    try:
        if library == "asyncio":
            from anyio._backends._asyncio import AsyncIOBackend as backend

            ops = _asyncio_ops = (
                backend.checkpoint,  # anyio's cancel scopes: its own checks
                backend.checkpoint_if_cancelled,
                backend.create_event,
            )
        else:
            if "trio" not in sys.modules:
                return _ANYIO  # no loop runs here: anyio raises its error
            import trio.lowlevel
            from anyio._backends._trio import TrioBackend as backend

            ops = _trio_ops = (
                trio.lowlevel.checkpoint,  # what anyio's trio backend awaits
                trio.lowlevel.checkpoint_if_cancelled,
                backend.create_event,
            )
    except (ImportError, AttributeError):  # pragma: no cover - an anyio laid out otherwise
        return _ANYIO
    return ops


def _ops() -> _Ops:
    if _get_running_loop() is not None:
        return _asyncio_ops or _load("asyncio")
    return _trio_ops or _load("trio")


async def checkpoint() -> None:
    """``anyio.lowlevel.checkpoint()``: a cancel point and a schedule point."""
    await _ops()[0]()


async def checkpoint_if_cancelled() -> None:
    """``anyio.lowlevel.checkpoint_if_cancelled()``: raise a pending cancellation, else nothing."""
    await _ops()[1]()


def new_event() -> anyio.Event:
    """``anyio.Event()`` for the running loop."""
    return _ops()[2]()
