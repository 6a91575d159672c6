"""lkanyio's pytest plugin, as a user's suite sees it: child pytest runs in a scratch directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lkanyio.testing import _plugin

RUN_WAIT = 120.0
"""Upper bound for one child pytest run (a hang guard, never a timing assertion)."""
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "test_with_livekit.py"

NAMESPACE_PROBE = '''
import os

import lkanyio

PARENT = int(os.environ["PARENT_NETNS"])


def netns():
    return os.stat("/proc/self/ns/net").st_ino


def test_a_test_without_the_fixtures_leaves_the_namespace_alone():
    assert netns() == PARENT


def test_the_server_fixture(livekit_server, livekit_server_info, livekit_room_name):
    assert (netns() != PARENT) == (livekit_server is not None)
    assert livekit_server_info.url == os.environ.get("LIVEKIT_URL", "ws://10.213.7.1:7880")
    assert livekit_room_name.startswith("test-")
'''

NATIVE_FIRST = '''
import lkanyio


def test_native_core_first():
    lkanyio.AudioSource(48_000, 1)  # starts the native core's threads, outside any namespace


def test_then_the_server(livekit_server_info):
    pass
'''


def _pytest(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not our suite's configuration
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_WAIT,
        check=False,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "PYTEST_"))}
    env["PARENT_NETNS"] = str(os.stat("/proc/self/ns/net").st_ino)
    return {**env, **extra}


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.get_plugin("lkanyio") is _plugin


def test_the_documented_example_passes_with_a_local_server(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path)
    result = _pytest(tmp_path, "--livekit-netns", EXAMPLE.name, env=_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed in " in result.stdout  # on each of anyio's default backends


def test_the_documented_example_passes_with_an_external_server(
    tmp_path: Path, server_info: Any
) -> None:
    shutil.copy(EXAMPLE, tmp_path)
    env = _env(
        LIVEKIT_URL=server_info.url,
        LIVEKIT_API_KEY=server_info.api_key,
        LIVEKIT_API_SECRET=server_info.api_secret,
    )
    result = _pytest(tmp_path, "--livekit-netns", EXAMPLE.name, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed in " in result.stdout  # on each of anyio's default backends


def test_the_namespace_is_entered_only_when_a_test_needs_the_local_server(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_probe.py").write_text(NAMESPACE_PROBE)
    result = _pytest(tmp_path, "test_probe.py", env=_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_an_external_server_needs_no_namespace(tmp_path: Path, server_info: Any) -> None:
    (tmp_path / "test_probe.py").write_text(NAMESPACE_PROBE)
    env = _env(
        LIVEKIT_URL=server_info.url,
        LIVEKIT_API_KEY=server_info.api_key,
        LIVEKIT_API_SECRET=server_info.api_secret,
    )
    result = _pytest(tmp_path, "test_probe.py", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_entering_late_after_native_threads_started_is_refused_naming_the_flag(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_native.py").write_text(NATIVE_FIRST)
    result = _pytest(tmp_path, "test_native.py", env=_env())
    assert result.returncode != 0
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "native threads already run in this process" in result.stdout
    assert "--livekit-netns" in result.stdout
    # With the flag, the namespace is entered at startup and both tests pass.
    result = _pytest(tmp_path, "--livekit-netns", "test_native.py", env=_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
