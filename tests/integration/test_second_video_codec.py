"""A participant's second video track goes out in its own codec, not the first track's."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, assert_no_leaks, joined, next_event
from lkanyio import VideoCodec

pytestmark = pytest.mark.anyio

W, H = 640, 360


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Iterator[None]:
    yield
    gc.collect()
    assert_no_leaks()


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
    frame = lkanyio.VideoFrame(W, H, lkanyio.VideoBufferType.RGBA, bytes([90, 160, 30, 255]) * W * H)
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
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
    want = [f"video/{first.name.lower()}", f"video/{second.name.lower()}"]
    print("subscriber mime types", mimes, "sender codecs", sent)
    assert mimes == want
    assert want[0] in sent["a"], sent
    assert want[1] in sent["b"], sent
