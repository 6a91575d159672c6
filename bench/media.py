"""The application-shaped workloads: video, agent-shaped audio, data streams (issue 18).

Each has a lkanyio side (``lk_*``, any anyio backend) and an official-SDK side (``official_*``,
asyncio) doing the same work in the same order; bench/worker.py picks one.

* video: for 720p30 and 1080p30, two participants in one process (one clock): a ``VideoSource``
  paced at 30 fps through the server to the other's ``VideoStream`` converting to RGBA.  Each
  frame carries its number in the picture (common.paint_counter); the receiver decodes it and
  matches it to its capture time.  Then ``VideoFrame.convert`` I420 -> RGBA at 1080p, offline.
* agent: K rooms in this process, each with a peer (bench/peer.py, lkanyio on trio, the same for
  every measured side) in another process sending a 48 kHz tone and listening.  This side reads
  an AudioStream resampled to 16 kHz and writes 48 kHz into an AudioSource, 10 ms frames.
* data_stream: ``send_file`` of 50 MB (random bytes) and ``send_text`` of 1 MB between two
  participants in one process; the receiver reads each stream whole.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    AGENT_K,
    AGENT_SECONDS,
    ANNOUNCE,
    CONVERT_FRAMES,
    STREAM_FILE_MB,
    STREAM_TEXT_MB,
    VIDEO_FPS,
    VIDEO_SECONDS,
    VIDEO_SIZES,
    cpu,
    i420_base,
    paint_counter,
    pct,
    pinned_cores,
    read_counter,
    rss_kib,
    silent,
    token,
    tone,
)

HERE = Path(__file__).resolve().parent
WORKLOADS = ("video", "agent", "data_stream")
FIRST_WAIT = 30.0  # seconds for the first frame / the first audio of every room
# Rooms are joined 0.2 s apart, as an agent server takes jobs: 25 rooms publishing at once on
# this 2-core machine made the server time out publications (the official SDK's
# "track publication timed out, no response received from the server").
JOIN_STAGGER = 0.2
READY_WAIT = 20.0  # seconds after the last join for every room to hear and be heard
DRAIN = 1.5  # seconds after the window for the last frames written in it to reach the peer
TEARDOWN_WAIT = 30.0  # seconds for the official SDK's agent tasks and rooms to end after a run


def video_bitrate(height: int) -> int:
    """The same encoder ceiling on every side (bits/s): ~0.1 bit per pixel at 30 fps."""
    return 2_500_000 if height <= 720 else 5_000_000


def video_result(
    height: int,
    frames: int,
    seconds: float,
    cpu_s: float,
    lat_ms: list[float],
    undecoded: int,
    loop_s: float,
) -> dict[str, Any]:
    """The window's numbers; ``loop_s`` is the CPU of the thread running the loop alone."""
    return {
        f"loop_ms_per_frame_{height}": loop_s / max(frames, 1) * 1e3,
        f"fps_{height}": frames / seconds,
        f"cpu_ms_per_frame_{height}": cpu_s / max(frames, 1) * 1e3,
        f"p50_ms_{height}": pct(lat_ms, 0.5) if lat_ms else float("nan"),
        f"p99_ms_{height}": pct(lat_ms, 0.99) if lat_ms else float("nan"),
        f"rss_mib_{height}": rss_kib() / 1024,
        f"undecoded_{height}": undecoded,
    }


def agent_result(
    k: int,
    seconds: float,
    cpu_s: float,
    arrivals: list[list[int]],
    window: tuple[int, int],
    peer: dict[str, Any],
    ready: int,
    received: list[list[int]],
) -> dict[str, Any]:
    """Frames in the window, their inter-arrival jitter, and what the peer heard.

    ``arrivals`` are each room's frames that carried the peer's tone, ``received`` every frame
    its stream yielded.  Under overload the two part: the native core keeps yielding a frame
    every 10 ms, concealed or silent when the peer's packets came late or its own captures
    fell behind, so the tone share measures the whole pipeline (both processes, the server)
    and the received share what the SDK delivered, room by room.
    """
    start, end = window
    expected = seconds * 100

    def inside(times: list[int]) -> list[int]:
        return [t for t in times if start <= t <= end]

    def jitter_p99(rooms: list[list[int]]) -> float:
        gaps = [
            abs((b - a) / 1e6 - 10.0)
            for times in rooms
            for a, b in itertools.pairwise(inside(times))
        ]
        return pct(gaps, 0.99) if gaps else float("nan")

    counts = [len(inside(times)) for times in received]
    expected_out = peer["expected"]
    return {
        f"k{k}_cpu_cores": cpu_s / seconds,
        f"k{k}_rooms_ready": ready / k,
        f"k{k}_in_delivered": sum(len(inside(times)) for times in arrivals) / (k * expected),
        f"k{k}_in_received": sum(counts) / (k * expected),
        f"k{k}_in_worst_room": min(counts, default=0) / expected,
        f"k{k}_out_delivered": peer["received"] / expected_out if expected_out else 0.0,
        f"k{k}_jitter_p99_ms": jitter_p99(arrivals),
        f"k{k}_received_jitter_p99_ms": jitter_p99(received),
        f"k{k}_peer_jitter_p99_ms": peer["jitter_p99_ms"],
        f"k{k}_peer_cpu_cores": peer["cpu_cores"],
    }


