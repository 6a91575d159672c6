"""The shim's queue: its hand-written protobuf parser, frame bounds and lost-event handling."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import lkanyio
from _shim import FAKE_HANDLE as _FAKE
from _shim import assert_it_ends_a_video_stream
from _shim import field_number as _number
from _shim import shim_defines as _defines
from _util import assert_no_leaks
from lkanyio._native._bridge import get_bridge
from lkanyio._native._proto import audio_frame_pb2, ffi_pb2, handle_pb2, video_frame_pb2


def test_the_shims_field_numbers_are_the_wheels() -> None:
    # The shim finds frame events and their buffer handles by field number, written by hand in
    # C: they must be the pinned wheel's, for video and audio alike.
    d = _defines()
    assert d["FFI_EVENT_VIDEO_STREAM_EVENT"] == _number(ffi_pb2.FfiEvent, "video_stream_event")
    assert d["FFI_EVENT_AUDIO_STREAM_EVENT"] == _number(ffi_pb2.FfiEvent, "audio_stream_event")
    for event in (video_frame_pb2.VideoStreamEvent, audio_frame_pb2.AudioStreamEvent):
        assert d["STREAM_EVENT_STREAM_HANDLE"] == _number(event, "stream_handle")
        assert d["STREAM_EVENT_FRAME_RECEIVED"] == _number(event, "frame_received")
    assert d["FRAME_RECEIVED_BUFFER"] == _number(video_frame_pb2.VideoFrameReceived, "buffer")
    assert d["FRAME_RECEIVED_BUFFER"] == _number(audio_frame_pb2.AudioFrameReceived, "frame")
    assert d["OWNED_BUFFER_HANDLE"] == _number(video_frame_pb2.OwnedVideoBuffer, "handle")
    assert d["OWNED_BUFFER_HANDLE"] == _number(audio_frame_pb2.OwnedAudioFrameBuffer, "handle")
    assert d["OWNED_HANDLE_ID"] == _number(handle_pb2.FfiOwnedHandle, "id")


def _parse(event: ffi_pb2.FfiEvent) -> tuple[int, int] | None:
    bridge = get_bridge()
    data = event.SerializePartialToString()
    stream = bridge._ffi.new("uint64_t *")
    buffer = bridge._ffi.new("uint64_t *")
    if not bridge._lib.lk_shim_parse_frame(data, len(data), stream, buffer):
        return None
    return int(stream[0]), int(buffer[0])


def test_the_shim_parses_frame_events_and_nothing_else() -> None:
    video = ffi_pb2.FfiEvent()
    video.video_stream_event.stream_handle = 2**40 + 7
    received = video.video_stream_event.frame_received
    received.timestamp_us = 123
    received.buffer.info.width = 1280
    received.buffer.info.data_ptr = 2**47
    received.buffer.handle.id = 2**33 + 5
    assert _parse(video) == (2**40 + 7, 2**33 + 5)
    audio = ffi_pb2.FfiEvent()
    audio.audio_stream_event.stream_handle = 9
    audio.audio_stream_event.frame_received.frame.info.sample_rate = 48000
    audio.audio_stream_event.frame_received.frame.handle.id = 11
    assert _parse(audio) == (9, 11)
    eos = ffi_pb2.FfiEvent()
    eos.video_stream_event.stream_handle = 3
    eos.video_stream_event.eos.SetInParent()
    assert _parse(eos) is None
    room = ffi_pb2.FfiEvent()
    room.room_event.room_handle = 3
    room.room_event.eos.SetInParent()
    assert _parse(room) is None
    data = video.SerializePartialToString()
    for cut in range(len(data)):  # truncated: never a frame, never read past the end
        stream = get_bridge()._ffi.new("uint64_t *")
        assert not get_bridge()._lib.lk_shim_parse_frame(data[:cut], cut, stream, stream)


@pytest.mark.anyio
async def test_a_lost_event_fails_the_pending_requests_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # When malloc fails the shim cannot copy an event, which may be any request's callback:
    # its waiter would hang.  Every request pending then fails instead.
    bridge = get_bridge()
    real = bridge._lib

    class Lossy:
        """Reports one lost event from the moment a request has been sent."""

        sent = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def lk_shim_request(self, *args: Any) -> int:
            self.sent = 1
            return int(real.lk_shim_request(*args))

        def lk_shim_drain(self, lost: Any) -> Any:
            head = real.lk_shim_drain(lost)
            lost[0] += self.sent
            return head

    async with (
        lkanyio.AudioSource(48000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("a", source) as track,
    ):
        monkeypatch.setattr(bridge, "_lib", Lossy())
        with anyio.fail_after(5), pytest.raises(lkanyio.NativeError, match="lost 1 event"):
            await track.get_stats()
        # Counted once: the next request gets its real callback.
        with pytest.raises(lkanyio.NativeError, match="no transceiver found for track"):
            await track.get_stats()
        monkeypatch.setattr(bridge, "_lib", real)
        bridge._lost_seen = lkanyio.statistics().events_lost
    assert_no_leaks()


def _frame(stream: int, buffer: int, *, audio: bool = False) -> ffi_pb2.FfiEvent:
    event = ffi_pb2.FfiEvent()
    if audio:
        event.audio_stream_event.stream_handle = stream
        event.audio_stream_event.frame_received.frame.handle.id = buffer
    else:
        event.video_stream_event.stream_handle = stream
        event.video_stream_event.frame_received.buffer.handle.id = buffer
    return event


def _eos(stream: int) -> ffi_pb2.FfiEvent:
    event = ffi_pb2.FfiEvent()
    event.video_stream_event.stream_handle = stream
    event.video_stream_event.eos.SetInParent()
    return event


def _drained(streams: set[int]) -> list[tuple[str, int]]:
    """Take the shim's queue: its events for ``streams`` as ("frame", n) or ("eos", 0)."""
    bridge = get_bridge()
    lib, ffi = bridge._lib, bridge._ffi
    head = lib.lk_shim_drain(ffi.NULL)
    got = []
    try:
        ev = head
        while ev != ffi.NULL:
            data = ffi.buffer(ev.data, ev.len)[:]
            event = ffi_pb2.FfiEvent.FromString(data)
            which = event.WhichOneof("message")
            message = getattr(event, which) if which else None
            if getattr(message, "stream_handle", None) not in streams:
                bridge._dispatch(data)  # a real event (say a late frame): routed as usual
            elif message.HasField("eos"):
                got.append(("eos", 0))
            else:
                received = message.frame_received
                owned = received.buffer if which == "video_stream_event" else received.frame
                got.append(("frame", owned.handle.id - _FAKE))
            ev = ev.next
    finally:
        lib.lk_shim_free_events(head)
    return got


