"""Benchmarks: lkanyio (trio, asyncio) against the official asyncio SDK, in one run.

    ./scripts/bench [--workloads roundtrip,concurrency,audio,data,scale,scale-2nodes] [--sides ...]
                    [--reps 3]

Every side runs in its own process (the native core allows one client per process), against the
same native library and the same livekit-server (started in a private network namespace, as the
tests do).  Prints medians over repetitions and ratios to the official SDK; writes the raw numbers
to bench/results/latest.json.  Exits non-zero if any run of any side failed.

``scale-2nodes`` is the scale workload against a two-node cluster (lkanyio.testing.LocalCluster:
one Redis, two livekit-server nodes): participant i signals through node i % 2.  It runs next to
``scale`` (one node) in the same run; the floor side has no cluster variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIDES = ("lkanyio-trio", "lkanyio-asyncio", "official", "floor")
WORKLOADS = ("roundtrip", "concurrency", "audio", "data", "scale", "scale-2nodes")
# (metric, label, "lower" or "higher" is better)
METRICS: dict[str, list[tuple[str, str, str]]] = {
    "roundtrip": [("p50_us", "p50 µs", "lower"), ("p99_us", "p99 µs", "lower")],
    "concurrency": [
        ("n10_req_s", "N=10 req/s", "higher"),
        ("n100_req_s", "N=100 req/s", "higher"),
        ("n1000_req_s", "N=1000 req/s", "higher"),
        ("n5000_req_s", "N=5000 req/s", "higher"),
    ],
    "audio": [
        ("cpu_s_per_10k_frames", "CPU s / 10k frames", "lower"),
        ("frames_s", "frames/s (real-time paced)", "higher"),
    ],
    "data": [
        ("msgs_s", "msgs/s", "higher"),
        ("p50_us", "one-way p50 µs", "lower"),
        ("p99_us", "one-way p99 µs", "lower"),
    ],
    "scale": [
        ("connect_p50_s", "connect p50 s", "lower"),
        ("connect_p99_s", "connect p99 s", "lower"),
        ("rss_kib_per_participant", "RSS KiB/participant", "lower"),
        ("idle_cpu_fraction", "idle CPU (cores)", "lower"),
    ],
}
METRICS["scale-2nodes"] = METRICS["scale"]
ONLINE = ("data", "scale")
CLUSTERED = ("scale-2nodes",)


def run_side(side: str, workload: str, server: Any, cluster: Any = None) -> dict[str, Any]:
    if workload in CLUSTERED:
        if side == "floor":
            return {"skipped": "no cluster variant"}
        a, b = cluster.nodes
        cmd = [sys.executable, str(HERE / "worker.py"), side, "scale", "--url2", b.info.url]
        server = a.info
    else:
        cmd = [sys.executable, str(HERE / "worker.py"), side, workload]
    if server is not None:
        cmd += ["--url", server.url, "--key", server.api_key, "--secret", server.api_secret]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 600 s"}
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    try:
        result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return {"error": f"no result on stdout: {proc.stdout[-200:]!r}"}
    missing = [metric for metric, _label, _better in METRICS[workload] if metric not in result]
    if missing:
        return {"error": f"no {', '.join(missing)} in {result}"}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    sides = [s for s in args.sides.split(",") if s]
    unknown = sorted(set(workloads) - set(WORKLOADS)) + sorted(set(sides) - set(SIDES))
    if unknown:
        parser.error(f"unknown workload or side: {', '.join(unknown)}")

    server_info = None
    stack = None
    if any(w in ONLINE for w in workloads):
        from lkanyio.testing import LocalServer, enter_private_netns, external_server_from_env

        server_info = external_server_from_env()
        if server_info is None:
            node_ip = enter_private_netns()
            stack = LocalServer(node_ip=node_ip)
            stack.start()
            server_info = stack.info
    cluster = None
    if any(w in CLUSTERED for w in workloads):
        from lkanyio.testing import LocalCluster, enter_private_netns

        enter_private_netns()
        cluster = LocalCluster(nodes=2)
        cluster.start()

    started = time.monotonic()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for workload in workloads:
            results[workload] = {}
            for side in sides:
                # One run where a run is minutes long: scale, and the official SDK's
                # concurrency (its quadratic fan-out takes ~2 min for one batch of 5,000).
                once = workload.startswith("scale") or (workload == "concurrency" and side == "official")
                reps = 1 if once else args.reps
                runs = [run_side(side, workload, server_info, cluster) for _ in range(reps)]
                results[workload][side] = runs
                print(f"  {workload:12} {side:16} {runs}", file=sys.stderr, flush=True)
    finally:
        if stack is not None:
            stack.stop()
        if cluster is not None:
            cluster.close()
    elapsed = time.monotonic() - started

    def median(workload: str, side: str, metric: str) -> float | None:
        values = [r[metric] for r in results[workload].get(side, []) if metric in r]
        if results[workload].get(side) and all("skipped" in r for r in results[workload][side]):
            return None
        return statistics.median(values) if values else None

    def cell(workload: str, side: str, metric: str) -> str:
        v = median(workload, side, metric)
        if v is None:
            runs = results[workload].get(side, [])
            return "FAILED" if runs and not all("skipped" in r for r in runs) else "–"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"

    def ratio(v: float | None, ref: float | None) -> str:
        return "–" if v is None or not ref else f"{v / ref:.2f}×"

    lines = [
        "| workload | metric | lkanyio trio | lkanyio asyncio | official | floor | trio/official | asyncio/official |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload in workloads:
        for metric, label, _better in METRICS[workload]:
            off = median(workload, "official", metric)
            cells = " | ".join(cell(workload, side, metric) for side in SIDES)
            lines.append(
                f"| {workload} | {label} | {cells} "
                f"| {ratio(median(workload, 'lkanyio-trio', metric), off)} "
                f"| {ratio(median(workload, 'lkanyio-asyncio', metric), off)} |"
            )
    table = "\n".join(lines)
    print(table)
    print(
        f"\n(medians of {args.reps} runs per side; 1 run: scale, and the official SDK's "
        f"concurrency; total {elapsed:.0f} s)"
    )
    failures = [
        f"{workload} {side}: {run['error']}"
        for workload, by_side in results.items()
        for side, runs in by_side.items()
        for run in runs
        if "error" in run
    ]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps(
            {"results": results, "table": table, "seconds": elapsed, "failures": failures},
            indent=2,
        )
        + "\n"
    )
    if failures:
        print(f"\n{len(failures)} failed run(s):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
