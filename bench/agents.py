"""Agent dispatch through one worker: lkanyio.worker against livekit-agents' worker.

    ./scripts/bench agents [--joins 20] [--jobs 50] [--reps 3] [--sides a,b]   (root: a namespace)

One livekit-server (in a private network namespace, as the tests run it), with its webhooks sent
to this process.  Each side is one worker in a process of its own, registered under an agent
name of its own: lkanyio's ``Worker`` on trio and on asyncio (this file, ``--worker``), and
livekit-agents' ``AgentServer`` with each of its job executors (bench/agents_peer.py, in the venv
of scripts/ensure-bench-venv: livekit-agents is no dependency of lkanyio's and never shares a
process with it).  This process is the same dispatcher and the same observer for every side:
it makes the AgentDispatch calls (lkanyio.api) and hears when each job's participant joined from
the server itself, its ``participant_joined`` webhook (sent when the participant becomes active,
its transport connected: livekit-server's own definition of joined).  Sides run one after
another, interleaved, ``reps`` times each; tables show medians.

Per side, first two bursts of ``jobs`` dispatches at once, to jobs that return at once: jobs
started per second, from the first call to the last entrypoint's start; to new rooms (the
CreateDispatch creates each), then to rooms made beforehand.  Then ``joins`` dispatches one
after another (two more first, not counted), each to a new room, each job joining its room:
dispatch to joined (from the CreateDispatch call to the webhook), p50 and p99 (of 20, p99 is
the largest).  Each room is deleted once joined, and the next dispatch waits until that job
ended and 2 s more (``--pause``: livekit-agents' process executor starts a process for each
job and keeps two warm; at 0.5 s its pool was not warm again on this busy machine, and the
latency measured its process start-up).

Where the time goes: every worker sends a datagram at the same points (the server's offer
reaching its code, the entrypoint starting, its connect returning, the job ending), stamped
with this machine's wall clock as the webhooks' arrival and the server's log are, so each
stage is timed from the CreateDispatch call, and the server's log gives when it assigned each
job.  What the server itself costs is explained where the bursts are made (``run_side``).

Writes the raw numbers to bench/results/agents.json, each worker's output to
bench/results/dispatch-SIDE.log and the server's to bench/results/dispatch-server.log.  With
LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET (a server this process gets no webhooks from)
joined is polled instead: ``ListParticipants`` every 20 ms until the agent is ``ACTIVE``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lkanyio.testing import ServerInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIDES = ("lkanyio-trio", "lkanyio-asyncio", "agents-process", "agents-thread")
WARMUP = 2
# Each stage of the sequential dispatches, ms from the CreateDispatch call (p50 over the joins).
STAGES = (
    ("call", "CreateDispatch answered"),
    ("offer", "the server's offer reached the worker's code"),
    ("assigned", "the server assigned the job (its log)"),
    ("entry", "the entrypoint started"),
    ("joined_local", "the worker's connect returned"),
    ("joined", "the server's participant_joined webhook arrived"),
)
METRICS = (
    ("join_p50_ms", "dispatch to joined, p50 ms"),
    ("join_p99_ms", "dispatch to joined, p99 ms (of fewer than 100: the largest)"),
    *((f"{stage}_p50_ms", f"joins, stage: {label}, p50 ms") for stage, label in STAGES[:-1]),
    ("jobs_s", "jobs started per second, all at once to new rooms"),
    ("offer_last_ms", "  the last offer reached the worker, ms"),
    ("entry_last_ms", "  the last entrypoint started, ms"),
    ("calls_s", "  CreateDispatch calls answered per second"),
    ("jobs_s_existing", "jobs started per second, all at once to existing rooms"),
    ("offer_last_ms_existing", "  the last offer reached the worker, ms"),
    ("entry_last_ms_existing", "  the last entrypoint started, ms"),
    ("own_p50_ms_existing", "  the worker's own time, offer to entrypoint, p50 ms"),
    ("own_max_ms_existing", "  the worker's own time, offer to entrypoint, largest ms"),
)
_REPORT = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def report(event: str, key: str) -> None:
    """What a worker saw, to the bench: the same datagram as bench/agents_peer.py sends."""
    host, port = os.environ["LKANYIO_BENCH_REPORT"].rsplit(":", 1)
    data = json.dumps({"ev": event, "key": key, "t": time.time()}).encode()
    _REPORT.sendto(data, (host, int(port)))


# -- lkanyio's worker (a child: --worker SIDE) ------------------------------------------------


def lk_worker(side: str, agent_name: str) -> None:
    """Serve until SIGTERM: jobs whose metadata is ``join`` join and stay; the others return."""
    import logging

    import anyio

    from lkanyio.worker import Job, JobAcceptance, JobContext, Worker

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def accept(job: Job) -> JobAcceptance:
        report("offer", job.room.name)
        return JobAcceptance(identity=f"agent-{job.id}")  # the default, as livekit-agents'

    async def entrypoint(job: JobContext) -> None:
        room = job.job.room.name
        report("entry", room)
        try:
            if job.job.metadata == "join":
                async with job.connect():
                    report("joined", room)
                    await anyio.sleep_forever()  # until the room ends (it cancels the job)
        finally:
            report("end", room)

    async def run() -> None:
        async with Worker(entrypoint, agent_name=agent_name, accept=accept,
                          load=lambda worker: 0.0, drain_timeout=0) as worker, \
                anyio.create_task_group() as tg:
            tg.start_soon(worker.serve)
            await worker.wait_registered()
            report("ready", agent_name)
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()

    anyio.run(run, backend=side.removeprefix("lkanyio-"))


# -- the dispatcher and observer (this process) ------------------------------------------------


class Observer:
    """When each thing happened, by (what, room or agent name): reports and webhooks alike."""

    def __init__(self) -> None:
        import anyio

        self.seen: dict[tuple[str, str], float] = {}
        self._changed = anyio.Event()

    def note(self, what: str, key: str, t: float) -> None:
        import anyio

        self.seen.setdefault((what, key), t)
        self._changed.set()
        self._changed = anyio.Event()

    def get(self, what: str, key: str) -> float | None:
        return self.seen.get((what, key))

    async def wait(self, what: str, keys: list[str], timeout: float) -> list[float]:
        import anyio

        with anyio.fail_after(timeout):
            while any((what, key) not in self.seen for key in keys):
                await self._changed.wait()
        return [self.seen[what, key] for key in keys]


async def hear_reports(udp: Any, observer: Observer) -> None:
    async for data, _address in udp:
        message = json.loads(data)
        observer.note(message["ev"], message["key"], message["t"])


async def hear_webhooks(listener: Any, receiver: Any, observer: Observer) -> None:
    """A minimal HTTP/1.1 server (h11) for the server's webhook POSTs: 200 to each."""
    import anyio
    import h11

    async def handle(stream: Any) -> None:
        conn = h11.Connection(h11.SERVER)
        auth, body = "", b""
        async with stream:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        data = b""
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    auth = dict(event.headers).get(b"authorization", b"").decode()
                    body = b""
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    t = time.time()
                    hook = receiver.receive(body, auth)
                    observer.note(hook.event, hook.room.name, t)
                    await stream.send(conn.send(
                        h11.Response(status_code=200, headers=[("content-length", "0")])))
                    await stream.send(conn.send(h11.EndOfMessage()))
                    conn.start_next_cycle()
                else:  # the connection closed
                    return

    await listener.serve(handle)


