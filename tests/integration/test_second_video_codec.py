"""A participant's second video track goes out in its own codec, not the first track's.

Measured (livekit-ffi 0.13.2, livekit-server 1.13.5): on two peer connections the server answers
every later video section of the publisher connection with the first section's codec only, so
VP9 then H264 went out as VP9 twice - also from the official SDK when it asks for two
connections.  lkanyio used to ask for two; it now leaves the choice to the native core (one
connection), as the official SDK does.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, joined, next_event
from lkanyio import VideoCodec

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

W, H = 640, 360


def _options(codec: VideoCodec) -> lkanyio.TrackPublishOptions:
    return lkanyio.TrackPublishOptions(
        source=lkanyio.TrackSource.CAMERA,
        video_codec=codec,
        simulcast=False,
        degradation_preference=lkanyio.DegradationPreference.MAINTAIN_RESOLUTION,
    )


async def _first_frame(track: lkanyio.Track) -> lkanyio.VideoFrame:
    async with lkanyio.VideoStream(track) as stream:
        with anyio.fail_after(EVENT_WAIT):
            async for event in stream:
                if (event.frame.width, event.frame.height) == (W, H):
                    return event.frame
    raise AssertionError("the video stream ended")


async def _publish_two(
    server_info: Any,
    token_factory: TokenFactory,
    room_name: str,
    options: lkanyio.RoomOptions,
    first: VideoCodec,
    second: VideoCodec,
) -> tuple[list[str], dict[str, set[str]]]:
    """alice publishes a ``first`` then a ``second`` track (frames flowing); bob subscribes.

    Returns the mime types bob's publications have and the codecs alice's encoders report.
    """
    pixels = bytes([90, 160, 30, 255]) * W * H
    frame = lkanyio.VideoFrame(W, H, lkanyio.VideoBufferType.RGBA, pixels)
    async with joined(server_info, token_factory, room_name, "alice", "bob", options=options) as (
        alice,
        bob,
    ):
        async with (
            bob.events() as events,
            lkanyio.VideoSource(W, H) as source_a,
            lkanyio.VideoSource(W, H) as source_b,
            lkanyio.LocalVideoTrack.create_video_track("cam-a", source_a) as track_a,
            lkanyio.LocalVideoTrack.create_video_track("cam-b", source_b) as track_b,
            anyio.create_task_group() as tg,
        ):

            async def feed() -> None:
                while True:
                    source_a.capture_frame(frame)
                    source_b.capture_frame(frame)
                    await anyio.sleep(1 / 30)

            tg.start_soon(feed)
            local = alice.local_participant
            await local.publish_track(track_a, _options(first))
            sub_a = await next_event(events, lkanyio.TrackSubscribed)
            await _first_frame(sub_a.track)
            await local.publish_track(track_b, _options(second))
            sub_b = await next_event(events, lkanyio.TrackSubscribed)
            await _first_frame(sub_b.track)
            sent = {
                name: {str(r.get("mime_type", "")).lower() for r in stats.of_type("codec")}
                for name, stats in (
                    ("a", await track_a.get_stats()),
                    ("b", await track_b.get_stats()),
                )
            }
            tg.cancel_scope.cancel()
        mimes = [sub_a.publication.mime_type.lower(), sub_b.publication.mime_type.lower()]
    return mimes, sent


def _mime(codec: VideoCodec) -> str:
    return f"video/{codec.name.lower()}"


@pytest.mark.parametrize(
    ("first", "second"),
    [(VideoCodec.VP9, VideoCodec.H264), (VideoCodec.H264, VideoCodec.VP8)],
    ids=["VP9-H264", "H264-VP8"],
)
async def test_each_video_track_goes_out_in_its_own_codec(
    server_info: Any,
    token_factory: TokenFactory,
    room_name: str,
    first: VideoCodec,
    second: VideoCodec,
) -> None:
    mimes, sent = await _publish_two(
        server_info, token_factory, room_name, lkanyio.RoomOptions(), first, second
    )
    assert mimes == [_mime(first), _mime(second)], sent
    assert sent == {"a": {_mime(first)}, "b": {_mime(second)}}


async def test_on_two_peer_connections_the_second_track_takes_the_first_codec(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # The documented limit of single_peer_connection=False (RoomOptions, video_codec): the
    # server's, not lkanyio's; this test says when a server lifts it.
    options = lkanyio.RoomOptions(single_peer_connection=False)
    mimes, sent = await _publish_two(
        server_info, token_factory, room_name, options, VideoCodec.VP9, VideoCodec.H264
    )
    assert mimes == ["video/vp9", "video/vp9"], sent
    assert sent == {"a": {"video/vp9"}, "b": {"video/vp9"}}
