"""Agent workers (``lkanyio.worker``) against the real livekit-server: dispatch, job status,
termination, drain, reconnect and bad input, on trio and asyncio.

Every worker here has an agent name of its own (a nameless worker would get a job for every room
other tests on the same server make).  What the server did with a job's status is read from its
log (``job ended`` with the job's id, status and error): the server API has no call that shows it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import lkanyio
from _util import EVENT_WAIT
from lkanyio import api
from lkanyio.testing import LocalCluster, LocalServer, ServerInfo
from lkanyio.worker import JobAcceptance, JobContext, JobType, Worker, WorkerError

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]


POOL_START_WAIT = 2 * EVENT_WAIT
"""Hang guard for a worker with job processes to be ready: it starts them first, each a Python
importing lkanyio (seconds apiece at a load of 20 on two cores; 20 s ran out for two processes
beside another test's three, in one run of this module)."""


def _agent_name() -> str:
    return f"agent-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def serving(info: ServerInfo, entrypoint: Callable[[JobContext], Awaitable[None]],
                  **options: Any) -> AsyncIterator[Worker]:
    """A worker serving in the background, registered (the server dispatches to it).

    Its drain gives jobs no time (they are cancelled at once) unless ``drain_timeout`` says.
    """
    options.setdefault("drain_timeout", 0)
    async with Worker(entrypoint, url=info.url, api_key=info.api_key,
                      api_secret=info.api_secret, **options) as worker:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.serve)
            with anyio.fail_after(POOL_START_WAIT if options.get("processes") else EVENT_WAIT):
                await worker.wait_registered()
            yield worker
            tg.cancel_scope.cancel()


def _user_token(info: ServerInfo, room: str, identity: str = "user",
                agents: tuple[str, ...] = ()) -> str:
    token = (api.AccessToken(info.api_key, info.api_secret).with_identity(identity)
             .with_grants(api.VideoGrants(room_join=True, room=room)))
    if agents:
        token = token.with_room_config(api.RoomConfiguration(
            agents=[api.RoomAgentDispatch(agent_name=name) for name in agents]))
    return token.to_jwt()


def _lkapi(info: ServerInfo) -> api.LiveKitAPI:
    return api.LiveKitAPI(info.http_url, info.api_key, info.api_secret)


async def _wait_participant(room: lkanyio.Room, identity: str) -> lkanyio.RemoteParticipant:
    async with room.events() as events:
        with anyio.fail_after(EVENT_WAIT):
            while identity not in room.remote_participants:
                await events.receive()
    return room.remote_participants[identity]


async def _wait_gone(room: lkanyio.Room, identity: str) -> None:
    async with room.events() as events:
        with anyio.fail_after(EVENT_WAIT):
            while identity in room.remote_participants:
                await events.receive()


class Jobs:
    """What the entrypoints saw: each job as it started, and each job's end."""

    def __init__(self) -> None:
        self.started: list[JobContext] = []
        self.ended: dict[str, str] = {}
        self._changed = anyio.Event()

    def start(self, job: JobContext) -> None:
        self.started.append(job)
        self._changed.set()

    def end(self, job: JobContext, how: str) -> None:
        self.ended[job.id] = how
        self._changed.set()

    async def wait(self, predicate: Callable[[], bool]) -> None:
        with anyio.fail_after(EVENT_WAIT):
            while not predicate():
                self._changed = anyio.Event()
                await self._changed.wait()


def _job_ended(server: LocalServer, job_id: str) -> str | None:
    """The server's log line saying the job ended, if any."""
    for line in Path(server.log_path).read_text(errors="replace").splitlines():
        if "job ended" in line and job_id in line:
            return line
    return None


async def _wait_job_ended(server: LocalServer, job_id: str) -> str:
    with anyio.fail_after(EVENT_WAIT):
        while (line := _job_ended(server, job_id)) is None:
            await anyio.sleep(0.05)  # polling the server's log file: no event to wait on
    return line


def _joining(jobs: Jobs) -> Callable[[JobContext], Awaitable[None]]:
    """An entrypoint that joins its room and stays until cancelled."""

    async def entrypoint(job: JobContext) -> None:
        try:
            async with job.connect() as room:
                jobs.start(job)
                assert room.name == job.job.room.name
                await anyio.sleep_forever()
        finally:
            jobs.end(job, "room ended" if job.room_ended else "cancelled")

    return entrypoint


# -- dispatch ---------------------------------------------------------------------------------