async def poll_joined(lkapi: Any, room: str, observer: Observer) -> None:
    """Without webhooks: ListParticipants until the room has an active participant."""
    import anyio
    from livekit.protocol.models import ParticipantInfo

    from lkanyio import api

    while True:
        found = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        if any(p.state == ParticipantInfo.State.ACTIVE for p in found.participants):
            observer.note("participant_joined", room, time.time())
            return
        await anyio.sleep(0.02)


def worker_command(side: str, agent_name: str, agents_python: str | None) -> list[str]:
    if side.startswith("lkanyio-"):
        return [sys.executable, str(Path(__file__)), "--worker", side, "--agent", agent_name]
    assert agents_python is not None
    return [agents_python, str(HERE / "agents_peer.py"), side.removeprefix("agents-"), agent_name]


async def run_side(side: str, args: argparse.Namespace, info: ServerInfo, report_to: str,
                   observer: Observer, lkapi: Any, webhooks: bool,
                   agents_python: str | None) -> dict[str, Any]:
    """One worker of ``side``, fed and watched from here: its raw timestamps."""
    import anyio

    from lkanyio import api

    name = f"bench-{side}-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "LIVEKIT_URL": info.url, "LIVEKIT_API_KEY": info.api_key,
           "LIVEKIT_API_SECRET": info.api_secret, "LKANYIO_BENCH_REPORT": report_to}
    log_path = HERE / "results" / f"dispatch-{side}.log"
    log = log_path.open("ab")
    log.write(f"\n== {datetime.now().isoformat(timespec='seconds')} {name}\n".encode())
    log.flush()
    proc = await anyio.open_process(worker_command(side, name, agents_python), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, env=env, start_new_session=True)

    async def dispatch(room: str, metadata: str) -> None:
        await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=name, room=room, metadata=metadata))

    try:
        async with anyio.create_task_group() as starting:

            async def died() -> None:
                await proc.wait()
                raise RuntimeError(f"{side}'s worker exited ({proc.returncode}): see {log_path}")

            starting.start_soon(died)
            await observer.wait("ready", [name], 300)
            starting.cancel_scope.cancel()
        # The batches first, at a known distance from the server's refresh of which agents are
        # registered: livekit-server refreshes that cache on the first dispatch after any
        # worker registers (and a minute after its last refresh), and the refresh holds one of
        # its 50 dispatch goroutines per dispatch for 5 s (a CheckEnabled multi-RPC waits out
        # its whole timeout): a burst inside that window stalls until it closes, for every
        # worker alike.  A first dispatch (not counted) starts the refresh; the batches come
        # ``settle`` seconds later (0: inside the window, to see the stall).
        primer = f"{name}-primer"
        await dispatch(primer, "quick")
        await observer.wait("end", [primer], 120)
        await anyio.sleep(args.settle)
        limit = anyio.Semaphore(10)

        async def each(call: Any, rooms: list[str]) -> None:
            async def one(room: str) -> None:
                async with limit:
                    await call(room)

            async with anyio.create_task_group() as tg:
                for room in rooms:
                    tg.start_soon(one, room)

        async def burst(rooms: list[str]) -> dict[str, Any]:
            t0 = time.time()
            async with anyio.create_task_group() as tg:
                for room in rooms:
                    tg.start_soon(dispatch, room, "quick")
            t1 = time.time()
            await observer.wait("entry", rooms, 300)
            await observer.wait("end", rooms, 120)
            return {"rooms": rooms, "t0": t0, "calls_done": t1}

        async def create(room: str) -> None:
            await lkapi.room.create_room(api.CreateRoomRequest(name=room))

        async def delete(room: str) -> None:
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))

        # New rooms: CreateDispatch creates each.  Each new room also starts livekit-server's
        # automatic dispatch (agent name ""), and with a named worker registered its request
        # waits out psrpc's 1 s server selection, holding 2 of the same 50 goroutines: the
        # burst queues behind them.
        batch = await burst([f"{name}-jobs-{i}" for i in range(args.jobs)])
        # Rooms that exist already (made, then left ``settle`` seconds for those requests to
        # end, outside the timing): what the worker itself does with a burst.
        existing = [f"{name}-room-{i}" for i in range(args.jobs)]
        await each(create, existing)
        await anyio.sleep(args.settle)
        batch_existing = await burst(existing)
        await each(delete, [primer, *batch["rooms"], *existing])
        await anyio.sleep(args.pause)
        joins: list[dict[str, Any]] = []
        for i in range(WARMUP + args.joins):
            room = f"{name}-join-{i}"
            t0_join = time.time()
            await dispatch(room, "join")
            t1_join = time.time()
            if not webhooks:
                await poll_joined(lkapi, room, observer)
            await observer.wait("participant_joined", [room], 60)
            await observer.wait("joined", [room], 30)
            joins.append({"room": room, "t0": t0_join, "call": t1_join})
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
            await observer.wait("end", [room], 60)
            await anyio.sleep(args.pause)
    finally:
        proc.send_signal(signal.SIGTERM)
        with anyio.move_on_after(30, shield=True):
            await proc.wait()
        if proc.returncode is None:  # its own process group: the worker and its job processes
            os.killpg(proc.pid, signal.SIGKILL)
            with anyio.CancelScope(shield=True):
                await proc.wait()
        log.close()
    return {"name": name, "joins": joins, "batch": batch, "batch_existing": batch_existing,
            "load": os.getloadavg()}


