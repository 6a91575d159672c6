"""Video: frames (with conversion), sources that publish them, and streams that receive them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

from .._checks import check_bool, check_enum, check_positive, check_uint
from .._errors import NativeError, check_native
from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._memory import buffer_pointer, copy_native_into, native_bytearray
from .._native._proto import ffi_pb2, video_frame_pb2
from .._native._requests import wire_enum
from .._resource import Resource
from .._types import TrackKind, TrackSource
from ._frame_stream import NativeStream

if TYPE_CHECKING:
    from .._participant import Participant
    from .._streams import OverflowPolicy
    from ._track import Track

__all__ = [
    "FrameMetadata",
    "VideoBufferType",
    "VideoFrame",
    "VideoFrameEvent",
    "VideoRotation",
    "VideoSource",
    "VideoStream",
]

_MAX_DIMENSION: Final = 16_384
_MIN_CAPTURE_DIMENSION: Final = 4
"""WebRTC crops the frames of a video source to multiples of 4 pixels and aborts the process
(``Check failed: width > 0``) when that leaves nothing: sources and captured frames narrower or
shorter than this are refused (a source sends a black frame of its own size on its own)."""


class VideoBufferType(enum.IntEnum):
    """Pixel layout of a :class:`VideoFrame`."""

    RGBA = video_frame_pb2.RGBA
    ABGR = video_frame_pb2.ABGR
    ARGB = video_frame_pb2.ARGB
    BGRA = video_frame_pb2.BGRA
    RGB24 = video_frame_pb2.RGB24
    I420 = video_frame_pb2.I420
    I420A = video_frame_pb2.I420A
    I422 = video_frame_pb2.I422
    I444 = video_frame_pb2.I444
    I010 = video_frame_pb2.I010
    NV12 = video_frame_pb2.NV12


class VideoRotation(enum.IntEnum):
    """Rotation to apply when displaying a frame."""

    DEG_0 = video_frame_pb2.VIDEO_ROTATION_0
    DEG_90 = video_frame_pb2.VIDEO_ROTATION_90
    DEG_180 = video_frame_pb2.VIDEO_ROTATION_180
    DEG_270 = video_frame_pb2.VIDEO_ROTATION_270


_ABGR_TARGETS: Final = (VideoBufferType.RGBA, VideoBufferType.BGRA, VideoBufferType.I420)

_PACKED_BYTES: Final = {
    VideoBufferType.RGBA: 4,
    VideoBufferType.ABGR: 4,
    VideoBufferType.ARGB: 4,
    VideoBufferType.BGRA: 4,
    VideoBufferType.RGB24: 3,
}


def planes(buffer_type: VideoBufferType, width: int, height: int) -> list[tuple[int, int]]:
    """``(stride, size)`` of each plane, in order, for tightly packed frames (both in bytes)."""
    if buffer_type in _PACKED_BYTES:
        stride = width * _PACKED_BYTES[buffer_type]
        return [(stride, stride * height)]
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y = (width, width * height)
    if buffer_type == VideoBufferType.I420:
        return [y, (cw, cw * ch), (cw, cw * ch)]
    if buffer_type == VideoBufferType.I420A:
        return [y, (cw, cw * ch), (cw, cw * ch), y]
    if buffer_type == VideoBufferType.I422:
        return [y, (cw, cw * height), (cw, cw * height)]
    if buffer_type == VideoBufferType.I444:
        return [y, y, y]
    if buffer_type == VideoBufferType.I010:
        return [(width * 2, width * height * 2), (cw * 2, cw * ch * 2), (cw * 2, cw * ch * 2)]
    if buffer_type == VideoBufferType.NV12:
        return [y, (cw * 2, cw * ch * 2)]
    raise ValueError(f"unknown video buffer type {buffer_type!r}")  # pragma: no cover


def _native_stride_unit(buffer_type: VideoBufferType) -> int:
    """Bytes per unit of the plane strides the native core reads and writes.

    I010 strides count 16-bit samples (as WebRTC's I010 buffers do): a stride in bytes makes
    the converter's size assertion fail, which aborts the process.
    """
    return 2 if buffer_type == VideoBufferType.I010 else 1


def _check_dimension(name: str, value: object) -> int:
    return check_positive(name, value, maximum=_MAX_DIMENSION)


@final
class VideoFrame:
    """One video frame: tightly packed planes in a ``bytearray`` (zero-copy through :attr:`data`).

    Every dimension, type and size is checked here, so nothing that could make the native core
    abort (0×0 frames, wrong strides, short buffers) ever reaches it.
    """

    __slots__ = ("_data", "_height", "_type", "_width")

    def __init__(
        self, width: int, height: int, buffer_type: VideoBufferType, data: Any
    ) -> None:
        self._width = _check_dimension("width", width)
        self._height = _check_dimension("height", height)
        self._type = check_enum("buffer_type", buffer_type, VideoBufferType)
        try:
            view = memoryview(data)
        except TypeError:
            raise TypeError(
                f"video data must be a bytes-like object, not {type(data).__name__}"
            ) from None
        if not view.c_contiguous:
            raise ValueError("video data must be C-contiguous")
        expected = sum(size for _stride, size in planes(self._type, width, height))
        if view.nbytes != expected:
            raise ValueError(
                f"a {width}x{height} {self._type.name} frame needs {expected} bytes, "
                f"got {view.nbytes}"
            )
        self._data = bytearray(view.cast("B"))

    @classmethod
    def _adopt(
        cls, width: int, height: int, buffer_type: VideoBufferType, data: bytearray
    ) -> VideoFrame:
        """Wrap ``data`` without copying; the caller guarantees that the sizes are consistent."""
        frame = cls.__new__(cls)
        frame._width = width
        frame._height = height
        frame._type = buffer_type
        frame._data = data
        return frame

    @classmethod
    def create(cls, width: int, height: int, buffer_type: VideoBufferType) -> VideoFrame:
        """A zero-filled frame."""
        size = sum(s for _stride, s in planes(VideoBufferType(buffer_type), width, height))
        return cls(width, height, buffer_type, bytearray(size))

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self._height

    @property
    def type(self) -> VideoBufferType:
        """Pixel layout."""
        return self._type

    @property
    def data(self) -> memoryview:
        """The planes, in order, as a writable zero-copy view."""
        return memoryview(self._data)

    @property
    def plane_count(self) -> int:
        """How many planes the layout has (1 for packed RGB layouts, 3 for I420 …)."""
        return len(planes(self._type, self._width, self._height))

    def get_plane(self, index: int) -> memoryview:
        """Plane ``index`` as a writable, zero-copy view into :attr:`data`.

        A frame's planes are tightly packed one after the other (each row exactly as wide as
        its pixels), so plane ``i`` of an I420 frame is ``width x height`` bytes of Y for
        ``i == 0``, then the U and V planes of half the width and height (rounded up).
        A frame received from a stream was copied out of native memory after every plane the
        native core described was checked to lie inside its buffer: the views never reach
        native memory.

        Raises:
            TypeError: ``index`` is not an ``int``.
            IndexError: the layout has no plane ``index`` (negative indices are refused too).
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"plane index must be an int, not {type(index).__name__}")
        layout = planes(self._type, self._width, self._height)
        if not 0 <= index < len(layout):
            raise IndexError(
                f"a {self._type.name} frame has planes 0 to {len(layout) - 1}, not {index}"
            )
        start = sum(size for _stride, size in layout[:index])
        return memoryview(self._data)[start : start + layout[index][1]]

    def _info(self, out: video_frame_pb2.VideoBufferInfo) -> object:
        """Describe the frame for the native core; returns the object pinning the memory."""
        address, pinned = buffer_pointer(self._data)
        out.type = wire_enum(video_frame_pb2.VideoBufferType, self._type)
        out.width = self._width
        out.height = self._height
        out.data_ptr = address
        layout = planes(self._type, self._width, self._height)
        out.stride = layout[0][0] if self._type in _PACKED_BYTES else 0
        if self._type not in _PACKED_BYTES:
            unit = _native_stride_unit(self._type)
            offset = 0
            for stride, size in layout:
                component = out.components.add()
                component.data_ptr = address + offset
                component.stride = stride // unit
                component.size = size
                offset += size
        return pinned

    def _flipped(self) -> VideoFrame:
        """A copy with the rows of every plane in reverse order."""
        out = bytearray(len(self._data))
        view = memoryview(self._data)
        offset = 0
        for stride, size in planes(self._type, self._width, self._height):
            rows = size // stride
            for row in range(rows):
                src = offset + row * stride
                dst = offset + (rows - 1 - row) * stride
                out[dst : dst + stride] = view[src : src + stride]
            offset += size
        return VideoFrame._adopt(self._width, self._height, self._type, out)

    def _abgr_as_rgba(self) -> VideoFrame:
        """This ABGR frame as RGBA: each pixel's four bytes in reverse order."""
        src = self._data
        out = bytearray(len(src))
        out[0::4], out[1::4], out[2::4], out[3::4] = src[3::4], src[2::4], src[1::4], src[0::4]
        return VideoFrame._adopt(self._width, self._height, VideoBufferType.RGBA, out)

    def convert(self, buffer_type: VideoBufferType, *, flip_y: bool = False) -> VideoFrame:
        """Return this frame in another pixel layout (done by the native core).

        The native core aborts the process on two kinds of conversion, so lkanyio does them
        itself: every ABGR source (lkanyio reorders it to RGBA, then converts to RGBA, BGRA or
        I420) and NV12 to NV12 (a copy).

        Raises:
            ValueError: ``buffer_type`` is no VideoBufferType's value, or ABGR to something
                other than RGBA, BGRA or I420.
            TypeError: ``buffer_type`` is not a VideoBufferType or an int.
            NativeError: the native core cannot convert between these layouts.
        """
        target = check_enum("buffer_type", buffer_type, VideoBufferType)
        if self._type == VideoBufferType.ABGR:
            # The core asserts that an ABGR source is RGBA and aborts: reorder here instead.
            if target not in _ABGR_TARGETS:
                names = ", ".join(t.name for t in _ABGR_TARGETS)
                raise ValueError(f"ABGR frames convert only to {names}, not to {target.name}")
            rgba = self._abgr_as_rgba()
            if target == VideoBufferType.RGBA:
                return rgba._flipped() if flip_y else rgba
            return rgba.convert(target, flip_y=flip_y)
        if self._type == target == VideoBufferType.NV12:
            # The core passes a wrong destination stride to its NV12 copy and aborts.
            if flip_y:
                return self._flipped()
            return VideoFrame._adopt(self._width, self._height, self._type, bytearray(self._data))
        req = ffi_pb2.FfiRequest()
        req.video_convert.flip_y = flip_y
        req.video_convert.dst_type = wire_enum(video_frame_pb2.VideoBufferType, target)
        pinned = self._info(req.video_convert.buffer)
        frame = _request_conversion(req)
        del pinned
        return frame

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoFrame):
            return NotImplemented
        return (self._width, self._height, self._type, self._data) == (
            other._width,
            other._height,
            other._type,
            other._data,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<VideoFrame {self._width}x{self._height} {self._type.name}>"


def _plane_regions(info: Any) -> tuple[VideoBufferType, int, int, list[tuple[int, int]]]:
    """Check a native buffer description; return its type, size and ``(address, stride)`` planes.

    The native core is never trusted with where a plane is: every plane that is read lies in
    the one buffer the description starts at ``data_ptr``, whose planes follow each other at
    their strides (``stride x rows`` bytes each).

    Measured (livekit-ffi 0.13.2, every layout x 6 sizes through local streams, and every
    ``video_convert`` output): each native frame is one such contiguous allocation, with tight
    strides, except that a stream passing I444 through (no format, or format=I444) describes
    its V plane with the *source* frame's pointer, freed by then: about -45 TB from
    ``data_ptr`` at 1280x720 (copying it segfaulted), other heap bytes at small sizes.  So
    when the first plane is at ``data_ptr`` and every stride is tight (the buffer is the
    contiguous allocation of the tight layout), a plane described elsewhere is read from where
    the layout puts it; with padded rows nothing says that, and the frame is refused.

    Raises:
        NativeError: a plane the description puts outside its buffer, or a malformed one.
    """
    try:
        buffer_type = VideoBufferType(info.type)
        width = _check_dimension("width", info.width)
        height = _check_dimension("height", info.height)
    except ValueError as exc:
        raise NativeError(f"the native core described a malformed video buffer: {exc}") from None
    name = buffer_type.name
    base = info.data_ptr
    layout = planes(buffer_type, width, height)
    unit = _native_stride_unit(buffer_type)
    described = (
        [(base, info.stride, info.stride * height)]
        if buffer_type in _PACKED_BYTES
        else [(c.data_ptr, c.stride * unit, c.size) for c in info.components]
    )
    if not base or len(described) != len(layout):
        raise NativeError(f"the native core described a malformed {name} buffer")
    tight = all(
        stride == row for (row, _size), (_a, stride, _s) in zip(layout, described, strict=True)
    )
    regions = []
    offset = 0  # where this plane starts in the described buffer
    for index, ((row, size), (address, stride, plane_size)) in enumerate(
        zip(layout, described, strict=True)
    ):
        rows = size // row
        if stride < row or plane_size < stride * rows:
            raise NativeError(
                f"the native core described a malformed {name} buffer: plane {index} has "
                f"stride {stride} and size {plane_size} for {rows} rows of {row} bytes"
            )
        if address != base + offset and (not tight or index == 0):
            raise NativeError(
                f"the native core described plane {index} of a {name} buffer outside it "
                f"({address - base:+d} bytes from its start, expected {offset:+d})"
            )
        regions.append((base + offset, stride))
        offset += stride * rows
    return buffer_type, width, height, regions


def _copy_buffer(info: Any) -> VideoFrame:
    """Copy the native video buffer ``info`` describes into a tightly packed :class:`VideoFrame`.

    The planes are checked (:func:`_plane_regions`), then copied once, straight into the
    frame's ``bytearray``.

    Raises:
        NativeError: the description puts a plane outside its buffer, or is malformed.
    """
    buffer_type, width, height, regions = _plane_regions(info)
    layout = planes(buffer_type, width, height)
    total = sum(size for _stride, size in layout)
    if all(native == stride for (stride, _s), (_a, native) in zip(layout, regions, strict=True)):
        # Tight rows: the checked planes follow each other from the first, so the frame is
        # ``total`` bytes from there, copied in one pass into a new bytearray.  Measured
        # (1080p RGBA, 8.3 MB): zero-filling a bytearray and then copying into it took 3.2-5.9
        # ms a frame, this 2.4-2.5 ms (the bench's video workload: 1080p30 RGBA).
        return VideoFrame._adopt(width, height, buffer_type, native_bytearray(regions[0][0], total))
    data = bytearray(total)
    offset = 0
    for (stride, size), (address, native_stride) in zip(layout, regions, strict=True):
        copy_native_into(data, offset, address, stride, rows=size // stride, stride=native_stride)
        offset += size
    return VideoFrame._adopt(width, height, buffer_type, data)


def _request_conversion(req: ffi_pb2.FfiRequest) -> VideoFrame:
    """Send a ``video_convert`` request; return its result, copied out of native memory.

    Raises:
        NativeError: the native core cannot convert between these layouts.
    """
    resp = get_bridge().request(req).video_convert
    check_native(resp, what="video conversion failed")
    return _copy_owned_buffer(resp.buffer)


def _convert_described(info: Any, target: VideoBufferType) -> VideoFrame:
    """Convert the native buffer ``info`` describes to ``target`` (its planes checked first).

    The native core is handed the checked plane positions, never the ones it described.

    Raises:
        NativeError: a plane described outside the buffer, or a conversion the core refuses.
    """
    buffer_type, width, height, regions = _plane_regions(info)
    req = ffi_pb2.FfiRequest()
    req.video_convert.dst_type = wire_enum(video_frame_pb2.VideoBufferType, target)
    out = req.video_convert.buffer
    out.type = wire_enum(video_frame_pb2.VideoBufferType, buffer_type)
    out.width, out.height, out.data_ptr = width, height, regions[0][0]
    if buffer_type in _PACKED_BYTES:
        out.stride = regions[0][1]
    else:
        unit = _native_stride_unit(buffer_type)
        for (address, stride), (row, size) in zip(
            regions, planes(buffer_type, width, height), strict=True
        ):
            component = out.components.add()
            component.data_ptr = address
            component.stride = stride // unit
            component.size = stride * (size // row)
    return _request_conversion(req)


def _copy_owned_buffer(owned: Any) -> VideoFrame:
    """Copy a native video buffer and drop it."""
    try:
        return _copy_buffer(owned.info)
    finally:
        get_bridge().drop_native(owned.handle.id)


def _check_capture_size(width: int, height: int) -> None:
    if min(width, height) < _MIN_CAPTURE_DIMENSION:
        raise ValueError(
            f"video sources and captured frames must be at least {_MIN_CAPTURE_DIMENSION}x"
            f"{_MIN_CAPTURE_DIMENSION} pixels (WebRTC aborts the process on smaller ones), "
            f"got {width}x{height}"
        )


@final
@dataclass(frozen=True, kw_only=True)
class FrameMetadata:
    """Values carried with one video frame from the publisher to every subscriber.

    Attach it with ``VideoSource.capture_frame(frame, metadata=...)``; read it back from
    :attr:`VideoFrameEvent.metadata`.  Metadata reaches subscribers only when the track was
    published with at least one :class:`~lkanyio.FrameMetadataFeature` in
    ``TrackPublishOptions.frame_metadata_features`` (list those you use: measured with
    livekit-ffi 0.13.2, any one of them carried all three fields; none carried nothing).
    A field left ``None`` arrives as ``None``.

    Attributes:
        user_timestamp: any 64-bit unsigned number, e.g. the capture time in microseconds.
        frame_id: any 32-bit unsigned number, e.g. a frame counter.
        user_data: opaque bytes.
    """

    user_timestamp: int | None = None
    frame_id: int | None = None
    user_data: bytes | None = None

    def __post_init__(self) -> None:
        if self.user_timestamp is not None:
            check_uint("user_timestamp", self.user_timestamp, bits=64)
        if self.frame_id is not None:
            check_uint("frame_id", self.frame_id, bits=32)
        if self.user_data is not None and not isinstance(self.user_data, bytes):
            raise TypeError(f"user_data must be bytes, not {type(self.user_data).__name__}")

    def _to_proto(self, out: video_frame_pb2.FrameMetadata) -> None:
        if self.user_timestamp is not None:
            out.user_timestamp = self.user_timestamp
        if self.frame_id is not None:
            out.frame_id = self.frame_id
        if self.user_data is not None:
            out.user_data = self.user_data

    @classmethod
    def _from_proto(cls, msg: video_frame_pb2.FrameMetadata) -> FrameMetadata:
        return cls(
            user_timestamp=msg.user_timestamp if msg.HasField("user_timestamp") else None,
            frame_id=msg.frame_id if msg.HasField("frame_id") else None,
            user_data=msg.user_data if msg.HasField("user_data") else None,
        )


@final
class VideoSource(Resource):
    """Frames you publish through a :class:`~lkanyio.LocalVideoTrack` (async context manager).

    ``capture_frame`` hands a frame to the native core at once (there is no backpressure for
    video: the encoder keeps the newest frames).

    Raises:
        ValueError: ``width`` or ``height`` is below 4 or above 16384 (WebRTC aborts the process
            on sources smaller than 4x4 pixels).
        TypeError: ``width`` or ``height`` is not an int.
    """

    def __init__(self, width: int, height: int, *, is_screencast: bool = False) -> None:
        _check_capture_size(_check_dimension("width", width), _check_dimension("height", height))
        req = ffi_pb2.FfiRequest()
        req.new_video_source.type = video_frame_pb2.VIDEO_SOURCE_NATIVE
        req.new_video_source.resolution.width = width
        req.new_video_source.resolution.height = height
        req.new_video_source.is_screencast = check_bool("is_screencast", is_screencast)
        owned = get_bridge().request(req).new_video_source.source
        self._handle = OwnedHandle(owned.handle.id)
        self.width = width
        self.height = height

    def capture_frame(
        self,
        frame: VideoFrame,
        *,
        timestamp_us: int = 0,
        rotation: VideoRotation = VideoRotation.DEG_0,
        metadata: FrameMetadata | None = None,
    ) -> None:
        """Publish one frame (copied by the native core before this returns).

        NV12 and I010 frames are converted to I420 first: the native capture path aborts the
        process on NV12 and misreads I010.

        Args:
            frame: the frame.
            timestamp_us: its capture time in microseconds (0: the native core stamps it).
            rotation: how a subscriber should rotate it for display.
            metadata: values carried with this frame to subscribers (see
                :class:`FrameMetadata`).

        Raises:
            TypeError: ``frame`` is not a :class:`VideoFrame`, or ``metadata`` not a
                :class:`FrameMetadata`.
            ValueError: the frame is narrower or shorter than 4 pixels (WebRTC aborts the
                process on those).
        """
        if not isinstance(frame, VideoFrame):
            raise TypeError("capture_frame takes a lkanyio.VideoFrame")
        if metadata is not None and not isinstance(metadata, FrameMetadata):
            raise TypeError("metadata must be a lkanyio.FrameMetadata")
        _check_capture_size(frame.width, frame.height)
        if frame.type in (VideoBufferType.NV12, VideoBufferType.I010):
            frame = frame.convert(VideoBufferType.I420)
        req = ffi_pb2.FfiRequest()
        msg = req.capture_video_frame
        msg.source_handle = self._handle.id
        msg.timestamp_us = timestamp_us
        msg.rotation = wire_enum(video_frame_pb2.VideoRotation, VideoRotation(rotation))
        if metadata is not None:
            metadata._to_proto(msg.metadata)
        pinned = frame._info(msg.buffer)
        get_bridge().request(req)
        del pinned

    @property
    def closed(self) -> bool:
        """Whether the source has been released."""
        return self._handle.closed

    def close(self) -> None:
        """Release the source (idempotent)."""
        self._handle.close()


@final
@dataclass(frozen=True)
class VideoFrameEvent:
    """One received frame, with its capture timestamp, rotation and metadata.

    Attributes:
        frame: the frame, copied out of native memory.
        timestamp_us: its capture timestamp in microseconds.
        rotation: how to rotate it for display.
        metadata: the :class:`FrameMetadata` the publisher attached, or ``None`` when the
            frame carries none.
    """

    frame: VideoFrame
    timestamp_us: int
    rotation: VideoRotation
    metadata: FrameMetadata | None = None


_STREAM_FORMATS: Final = (
    VideoBufferType.RGBA,
    VideoBufferType.ABGR,
    VideoBufferType.ARGB,
    VideoBufferType.BGRA,
    VideoBufferType.RGB24,
    VideoBufferType.I420,
)
"""The layouts a :class:`VideoStream` can deliver (``format=``).

Measured (livekit-ffi 0.13.2): a stream receives I420 frames (decoders; every source's first,
black frame; local captures of every other layout but I422 and I444, which a local track passes
through), and the native core converts I420 only to these.  A stream asked for another layout
delivered nothing at all, with one native ERROR log per frame ("video stream failed to convert
video frame to Some(I444)"), so those are refused when the stream is made."""

_NATIVE_STREAM_FORMATS: Final = (VideoBufferType.RGBA, VideoBufferType.I420)
"""The formats lkanyio asks the native stream for: it makes them from every layout a stream
carries.  Asked for the others itself, it silently drops the frames it cannot convert (I422 to
BGRA and RGB24, I444 to ABGR, ARGB and RGB24, measured with every layout x 6 sizes), and a
remote track's layout is not known in advance: so for ABGR, ARGB, BGRA and RGB24 lkanyio asks
for I420 and converts each frame itself (``video_convert`` on the native buffer, no extra
copy into Python)."""


@final
class VideoStream(NativeStream[VideoFrameEvent]):
    """The decoded video of a track, as a bounded stream of :class:`VideoFrameEvent`.

    By default it keeps only the newest ``max_buffered`` frames (``overflow="drop_oldest"``)
    and counts what it dropped in :meth:`statistics`: a slow consumer sees fresh frames and
    never slows anything else down.

    A frame stays in native memory until you receive it, and is copied then: one dropped
    unread is released without being copied.  Every plane of every frame is checked to lie in
    the frame's native buffer before it is copied; a frame that does not ends the stream:
    ``receive`` raises :class:`NativeError` when it reaches that frame, the frames behind it
    are released, and so it stays (it never read outside the buffer).

    Args:
        track: a video track (local or remote).
        format: convert frames to this layout: RGBA, ABGR, ARGB, BGRA, RGB24 or I420
            (default: as decoded, usually I420; a local track passes I422 and I444
            through).  RGBA and I420 are converted by the native core from the frame as
            decoded; ABGR, ARGB, BGRA and RGB24 from its I420 conversion (an I422 or I444
            frame loses its extra chroma resolution on the way).
        max_buffered: how many frames may wait for you.
        overflow: ``"drop_oldest"`` (default) or ``"fail"``.

    Raises:
        ValueError: ``format`` is another layout (I420A, I422, I444, I010 or NV12), or an
            option is out of range.
        TypeError: ``format`` is not a VideoBufferType.
    """

    _what = "video stream"
    _event_field = "video_stream_event"
    _buffer_field = "buffer"

    def __init__(
        self,
        track: Track,
        *,
        format: VideoBufferType | None = None,
        max_buffered: int = 2,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> None:
        from ._track import Track

        if not isinstance(track, Track) or track.kind != TrackKind.VIDEO:
            raise TypeError(f"VideoStream needs a video track, not {track!r}")
        self._start(track._handle.id, None, format, max_buffered, overflow)

    @classmethod
    def from_participant(
        cls,
        participant: Participant,
        source: TrackSource = TrackSource.CAMERA,
        *,
        format: VideoBufferType | None = None,
        max_buffered: int = 2,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> VideoStream:
        """The video of ``participant``'s track from ``source``, whichever track that is.

        The stream can be opened before the participant publishes: frames start once the
        track is subscribed.  The options are those of :class:`VideoStream`.

        Raises:
            TypeError: ``participant`` is not a participant or ``source`` not a TrackSource.
            ValueError: an option is out of range.
        """
        stream = cls.__new__(cls)
        stream._start(None, cls._participant_source(participant, source), format, max_buffered,
                      overflow)
        return stream

    def _start(
        self,
        track_handle: int | None,
        participant_source: tuple[int, TrackSource] | None,
        format: VideoBufferType | None,
        max_buffered: int,
        overflow: OverflowPolicy,
    ) -> None:
        check_positive("max_buffered", max_buffered)
        if overflow not in ("fail", "drop_oldest"):
            raise ValueError(f"overflow must be 'fail' or 'drop_oldest', not {overflow!r}")
        native: VideoBufferType | None = None
        self._target: VideoBufferType | None = None
        if format is not None:
            target = check_enum("format", format, VideoBufferType)
            if target not in _STREAM_FORMATS:
                names = ", ".join(t.name for t in _STREAM_FORMATS[:-1])
                raise ValueError(
                    f"a video stream delivers {names} or {_STREAM_FORMATS[-1].name} frames, "
                    f"not {target.name} (the native core cannot convert I420, which every "
                    "track may deliver, to it): receive them as decoded and convert them"
                )
            native = target if target in _NATIVE_STREAM_FORMATS else VideoBufferType.I420
            if native != target:
                self._target = target

        def fill(msg: Any) -> None:
            msg.type = video_frame_pb2.VIDEO_STREAM_NATIVE
            msg.normalize_stride = True
            if native is not None:
                msg.format = int(native)

        self._create(
            "video", track_handle, participant_source, fill,
            max_buffered=max_buffered, overflow=overflow,
        )

    # Frames are buffered with their native buffers, unparsed, and read when received (the
    # base's _take): a frame that drop_oldest discards (or that a closed stream drops) is
    # released without being parsed or copied.  Measured before the copy was deferred: with
    # the loop draining and nobody receiving, 7 frames were copied for 5 dropped and 2 buffered.

    def _read(self, received: Any) -> VideoFrameEvent:
        info = received.buffer.info
        frame = _copy_buffer(info) if self._target is None else _convert_described(
            info, self._target
        )
        metadata = (
            FrameMetadata._from_proto(received.metadata)
            if received.HasField("metadata")
            else None
        )
        return VideoFrameEvent(
            frame, received.timestamp_us, VideoRotation(received.rotation), metadata
        )

    def __repr__(self) -> str:
        return "<VideoStream>"
