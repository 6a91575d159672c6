"""Worker: an agent worker on livekit-server's own dispatch, as an ``async with`` resource.

The shell around :class:`lkanyio._core._worker.WorkerProtocol`: it owns the WebSocket
(:mod:`._socket`), the clock and the tasks; the protocol machine owns the rules.  One connection
task (re-registering with backoff when the server goes away) reads frames into the machine and
runs a service loop that sends what the machine wants sent and lets its timers fire.  Jobs run
in the worker's task group, each in a cancel scope of its own that only this module cancels: a
termination, the job's room ending or the drain's deadline reaches exactly that job, and the
cancellation of :meth:`Worker.serve` reaches none of them directly (it starts the drain).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import random
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final
from urllib.parse import urlsplit

import anyio
import anyio.abc
import sniffio
from livekit.protocol import agent as pb

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

from .. import __version__
from .._core._worker import (
    ANSWER_TIMEOUT,
    AnswerLate,
    AssignmentTimedOut,
    ConnectionStale,
    JobAcceptance,
    JobAssigned,
    JobDeclined,
    JobRequested,
    JobTerminated,
    ProtocolViolation,
    Registered,
    ServerGoingAway,
    ServerReady,
    WorkerEvent,
    WorkerPhase,
    WorkerProtocol,
)
from .._errors import ConnectionLostError, WorkerError, raise_lone
from .._resource import Resource
from ..api import AccessToken, VideoGrants
from ._job import JobContext
from ._job import describe as _describe
from ._load import CpuShare
from ._pool import ChildJobError, JobProcessStatistics, ProcessPool
from ._socket import HandshakeRefused, NotAWebSocket, SocketClosed, WebSocket, agent_endpoint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Worker", "WorkerStatistics"]

logger = logging.getLogger("lkanyio.worker")

_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds the TCP connection and WebSocket upgrade may take before the attempt counts as
failed (and is retried): the server's own registration deadline is as long."""
_BACKOFF_FIRST: Final = 0.5
_BACKOFF_MAX: Final = 10.0
_FLUSH_TIMEOUT: Final = 2.0
"""Seconds the drain waits for the last statuses to go out before it closes the socket."""
_SCHEMES: Final = ("ws", "wss", "http", "https")
_DRAIN_CANCELLED: Final = "cancelled: the worker's drain ran out"
"""A job the drain cancelled: its status's error text (the status is failed)."""


@final
@dataclass(frozen=True)
class WorkerStatistics:
    """What a worker has done so far (:meth:`Worker.statistics`).

    Attributes:
        worker_id: the current registration's id (``""`` while not registered).
        registrations: how often the server accepted a registration (1 + re-registrations).
        connection_attempts: connections tried (successful or not).
        jobs_running: jobs whose entrypoint runs now.
        jobs_succeeded: jobs whose entrypoint returned (or whose room ended).
        jobs_failed: jobs whose entrypoint raised (or that the drain cancelled).
        jobs_terminated: jobs the server ended (their dispatch deleted, participant removed)
            before anything else cancelled them (a job the drain cancelled counts as failed).
        offers_declined: offers declined (by ``accept``, or full, or draining).
        processes_replaced: job processes that died and were replaced (``processes > 0``).
        load: the load last reported.
        draining: whether the worker drains (takes no new job).
        processes: with ``processes=N``, one entry per job process slot: its current process
            (or its last one, once :meth:`Worker.serve` has ended), what it runs and what its
            last job left in it.  Empty with ``processes=0``.
    """

    worker_id: str
    registrations: int
    connection_attempts: int
    jobs_running: int
    jobs_succeeded: int
    jobs_failed: int
    jobs_terminated: int
    offers_declined: int
    processes_replaced: int
    load: float
    draining: bool
    processes: tuple[JobProcessStatistics, ...] = ()


def _default_accept(job: pb.Job) -> JobAcceptance:
    return JobAcceptance(identity=f"agent-{job.id}")


