"""The agent workload's remote peers: K participants in this process (lkanyio on trio).

    python bench/peer.py --url U --key K --secret S --prefix P --k K --expected N

Participant ``peer`` joins rooms ``P-0`` … ``P-(K-1)``, publishes a microphone track playing a
48 kHz tone in 10 ms frames, and listens to participant ``agent`` at 48 kHz.  Prints ``ready``
once every room is joined and publishing; on ``stop`` (stdin) prints one JSON object: how many
tone frames it heard from the agents (silence is not counted) and their p99 inter-arrival
jitter.  The same peer serves every measured side, so its cost is the same for all of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import anyio
from common import cpu, pct, silent, token, tone

import lkanyio


async def main(args: argparse.Namespace) -> None:
    frame = lkanyio.AudioFrame(tone(), sample_rate=48_000, num_channels=1, samples_per_channel=480)
    mic = lkanyio.TrackSource.MICROPHONE
    arrivals: list[list[int]] = [[] for _ in range(args.k)]
    joined = [0]

    async def peer(i: int) -> None:
        tok = token(args.key, args.secret, "peer", f"{args.prefix}-{i}")
        await anyio.sleep(i * 0.2)  # as bench/media.py's agents (JOIN_STAGGER)
        async with (
            lkanyio.connect(args.url, tok) as room,
            lkanyio.AudioSource(48_000, 1) as source,
            lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track,
            anyio.create_task_group() as tg,
        ):
            await room.local_participant.publish_track(track, lkanyio.TrackPublishOptions(source=mic))

            async def speak() -> None:
                while True:
                    await source.capture_frame(frame)

            tg.start_soon(speak)
            joined[0] += 1
            while "agent" not in room.remote_participants:
                await anyio.sleep(0.02)
            agent = room.remote_participants["agent"]
            async with lkanyio.AudioStream.from_participant(
                agent, mic, overflow="drop_oldest"
            ) as stream:
                mine = arrivals[i]
                async for ev in stream:
                    if not silent(ev.frame.data):
                        mine.append(time.perf_counter_ns())

    async with anyio.create_task_group() as tg:
        for i in range(args.k):
            tg.start_soon(peer, i)
        with anyio.fail_after(120):
            while joined[0] < args.k:
                await anyio.sleep(0.05)
        print("ready", flush=True)
        c0, t0 = cpu(), time.perf_counter()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        cores = (cpu() - c0) / (time.perf_counter() - t0)
        tg.cancel_scope.cancel()
    jitter = [
        abs((b - a) / 1e6 - 10.0) for times in arrivals for a, b in itertools.pairwise(times)
    ]
    print(json.dumps({
        "received": sum(map(len, arrivals)),
        "expected": args.expected * args.k,
        "jitter_p99_ms": pct(jitter, 0.99) if jitter else float("nan"),
        "cpu_cores": cores,
    }), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--url", "--key", "--secret", "--prefix"):
        parser.add_argument(name, required=True)
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--expected", type=int, required=True)
    anyio.run(main, parser.parse_args(), backend="trio")
