"""Server API calls per second: lkanyio.api on trio and asyncio against livekit-api on asyncio.

    .venv/bin/python bench/api.py [--calls 2000] [--reps 3]       (root: a private namespace)

One livekit-server (in a private network namespace, as the tests run it, or the one
LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET name), one room; each side runs in its own process
and makes RoomService ``ListParticipants`` calls on that room: one after another (calls/s and the
client's CPU µs per call) and 10 at a time (calls/s).  Prints medians over the repetitions and
ratios to livekit-api, and writes the raw numbers to bench/results/api.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sides import fmt, run_interleaved, write_results
from sides import medians as median_of

HERE = Path(__file__).resolve().parent
SIDES = ("lkanyio-trio", "lkanyio-asyncio", "livekit-api")
ROOM = "bench-api"
CONCURRENT = 10
METRICS = (
    ("seq_calls_s", "sequential calls/s", "higher"),
    ("seq_cpu_us", "client CPU µs / call", "lower"),
    ("conc_calls_s", f"{CONCURRENT} at a time calls/s", "higher"),
)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _side(side: str, url: str, key: str, secret: str, calls: int) -> dict[str, float]:
    """Run in the child: the measurements of one side."""
    if side == "livekit-api":
        import asyncio

        from livekit import api

        async def run_official() -> dict[str, float]:
            async with api.LiveKitAPI(url, key, secret) as client:
                return await _measure(client, api, calls, asyncio.gather)

        return asyncio.run(run_official())
    import anyio

    from lkanyio import api as ours

    async def wait(coroutine: Any) -> None:
        await coroutine

    async def gather(*coroutines: Any) -> None:
        async with anyio.create_task_group() as tg:
            for coroutine in coroutines:
                tg.start_soon(wait, coroutine)

    async def run_ours() -> dict[str, float]:
        async with ours.LiveKitAPI(url, key, secret) as client:
            return await _measure(client, ours, calls, gather)

    return anyio.run(run_ours, backend=side.removeprefix("lkanyio-"))


async def _measure(client: Any, api: Any, calls: int, gather: Any) -> dict[str, float]:
    request = api.ListParticipantsRequest(room=ROOM)
    for _ in range(50):  # warm-up: connections open, code paths loaded
        await client.room.list_participants(request)
    cpu, start = _cpu(), time.perf_counter()
    for _ in range(calls):
        await client.room.list_participants(request)
    seq_s, seq_cpu = time.perf_counter() - start, _cpu() - cpu

    async def worker() -> None:
        for _ in range(calls // CONCURRENT):
            await client.room.list_participants(request)

    start = time.perf_counter()
    await gather(*(worker() for _ in range(CONCURRENT)))
    conc_s = time.perf_counter() - start
    return {
        "seq_calls_s": calls / seq_s,
        "seq_cpu_us": seq_cpu / calls * 1e6,
        "conc_calls_s": calls // CONCURRENT * CONCURRENT / conc_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # the child's role
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        url, key, secret = json.loads(args.server)
        print(json.dumps(_side(args.side, url, key, secret, args.calls)))
        return 0

    from lkanyio.testing import create_room

    runs = run_interleaved(
        Path(__file__), SIDES, args.reps, ["--calls", str(args.calls)],
        lambda info: [info.http_url, info.api_key, info.api_secret],
        prepare=lambda info: create_room(info, ROOM),
    )
    medians = median_of(runs, METRICS)
    print("| workload | metric | lkanyio trio | lkanyio asyncio | livekit-api | trio/livekit-api | asyncio/livekit-api |")
    print("|---|---|---|---|---|---|---|")
    for metric, label, _better in METRICS:
        row = [medians[s][metric] for s in SIDES]
        ratios = [f"{v / row[2]:.2f}×" for v in row[:2]]
        print(f"| roomservice | {label} | {' | '.join(fmt(v) for v in row)} | {' | '.join(ratios)} |")
    write_results(HERE / "results" / "api.json", {"calls": args.calls, "reps": args.reps}, runs,
                  medians)
    return 0


if __name__ == "__main__":
    sys.exit(main())
