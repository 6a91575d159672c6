"""One life cycle for the test services (livekit-server, Redis, coturn): a child process.

Each service says how it is started (:meth:`Daemon._command`) and how it is seen to serve
(:meth:`Daemon.answers`); starting, waiting until it answers, stopping, killing, its log and its
scratch directory are the same for all three, and live here.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Daemon", "kill_process", "stop_process"]

READY_TIMEOUT: Final = 30.0
"""Seconds a service may take to answer after it was started."""


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a harness process (SIGTERM, then SIGKILL after 10 s) and reap it; None is a no-op."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill a harness process with SIGKILL and reap it; None or an ended one is a no-op."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


class Daemon:
    """A service the tests run as a child process, with a scratch directory and a log file.

    A sync context manager: entering starts it, leaving stops it and removes its directory
    (as :meth:`close` does).
    """

    NAME: ClassVar[str] = "daemon"
    """The program's name in error messages."""

    def __init__(self, *, scratch_prefix: str, log_name: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=scratch_prefix))
        self.log_path = self._dir / log_name
        self._proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:  # pragma: no cover - every service has its own
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        """The child's environment (default: this process's)."""
        return None

    def answers(self) -> bool:  # pragma: no cover - every service has its own
        """Whether the service answers right now."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the service and wait until it answers.

        Raises:
            RuntimeError: another program already answers where it would (its port is taken),
                or it exited or did not answer in time (the log's tail is in the message).
        """
        if self.running:
            return
        if self.answers():  # its readiness check would pass on the other program
            raise RuntimeError(
                f"{self.NAME}: another program already answers where it would listen "
                "(a port in use in this network namespace)"
            )
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
            )
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.NAME} exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if self.answers():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"{self.NAME} did not answer within {READY_TIMEOUT} s:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s) and reap it."""
        proc, self._proc = self._proc, None
        stop_process(proc)

    def kill(self) -> None:
        """Kill the process with SIGKILL (for fault tests) and reap it."""
        proc, self._proc = self._proc, None
        kill_process(proc)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the process's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """Stop the process and remove its scratch directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