def start_peer(args: Any, prefix: str, k: int, frames_out: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(HERE / "peer.py"), "--url", args.url, "--key", args.key,
           "--secret", args.secret, "--prefix", prefix, "--k", str(k),
           "--expected", str(frames_out)]
    pin = pinned_cores()  # the measured side's core is its own: the peer runs on the others
    peer = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        preexec_fn=None if pin is None else lambda: os.sched_setaffinity(0, pin[0]),
    )
    assert peer.stdout is not None
    line = peer.stdout.readline().strip()  # blocks this process only before measuring
    if line != "ready":
        peer.kill()
        raise RuntimeError(f"the peer did not start: {line!r}")
    return peer


def stop_peer(peer: subprocess.Popen[str]) -> dict[str, Any]:
    """Tell the peer to stop listening; its counts (blocking: call it from a thread)."""
    out, _ = peer.communicate("stop\n", timeout=60)
    return dict(json.loads(out.strip().splitlines()[-1]))


def stream_payloads(quick: bool) -> tuple[Path, str]:
    """A file of random bytes (incompressible, like media) and a text of random words."""
    scale = 10 if quick else 1
    size = STREAM_FILE_MB * 1_000_000 // scale
    path = Path(tempfile.gettempdir()) / f"lkanyio-bench-{os.getpid()}.bin"
    path.write_bytes(os.urandom(size))
    rnd = random.Random(18)
    words = ["".join(rnd.choices(string.ascii_lowercase, k=rnd.randint(2, 9))) for _ in range(2000)]
    text_size = STREAM_TEXT_MB * 1_000_000 // scale
    text = " ".join(rnd.choices(words, k=text_size // 5))[:text_size]
    return path, text.ljust(text_size, ".")


def stream_result(kind: str, size: int, t0: float, opened: float, done: float) -> dict[str, Any]:
    return {f"{kind}_mb_s": size / 1e6 / (done - t0), f"{kind}_read_all_s": done - opened}


STREAM_REPS = {"file": 1, "text": 5}
"""Transfers per kind and side: the 1 MB text takes ~0.1 s, so one transfer is mostly noise
(two runs of the same code read 1.22x and 0.63x the floor); its rows are the median of five."""


def median_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each metric's median over the transfers of one kind."""
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


# -- lkanyio -------------------------------------------------------------------------------------


async def lk_wait_for(room: Any, identity: str) -> Any:
    import anyio

    with anyio.fail_after(FIRST_WAIT):
        while identity not in room.remote_participants:
            await anyio.sleep(0.01)
    return room.remote_participants[identity]


async def lk_video(args: Any) -> dict[str, Any]:
    import lkanyio

    out: dict[str, Any] = {}
    for width, height in VIDEO_SIZES:
        out.update(await lk_video_size(args, width, height))
    frame = lkanyio.VideoFrame.create(1920, 1080, lkanyio.VideoBufferType.I420)
    paint_counter(frame.data, 1920, 1080, 1)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for _ in range(CONVERT_FRAMES):
        frame.convert(lkanyio.VideoBufferType.RGBA)
    out["convert_fps_1080"] = CONVERT_FRAMES / (time.perf_counter() - t0)
    return out


async def lk_video_size(args: Any, width: int, height: int) -> dict[str, Any]:
    import anyio

    import lkanyio

    seconds = args.seconds or VIDEO_SECONDS
    room_name = f"bench-video-{os.getpid()}-{height}"
    captured: dict[int, int] = {}
    rgba = lkanyio.VideoBufferType.RGBA
    async with lkanyio.connect(args.url, token(args.key, args.secret, "rx", room_name)) as rx:
        async with rx.events() as events, lkanyio.connect(
            args.url, token(args.key, args.secret, "tx", room_name)
        ) as tx:
            await tx.local_participant.set_attributes(ANNOUNCE)
            await lk_wait_for(rx, "tx")
            async with (
                lkanyio.VideoSource(width, height) as source,
                lkanyio.LocalVideoTrack.create_video_track("cam", source) as track,
            ):
                options = lkanyio.TrackPublishOptions(
                    source=lkanyio.TrackSource.CAMERA,
                    simulcast=False,
                    video_encoding=lkanyio.VideoEncoding(
                        max_bitrate=video_bitrate(height), max_framerate=VIDEO_FPS
                    ),
                )
                await tx.local_participant.publish_track(track, options)
                with anyio.fail_after(FIRST_WAIT):
                    async for event in events:
                        if isinstance(event, lkanyio.TrackSubscribed):
                            remote = event.track
                            break
                frame = lkanyio.VideoFrame(width, height, lkanyio.VideoBufferType.I420,
                                           i420_base(width, height))

                async def feed() -> None:
                    t0, i = time.perf_counter(), 0
                    while True:
                        paint_counter(frame.data, width, height, i)  # type: ignore[arg-type]
                        captured[i % 4096] = time.perf_counter_ns()
                        source.capture_frame(frame)
                        i += 1
                        await anyio.sleep(max(0.0, t0 + i / VIDEO_FPS - time.perf_counter()))

                async with (
                    lkanyio.VideoStream(remote, format=rgba) as stream,
                    anyio.create_task_group() as tg,
                ):
                    tg.start_soon(feed)
                    with anyio.fail_after(FIRST_WAIT):
                        async for ev in stream:
                            if read_counter(ev.frame.data, ev.frame.width, ev.frame.height):
                                break
                    frames, undecoded, lat = 0, 0, []
                    c0, t0, l0 = cpu(), time.perf_counter_ns(), time.thread_time()
                    end = t0 + int(seconds * 1e9)
                    with anyio.fail_after(seconds + FIRST_WAIT):
                        async for ev in stream:
                            now = time.perf_counter_ns()
                            frames += 1
                            n = read_counter(ev.frame.data, ev.frame.width, ev.frame.height)
                            if n is None or n not in captured:
                                undecoded += 1
                            else:
                                lat.append((now - captured[n]) / 1e6)
                            if now >= end:
                                break
                    elapsed, cpu_s = (time.perf_counter_ns() - t0) / 1e9, cpu() - c0
                    result = video_result(
                        height, frames, elapsed, cpu_s, lat, undecoded, time.thread_time() - l0
                    )
                    tg.cancel_scope.cancel()
    return result


async def lk_agent(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in AGENT_K:
        out.update(await lk_agent_k(args, k))
    return out


async def lk_agent_k(args: Any, k: int) -> dict[str, Any]:
    import anyio

    import lkanyio

    seconds = args.seconds or AGENT_SECONDS
    frames_out = int(seconds * 100)
    prefix = f"bench-agent-{os.getpid()}-{k}"
    peer = await anyio.to_thread.run_sync(start_peer, args, prefix, k, frames_out)
    reply = lkanyio.AudioFrame(tone(), sample_rate=48_000, num_channels=1, samples_per_channel=480)
    arrivals: list[list[int]] = [[] for _ in range(k)]
    received: list[list[int]] = [[] for _ in range(k)]
    hearing, subscribed = [0], [0]
    go = anyio.Event()
    mic = lkanyio.TrackSource.MICROPHONE

    async def agent(i: int) -> None:
        try:
            await room_agent(i)
        except lkanyio.LiveKitError:  # never ready: counts so (see rooms_ready)
            pass

    async def room_agent(i: int) -> None:
        tok = token(args.key, args.secret, "agent", f"{prefix}-{i}")
        await anyio.sleep(i * JOIN_STAGGER)
        async with lkanyio.connect(args.url, tok) as room:
            other = await lk_wait_for(room, "peer")
            async with (
                lkanyio.AudioStream.from_participant(
                    other, mic, sample_rate=16_000, overflow="drop_oldest"
                ) as stream,
                lkanyio.AudioSource(48_000, 1) as source,
                lkanyio.LocalAudioTrack.create_audio_track("reply", source) as track,
                anyio.create_task_group() as tg,
            ):
                # Measure only once the peer hears this track: under load its subscription
                # can take seconds, and frames written before it are never delivered.
                async with room.events() as events:
                    await room.local_participant.publish_track(
                        track, lkanyio.TrackPublishOptions(source=mic)
                    )
                    async for event in events:
                        if isinstance(event, lkanyio.LocalTrackSubscribed):
                            subscribed[0] += 1
                            break

                async def listen() -> None:
                    mine, every = arrivals[i], received[i]
                    async for ev in stream:
                        now = time.perf_counter_ns()  # one arrival time for both lists (as the floor)
                        every.append(now)
                        if not silent(ev.frame.data):
                            if not mine:
                                hearing[0] += 1
                            mine.append(now)

                tg.start_soon(listen)
                await go.wait()
                for _ in range(frames_out):
                    await source.capture_frame(reply)
                await anyio.sleep_forever()  # until the measurement is over

    try:
        async with anyio.create_task_group() as tg:
            for i in range(k):
                tg.start_soon(agent, i)
            # Rooms not ready by then are measured as they are (their frames count as lost):
            # on 2 busy cores the server sometimes never finishes a subscription.
            with anyio.move_on_after(READY_WAIT + k * JOIN_STAGGER):
                while hearing[0] < k or subscribed[0] < k:
                    await anyio.sleep(0.05)
            ready = min(hearing[0], subscribed[0])
            c0, t0 = cpu(), time.perf_counter_ns()
            go.set()
            await anyio.sleep(seconds)
            cpu_s, t1 = cpu() - c0, time.perf_counter_ns()
            await anyio.sleep(DRAIN)
            heard = await anyio.to_thread.run_sync(stop_peer, peer)
            tg.cancel_scope.cancel()
    finally:
        if peer.poll() is None:
            peer.kill()
    return agent_result(k, (t1 - t0) / 1e9, cpu_s, arrivals, (t0, t1), heard, ready, received)


async def lk_data_stream(args: Any) -> dict[str, Any]:
    import anyio

    import lkanyio

    path, text = stream_payloads(args.quick)
    size = path.stat().st_size
    room_name = f"bench-streams-{os.getpid()}"
    out: dict[str, Any] = {}
    try:
        async with lkanyio.connect(args.url, token(args.key, args.secret, "rx", room_name)) as rx:
            async with (
                rx.byte_streams(max_buffered_bytes=2 * size) as files,
                rx.text_streams(max_buffered_bytes=2 * len(text)) as texts,
                lkanyio.connect(args.url, token(args.key, args.secret, "tx", room_name)) as tx,
            ):
                await tx.local_participant.set_attributes(ANNOUNCE)
                await lk_wait_for(rx, "tx")
                sender = tx.local_participant
                for kind, incoming, length in (("file", files, size), ("text", texts, len(text))):
                    results = []
                    for _ in range(STREAM_REPS[kind]):
                        async with anyio.create_task_group() as tg:
                            t0 = time.perf_counter()
                            if kind == "file":
                                tg.start_soon(sender.send_file, str(path))
                            else:
                                tg.start_soon(sender.send_text, text)
                            with anyio.fail_after(120):
                                reader = await incoming.receive()
                                opened = time.perf_counter()
                                content = await reader.read_all()
                            done = time.perf_counter()
                        if len(content) != length:
                            raise RuntimeError(f"{kind}: {len(content)} of {length}")
                        results.append(stream_result(kind, length, t0, opened, done))
                    out.update(median_results(results))
    finally:
        path.unlink()
    return out


# -- the official asyncio SDK ------------------------------------------------------------------


async def official_wait_for(room: Any, identity: str) -> Any:
    import asyncio

    async def present() -> None:
        while identity not in room.remote_participants:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(present(), FIRST_WAIT)
    return room.remote_participants[identity]


async def official_video(args: Any) -> dict[str, Any]:
    from livekit import rtc

    out: dict[str, Any] = {}
    for width, height in VIDEO_SIZES:
        out.update(await official_video_size(args, width, height))
    frame = rtc.VideoFrame(1920, 1080, rtc.VideoBufferType.I420, i420_base(1920, 1080))
    paint_counter(frame.data, 1920, 1080, 1)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for _ in range(CONVERT_FRAMES):
        frame.convert(rtc.VideoBufferType.RGBA)
    out["convert_fps_1080"] = CONVERT_FRAMES / (time.perf_counter() - t0)
    return out


async def official_video_size(args: Any, width: int, height: int) -> dict[str, Any]:
    import asyncio

    from livekit import rtc

    seconds = args.seconds or VIDEO_SECONDS
    room_name = f"bench-video-{os.getpid()}-{height}"
    captured: dict[int, int] = {}
    rx, tx = rtc.Room(), rtc.Room()
    subscribed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_subscribed(track: Any, _publication: Any, _participant: Any) -> None:
        if not subscribed.done():
            subscribed.set_result(track)

    rx.on("track_subscribed", on_subscribed)
    await rx.connect(args.url, token(args.key, args.secret, "rx", room_name))
    await tx.connect(args.url, token(args.key, args.secret, "tx", room_name))
    await tx.local_participant.set_attributes(ANNOUNCE)
    await official_wait_for(rx, "tx")
    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=False,
        video_encoding=rtc.VideoEncoding(max_bitrate=video_bitrate(height), max_framerate=VIDEO_FPS),
    )
    await tx.local_participant.publish_track(track, options)
    remote = await asyncio.wait_for(subscribed, FIRST_WAIT)
    frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, i420_base(width, height))

    async def feed() -> None:
        t0, i = time.perf_counter(), 0
        while True:
            paint_counter(frame.data, width, height, i)  # type: ignore[arg-type]
            captured[i % 4096] = time.perf_counter_ns()
            source.capture_frame(frame)
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / VIDEO_FPS - time.perf_counter()))

    stream = rtc.VideoStream(remote, format=rtc.VideoBufferType.RGBA)
    feeder = asyncio.ensure_future(feed())

    async def first() -> None:
        async for ev in stream:
            if read_counter(ev.frame.data, ev.frame.width, ev.frame.height):
                return

    await asyncio.wait_for(first(), FIRST_WAIT)
    frames, undecoded, lat = 0, 0, []
    c0, t0, l0 = cpu(), time.perf_counter_ns(), time.thread_time()
    end = t0 + int(seconds * 1e9)

    async def measure() -> None:
        nonlocal frames, undecoded
        async for ev in stream:
            now = time.perf_counter_ns()
            frames += 1
            n = read_counter(ev.frame.data, ev.frame.width, ev.frame.height)
            if n is None or n not in captured:
                undecoded += 1
            else:
                lat.append((now - captured[n]) / 1e6)
            if now >= end:
                return

    await asyncio.wait_for(measure(), seconds + FIRST_WAIT)
    elapsed, cpu_s = (time.perf_counter_ns() - t0) / 1e9, cpu() - c0
    result = video_result(
        height, frames, elapsed, cpu_s, lat, undecoded, time.thread_time() - l0
    )
    feeder.cancel()
    await stream.aclose()
    await tx.disconnect()
    await rx.disconnect()
    return result


