"""Soak: two participants stream audio and data for a long time; memory and handles stay flat.

Alice publishes a 440 Hz tone (10 ms frames, paced by the native queue) and both participants
send reliable data packets to each other; Bob decodes Alice's audio through an AudioStream.
Every ``--interval`` seconds one line reports the process's RSS, lkanyio's live and routed
handles and pending requests, and what was received.  After warm-up the RSS and handle counts
should stay flat; the last line compares the first report after warm-up with the last one.

    sudo python bench/soak.py                 # 10 minutes, local livekit-server in a netns
    sudo python bench/soak.py --seconds 120   # shorter
    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... python bench/soak.py

Not a CI test: it takes minutes, and a flat line is judged by eye (and by the summary).
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
import uuid
from array import array
from contextlib import ExitStack
from dataclasses import dataclass

import anyio

import lkanyio
from lkanyio.testing import (
    LocalServer,
    ServerInfo,
    enter_private_netns,
    external_server_from_env,
    make_token,
)

SAMPLE_RATE = 48_000
FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms
DATA_PER_SECOND = 20
WARM_UP = 60.0


@dataclass
class Counters:
    frames_sent: int = 0
    frames_received: int = 0
    data_sent: int = 0
    data_received: int = 0


def _rss_mib() -> float:
    """Resident set size right now (Linux: /proc/self/status), in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, as a fallback


def _tone() -> list[lkanyio.AudioFrame]:
    """One second of a 440 Hz tone as 100 frames of 10 ms (the sine repeats every second)."""
    frames = []
    for index in range(100):
        start = index * FRAME_SAMPLES
        samples = array(
            "h",
            (
                int(12_000 * math.sin(2 * math.pi * 440 * (start + i) / SAMPLE_RATE))
                for i in range(FRAME_SAMPLES)
            ),
        )
        frames.append(
            lkanyio.AudioFrame(
                samples.tobytes(),
                sample_rate=SAMPLE_RATE,
                num_channels=1,
                samples_per_channel=FRAME_SAMPLES,
            )
        )
    return frames


async def _send_data(room: lkanyio.Room, counters: Counters, stop: anyio.Event) -> None:
    payload = b"x" * 512
    while not stop.is_set():
        await room.local_participant.publish_data(payload, topic="soak")
        counters.data_sent += 1
        await anyio.sleep(1 / DATA_PER_SECOND)


async def _receive(room: lkanyio.Room, counters: Counters, stop: anyio.Event) -> None:
    async with room.events() as events, anyio.create_task_group() as tg:
        async for event in events:
            if stop.is_set():
                break
            if isinstance(event, lkanyio.DataReceived):
                counters.data_received += 1
            elif isinstance(event, lkanyio.TrackSubscribed) and isinstance(
                event.track, lkanyio.RemoteAudioTrack
            ):
                tg.start_soon(_listen, event.track, counters, stop)
        tg.cancel_scope.cancel()


async def _listen(track: lkanyio.RemoteAudioTrack, counters: Counters, stop: anyio.Event) -> None:
    async with lkanyio.AudioStream(track, overflow="drop_oldest") as stream:
        async for _event in stream:
            counters.frames_received += 1
            if stop.is_set():
                break


async def _stream_audio(room: lkanyio.Room, counters: Counters, stop: anyio.Event) -> None:
    frames = _tone()
    async with lkanyio.AudioSource(SAMPLE_RATE, 1) as source:
        track = lkanyio.LocalAudioTrack.create_audio_track("soak-tone", source)
        async with track:
            await room.local_participant.publish_track(
                track, lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.MICROPHONE)
            )
            while not stop.is_set():
                for frame in frames:
                    await source.capture_frame(frame)
                    counters.frames_sent += 1


async def soak(server: ServerInfo, seconds: float, interval: float) -> int:
    room_name = f"soak-{uuid.uuid4().hex[:8]}"
    alice_counters, bob_counters = Counters(), Counters()
    stop = anyio.Event()
    reports: list[tuple[float, float, int]] = []
    start = time.monotonic()

    def report() -> None:
        elapsed = time.monotonic() - start
        stats = lkanyio.statistics()
        rss = _rss_mib()
        reports.append((elapsed, rss, stats.live_handles))
        print(
            f"{elapsed:7.0f} s  rss {rss:7.1f} MiB  live handles {stats.live_handles:4d}  "
            f"routed {stats.bound_handles:3d}  pending {stats.pending_requests:3d}  "
            f"audio sent/received {alice_counters.frames_sent}/{bob_counters.frames_received}  "
            f"data a->b {alice_counters.data_sent}/{bob_counters.data_received}  "
            f"b->a {bob_counters.data_sent}/{alice_counters.data_received}",
            flush=True,
        )

    alice_token = make_token(server, identity="alice", room=room_name)
    bob_token = make_token(server, identity="bob", room=room_name)
    async with (
        lkanyio.connect(server.url, bob_token) as bob,
        lkanyio.connect(server.url, alice_token) as alice,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(_receive, bob, bob_counters, stop)
        tg.start_soon(_receive, alice, alice_counters, stop)
        tg.start_soon(_stream_audio, alice, alice_counters, stop)
        tg.start_soon(_send_data, alice, alice_counters, stop)
        tg.start_soon(_send_data, bob, bob_counters, stop)
        report()
        deadline = start + seconds
        while time.monotonic() < deadline:
            await anyio.sleep(min(interval, max(deadline - time.monotonic(), 0)))
            report()
        stop.set()
        tg.cancel_scope.cancel()

    final = lkanyio.statistics()
    print(
        f"after leaving: pending {final.pending_requests}, routed {final.bound_handles}, "
        f"live handles {final.live_handles}"
    )
    warm = [r for r in reports if r[0] >= WARM_UP] or reports
    first, last = warm[0], warm[-1]
    print(
        f"after warm-up ({first[0]:.0f} s -> {last[0]:.0f} s): rss {first[1]:.1f} -> "
        f"{last[1]:.1f} MiB ({last[1] - first[1]:+.1f}), live handles {first[2]} -> {last[2]}"
    )
    leaked = final.pending_requests or final.bound_handles or final.live_handles
    return 1 if leaked else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long (default 600)")
    parser.add_argument("--interval", type=float, default=30.0, help="report every N seconds")
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        server = external_server_from_env()
        if server is None:
            node_ip = enter_private_netns()
            server = stack.enter_context(LocalServer(node_ip=node_ip)).info
        print(f"soak: {args.seconds:.0f} s on {args.backend} against {server.url}", flush=True)
        return anyio.run(soak, server, args.seconds, args.interval, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