async def test_dispatch_by_token_room_configuration(server_info: ServerInfo,
                                                    room_name: str) -> None:
    name = _agent_name()
    jobs = Jobs()
    async with serving(server_info, _joining(jobs), agent_name=name) as worker:
        token = _user_token(server_info, room_name, agents=(name,))
        async with lkanyio.connect(server_info.url, token) as room:
            await jobs.wait(lambda: len(jobs.started) == 1)
            (job,) = jobs.started
            assert job.job.agent_name == name
            assert job.job.type == JobType.JT_ROOM
            assert job.participant is None  # a room job is for no participant
            assert job.worker_id == worker.worker_id
            agent = await _wait_participant(room, f"agent-{job.id}")
            assert agent.attributes["lk.agent_name"] == name
            assert [j.id for j in worker.jobs] == [job.id]
        assert worker.statistics().jobs_running == 1  # the user left; the agent stays


async def test_dispatch_by_the_agent_dispatch_service_with_an_acceptance(
        server_info: ServerInfo, room_name: str) -> None:
    name = _agent_name()
    jobs = Jobs()
    seen: list[lkanyio.worker.Job] = []

    def accept(job: lkanyio.worker.Job) -> JobAcceptance:
        seen.append(job)
        return JobAcceptance(identity=f"echo-{job.id}", name="Echo", metadata="m",
                             attributes={"role": "echo"})

    async with serving(server_info, _joining(jobs), agent_name=name, accept=accept):
        async with _lkapi(server_info) as lkapi:
            dispatch = await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=room_name, metadata="hi"))
        await jobs.wait(lambda: len(jobs.started) == 1)
        (job,) = jobs.started
        assert [j.id for j in seen] == [job.id]
        assert (job.job.dispatch_id, job.job.metadata) == (dispatch.id, "hi")
        async with lkanyio.connect(server_info.url, _user_token(server_info, room_name)) as room:
            agent = await _wait_participant(room, f"echo-{job.id}")
            assert (agent.name, agent.metadata) == ("Echo", "m")
            assert agent.attributes["role"] == "echo"


async def test_a_declined_offer_goes_to_another_worker(server_info: ServerInfo,
                                                       room_name: str) -> None:
    name = _agent_name()
    jobs = Jobs()
    offered: list[str] = []

    async def decline(job: lkanyio.worker.Job) -> None:
        offered.append(job.id)

    async with serving(server_info, _joining(jobs), agent_name=name, accept=decline) as no, \
            serving(server_info, _joining(jobs), agent_name=name) as yes:
        async with _lkapi(server_info) as lkapi:
            for _ in range(4):
                await lkapi.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await jobs.wait(lambda: len(jobs.started) == 4)
        assert {j.worker_id for j in jobs.started} == {yes.worker_id}
        assert no.statistics().offers_declined == len(offered)
        assert no.statistics().jobs_running == 0


def _recording(jobs: Jobs) -> Callable[[JobContext], Awaitable[None]]:
    """An entrypoint that notes its job and holds it without joining the room."""

    async def entrypoint(job: JobContext) -> None:
        jobs.start(job)
        await anyio.sleep_forever()

    return entrypoint


@asynccontextmanager
async def _microphone(room: lkanyio.Room, name: str = "mic") -> AsyncIterator[None]:
    async with lkanyio.AudioSource(48_000, 1) as source, \
            lkanyio.LocalAudioTrack.create_audio_track(name, source) as track:
        await room.local_participant.publish_track(track)
        yield


async def test_a_publisher_worker_gets_a_job_per_participant_when_it_first_publishes(
        server_info: ServerInfo, room_name: str) -> None:
    # livekit-server 1.13.5 (pkg/rtc/room.go) launches a JT_PUBLISHER job for a participant
    # the first time it publishes a track in the room (and, for a dispatch created later, for
    # each participant that has published): not when it joins, not for its later tracks.
    name = _agent_name()
    jobs = Jobs()
    async with serving(server_info, _recording(jobs), agent_name=name,
                       job_type=JobType.JT_PUBLISHER), _lkapi(server_info) as lkapi:
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        async with lkanyio.connect(server_info.url, _user_token(server_info, room_name,
                                                                "alice")) as alice, \
                lkanyio.connect(server_info.url, _user_token(server_info, room_name,
                                                             "bob")) as bob:
            assert jobs.started == []  # joining is not publishing
            async with _microphone(alice):
                await jobs.wait(lambda: len(jobs.started) == 1)
                async with _microphone(alice, "second"), _microphone(bob):
                    await jobs.wait(lambda: len(jobs.started) == 2)
    assert [j.participant.identity for j in jobs.started if j.participant] == ["alice", "bob"]
    for job in jobs.started:
        assert job.job.type == JobType.JT_PUBLISHER
        assert job.job.room.name == room_name