_ASSIGNED = re.compile(r'^(\S+)\s.*assigned job to worker.*"room": "([^"]+)"')


def server_assignments(log_path: Path) -> dict[str, float]:
    """Room -> when livekit-server logged ``assigned job to worker`` (wall clock)."""
    out: dict[str, float] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        match = _ASSIGNED.match(line)
        if match:
            out.setdefault(match[2], datetime.fromisoformat(match[1].replace("Z", "+00:00"))
                           .timestamp())
    return out


def summarize(raw: dict[str, Any], observer: Observer, assigned: dict[str, float]) -> dict[str, float]:
    """One run's metrics from its timestamps (ms from each CreateDispatch call)."""
    stages: dict[str, list[float]] = {stage: [] for stage, _ in STAGES}
    for join in raw["joins"][WARMUP:]:
        room, t0 = join["room"], join["t0"]
        at = {"call": join["call"], "assigned": assigned.get(room)}
        for what in ("offer", "entry", "joined_local", "joined"):
            seen = "joined" if what == "joined_local" else "participant_joined" if what == "joined" else what
            at[what] = observer.get(seen, room)
        for stage, t in at.items():
            if t is not None:
                stages[stage].append((t - t0) * 1000)
        join.update({k: v for k, v in at.items() if v is not None})
    latencies = sorted(stages["joined"])
    out = {
        "join_p50_ms": statistics.median(latencies),
        "join_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        **{f"{stage}_p50_ms": statistics.median(v) for stage, v in stages.items() if v},
        "load_1min": raw["load"][0],
    }
    for key, suffix in (("batch", ""), ("batch_existing", "_existing")):
        batch = raw[key]
        t0 = batch["t0"]
        for what in ("offer", "entry"):
            times = (observer.get(what, room) for room in batch["rooms"])
            batch[f"{what}_ms"] = sorted(round((t - t0) * 1000, 1) for t in times if t is not None)
        batch["assigned_ms"] = sorted(round((assigned[room] - t0) * 1000, 1)
                                      for room in batch["rooms"] if room in assigned)
        out[f"jobs_s{suffix}"] = len(batch["rooms"]) / (batch["entry_ms"][-1] / 1000)
        out[f"calls_s{suffix}"] = len(batch["rooms"]) / (batch["calls_done"] - t0)
        out[f"offer_last_ms{suffix}"] = batch["offer_ms"][-1]
        out[f"entry_last_ms{suffix}"] = batch["entry_ms"][-1]
        own = sorted((observer.get("entry", room) or 0) - (observer.get("offer", room) or 0)
                     for room in batch["rooms"])
        out[f"own_p50_ms{suffix}"] = statistics.median(own) * 1000
        out[f"own_max_ms{suffix}"] = own[-1] * 1000
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


