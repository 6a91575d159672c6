"""One driver per event loop library, behind one small interface (:class:`Driver`).

A driver wakes up in its event loop whenever the shim's wakeup fd is readable and calls the
bridge's ``pump`` there; it also carries that loop's primitives for parking a request's task.
The bridge never asks which library runs: :func:`running_loop` asks the loops themselves, and
:func:`install_driver` picks the backend module once per loop (anyio's ``_backends`` is the model).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Driver", "install_driver", "running_loop"]


def ignore(_: Any) -> None:
    """A ``reschedule`` for a driver that parks no task (and a ``wake`` nobody parked on)."""


def never() -> bool:
    """An ``idle`` for a loop whose run queue cannot be seen: requests always yield there."""
    return False


async def _not_a_trio_driver(_: Any) -> None:  # pragma: no cover - replaced on trio drivers
    raise AssertionError("not a trio driver")


class Driver:
    """Wakes up in one event loop whenever the shim has events.

    It also carries that loop's primitives for parking a request's task: ``create_future``
    on asyncio; ``current_task``/``wait_task_rescheduled``/``reschedule`` on trio.
    ``idle()`` tells whether no other task of that loop is ready to run: only then may a lone
    request spin on the shim's queue instead of yielding (see ``Bridge.request_async``).
    They are attributes, not methods: the request path reads them once per request.
    """

    __slots__ = (
        "alive",
        "create_future",
        "current_task",
        "idle",
        "is_current",
        "loop",
        "reschedule",
        "thread",
        "wait_task_rescheduled",
    )

    def __init__(self, loop: object, idle: Callable[[], bool] = never) -> None:
        self.loop = loop
        self.idle = idle
        self.create_future: Callable[[], Any] | None = None
        self.current_task: Callable[[], Any] = never
        self.wait_task_rescheduled: Callable[[Any], Awaitable[Any]] = _not_a_trio_driver
        self.reschedule: Callable[[Any], object] = ignore
        self.is_current: Callable[[], bool] = never  # is its loop the one running here?
        self.thread = threading.get_ident()
        self.alive = True

    def running(self) -> bool:
        """Whether this driver's loop is still running (and so still serving the bridge)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop waking up for events (the bridge moves to another loop, or is disposed)."""
        self.alive = False


def running_loop() -> tuple[str, Any]:
    """Name and identify the event loop running in this thread, without sniffio.

    Returns ``("asyncio", loop)`` or ``("trio", trio_token)``.  Unlike sniffio this also works
    in an asyncio callback (no current task), under ``asyncio.run``, uvloop and any loop a
    framework created, because it asks the loops: asyncio's running loop is per thread, and
    trio's token exists only inside ``trio.run``.
    """
    import asyncio

    try:
        return "asyncio", asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return "trio", trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
    raise RuntimeError(
        "lkanyio needs a running asyncio or trio event loop in this thread; from "
        "synchronous code, run it through anyio.from_thread.start_blocking_portal()"
    )


def install_driver(
    library: str, loop: Any, wakeup_fd: int, pump: Callable[[], None]
) -> Driver:
    """Start the driver of ``library`` (as :func:`running_loop` named it) in ``loop``."""
    if library == "asyncio":
        from ._asyncio import AsyncioDriver

        return AsyncioDriver(loop, wakeup_fd, pump)
    from ._trio import TrioDriver

    return TrioDriver(loop, wakeup_fd, pump)
