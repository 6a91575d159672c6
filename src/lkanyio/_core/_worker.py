"""WorkerProtocol: an agent worker's side of livekit-server's ``/agent`` protocol, sans-IO.

livekit-server dispatches jobs to agent workers over a WebSocket at ``/agent``: binary frames,
each one protobuf message (``livekit.protocol.agent``), ``WorkerMessage`` up and
``ServerMessage`` down.  What livekit-server 1.13.5 does with them (``pkg/agent/worker.go``,
``pkg/service/agentservice.go``), and so what this machine follows:

- The first message must be ``RegisterWorkerRequest`` (job type, agent name); the server answers
  ``RegisterWorkerResponse`` (the worker id) or, for an unknown job type, closes the socket.  It
  closes it too when no registration comes within 10 s.
- For each job it may give this worker, the server sends ``AvailabilityRequest`` and waits 10 s
  for the ``AvailabilityResponse`` (then it tries another worker).  After an ``available``
  answer it sends ``JobAssignment`` (the job, a join token it signed, optionally a URL).
- ``UpdateJobStatus`` tells it the job's status; a terminal one (success, failed) ends the job
  there.  ``JobTermination`` asks the worker to end a job (its dispatch was deleted, its agent
  participant left the room); the server marks the job ended itself when it sends it.
- ``UpdateWorkerStatus`` carries the worker's load and status: the server picks among
  ``WS_AVAILABLE`` workers, weighted by ``1 - load``; a ``WS_FULL`` worker gets nothing.
- ``WorkerPing`` is answered with ``WorkerPong`` (echoing the ping's timestamp); the server has
  no read deadline of its own once registered, so the worker's pings are what notice a dead link.
- On a closed socket the server forgets the worker and its jobs (their rooms are untouched: the
  jobs' participants are separate connections).  A worker that connects again is a new worker.
  Newer servers also send ``go_away`` before they close.

:class:`WorkerProtocol` holds this state and decides; it never does I/O, never reads a clock (time
comes in as ``now``, seconds on any monotonic clock) and never runs user code.  The shell
(``lkanyio.worker``) feeds it what arrives (:meth:`~WorkerProtocol.receive`), the answers and
statuses of jobs, and the passage of time (:meth:`~WorkerProtocol.tick`), and sends what
:meth:`~WorkerProtocol.outgoing` returns.  ``tests/unit/test_worker_protocol.py`` drives it with
hypothesis over every ordering.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, final

from google.protobuf.message import DecodeError
from livekit.protocol import agent as pb
from livekit.protocol import models

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ANSWER_TIMEOUT",
    "ASSIGNMENT_TIMEOUT",
    "PING_INTERVAL",
    "PONG_TIMEOUT",
    "REGISTER_TIMEOUT",
    "STATUS_INTERVAL",
    "AnswerLate",
    "AssignmentTimedOut",
    "ConnectionStale",
    "JobAcceptance",
    "JobAssigned",
    "JobDeclined",
    "JobRequested",
    "JobTerminated",
    "ProtocolViolation",
    "Registered",
    "ServerGoingAway",
    "ServerReady",
    "WorkerEvent",
    "WorkerPhase",
    "WorkerProtocol",
]

REGISTER_TIMEOUT: Final = 10.0
"""Seconds the server waits for the registration (``RegisterTimeout``); the worker as long for
the answer before it gives the connection up."""
ANSWER_TIMEOUT: Final = 10.0
"""Seconds the server waits for an availability answer (``AssignJobTimeout``): a later answer
is not sent (the server has moved on to another worker)."""
ASSIGNMENT_TIMEOUT: Final = 7.5
"""Seconds the worker waits for the assignment after accepting (the server sends it at once)."""
STATUS_INTERVAL: Final = 2.5
"""Seconds between ``UpdateWorkerStatus`` reports (livekit-agents reports on the same interval)."""
PING_INTERVAL: Final = 10.0
"""Seconds between ``WorkerPing`` messages."""
PONG_TIMEOUT: Final = 20.0
"""Seconds a ping may go unanswered before the connection counts as dead."""


class WorkerPhase(enum.Enum):
    """Where the worker's connection is."""

    DISCONNECTED = "disconnected"
    REGISTERING = "registering"
    REGISTERED = "registered"


