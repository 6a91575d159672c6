"""Job entrypoints for workers with job processes (tests/integration/test_worker.py): module-level,
so that the children import them by name."""

from __future__ import annotations

import os

import anyio

from lkanyio.worker import JobContext


async def join_and_show_pid(job: JobContext) -> None:
    """Join, show this process's id as an attribute, stay until cancelled or the room ends."""
    async with job.connect() as room:
        await room.local_participant.set_attributes({"pid": str(os.getpid())})
        if job.job.metadata == "fail":
            raise ValueError(f"boom in process {os.getpid()}")
        if job.job.metadata == "quick":
            return
        await anyio.sleep_forever()


async def wait_forever(job: JobContext) -> None:
    """Hold the job without joining its room (a load test's job)."""
    await anyio.sleep_forever()