async def test_a_participant_worker_gets_a_job_per_joining_participant_but_not_for_agents(
        server_info: ServerInfo, room_name: str) -> None:
    # livekit-server 1.13.5 launches a JT_PARTICIPANT job for each participant that joins the
    # room (and, for a dispatch created later, for each one in it), except agents and egress.
    name = _agent_name()
    jobs = Jobs()
    async with serving(server_info, _joining(jobs), agent_name=name,
                       job_type=JobType.JT_PARTICIPANT) as worker:
        token = _user_token(server_info, room_name, "alice", agents=(name,))
        async with lkanyio.connect(server_info.url, token) as alice:
            await jobs.wait(lambda: len(jobs.started) == 1)
            await _wait_participant(alice, f"agent-{jobs.started[0].id}")
            async with lkanyio.connect(server_info.url,
                                       _user_token(server_info, room_name, "bob")):
                await jobs.wait(lambda: len(jobs.started) == 2)
                await _wait_participant(alice, f"agent-{jobs.started[1].id}")
            # The server does not end a participant's job when that participant leaves.
            await _wait_gone(alice, "bob")
            assert jobs.ended == {}
            assert len(worker.jobs) == 2
    # The two agents that joined are participants too, but got no job of their own.
    assert [j.participant.identity for j in jobs.started if j.participant] == ["alice", "bob"]
    assert {j.job.type for j in jobs.started} == {JobType.JT_PARTICIPANT}


# -- job status -------------------------------------------------------------------------------


async def test_an_entrypoint_that_raises_fails_its_job_and_the_worker_takes_the_next(
        local_server: LocalServer, room_name: str) -> None:
    info = local_server.info
    name = _agent_name()
    jobs = Jobs()

    async def entrypoint(job: JobContext) -> None:
        jobs.start(job)
        if len(jobs.started) == 1:
            # Inside its room: the status must reach the server before the job leaves the room
            # (the server marks a job whose participant left as failed, with its own text).
            async with job.connect():
                raise ValueError("the first job breaks")
        jobs.end(job, "returned")

    async with serving(info, entrypoint, agent_name=name) as worker, _lkapi(info) as lkapi:
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await jobs.wait(lambda: len(jobs.started) == 1)
        failed = await _wait_job_ended(local_server, jobs.started[0].id)
        assert "JS_FAILED" in failed
        assert "ValueError: the first job breaks" in failed
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await jobs.wait(lambda: len(jobs.ended) == 1)
        succeeded = await _wait_job_ended(local_server, jobs.started[1].id)
        assert "JS_SUCCESS" in succeeded
        stats = worker.statistics()
        assert (stats.jobs_failed, stats.jobs_succeeded, stats.jobs_running) == (1, 1, 0)


# -- termination ------------------------------------------------------------------------------


async def test_deleting_a_dispatch_cancels_exactly_its_job(local_server: LocalServer,
                                                           room_name: str) -> None:
    info = local_server.info
    name = _agent_name()
    jobs = Jobs()
    async with serving(info, _joining(jobs), agent_name=name) as worker, _lkapi(info) as lkapi:
        first = await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await jobs.wait(lambda: len(jobs.started) == 2)
        doomed = next(j for j in jobs.started if j.job.dispatch_id == first.id)
        await lkapi.agent_dispatch.delete_dispatch(first.id, room_name)
        await jobs.wait(lambda: doomed.id in jobs.ended)
        assert jobs.ended == {doomed.id: "cancelled"}
        assert [j.id for j in worker.jobs] == [j.id for j in jobs.started if j is not doomed]
        assert worker.statistics().jobs_terminated == 1


async def test_deleting_the_room_ends_exactly_its_job(server_info: ServerInfo) -> None:
    name = _agent_name()
    jobs = Jobs()
    rooms = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    async with serving(server_info, _joining(jobs), agent_name=name) as worker, \
            _lkapi(server_info) as lkapi:
        for room in rooms:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=room))
        await jobs.wait(lambda: len(jobs.started) == 2)
        doomed = next(j for j in jobs.started if j.job.room.name == rooms[0])
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=rooms[0]))
        await jobs.wait(lambda: doomed.id in jobs.ended)
        assert doomed.id in jobs.ended
        assert [j.job.room.name for j in worker.jobs] == [rooms[1]]


# -- drain ------------------------------------------------------------------------------------


