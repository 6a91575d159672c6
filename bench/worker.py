"""One benchmark side in its own process (the native core allows one client per process).

    python bench/worker.py SIDE WORKLOAD [--url U --key K --secret S]

WORKLOAD is one of bench.py's (``video``, ``agent`` and ``data_stream`` live in bench/media.py).
SIDE is ``lkanyio-trio``, ``lkanyio-asyncio``, ``official`` (livekit.rtc, asyncio) or ``floor``
(the bare native library through lkanyio's cffi shim, no event loop: bench/floor.py).  Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import common
import media
from common import (
    ANNOUNCE,
    AUDIO_FRAMES,
    CONCURRENCY,
    DATA_MESSAGES,
    OFFICIAL_CONCURRENCY,
    SCALE_K,
    SCALE_SETTLE_S,
    SEQ_COUNT,
    SEQ_WARMUP,
    GcClock,
    concurrency_summary,
    cpu,
    pct,
    rss_kib,
    tone,
)


def token(args: argparse.Namespace, identity: str, room: str) -> str:
    return common.token(args.key, args.secret, identity, room)


# -- lkanyio -------------------------------------------------------------------------------------


async def lk_run(workload: str, args: argparse.Namespace) -> dict[str, Any]:
    import anyio

    import lkanyio

    if workload in media.WORKLOADS:
        return dict(await getattr(media, f"lk_{workload}")(args))
    if workload in ("roundtrip", "concurrency"):
        async with lkanyio.AudioSource(48_000, 1) as source:
            async with lkanyio.LocalAudioTrack.create_audio_track("t", source) as track:

                async def one() -> None:
                    try:
                        await track.get_stats()
                    except lkanyio.NativeError:
                        pass

                if workload == "roundtrip":
                    lat = []
                    for i in range(SEQ_WARMUP + SEQ_COUNT):
                        t = time.perf_counter_ns()
                        await one()
                        if i >= SEQ_WARMUP:
                            lat.append((time.perf_counter_ns() - t) / 1e3)
                    return {"p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99)}
                out = {}
                clock = GcClock()
                for n in CONCURRENCY:
                    done, t, g = 0, time.perf_counter(), clock.seconds
                    while done < max(n, 10_000):
                        async with anyio.create_task_group() as tg:
                            for _ in range(n):
                                tg.start_soon(one)
                        done += n
                    elapsed = time.perf_counter() - t
                    out[f"n{n}_req_s"] = done / elapsed
                    gc_share = (clock.seconds - g) / elapsed
                return concurrency_summary(out, gc_share)
    if workload == "audio":
        frame = lkanyio.AudioFrame(tone(), sample_rate=48_000, num_channels=1, samples_per_channel=480)
        async with lkanyio.AudioSource(48_000, 1) as source:
            async with lkanyio.LocalAudioTrack.create_audio_track("t", source) as track:
                async with lkanyio.AudioStream(track, sample_rate=48_000, num_channels=1) as stream:
                    received = 0

                    async def consume() -> None:
                        nonlocal received
                        async for _ in stream:
                            received += 1
                            if received >= AUDIO_FRAMES:
                                return

                    c0, t0 = cpu(), time.perf_counter()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(consume)
                        for _ in range(AUDIO_FRAMES):
                            await source.capture_frame(frame)
                    c1, t1 = cpu(), time.perf_counter()
        return {
            "frames_s": received / (t1 - t0),
            "cpu_s_per_10k_frames": (c1 - c0) / received * 10_000,
        }
    if workload == "data":
        room_name = f"bench-data-{os.getpid()}"
        lat: list[float] = []
        async with lkanyio.connect(args.url, token(args, "rx", room_name)) as rx, rx.events() as events:
            async with lkanyio.connect(args.url, token(args, "tx", room_name)) as tx:
                await tx.local_participant.set_attributes(ANNOUNCE)
                with anyio.fail_after(20):
                    while "tx" not in rx.remote_participants:
                        await anyio.sleep(0.01)
                pad = b"x" * (1024 - 8)
                done = anyio.Event()

                async def receive() -> None:
                    async for event in events:
                        if isinstance(event, lkanyio.DataReceived):
                            sent = int.from_bytes(event.data[:8], "little")
                            lat.append((time.perf_counter_ns() - sent) / 1e3)
                            if len(lat) >= DATA_MESSAGES:
                                done.set()
                                return

                t0 = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(receive)
                    for _ in range(DATA_MESSAGES):
                        await tx.local_participant.publish_data(
                            time.perf_counter_ns().to_bytes(8, "little") + pad
                        )
                    with anyio.fail_after(60):
                        await done.wait()
                elapsed = time.perf_counter() - t0
        return {"msgs_s": len(lat) / elapsed, "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99)}
    if workload == "scale":
        # Structured: each participant's `async with` lives in its own task until told to leave.
        rss0 = rss_kib()
        times: list[float] = []
        stop = anyio.Event()

        async def participant(i: int) -> None:
            t = time.perf_counter()
            room_name = f"bench-scale-{os.getpid()}-{i}"
            url = args.url2 if args.url2 and i % 2 else args.url  # two nodes: alternate
            async with lkanyio.connect(url, token(args, f"p{i}", room_name)):
                times.append(time.perf_counter() - t)
                await stop.wait()

        async with anyio.create_task_group() as tg:
            for i in range(SCALE_K):
                tg.start_soon(participant, i)
            with anyio.fail_after(120):
                while len(times) < SCALE_K:
                    await anyio.sleep(0.05)
            rss1 = rss_kib()
            await anyio.sleep(SCALE_SETTLE_S)
            c0 = cpu()
            await anyio.sleep(5)
            idle = (cpu() - c0) / 5
            stop.set()
        return {
            "k": SCALE_K,
            "connect_p50_s": pct(times, 0.5),
            "connect_p99_s": pct(times, 0.99),
            "rss_kib_per_participant": (rss1 - rss0) / SCALE_K,
            "idle_cpu_fraction": idle,
        }
    raise SystemExit(f"unknown workload {workload}")


# -- the official asyncio SDK ------------------------------------------------------------------


async def official_run(workload: str, args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from livekit import rtc

    if workload in media.WORKLOADS:
        return dict(await getattr(media, f"official_{workload}")(args))
    if workload in ("roundtrip", "concurrency"):
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("t", source)

        async def one() -> None:
            try:
                await track.get_stats()
            except Exception:
                pass

        if workload == "roundtrip":
            lat = []
            for i in range(SEQ_WARMUP + SEQ_COUNT):
                t = time.perf_counter_ns()
                await one()
                if i >= SEQ_WARMUP:
                    lat.append((time.perf_counter_ns() - t) / 1e3)
            return {"p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99)}
        out = {}
        clock = GcClock()
        for n in OFFICIAL_CONCURRENCY:
            done, t, g = 0, time.perf_counter(), clock.seconds
            while done < max(n, 2_000) and (done == 0 or time.perf_counter() - t < 30):
                await asyncio.gather(*(one() for _ in range(n)))
                done += n
            elapsed = time.perf_counter() - t
            out[f"n{n}_req_s"] = done / elapsed
            gc_share = (clock.seconds - g) / elapsed
        return concurrency_summary(out, gc_share, OFFICIAL_CONCURRENCY)
    if workload == "audio":
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("t", source)
        stream = rtc.AudioStream(track, sample_rate=48_000, num_channels=1)
        frame = rtc.AudioFrame(tone(), 48_000, 1, 480)
        received = 0

        async def consume() -> None:
            nonlocal received
            async for _ in stream:
                received += 1
                if received >= AUDIO_FRAMES:
                    return

        c0, t0 = cpu(), time.perf_counter()
        consumer = asyncio.ensure_future(consume())
        for _ in range(AUDIO_FRAMES):
            await source.capture_frame(frame)
        await consumer
        c1, t1 = cpu(), time.perf_counter()
        await stream.aclose()
        return {"frames_s": received / (t1 - t0), "cpu_s_per_10k_frames": (c1 - c0) / received * 10_000}
    if workload == "data":
        room_name = f"bench-data-{os.getpid()}"
        rx, tx = rtc.Room(), rtc.Room()
        lat: list[float] = []
        done = asyncio.Event()

        def on_data(packet: Any) -> None:
            sent = int.from_bytes(packet.data[:8], "little")
            lat.append((time.perf_counter_ns() - sent) / 1e3)
            if len(lat) >= DATA_MESSAGES:
                done.set()

        rx.on("data_received", on_data)
        await rx.connect(args.url, token(args, "rx", room_name))
        await tx.connect(args.url, token(args, "tx", room_name))
        await tx.local_participant.set_attributes(ANNOUNCE)
        for _ in range(2000):
            if "tx" in rx.remote_participants:
                break
            await asyncio.sleep(0.01)
        pad = b"x" * (1024 - 8)
        t0 = time.perf_counter()
        for _ in range(DATA_MESSAGES):
            await tx.local_participant.publish_data(time.perf_counter_ns().to_bytes(8, "little") + pad)
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - t0
        await tx.disconnect()
        await rx.disconnect()
        return {"msgs_s": len(lat) / elapsed, "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99)}
    if workload == "scale":
        rss0 = rss_kib()
        times: list[float] = []
        rooms = [rtc.Room() for _ in range(SCALE_K)]

        async def enter(i: int) -> None:
            t = time.perf_counter()
            url = args.url2 if args.url2 and i % 2 else args.url  # two nodes: alternate
            await rooms[i].connect(url, token(args, f"p{i}", f"bench-scale-{os.getpid()}-{i}"))
            times.append(time.perf_counter() - t)

        await asyncio.gather(*(enter(i) for i in range(SCALE_K)))
        rss1 = rss_kib()
        await asyncio.sleep(SCALE_SETTLE_S)
        c0 = cpu()
        await asyncio.sleep(5)
        idle = (cpu() - c0) / 5
        await asyncio.gather(*(room.disconnect() for room in rooms))
        return {
            "k": SCALE_K,
            "connect_p50_s": pct(times, 0.5),
            "connect_p99_s": pct(times, 0.99),
            "rss_kib_per_participant": (rss1 - rss0) / SCALE_K,
            "idle_cpu_fraction": idle,
        }
    raise SystemExit(f"unknown workload {workload}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side")
    parser.add_argument("workload")
    parser.add_argument("--url", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--secret", default="")
    parser.add_argument("--url2", default="", help="scale: a second node; odd participants use it")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="video, agent: measure this long (default: common.py)")
    parser.add_argument("--quick", action="store_true", help="data_stream: a tenth of the sizes")
    parser.add_argument("--profile", default="",
                        help="write a cProfile of the run here (read it with pstats)")
    args = parser.parse_args()
    if args.profile:
        import cProfile

        with cProfile.Profile() as profile:
            result = run(args)
        profile.dump_stats(args.profile)
    else:
        result = run(args)
    print(json.dumps(result))
    sys.stdout.flush()
    if args.side == "official":
        # livekit.rtc's callback is a ctypes function: a native thread calling it while the
        # interpreter finalizes is ended with pthread_exit, and that forced unwind through the
        # native core's extern "C" frames aborts the process (seen once, after its result was
        # printed; tests/_rtc_peer_exit.py has the whole story).  The result is out: end here.
        sys.stderr.flush()
        os._exit(0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.side == "floor":
        from floor import floor_run

        result = floor_run(
            args.workload, args.url, args.key, args.secret, args.seconds, quick=args.quick
        )
    elif args.side == "official":
        import asyncio

        result = asyncio.run(official_run(args.workload, args))
    else:
        import anyio

        backend = args.side.split("-", 1)[1]
        result = anyio.run(lk_run, args.workload, args, backend=backend)
    return result


if __name__ == "__main__":
    main()
