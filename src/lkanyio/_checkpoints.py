"""The running loop's checkpoints and a lean wait, without anyio's per-call lookup of the library.

``anyio.lowlevel.checkpoint()`` and ``anyio.Event()`` ask sniffio which library runs on every
call (on asyncio that is ``asyncio.current_task()`` and a lookup of the backend module: about
a tenth of the Python a received audio frame ran, counted in opcodes).  lkanyio's hot paths
(requests, event streams) call these instead: they find the loop as the bridge does (asyncio's
running loop, one C call; otherwise trio) and call anyio's own backend for it, so anyio's
semantics (its cancel scopes on asyncio) are unchanged.  Anything else (no loop, an anyio
without these backends) falls back to the public anyio functions.

:func:`park` is what an event stream's consumer waits in: the loop's own primitive (an asyncio
future, a parked trio task), where an ``anyio.Event`` per wait built two wrappers and an
asyncio ``Event`` (or a trio ``ParkingLot``) on every item a consumer waited for.
"""

from __future__ import annotations

import functools
import sys
from asyncio import _get_running_loop
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

__all__ = ["Waiters", "checkpoint", "checkpoint_if_cancelled", "park", "unpark_all"]

Waiters = list["Callable[[], object]"]
"""The tasks parked on one thing, as the calls that wake them (see :func:`park`)."""

_Ops = tuple[
    "Callable[[], Awaitable[None]]",
    "Callable[[], Awaitable[None]]",
    "Callable[[Waiters], Awaitable[None]]",
]


async def _park_anyio(waiters: Waiters) -> None:
    event = anyio.Event()
    waiters.append(event.set)
    try:
        await event.wait()
    finally:
        _forget(waiters, event.set)


_ANYIO: _Ops = (anyio.lowlevel.checkpoint, anyio.lowlevel.checkpoint_if_cancelled, _park_anyio)
"""The public functions: they find the library themselves (and raise when none runs)."""

_asyncio_ops: _Ops | None = None
_trio_ops: _Ops | None = None


def _forget(waiters: Waiters, wake: Callable[[], object]) -> None:
    if wake in waiters:  # still parked (cancelled, or failed): nobody must wake it now
        waiters.remove(wake)  # (a woken one was taken out by unpark_all)


async def _park_asyncio(waiters: Waiters) -> None:
    # anyio cancels an asyncio task by ``task.cancel()``, which cancels the future it awaits:
    # the same wait as a request's (``Bridge.request_async``).
    future = cast("asyncio.AbstractEventLoop", _get_running_loop()).create_future()

    def wake() -> None:
        if not future.done():  # a cancelled one is done
            future.set_result(None)

    waiters.append(wake)
    try:
        await future
    finally:
        _forget(waiters, wake)


def _load(library: str) -> _Ops:
    """The checkpoints and park of ``library`` (asyncio's through anyio's backend)."""
    global _asyncio_ops, _trio_ops
    backend: Any
    ops: _Ops
    try:
        if library == "asyncio":
            from anyio._backends._asyncio import AsyncIOBackend as backend

            ops = _asyncio_ops = (
                backend.checkpoint,  # anyio's cancel scopes: its own checks
                backend.checkpoint_if_cancelled,
                _park_asyncio,
            )
        else:
            if "trio" not in sys.modules:
                return _ANYIO  # no loop runs here: anyio raises its error
            import trio.lowlevel

            ops = _trio_ops = (
                trio.lowlevel.checkpoint,  # what anyio's trio backend awaits
                trio.lowlevel.checkpoint_if_cancelled,
                _trio_park(trio.lowlevel),
            )
    except (ImportError, AttributeError):  # pragma: no cover - an anyio laid out otherwise
        return _ANYIO
    return ops


def _trio_park(lowlevel: Any) -> Callable[[Waiters], Awaitable[None]]:
    current_task = lowlevel.current_task
    reschedule = lowlevel.reschedule
    wait_task_rescheduled = lowlevel.wait_task_rescheduled
    succeeded = lowlevel.Abort.SUCCEEDED

    async def park(waiters: Waiters) -> None:
        wake = functools.partial(reschedule, current_task())
        waiters.append(wake)

        def abort(_: object) -> Any:
            _forget(waiters, wake)  # never rescheduled after this: trio cancels it
            return succeeded

        await wait_task_rescheduled(abort)

    return park


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


async def park(waiters: Waiters) -> None:
    """Wait, cancellably, until :func:`unpark_all` wakes ``waiters``.

    A schedule point but no cancel point of its own before it waits: check for a pending
    cancellation first (:func:`checkpoint_if_cancelled`).  A waiter that is cancelled leaves
    ``waiters``; one that is woken was taken out by :func:`unpark_all`.
    """
    await _ops()[2](waiters)


def unpark_all(waiters: Waiters) -> None:
    """Wake every task parked on ``waiters`` (each once; they run at their next turn)."""
    woken = waiters.copy()
    waiters.clear()
    for wake in woken:
        wake()
