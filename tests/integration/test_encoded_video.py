"""Pre-encoded video through the real livekit-server: an H264 and a VP8 bitstream made in the
test by PyAV (FFmpeg's libx264/libvpx) published with EncodedVideoSource, decoded by the
subscriber's native core; a keyframe request from the subscriber side reaches the feedback.
Interop: the official SDK (``livekit.rtc`` in a child process, tests/rtc_video_peer.py)
receives lkanyio's H264 and AV1 (encoded by the native core) and pre-encoded H264, and decodes
640x360 frames of the drawn halves; lkanyio receives its VP9.
"""

from __future__ import annotations

import fractions
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import lkanyio
from _util import EVENT_WAIT, TokenFactory, child_process, joined, next_event, receive_json

av = pytest.importorskip("av")
numpy = pytest.importorskip("numpy")

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

W, H = 640, 360
# Left half red, right half blue: a frame of the right size must also show each where drawn.
LEFT, RIGHT = (220, 30, 30), (40, 40, 220)


def _picture() -> Any:
    image = numpy.zeros((H, W, 3), numpy.uint8)
    image[:, : W // 2] = LEFT
    image[:, W // 2 :] = RIGHT
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


class Encoder:
    """Encodes the picture frame by frame; a keyframe when asked (as a publisher would)."""

    def __init__(self, codec: lkanyio.VideoCodec) -> None:
        name = {lkanyio.VideoCodec.H264: "libx264", lkanyio.VideoCodec.VP8: "libvpx"}[codec]
        self._ctx = av.CodecContext.create(name, "w")
        self._ctx.width, self._ctx.height, self._ctx.pix_fmt = W, H, "yuv420p"
        self._ctx.time_base = fractions.Fraction(1, 30)
        self._ctx.framerate = 30
        self._ctx.gop_size = 100_000  # keyframes only when asked: requests must get through
        if codec == lkanyio.VideoCodec.H264:
            self._ctx.options = {
                "preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                "x264-params": "repeat-headers=1",
            }
        else:
            self._ctx.options = {"deadline": "realtime", "lag-in-frames": "0"}
        self._picture = _picture()
        self._pts = 0

    def encode(self, keyframe: bool) -> list[tuple[bytes, bool]]:
        frame = self._picture
        frame.pts = self._pts
        kinds = av.video.frame.PictureType
        frame.pict_type = kinds.I if keyframe else kinds.NONE
        self._pts += 1
        return [(bytes(p), bool(p.is_keyframe)) for p in self._ctx.encode(frame)]


def _shows_halves(frame: lkanyio.VideoFrame) -> bool:
    rgba = frame.convert(lkanyio.VideoBufferType.RGBA)
    data, stride = rgba.data, rgba.width * 4
    for x0, colour in ((0.1, LEFT), (0.6, RIGHT)):
        left, right = int(W * x0), int(W * (x0 + 0.3))
        sums, n = [0, 0, 0], 0
        for y in range(int(H * 0.2), int(H * 0.8), 8):
            row = data[y * stride + left * 4 : y * stride + right * 4]
            for c in range(3):
                sums[c] += sum(row[c::4])
            n += right - left
        if any(abs(s / n - want) > 50 for s, want in zip(sums, colour, strict=True)):
            return False
    return True


@pytest.mark.parametrize("codec", [lkanyio.VideoCodec.H264, lkanyio.VideoCodec.VP8],
                         ids=lambda c: c.name)
async def test_pre_encoded_bitstream_reaches_the_subscriber(
    server_info: Any, token_factory: TokenFactory, room_name: str, codec: lkanyio.VideoCodec
) -> None:
    encoder = Encoder(codec)
    requests: list[lkanyio.EncodedVideoFeedback] = []
    keyframes_sent = 0
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with (
            bob.events() as events,
            lkanyio.EncodedVideoSource(W, H, codec=codec) as source,
            lkanyio.LocalVideoTrack.create_video_track("cam", source) as track,
            source.feedback() as feedback,
        ):
            options = lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.CAMERA)
            await alice.local_participant.publish_track(track, options)
            subscribed = await next_event(events, lkanyio.TrackSubscribed)
            assert subscribed.publication.mime_type.lower() == f"video/{codec.name.lower()}"
            async with (
                lkanyio.VideoStream(subscribed.track) as stream,
                anyio.create_task_group() as tg,
            ):

                async def feed() -> None:
                    nonlocal keyframes_sent
                    first = True
                    ts = 0
                    while True:
                        want_key = first
                        while True:  # what the receiving side asked since the last frame
                            try:
                                got = feedback.receive_nowait()
                            except anyio.WouldBlock:
                                break
                            if got.keyframe_requested:
                                requests.append(got)
                                want_key = True
                        for data, is_key in encoder.encode(want_key):
                            keyframes_sent += is_key
                            assert source.capture_frame(data, keyframe=is_key, timestamp_us=ts)
                        first = False
                        ts += 33_333
                        await anyio.sleep(1 / 30)

                tg.start_soon(feed)
                with anyio.fail_after(EVENT_WAIT):
                    async for event in stream:
                        got = event.frame
                        if (got.width, got.height) == (W, H) and _shows_halves(got) and requests:
                            break
                tg.cancel_scope.cancel()
    # The subscriber (the server on its behalf) asked for a keyframe, and the publisher's
    # answer — a keyframe outside the first — was what it decoded from.
    assert requests
    assert all(r.keyframe_requested for r in requests)
    assert keyframes_sent >= 2


async def test_encoded_source_checks_its_input() -> None:
    with pytest.raises(ValueError, match="H264 and VP8"):
        lkanyio.EncodedVideoSource(W, H, codec=lkanyio.VideoCodec.AV1)
    with pytest.raises(TypeError, match="VideoCodec"):
        lkanyio.EncodedVideoSource(W, H, codec="h264")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="width"):
        lkanyio.EncodedVideoSource(0, H, codec=lkanyio.VideoCodec.H264)
    async with lkanyio.EncodedVideoSource(W, H, codec=lkanyio.VideoCodec.H264) as source:
        with pytest.raises(ValueError, match="empty"):
            source.capture_frame(b"", keyframe=True)
        with pytest.raises(TypeError):
            source.capture_frame("text", keyframe=True)  # type: ignore[arg-type]
        track = lkanyio.LocalVideoTrack.create_video_track("cam", source)
        async with track:
            assert track.source is source
            options = lkanyio.TrackPublishOptions(video_codec=lkanyio.VideoCodec.VP8)
            with pytest.raises(ValueError, match="pre-encoded H264"):
                options._check_for(track)
        # Offline, nobody asks for anything: nothing reaches the stream.
        async with source.feedback() as feedback:
            for data, is_key in Encoder(lkanyio.VideoCodec.H264).encode(True):
                assert source.capture_frame(data, keyframe=is_key)
            assert source.take_feedback() == lkanyio.EncodedVideoFeedback(False)
            with pytest.raises(anyio.WouldBlock):
                feedback.receive_nowait()
        kept = source.feedback()
    with pytest.raises(anyio.EndOfStream):
        kept.receive_nowait()
    kept.close()
    with pytest.raises(lkanyio.ResourceClosedError):
        source.feedback()