async def test_drain_lets_running_jobs_finish_then_cancels_the_rest(
        server_info: ServerInfo) -> None:
    name = _agent_name()
    jobs = Jobs()
    release = anyio.Event()

    async def entrypoint(job: JobContext) -> None:
        async with job.connect():
            jobs.start(job)
            try:
                if job.job.metadata == "quick":
                    await release.wait()
                    jobs.end(job, "finished")
                    return
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                jobs.end(job, "cancelled")
                raise

    rooms = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    async with _lkapi(server_info) as lkapi:
        async with Worker(entrypoint, url=server_info.url, api_key=server_info.api_key,
                          api_secret=server_info.api_secret, agent_name=name,
                          drain_timeout=3) as worker:
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.serve)
                with anyio.fail_after(EVENT_WAIT):
                    await worker.wait_registered()
                for room, metadata in zip(rooms, ["quick", "quick", "slow"], strict=True):
                    await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
                        agent_name=name, room=room, metadata=metadata))
                await jobs.wait(lambda: len(jobs.started) == 3)
                tg.cancel_scope.cancel()  # serve() drains
                with anyio.CancelScope(shield=True):
                    while not worker.statistics().draining:
                        await anyio.lowlevel.checkpoint()
                    # Offered while draining (if the server offers it at all): declined.
                    await lkapi.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(agent_name=name, room=rooms[0]))
                    release.set()
            stats = worker.statistics()
    assert sorted(jobs.ended.values()) == ["cancelled", "finished", "finished"]
    assert (stats.jobs_running, stats.jobs_succeeded, stats.jobs_failed) == (0, 2, 1)
    assert len(jobs.started) == 3


async def test_a_job_the_drain_cancels_is_reported_failed_before_it_leaves_its_room(
        local_server: LocalServer, room_name: str) -> None:
    # livekit-server ends a job whose participant leaves the room, as failed with its own text
    # ("agent worker left the room"), and ignores the job's statuses after that: the drain's
    # status must reach it while the job is still in its room.
    info = local_server.info
    name = _agent_name()
    jobs = Jobs()
    async with _lkapi(info) as lkapi:
        async with serving(info, _joining(jobs), agent_name=name) as worker:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
            await jobs.wait(lambda: len(jobs.started) == 1)
        # serving() cancels serve(): its drain (drain_timeout=0) cancels the job at once.
    ended = await _wait_job_ended(local_server, jobs.started[0].id)
    assert "JS_FAILED" in ended
    assert "cancelled: the worker's drain ran out" in ended
    assert jobs.ended == {jobs.started[0].id: "cancelled"}
    assert worker.statistics().jobs_failed == 1


async def test_a_job_the_drain_cancelled_stays_failed_when_the_server_then_terminates_it(
        server_info: ServerInfo) -> None:
    # The server's termination can cross the drain's cancellation: livekit-server terminates a
    # job whose dispatch is deleted or whose participant leaves the room, whatever the worker
    # is doing.  Here the termination comes from deleting the dispatch while the cancelled job
    # still runs, and the job ends only once the worker has it: the drain cancelled it
    # first, so it counts as failed, once, not as terminated.
    name = _agent_name()
    jobs = Jobs()
    terminated = anyio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().endswith(": the server terminated it"):
                terminated.set()

    async def entrypoint(job: JobContext) -> None:
        async with job.connect():
            jobs.start(job)
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True), anyio.fail_after(EVENT_WAIT):
                    async with _lkapi(server_info) as lkapi:
                        await lkapi.agent_dispatch.delete_dispatch(job.job.dispatch_id,
                                                                   job.job.room.name)
                    await terminated.wait()
                jobs.end(job, "cancelled")
                raise

    seen = Seen()
    logger = logging.getLogger("lkanyio.worker")
    level = logger.level
    logger.addHandler(seen)
    logger.setLevel(logging.INFO)
    try:
        async with _lkapi(server_info) as lkapi:
            async with serving(server_info, entrypoint, agent_name=name) as worker:
                await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
                    agent_name=name, room=f"test-{uuid.uuid4().hex[:12]}"))
                await jobs.wait(lambda: len(jobs.started) == 1)
            stats = worker.statistics()
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
    assert list(jobs.ended.values()) == ["cancelled"]
    assert (stats.jobs_running, stats.jobs_succeeded, stats.jobs_failed,
            stats.jobs_terminated) == (0, 0, 1, 0)


# -- reconnect --------------------------------------------------------------------------------


