"""Agent workers on livekit-server's own dispatch, with structured concurrency (trio or asyncio).

::

    import anyio
    from lkanyio.worker import JobContext, Worker

    async def entrypoint(job: JobContext) -> None:
        async with job.connect() as room:
            ...  # the job: it runs while this block does

    async def main() -> None:
        async with Worker(entrypoint, agent_name="echo") as worker:
            await worker.serve()  # until cancelled; then it drains

    anyio.run(main, backend="trio")

The worker registers with the server (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``,
``LIVEKIT_API_SECRET`` by default) over its ``/agent`` WebSocket and takes the jobs the server
dispatches to its ``agent_name``: a token's room configuration
(``RoomConfiguration(agents=[RoomAgentDispatch(agent_name="echo")])``) or the AgentDispatch
service (:class:`lkanyio.api.AgentDispatchService`).  Run as many workers, on as many machines, as
the load needs: the server spreads jobs over them by the load each reports.
"""

from __future__ import annotations

import contextlib as _contextlib

from livekit.protocol.agent import Job as Job
from livekit.protocol.agent import JobStatus as JobStatus
from livekit.protocol.agent import JobType as JobType

from .._core._worker import JobAcceptance as JobAcceptance
from .._errors import WorkerError as WorkerError
from ._job import JobContext as JobContext
from ._pool import JobProcessStatistics as JobProcessStatistics
from ._worker import Worker as Worker
from ._worker import WorkerStatistics as WorkerStatistics

__all__ = [
    "Job",
    "JobAcceptance",
    "JobContext",
    "JobProcessStatistics",
    "JobStatus",
    "JobType",
    "Worker",
    "WorkerError",
    "WorkerStatistics",
]


def _fix_module_names() -> None:
    """Show this package's own classes as ``lkanyio.worker.X`` in reprs and tracebacks."""
    for name in ("JobAcceptance", "JobContext", "JobProcessStatistics", "Worker",
                 "WorkerStatistics"):
        with _contextlib.suppress(AttributeError, TypeError):
            globals()[name].__module__ = __name__


_fix_module_names()
del _fix_module_names
