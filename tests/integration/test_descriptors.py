"""A join that fails for want of file descriptors says so (in a child with a low limit).

The test worker's own limit is never lowered: a child process joins one room, lowers its soft
``RLIMIT_NOFILE`` to the descriptors it has open, joins a second room (which fails), restores
the limit and leaves.  Before the fix the error was the native core's words alone:
"engine: signal failure: transport connection error: IO error: Too many open files (os error
24)" - and when the peer connection rather than the WebSocket runs short, only "wait_pc_connection
timed out" after 15 s per attempt (tests/unit/test_descriptor_hint.py covers that case).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import pytest

from _util import TokenFactory

pytestmark = pytest.mark.anyio

CHILD = r"""
import json, os, resource, sys
import anyio, lkanyio

url, first, second, backend = sys.argv[1:5]


async def main():
    async with lkanyio.connect(url, first):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        in_use = len(os.listdir("/proc/self/fd")) - 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use, hard))  # none free
        try:
            async with lkanyio.connect(url, second):
                outcome = {"joined": True}
        except lkanyio.ConnectError as exc:
            outcome = {"error": str(exc), "in_use": in_use}
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    outcome["live_handles"] = lkanyio.statistics().live_handles
    print(json.dumps(outcome), flush=True)


anyio.run(main, backend=backend)
"""


async def test_a_join_out_of_descriptors_says_so(
    server_info: Any, token_factory: TokenFactory, room_name: str, anyio_backend: str
) -> None:
    argv = [
        sys.executable,
        "-c",
        CHILD,
        server_info.url,
        token_factory("first", room_name),
        token_factory("second", room_name),
        anyio_backend,
    ]
    with anyio.fail_after(120):  # a hang guard: the native core retries 3 times
        result = await anyio.run_process(argv, check=False)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    outcome = json.loads(result.stdout.decode().splitlines()[-1])
    error = outcome["error"]
    assert "Too many open files" in error  # the native core's own words stay
    assert "this process ran out of file descriptors" in error
    assert f"limit {outcome['in_use']}" in error
    assert "ulimit -n" in error
    assert "RLIMIT_NOFILE" in error
    assert outcome["live_handles"] == 0