async def test_a_restarted_server_gets_the_worker_back_and_running_jobs_keep_going(
        local_server: LocalServer, room_name: str) -> None:
    info = local_server.info
    name = _agent_name()
    jobs = Jobs()

    async def entrypoint(job: JobContext) -> None:
        jobs.start(job)
        await anyio.sleep_forever()  # no room: the job must outlive the server's restart

    async with serving(info, entrypoint, agent_name=name) as worker:
        async with _lkapi(info) as lkapi:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await jobs.wait(lambda: len(jobs.started) == 1)
        first_id = worker.worker_id
        await anyio.to_thread.run_sync(local_server.kill)
        await anyio.to_thread.run_sync(local_server.start)
        with anyio.fail_after(EVENT_WAIT):
            while worker.statistics().registrations < 2:
                await anyio.sleep(0.05)  # no event to wait on: poll the worker's count
            await worker.wait_registered()
        assert worker.worker_id != first_id
        assert [j.id for j in worker.jobs] == [jobs.started[0].id]
        async with _lkapi(info) as lkapi:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=f"{room_name}-2"))
        await jobs.wait(lambda: len(jobs.started) == 2)
        assert jobs.started[1].worker_id == worker.worker_id


# -- bad input --------------------------------------------------------------------------------


async def test_a_wrong_secret_is_a_clear_error_at_registration(server_info: ServerInfo) -> None:
    async def entrypoint(job: JobContext) -> None:
        pass

    async with Worker(entrypoint, url=server_info.url, api_key=server_info.api_key,
                      api_secret="x" * 40, agent_name=_agent_name()) as worker:
        with anyio.fail_after(EVENT_WAIT), pytest.raises(WorkerError) as caught:
            await worker.serve()
    message = str(caught.value)
    assert "refused the worker's credentials (HTTP 401" in message
    assert "check the API key and secret" in message
    assert not re.search(r"eyJ[\w-]+\.", message), "the token is in the message"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot here\n",
         "is not a LiveKit server with agent workers: the WebSocket upgrade at /agent was "
         "answered HTTP 404 (not here)"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
         "is not a LiveKit server: its answer to the WebSocket upgrade at /agent is not HTTP"),
    ],
    ids=["http-404", "not-http"],
)
async def test_a_url_that_is_not_a_livekit_server_is_a_clear_error(
        answer: bytes, expected: str) -> None:
    async def reply(client: anyio.abc.SocketStream) -> None:
        async with client:
            await client.receive()
            await client.send(answer)

    async def entrypoint(job: JobContext) -> None:
        pass

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, reply)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with Worker(entrypoint, url=f"ws://127.0.0.1:{port}", api_key="k",
                          api_secret="s" * 32) as worker:
            with anyio.fail_after(EVENT_WAIT), pytest.raises(WorkerError) as caught:
                await worker.serve()
        tg.cancel_scope.cancel()
    assert expected in str(caught.value)


async def test_a_server_that_is_not_there_yet_is_retried() -> None:
    async def entrypoint(job: JobContext) -> None:
        pass

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
    # Nothing listens on the port now: connections are refused, and the worker tries again.
    async with Worker(entrypoint, url=f"ws://127.0.0.1:{port}", api_key="k",
                      api_secret="s" * 32) as worker, anyio.create_task_group() as tg:
        tg.start_soon(worker.serve)
        with anyio.fail_after(EVENT_WAIT):
            while worker.statistics().connection_attempts < 3:
                await anyio.sleep(0.05)  # the attempts are counted: poll the count
        assert worker.statistics().registrations == 0
        tg.cancel_scope.cancel()


async def test_bad_arguments_fail_at_construction(server_info: ServerInfo) -> None:
    def not_async(job: JobContext) -> None:
        pass

    async def entrypoint(job: JobContext) -> None:
        pass

    keys = {"url": server_info.url, "api_key": "k", "api_secret": "s" * 32}
    with pytest.raises(TypeError, match="coroutine function"):
        Worker(not_async, **keys)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown job type 7"):
        Worker(entrypoint, job_type=7, **keys)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="url must be"):
        Worker(entrypoint, url="ftp://x", api_key="k", api_secret="s")
    with pytest.raises(ValueError, match="max_load"):
        Worker(entrypoint, max_load=0, **keys)


# -- job processes ------------------------------------------------------------------------------


async def _agent_pid(room: lkanyio.Room, identity: str) -> int:
    agent = await _wait_participant(room, identity)
    async with room.events() as events:
        with anyio.fail_after(EVENT_WAIT):
            while "pid" not in agent.attributes:
                await events.receive()
    return int(agent.attributes["pid"])