async def official_agent(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in AGENT_K:
        out.update(await official_agent_k(args, k))
    if any(key.endswith("_teardown_stuck_tasks") for key in out):
        # asyncio.run would wait for the stuck tasks for ever (seen once in a full run: a
        # process flooded with native events at 107% CPU 9 minutes after its last window, its
        # coroutines never ending): the result is printed here and the process ends.
        print(json.dumps(out), flush=True)
        os._exit(0)
    return out


async def official_agent_k(args: Any, k: int) -> dict[str, Any]:
    import asyncio

    from livekit import rtc

    seconds = args.seconds or AGENT_SECONDS
    frames_out = int(seconds * 100)
    prefix = f"bench-agent-{os.getpid()}-{k}"
    peer = await asyncio.to_thread(start_peer, args, prefix, k, frames_out)
    reply = rtc.AudioFrame(tone(), 48_000, 1, 480)
    arrivals: list[list[int]] = [[] for _ in range(k)]
    received: list[list[int]] = [[] for _ in range(k)]
    hearing, subscribed = [0], [0]
    go = asyncio.Event()
    rooms: list[Any] = []
    listeners: list[asyncio.Future[None]] = []
    mic = rtc.TrackSource.SOURCE_MICROPHONE

    async def agent(i: int) -> None:
        room = rtc.Room()
        rooms.append(room)

        def on_subscribed(_publication: Any) -> None:
            subscribed[0] += 1

        room.on("local_track_subscribed", on_subscribed)
        await asyncio.sleep(i * JOIN_STAGGER)
        await room.connect(args.url, token(args.key, args.secret, "agent", f"{prefix}-{i}"))
        other = await official_wait_for(room, "peer")
        stream = rtc.AudioStream.from_participant(
            participant=other, track_source=mic, sample_rate=16_000, num_channels=1
        )
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("reply", source)
        await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=mic))

        async def listen() -> None:
            mine, every = arrivals[i], received[i]
            async for ev in stream:
                now = time.perf_counter_ns()  # one arrival time for both lists (as the floor)
                every.append(now)
                if not silent(ev.frame.data):
                    if not mine:
                        hearing[0] += 1
                    mine.append(now)

        listeners.append(asyncio.ensure_future(listen()))
        await go.wait()
        for _ in range(frames_out):
            await source.capture_frame(reply)

    async def until(condition: Any) -> None:
        while not condition():
            if all(task.done() for task in agents):
                return  # every room that could is ready; a failed one counts as not ready
            await asyncio.sleep(0.05)

    agents = [asyncio.ensure_future(agent(i)) for i in range(k)]
    try:
        # As on the lkanyio side, rooms not ready by then are measured as they are.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                until(lambda: hearing[0] >= k and subscribed[0] >= k),
                READY_WAIT + k * JOIN_STAGGER,
            )
        ready = min(hearing[0], subscribed[0])
        c0, t0 = cpu(), time.perf_counter_ns()
        go.set()
        await asyncio.sleep(seconds)
        cpu_s, t1 = cpu() - c0, time.perf_counter_ns()
        await asyncio.sleep(DRAIN)
        heard = await asyncio.to_thread(stop_peer, peer)
    finally:
        for task in agents + listeners:
            task.cancel()
        stuck = await _within(TEARDOWN_WAIT, agents + listeners)
        stuck += await _within(TEARDOWN_WAIT, [asyncio.ensure_future(r.disconnect()) for r in rooms])
        if peer.poll() is None:
            peer.kill()
    result = agent_result(k, (t1 - t0) / 1e9, cpu_s, arrivals, (t0, t1), heard, ready, received)
    if stuck:
        result[f"k{k}_teardown_stuck_tasks"] = stuck
    return result