def _inject(event: ffi_pb2.FfiEvent) -> None:
    data = event.SerializePartialToString()
    get_bridge()._lib.lk_shim_inject(data, len(data))


def test_the_shim_applies_each_streams_policy_to_its_queued_frames() -> None:
    # Synchronous: no event loop drains while the frames are injected.
    bridge = get_bridge()
    oldest, failing, other = _FAKE + 1, _FAKE + 2, _FAKE + 3
    bridge.bound_stream(oldest, 2, drop_oldest=True)
    bridge.bound_stream(failing, 2, drop_oldest=False)
    _drained({oldest, failing, other})
    before = lkanyio.statistics().frames_dropped
    try:
        for n in range(1, 6):
            _inject(_frame(oldest, _FAKE + n))
            _inject(_frame(failing, _FAKE + 10 + n, audio=True))
            _inject(_frame(other, _FAKE + 20 + n))
        for n in range(6, 12):
            _inject(_frame(other, _FAKE + 20 + n))
        _inject(_eos(oldest))
        stats = lkanyio.statistics()
        assert stats.queued_frames >= 2 + 3 + 8
        # drop_oldest keeps its newest 2, "fail" its first 3 (enough to see the overflow),
        # other streams share the newest 8; end of stream is never dropped.
        assert stats.frames_dropped - before == 3 + 2 + 3
        assert bridge.stream_dropped(oldest) == 3
        assert bridge.stream_dropped(failing) == 2
        assert _drained({oldest}) == [("frame", 4), ("frame", 5), ("eos", 0)]
    finally:
        _drained({oldest, failing, other})
    # Draining empties the bounds: the next frames are queued again.
    try:
        for n in range(3):
            _inject(_frame(failing, _FAKE + 30 + n, audio=True))
        assert _drained({failing}) == [("frame", 30), ("frame", 31), ("frame", 32)]
    finally:
        assert bridge.unbound_stream(oldest) == 3
        assert bridge.unbound_stream(failing) == 2
        assert bridge.stream_dropped(oldest) == 0  # forgotten


def test_the_shim_keeps_the_order_of_what_it_does_not_drop() -> None:
    bridge = get_bridge()
    stream = _FAKE + 4
    bridge.bound_stream(stream, 1, drop_oldest=True)
    _drained({stream})
    try:
        _inject(_frame(stream, _FAKE + 1))
        _inject(_eos(stream))
        _inject(_frame(stream, _FAKE + 2))
        _inject(_frame(stream, _FAKE + 3))
        assert _drained({stream}) == [("eos", 0), ("frame", 3)]
    finally:
        bridge.unbound_stream(stream)
        _drained({stream})


@pytest.mark.anyio
async def test_a_stream_whose_bound_cannot_be_set_fails_cleanly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The shim's stream table may fail to grow (out of memory): the stream raises that error
    # and leaves nothing behind (releasing used to need a finalizer made only afterwards).
    bridge = get_bridge()

    def no_memory(*args: Any, **kwargs: Any) -> None:
        raise MemoryError("the native shim could not bound a media stream")

    async with (
        lkanyio.VideoSource(16, 16) as source,
        lkanyio.LocalVideoTrack.create_video_track("t", source) as track,
    ):
        monkeypatch.setattr(bridge, "bound_stream", no_memory)
        with pytest.raises(MemoryError, match="could not bound"):
            lkanyio.VideoStream(track)
        monkeypatch.undo()
        assert lkanyio.statistics().bound_handles == 0
    assert_no_leaks()


