"""Job entrypoints for the worker's unit tests (tests/unit/test_worker_shell.py): no server.

Module-level, so that a worker's job processes import them by name.  With
``LKANYIO_TEST_WORKER_GATE`` set (a path), a job process importing this module writes its pid
there, then holds its start (it never says ready) until the worker closes its input.  With
``LKANYIO_TEST_WORKER_DIE`` naming a path that exists, a job process exits on import.
"""

from __future__ import annotations

import os
import sys

from lkanyio.worker import JobContext

_GATE = os.environ.get("LKANYIO_TEST_WORKER_GATE")
_DIE = os.environ.get("LKANYIO_TEST_WORKER_DIE")
if _DIE and os.path.exists(_DIE):
    sys.exit(3)
if _GATE:
    with open(_GATE, "w") as gate:
        gate.write(str(os.getpid()))
    sys.stdin.buffer.readline()  # the worker sends nothing to a child that is not ready


async def by_metadata(job: JobContext) -> None:
    """``big``: raise an error whose text is 2 MiB (over the worker's line limit); else return."""
    if job.job.metadata == "big":
        raise ValueError("x" * (2 << 20))