async def test_jobs_run_in_warm_processes_and_a_killed_one_is_replaced(
        local_server: LocalServer) -> None:
    import signal

    from worker_jobs import join_and_show_pid

    info = local_server.info
    name = _agent_name()
    rooms = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(4)]
    async with serving(info, join_and_show_pid, agent_name=name, processes=2) as worker, \
            _lkapi(info) as lkapi:
        pids = []
        for room_name, metadata in zip(rooms[:2], ["stay", "fail"], strict=True):
            dispatch = await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
                agent_name=name, room=room_name, metadata=metadata))
            async with lkanyio.connect(info.url, _user_token(info, room_name)) as room:
                job_id = await _job_of(lkapi, dispatch.id, room_name)
                pids.append(await _agent_pid(room, f"agent-{job_id}"))
        assert len(set(pids)) == 2
        assert os.getpid() not in pids
        # The job that raised in its process failed at the server with its error's text.
        failed = await _wait_job_ended(local_server, job_id)
        assert f"ValueError: boom in process {pids[1]}" in failed
        assert "JS_FAILED" in failed
        # SIGKILL the process of the job that stays: the job fails, the process is replaced.
        stayer = (await _job_of(lkapi, None, rooms[0]))
        os.kill(pids[0], signal.SIGKILL)
        died = await _wait_job_ended(local_server, stayer)
        assert "the job's process died (killed by SIGKILL)" in died
        with anyio.fail_after(EVENT_WAIT):
            while worker.statistics().processes_replaced < 1:
                await anyio.sleep(0.05)  # the replacement starts: poll the worker's count
        # Two jobs at once now run in the surviving process and in its replacement.
        later = []
        for room_name in rooms[2:]:
            dispatch = await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
                agent_name=name, room=room_name, metadata="stay"))
            async with lkanyio.connect(info.url, _user_token(info, room_name)) as room:
                job_id = await _job_of(lkapi, dispatch.id, room_name)
                later.append(await _agent_pid(room, f"agent-{job_id}"))
        assert later[0] != later[1]
        assert pids[1] in later
        assert pids[0] not in later
        stats = worker.statistics()
        assert (stats.jobs_failed, stats.jobs_running, stats.processes_replaced) == (2, 2, 1)


async def test_a_drain_under_load_ends_each_process_s_job_takes_none_and_leaves_nothing(
        local_server: LocalServer) -> None:
    from worker_jobs import join_and_show_pid

    info = local_server.info
    name = _agent_name()
    rooms = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(4)]
    async with _lkapi(info) as lkapi:
        async with Worker(join_and_show_pid, url=info.url, api_key=info.api_key,
                          api_secret=info.api_secret, agent_name=name, processes=3,
                          drain_timeout=1) as worker:
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.serve)
                with anyio.fail_after(POOL_START_WAIT):
                    await worker.wait_registered()
                for room in rooms[:3]:
                    await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
                        agent_name=name, room=room, metadata="stay"))
                # Each job is in its room (it shows its process's id) before the drain.
                pids = {room: await _agent_pid_by_api(lkapi, room) for room in rooms[:3]}
                assert len(set(pids.values())) == 3
                job_ids = [await _job_of(lkapi, None, room) for room in rooms[:3]]
                tg.cancel_scope.cancel()  # serve() drains: 1 s, then it cancels the three
                with anyio.CancelScope(shield=True):
                    while not worker.statistics().draining:
                        await anyio.lowlevel.checkpoint()
                    # Dispatched while draining: no job of this worker's.
                    await lkapi.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(agent_name=name, room=rooms[3]))
            stats = worker.statistics()
        # Each job's process reported the drain's status before its job left the room.
        for job_id in job_ids:
            ended = await _wait_job_ended(local_server, job_id)
            assert "JS_FAILED" in ended, ended
            assert "cancelled: the worker's drain ran out" in ended, ended
        fourth = await lkapi.agent_dispatch.list_dispatch(rooms[3])
        assert [list(d.state.jobs) for d in fourth if d.agent_name == name] == [[]]
    assert (stats.jobs_running, stats.jobs_failed, stats.jobs_succeeded) == (0, 3, 0)
    assert stats.processes_replaced == 0
    # Each process ended its cancelled job itself (none was killed) and kept nothing of it.
    assert sorted(p.pid for p in stats.processes) == sorted(pids.values())
    for process in stats.processes:
        assert (process.jobs_ended, process.job_id, process.alive) == (1, "", False)
        after = process.after_last_job
        assert after is not None
        assert (after.pending_requests, after.bound_handles, after.live_handles,
                after.live_subscriptions) == (0, 0, 0, 0), after
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)


