"""Agent dispatch through one lkanyio worker: dispatch-to-joined latency and jobs per second.

    .venv/bin/python bench/agents.py [--joins 20] [--jobs 50] [--reps 3]   (root: a namespace)

One livekit-server (in a private network namespace, as the tests run it, or the one
LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET name).  Each side (lkanyio on trio, on asyncio) runs
in its own process: a Worker, and in the same process the AgentDispatch calls that feed it.
``joins`` dispatches one after another, each to a new room, timed from the CreateDispatch call to
the entrypoint being inside its room (``job.connect()`` entered): p50 and the largest.  Then
``jobs`` dispatches at once, to as many rooms, entrypoints that return at once: jobs started per
second from the first call to the last entrypoint's start.  Prints medians over the repetitions
and writes the raw numbers to bench/results/agents.json.  livekit-agents' worker is not compared:
it is not installed here (it is not among the dev dependencies).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sides import fmt, run_interleaved, write_results
from sides import medians as median_of

HERE = Path(__file__).resolve().parent
SIDES = ("lkanyio-trio", "lkanyio-asyncio")
METRICS = (
    ("join_p50_ms", "dispatch to joined, p50 ms", "lower"),
    ("join_max_ms", "dispatch to joined, largest ms", "lower"),
    ("jobs_s", "jobs started per second", "higher"),
    ("calls_s", "CreateDispatch calls answered per second (same batch)", "higher"),
)


def _side(side: str, url: str, key: str, secret: str, joins: int, jobs: int) -> dict[str, float]:
    """Run in the child: the measurements of one side."""
    import anyio

    from lkanyio import api
    from lkanyio.worker import JobContext, Worker

    name = f"bench-{uuid.uuid4().hex[:8]}"
    started: dict[str, float] = {}
    changed = anyio.Event()

    async def entrypoint(job: JobContext) -> None:
        nonlocal changed
        if job.job.metadata == "join":
            async with job.connect():
                started[job.job.room.name] = time.perf_counter()
                changed.set()
                changed = anyio.Event()
        else:
            started[job.job.room.name] = time.perf_counter()
            changed.set()
            changed = anyio.Event()

    async def wait_for(count: int) -> None:
        while len(started) < count:
            await changed.wait()

    async def run() -> dict[str, float]:
        async with Worker(entrypoint, url=url, api_key=key, api_secret=secret, agent_name=name,
                          load=lambda worker: 0.0, drain_timeout=0) as worker, \
                anyio.create_task_group() as tg, api.LiveKitAPI(url, key, secret) as lkapi:
            tg.start_soon(worker.serve)
            await worker.wait_registered()

            async def dispatch(room: str, metadata: str) -> None:
                await lkapi.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(agent_name=name, room=room, metadata=metadata))

            rooms = []
            latencies = []
            for i in range(joins + 2):  # two warm-ups
                room = f"bench-join-{uuid.uuid4().hex[:8]}"
                rooms.append(room)
                begin = time.perf_counter()
                await dispatch(room, "join")
                await wait_for(len(started) + 1)
                if i >= 2:
                    latencies.append(started[room] - begin)
            count = len(started)
            batch = [f"bench-jobs-{uuid.uuid4().hex[:8]}" for _ in range(jobs)]
            begin = time.perf_counter()
            async with anyio.create_task_group() as calls:
                for room in batch:
                    calls.start_soon(dispatch, room, "quick")
            calls_s = jobs / (time.perf_counter() - begin)
            await wait_for(count + jobs)
            jobs_s = jobs / (max(started[room] for room in batch) - begin)
            for room in rooms + batch:
                await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
            tg.cancel_scope.cancel()
        latencies.sort()
        return {
            "join_p50_ms": statistics.median(latencies) * 1000,
            "join_max_ms": latencies[-1] * 1000,
            "jobs_s": jobs_s,
            "calls_s": calls_s,
        }

    result: Any = anyio.run(run, backend=side.removeprefix("lkanyio-"))
    return dict(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # the child's role
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        url, key, secret = json.loads(args.server)
        print(json.dumps(_side(args.side, url, key, secret, args.joins, args.jobs)))
        return 0
    runs = run_interleaved(
        Path(__file__), SIDES, args.reps, ["--joins", str(args.joins), "--jobs", str(args.jobs)],
        lambda info: [info.url, info.api_key, info.api_secret],
    )
    medians = median_of(runs, METRICS)
    print("| workload | metric | lkanyio trio | lkanyio asyncio |")
    print("|---|---|---|---|")
    for metric, label, _better in METRICS:
        row = [medians[s][metric] for s in SIDES]
        print(f"| agent dispatch | {label} | {' | '.join(fmt(v) for v in row)} |")
    write_results(HERE / "results" / "agents.json",
                  {"joins": args.joins, "jobs": args.jobs, "reps": args.reps}, runs, medians)
    return 0


if __name__ == "__main__":
    sys.exit(main())
