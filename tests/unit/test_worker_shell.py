"""The agent worker's shell (``lkanyio.worker``) where no server is needed: its job processes and
its connection attempts, against the fake entrypoints of tests/worker_fake_jobs.py and local
listeners on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import anyio
import anyio.abc
import pytest
import sniffio
from livekit.protocol import agent as pb

from _util import EVENT_WAIT
from lkanyio.worker import JobContext, Worker, _pool
from lkanyio.worker._pool import ChildJobError, ProcessPool
from worker_fake_jobs import by_metadata

pytestmark = pytest.mark.anyio

_KEYS = {"api_key": "k", "api_secret": "s" * 32}


async def _free_port() -> int:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        return int(listener.extra(anyio.abc.SocketAttribute.local_port))


@pytest.mark.parametrize("when", ["at once", "while a process imports the entrypoint"])
async def test_cancelling_serve_while_the_job_processes_start_ends_it(
        when: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = tmp_path / "started"
    if when != "at once":
        monkeypatch.setenv("LKANYIO_TEST_WORKER_GATE", str(gate))
    url = f"ws://127.0.0.1:{await _free_port()}"
    async with Worker(by_metadata, url=url, processes=1, **_KEYS) as worker:
        with anyio.fail_after(EVENT_WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.serve)
                if when == "at once":
                    await anyio.lowlevel.checkpoint()
                else:
                    while not gate.exists():
                        await anyio.sleep(0.05)  # the child writes the file: poll for it
                tg.cancel_scope.cancel()
        assert worker.statistics().connection_attempts == 0
    if when != "at once":  # the process that never became ready is gone too
        with pytest.raises(ProcessLookupError):
            os.kill(int(gate.read_text()), 0)


async def test_a_wss_worker_whose_tls_handshake_is_cut_connects_again() -> None:
    accepted = 0
    changed = anyio.Event()

    async def cut(stream: anyio.abc.SocketStream) -> None:
        nonlocal accepted, changed
        accepted += 1
        changed.set()
        changed = anyio.Event()
        await stream.aclose()

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            anyio.create_task_group() as tg:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, cut)
        async with Worker(by_metadata, url=f"wss://127.0.0.1:{port}", **_KEYS) as worker, \
                anyio.create_task_group() as serving:
            serving.start_soon(worker.serve)
            with anyio.fail_after(EVENT_WAIT):
                while accepted < 2:
                    await changed.wait()
            assert worker.statistics().registrations == 0
            serving.cancel_scope.cancel()
        tg.cancel_scope.cancel()


def _context(metadata: str) -> JobContext:
    job = pb.Job(id=f"AJ_{metadata}", type=pb.JobType.JT_ROOM, metadata=metadata)
    return JobContext(job, url="ws://127.0.0.1:9", token="t", worker_id="AW_test",
                      scope=anyio.CancelScope())


async def test_a_job_error_over_the_line_limit_fails_that_job_and_the_process_takes_the_next(
        ) -> None:
    async def report(job_id: str, status: pb.JobStatus, error: str) -> None:
        pass

    pool = ProcessPool(1, "worker_fake_jobs:by_metadata", sniffio.current_async_library(), report)
    async with anyio.create_task_group() as tg:
        try:
            with anyio.fail_after(EVENT_WAIT):
                await pool.start(tg)
                with pytest.raises(ChildJobError) as caught:
                    await pool.run(_context("big"))
                await pool.run(_context("next"))
        finally:
            await pool.aclose()
    text = str(caught.value)
    assert text.startswith("ValueError: xxxx")
    assert len(text) < 16384
    assert pool.replaced == 0  # the error was the job's, the process stayed


async def test_a_process_that_keeps_dying_before_it_is_ready_fails_the_waiting_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    die = tmp_path / "die"
    monkeypatch.setenv("LKANYIO_TEST_WORKER_DIE", str(die))

    async def report(job_id: str, status: pb.JobStatus, error: str) -> None:
        pass

    # What is checked is the giving up, not the backoff's length: with the real one (0.5 s,
    # doubling) and three slow starts on a loaded machine the test outgrew its hang guard.
    monkeypatch.setattr(_pool, "_RESPAWN_FIRST", 0.01)
    pool = ProcessPool(1, "worker_fake_jobs:by_metadata", sniffio.current_async_library(), report)
    async with anyio.create_task_group() as tg:
        try:
            with anyio.fail_after(EVENT_WAIT):  # one process start
                await pool.start(tg)
            die.touch()  # from now on each new process exits on import
            os.kill(pool.pids()[0], signal.SIGKILL)
            with anyio.fail_after(EVENT_WAIT):
                while pool.idle:
                    await anyio.sleep(0.05)  # the supervisor hears the death: poll its count
            with anyio.fail_after(EVENT_WAIT * 2):  # three more starts, each dying on import
                with pytest.raises(ChildJobError, match="keep exiting before they are ready"):
                    await pool.run(_context("next"))
            assert pool.free == 0  # the worker takes no job it cannot run
        finally:
            await pool.aclose()


async def test_closing_the_pool_while_a_slot_starts_its_process_leaves_no_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def report(job_id: str, status: pb.JobStatus, error: str) -> None:
        pass

    real_open_process = anyio.open_process
    slow = False
    spawned: list[int] = []
    started, release = anyio.Event(), anyio.Event()

    async def open_process(*args: object, **kwargs: object) -> anyio.abc.Process:
        process = await real_open_process(*args, **kwargs)  # type: ignore[arg-type]
        if slow:  # the process runs, but open_process has not returned yet
            spawned.append(process.pid)
            started.set()
            await release.wait()
        return process

    monkeypatch.setattr(_pool.anyio, "open_process", open_process)
    pool = ProcessPool(1, "worker_fake_jobs:by_metadata", sniffio.current_async_library(), report)
    try:
        # One hang guard per process start (each is a Python importing lkanyio: seconds apiece
        # on a loaded machine; under one guard for all three the test timed out at load 36).
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(EVENT_WAIT):
                await pool.start(tg)
            slow = True
            os.kill(pool.pids()[0], signal.SIGKILL)  # its slot starts another
            with anyio.fail_after(EVENT_WAIT):
                await started.wait()
            closed = anyio.Event()

            async def close() -> None:
                await pool.aclose()
                closed.set()

            tg.start_soon(close)
            with anyio.fail_after(EVENT_WAIT):
                while not pool.closing:
                    await anyio.lowlevel.checkpoint()
            release.set()
            with anyio.fail_after(EVENT_WAIT):  # the process started during the close exits
                await closed.wait()
        with pytest.raises(ProcessLookupError):  # ended and waited for
            os.kill(spawned[0], 0)
    finally:
        for pid in spawned:  # whatever happened above, leave no process running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_cpu_spent_starting_job_processes_is_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # With processes=N the worker registers once its children are ready; the CPU they spent
    # starting (each imports lkanyio and the job's module) made its first report read full
    # (0.94 measured, 3 processes on 2 cores) and the server offered it none of the jobs
    # dispatched before the next report, 2.5 s later (test_worker's drain-under-load test
    # timed out waiting for them).  The worker restarts its measure once the pool is ready.
    from types import SimpleNamespace

    from lkanyio.worker import _load

    clock, own, children = [100.0], [5.0], {11: 0.0, 12: 0.0}
    monkeypatch.setattr(_load, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(_load, "_cpus", lambda: 2)
    monkeypatch.setattr(_load, "_child_seconds", lambda pid: children[pid])
    monkeypatch.setattr(_load.CpuShare, "_process_seconds", lambda self: own[0])
    counted, restarted = _load.CpuShare(children.keys), _load.CpuShare(children.keys)
    # Starting the two processes: 2 s, of which each child burned 1.8 s and the worker 0.4 s.
    clock[0] += 2.0
    children.update({11: 1.8, 12: 1.8})
    own[0] += 0.4
    restarted.restart()
    assert counted() == 1.0  # what the registration reported before
    assert restarted() == 0.0  # and now
    # Then a job runs in one of them: half a CPU of two for the next 2.5 s.
    clock[0] += 2.5
    children[11] += 1.25
    assert restarted() == pytest.approx(0.25)