async def _agent_pid_by_api(lkapi: api.LiveKitAPI, room: str) -> int:
    """The process id a job of join_and_show_pid shows in its room (read by the server API)."""
    with anyio.fail_after(EVENT_WAIT):
        while True:
            listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
            for participant in listed.participants:
                if "pid" in participant.attributes:
                    return int(participant.attributes["pid"])
            await anyio.sleep(0.05)  # no event for another participant's attributes: poll


async def _job_of(lkapi: api.LiveKitAPI, dispatch_id: str | None, room: str) -> str:
    """The id of the (first) job of a dispatch (or of the room's first dispatch)."""
    with anyio.fail_after(EVENT_WAIT):
        while True:
            dispatches = await lkapi.agent_dispatch.list_dispatch(room)
            for dispatch in dispatches:
                if dispatch_id in (None, dispatch.id) and dispatch.state.jobs:
                    return str(dispatch.state.jobs[0].id)
            await anyio.sleep(0.05)  # the server lists the job once the worker took it


# -- several workers ------------------------------------------------------------------------------


PEER = Path(__file__).resolve().parents[1] / "worker_peer.py"


@asynccontextmanager
async def peer(info: ServerInfo, name: str, load: float) -> AsyncIterator[dict[str, list[str]]]:
    """A worker in another process (tests/worker_peer.py): what it printed, as it prints it."""
    import json
    import subprocess
    import sys

    seen: dict[str, list[str]] = {"registered": [], "offer": [], "job": [], "pid": []}
    async with await anyio.open_process(
        [sys.executable, str(PEER), info.url, info.api_key, info.api_secret, name,
         anyio_backend_name(), str(load)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
    ) as process, anyio.create_task_group() as tg:
        assert process.stdout is not None
        assert process.stdin is not None

        async def read() -> None:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead):
                while True:
                    line = await lines.receive_until(b"\n", 65536)
                    for key, value in json.loads(line).items():
                        seen[key].append(value)

        tg.start_soon(read)
        with anyio.fail_after(EVENT_WAIT):
            while not seen["registered"]:
                await anyio.sleep(0.05)  # the peer prints when registered: poll what it printed
        seen["pid"].append(str(process.pid))
        yield seen
        await process.stdin.aclose()  # the peer drains and leaves (unless a test killed it)
        with anyio.fail_after(EVENT_WAIT):
            await process.wait()
        assert process.returncode in (0, -9)


def anyio_backend_name() -> str:
    import sniffio

    return sniffio.current_async_library()


async def _dispatch_rooms(info: ServerInfo, name: str, count: int) -> list[str]:
    rooms = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    async with _lkapi(info) as lkapi:
        for room in rooms:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=room))
    return rooms


async def _delete_rooms(info: ServerInfo, rooms: list[str]) -> None:
    async with _lkapi(info) as lkapi:
        for room in rooms:
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_two_workers_in_two_processes_share_twenty_rooms_by_load(
        server_info: ServerInfo) -> None:
    from worker_jobs import wait_forever

    name = _agent_name()
    async with peer(server_info, name, load=0.1) as other, \
            serving(server_info, wait_forever, agent_name=name, load=lambda w: 0.1) as worker:
        rooms = await _dispatch_rooms(server_info, name, 20)
        with anyio.fail_after(EVENT_WAIT):
            while len(worker.jobs) + len(other["job"]) < 20:
                await anyio.sleep(0.05)  # the other worker's jobs are known from what it printed
        ours, theirs = len(worker.jobs), len(other["job"])
        await _delete_rooms(server_info, rooms)
    # Equal loads, equal weights: each gets some (both get none of 20 with probability 2**-19).
    assert ours > 0
    assert theirs > 0
    assert ours + theirs == 20


async def test_a_full_worker_gets_no_job(server_info: ServerInfo) -> None:
    from worker_jobs import wait_forever

    name = _agent_name()
    async with peer(server_info, name, load=1.0) as full, \
            serving(server_info, wait_forever, agent_name=name, load=lambda w: 0.1) as worker:
        rooms = await _dispatch_rooms(server_info, name, 10)
        with anyio.fail_after(EVENT_WAIT):
            while len(worker.jobs) < 10:
                await anyio.sleep(0.05)  # no event for another worker's jobs: poll the count
        await _delete_rooms(server_info, rooms)
    assert full["offer"] == []
    assert full["job"] == []


# -- the command line -----------------------------------------------------------------------------