@final
@dataclass(frozen=True)
class JobAcceptance:
    """An accepted job's participant: the server signs the job's join token with these.

    Return one from a worker's ``accept`` function to take the job (``None`` declines it).

    Attributes:
        identity: the participant's identity in the room (unique there).
        name: its display name.
        metadata: its metadata.
        attributes: its attributes (the server adds ``lk.agent_name``).
    """

    identity: str
    name: str = ""
    metadata: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Registered:
    """The server accepted the registration (a new worker id on each connection)."""

    worker_id: str
    server_info: models.ServerInfo


@dataclass(frozen=True)
class ServerReady:
    """The server answered the first ping after the registration: it dispatches to the worker.

    livekit-server answers the registration before it adds the worker to the tables its
    dispatch reads; it handles the worker's next message after that, so this pong is the first
    sign that a dispatch can reach the worker.
    """


@dataclass(frozen=True)
class JobRequested:
    """The server offers a job: answer it (:meth:`WorkerProtocol.answer`) in time.

    The server waits :data:`ANSWER_TIMEOUT` for the answer.
    """

    job: pb.Job
    resuming: bool


@dataclass(frozen=True)
class JobDeclined:
    """The server offered a job and the machine declined it at once (draining or full)."""

    job: pb.Job
    reason: str


@dataclass(frozen=True)
class AnswerLate:
    """An offered job was not answered in time: the server has moved on; no answer was sent."""

    job_id: str


@dataclass(frozen=True)
class JobAssigned:
    """An accepted job is this worker's: run it.

    It joins with ``token`` at ``url`` (``None``: the worker's own URL).
    """

    job: pb.Job
    url: str | None
    token: str


@dataclass(frozen=True)
class AssignmentTimedOut:
    """An accepted job's assignment never came: it is not this worker's."""

    job_id: str


@dataclass(frozen=True)
class JobTerminated:
    """The server ended a running job (it has marked it ended itself): cancel it."""

    job_id: str


@dataclass(frozen=True)
class ServerGoingAway:
    """The server announced it is going away: close this connection and connect again."""

    reason: str


@dataclass(frozen=True)
class ConnectionStale:
    """No registration or no pong in time: the connection is dead; close it, connect again."""

    reason: str


@dataclass(frozen=True)
class ProtocolViolation:
    """The server sent something this protocol does not allow: close the connection.

    Undecodable bytes, a message before the registration's answer, a second answer to it.
    """

    reason: str


WorkerEvent = (
    Registered
    | ServerReady
    | JobRequested
    | JobDeclined
    | AnswerLate
    | JobAssigned
    | AssignmentTimedOut
    | JobTerminated
    | ServerGoingAway
    | ConnectionStale
    | ProtocolViolation
)


class _Phase(enum.Enum):
    OFFERED = "offered"  # availability asked, answer pending
    ACCEPTED = "accepted"  # available answered, assignment pending
    RUNNING = "running"  # assigned: the shell runs it


@dataclass
class _Job:
    job: pb.Job
    phase: _Phase
    connection: int  # the connection (registration) the job belongs to
    deadline: float | None = None


_TERMINAL = (pb.JobStatus.JS_SUCCESS, pb.JobStatus.JS_FAILED)


