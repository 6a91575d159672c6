"""Without root: the demo, the CLI and the pytest plugin as an ordinary user (``nobody``).

Each runs as a child process under ``setpriv`` with a home directory and a copy of the
livekit-server binary that ``nobody`` can read; it enters a user namespace and a network
namespace of its own (``unshare(CLONE_NEWUSER | CLONE_NEWNET)``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lkanyio.testing import server_binary

RUN_WAIT = 120.0
"""Upper bound for one child (a hang guard, never a timing assertion)."""
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "test_with_livekit.py"


def _real_root() -> bool:
    """Root of the initial user namespace (able to become ``nobody``)."""
    fields = Path("/proc/self/uid_map").read_text().split()
    return os.geteuid() == 0 and fields[:2] == ["0", "0"] and fields[2] == "4294967295"


# Outside CI, a run without root skips these (the suite itself then runs rootless, and every
# integration test checks that).  In CI they always run: without root there they fail, loudly.
pytestmark = pytest.mark.skipif(
    not _real_root() and not os.environ.get("CI"),
    reason="the suite itself runs without root here: every integration test checks this",
)


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """A directory ``nobody`` owns, with a livekit-server binary it can execute."""
    path = Path(tempfile.mkdtemp(prefix="lkanyio-nobody-", dir="/tmp"))
    try:
        shutil.copy(server_binary(), path / "livekit-server")
        shutil.chown(path, "nobody", "nogroup")
        path.chmod(0o755)
        (path / "livekit-server").chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_nobody(
    home: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "PYTEST_"))}
    env.update(HOME=str(home), LKANYIO_SERVER_BIN=str(home / "livekit-server"))
    env.update(extra_env or {})
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_WAIT,
        check=False,
    )


def test_the_demo_runs_as_an_ordinary_user(home: Path) -> None:
    result = _as_nobody(home, sys.executable, "-m", "lkanyio.demo", "--backend", "asyncio")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "started livekit-server at ws://10.213.7.1:7880 in a private network namespace"
    )
    assert lines[-2:] == [
        "alice: OK, saw all bob sent (data, metadata, name, attributes, dtmf, tone)",
        "bob: OK, saw all alice sent (data, metadata, name, attributes, dtmf, tone)",
    ]


def test_the_plugin_runs_a_users_suite_as_an_ordinary_user(home: Path) -> None:
    suite = home / "suite"
    suite.mkdir()
    shutil.copy(EXAMPLE, suite)
    (suite / "pytest.ini").write_text("[pytest]\n")
    shutil.chown(suite, "nobody", "nogroup")
    result = _as_nobody(
        home, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--livekit-netns",
        str(suite / EXAMPLE.name),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed in " in result.stdout


def test_serve_local_runs_a_command_as_an_ordinary_user(home: Path) -> None:
    # A shell, not this venv's Python: that one may live where only the real root can look.
    probe = 'echo "$LIVEKIT_URL" "$(id -u)"'
    result = _as_nobody(
        home, sys.executable, "-m", "lkanyio", "serve-local", "--", "sh", "-c", probe
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ws://10.213.7.1:7880", "0"]  # root inside, nobody outside


def test_a_kernel_refusing_user_namespaces_is_named_with_the_alternatives(home: Path) -> None:
    refuse = (
        "import errno, lkanyio.testing._server as s\n"
        "s._unshare = lambda flags: errno.EPERM\n"  # what a kernel with them disabled answers
        "s.enter_private_netns()\n"
    )
    result = _as_nobody(home, sys.executable, "-c", refuse)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("RuntimeError: this kernel does not let unprivileged users create")
    assert "run as root" in message
    assert "LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in message


def test_a_process_with_threads_cannot_enter_without_root_and_is_told_why(home: Path) -> None:
    threaded = (
        "import threading, time, lkanyio.testing as t\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "t.enter_private_netns(allow_threads=True)\n"
    )
    result = _as_nobody(home, sys.executable, "-c", threaded)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert "refuses that to a process with several threads" in message, message
    assert "before any thread starts" in message



UNIT = Path(__file__).resolve().parents[1] / "unit"
IN_PROCESS_UNIT_TESTS = ["test_shim_queue.py", "test_threads.py"]
"""Unit tests that start no further Python: this machine's interpreter lives under /root (mode
700), which ``setpriv`` can exec but an unprivileged process cannot exec again."""


def test_the_unit_suite_needs_no_root_namespace_or_server(home: Path) -> None:
    # Collecting tests/unit imports every unit module and tests/conftest.py but never the
    # integration conftest that enters the namespace; then some run, native core included.
    root = UNIT.parents[1]
    pytest_ = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
               "--rootdir", str(root), "-c", str(root / "pyproject.toml")]  # fmt: skip
    env = {"HYPOTHESIS_STORAGE_DIRECTORY": str(home / "hypothesis")}  # the checkout is root's
    collected = _as_nobody(home, *pytest_, "--collect-only", "-q", str(UNIT), extra_env=env)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "tests/unit/test_audio_offline.py::" in collected.stdout
    tests = [str(UNIT / name) for name in IN_PROCESS_UNIT_TESTS]
    # Not the real-time ones: this runs in the parallel phase, at its lower CPU priority.
    ran = _as_nobody(home, *pytest_, "-q", "-m", "not realtime", *tests, extra_env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert re.search(r"\b[1-9][0-9]* passed\b", ran.stdout), ran.stdout
    assert "failed" not in ran.stdout
