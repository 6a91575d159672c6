"""Media parity with livekit.rtc through the real livekit-server: codecs, encoders, SVC modes,
frame metadata and audio features (the offline parts are in tests/unit/test_media_offline.py).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, joined, next_event
from lkanyio import VideoBufferType as VBT

W, H = 640, 360
# Frames of exactly W x H are awaited: a CPU-starved encoder (2 shared cores) must not scale
# down instead of dropping frames.
MAINTAIN_RESOLUTION = lkanyio.DegradationPreference.MAINTAIN_RESOLUTION

pytestmark = pytest.mark.usefixtures("no_leaks_after")

# Four quadrants, one colour each: a frame that arrives flipped, mirrored or scrambled reads as
# another layout, so a frame of the right size must also show each colour where it was drawn.
PALETTE = [(220, 30, 30), (30, 200, 40), (40, 40, 220), (230, 220, 40)]


def quadrants(width: int = W, height: int = H) -> lkanyio.VideoFrame:
    tl, tr, bl, br = (bytes([*c, 255]) for c in PALETTE)
    top = (tl * (width // 2) + tr * (width // 2)) * (height // 2)
    bottom = (bl * (width // 2) + br * (width // 2)) * (height // 2)
    return lkanyio.VideoFrame(width, height, VBT.RGBA, top + bottom)


def shows_quadrants(frame: lkanyio.VideoFrame) -> bool:
    """Whether each quadrant (sampled away from its edges) is its palette colour."""
    rgba = frame if frame.type == VBT.RGBA else frame.convert(VBT.RGBA)
    data, stride = rgba.data, rgba.width * 4
    for index, (x0, y0) in enumerate(((0.1, 0.1), (0.6, 0.1), (0.1, 0.6), (0.6, 0.6))):
        left, right = int(rgba.width * x0), int(rgba.width * (x0 + 0.3))
        rows = range(int(rgba.height * y0), int(rgba.height * (y0 + 0.3)))
        sums = [0, 0, 0]
        for y in rows:
            row = data[y * stride + left * 4 : y * stride + right * 4]
            for c in range(3):
                sums[c] += sum(row[c::4])
        n = len(rows) * (right - left)
        if any(abs(s / n - want) > 50 for s, want in zip(sums, PALETTE[index], strict=True)):
            return False
    return True


@pytest.mark.anyio
@pytest.mark.parametrize("codec", list(lkanyio.VideoCodec), ids=lambda c: c.name)
async def test_each_codec_publishes_640x360_through_the_server(
    server_info: Any, token_factory: TokenFactory, room_name: str, codec: lkanyio.VideoCodec
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, lkanyio.VideoSource(W, H) as source:
            async with lkanyio.LocalVideoTrack.create_video_track("cam", source) as track:
                options = lkanyio.TrackPublishOptions(
                    source=lkanyio.TrackSource.CAMERA,
                    video_codec=codec,
                    simulcast=False,
                    degradation_preference=MAINTAIN_RESOLUTION,
                )
                await alice.local_participant.publish_track(track, options)
                subscribed = await next_event(events, lkanyio.TrackSubscribed)
                frame = quadrants()
                async with (
                    lkanyio.VideoStream(subscribed.track) as stream,
                    anyio.create_task_group() as tg,
                ):

                    async def feed() -> None:
                        while True:
                            source.capture_frame(frame)
                            await anyio.sleep(1 / 30)

                    tg.start_soon(feed)
                    with anyio.fail_after(EVENT_WAIT):
                        async for event in stream:
                            got = event.frame
                            if (got.width, got.height) == (W, H) and shows_quadrants(got):
                                break
                    tg.cancel_scope.cancel()
                mime = subscribed.publication.mime_type.lower()
                stats = await track.get_stats()
                codecs = {str(r.get("mime_type", "")).lower() for r in stats.of_type("codec")}
        sent = SENT_AS.get(codec, codec)
        assert mime == f"video/{sent.name.lower()}", mime
        assert f"video/{sent.name.lower()}" in codecs, codecs


# Measured (livekit-ffi 0.13.2): the shipped libwebrtc's encoder factory offers VP8, VP9, AV1
# and H264 (the DEBUG log lists each: "Factory produced duplicate codecs, ignoring ... VP8 /
# VP9 / AV1 / H264"), no H265.  A track published with H265 is published as VP8, with no
# error and no log about it: the server's "mediaTrack published" has mime video/VP8.
SENT_AS = {lkanyio.VideoCodec.H265: lkanyio.VideoCodec.VP8}


# --- frame metadata ---------------------------------------------------------------------------

BASE_TS = 1_790_000_000_000_000  # a plausible capture time in µs: beyond 32 bits


# Measured (livekit-ffi 0.13.2, livekit-server 1.13.5): metadata travels in a packet trailer
# that any one feature switches on; with one feature listed (FRAME_ID alone), all three fields
# still arrived.  With none listed, no frame carries metadata.
@pytest.mark.anyio
@pytest.mark.parametrize("with_features", [True, False], ids=["features", "no_features"])
async def test_frame_metadata_round_trips_through_the_server(
    server_info: Any, token_factory: TokenFactory, room_name: str, with_features: bool
) -> None:
    features = tuple(lkanyio.FrameMetadataFeature) if with_features else ()
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, lkanyio.VideoSource(320, 240) as source:
            async with lkanyio.LocalVideoTrack.create_video_track("cam", source) as track:
                options = lkanyio.TrackPublishOptions(
                    source=lkanyio.TrackSource.CAMERA, frame_metadata_features=features
                )
                published = await alice.local_participant.publish_track(track, options)
                subscribed = await next_event(events, lkanyio.TrackSubscribed)
                assert published.frame_metadata_features == features
                assert subscribed.publication.frame_metadata_features == features
                assert subscribed.publication.audio_features == ()
                frame = quadrants(320, 240)
                seen: list[lkanyio.FrameMetadata | None] = []
                async with (
                    lkanyio.VideoStream(subscribed.track, max_buffered=100) as stream,
                    anyio.create_task_group() as tg,
                ):

                    async def feed() -> None:
                        for i in range(1, 100_000):
                            metadata = lkanyio.FrameMetadata(
                                user_timestamp=BASE_TS + i, frame_id=i, user_data=b"f%d" % i
                            )
                            source.capture_frame(frame, metadata=metadata)
                            await anyio.sleep(1 / 30)

                    tg.start_soon(feed)
                    shown = 0
                    with anyio.fail_after(EVENT_WAIT):
                        async for event in stream:
                            if shows_quadrants(event.frame):  # not the source's black frame
                                seen.append(event.metadata)
                                shown += 1
                            if shown >= 10:
                                break
                    tg.cancel_scope.cancel()
    if not with_features:
        assert seen == [None] * len(seen)
        return
    ids = []
    for metadata in seen:
        assert metadata is not None
        assert metadata.frame_id is not None
        ids.append(metadata.frame_id)
        assert metadata == lkanyio.FrameMetadata(
            user_timestamp=BASE_TS + metadata.frame_id,
            frame_id=metadata.frame_id,
            user_data=b"f%d" % metadata.frame_id,
        )
    assert ids == sorted(set(ids)), ids  # each frame's own values, in capture order


@pytest.mark.anyio
async def test_audio_features_of_a_published_track(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, lkanyio.AudioSource(48000, 2) as source:
            async with lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track:
                published = await alice.local_participant.publish_track(
                    track,
                    lkanyio.TrackPublishOptions(
                        source=lkanyio.TrackSource.MICROPHONE, dtx=False, preconnect_buffer=True
                    ),
                )
                subscribed = await next_event(events, lkanyio.TrackPublished)
                # Measured: what the options asked for, on both sides; two channels alone
                # do not announce STEREO.
                wanted = {
                    lkanyio.AudioTrackFeature.NO_DTX,
                    lkanyio.AudioTrackFeature.PRECONNECT_BUFFER,
                }
                assert set(published.audio_features) == wanted
                assert set(subscribed.publication.audio_features) == wanted
                assert published.frame_metadata_features == ()


# --- encoder backends and scalability modes ---------------------------------------------------


async def _frames_arrive(source: lkanyio.VideoSource, track: lkanyio.Track) -> None:
    """Feed the quadrants until ``track`` (subscribed) delivers them at 640x360."""
    frame = quadrants()
    async with lkanyio.VideoStream(track) as stream, anyio.create_task_group() as tg:

        async def feed() -> None:
            while True:
                source.capture_frame(frame)
                await anyio.sleep(1 / 30)

        tg.start_soon(feed)
        with anyio.fail_after(EVENT_WAIT):
            async for event in stream:
                got = event.frame
                if (got.width, got.height) == (W, H) and shows_quadrants(got):
                    break
        tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("codec", "backend", "software"),
    [
        (lkanyio.VideoCodec.VP8, lkanyio.VideoEncoderBackend.NVENC, "libvpx"),
        (lkanyio.VideoCodec.H264, lkanyio.VideoEncoderBackend.HARDWARE, "OpenH264"),
    ],
    ids=["VP8-NVENC", "H264-HARDWARE"],
)
async def test_a_hardware_encoder_the_machine_lacks_falls_back_to_software(
    server_info: Any,
    token_factory: TokenFactory,
    room_name: str,
    codec: lkanyio.VideoCodec,
    backend: lkanyio.VideoEncoderBackend,
    software: str,
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, lkanyio.VideoSource(W, H) as source:
            async with lkanyio.LocalVideoTrack.create_video_track("cam", source) as track:
                options = lkanyio.TrackPublishOptions(
                    source=lkanyio.TrackSource.CAMERA,
                    video_codec=codec,
                    video_encoder=backend,
                    simulcast=False,
                    degradation_preference=MAINTAIN_RESOLUTION,
                )
                await alice.local_participant.publish_track(track, options)
                subscribed = await next_event(events, lkanyio.TrackSubscribed)
                await _frames_arrive(source, subscribed.track)
                stats = await track.get_stats()
    encoders = {r.get("encoder_implementation") for r in stats.of_type("outbound_rtp")}
    assert encoders == {software}, encoders


@pytest.mark.anyio
async def test_scalability_modes_and_the_pre_encoded_backend(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.events() as events, lkanyio.VideoSource(W, H) as source:
            async with lkanyio.LocalVideoTrack.create_video_track("cam", source) as track:
                with pytest.raises(ValueError, match="PRE_ENCODED"):
                    await alice.local_participant.publish_track(
                        track,
                        lkanyio.TrackPublishOptions(
                            video_encoder=lkanyio.VideoEncoderBackend.PRE_ENCODED
                        ),
                    )
                assert alice.local_participant.track_publications == {}
                options = lkanyio.TrackPublishOptions(
                    source=lkanyio.TrackSource.CAMERA,
                    video_codec=lkanyio.VideoCodec.VP9,
                    scalability_mode="L3T3_KEY",
                    degradation_preference=MAINTAIN_RESOLUTION,
                )
                await alice.local_participant.publish_track(track, options)
                subscribed = await next_event(events, lkanyio.TrackSubscribed)
                assert subscribed.publication.mime_type.lower() == "video/vp9"
                await _frames_arrive(source, subscribed.track)
