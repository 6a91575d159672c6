"""A worker in a process of its own, for tests/integration/test_worker.py.

    python worker_peer.py URL KEY SECRET AGENT_NAME BACKEND LOAD

It serves with a constant load, holds each job without joining its room, and prints JSON lines:
``{"registered": worker_id}``, ``{"offer": job_id}``, ``{"job": job_id}``.  It drains and leaves
when its standard input ends.
"""

from __future__ import annotations

import json
import sys

import anyio

from lkanyio.worker import Job, JobAcceptance, JobContext, Worker


def say(**message: str) -> None:
    print(json.dumps(message), flush=True)


async def hold(job: JobContext) -> None:
    say(job=job.id)
    await anyio.sleep_forever()


def accept(job: Job) -> JobAcceptance:
    say(offer=job.id)
    return JobAcceptance(identity=f"peer-{job.id}")


async def main(url: str, key: str, secret: str, name: str, load: float) -> None:
    async with Worker(hold, url=url, api_key=key, api_secret=secret, agent_name=name,
                      accept=accept, load=lambda worker: load, drain_timeout=0) as worker:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.serve)
            say(registered=await worker.wait_registered())
            await anyio.wrap_file(sys.stdin).read()  # until the test closes our input
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    url, key, secret, name, backend, load = sys.argv[1:]
    anyio.run(main, url, key, secret, name, float(load), backend=backend)
