"""A worker's pool of warm job processes (``Worker(processes=N)``).

Each child (:mod:`._child`) is a Python process with its own event loop and native core, started
before any job comes and kept for the next one after a job ends.  A job runs in one idle child at
a time.  A child that dies (a crash, SIGKILL) fails the job it ran and is replaced; the worker
never dies with it.  Replacements that die before they are ready are started again with a
doubling delay; after three in a row the slot counts as failing: it takes no job and the jobs
waiting for a child fail, until one of its children is ready again.  One supervisor task per
slot starts the slot's child, reads its answers and starts the next one when it dies.  The
supervisors are shielded (a cancelled ``serve`` still needs them to hear its jobs end);
:meth:`ProcessPool.aclose` stops them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from livekit.protocol import agent as pb

from .. import BridgeStatistics
from .._errors import WorkerError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._job import JobContext

__all__ = ["ChildJobError", "JobProcessStatistics", "ProcessPool"]

logger = logging.getLogger("lkanyio.worker")

_CANCEL_BOUND: Final = 10.0
"""Seconds a child gets to end a cancelled job before it is killed (and replaced)."""
_CLOSE_BOUND: Final = 5.0
"""Seconds children get to leave when the pool closes before they are killed."""
_MAX_LINE: Final = 1 << 20
_START_TRIES: Final = 3
"""Starts in a row that die before the child is ready after which a slot counts as failing: the
jobs waiting for a child fail (the slot keeps trying, backing off)."""
_RESPAWN_FIRST: Final = 0.5
_RESPAWN_MAX: Final = 30.0
"""Seconds between starts of a slot whose children die before they are ready: doubling."""


class ChildJobError(Exception):
    """A job failed in its process: the message is the job's error text (or the process's end)."""


@final
@dataclass(frozen=True)
class JobProcessStatistics:
    """One job process of a worker with ``processes=N`` (:attr:`WorkerStatistics.processes`).

    Attributes:
        pid: the process's id.
        alive: whether it runs (a process that died is replaced; once :meth:`Worker.serve`
            has ended, none runs).
        job_id: the job it runs now (``""`` when it has none).
        jobs_ended: jobs that ended in it (not counting one it died with).
        after_last_job: :func:`lkanyio.statistics` in that process once its last job ended
            (garbage collected first): a job that leaves nothing behind leaves
            ``pending_requests``, ``bound_handles``, ``live_handles`` and ``live_subscriptions``
            at 0.  ``None`` until a job has ended there.
    """

    pid: int
    alive: bool
    job_id: str
    jobs_ended: int
    after_last_job: BridgeStatistics | None


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _result(child: _Child) -> dict[str, Any] | None:
    return child.result  # set by the child's supervisor while the job ran


class _Child:
    def __init__(self, process: anyio.abc.Process, slot: int) -> None:
        self.process = process
        self.slot = slot
        self.ready = False
        self.dead = False
        self.result: dict[str, Any] | None = None
        self.jobs_ended = 0
        self.after_last_job: BridgeStatistics | None = None
        self.job_id = ""
        self.fault = ""
        """How the child broke the protocol (it was killed for it), if it did."""
        self.done = anyio.Event()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps(command) + "\n").encode())

    def statistics(self) -> JobProcessStatistics:
        return JobProcessStatistics(pid=self.pid, alive=not self.dead, job_id=self.job_id,
                                    jobs_ended=self.jobs_ended,
                                    after_last_job=self.after_last_job)


class ProcessPool:
    """``size`` warm children running ``target`` on ``backend``; one job per child at a time."""

    def __init__(
        self,
        size: int,
        target: str,
        backend: str,
        report: Callable[[str, pb.JobStatus, str], Awaitable[None]],
    ) -> None:
        self.size = size
        self._report = report
        self._target = target
        self._backend = backend
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._changed = anyio.Event()
        self._closing = False
        # (read through ``closing``: it changes while a supervisor awaits)
        self._scopes: list[anyio.CancelScope] = []
        self._failing: dict[int, str] = {}
        """Slots whose last starts all died before ready: how the last one ended."""
        self.replaced = 0
        """Children replaced after they died."""
        self._running = 0
        self._starting = 0
        """Slots starting a process (not yet in ``_all``)."""
        self._slots: list[_Child | None] = [None] * size
        """Each slot's current child, or its last one."""

    @property
    def closing(self) -> bool:
        """Whether the pool is closing (no child is started again)."""
        return self._closing

    @property
    def idle(self) -> int:
        """Children ready and without a job."""
        return len(self._idle)

    @property
    def busy(self) -> int:
        """Jobs running (or waiting for a child that is starting)."""
        return self._running

    @property
    def free(self) -> int:
        """Jobs the pool can take now: a dead child's slot counts (its replacement starts)."""
        return max(0, self.size - self._running - len(self._failing))

    def pids(self) -> list[int]:
        """The children's process ids."""
        return [child.pid for child in self._all if not child.dead]

    def statistics(self) -> tuple[JobProcessStatistics, ...]:
        """Each slot's current child (or its last one): what it runs, what its jobs left."""
        return tuple(child.statistics() for child in self._slots if child is not None)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the children in ``tg`` and wait until each is ready.

        If this fails or is cancelled, the pool is closed (its slots in ``tg`` end) before it
        raises.

        Raises:
            WorkerError: a child exited before it was ready (its stderr says why: the
                entrypoint cannot be imported, say).
        """
        failed: list[str] = []

        async def slot(index: int) -> None:
            with anyio.CancelScope(shield=True) as scope:
                self._scopes.append(scope)
                await self._supervise(index, failed)

        for index in range(self.size):
            tg.start_soon(slot, index)
        try:
            while len(self._idle) < self.size and not failed:
                await self._changed.wait()
        except BaseException:
            # Cancelled while the children start: the shielded slots would start them again
            # forever and keep ``tg`` open; close the pool here, it is ours until we return.
            await self.aclose()
            raise
        if failed:
            await self.aclose()
            raise WorkerError(f"a job process could not start ({failed[0]}): its stderr says why")

    async def _supervise(self, index: int, failed: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        first = True
        early = 0  # starts in a row that died before ready
        while not self._closing:
            # Shielded: a process started is always waited for.  Cancelled inside open_process
            # (aclose() cancels the slots), the process it had started was left running.
            self._starting += 1
            try:
                with anyio.CancelScope(shield=True):
                    process = await anyio.open_process(
                        [sys.executable, "-m", "lkanyio.worker._child", self._target,
                         self._backend],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env,
                    )
                child = _Child(process, index)
                self._all.add(child)
                self._slots[index] = child
            finally:
                self._starting -= 1
            if self.closing and process.stdin is not None:
                # aclose() has closed the others' input already: this one leaves too.
                await anyio.aclose_forcefully(process.stdin)
            assert process.stdout is not None
            try:
                await self._read(child, BufferedByteReceiveStream(process.stdout))
                first = first and not child.ready
            finally:
                child.dead = True
                if child in self._idle:
                    self._idle.remove(child)
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(_CLOSE_BOUND):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                    await process.aclose()
                self._all.discard(child)
                child.done.set()
                self._notify()
            if self.closing:
                return
            if first:
                failed.append(_exit_text(process.returncode))
                self._notify()
                return
            self.replaced += 1
            early = 0 if child.ready else early + 1
            if early >= _START_TRIES:
                self._failing[index] = _exit_text(process.returncode)
                self._notify()
            delay = 0.0 if not early else min(_RESPAWN_MAX, _RESPAWN_FIRST * 2 ** (early - 1))
            logger.warning("job process %d ended (%s): starting another in %g s", child.pid,
                           _exit_text(process.returncode), delay)
            await anyio.sleep(delay)  # aclose() cancels it

    async def _read(self, child: _Child, lines: BufferedByteReceiveStream) -> None:
        """Act on a child's answers until its output ends (it left or died)."""
        async with anyio.create_task_group() as relays:
            while True:
                try:
                    line = await lines.receive_until(b"\n", _MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    relays.cancel_scope.cancel()
                    return
                except anyio.DelimiterNotFound:
                    self._broken(child, relays, f"an answer over {_MAX_LINE} bytes")
                    return
                try:
                    self._act(child, relays, json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    self._broken(child, relays, f"an answer it cannot read ({exc!r:.200})")
                    return

    def _broken(self, child: _Child, relays: anyio.abc.TaskGroup, what: str) -> None:
        """A child broke the protocol: it is killed (its job fails) and replaced."""
        logger.error("job process %d sent %s: killing it", child.pid, what)
        child.fault = f"it sent {what}"
        relays.cancel_scope.cancel()
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()

    def _act(self, child: _Child, relays: anyio.abc.TaskGroup, message: dict[str, Any]) -> None:
        """Act on one answer of a child.

        Raises:
            KeyError, TypeError: the answer is not what the protocol says.
        """
        if message["event"] == "ready":
            child.ready = True
            if self._failing.pop(child.slot, None) is not None:
                logger.info("job process %d started: its slot works again", child.pid)
            self._idle.append(child)
            self._notify()
        elif message["event"] == "status":
            relays.start_soon(self._relay, child, child.job_id, str(message["status"]),
                              str(message["error"]))
        elif message["event"] == "ended":
            child.after_last_job = BridgeStatistics(**message["statistics"])
            child.jobs_ended += 1
            child.result = message
            child.done.set()

    async def _relay(self, child: _Child, job_id: str, status_name: str, error: str) -> None:
        """Pass a job's status from its process to the server, then answer the process.

        The job waits for the answer before it leaves its room.
        """
        status = pb.JobStatus.JS_FAILED
        if status_name == "JS_SUCCESS":
            status = pb.JobStatus.JS_SUCCESS
        await self._report(job_id, status, error)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await child.send(cmd="reported")

    async def run(self, context: JobContext) -> None:
        """Run ``context``'s job in an idle child; returns when it ended there.

        Raises:
            ChildJobError: the job failed (its error text), or its process died.
        """
        self._running += 1
        try:
            await self._run(context)
        finally:
            self._running -= 1

    async def _run(self, context: JobContext) -> None:
        while not self._idle:
            if len(self._failing) == self.size:
                raise ChildJobError(
                    f"the job processes keep exiting before they are ready (the last: "
                    f"{next(iter(self._failing.values()))}): their stderr says why")
            await self._changed.wait()
        child = self._idle.pop(0)
        self._notify()
        child.done = anyio.Event()
        child.result = None
        child.job_id = context.job.id
        try:
            await child.send(cmd="run", job=base64.b64encode(context.job.SerializeToString())
                             .decode(), url=context.url, token=context._token,
                             worker_id=context.worker_id)
            await child.done.wait()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._cancel(child, context._ending)
            raise
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await child.done.wait()  # it died: its supervisor says so
        finally:
            child.job_id = ""
            if not child.dead and child.ready:
                self._idle.append(child)
                self._notify()
        result = _result(child)
        if result is None:
            why = child.fault or _exit_text(child.process.returncode)
            raise ChildJobError(f"the job's process died ({why})")
        if result.get("room_ended"):
            context.room_ended = True
        if result.get("error"):
            raise ChildJobError(result["error"])

    async def _cancel(self, child: _Child, ending: tuple[pb.JobStatus, str] | None) -> None:
        """Cancel the child's job; it reports ``ending`` before it leaves its room."""
        if not child.dead:
            status = {} if ending is None else {"status": pb.JobStatus.Name(ending[0]),
                                                "error": ending[1]}
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await child.send(cmd="cancel", **status)
        with anyio.move_on_after(_CANCEL_BOUND):
            await child.done.wait()
        if not child.done.is_set():
            logger.warning("job process %d did not end its cancelled job: killing it", child.pid)
            child.process.kill()
            await child.done.wait()

    async def aclose(self) -> None:
        """Let the children leave (their input closed), kill those that stay; no respawn."""
        self._closing = True
        with anyio.CancelScope(shield=True):
            for child in list(self._all):
                if child.process.stdin is not None:
                    await anyio.aclose_forcefully(child.process.stdin)
            with anyio.move_on_after(_CLOSE_BOUND + 1):
                while self._all or self._starting:
                    await self._changed.wait()
            for scope in self._scopes:
                scope.cancel()
