"""The trio driver: a system task blocked in ``wait_readable`` on the wakeup fd.

trio is imported only when a trio loop asks for a driver.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from . import Driver

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TrioDriver", "abort_succeeded"]


def abort_succeeded() -> Any:
    """What a parked task's abort callback returns when the cancellation may proceed."""
    from trio.lowlevel import Abort

    return Abort.SUCCEEDED


def _idle_check() -> Callable[[], bool]:
    """Whether no trio task is ready to run, as cheaply as this trio allows.

    ``current_statistics()`` builds a snapshot of the whole run (1.8 µs, on every request of the
    latency path); trio's run queue answers the same question in 0.07 µs.  Like the asyncio
    side's ``_ready``, that is private, so any other trio falls back to the public call.
    """
    import trio

    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT

        runq = GLOBAL_RUN_CONTEXT.runner.runq
        len(runq)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - another trio
        statistics = trio.lowlevel.current_statistics
        return lambda: not statistics().tasks_runnable
    return lambda: not runq


def _is_current_run(token: object) -> bool:
    import trio

    try:
        return trio.lowlevel.current_trio_token() is token
    except RuntimeError:
        return False


class TrioDriver(Driver):
    """Pumps the shim's queue from a system task of the run (``lkanyio-dispatcher``).

    A second system task (``lkanyio-soon``) runs what ``call_soon`` was given, in the batch
    after the current one: waking it is one ``reschedule``, where ``run_sync_soon`` writes to
    trio's wakeup socket and wakes its entry task through the selector.
    """

    __slots__ = ("_flusher", "_flushing", "_soon")

    def __init__(self, token: Any, wakeup_fd: int, pump: Callable[[], object]) -> None:
        import trio

        super().__init__(token, _idle_check())
        self.checkpoint = trio.lowlevel.checkpoint  # what anyio's trio backend calls
        self.checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
        self._soon: list[Callable[[], object]] = []
        self._flusher: Any = None  # the lkanyio-soon task while it is parked
        self._flushing = False
        self.call_soon = self._call_soon
        self.pump = pump
        self.current_task = trio.lowlevel.current_task
        self.wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
        self.reschedule = trio.lowlevel.reschedule
        self.is_current = functools.partial(_is_current_run, token)
        trio.lowlevel.spawn_system_task(
            self._serve, wakeup_fd, pump, name="lkanyio-dispatcher"
        )
        trio.lowlevel.spawn_system_task(self._serve_soon, name="lkanyio-soon")

    def running(self) -> bool:
        """Whether the system task still serves (it ends with its run)."""
        return self.alive

    def _call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` once the tasks ready now have run (at once if nothing can run it)."""
        self._soon.append(fn)
        task = self._flusher
        if task is not None:
            import trio

            self._flusher = None
            trio.lowlevel.reschedule(task)
        elif not self._flushing:  # not started yet, or the run is ending: do not strand it
            self._run_soon()

    def _run_soon(self) -> None:
        self._flushing = True
        try:
            while self._soon:
                soon, self._soon = self._soon, []
                for fn in soon:
                    fn()
        finally:
            self._flushing = False

    def _abort_soon(self, _: Any) -> Any:
        self._flusher = None
        return abort_succeeded()

    async def _serve_soon(self) -> None:
        import trio

        self._run_soon()
        while self.alive:
            self._flusher = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_soon)
            self._run_soon()

    async def _serve(self, fd: int, pump: Callable[[], object]) -> None:
        import trio

        try:
            while self.alive:
                await trio.lowlevel.wait_readable(fd)
                pump()
        finally:
            self.alive = False
