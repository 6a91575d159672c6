"""Video frames, conversion, sources and streams (offline and through a real server)."""

from __future__ import annotations

import gc
import struct
import tracemalloc
from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, assert_no_leaks, joined, next_event
from lkanyio import VideoBufferType as VBT

W, H = 320, 240


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Any:
    yield
    gc.collect()
    assert_no_leaks()


def solid(rgb: tuple[int, int, int], width: int = W, height: int = H) -> lkanyio.VideoFrame:
    return lkanyio.VideoFrame(width, height, VBT.RGBA, bytes([*rgb, 255]) * (width * height))


def mean_rgb(frame: lkanyio.VideoFrame) -> tuple[float, float, float]:
    rgba = frame if frame.type == VBT.RGBA else frame.convert(VBT.RGBA)
    data = rgba.data
    n = rgba.width * rgba.height
    return (sum(data[0::4]) / n, sum(data[1::4]) / n, sum(data[2::4]) / n)


def test_convert_round_trip_keeps_the_colour() -> None:
    frame = solid((200, 40, 90))
    i420 = frame.convert(VBT.I420)
    assert (i420.type, i420.width, i420.height) == (VBT.I420, W, H)
    assert len(i420.data) == W * H + 2 * (W // 2) * (H // 2)
    back = i420.convert(VBT.RGBA)
    for got, want in zip(mean_rgb(back), (200, 40, 90), strict=True):
        assert abs(got - want) <= 4
    assert frame.convert(VBT.BGRA).data[0:4].tobytes() == bytes([90, 40, 200, 255])


def test_conversions_the_native_core_cannot_do_are_right() -> None:
    # ABGR: every ABGR source used to abort the process; lkanyio reorders it to RGBA first.
    abgr = lkanyio.VideoFrame(2, 2, VBT.ABGR, bytes([255, 90, 40, 200]) * 3 + bytes([255, 0, 0, 0]))
    rgba = abgr.convert(VBT.RGBA)
    assert rgba.data.tobytes() == bytes([200, 40, 90, 255]) * 3 + bytes([0, 0, 0, 255])
    pixel, last = bytes([200, 40, 90, 255]), bytes([0, 0, 0, 255])
    assert abgr.convert(VBT.RGBA, flip_y=True).data.tobytes() == pixel + last + pixel * 2
    assert abgr.convert(VBT.BGRA).data[0:4].tobytes() == bytes([90, 40, 200, 255])
    big_abgr = lkanyio.VideoFrame(W, H, VBT.ABGR, bytes([255, 90, 40, 200]) * (W * H))
    assert mean_rgb(big_abgr.convert(VBT.I420)) == mean_rgb(solid((200, 40, 90)).convert(VBT.I420))
    with pytest.raises(ValueError, match="ABGR frames convert only to"):
        abgr.convert(VBT.I444)
    # I010 (10-bit samples): its strides count samples, not bytes.
    y, u, v = solid((200, 40, 90), 2, 2).convert(VBT.I420).data[3:6]
    i010 = lkanyio.VideoFrame(
        W, H, VBT.I010,
        b"".join(
            struct.pack("<H", value << 2) * count
            for value, count in [(y, W * H), (u, W * H // 4), (v, W * H // 4)]
        ),
    )
    for target in (VBT.RGBA, VBT.BGRA, VBT.I420):
        for got, want in zip(mean_rgb(i010.convert(target)), (200, 40, 90), strict=True):
            assert abs(got - want) <= 4, target
    # NV12 to NV12 (the native core aborts): a copy, rows reversed with flip_y.
    nv12 = lkanyio.VideoFrame(2, 4, VBT.NV12, bytes(range(8)) + bytes(range(100, 104)))
    copy = nv12.convert(VBT.NV12)
    assert copy == nv12
    assert copy.data.obj is not nv12.data.obj
    flipped = nv12.convert(VBT.NV12, flip_y=True)
    assert flipped.data.tobytes() == bytes([6, 7, 4, 5, 2, 3, 0, 1, 102, 103, 100, 101])
    # flip_y means the same for lkanyio's conversions and the native core's.
    i420 = lkanyio.VideoFrame(2, 4, VBT.I420, bytes(range(8)) + bytes([1, 2, 3, 4]))
    assert i420.convert(VBT.I420, flip_y=True).data[:8].tobytes() == flipped.data[:8].tobytes()


def test_sources_and_frames_smaller_than_4x4_are_refused() -> None:
    for width, height in [(1, 1), (3, 64), (64, 3)]:
        with pytest.raises(ValueError, match="at least 4x4"):
            lkanyio.VideoSource(width, height)
    source = lkanyio.VideoSource(64, 48)
    try:
        for width, height in [(2, 2), (3, 48)]:
            with pytest.raises(ValueError, match="at least 4x4"):
                source.capture_frame(solid((1, 2, 3), width, height))
        source.capture_frame(solid((1, 2, 3), 4, 4))
    finally:
        source.close()


def test_a_native_frame_is_copied_once() -> None:
    # Conversions and received frames share the copy out of native memory; tracemalloc sees
    # only Python allocations, so the peak is the new frame plus small change.
    i420 = solid((200, 40, 90), 1024, 1024).convert(VBT.I420)
    size = 1024 * 1024 * 4
    tracemalloc.start()
    try:
        rgba = i420.convert(VBT.RGBA)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rgba.data) == size
    assert peak < size * 1.25, peak


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, 0, VBT.RGBA, b""), ValueError),
        ((4, 4, VBT.RGBA, b"\0" * 63), ValueError),
        ((4, 4, VBT.I420, b"\0" * 16), ValueError),
        ((-4, 4, VBT.RGBA, b""), ValueError),
        ((4, 4, 99, b"\0" * 64), ValueError),
        ((4.0, 4, VBT.RGBA, b"\0" * 64), TypeError),
        ((4, 4, VBT.RGBA, "not bytes" * 8), TypeError),
        ((4, 4, VBT.RGBA, memoryview(b"\0" * 128)[::2]), ValueError),
    ],
)
def test_frames_that_would_abort_the_native_core_are_rejected(
    args: tuple[Any, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        lkanyio.VideoFrame(*args)


@pytest.mark.anyio
async def test_a_colour_pattern_through_the_server(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with (
            bob.events() as events,
            lkanyio.VideoSource(W, H) as source,
            # Opened before anything is published: it follows alice's camera, whichever track.
            lkanyio.VideoStream.from_participant(
                bob.remote_participants["alice"], lkanyio.TrackSource.CAMERA
            ) as by_source,
        ):
            async with lkanyio.LocalVideoTrack.create_video_track("cam", source) as track:
                await alice.local_participant.publish_track(
                    track, lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.CAMERA)
                )
                subscribed = await next_event(events, lkanyio.TrackSubscribed)
                assert isinstance(subscribed.track, lkanyio.RemoteVideoTrack)
                colours = [(220, 30, 30), (30, 200, 40)]
                async with (
                    lkanyio.VideoStream(subscribed.track) as stream,
                    lkanyio.VideoStream(subscribed.track, max_buffered=1) as slow,
                    anyio.create_task_group() as tg,
                ):

                    async def feed() -> None:
                        for i in range(10_000):
                            source.capture_frame(solid(colours[(i // 15) % 2]))
                            await anyio.sleep(1 / 30)

                    tg.start_soon(feed)
                    seen: list[tuple[float, float, float]] = []
                    with anyio.fail_after(EVENT_WAIT):
                        async for event in stream:
                            size = (event.frame.width, event.frame.height)
                            assert size in ((W, H), (W // 2, H // 2))
                            seen.append(mean_rgb(event.frame))
                            if len(seen) >= 60:
                                break
                    with anyio.fail_after(EVENT_WAIT):
                        followed = await by_source.receive()
                    followed_size = (followed.frame.width, followed.frame.height)
                    assert followed_size in ((W, H), (W // 2, H // 2))
                    tg.cancel_scope.cancel()
                    # Quality and size hints are accepted for a subscribed video track.
                    subscribed.publication.set_video_quality(lkanyio.VideoQuality.LOW)
                    subscribed.publication.set_video_dimensions(width=W // 2, height=H // 2)
                    with pytest.raises(ValueError, match="VideoQuality"):
                        subscribed.publication.set_video_quality(7)  # type: ignore[arg-type]
                    # The decoder delivers both colours (lossy codec: within a tolerance).
                    def close_to(c: tuple[float, ...], want: tuple[int, ...]) -> bool:
                        return all(abs(a - b) <= 30 for a, b in zip(c, want, strict=True))

                    for colour in colours:
                        assert any(close_to(c, colour) for c in seen), (colour, seen[:5])
                    # Nobody read `slow`: it kept its newest frame and counted the others.
                    stats = slow.statistics()
                    assert stats.buffered == 1
                    assert stats.dropped > 0
