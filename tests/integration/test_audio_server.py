"""Audio through a real server (both backends): tone fidelity, mute, unsubscribe, slow consumers."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import lkanyio
from _media import RATE, dominant_frequency, tone_frames
from _util import TokenFactory, joined, next_event

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]





async def publish_tone(
    room: lkanyio.Room, hz: float, seconds: float, ready: anyio.Event | None = None
) -> None:
    async with lkanyio.AudioSource(RATE, 1) as source:
        async with lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track:
            publication = await room.local_participant.publish_track(track)
            await publication.wait_for_subscription()
            if ready is not None:
                await ready.wait()
            for frame in tone_frames(hz, seconds):
                await source.capture_frame(frame)
            await source.wait_for_playout()


# Every 10 ms frame after the tone starts must carry it: the native jitter buffer conceals late
# packets with quieter frames when the machine's CPU is starved (measured: 2 of 5 runs failed with
# four xdist workers on two cores, 0 of 6 alone), so this runs in scripts/test's real-time phase.
@pytest.mark.realtime
async def test_a_sine_arrives_at_its_frequency(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, anyio.create_task_group() as tg:
            tg.start_soon(publish_tone, alice, 440.0, 4.0)
            subscribed = await next_event(events, lkanyio.TrackSubscribed)
            samples: list[int] = []
            quiet_frames = 0
            async with lkanyio.AudioStream(subscribed.track, sample_rate=RATE) as stream:
                with anyio.fail_after(20):
                    async for event in stream:
                        loud = max(event.frame.data, default=0) > 2000
                        # Skip the leading silence until the tone starts; after that every
                        # 10 ms frame must carry it (a dropout or a lost frame shows here).
                        if samples or loud:
                            samples.extend(event.frame.data)
                            quiet_frames += not loud
                        if len(samples) >= RATE * 2:
                            break
                stats = stream.statistics()
                assert not stats.overflowed
                assert stats.received >= 200
            assert quiet_frames == 0
            assert len(samples) == RATE * 2  # whole 10 ms frames, none short
            assert abs(dominant_frequency(samples, RATE) - 440.0) <= 5.0


async def test_a_stream_by_participant_follows_the_microphone_it_publishes_later(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        alice_seen_by_bob = bob.remote_participants["alice"]
        with pytest.raises(TypeError, match="TrackSource"):
            lkanyio.AudioStream.from_participant(alice_seen_by_bob, 2)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="participant"):
            lkanyio.AudioStream.from_participant("alice")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="num_channels"):
            lkanyio.AudioStream.from_participant(alice_seen_by_bob, num_channels=3)
        async with (
            lkanyio.AudioStream.from_participant(
                alice_seen_by_bob, lkanyio.TrackSource.MICROPHONE, sample_rate=RATE
            ) as stream,
            anyio.create_task_group() as tg,
        ):
            # Nothing is published yet; the stream waits for it.
            tg.start_soon(publish_microphone, alice, 660.0, 4.0)
            samples: list[int] = []
            with anyio.fail_after(20):
                async for event in stream:
                    if samples or max(event.frame.data, default=0) > 2000:
                        samples.extend(event.frame.data)
                    if len(samples) >= RATE * 2:
                        break
            assert abs(dominant_frequency(samples, RATE) - 660.0) <= 5.0


async def publish_microphone(room: lkanyio.Room, hz: float, seconds: float) -> None:
    async with lkanyio.AudioSource(RATE, 1) as source:
        async with lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track:
            await room.local_participant.publish_track(
                track, lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.MICROPHONE)
            )
            for frame in tone_frames(hz, seconds):
                await source.capture_frame(frame)


async def test_mute_unmute_and_unsubscribe(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events:
            async with lkanyio.AudioSource(RATE, 1) as source:
                async with lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track:
                    await alice.local_participant.publish_track(track)
                    subscribed = await next_event(events, lkanyio.TrackSubscribed)
                    track.mute()
                    muted = await next_event(events, lkanyio.TrackMuted)
                    assert muted.publication is subscribed.publication
                    assert muted.publication.muted
                    track.unmute()
                    unmuted = await next_event(events, lkanyio.TrackUnmuted)
                    assert not unmuted.publication.muted

                    stream = lkanyio.AudioStream(subscribed.track, sample_rate=RATE)
                    async with stream:
                        subscribed.publication.set_subscribed(False)
                        gone = await next_event(events, lkanyio.TrackUnsubscribed)
                        assert gone.publication is subscribed.publication
                        assert not subscribed.publication.subscribed
                        # The stream ends instead of hanging once the track is gone.
                        with anyio.fail_after(10):
                            async for _ in stream:
                                pass
                    subscribed.publication.set_subscribed(True)
                    again = await next_event(events, lkanyio.TrackSubscribed)
                    assert again.publication is subscribed.publication


WARM_UP = 10  # 10 ms frames: the tone's onset


# Every 10 ms frame after the tone's onset must carry it: the native jitter buffer conceals late
# packets with quieter frames when the machine's CPU is starved (measured: 2 of 5 runs failed with
# four xdist workers on two cores, 0 of 6 alone), so this runs in scripts/test's real-time phase.
@pytest.mark.realtime
async def test_slow_consumer_drops_while_a_fast_one_keeps_up(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(publish_tone, alice, 300.0, 3.0, ready)
            track = (await next_event(events, lkanyio.TrackSubscribed)).track
            slow = lkanyio.AudioStream(track, max_buffered=5, overflow="drop_oldest")
            fast = lkanyio.AudioStream(track)
            async with slow, fast:
                ready.set()
                fast_frames = 0
                tone_frames = 0
                with anyio.fail_after(20):
                    async for event in fast:
                        fast_frames += 1
                        # Once the tone is under way, every frame carries it: the stalled
                        # stream beside this one never costs it a frame.  Its first frames may
                        # ramp: with the tone starting ~0.2 s after bob joined, frames 2-5 of
                        # it came out of the native decoder at peaks 1261-1909 in 8 of 12 runs
                        # (the same values run after run; never with the tone starting 1 s or
                        # more after the join), the jitter buffer's onset, not a drop.
                        if tone_frames or max(event.frame.data, default=0) > 2000:
                            tone_frames += 1
                            if tone_frames > WARM_UP:
                                assert max(event.frame.data, default=0) > 2000, tone_frames
                        if tone_frames >= WARM_UP + 200:  # then 2 s of 10 ms frames
                            break
                stats = slow.statistics()
                # The slow stream kept only its newest 5 frames and counted the rest as drops:
                # nothing was waiting on it.  Both streams saw the same frames (each is its own
                # native stream, so they may start and stop a few frames apart).
                assert stats.buffered == 5
                assert stats.received == 0
                fast_seen = fast.statistics().received + fast.statistics().buffered
                assert abs(stats.dropped + stats.buffered - fast_seen) <= 10
                assert not fast.statistics().overflowed


async def test_stats_of_a_published_track_and_of_the_session(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events:
            async with lkanyio.AudioSource(RATE, 1) as source:
                async with lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track:
                    await alice.local_participant.publish_track(track)
                    subscribed = await next_event(events, lkanyio.TrackSubscribed)
                    for frame in tone_frames(200.0, 0.5):
                        await source.capture_frame(frame)
                    stats = await track.get_stats()
                    (outbound,) = stats.of_type("outbound_rtp")
                    assert outbound.id
                    assert outbound.timestamp > 0
                    codec = {r.id: r for r in stats.of_type("codec")}[outbound["codec_id"]]
                    assert codec["mime_type"] == "audio/opus"
                    # The subscriber reports once packets have arrived: counted, and fewer
                    # than the publisher sent plus what is still in flight.
                    with anyio.fail_after(10):
                        while True:
                            received = (await subscribed.track.get_stats()).of_type("inbound_rtp")
                            if received and received[0].get("packets_received", 0):
                                break
                            await anyio.sleep(0.1)
                    assert received[0]["kind"] == "audio"
                    assert received[0]["bytes_received"] > 0  # type: ignore[operator]
                    # WebRTC caches a peer connection's stats for 50 ms, so a report taken right
                    # after the track's own may be older than the subscriber's (seen once under
                    # load: 1 sent, 2 received); the publisher's count must catch up.
                    with anyio.fail_after(10):
                        while True:
                            session = await alice.get_rtc_stats()
                            (sent,) = session.publisher.of_type("outbound_rtp")
                            if sent["packets_sent"] >= received[0]["packets_received"]:  # type: ignore[operator]
                                break
                            await anyio.sleep(0.1)
                    assert sent["bytes_sent"] > 0  # type: ignore[operator]
                    assert session.publisher.of_type("transport")
    with pytest.raises(lkanyio.ResourceClosedError):
        await alice.get_rtc_stats()
