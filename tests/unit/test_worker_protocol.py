"""The agent worker's protocol machine (``lkanyio._core._worker.WorkerProtocol``), driven by
hypothesis.

The machine is sans-IO: bytes from the server in, events and bytes to send out, time as an
input.  The server here is the test (the only fake besides the room session's recorder): it
plays registrations, offers (fresh and repeated), assignments (for accepted jobs and for jobs
never accepted), terminations, pongs, go-away and garbage, in any order with the worker's own
answers, job statuses, load reports, drains, lost connections and the passage of time.  After
every step each message the worker sent is checked against a model of what the protocol allows:
a registration first and only on a fresh connection, at most one answer per offer and never a
late one, an acceptance only while neither full nor draining, job statuses only for jobs running
on the current registration and at most one final status each, status reports whose status,
load and job count are the model's, nothing at all while disconnected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from livekit.protocol import agent as pb
from livekit.protocol import models

from _util import examples
from lkanyio._core._worker import (
    ANSWER_TIMEOUT,
    ASSIGNMENT_TIMEOUT,
    PING_INTERVAL,
    PONG_TIMEOUT,
    REGISTER_TIMEOUT,
    STATUS_INTERVAL,
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
    WorkerPhase,
    WorkerProtocol,
)

MAX_LOAD = 0.7
_ids = count(1)


def _server(**member: object) -> bytes:
    return pb.ServerMessage(**member).SerializeToString()  # type: ignore[arg-type]


def _job(job_id: str) -> pb.Job:
    return pb.Job(id=job_id, type=pb.JobType.JT_ROOM, room=models.Room(name=f"room-{job_id}"))


def _protocol() -> WorkerProtocol:
    return WorkerProtocol(job_type=pb.JobType.JT_ROOM, agent_name="echo", version="t",
                          max_load=MAX_LOAD)


@dataclass
class Model:
    phase: WorkerPhase = WorkerPhase.DISCONNECTED
    connection: int = 0
    first_message_due: bool = False
    offered: dict[str, float] = field(default_factory=dict)  # job -> answer deadline
    accepted: dict[str, float] = field(default_factory=dict)  # job -> assignment deadline
    running: dict[str, int] = field(default_factory=dict)  # job -> connection
    ended: set[str] = field(default_factory=set)  # final status sent
    answered: set[str] = field(default_factory=set)
    draining: bool = False
    going_away: bool = False
    load: float = 0.0
    pings: set[int] = field(default_factory=set)
    ready: bool = False


class WorkerProtocolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.worker = _protocol()
        self.model = Model()
        self.now = 100.0
        self.accept_next: dict[str, bool] = {}  # what the worker's answer asked for

    # -- checking what the worker sends ---------------------------------------------------------

    @property
    def full(self) -> bool:
        return self.model.draining or self.model.load >= MAX_LOAD

    def flush(self) -> list[pb.WorkerMessage]:
        sent = []
        for data in self.worker.outgoing():
            message = pb.WorkerMessage()
            message.ParseFromString(data)
            sent.append(message)
            self.check_sent(message)
        return sent

    def check_sent(self, message: pb.WorkerMessage) -> None:
        m = self.model
        which = message.WhichOneof("message")
        assert m.phase is not WorkerPhase.DISCONNECTED, f"sent {which} while disconnected"
        if m.first_message_due:
            assert which == "register", f"first message on a connection is {which}"
            m.first_message_due = False
            assert message.register.agent_name == "echo"
            assert message.register.type == pb.JobType.JT_ROOM
            return
        assert which != "register", "registered twice on one connection"
        if which == "availability":
            answer = message.availability
            job_id = answer.job_id
            assert job_id not in m.answered, f"{job_id} answered twice"
            m.answered.add(job_id)
            assert job_id in m.offered, f"answer for {job_id}, which is not an open offer"
            deadline = m.offered.pop(job_id)
            assert self.now < deadline, "answered after the server stopped waiting"
            if answer.available:
                assert self.accept_next.get(job_id), "accepted what the shell declined"
                assert not self.full
                assert not m.going_away
                assert answer.participant_identity == f"agent-{job_id}"
                assert dict(answer.participant_attributes) == {"k": job_id}
                m.accepted[job_id] = self.now + ASSIGNMENT_TIMEOUT
        elif which == "update_job":
            update = message.update_job
            assert m.phase is WorkerPhase.REGISTERED
            assert m.running.get(update.job_id) == m.connection, (
                f"status for {update.job_id}, not running on this registration")
            assert update.job_id not in m.ended
            if update.status in (pb.JobStatus.JS_SUCCESS, pb.JobStatus.JS_FAILED):
                m.ended.add(update.job_id)
                del m.running[update.job_id]
        elif which == "update_worker":
            update = message.update_worker
            assert m.phase is WorkerPhase.REGISTERED
            full = self.full or m.going_away
            expected = pb.WorkerStatus.WS_FULL if full else pb.WorkerStatus.WS_AVAILABLE
            assert update.status == expected
            assert update.draining == m.draining
            assert update.load == pytest.approx(m.load, rel=1e-6)
            assert update.job_count == len(m.offered) + len(m.accepted) + len(m.running)
        elif which == "ping":
            assert m.phase is WorkerPhase.REGISTERED
            m.pings.add(message.ping.timestamp)
        else:
            raise AssertionError(f"unexpected message {which}")

    def receive(self, data: bytes) -> list[object]:
        events: list[object] = list(self.worker.receive(data, self.now))
        self.flush()
        return events

    # -- the connection -------------------------------------------------------------------------

    @precondition(lambda self: self.model.phase is WorkerPhase.DISCONNECTED)
    @rule()
    def connect(self) -> None:
        self.worker.connection_made(self.now)
        self.model.phase = WorkerPhase.REGISTERING
        self.model.connection += 1
        self.model.first_message_due = True
        self.model.going_away = False
        self.flush()
        assert not self.model.first_message_due

    @precondition(lambda self: self.model.phase is WorkerPhase.REGISTERING)
    @rule()
    def server_registers(self) -> None:
        self.model.phase = WorkerPhase.REGISTERED  # the report that follows is checked registered
        events = self.receive(_server(register=pb.RegisterWorkerResponse(worker_id="AW_1")))
        assert events == [Registered("AW_1", models.ServerInfo())]
        assert self.worker.worker_id == "AW_1"

    @precondition(lambda self: self.model.phase is not WorkerPhase.DISCONNECTED)
    @rule()
    def lose_connection(self) -> None:
        forgotten = self.worker.connection_lost()
        m = self.model
        assert set(forgotten) == set(m.offered) | set(m.accepted)
        m.phase = WorkerPhase.DISCONNECTED
        m.offered.clear()
        m.accepted.clear()
        m.pings.clear()
        m.ready = False
        assert self.worker.outgoing() == []

    @precondition(lambda self: self.model.phase is not WorkerPhase.DISCONNECTED)
    @rule(data=st.binary(min_size=1, max_size=8))
    def garbage(self, data: bytes) -> None:
        events = self.worker.receive(b"\xff\xff" + data, self.now)
        assert len(events) <= 1
        if events:
            assert isinstance(events[0], ProtocolViolation)
        self.flush()

    @precondition(lambda self: self.model.phase is WorkerPhase.REGISTERED)
    @rule()
    def server_registers_again(self) -> None:
        events = self.receive(_server(register=pb.RegisterWorkerResponse(worker_id="AW_2")))
        assert [type(e) for e in events] == [ProtocolViolation]

    @precondition(lambda self: self.model.phase is WorkerPhase.REGISTERED)
    @rule()
    def go_away(self) -> None:
        self.model.going_away = True
        assert self.receive(_server(go_away={"reason": "restart"})) == [ServerGoingAway("restart")]

    # -- offers and jobs ------------------------------------------------------------------------

    @precondition(lambda self: self.model.phase is not WorkerPhase.DISCONNECTED)
    @rule(repeat=st.booleans(), resuming=st.booleans())
    def server_offers(self, repeat: bool, resuming: bool) -> None:
        m = self.model
        known = sorted({*m.offered, *m.accepted, *m.running})
        job_id = known[0] if repeat and known else f"AJ_{next(_ids)}"
        fresh = job_id not in known
        if m.phase is WorkerPhase.REGISTERING:
            events = self.receive(_server(availability=pb.AvailabilityRequest(job=_job(job_id))))
            assert [type(e) for e in events] == [ProtocolViolation]
            return
        if fresh and (self.full or m.going_away):
            m.offered[job_id] = self.now + ANSWER_TIMEOUT  # the automatic refusal is checked
            self.accept_next[job_id] = False
        events = self.receive(_server(
            availability=pb.AvailabilityRequest(job=_job(job_id), resuming=resuming)))
        if not fresh:
            assert events == [], "a repeated offer is not a new one"
        elif self.full or m.going_away:
            assert [type(e) for e in events] == [JobDeclined]
            assert job_id in m.answered
        else:
            assert events == [JobRequested(_job(job_id), resuming)]
            m.offered[job_id] = self.now + ANSWER_TIMEOUT

    @precondition(lambda self: self.model.offered)
    @rule(data=st.data(), accept=st.booleans())
    def answer(self, data: st.DataObject, accept: bool) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.model.offered)))
        self.accept_next[job_id] = accept
        acceptance = JobAcceptance(f"agent-{job_id}", attributes={"k": job_id}) if accept else None
        late = self.now >= self.model.offered[job_id]
        was_full = self.full or self.model.going_away
        accepted = self.worker.answer(job_id, acceptance, self.now)
        sent = self.flush()
        if late:
            assert (accepted, sent) == (False, [])
            return
        assert accepted == (accept and not was_full)
        assert len(sent) == 1

    @rule(job_id=st.sampled_from(["AJ_nobody", ""]), accept=st.booleans())
    def answer_nothing(self, job_id: str, accept: bool) -> None:
        acceptance = JobAcceptance("x") if accept else None
        assert not self.worker.answer(job_id, acceptance, self.now)
        assert self.worker.outgoing() == []

    @precondition(lambda self: self.model.phase is WorkerPhase.REGISTERED)
    @rule(data=st.data(), with_url=st.booleans())
    def server_assigns(self, data: st.DataObject, with_url: bool) -> None:
        m = self.model
        choices = [*sorted({*m.accepted, *m.offered, *m.running}), "AJ_stranger"]
        job_id = data.draw(st.sampled_from(choices))
        assignment = pb.JobAssignment(job=_job(job_id), token=f"token-{job_id}")
        if with_url:
            assignment.url = "ws://elsewhere"
        events = self.receive(_server(assignment=assignment))
        if job_id in m.accepted and self.now < m.accepted[job_id]:
            del m.accepted[job_id]
            m.running[job_id] = m.connection
            assert events == [JobAssigned(_job(job_id), "ws://elsewhere" if with_url else None,
                                          f"token-{job_id}")]
        else:
            assert events == [], f"assignment for {job_id} acted on"

    @precondition(lambda self: self.model.phase is WorkerPhase.REGISTERED)
    @rule(data=st.data())
    def server_terminates(self, data: st.DataObject) -> None:
        m = self.model
        job_id = data.draw(st.sampled_from([*sorted({*m.running, *m.accepted}), "AJ_stranger"]))
        events = self.receive(_server(termination=pb.JobTermination(job_id=job_id)))
        if job_id in m.running:
            del m.running[job_id]
            assert events == [JobTerminated(job_id)]
            assert job_id not in self.worker.running()
        else:
            assert events == []

    @precondition(lambda self: self.model.running)
    @rule(data=st.data(), status=st.sampled_from(
        [pb.JobStatus.JS_RUNNING, pb.JobStatus.JS_SUCCESS, pb.JobStatus.JS_FAILED]))
    def job_status(self, data: st.DataObject, status: pb.JobStatus.ValueType) -> None:
        m = self.model
        job_id = data.draw(st.sampled_from(sorted(m.running)))
        current = m.running[job_id] == m.connection and m.phase is WorkerPhase.REGISTERED
        told = self.worker.job_status(job_id, status, "boom" if status == pb.JobStatus.JS_FAILED
                                      else "")
        sent = self.flush()
        assert told == current
        assert len(sent) == int(current)
        if status != pb.JobStatus.JS_RUNNING:
            m.running.pop(job_id, None)
            assert job_id not in self.worker.running()
            assert not self.worker.job_status(job_id, status)

    # -- load, drain, time ----------------------------------------------------------------------

    @rule(load=st.sampled_from([0.0, 0.3, 0.69, 0.7, 1.5]))
    def set_load(self, load: float) -> None:
        self.model.load = load
        self.worker.set_load(load, self.now)
        sent = self.flush()
        assert len(sent) == int(self.model.phase is WorkerPhase.REGISTERED)

    @rule()
    def drain(self) -> None:
        m = self.model
        was = m.draining
        m.draining = True
        for job_id in m.offered:  # every open offer is declined at once
            self.accept_next[job_id] = False
        self.worker.drain(self.now)
        self.flush()
        if not was:
            assert m.offered == {}

    @rule(dt=st.sampled_from([0.5, STATUS_INTERVAL, PING_INTERVAL, ASSIGNMENT_TIMEOUT,
                              ANSWER_TIMEOUT, PONG_TIMEOUT, REGISTER_TIMEOUT]))
    def advance(self, dt: float) -> None:
        self.now += dt
        m = self.model
        events = self.worker.tick(self.now)
        for event in events:
            if isinstance(event, ConnectionStale):
                self.flush()
                self.lose_connection()
                return
            if isinstance(event, AnswerLate):
                assert m.offered.pop(event.job_id) <= self.now
            elif isinstance(event, AssignmentTimedOut):
                assert m.accepted.pop(event.job_id) <= self.now
            else:
                raise AssertionError(f"tick gave {event}")
        self.flush()  # pings
        if self.worker.status_due(self.now):
            self.worker.set_load(m.load, self.now)
            assert len(self.flush()) == 1

    @precondition(lambda self: self.model.phase is WorkerPhase.REGISTERED and self.model.pings)
    @rule(data=st.data(), known=st.booleans())
    def pong(self, data: st.DataObject, known: bool) -> None:
        stamp = data.draw(st.sampled_from(sorted(self.model.pings))) if known else -1
        events = self.receive(_server(pong=pb.WorkerPong(last_timestamp=stamp, timestamp=1)))
        assert events == ([ServerReady()] if known and not self.model.ready else [])
        if known:
            self.model.ready = True
            self.model.pings.discard(stamp)
            assert self.worker.rtt is not None
            assert self.worker.rtt >= 0

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        m = self.model
        assert self.worker.phase is m.phase
        assert self.worker.ready == m.ready
        assert self.worker.draining == m.draining
        assert sorted(self.worker.running()) == sorted(m.running)
        assert self.worker.job_count == len(m.offered) + len(m.accepted) + len(m.running)
        deadline = self.worker.next_deadline()
        if m.phase is WorkerPhase.DISCONNECTED:
            assert deadline is None or (m.offered == {} and m.accepted == {})
        else:
            assert deadline is not None  # a registration, ping or status timer always runs


WorkerProtocolMachine.TestCase.settings = settings(
    max_examples=examples(150), stateful_step_count=40, deadline=None
)
TestWorkerProtocolMachine = WorkerProtocolMachine.TestCase


# -- examples the machine also reaches, spelled out -----------------------------------------------


def _registered() -> WorkerProtocol:
    worker = _protocol()
    worker.connection_made(0.0)
    worker.receive(_server(register=pb.RegisterWorkerResponse(worker_id="AW_1")), 0.0)
    worker.outgoing()
    return worker


def test_a_job_from_offer_to_failure() -> None:
    worker = _registered()
    (requested,) = worker.receive(_server(availability=pb.AvailabilityRequest(job=_job("J"))), 1.0)
    assert isinstance(requested, JobRequested)
    assert worker.answer("J", JobAcceptance("agent-J", name="Echo"), 1.5)
    (answer,) = [pb.WorkerMessage.FromString(b) for b in worker.outgoing()]
    assert (answer.availability.available, answer.availability.participant_name) == (True, "Echo")
    (assigned,) = worker.receive(_server(assignment=pb.JobAssignment(job=_job("J"), token="t")),
                                 2.0)
    assert assigned == JobAssigned(_job("J"), None, "t")
    assert worker.job_status("J", pb.JobStatus.JS_FAILED, "ValueError: boom")
    (update,) = [pb.WorkerMessage.FromString(b) for b in worker.outgoing()]
    assert (update.update_job.status, update.update_job.error) == (pb.JobStatus.JS_FAILED,
                                                                   "ValueError: boom")
    assert worker.job_count == 0


def test_a_full_worker_declines_and_says_so() -> None:
    worker = _registered()
    worker.set_load(0.9, 1.0)
    (status,) = [pb.WorkerMessage.FromString(b) for b in worker.outgoing()]
    assert status.update_worker.status == pb.WorkerStatus.WS_FULL
    (declined,) = worker.receive(_server(availability=pb.AvailabilityRequest(job=_job("J"))), 1.0)
    assert declined == JobDeclined(_job("J"), "the worker is full")
    (answer,) = [pb.WorkerMessage.FromString(b) for b in worker.outgoing()]
    assert answer.availability.available is False


def test_jobs_of_an_earlier_connection_are_not_reported_on_the_next() -> None:
    worker = _registered()
    worker.receive(_server(availability=pb.AvailabilityRequest(job=_job("J"))), 1.0)
    worker.answer("J", JobAcceptance("a"), 1.0)
    worker.receive(_server(assignment=pb.JobAssignment(job=_job("J"), token="t")), 1.0)
    worker.outgoing()
    assert worker.connection_lost() == []
    worker.connection_made(2.0)
    worker.receive(_server(register=pb.RegisterWorkerResponse(worker_id="AW_2")), 2.0)
    worker.outgoing()
    assert worker.running() == ["J"]
    assert not worker.job_status("J", pb.JobStatus.JS_SUCCESS)
    assert worker.outgoing() == []
    assert worker.running() == []


def test_an_unknown_job_type_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown job type 7"):
        WorkerProtocol(job_type=7, agent_name="", version="", max_load=1.0)  # type: ignore[arg-type]
