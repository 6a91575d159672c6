"""A job process of a worker's pool: ``python -m lkanyio.worker._child TARGET BACKEND``.

It runs one job at a time on its own event loop and its own native core (one per process, as the
native core must be).  The worker speaks to it in JSON lines: commands on the child's stdin
(``run``, ``cancel``; end of input: leave), answers on the file descriptor that was the child's
stdout (``ready``, ``ended``).  The child moves its stdout onto its stderr first, so what the
job prints cannot break the protocol.  ``TARGET`` names the entrypoint: ``module:qualname``, or
``path/to/file.py:qualname`` for a function of the program's main script (loaded under another
name, so its ``if __name__ == "__main__":`` block does not run again).
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import importlib
import importlib.util
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import anyio
from livekit.protocol import agent as pb

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._job import JobContext

__all__ = ["load_target", "main"]

_REPORT_BOUND = 3.0
"""Seconds a job waits for the worker to have sent its status before it leaves its room."""


def load_target(target: str) -> Callable[[JobContext], Awaitable[None]]:
    """The entrypoint ``target`` names (``module:qualname`` or ``file.py:qualname``)."""
    where, _, qualname = target.rpartition(":")
    if where.endswith(".py"):
        spec = importlib.util.spec_from_file_location("__lkanyio_main__", where)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["__lkanyio_main__"] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    value: Any = module
    for part in qualname.split("."):
        value = getattr(value, part)
    return value  # type: ignore[no-any-return]


class _Channel:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, **message: Any) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:  # short lines to a pipe the worker always reads: a blocking write is brief
            data = data[os.write(self._fd, data):]


async def _serve(target: str, channel: _Channel) -> None:
    from .. import statistics
    from .._errors import ConnectionLostError
    from ._job import JobContext, describe

    logger = logging.getLogger("lkanyio.worker")

    entrypoint = load_target(target)
    channel.send(event="ready", pid=os.getpid())
    running: JobContext | None = None
    reported = anyio.Event()

    async def report(status: pb.JobStatus, error: str) -> None:
        # Before the job leaves its room: wait until the worker has sent the status on.
        nonlocal reported
        reported = anyio.Event()
        channel.send(event="status", status=pb.JobStatus.Name(status), error=error)
        with anyio.move_on_after(_REPORT_BOUND):
            await reported.wait()

    async def run(command: dict[str, Any]) -> None:
        nonlocal running
        job = pb.Job.FromString(base64.b64decode(command["job"]))
        job_scope = anyio.CancelScope()
        running = context = JobContext(job, url=command["url"], token=command["token"],
                                       worker_id=command["worker_id"], scope=job_scope,
                                       report=report)
        error = ""
        with job_scope:
            try:
                await entrypoint(context)
            except Exception as exc:
                if not (context.room_ended and isinstance(exc, ConnectionLostError)):
                    logger.exception("job %s failed", job.id)
                    error = describe(exc)
        running = None
        gc.collect()  # what the job left in reference cycles is not a leak
        channel.send(event="ended", error=error, room_ended=context.room_ended,
                     cancelled=job_scope.cancelled_caught,
                     statistics=dataclasses.asdict(statistics()))

    stdin = anyio.wrap_file(sys.stdin.buffer)
    async with anyio.create_task_group() as tg:
        async for line in stdin:
            command = json.loads(line)
            if command["cmd"] == "run":
                tg.start_soon(run, command)
            elif command["cmd"] == "cancel" and running is not None:
                # The status the worker chose, reported before the job leaves its room.
                status = {"JS_SUCCESS": pb.JobStatus.JS_SUCCESS,
                          "JS_FAILED": pb.JobStatus.JS_FAILED}.get(command.get("status", ""))
                running._end(status, str(command.get("error", "")))
            elif command["cmd"] == "reported":
                reported.set()
        tg.cancel_scope.cancel()  # the worker closed our input: leave


def main(argv: list[str]) -> None:
    """Run the job process (the worker starts it; not for direct use)."""
    target, backend = argv[1], argv[2]
    channel = _Channel(os.dup(1))
    os.dup2(2, 1)  # what the job prints goes to stderr, not into the protocol
    anyio.run(_serve, target, channel, backend=backend)


if __name__ == "__main__":
    main(sys.argv)