async def bench(args: argparse.Namespace, sides: list[str], agents_python: str | None,
                node_ip: str | None) -> dict[str, Any]:
    import anyio

    from lkanyio import api
    from lkanyio.testing import LocalServer, external_server_from_env

    observer = Observer()
    external = external_server_from_env()
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as udp, \
            await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            anyio.create_task_group() as tg:
        report_to = f"127.0.0.1:{udp.extra(anyio.abc.SocketAttribute.local_port)}"
        hook_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        local = None
        if external is None:
            local = LocalServer(node_ip=node_ip or "", webhook_urls=[f"http://127.0.0.1:{hook_port}/"])
            await anyio.to_thread.run_sync(local.start)
        info = external or local.info  # type: ignore[union-attr]
        receiver = api.WebhookReceiver(api.TokenVerifier(info.api_key, info.api_secret))
        tg.start_soon(hear_reports, udp, observer)
        tg.start_soon(hear_webhooks, listener, receiver, observer)
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        assigned: dict[str, float] = {}
        raws: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        try:
            async with api.LiveKitAPI(info.http_url, info.api_key, info.api_secret) as lkapi:
                for rep in range(args.reps):
                    for side in sides:
                        began = time.monotonic()
                        raw = await run_side(side, args, info, report_to, observer, lkapi,
                                             local is not None, agents_python)
                        raws[side].append(raw)
                        print(f"  rep {rep + 1} {side:16} {time.monotonic() - began:5.0f} s, load "
                              f"{raw['load'][0]:.1f}", file=sys.stderr, flush=True)
            if local is not None:
                assigned = server_assignments(local.log_path)
                shutil.copyfile(local.log_path, HERE / "results" / "dispatch-server.log")
        finally:
            if local is not None:
                await anyio.to_thread.run_sync(local.close)
        for side in sides:
            runs[side] = [summarize(raw, observer, assigned) for raw in raws[side]]
        tg.cancel_scope.cancel()
    return {"runs": runs, "raw": raws, "observer": "webhook" if local is not None else "poll"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pause", type=float, default=2.0,
                        help="seconds between a join's end and the next dispatch")
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds between the first dispatch and the batch (5 s: the "
                             "server's agent refresh window)")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--worker", choices=SIDES[:2], help=argparse.SUPPRESS)  # a child's role
    parser.add_argument("--agent", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        lk_worker(args.worker, args.agent)
        return 0
    sides = [side for side in args.sides.split(",") if side]
    unknown = sorted(set(sides) - set(SIDES))
    if unknown:
        parser.error(f"unknown side: {', '.join(unknown)}")
    agents_python = None
    if any(side.startswith("agents-") for side in sides):
        agents_python = subprocess.run(  # its progress and errors go to stderr, as they come
            [str(ROOT / "scripts" / "ensure-bench-venv")], check=True, stdout=subprocess.PIPE,
            text=True).stdout.strip()
    (HERE / "results").mkdir(exist_ok=True)

    import anyio

    from lkanyio.testing import enter_private_netns, external_server_from_env

    # Before any thread starts: every later thread and child lives in the namespace.
    node_ip = None if external_server_from_env() else enter_private_netns()
    load_before = os.getloadavg()
    began = time.time()
    result = anyio.run(bench, args, sides, agents_python, node_ip, backend="trio")
    runs = result["runs"]
    medians = {side: {m: statistics.median(r[m] for r in rs) for m, _ in METRICS
                      if all(m in r for r in rs)} for side, rs in runs.items()}
    loads = [r["load_1min"] for rs in runs.values() for r in rs]
    versions = {}
    if agents_python:
        versions = dict(line.split("==", 1) for line in Path(agents_python).parent.parent.joinpath(
            ".lkanyio-freeze").read_text().splitlines() if line.startswith("livekit"))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(began))}, {args.reps} interleaved "
          f"reps, load average (1 min) {min(loads):.1f}-{max(loads):.1f} "
          f"(before: {load_before[0]:.1f}); {args.joins} joins, bursts of {args.jobs}; joined = "
          f"{result['observer']}; {versions}")
    print(f"| metric | {' | '.join(sides)} |")
    print(f"|---|{'---|' * len(sides)}")
    for metric, label in METRICS:
        print(f"| {label} | {' | '.join(fmt(medians[s].get(metric)) for s in sides)} |")
    def compact(value: Any) -> Any:  # wall-clock stamps to the millisecond: a smaller file
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, dict):
            return {k: compact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [compact(v) for v in value]
        return value

    (HERE / "results" / "agents.json").write_text(json.dumps(compact({
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)),
        "seconds": round(time.time() - began),
        "load_before": load_before, "joins": args.joins, "jobs": args.jobs, "reps": args.reps,
        "pause": args.pause, "settle": args.settle, "observer": result["observer"], "agents_versions": versions,
        "medians": medians, "runs": runs, "raw": result["raw"],
    }), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