def _whole_frame(stream: int, buffer: int) -> bytes:
    """A video frame event with every field a whole parse requires (an empty 16x16 frame)."""
    event = _frame(stream, buffer)
    received = event.video_stream_event.frame_received
    received.timestamp_us = 1
    received.rotation = video_frame_pb2.VIDEO_ROTATION_0
    info = received.buffer.info
    info.type, info.width, info.height, info.data_ptr = video_frame_pb2.I420, 16, 16, 0
    return event.SerializeToString()


def _misread_frames(stream: int) -> list[bytes]:
    """Frame events the shim routes raw to ``stream`` that a whole parse reads otherwise."""
    trailing = _whole_frame(stream, _FAKE + 41) + b"\x0f"  # a tag of wire type 7: invalid
    other = ffi_pb2.FfiEvent()
    other.video_stream_event.stream_handle = _FAKE + 5  # a later duplicate field wins in protobuf
    duplicate = _whole_frame(stream, _FAKE + 42) + other.SerializePartialToString()
    return [trailing, duplicate]


@pytest.mark.anyio
async def test_a_frame_event_the_shim_misread_ends_its_stream_loudly() -> None:
    # Frames reach their stream unparsed, routed by the handles the shim read (its parser stops
    # at the first ones it finds); the stream parses the whole event when it is received, and
    # one that is malformed or names another stream ends it with NativeError, not a protobuf
    # error (the stream then went on) and not another stream's frame.
    def inject(index: int, handle: int) -> None:
        data = _misread_frames(handle)[index]
        get_bridge()._lib.lk_shim_inject(data, len(data))

    await assert_it_ends_a_video_stream(functools.partial(inject, 0), "malformed")
    await assert_it_ends_a_video_stream(functools.partial(inject, 1), "not one of its frames")
    assert_no_leaks()


@pytest.mark.anyio
async def test_a_frame_event_routed_parsed_is_buffered_and_released_the_same() -> None:
    # A frame event the shim did not route raw reaches the stream parsed (through the bridge's
    # whole-event path): it is buffered owning its buffer, and released with the stream.
    async with (
        lkanyio.VideoSource(16, 16) as source,
        lkanyio.LocalVideoTrack.create_video_track("t", source) as track,
    ):
        before = lkanyio.statistics().live_handles
        async with lkanyio.VideoStream(track) as stream:
            get_bridge()._dispatch(_whole_frame(stream._handle.id, _FAKE + 43))
            assert stream.statistics().buffered == 1
            assert lkanyio.statistics().live_handles == before + 2  # the stream and the frame
        assert lkanyio.statistics().live_handles == before
    assert_no_leaks()


@pytest.mark.anyio
async def test_an_unrouted_frame_event_is_counted_and_released_without_a_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A frame event for a stream nobody listens to (say one closed a moment ago) is routed by
    # the handles the shim read: counted as unrouted, its buffer dropped, and never parsed.
    bridge = get_bridge()
    bridge.ensure_driver()
    parsed: list[bytes] = []
    monkeypatch.setattr(bridge, "_dispatch", parsed.append)
    dropped: list[int] = []
    real_drop = bridge.drop_native
    monkeypatch.setattr(bridge, "drop_native", lambda h: (dropped.append(h), real_drop(h)))
    before = lkanyio.statistics().unrouted_events
    frame = _frame(_FAKE + 6, _FAKE + 44).SerializePartialToString()
    get_bridge()._lib.lk_shim_inject(frame, len(frame))
    with anyio.fail_after(10):
        while lkanyio.statistics().unrouted_events == before:
            await anyio.sleep(0.005)
    assert lkanyio.statistics().unrouted_events == before + 1
    assert dropped == [_FAKE + 44]
    assert frame not in parsed  # (the core's log line about the unknown handle is parsed)
    assert_no_leaks()


@pytest.mark.anyio
async def test_a_wakeup_left_over_an_empty_queue_leaves_a_lone_request_spinning() -> None:
    """The shim writes its wakeup fd after unlocking: a request spinning on the queue can take
    the event before the write lands, and the fd becomes readable over an empty queue.  The
    loop then has the driver's own wakeup to run, which will find nothing: a lone request must
    still count the loop as idle and spin, not park.  On asyncio it did not: the reader
    callback, queued behind the request's task, counted as work, and 1,028 of 10,000
    sequential requests parked (round trip p50 30.8 -> 26.6 µs once they spin).  Here the fd is
    made readable by hand, and the task looks when the loop has queued its wakeup.
    """
    bridge = get_bridge()
    driver = bridge.ensure_driver()
    fd = bridge._lib.lk_shim_wakeup_fd()
    for _ in range(20):  # the order of a trio batch is random; asyncio's is always the same
        os.write(fd, (1).to_bytes(8, sys.byteorder))  # an eventfd: its read end is writable
        await anyio.lowlevel.checkpoint()  # the loop polls and wakes the driver
        assert driver.idle()
        await anyio.lowlevel.checkpoint()  # the driver drains: the fd is clear again
