"""fork() while native events flood in: the child neither deadlocks nor steals the parent's wakeups.

Native threads take the shim's queue lock for every event, so a fork can catch the lock held; a
child that then asks for :func:`lkanyio.statistics` would wait forever on a lock nobody in it will
release.  A child forked from inside a running loop keeps that loop's reader on the shim's
wakeup fd (the epoll set is shared with the parent), and draining it there would swallow the
wakeup the parent is waiting for: the parent's requests would never complete.  Offline: no
server needed.  Runs in a child interpreter, so the forks never touch pytest's own process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD_WAIT = 120.0
"""A hang guard for the whole script, never a timing assertion."""

_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time, warnings
    import anyio
    import lkanyio
    from lkanyio._native._bridge import get_bridge

    warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process
    FORKS = 60
    HANG = 10.0  # a child still running after this is deadlocked

    def in_child() -> int:
        stats = lkanyio.statistics()  # takes the shim's queue lock
        if not stats.started:
            return 5
        try:
            lkanyio.AudioSource(48_000, 1)
        except lkanyio.LiveKitError as exc:
            return 0 if "fork" in str(exc) else 6
        return 7

    def child_then_exit() -> None:
        code = in_child()
        # What the inherited loop's reader on the wakeup fd would run if it fired here (its
        # epoll set is the parent's): it must leave the parent's wakeup alone.
        get_bridge()._pump()
        os._exit(code)

    async def main() -> int:
        async with lkanyio.AudioSource(48_000, 1) as source, \\
                lkanyio.LocalAudioTrack.create_audio_track("t", source) as track:
            done = 0
            failed = 0

            async def one() -> None:
                nonlocal done, failed
                try:
                    await track.get_stats()
                except lkanyio.NativeError:
                    done += 1  # the expected answer: an unpublished track has no stats
                except BaseException:
                    failed += 1
                    raise

            pids = []
            try:
                with anyio.fail_after(60):
                    async with anyio.create_task_group() as tg:
                        for round_ in range(FORKS):
                            for _ in range(50):
                                tg.start_soon(one)
                            await anyio.sleep(0)
                            pid = os.fork()
                            if pid == 0:
                                child_then_exit()
                            pids.append(pid)
                            await anyio.sleep(0.002)
                hung = bad = 0
                deadline = time.monotonic() + HANG
                while pids:
                    got, status = os.waitpid(pids[0], os.WNOHANG)
                    if got:
                        pids.pop(0)
                        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                            bad += 1
                            print("child status", status, flush=True)
                    elif time.monotonic() > deadline:
                        hung += 1
                        stuck = pids.pop(0)
                        os.kill(stuck, signal.SIGKILL)
                        os.waitpid(stuck, 0)
                    else:
                        time.sleep(0.01)
            finally:  # whatever failed, no child outlives this script
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            forks = FORKS
            print(f"forks={forks} hung={hung} bad={bad} answered={done} failed={failed}",
                  flush=True)
            return 0 if hung == bad == failed == 0 and done == FORKS * 50 else 1

    sys.exit(anyio.run(main, backend=sys.argv[1]))
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fork_during_an_event_flood(backend: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, backend],
        capture_output=True,
        text=True,
        timeout=CHILD_WAIT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"forks=60 hung=0 bad=0 answered={60 * 50} failed=0" in proc.stdout
