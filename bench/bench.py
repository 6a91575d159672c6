"""Benchmarks: lkanyio (trio, asyncio) against the official asyncio SDK, in one run.

    ./scripts/bench [--workloads roundtrip,concurrency,audio,data,scale] [--reps 3]

Every side runs in its own process (the native core allows one client per process), against the
same native library and the same livekit-server (started in a private network namespace, as the
tests do).  Prints medians over repetitions and ratios to the official SDK; writes the raw numbers
to bench/results/latest.json.
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
WORKLOADS = ("roundtrip", "concurrency", "audio", "data", "scale")
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
ONLINE = ("data", "scale")


def run_side(side: str, workload: str, server: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "worker.py"), side, workload]
    if server is not None:
        cmd += ["--url", server.url, "--key", server.api_key, "--secret", server.api_secret]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]

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

    started = time.monotonic()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for workload in workloads:
            results[workload] = {}
            for side in SIDES:
                reps = 1 if workload == "scale" else args.reps
                runs = [run_side(side, workload, server_info) for _ in range(reps)]
                results[workload][side] = runs
                print(f"  {workload:12} {side:16} {runs}", file=sys.stderr, flush=True)
    finally:
        if stack is not None:
            stack.stop()
    elapsed = time.monotonic() - started

    def median(workload: str, side: str, metric: str) -> float | None:
        values = [r[metric] for r in results[workload].get(side, []) if metric in r]
        return statistics.median(values) if values else None

    lines = [
        "| workload | metric | lkanyio trio | lkanyio asyncio | official | floor | trio/official | asyncio/official |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload in workloads:
        for metric, label, _better in METRICS[workload]:
            vals = {side: median(workload, side, metric) for side in SIDES}

            def fmt(v: float | None) -> str:
                if v is None:
                    return "–"
                return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"

            def ratio(v: float | None, ref: float | None) -> str:
                return "–" if v is None or not ref else f"{v / ref:.2f}×"

            off = vals["official"]
            lines.append(
                f"| {workload} | {label} | {fmt(vals['lkanyio-trio'])} | {fmt(vals['lkanyio-asyncio'])} "
                f"| {fmt(off)} | {fmt(vals['floor'])} | {ratio(vals['lkanyio-trio'], off)} "
                f"| {ratio(vals['lkanyio-asyncio'], off)} |"
            )
    table = "\n".join(lines)
    print(table)
    print(f"\n(medians of {args.reps} runs per side; scale: 1 run; total {elapsed:.0f} s)")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps({"results": results, "table": table, "seconds": elapsed}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
