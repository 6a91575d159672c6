"""Benchmarks: lkanyio (trio, asyncio) against the official asyncio SDK, in one run.

    ./scripts/bench [WORKLOAD] [--workloads roundtrip,concurrency,audio,data,scale,scale-2nodes,
                    video,agent,data_stream] [--sides ...] [--reps 3] [--seconds S] [--quick]
                    [--update-latest]

``./scripts/bench video`` runs one workload (for development); ``--seconds`` shortens the video
and agent windows (default 20 s per video size, 10 s per agent K) and ``--quick`` runs each side
once with 3 s windows and a tenth of the data-stream sizes.

Every side runs in its own process (the native core allows one client per process), against the
same native library and the same livekit-server (started in a private network namespace, as the
tests do).  Prints medians over repetitions and ratios to the official SDK; writes the raw numbers
to bench/results/latest.json (a full run; a partial or --quick run writes dev.json, and
``--update-latest`` replaces only the workloads it ran in latest.json, noting under "runs" when
each was measured).  Exits non-zero if any run of any side failed.

``LKANYIO_BENCH_PIN=1`` runs each measured side alone on the last core and everything else
(this process, the servers, the agent row's peers) on the others, so an overloaded row is
overloaded by the side's own work (``LKANYIO_BENCH_AGENT_K=40`` saturates one core here).

``scale-2nodes`` is the scale workload against a two-node cluster (lkanyio.testing.LocalCluster:
one Redis, two livekit-server nodes): participant i signals through node i % 2.  It runs next to
``scale`` (one node) in the same run; the floor side has no cluster variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import AGENT_K, CONCURRENCY, OFFICIAL_CONCURRENCY, pinned_cores

HERE = Path(__file__).resolve().parent
SIDES = ("lkanyio-trio", "lkanyio-asyncio", "official", "floor")
WORKLOADS = (
    "roundtrip", "concurrency", "audio", "data", "scale", "scale-2nodes", "video", "agent",
    "data_stream",
)
# (metric, label, "lower" or "higher" is better)
METRICS: dict[str, list[tuple[str, str, str]]] = {
    "roundtrip": [("p50_us", "p50 µs", "lower"), ("p99_us", "p99 µs", "lower")],
    "concurrency": [
        ("n10_req_s", "N=10 req/s", "higher"),
        ("n100_req_s", "N=100 req/s", "higher"),
        ("n1000_req_s", "N=1000 req/s", "higher"),
        ("n5000_req_s", "N=5000 req/s", "higher"),
        ("n5000_over_n10", "N=5000 / N=10 throughput", "higher"),
        ("n5000_gc_share", "N=5000 share of time in the cyclic GC", "lower"),
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
    "video": [
        (f"{metric}_{h}", f"{h}p30 {label}", better)
        for h in (720, 1080)
        for metric, label, better in (
            ("fps", "delivered fps", "higher"),
            ("cpu_ms_per_frame", "CPU ms / received frame", "lower"),
            ("loop_ms_per_frame", "of it in the loop's thread", "lower"),
            ("p50_ms", "latency p50 ms", "lower"),
            ("p99_ms", "latency p99 ms", "lower"),
            ("rss_mib", "RSS MiB", "lower"),
        )
    ]
    + [("convert_fps_1080", "convert I420→RGBA 1080p frames/s", "higher")],
    "agent": [
        (f"k{k}_{metric}", f"K={k} {label}", better)
        for k in AGENT_K
        for metric, label, better in (
            ("cpu_cores", "CPU (cores)", "lower"),
            ("rooms_ready", "rooms ready when measured", "higher"),
            ("in_delivered", "frames in delivered/expected", "higher"),
            ("in_received", "frames in received (tone or not)/expected", "higher"),
            ("in_worst_room", "frames in received, the worst room's share", "higher"),
            ("out_delivered", "frames out delivered/expected", "higher"),
            ("jitter_p99_ms", "inter-arrival jitter p99 ms", "lower"),
            ("received_jitter_p99_ms", "received frames' inter-arrival jitter p99 ms", "lower"),
        )
    ],
    "data_stream": [
        ("file_mb_s", "send_file 50 MB MB/s", "higher"),
        ("file_read_all_s", "send_file read_all s", "lower"),
        ("text_mb_s", "send_text 1 MB MB/s", "higher"),
        ("text_read_all_s", "send_text read_all s", "lower"),
    ],
}
METRICS["scale-2nodes"] = METRICS["scale"]
ONLINE = ("data", "scale", "video", "agent", "data_stream")
# No bare-loop floor for these: the floor side reports "–".
FLOORLESS: tuple[str, ...] = ()
# Long runs, measured once per side: the window is already many seconds of frames.
ONCE = ("video", "agent", "data_stream")
CLUSTERED = ("scale-2nodes",)


# Metrics a side does not measure by default (common.OFFICIAL_CONCURRENCY): shown as "not run".
NOT_RUN = {
    ("concurrency", "official"): {
        metric for metric, _label, _better in METRICS["concurrency"] if metric.startswith("n5000")
    }
}


def run_side(
    side: str, workload: str, server: Any, cluster: Any = None, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    if side == "floor" and workload in FLOORLESS:
        return {"skipped": "no floor"}
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
    cmd += list(extra)
    if "--profile" in extra:  # bench.py's flag: one profile file per workload and side
        cmd[cmd.index("--profile")] = f"--profile={HERE / 'results' / f'{workload}-{side}.prof'}"
    pin = pinned_cores()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, check=False,
            preexec_fn=None if pin is None else lambda: os.sched_setaffinity(0, pin[1]),
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 600 s"}
    if proc.returncode != 0:
        # The whole stderr stays local (bench/results/ is ignored); the table gets the tail.
        log = HERE / "results" / f"{workload}-{side}.stderr"
        log.parent.mkdir(exist_ok=True)
        log.write_text(proc.stderr)
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {proc.returncode} (stderr in {log.name}): {tail}"}
    try:
        result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return {"error": f"no result on stdout: {proc.stdout[-200:]!r}"}
    optional = NOT_RUN.get((workload, side), set())
    missing = [
        metric for metric, _label, _better in METRICS[workload]
        if metric not in result and metric not in optional
    ]
    if missing:
        return {"error": f"no {', '.join(missing)} in {result}"}
    return result


def render(results: dict[str, dict[str, list[dict[str, Any]]]], workloads: list[str]) -> str:
    """The markdown table: medians per side, ratios to the official SDK and to the floor."""

    def median(workload: str, side: str, metric: str) -> float | None:
        runs = results[workload].get(side, [])
        values = [r[metric] for r in runs if metric in r]
        if runs and all("skipped" in r for r in runs):
            return None
        return statistics.median(values) if values else None

    def cell(workload: str, side: str, metric: str) -> str:
        v = median(workload, side, metric)
        if v is None:
            runs = results[workload].get(side, [])
            if metric in NOT_RUN.get((workload, side), ()) and not any("error" in r for r in runs):
                return "not run"
            return "FAILED" if runs and not all("skipped" in r for r in runs) else "–"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"

    def ratio(v: float | None, ref: float | None) -> str:
        return "–" if v is None or not ref else f"{v / ref:.2f}×"

    lines = [
        "| workload | metric | lkanyio trio | lkanyio asyncio | official | floor "
        "| trio/official | asyncio/official | trio/floor | asyncio/floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workload in workloads:
        for metric, label, _better in METRICS[workload]:
            off = median(workload, "official", metric)
            bare = median(workload, "floor", metric)
            trio = median(workload, "lkanyio-trio", metric)
            aio = median(workload, "lkanyio-asyncio", metric)
            cells = " | ".join(cell(workload, side, metric) for side in SIDES)
            lines.append(
                f"| {workload} | {label} | {cells} | {ratio(trio, off)} | {ratio(aio, off)} "
                f"| {ratio(trio, bare)} | {ratio(aio, bare)} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", help="run only this workload")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="video and agent: seconds per measurement window")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile every run: bench/results/WORKLOAD-SIDE.prof")
    parser.add_argument("--quick", action="store_true",
                        help="development: one run per side, 3 s windows, data streams / 10")
    parser.add_argument("--update-latest", action="store_true",
                        help="replace these workloads' results in latest.json, keep the others")
    args = parser.parse_args()
    pin = pinned_cores()
    if pin is not None:  # this process, the servers and the peers it starts: the other cores
        os.sched_setaffinity(0, pin[0])
    if args.quick:
        args.reps, args.seconds = 1, args.seconds or 3.0
    extra = (("--seconds", str(args.seconds)) if args.seconds else ()) + (
        ("--quick",) if args.quick else ()
    ) + (("--profile",) if args.profile else ())
    (HERE / "results").mkdir(exist_ok=True)
    workloads = [args.workload] if args.workload else [w for w in args.workloads.split(",") if w]
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
                # One run where a run is long: scale, and the official SDK's concurrency (its
                # quadratic fan-out: ~10 s up to 1,000 in flight, ~2 min more for 5,000).
                once = (
                    workload.startswith("scale")
                    or workload in ONCE
                    or (workload == "concurrency" and side == "official")
                )
                reps = 1 if once else args.reps
                t_side = time.monotonic()
                runs = [run_side(side, workload, server_info, cluster, extra) for _ in range(reps)]
                results[workload][side] = runs
                took = time.monotonic() - t_side
                print(f"  {workload:12} {side:16} {took:5.0f} s {runs}", file=sys.stderr, flush=True)
    finally:
        if stack is not None:
            stack.stop()
        if cluster is not None:
            cluster.close()
    elapsed = time.monotonic() - started

    table = render(results, workloads)
    print(table)
    print(
        f"\n(medians of {args.reps} runs per side; 1 run: scale, video, agent, data_stream, and the official "
        f"SDK's concurrency; total {elapsed:.0f} s)"
    )
    stuck = [
        (workload, side, key.split("_")[0], value)
        for workload, by_side in results.items()
        for side, runs in by_side.items()
        for run in runs
        for key, value in run.items()
        if key.endswith("_teardown_stuck_tasks")
    ]
    for workload, side, k, count in stuck:
        print(f"({workload} {side}: {k}: {count} tasks never ended after the window; the measured"
              " numbers stand, the process was ended)")
    if "concurrency" in workloads and len(OFFICIAL_CONCURRENCY) < len(CONCURRENCY):
        print("(official N=5000: not run; LKANYIO_BENCH_OFFICIAL_N5000=1 runs it, ~2 min more)")
    failures = [
        f"{workload} {side}: {run['error']}"
        for workload, by_side in results.items()
        for side, runs in by_side.items()
        for run in runs
        if "error" in run
    ]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    # A development run (one workload, a subset, or --quick) leaves the full run's latest.json
    # alone.
    full = not args.quick and list(workloads) == list(WORKLOADS) and list(sides) == list(SIDES)
    record: dict[str, Any] = {
        "results": results, "table": table, "seconds": elapsed, "failures": failures,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg(),
    }
    if args.update_latest and not args.quick and list(sides) == list(SIDES):
        # Re-measure some workloads and keep the rest of the last full run: which run each
        # workload's numbers come from is kept under "runs".
        latest = json.loads((out / "latest.json").read_text())
        runs = latest.get("runs") or {
            w: {"when": latest.get("when", "the full run"), "seconds": latest["seconds"]}
            for w in latest["results"]
        }
        for workload in workloads:
            latest["results"][workload] = results[workload]
            runs[workload] = {"when": record["when"], "seconds": elapsed, "load": record["load"]}
        latest["runs"] = runs
        latest["failures"] = [
            f for f in latest.get("failures", []) if f.split(" ", 1)[0] not in workloads
        ] + failures
        latest["table"] = render(latest["results"], [w for w in WORKLOADS if w in latest["results"]])
        record, full = latest, True
    name = "latest.json" if full else "dev.json"
    (out / name).write_text(json.dumps(record, indent=2) + "\n")
    if failures:
        print(f"\n{len(failures)} failed run(s):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
