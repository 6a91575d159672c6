"""The main job: two participants exchange data, metadata, DTMF and a tone, and say what they saw.

Run it with ``./scripts/demo`` (or ``python -m lkanyio.demo``).  With no ``LIVEKIT_URL`` it starts a
local ``livekit-server`` inside a private network namespace (root needed, see ``lkanyio.testing``);
with ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET`` it uses that server.
"""

from __future__ import annotations

import argparse
import cmath
import math
import sys
import uuid
from array import array
from contextlib import ExitStack

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
TONE_HZ = 440.0
TONE_SECONDS = 1.0


def _tone_frames(seconds: float) -> list[lkanyio.AudioFrame]:
    """10 ms frames of a 440 Hz sine at half scale."""
    per_frame = SAMPLE_RATE // 100
    frames = []
    for index in range(round(seconds * 100)):
        start = index * per_frame
        samples = array(
            "h",
            (
                int(16_000 * math.sin(2 * math.pi * TONE_HZ * (start + i) / SAMPLE_RATE))
                for i in range(per_frame)
            ),
        )
        frames.append(
            lkanyio.AudioFrame(
                samples.tobytes(),
                sample_rate=SAMPLE_RATE,
                num_channels=1,
                samples_per_channel=per_frame,
            )
        )
    return frames


def dominant_frequency(samples: list[int], sample_rate: int) -> float:
    """Frequency of the strongest component between 50 Hz and 2 kHz (Goertzel-style scan).

    A 10 Hz scan over the last half second, then 1 Hz steps around the best bin.
    """
    window = samples[-sample_rate // 2 :]
    if not window:
        return 0.0

    def power(hz: float) -> float:
        w = 2 * math.pi * hz / sample_rate
        step = 2  # every other sample: plenty for tones below 2 kHz at 48 kHz
        acc = sum(window[k] * cmath.exp(-1j * w * k) for k in range(0, len(window), step))
        return abs(acc)

    coarse = max(range(50, 2000, 10), key=power)
    return float(max(range(coarse - 10, coarse + 11), key=power))


async def _alice(server: ServerInfo, room_name: str, ready: anyio.Event, log: list[str]) -> None:
    token = make_token(server, identity="alice", room=room_name, name="Alice")
    async with lkanyio.connect(server.url, token) as room:
        log.append(f"alice joined {room.name!r}")
        await ready.wait()
        lp = room.local_participant
        await lp.publish_data("hello from alice", topic="chat")
        await lp.set_metadata('{"mood": "curious"}')
        await lp.set_name("Alice L.")
        await lp.set_attributes({"role": "speaker"})
        await lp.publish_dtmf(code=1, digit="1")
        log.append("alice sent data, metadata, name, attributes and DTMF 1")

        async with lkanyio.AudioSource(SAMPLE_RATE, 1) as source:
            track = lkanyio.LocalAudioTrack.create_audio_track("tone", source)
            async with track:
                publication = await lp.publish_track(
                    track, lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.MICROPHONE)
                )
                log.append(f"alice published track {publication.sid}")
                with anyio.fail_after(20):
                    await publication.wait_for_subscription()
                for frame in _tone_frames(TONE_SECONDS + 1.0):
                    await source.capture_frame(frame)
                await source.wait_for_playout()
                await lp.unpublish_track(publication.sid)
        log.append("alice sent a 440 Hz tone and unpublished it")
        await anyio.sleep(0.5)


async def _bob(server: ServerInfo, room_name: str, ready: anyio.Event, log: list[str]) -> None:
    token = make_token(server, identity="bob", room=room_name, name="Bob")
    async with lkanyio.connect(server.url, token) as room, room.events() as events:
        log.append(f"bob joined {room.name!r}")
        ready.set()
        samples: list[int] = []
        with anyio.fail_after(60):
            async for event in events:
                if isinstance(event, lkanyio.DataReceived):
                    log.append(f"bob got data on {event.topic!r}: {event.data.decode()!r}")
                elif isinstance(event, lkanyio.ParticipantMetadataChanged):
                    log.append(f"bob saw alice's metadata become {event.metadata}")
                elif isinstance(event, lkanyio.ParticipantNameChanged):
                    log.append(f"bob saw alice's name become {event.name!r}")
                elif isinstance(event, lkanyio.ParticipantAttributesChanged):
                    log.append(f"bob saw alice's attributes change: {dict(event.changed)}")
                elif isinstance(event, lkanyio.SipDTMFReceived):
                    log.append(f"bob got DTMF {event.digit!r} (code {event.code})")
                elif isinstance(event, lkanyio.TrackSubscribed):
                    log.append(f"bob subscribed to alice's {event.publication.kind.name} track")
                    async with lkanyio.AudioStream(
                        event.track, sample_rate=SAMPLE_RATE, num_channels=1
                    ) as stream:
                        async for frame_event in stream:
                            samples.extend(frame_event.frame.data)
                            if len(samples) >= SAMPLE_RATE * TONE_SECONDS:
                                break
                    hz = dominant_frequency(samples, SAMPLE_RATE)
                    log.append(
                        f"bob received {len(samples) / SAMPLE_RATE:.2f} s of audio; "
                        f"dominant frequency {hz:.0f} Hz (sent {TONE_HZ:.0f} Hz)"
                    )
                elif isinstance(event, lkanyio.TrackUnpublished):
                    log.append("bob saw alice unpublish her track")
                    break


async def run(server: ServerInfo) -> list[str]:
    """Run both participants against ``server`` and return what they reported, in order."""
    room_name = f"demo-{uuid.uuid4().hex[:8]}"
    log: list[str] = []
    ready = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_bob, server, room_name, ready, log)
        tg.start_soon(_alice, server, room_name, ready, log)
    stats = lkanyio.statistics()
    log.append(
        f"after leaving: {stats.pending_requests} pending requests, "
        f"{stats.bound_handles} routed handles, {stats.live_handles} live handles"
    )
    return log


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lkanyio.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        server = external_server_from_env()
        if server is None:
            node_ip = enter_private_netns()
            local = stack.enter_context(LocalServer(node_ip=node_ip))
            server = local.info
            print(f"started livekit-server at {server.url} in a private network namespace")
        else:
            print(f"using the server at {server.url}")
        for line in anyio.run(run, server, backend=args.backend):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