async def test_the_cli_serves_a_worker_with_two_processes_and_drains_on_sigterm(
        server_info: ServerInfo, room_name: str) -> None:
    import signal
    import subprocess
    import sys

    name = _agent_name()
    env = dict(os.environ, LIVEKIT_URL=server_info.url, LIVEKIT_API_KEY=server_info.api_key,
               LIVEKIT_API_SECRET=server_info.api_secret,
               PYTHONPATH=str(PEER.parent))  # where worker_jobs is
    log = bytearray()
    async with await anyio.open_process(
        [sys.executable, "-m", "lkanyio", "worker", "worker_jobs:join_and_show_pid",
         "--agent-name", name, "--processes", "2", "--backend", anyio_backend_name(),
         "--drain-timeout", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    ) as process, anyio.create_task_group() as tg:

        async def read() -> None:
            assert process.stderr is not None
            async for chunk in process.stderr:
                log.extend(chunk)

        tg.start_soon(read)
        try:
            with anyio.fail_after(POOL_START_WAIT):
                while b"ready for jobs" not in log:
                    await anyio.sleep(0.05)  # the worker logs when it is ready: poll the log
            async with _lkapi(server_info) as lkapi:
                dispatch = await lkapi.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
                async with lkanyio.connect(server_info.url,
                                           _user_token(server_info, room_name)) as room:
                    job_id = await _job_of(lkapi, dispatch.id, room_name)
                    pid = await _agent_pid(room, f"agent-{job_id}")
                    assert pid != process.pid
                    process.send_signal(signal.SIGTERM)
                    with anyio.fail_after(EVENT_WAIT):
                        await process.wait()
                    await _wait_gone(room, f"agent-{job_id}")
        finally:
            # Leaving the block waits for the process to end: on a failure above (before the
            # SIGTERM) it never would, and the test hung for good (seen once, loaded machine).
            if process.returncode is None:
                process.kill()
        tg.cancel_scope.cancel()
    assert process.returncode == 0, log.decode(errors="replace")


# -- a cluster ------------------------------------------------------------------------------------


async def test_a_worker_on_node_a_takes_jobs_for_a_room_on_node_b(
        cluster: LocalCluster, room_name: str) -> None:
    a, b = cluster.nodes
    name = _agent_name()
    jobs = Jobs()
    async with serving(a.info, _joining(jobs), agent_name=name) as worker:
        node_b = await anyio.to_thread.run_sync(cluster.node_id, 1)
        async with _lkapi(b.info) as lkapi:
            await lkapi.room.create_room(api.CreateRoomRequest(name=room_name, node_id=node_b))
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=name, room=room_name))
        await jobs.wait(lambda: len(jobs.started) == 1)
        assert await anyio.to_thread.run_sync(cluster.room_node, room_name) == 1
        assert jobs.started[0].worker_id == worker.worker_id
        async with lkanyio.connect(b.info.url, _user_token(b.info, room_name)) as room:
            await _wait_participant(room, f"agent-{jobs.started[0].id}")


async def test_a_worker_killed_with_sigkill_leaves_new_dispatches_to_the_survivor(
        server_info: ServerInfo) -> None:
    """And the killed worker's jobs are not dispatched again: the server forgets the worker when
    its socket closes and keeps no job of it to hand on (livekit-server 1.13.5,
    ``deregisterWorker``: "TODO update dispatch state"; its ListDispatch lists no job state for
    these dispatches either)."""
    import signal

    from worker_jobs import wait_forever

    name = _agent_name()
    async with peer(server_info, name, load=0.0) as doomed, \
            serving(server_info, wait_forever, agent_name=name, load=lambda w: 0.5) as worker:
        # The server picks among available workers at random, weighted by spare capacity (the
        # peer's is twice ours): rooms are dispatched one at a time until the peer holds a job,
        # rather than a fixed few (4 rooms all went to us 1 time in (1/3)**4, ~1%, seen once).
        first: list[str] = []
        while not doomed["job"]:
            assert len(first) < 16, "the peer took none of 16 jobs to be killed with"
            first += await _dispatch_rooms(server_info, name, 1)
            with anyio.fail_after(EVENT_WAIT):
                while len(worker.jobs) + len(doomed["job"]) < len(first):
                    await anyio.sleep(0.05)  # the peer's jobs are known from what it printed
        ours = {job.job.room.name for job in worker.jobs}
        os.kill(int(doomed["pid"][0]), signal.SIGKILL)
        second = await _dispatch_rooms(server_info, name, 4)
        with anyio.fail_after(EVENT_WAIT):
            while len(worker.jobs) < len(ours) + 4:
                await anyio.sleep(0.05)  # each new dispatch goes to the survivor: poll its jobs
        rooms = sorted(job.job.room.name for job in worker.jobs)
        assert rooms == sorted(ours | set(second))  # none of the killed worker's rooms
        await _delete_rooms(server_info, first + second)
