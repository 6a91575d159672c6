"""livekit-agents' worker, for bench/agents.py to compare lkanyio.worker with (its own process).

    <bench venv>/bin/python bench/agents_peer.py EXECUTOR AGENT_NAME      (bench/agents.py runs it)

Runs under the venv of scripts/ensure-bench-venv, where livekit-agents is installed and lkanyio
is not: it imports only livekit-agents and the standard library.  EXECUTOR is ``process``
(livekit-agents' default on Linux: each job in a process of its own, some kept warm) or
``thread``.  The server is LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET; what happens is sent
to LKANYIO_BENCH_REPORT (``host:port``, UDP) as bench/agents.py's lkanyio worker sends it, with
the same names at the same points:

- ``ready``: the worker is registered (the server can dispatch to it);
- ``offer``: the server asked whether it takes a job (before the answer);
- ``entry``: the job's entrypoint started;
- ``joined``: ``ctx.connect()`` returned (the job's participant is in its room);
- ``end``: the job ended (its room was deleted, or a ``quick`` job at once).

A job whose metadata is ``join`` joins its room and stays until the room ends; any other returns
at once (``ctx.shutdown()``: livekit-agents keeps a job that never connected until it is told).
The worker reports no load (``load_fnc`` 0), as lkanyio's does in the bench, so the server's
choice is never held back by this busy machine's CPU.  SIGTERM closes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time

from livekit import agents

_REPORT = os.environ.get("LKANYIO_BENCH_REPORT", "127.0.0.1:9")
_HOST, _PORT = _REPORT.rsplit(":", 1)
_SOCK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def report(event: str, key: str) -> None:
    """One datagram: what happened, to which room (or agent), when (wall clock, seconds)."""
    data = json.dumps({"ev": event, "key": key, "t": time.time()}).encode()
    _SOCK.sendto(data, (_HOST, int(_PORT)))


async def request(req: agents.JobRequest) -> None:
    report("offer", req.room.name)
    await req.accept()  # its identity is agent-<job id>, as lkanyio's default


async def entrypoint(ctx: agents.JobContext) -> None:
    room = ctx.job.room.name
    report("entry", room)

    async def ended() -> None:
        report("end", room)

    ctx.add_shutdown_callback(ended)
    if ctx.job.metadata == "join":
        await ctx.connect()
        report("joined", room)
        return  # the job goes on until its room ends (livekit-agents shuts it down then)
    ctx.shutdown()


def no_load() -> float:
    return 0.0


async def main(executor: str, agent_name: str) -> None:
    kind = {"process": agents.JobExecutorType.PROCESS, "thread": agents.JobExecutorType.THREAD}
    server = agents.AgentServer(
        job_executor_type=kind[executor],
        load_fnc=no_load,
        port=0,  # its health-check HTTP server: any free port
    )
    server.rtc_session(entrypoint, agent_name=agent_name, on_request=request)
    server.on("worker_registered", lambda *_: report("ready", agent_name))
    loop = asyncio.get_running_loop()
    closing: set[asyncio.Task[None]] = set()
    loop.add_signal_handler(signal.SIGTERM, lambda: closing.add(loop.create_task(server.aclose())))
    await server.run(devmode=False)  # production mode, as `python agent.py start` runs it
    await asyncio.gather(*closing)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,  # as bench/agents.py's workers
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