def _target(entrypoint: Callable[..., object]) -> str:
    """How a job process finds ``entrypoint``: ``module:qualname`` or ``file.py:qualname``.

    The second for a function of the program's main script.
    """
    module = getattr(entrypoint, "__module__", None)
    qualname = getattr(entrypoint, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        raise TypeError(
            f"with processes > 0 the entrypoint must be a module-level function its job "
            f"processes can import by name, not {entrypoint!r}"
        )
    if module == "__main__":
        path = getattr(sys.modules["__main__"], "__file__", None)
        if not path:
            raise TypeError("with processes > 0 the entrypoint cannot come from an interactive "
                            "session: put it in a module")
        return f"{os.path.abspath(path)}:{qualname}"
    return f"{module}:{qualname}"


@final
class Worker(Resource):
    """An agent worker: registers with livekit-server, takes the jobs it dispatches, runs them.

    ::

        async def entrypoint(job: JobContext) -> None:
            async with job.connect() as room:
                ...

        async with Worker(entrypoint, agent_name="echo") as worker:
            await worker.serve()  # until cancelled: then it drains

    Dispatches reach a worker by its ``agent_name``: a token's room configuration
    (``RoomConfiguration(agents=[RoomAgentDispatch(agent_name="echo")])``) or the AgentDispatch
    service (``lkanyio.api.LiveKitAPI(...).agent_dispatch.create_dispatch``).  A worker with no
    agent name gets the server's automatic dispatch: a job for every new room.

    The server offers each job to one worker, chosen among the workers that report themselves
    available, weighted by their spare load (``1 - load``).  This worker accepts unless
    ``accept`` declines, its load is at or above ``max_load`` (then it also reports itself full)
    or it drains.  When the server goes away or restarts, the worker registers again, with
    backoff; running jobs keep their rooms (they are separate connections), but the new
    registration is a new worker to the server, which no longer tracks them (their final
    statuses are not sent; a termination can no longer reach them: their room ending still does).

    Args:
        entrypoint: ``async def entrypoint(job: JobContext) -> None``, run for each job.
        agent_name: the name dispatches address (``""``: every new room, the server's default).
        job_type: ``JobType.JT_ROOM`` (one job per room), ``JT_PUBLISHER`` (one per
            participant of the room, when it first publishes a track) or ``JT_PARTICIPANT``
            (one per participant, when it joins); agents get none.  The job's
            :attr:`JobContext.participant` is that participant.
        url: the server's URL (default ``LIVEKIT_URL``).
        api_key: the API key (default ``LIVEKIT_API_KEY``).
        api_secret: its secret (default ``LIVEKIT_API_SECRET``); the worker signs its own
            registration token with an agent grant.
        accept: ``accept(job) -> JobAcceptance | None`` (or a coroutine function): who the
            job's participant is, or ``None`` to decline.  Default: identity ``agent-<job id>``.
            It must answer within the server's 10 s limit.
        load: ``load(worker) -> float`` in [0, 1], measured for each status report (every
            2.5 s) and each offer; it must be quick.  Default: the share of the machine's CPUs
            this process uses.
        max_load: at or above this load the worker reports itself full and declines offers.
        processes: ``0``: jobs run as tasks of the worker's task group.  ``N``: jobs run in N
            child processes started with :meth:`serve` and kept warm, each with its own native
            core and event loop (the same backend), one job at a time each; the worker then
            takes at most N jobs at once, a child that dies fails its job and is replaced.  The
            entrypoint must then be a module-level function (the children import it by name).
        drain_timeout: seconds running jobs get to finish when :meth:`serve` is cancelled,
            before they are cancelled (reported failed: ``cancelled: the worker's drain ran
            out``, before they leave their rooms).
        version: the version the worker reports to the server.

    Raises:
        TypeError: ``entrypoint`` (or ``accept``/``load``) is not what it must be.
        ValueError: an unknown job type, no URL or credentials, a URL that is not ``ws``,
            ``wss``, ``http`` or ``https``, a ``max_load`` outside (0, 1].
    """

    def __init__(
        self,
        entrypoint: Callable[[JobContext], Awaitable[None]],
        *,
        agent_name: str = "",
        job_type: pb.JobType = pb.JobType.JT_ROOM,
        url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        accept: Callable[[pb.Job], JobAcceptance | Awaitable[JobAcceptance | None] | None]
        | None = None,
        load: Callable[[Worker], float] | None = None,
        max_load: float = 0.7,
        processes: int = 0,
        drain_timeout: float = 60.0,
        version: str = "",
    ) -> None:
        if not inspect.iscoroutinefunction(entrypoint):
            raise TypeError(
                f"entrypoint must be a coroutine function (async def), not {entrypoint!r}"
            )
        if accept is not None and not callable(accept):
            raise TypeError(f"accept must be callable, not {accept!r}")
        if load is not None and not callable(load):
            raise TypeError(f"load must be callable, not {load!r}")
        if not isinstance(agent_name, str):
            raise TypeError(f"agent_name must be a str, not {type(agent_name).__name__}")
        if isinstance(job_type, bool) or job_type not in pb.JobType.values():  # type: ignore[unreachable]
            names = ", ".join(pb.JobType.keys())
            raise ValueError(f"unknown job type {job_type!r}: use JobType ({names})")
        if not 0 < max_load <= 1:
            raise ValueError(f"max_load must be in (0, 1], not {max_load!r}")
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
            raise ValueError(f"processes must be an int >= 0, not {processes!r}")
        self._target = _target(entrypoint) if processes else ""
        if not drain_timeout >= 0:
            raise ValueError(f"drain_timeout must be >= 0, not {drain_timeout!r}")
        url = url or os.environ.get("LIVEKIT_URL", "").strip()
        if not url:
            raise ValueError("no server URL: pass url= or set LIVEKIT_URL")
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"url must be a ws://, wss://, http:// or https:// URL, not {url!r}")
        api_key = api_key or os.environ.get("LIVEKIT_API_KEY", "").strip()
        api_secret = api_secret or os.environ.get("LIVEKIT_API_SECRET", "").strip()
        if not api_key or not api_secret:
            raise ValueError(
                "no API key or secret: pass api_key=/api_secret= or set LIVEKIT_API_KEY and "
                "LIVEKIT_API_SECRET"
            )
        self._entrypoint = entrypoint
        self._accept = accept or _default_accept
        self._load = load
        self._processes = processes
        self._pool: ProcessPool | None = None
        self._cpu = CpuShare(lambda: self._pool.pids() if self._pool is not None else ())
        self.url: Final = url
        self.agent_name: Final = agent_name
        self.job_type: Final = job_type
        self._api_key = api_key
        self._api_secret = api_secret
        self._drain_timeout = float(drain_timeout)
        self._core = WorkerProtocol(
            job_type=job_type, agent_name=agent_name,
            version=version or f"lkanyio/{__version__}", max_load=max_load,
        )
        self._jobs: dict[str, JobContext] = {}
        self._end_reason: dict[str, str] = {}
        self._entered = False
        self._serving = False
        # anyio's events need a running event loop: made in __aenter__.
        self._registered: anyio.Event
        self._idle: anyio.Event
        self._kick: anyio.Event
        self._flushed: anyio.Event
        self._sent: anyio.Event
        self._tg: anyio.abc.TaskGroup | None = None
        self._connection_scope: anyio.CancelScope | None = None
        self._stop_reconnecting = False
        self._ever_registered = False
        self._registrations = 0
        self._sent_total = 0
        self._attempts = 0
        self._succeeded = 0
        self._failed = 0
        self._terminated = 0
        self._declined = 0

    # -- public ---------------------------------------------------------------------------------

    @property
    def jobs(self) -> tuple[JobContext, ...]:
        """The jobs running now."""
        return tuple(self._jobs.values())

    @property
    def worker_id(self) -> str:
        """The current registration's id (``""`` while not registered)."""
        return self._core.worker_id

    def statistics(self) -> WorkerStatistics:
        """Counts of what the worker has done, and its current state."""
        return WorkerStatistics(
            worker_id=self._core.worker_id,
            registrations=self._registrations,
            connection_attempts=self._attempts,
            jobs_running=len(self._jobs),
            jobs_succeeded=self._succeeded,
            jobs_failed=self._failed,
            jobs_terminated=self._terminated,
            offers_declined=self._declined,
            processes_replaced=0 if self._pool is None else self._pool.replaced,
            processes=() if self._pool is None else self._pool.statistics(),
            load=self._core.load,
            draining=self._core.draining,
        )

    async def wait_registered(self) -> str:
        """Wait until the worker is registered and the server dispatches to it; returns its id.

        That is, until the server answered a ping after the registration (it answers the
        registration itself before its dispatch can reach the worker).  After a reconnect, the
        same holds for the new registration.

        Bound it with ``anyio.fail_after``: a server that is down is retried, not reported.
        """
        while not self._core.ready:
            await self._registered.wait()
        return self._core.worker_id

    def close(self) -> None:
        """Close the worker: :meth:`serve` cannot start any more (cancel it to stop it).

        Leaving the ``async with`` block closes it.
        """
        self._stop_reconnecting = True

    async def __aenter__(self) -> Worker:
        if self._entered:
            raise RuntimeError("a Worker can be entered once")
        self._entered = True
        self._registered = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._kick = anyio.Event()
        self._flushed = anyio.Event()
        self._sent = anyio.Event()
        return self

    async def serve(self) -> None:
        """Register and take jobs until cancelled; then drain, and re-raise the cancellation.

        The drain reports the worker draining (full), declines every offer, gives running jobs
        ``drain_timeout`` seconds to end, cancels those still running (reported failed), sends
        their statuses and leaves.

        Raises:
            WorkerError: the server refused the credentials or the registration, or the URL is
                not a LiveKit server (a server that is down or restarting is retried instead).
            RuntimeError: not inside ``async with``, or ``serve`` already running.
        """
        if not self._entered or self._stop_reconnecting:
            raise RuntimeError("use the Worker in `async with Worker(...) as worker:` first")
        if self._serving:
            raise RuntimeError("serve() already runs")
        self._serving = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._processes:
                    self._pool = ProcessPool(self._processes, self._target,
                                             sniffio.current_async_library(),
                                             self._report_status)
                    await self._pool.start(tg)
                    self._cpu.restart()  # starting the processes is not the jobs' load
                tg.start_soon(self._connection_task)
                try:
                    await anyio.sleep_forever()
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._drain()
        except BaseExceptionGroup as group:
            raise_lone(group)
        finally:
            self._tg = None

    # -- connection -----------------------------------------------------------------------------

    async def _connection_task(self) -> None:
        # Shielded: serve()'s cancellation starts the drain, which needs this connection to
        # report; the drain cancels this scope when it is done.
        with anyio.CancelScope(shield=True) as scope:
            self._connection_scope = scope
            attempt = 0
            while not self._stop_reconnecting:
                registered = await self._connect_once()
                if self._stopping():  # the drain may have set it meanwhile
                    break
                attempt = 1 if registered else attempt + 1
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # jitter, not a secret
                logger.info("reconnecting to %s in %.1f s", self.url, delay)
                await anyio.sleep(delay)

    def _stopping(self) -> bool:
        return self._stop_reconnecting

    def _token(self) -> str:
        return (
            AccessToken(self._api_key, self._api_secret)
            .with_grants(VideoGrants(agent=True))
            .to_jwt()
        )

    async def _connect_once(self) -> bool:
        """One connection: open, register, serve until it ends.  Returns whether it registered.

        Raises:
            WorkerError: what retrying will not mend.
        """
        self._attempts += 1
        token = self._token()
        try:
            with anyio.fail_after(_HANDSHAKE_TIMEOUT):
                ws = await WebSocket.connect(
                    self.url, [(b"authorization", f"Bearer {token}".encode())]
                )
        except HandshakeRefused as exc:
            self._refused(exc, token)
            return False
        except NotAWebSocket as exc:
            raise WorkerError(
                f"{self.url} is not a LiveKit server: its answer to the WebSocket upgrade at "
                f"{agent_endpoint(self.url)[3]} is not HTTP ({exc})"
            ) from None
        except (OSError, SocketClosed, TimeoutError) as exc:
            logger.warning("cannot connect to %s: %s", self.url, _describe(exc))
            return False
        try:
            return await self._run_connection(ws)
        finally:
            await ws.aclose()
            forgotten = self._core.connection_lost()
            self._sent_total = self._core.queued_total  # the rest is never sent
            self._sent.set()
            self._sent = anyio.Event()
            self._registered = anyio.Event()
            if forgotten:
                logger.info("connection lost: offers %s go to other workers", forgotten)

    def _refused(self, exc: HandshakeRefused, token: str) -> None:
        body = exc.body.replace(token, "<token>")
        if exc.status in (401, 403):
            raise WorkerError(
                f"livekit-server at {self.url} refused the worker's credentials "
                f"(HTTP {exc.status}: {body}): check the API key and secret"
            ) from None
        if exc.status >= 500:
            logger.warning("%s answered HTTP %d: %s", self.url, exc.status, body)
            return
        raise WorkerError(
            f"{self.url} is not a LiveKit server with agent workers: the WebSocket upgrade at "
            f"{agent_endpoint(self.url)[3]} was answered HTTP {exc.status}"
            + (f" ({body[:200]})" if body else "")
        ) from None

    async def _run_connection(self, ws: WebSocket) -> bool:
        # The registration's status report carries the load: a full worker is never available.
        self._core.set_load(self._measure(), anyio.current_time())
        self._core.connection_made(anyio.current_time())
        registered = False
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                nonlocal registered
                try:
                    while True:
                        data = await ws.receive()
                        for event in self._core.receive(data, anyio.current_time()):
                            if isinstance(event, Registered):
                                registered = True
                            if not self._handle(event, tg):
                                tg.cancel_scope.cancel()
                                return
                        self._kick.set()
                except (SocketClosed, NotAWebSocket) as exc:
                    logger.warning("connection to %s ended: %s", self.url, exc)
                    tg.cancel_scope.cancel()

            tg.start_soon(reader)
            tg.start_soon(self._service, ws, tg)
        if not registered and not self._ever_registered and not self._stop_reconnecting:
            raise WorkerError(
                f"livekit-server at {self.url} closed the connection without accepting the "
                f"registration (agent_name={self.agent_name!r}, job type "
                f"{pb.JobType.Name(self.job_type)})"
            )
        return registered

    async def _service(self, ws: WebSocket, tg: anyio.abc.TaskGroup) -> None:
        """Send what the protocol wants sent; let its timers fire; report the load when due."""
        try:
            while True:
                self._kick = anyio.Event()
                now = anyio.current_time()
                if self._core.status_due(now):
                    self._core.set_load(self._measure(), now)
                for event in self._core.tick(now):
                    if not self._handle(event, tg):
                        tg.cancel_scope.cancel()
                        return
                for data in self._core.outgoing():
                    await ws.send(data)
                    self._sent_total += 1
                self._sent.set()
                self._sent = anyio.Event()
                if not self._core.has_outgoing:
                    self._flushed.set()
                deadline = self._core.next_deadline()
                wait = math.inf if deadline is None else max(0.0, deadline - anyio.current_time())
                with anyio.move_on_after(wait):
                    await self._kick.wait()
        except SocketClosed as exc:
            logger.warning("connection to %s ended: %s", self.url, exc)
            tg.cancel_scope.cancel()

    def _measure(self) -> float:
        try:
            if self._load is not None:
                return max(0.0, float(self._load(self)))
            value = self._cpu()
            if self._pool is not None:  # each process takes one job at a time
                value = max(value, self._pool.busy / self._pool.size)
            return value
        except Exception:
            logger.exception("the load function failed: reporting the worker full")
            return math.inf

    def _handle(self, event: WorkerEvent, tg: anyio.abc.TaskGroup) -> bool:
        """Act on one protocol event; ``False``: close this connection."""
        if isinstance(event, Registered):
            self._registrations += 1
            self._ever_registered = True
            logger.info("registered with %s as %s (agent %r)", self.url, event.worker_id,
                        self.agent_name)
        elif isinstance(event, ServerReady):
            self._registered.set()
            logger.info("ready for jobs: the server dispatches to %s", self._core.worker_id)
        elif isinstance(event, JobRequested):
            tg.start_soon(self._offer, event.job)
        elif isinstance(event, JobDeclined):
            self._declined += 1
            logger.info("declined job %s: %s", event.job.id, event.reason)
        elif isinstance(event, JobAssigned):
            assert self._tg is not None
            url = event.url or self.url
            self._tg.start_soon(self._run_job, event.job, url, event.token, self._core.worker_id)
        elif isinstance(event, JobTerminated):
            job = self._jobs.get(event.job_id)
            if job is not None:
                # Whoever cancelled the job first gives its end: a job the drain already
                # cancelled leaves its room, and livekit-server answers that with a
                # termination ("agent worker left the room") that may arrive before it ends.
                logger.info("job %s: the server terminated it", event.job_id)
                self._end_reason.setdefault(event.job_id, "terminated")
                job._end(None)  # the server has ended it: no status to send
        elif isinstance(event, (AnswerLate, AssignmentTimedOut)):
            logger.warning("job %s: %s", event.job_id,
                           "not answered in time" if isinstance(event, AnswerLate)
                           else "accepted, but its assignment never came")
        elif isinstance(event, (ConnectionStale, ProtocolViolation, ServerGoingAway)):
            logger.warning("closing the connection to %s: %s", self.url, event.reason)
            return False
        return True

    async def _offer(self, job: pb.Job) -> None:
        now = anyio.current_time()
        self._core.set_load(self._measure(), now)
        acceptance: object = None
        # With a pool, each offered or accepted job not yet running (this one too) holds one of
        # its processes.
        reserved = self._core.job_count - len(self._jobs)
        if not self._core.full and (self._pool is None or self._pool.free >= reserved):
            try:
                with anyio.move_on_after(ANSWER_TIMEOUT):
                    acceptance = self._accept(job)
                    if inspect.isawaitable(acceptance):
                        acceptance = await acceptance
            except Exception:
                logger.exception("accept(%s) failed: declining the job", job.id)
                acceptance = None
        if acceptance is not None and not isinstance(acceptance, JobAcceptance):
            logger.error("accept(%s) returned %r, not a JobAcceptance or None: declining",
                         job.id, acceptance)
            acceptance = None
        if not self._core.answer(job.id, acceptance, anyio.current_time()) or acceptance is None:
            self._declined += 1
        self._kick.set()

    # -- jobs -----------------------------------------------------------------------------------

    async def _run_job(self, job: pb.Job, url: str, token: str, worker_id: str) -> None:
        # Shielded: only this module cancels a job (termination, drain deadline, room end).
        scope = anyio.CancelScope(shield=True)
        async def report(status: pb.JobStatus, error: str) -> None:
            await self._report_status(job.id, status, error)

        context = JobContext(job, url=url, token=token, worker_id=worker_id, scope=scope,
                             report=report)
        self._jobs[job.id] = context
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        status, error, reason = pb.JobStatus.JS_SUCCESS, "", ""
        logger.info("job %s: running in room %r", job.id, job.room.name)
        try:
            with scope:
                self._core.job_status(job.id, pb.JobStatus.JS_RUNNING)
                self._kick.set()
                try:
                    if self._pool is not None:
                        await self._pool.run(context)
                    else:
                        await self._entrypoint(context)
                except ChildJobError as exc:
                    status, error = pb.JobStatus.JS_FAILED, str(exc)
                    logger.error("job %s failed in its process: %s", job.id, exc)
                except Exception as exc:
                    if not (context.room_ended and isinstance(exc, ConnectionLostError)):
                        status, error = pb.JobStatus.JS_FAILED, _describe(exc)
                        logger.exception("job %s failed", job.id)
            reason = self._end_reason.pop(job.id, "")
            if scope.cancelled_caught and reason == "drain":
                status, error = pb.JobStatus.JS_FAILED, _DRAIN_CANCELLED
        finally:
            del self._jobs[job.id]
            if reason == "terminated":
                self._terminated += 1
                self._core.job_finished(job.id)
            else:
                if status == pb.JobStatus.JS_SUCCESS:
                    self._succeeded += 1
                else:
                    self._failed += 1
                self._core.job_status(job.id, status, error)
            logger.info("job %s: %s", job.id, reason or error or "done")
            self._kick.set()
            if not self._jobs:
                self._idle.set()

    async def _report_status(self, job_id: str, status: pb.JobStatus, error: str) -> None:
        """Report a job's status and wait (bounded) until it is sent.

        The job is about to leave its room, and the server ignores a status that comes after.
        """
        if not self._core.job_status(job_id, status, error):
            return
        target = self._core.queued_total
        self._kick.set()
        with anyio.move_on_after(_FLUSH_TIMEOUT):
            while self._sent_total < target and self._core.phase is not WorkerPhase.DISCONNECTED:
                await self._sent.wait()

    async def _drain(self) -> None:
        self._core.drain(anyio.current_time())
        self._kick.set()
        if self._jobs:
            logger.info("draining: %d jobs running, %g s to finish", len(self._jobs),
                        self._drain_timeout)
        with anyio.move_on_after(self._drain_timeout):
            await self._idle.wait()
        for job_id, job in list(self._jobs.items()):
            self._end_reason.setdefault(job_id, "drain")
            job._end(pb.JobStatus.JS_FAILED, _DRAIN_CANCELLED)
        await self._idle.wait()
        self._stop_reconnecting = True
        if self._core.has_outgoing and self._core.phase is WorkerPhase.REGISTERED:
            self._flushed = anyio.Event()
            self._kick.set()
            with anyio.move_on_after(_FLUSH_TIMEOUT):
                await self._flushed.wait()
        if self._connection_scope is not None:
            self._connection_scope.cancel()
        if self._pool is not None:
            await self._pool.aclose()