# --- interop with the official SDK ------------------------------------------------------------

PEER = Path(__file__).resolve().parents[1] / "rtc_video_peer.py"


@asynccontextmanager
async def official_peer(url: str, token: str) -> AsyncIterator[BufferedByteReceiveStream]:
    """Start the official-SDK peer; yield its stdout (JSON lines) once it publishes."""
    async with child_process(sys.executable, str(PEER), url, token) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        assert (await receive_json(lines))["ready"] == "rtc-peer"
        yield lines


def _near(mean: list[float], colour: tuple[int, int, int]) -> bool:
    return all(abs(m - c) <= 50 for m, c in zip(mean, colour, strict=True))


@pytest.mark.parametrize(
    ("codec", "pre_encoded"),
    [(lkanyio.VideoCodec.H264, False), (lkanyio.VideoCodec.AV1, False),
     (lkanyio.VideoCodec.H264, True)],
    ids=["native_h264", "native_av1", "pre_encoded_h264"],
)
async def test_the_official_sdk_and_lkanyio_exchange_video(
    server_info: Any, token_factory: TokenFactory, room_name: str,
    codec: lkanyio.VideoCodec, pre_encoded: bool,
) -> None:
    async with (
        lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room,
        room.events() as events,
        official_peer(server_info.url, token_factory("rtc-peer", room_name)) as peer,
    ):
        # lkanyio receives the official SDK's VP9.
        subscribed = await next_event(events, lkanyio.TrackSubscribed)
        assert subscribed.publication.mime_type.lower() == "video/vp9"
        async with lkanyio.VideoStream(subscribed.track) as stream:
            with anyio.fail_after(EVENT_WAIT):
                async for event in stream:
                    got = event.frame
                    if (got.width, got.height) == (W, H) and _shows_halves(got):
                        break

        # The official SDK receives lkanyio's H264 / AV1 (encoded by the native core, or
        # pre-encoded H264).
        source: lkanyio.EncodedVideoSource | lkanyio.VideoSource
        if pre_encoded:
            source = lkanyio.EncodedVideoSource(W, H, codec=codec)
        else:
            source = lkanyio.VideoSource(W, H)
        encoder = Encoder(lkanyio.VideoCodec.H264)
        picture = _picture().to_ndarray(format="rgb24")
        rgba = numpy.concatenate([picture, numpy.full((H, W, 1), 255, numpy.uint8)], axis=2)
        raw = lkanyio.VideoFrame(W, H, lkanyio.VideoBufferType.RGBA, rgba.tobytes())
        async with source, lkanyio.LocalVideoTrack.create_video_track("cam", source) as track:
            options = lkanyio.TrackPublishOptions(
                source=lkanyio.TrackSource.CAMERA, video_codec=codec, simulcast=False,
                degradation_preference=lkanyio.DegradationPreference.MAINTAIN_RESOLUTION,
            )
            await room.local_participant.publish_track(track, options)
            async with anyio.create_task_group() as tg:

                async def feed() -> None:
                    first = True
                    while True:
                        if isinstance(source, lkanyio.EncodedVideoSource):
                            asked = source.take_feedback().keyframe_requested
                            for data, is_key in encoder.encode(first or asked):
                                source.capture_frame(data, keyframe=is_key)
                        else:
                            source.capture_frame(raw)
                        first = False
                        await anyio.sleep(1 / 30)

                tg.start_soon(feed)
                received = (await receive_json(peer))["video"]
                tg.cancel_scope.cancel()
    assert received["mime"].lower() == f"video/{codec.name.lower()}"
    assert (received["width"], received["height"]) == (W, H)
    assert _near(received["left"], LEFT), received
    assert _near(received["right"], RIGHT), received