async def _within(seconds: float, tasks: list[Any]) -> int:
    """Wait up to ``seconds`` for ``tasks`` (cancelled or not) to end; how many did not."""
    import asyncio

    if not tasks:
        return 0
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:  # as gather(return_exceptions=True) did: retrieved, not raised
        if not task.cancelled():
            task.exception()
    return len(pending)


async def official_data_stream(args: Any) -> dict[str, Any]:
    import asyncio

    from livekit import rtc

    path, text = stream_payloads(args.quick)
    size = path.stat().st_size
    room_name = f"bench-streams-{os.getpid()}"
    rx, tx = rtc.Room(), rtc.Room()
    loop = asyncio.get_running_loop()
    finished: dict[str, asyncio.Future[tuple[float, int]]] = {
        "file": loop.create_future(), "text": loop.create_future()
    }
    opened: dict[str, float] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def read_file(reader: Any) -> None:
        parts = [chunk async for chunk in reader]  # the byte reader has no read_all
        finished["file"].set_result((time.perf_counter(), sum(map(len, parts))))

    async def read_text(reader: Any) -> None:
        content = await reader.read_all()
        finished["text"].set_result((time.perf_counter(), len(content)))

    def on_file(reader: Any, _identity: str) -> None:
        opened["file"] = time.perf_counter()
        tasks.add(asyncio.ensure_future(read_file(reader)))

    def on_text(reader: Any, _identity: str) -> None:
        opened["text"] = time.perf_counter()
        tasks.add(asyncio.ensure_future(read_text(reader)))

    rx.register_byte_stream_handler("", on_file)
    rx.register_text_stream_handler("", on_text)
    out: dict[str, Any] = {}
    try:
        await rx.connect(args.url, token(args.key, args.secret, "rx", room_name))
        await tx.connect(args.url, token(args.key, args.secret, "tx", room_name))
        await tx.local_participant.set_attributes(ANNOUNCE)
        await official_wait_for(rx, "tx")
        for kind, length in (("file", size), ("text", len(text))):
            results = []
            for _ in range(STREAM_REPS[kind]):
                finished[kind] = loop.create_future()
                t0 = time.perf_counter()
                if kind == "file":
                    sending = asyncio.ensure_future(tx.local_participant.send_file(str(path)))
                else:
                    sending = asyncio.ensure_future(tx.local_participant.send_text(text))
                done, got = await asyncio.wait_for(finished[kind], 120)
                await sending
                if got != length:
                    raise RuntimeError(f"{kind}: {got} of {length}")
                results.append(stream_result(kind, length, t0, opened[kind], done))
            out.update(median_results(results))
        await tx.disconnect()
        await rx.disconnect()
    finally:
        path.unlink()
    return out