class WorkerProtocol:
    """The worker's protocol state: registration, offered/accepted/running jobs, load, pings.

    Args:
        job_type: ``JT_ROOM``, ``JT_PUBLISHER`` or ``JT_PARTICIPANT``.
        agent_name: the name dispatches address (``""``: the server's automatic dispatch to
            every new room).
        version: the worker's version string, shown by the server.
        max_load: at or above this load the worker reports itself full and declines offers.
    """

    def __init__(
        self,
        *,
        job_type: pb.JobType,
        agent_name: str,
        version: str,
        max_load: float,
    ) -> None:
        if job_type not in pb.JobType.values():
            raise ValueError(f"unknown job type {job_type!r}")
        self.job_type: Final = job_type
        self.agent_name: Final = agent_name
        self.version: Final = version
        self.max_load: Final = max_load
        self.phase = WorkerPhase.DISCONNECTED
        self.worker_id = ""
        """The id of the current registration (``""`` when not registered)."""
        self.draining = False
        self.going_away = False
        """The server said it goes away: decline offers until the connection is replaced."""
        self.ready = False
        """Whether the server has answered a ping on this registration (:class:`ServerReady`)."""
        self.load = 0.0
        """The load last given to :meth:`set_load`."""
        self.rtt: float | None = None
        """The round trip of the last answered ping, in seconds."""
        self._connection = 0
        self._jobs: dict[str, _Job] = {}
        self._outbox: list[pb.WorkerMessage] = []
        self.queued_total = 0
        """Messages queued to send since the start (a lost connection drops those not yet taken
        by :meth:`outgoing`)."""
        self._register_deadline: float | None = None
        self._next_status: float | None = None
        self._next_ping: float | None = None
        self._ping_sent: dict[int, float] = {}  # timestamp (ms) sent -> when

    # -- what the shell reads -------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """Whether the worker reports itself full (draining, or at or above ``max_load``)."""
        return self.draining or self.load >= self.max_load

    @property
    def job_count(self) -> int:
        """Jobs this worker has: offered and being decided, accepted, running."""
        return len(self._jobs)

    def running(self) -> list[str]:
        """Ids of the jobs assigned to this worker that have not ended."""
        return [job_id for job_id, job in self._jobs.items() if job.phase is _Phase.RUNNING]

    def _queue(self, message: pb.WorkerMessage) -> None:
        self._outbox.append(message)
        self.queued_total += 1

    @property
    def has_outgoing(self) -> bool:
        """Whether messages wait to be sent (:meth:`outgoing`)."""
        return bool(self._outbox)

    def outgoing(self) -> list[bytes]:
        """The messages to send now, in order, serialized (each one binary WebSocket frame)."""
        out, self._outbox = self._outbox, []
        return [message.SerializeToString() for message in out]

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (``None``: nothing until an input)."""
        times = [self._register_deadline, self._next_status, self._next_ping]
        times += [job.deadline for job in self._jobs.values()]
        times += [sent + PONG_TIMEOUT for sent in self._ping_sent.values()]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def status_due(self, now: float) -> bool:
        """Whether a status report is due (the shell then measures the load: :meth:`set_load`)."""
        return self._next_status is not None and now >= self._next_status

    # -- inputs ---------------------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """A new WebSocket is open: register on it."""
        if self.phase is not WorkerPhase.DISCONNECTED:
            raise RuntimeError(f"connection_made while {self.phase.value}")
        self._connection += 1
        self.phase = WorkerPhase.REGISTERING
        self.going_away = False
        self._register_deadline = now + REGISTER_TIMEOUT
        request = pb.RegisterWorkerRequest(
            type=self.job_type,
            agent_name=self.agent_name,
            version=self.version,
            ping_interval=int(PING_INTERVAL),
        )
        self._queue(pb.WorkerMessage(register=request))

    def connection_lost(self) -> list[str]:
        """The WebSocket is gone: forget what the server forgot.

        Offers and accepted jobs not yet assigned are forgotten (the server gives them to
        others); running jobs go on, but the server no longer tracks them.

        Returns:
            The ids of the jobs forgotten.
        """
        self.phase = WorkerPhase.DISCONNECTED
        self.worker_id = ""
        self.ready = False
        self._outbox.clear()
        self._register_deadline = self._next_status = self._next_ping = None
        self._ping_sent.clear()
        forgotten = [i for i, job in self._jobs.items() if job.phase is not _Phase.RUNNING]
        for job_id in forgotten:
            del self._jobs[job_id]
        return forgotten

    def receive(self, data: bytes, now: float) -> list[WorkerEvent]:
        """One binary frame from the server; returns what the shell must act on."""
        if self.phase is WorkerPhase.DISCONNECTED:
            raise RuntimeError("receive while disconnected")
        message = pb.ServerMessage()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            return [ProtocolViolation(f"undecodable server message ({exc})")]
        which = message.WhichOneof("message")
        if self.phase is WorkerPhase.REGISTERING:
            if which == "register":
                return self._registered(message.register, now)
            if which == "pong":
                return []
            return [ProtocolViolation(f"server sent {which or 'an empty message'} before the "
                                      "registration's answer")]
        if which == "availability":
            return self._offered(message.availability, now)
        if which == "assignment":
            return self._assigned(message.assignment)
        if which == "termination":
            return self._terminated(message.termination.job_id)
        if which == "pong":
            sent = self._ping_sent.pop(message.pong.last_timestamp, None)
            if sent is None:
                return []
            self.rtt = max(0.0, now - sent)
            if self.ready:
                return []
            self.ready = True
            return [ServerReady()]
        if which == "go_away":
            self.going_away = True
            return [ServerGoingAway(message.go_away.reason)]
        if which == "register":
            return [ProtocolViolation("server answered a registration twice")]
        return []  # a message this version does not know: ignored, as the server ignores ours

    def answer(self, job_id: str, acceptance: JobAcceptance | None, now: float) -> bool:
        """Answer an offer: accept with who the participant is, or decline (``None``).

        An acceptance while full, draining or going away is sent as a refusal.  Returns whether
        the job was accepted; ``False`` too when the offer is no longer open (answered, too late,
        or its connection is gone), and then nothing is sent.
        """
        job = self._jobs.get(job_id)
        if job is None or job.phase is not _Phase.OFFERED:
            return False
        if job.deadline is not None and now >= job.deadline:
            return False  # tick() reports it; the server no longer waits for it
        response = pb.AvailabilityResponse(job_id=job_id)
        accepted = acceptance is not None and not self.full and not self.going_away
        if acceptance is not None and accepted:
            response.available = True
            response.participant_identity = acceptance.identity
            response.participant_name = acceptance.name
            response.participant_metadata = acceptance.metadata
            response.participant_attributes.update(acceptance.attributes)
            job.phase = _Phase.ACCEPTED
            job.deadline = now + ASSIGNMENT_TIMEOUT
        else:
            del self._jobs[job_id]
        self._queue(pb.WorkerMessage(availability=response))
        return accepted

    def job_status(self, job_id: str, status: pb.JobStatus, error: str = "") -> bool:
        """Report a running job's status: ``JS_RUNNING``, then ``JS_SUCCESS`` or ``JS_FAILED``.

        A final status ends the job here too.

        Returns:
            Whether the server was told: not for a job it no longer tracks (terminated, ended,
            or assigned on an earlier connection).
        """
        job = self._jobs.get(job_id)
        if job is None or job.phase is not _Phase.RUNNING:
            return False
        if status in _TERMINAL:
            del self._jobs[job_id]
        elif status != pb.JobStatus.JS_RUNNING:
            raise ValueError(f"a job's status is running, success or failed, not {status!r}")
        if job.connection != self._connection or self.phase is not WorkerPhase.REGISTERED:
            return False
        update = pb.UpdateJobStatus(job_id=job_id, status=status, error=error)
        self._queue(pb.WorkerMessage(update_job=update))
        return True

    def job_finished(self, job_id: str) -> None:
        """Forget a job that ended without a status to send (the shell's bookkeeping)."""
        self._jobs.pop(job_id, None)

    def set_load(self, load: float, now: float) -> None:
        """Record the measured load and, when registered, report it (and the status it implies)."""
        self.load = float(load)
        if self.phase is WorkerPhase.REGISTERED:
            self._report(now)

    def drain(self, now: float) -> None:
        """Stop taking jobs: report full (and draining) from now on, decline every offer."""
        if self.draining:
            return
        self.draining = True
        for job_id in [i for i, job in self._jobs.items() if job.phase is _Phase.OFFERED]:
            self.answer(job_id, None, now)
        if self.phase is WorkerPhase.REGISTERED:
            self._report(now)

    def tick(self, now: float) -> list[WorkerEvent]:
        """Let time pass: pings, pong and registration timeouts, late offers and assignments.

        Status reports are the shell's to trigger (:meth:`status_due`, then :meth:`set_load`).
        """
        events: list[WorkerEvent] = []
        if self.phase is WorkerPhase.DISCONNECTED:
            return events
        if self._register_deadline is not None and now >= self._register_deadline:
            self._register_deadline = None
            return [ConnectionStale("the server did not answer the registration in time")]
        if any(now >= sent + PONG_TIMEOUT for sent in self._ping_sent.values()):
            self._ping_sent.clear()
            return [ConnectionStale(f"no pong within {PONG_TIMEOUT:g} s")]
        for job_id, job in list(self._jobs.items()):
            if job.deadline is None or now < job.deadline:
                continue
            del self._jobs[job_id]
            if job.phase is _Phase.OFFERED:
                events.append(AnswerLate(job_id))
            else:
                events.append(AssignmentTimedOut(job_id))
        if self._next_ping is not None and now >= self._next_ping:
            self._ping(now)
        return events

    def _ping(self, now: float) -> None:
        stamp = int(now * 1000)
        while stamp in self._ping_sent:
            stamp += 1
        self._ping_sent[stamp] = now
        self._queue(pb.WorkerMessage(ping=pb.WorkerPing(timestamp=stamp)))
        self._next_ping = now + PING_INTERVAL

    # -- transitions ----------------------------------------------------------------------------

    def _registered(self, response: pb.RegisterWorkerResponse, now: float) -> list[WorkerEvent]:
        self.phase = WorkerPhase.REGISTERED
        self.worker_id = response.worker_id
        self._register_deadline = None
        self._report(now)
        self._ping(now)  # its pong says the server's dispatch can reach the worker
        return [Registered(response.worker_id, response.server_info)]

    def _report(self, now: float) -> None:
        full = self.full or self.going_away
        status = pb.WorkerStatus.WS_FULL if full else pb.WorkerStatus.WS_AVAILABLE
        update = pb.UpdateWorkerStatus(
            status=status, load=self.load, job_count=self.job_count, draining=self.draining
        )
        self._queue(pb.WorkerMessage(update_worker=update))
        self._next_status = now + STATUS_INTERVAL

    def _offered(self, request: pb.AvailabilityRequest, now: float) -> list[WorkerEvent]:
        job_id = request.job.id
        if not job_id or job_id in self._jobs:
            return []  # the server asks once per job and worker: a repeat is not a new offer
        reason = (
            "the worker is draining" if self.draining
            else "the server is going away" if self.going_away
            else "the worker is full" if self.full
            else ""
        )
        if reason:
            response = pb.AvailabilityResponse(job_id=job_id, available=False)
            self._queue(pb.WorkerMessage(availability=response))
            return [JobDeclined(request.job, reason)]
        self._jobs[job_id] = _Job(request.job, _Phase.OFFERED, self._connection,
                                  now + ANSWER_TIMEOUT)
        return [JobRequested(request.job, request.resuming)]

    def _assigned(self, assignment: pb.JobAssignment) -> list[WorkerEvent]:
        job = self._jobs.get(assignment.job.id)
        if job is None or job.phase is not _Phase.ACCEPTED:
            return []  # not a job this worker accepted (or its wait timed out): not ours
        job.phase = _Phase.RUNNING
        job.deadline = None
        job.job = assignment.job
        url = assignment.url if assignment.HasField("url") and assignment.url else None
        return [JobAssigned(assignment.job, url, assignment.token)]

    def _terminated(self, job_id: str) -> list[WorkerEvent]:
        job = self._jobs.get(job_id)
        if job is None or job.phase is not _Phase.RUNNING:
            return []
        del self._jobs[job_id]
        return [JobTerminated(job_id)]
