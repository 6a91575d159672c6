"""Audio frames copied inline by the shim: its strict reader agrees with protobuf, always."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

import lkanyio
from _shim import FAKE_HANDLE as _FAKE
from _shim import assert_it_ends_a_video_stream
from _shim import field_number as _number
from _shim import shim_defines as _defines
from _util import assert_no_leaks
from lkanyio._native._bridge import get_bridge
from lkanyio._native._proto import audio_frame_pb2, ffi_pb2, handle_pb2


def test_the_inline_readers_field_numbers_are_the_wheels() -> None:
    d = _defines()
    assert d["AUDIO_STREAM_EVENT_EOS"] == _number(audio_frame_pb2.AudioStreamEvent, "eos")
    assert d["OWNED_BUFFER_INFO"] == _number(audio_frame_pb2.OwnedAudioFrameBuffer, "info")
    info = audio_frame_pb2.AudioFrameBufferInfo
    assert d["INFO_DATA_PTR"] == _number(info, "data_ptr")
    assert d["INFO_NUM_CHANNELS"] == _number(info, "num_channels")
    assert d["INFO_SAMPLE_RATE"] == _number(info, "sample_rate")
    assert d["INFO_SAMPLES_PER_CHANNEL"] == _number(info, "samples_per_channel")
    assert _number(handle_pb2.FfiOwnedHandle, "id") == 1


Read = tuple[int, int, int, int, int, int]
"""(stream, buffer, data_ptr, num_channels, sample_rate, samples_per_channel)"""


def _shim_read(data: bytes) -> Read | None:
    bridge = get_bridge()
    new = bridge._ffi.new
    out64 = [new("uint64_t *") for _ in range(3)]
    out32 = [new("uint32_t *") for _ in range(3)]
    if not bridge._lib.lk_shim_parse_audio(data, len(data), *out64, *out32):
        return None
    return tuple(int(p[0]) for p in (*out64, *out32))  # type: ignore[return-value]


def _whole_read(data: bytes) -> Read | None:
    try:
        event = ffi_pb2.FfiEvent.FromString(data)
    except DecodeError:
        return None
    if event.WhichOneof("message") != "audio_stream_event":
        return None
    stream_event = event.audio_stream_event
    if stream_event.WhichOneof("message") != "frame_received":
        return None
    frame = stream_event.frame_received.frame
    info = frame.info
    return (
        stream_event.stream_handle, frame.handle.id, info.data_ptr, info.num_channels,
        info.sample_rate, info.samples_per_channel,
    )


def _event(values: Read) -> ffi_pb2.FfiEvent:
    stream, buffer, ptr, channels, rate, samples = values
    event = ffi_pb2.FfiEvent()
    event.audio_stream_event.stream_handle = stream
    frame = event.audio_stream_event.frame_received.frame
    frame.handle.id = buffer
    frame.info.data_ptr = ptr
    frame.info.num_channels = channels
    frame.info.sample_rate = rate
    frame.info.samples_per_channel = samples
    return event


def test_a_frame_the_native_core_sends_is_read_whole() -> None:
    values = (2**40 + 7, 2**33 + 5, 2**47 + 16, 2, 48_000, 480)
    assert _shim_read(_event(values).SerializeToString()) == values
    eos = ffi_pb2.FfiEvent()
    eos.audio_stream_event.stream_handle = 3
    eos.audio_stream_event.eos.SetInParent()
    video = ffi_pb2.FfiEvent()
    video.video_stream_event.stream_handle = 3
    video.video_stream_event.frame_received.buffer.handle.id = 4
    for other in (eos, video, ffi_pb2.FfiEvent()):
        assert _shim_read(other.SerializePartialToString()) is None


# -- the property: whatever the shim reads, protobuf reads the same --------------------------


def _varint(value: int, pad: int = 0) -> bytes:
    """``value`` as a varint; ``pad`` more bytes make it longer than it needs to be (protobuf
    reads up to 10 bytes)."""
    out = bytearray()
    while True:
        out.append(value & 0x7F)
        value >>= 7
        if not value:
            break
        out[-1] |= 0x80
    if pad:
        out[-1] |= 0x80
        out += b"\x80" * (pad - 1) + b"\x00"
    return bytes(out)


def _key(number: int, wire: int, pad: int = 0) -> bytes:
    return _varint(number << 3 | wire, pad)


_u32 = st.one_of(st.integers(0, 70_000), st.integers(0, 2**32 - 1), st.integers(0, 2**33))
_u64 = st.one_of(st.integers(0, 2**20), st.integers(0, 2**64 - 1))


@st.composite
def _frame_events(draw: st.DrawFn) -> bytes:
    """An audio frame event as the native core writes it, or one bent in one way: fields
    missing or repeated (with other values), unknown fields, wrong wire types, long varints,
    fields out of order, an end of stream or another stream event beside the frame."""
    bend = draw(
        st.sampled_from(["none", "repeat", "missing", "unknown", "wire", "long", "order", "beside"])
    )

    def chance(kind: str, one_in: int) -> bool:
        return bend == kind and draw(st.integers(0, one_in - 1)) == 0

    def message(spec: list[tuple[int, Any]]) -> bytes:
        parts: list[bytes] = []
        for number, value in spec:
            times = 2 if chance("repeat", 4) else 0 if chance("missing", 6) else 1
            for _ in range(times):
                payload = value() if callable(value) else draw(value)
                # A long varint anywhere: protobuf reads up to 10 bytes for a value, only up
                # to 5 for a tag or a length.
                key_pad = draw(st.integers(1, 7)) if chance("long", 4) else 0
                if isinstance(payload, bytes):
                    length_pad = draw(st.integers(1, 7)) if chance("long", 4) else 0
                    parts.append(
                        _key(number, 2, key_pad) + _varint(len(payload), length_pad) + payload
                    )
                elif chance("wire", 4):  # a varint field written with the wrong wire type
                    encoded = _varint(payload)
                    parts.append(_key(number, 2) + _varint(len(encoded)) + encoded)
                else:
                    pad = draw(st.integers(1, 9)) if chance("long", 2) else 0
                    parts.append(_key(number, 0, key_pad) + _varint(payload, pad))
        if chance("unknown", 4):
            parts.append(_key(draw(st.integers(5, 40)), 0) + _varint(draw(st.integers(0, 9))))
        if chance("order", 1):
            parts = draw(st.permutations(parts))
        return b"".join(parts)

    def info() -> bytes:
        return message([(1, _u64), (2, _u32), (3, _u32), (4, _u32)])

    def owned() -> bytes:
        return message([(1, lambda: message([(1, _u64)])), (2, info)])

    def stream_event() -> bytes:
        spec: list[tuple[int, Any]] = [(1, _u64), (2, lambda: message([(1, owned)]))]
        if chance("beside", 2):
            spec.append((3, st.just(b"")))  # an end of stream beside the frame
        return message(spec)

    spec: list[tuple[int, Any]] = [(4, stream_event)]
    if chance("beside", 2):
        spec.append((3, lambda: message([(1, _u64)])))  # a video stream event beside it
    return message(spec)


_events = st.one_of(_frame_events(), st.binary(max_size=80))


@settings(max_examples=1000, deadline=None)
@given(_events, st.sampled_from([0, 0, 0, 1, 2, 5]))
def test_whatever_the_shim_reads_protobuf_reads_the_same(data: bytes, cut: int) -> None:
    if cut:
        data = data[: len(data) - cut]  # truncated: never read past the end, never misread
    read = _shim_read(data)
    if read is not None:
        assert _whole_read(data) == read


@settings(max_examples=200, deadline=None)
@given(st.tuples(_u64, _u64, _u64, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                 st.integers(0, 2**32 - 1)))
def test_every_frame_protobuf_writes_is_read(values: Read) -> None:
    assert _shim_read(_event(values).SerializeToString()) == values


# -- what a stream gets ---------------------------------------------------------------------------


def _inject_inline(
    stream_handle: int,
    buffer: int,
    samples: bytes,
    shape: tuple[int, int, int] | None = None,
) -> None:
    """Send a frame of ``samples`` (mono 48 kHz, or ``shape``: channels, rate, per channel)."""
    bridge = get_bridge()
    memory = bridge._ffi.from_buffer(samples)
    address = int(bridge._ffi.cast("uintptr_t", memory))
    channels, rate, per_channel = shape or (1, 48_000, len(samples) // 2)
    data = _event((stream_handle, buffer, address, channels, rate, per_channel))
    raw = data.SerializeToString()
    bridge._lib.lk_shim_inject(raw, len(raw))  # copies the samples before it returns


@pytest.mark.anyio
async def test_an_inline_frame_is_the_samples_it_pointed_to() -> None:
    samples = bytes(range(256)) * 3 + bytes(192)  # 960 bytes: 10 ms of 48 kHz mono
    async with (
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("t", source) as track,
        lkanyio.AudioStream(track, sample_rate=48_000, num_channels=1) as stream,
    ):
        before = lkanyio.statistics().live_handles
        _inject_inline(stream._handle.id, _FAKE + 1, samples)
        with anyio.fail_after(10):
            while True:
                event = await stream.receive()
                if bytes(event.frame.data) == samples:  # not one of the track's silent ones
                    break
        assert event.frame.sample_rate == 48_000
        assert event.frame.samples_per_channel == 480
        assert lkanyio.statistics().live_handles == before  # it held no native buffer
    assert_no_leaks()


@pytest.mark.anyio
async def test_an_audio_frame_for_a_video_stream_ends_it_loudly() -> None:
    await assert_it_ends_a_video_stream(
        lambda handle: _inject_inline(handle, _FAKE + 2, bytes(960)), "was handed an audio frame"
    )
    assert_no_leaks()


@pytest.mark.anyio
async def test_a_frame_whose_size_overflows_is_not_copied_inline() -> None:
    # channels x samples x 2 bytes wrapped around 2^64 to 65,536: the shim copied 64 KiB and the
    # stream built a frame claiming 2^64 bytes of samples over them (a review found it; the
    # native core never sends such sizes, and such a frame now takes the parsed path).
    memory = bytes(65_536)
    overflowing = (2**31 + 2**15, 12_345, 2**32 - 2**16 + 1)
    async with (
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("t", source) as track,
        lkanyio.AudioStream(track, sample_rate=48_000, num_channels=1, max_buffered=64) as stream,
    ):
        _inject_inline(stream._handle.id, _FAKE + 3, memory, overflowing)
        _inject_inline(stream._handle.id, _FAKE + 4, memory[:960], (1, 12_345, 480))  # a control
        buffered = stream._events._items
        with anyio.fail_after(10):
            while not any(type(item) is tuple and item[1] == 12_345 for item in buffered):
                await anyio.sleep(0.005)  # the control arrives inline, after the other
        inline = [item for item in buffered if type(item) is tuple and item[1] == 12_345]
        assert [(len(item[0]), item[2], item[3]) for item in inline] == [(960, 1, 480)]
    assert_no_leaks()
