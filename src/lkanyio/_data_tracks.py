"""Data tracks: named tracks of small frames, pushed by the publisher and pulled by subscribers.

A data track is LiveKit's low-latency, unordered-but-framed channel: the publisher pushes
frames without waiting (:meth:`LocalDataTrack.try_push` fails at once when it cannot keep up),
each subscriber pulls them through a :class:`DataTrackStream`, asking the native core for one
frame at a time, so a slow subscriber never makes lkanyio buffer more than one frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

import anyio
from anyio.abc import ObjectReceiveStream

from ._checks import check_positive
from ._errors import DataTrackError, ResourceClosedError, native_error
from ._native._bridge import get_bridge
from ._native._handles import OwnedHandle
from ._native._proto import ffi_pb2
from ._resource import Resource
from ._streams import EventStream, EventStreamStatistics, open_event_stream

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from ._core._session import NativeHandle
    from ._port import RoomPort

__all__ = [
    "DataTrackFrame",
    "DataTrackInfo",
    "DataTrackStream",
    "LocalDataTrack",
    "RemoteDataTrack",
]

_U64: Final = 1 << 64
_MAX_BUFFER: Final = 1 << 16
"""Largest ``buffer_size`` a subscription takes (frames the native core holds for you)."""




@final
@dataclass(frozen=True)
class DataTrackInfo:
    """What a published data track says about itself.

    Attributes:
        sid: server id of the track (it may change after a reconnect; ``name`` does not).
        name: the publisher's name for the track, unique per publisher.
        uses_e2ee: whether its frames are end-to-end encrypted.
    """

    sid: str
    name: str
    uses_e2ee: bool


@final
@dataclass(frozen=True)
class DataTrackFrame:
    """One frame received on a data track.

    Attributes:
        payload: the bytes the publisher pushed.
        user_timestamp: the publisher's timestamp for the frame, if it gave one.
    """

    payload: bytes
    user_timestamp: int | None = None


def _info(info: Any) -> DataTrackInfo:
    return DataTrackInfo(sid=info.sid, name=info.name, uses_e2ee=info.uses_e2ee)


def _payload(payload: object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, (bytearray, memoryview)):
        if not memoryview(payload).c_contiguous:
            raise ValueError("payload must be a C-contiguous buffer (copy it first: bytes(view))")
        return bytes(payload)
    raise TypeError(f"payload must be bytes-like, not {type(payload).__name__}")


def _check_buffer(name: str, value: object) -> None:
    """Accept an int in [1, ``_MAX_BUFFER``] (TypeError or ValueError otherwise)."""
    check_positive(name, value, maximum=_MAX_BUFFER)


def _timestamp(user_timestamp: object) -> int | None:
    if user_timestamp is None:
        return None
    if isinstance(user_timestamp, bool) or not isinstance(user_timestamp, int):
        raise TypeError(f"user_timestamp must be an int, not {type(user_timestamp).__name__}")
    if not 0 <= user_timestamp < _U64:
        raise ValueError("user_timestamp must be in [0, 2**64)")
    return user_timestamp


class _DataTrack:
    """What local and remote data tracks share: a native handle and the track's info."""

    __slots__ = ("__weakref__", "_handle", "_info")
    _side: str  # "local" or "remote": the prefix of the native requests for this kind of track

    def __init__(self, owned: Any, handle: NativeHandle | None = None) -> None:
        self._handle: NativeHandle = OwnedHandle(owned.handle.id) if handle is None else handle
        self._info = _info(owned.info)

    def is_published(self) -> bool:
        """Whether the track is still published."""
        if self._handle.closed:
            return False
        req = ffi_pb2.FfiRequest()
        which = f"{self._side}_data_track_is_published"
        getattr(req, which).track_handle = self._handle.id
        return bool(getattr(get_bridge().request(req), which).is_published)

    @property
    def info(self) -> DataTrackInfo:
        """Name, sid and encryption of the track."""
        return self._info

    @property
    def name(self) -> str:
        """The track's name."""
        return self._info.name

    @property
    def sid(self) -> str:
        """The track's server id."""
        return self._info.sid

    def _close(self) -> None:
        """Release the handle (the room is going away, or the track was unpublished)."""
        self._handle.close()


@final
class LocalDataTrack(_DataTrack):
    """A data track this participant publishes (from ``publish_data_track``).

    Use it as an async context manager to unpublish it on exit; the room unpublishes and
    releases what is left when it closes.  After that, :meth:`unpublish` and leaving its
    ``async with`` do nothing, and :meth:`try_push` raises
    :class:`~lkanyio.ResourceClosedError`.
    """

    __slots__ = ("_port",)
    _side = "local"

    def __init__(self, owned: Any, port: RoomPort, handle: NativeHandle | None = None) -> None:
        super().__init__(owned, handle)
        self._port = port

    def try_push(
        self, payload: bytes | bytearray | memoryview, *, user_timestamp: int | None = None
    ) -> None:
        """Send one frame to the track's subscribers, without waiting.

        Raises:
            DataTrackError: the frame was not sent: the track is unpublished, the room is not
                connected, or frames are pushed faster than they can leave (the native
                message says which). Nothing was queued; push again later or drop it.
            ResourceClosedError: the room was left (it unpublished the track).
            TypeError: ``payload`` is not bytes-like.
        """
        data = _payload(payload)
        timestamp = _timestamp(user_timestamp)
        if self._handle.closed:
            if self._port.closed:
                raise ResourceClosedError(
                    f"data track {self.name!r} was unpublished when its room was left"
                )
            raise DataTrackError(f"data track {self.name!r} was unpublished")
        req = ffi_pb2.FfiRequest()
        msg = req.local_data_track_try_push
        msg.track_handle = self._handle.id
        msg.frame.payload = data
        if timestamp is not None:
            msg.frame.user_timestamp = timestamp
        result = get_bridge().request(req).local_data_track_try_push
        if result.HasField("error"):
            raise native_error(result, DataTrackError, default="the frame was not pushed")

    def unpublish_nowait(self) -> None:
        """Unpublish the track and release it (idempotent, synchronous)."""
        if self._handle.closed:
            return
        req = ffi_pb2.FfiRequest()
        req.local_data_track_unpublish.track_handle = self._handle.id
        try:
            get_bridge().request(req)
        finally:
            self._port.session.local_data_track_unpublished(self.sid)  # releases it
            self._handle.close()  # a track the session never adopted (a late answer)

    async def unpublish(self) -> None:
        """Unpublish the track and release it (idempotent)."""
        self.unpublish_nowait()
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unpublish_nowait()

    def __repr__(self) -> str:
        return f"<LocalDataTrack name={self.name!r} sid={self.sid!r}>"


@final
class RemoteDataTrack(_DataTrack):
    """A data track another participant publishes (from a ``DataTrackPublished`` event).

    The room owns it: it is released when the track is unpublished or the room closes.
    """

    __slots__ = ("_publisher",)
    _side = "remote"

    def __init__(self, owned: Any, handle: NativeHandle | None = None) -> None:
        super().__init__(owned, handle)
        self._publisher: str = owned.publisher_identity

    @property
    def publisher_identity(self) -> str:
        """Identity of the participant who publishes it."""
        return self._publisher

    def _checked_handle(self) -> int:
        if self._handle.closed:
            raise DataTrackError(f"data track {self.name!r} of {self._publisher!r} is gone")
        return self._handle.id

    def set_pipeline_options(self, *, max_partial_frames: int) -> None:
        """Set how many partly received frames the native core reassembles at once.

        More tolerates more reordering from a fast publisher at the cost of memory; it applies
        to every subscription of this track, from the next packet on.

        Raises:
            ValueError: ``max_partial_frames`` is not in [1, 65536].
        """
        _check_buffer("max_partial_frames", max_partial_frames)
        req = ffi_pb2.FfiRequest()
        msg = req.remote_data_track_set_pipeline_options
        msg.track_handle = self._checked_handle()
        msg.options.max_partial_frames = max_partial_frames
        get_bridge().request(req)

    def subscribe(self, *, buffer_size: int | None = None) -> DataTrackStream:
        """Subscribe: frames arrive through the returned stream until you close it.

        Use the stream with ``async with`` (it unsubscribes on exit) and ``async for``.

        Args:
            buffer_size: frames the native core holds while you are not reading (1 to
                65536; ``None`` for its default). When it is full, the oldest frames are lost
                there; lkanyio itself holds at most one.

        Raises:
            DataTrackError: the track is gone. A subscription the server refuses ends the
                stream's iteration with ``DataTrackError`` instead.
        """
        if buffer_size is not None:
            _check_buffer("buffer_size", buffer_size)
        req = ffi_pb2.FfiRequest()
        msg = req.subscribe_data_track
        msg.track_handle = self._checked_handle()
        msg.options.SetInParent()
        if buffer_size is not None:
            msg.options.buffer_size = buffer_size
        owned = get_bridge().request(req).subscribe_data_track.stream
        return DataTrackStream(owned.handle.id, self)

    def __repr__(self) -> str:
        return (
            f"<RemoteDataTrack name={self.name!r} sid={self.sid!r} "
            f"publisher={self._publisher!r}>"
        )


@final
class DataTrackStream(Resource, ObjectReceiveStream[DataTrackFrame]):
    """A subscription to a remote data track, as an async stream of :class:`DataTrackFrame`.

    Each ``receive`` asks the native core for the next frame, so frames wait there (up to the
    subscription's ``buffer_size``), not in Python.  Iteration ends when the track is
    unpublished; it raises :class:`DataTrackError` if the subscription failed.
    """

    def __init__(self, handle_id: int, track: RemoteDataTrack) -> None:
        self._track = track
        self._handle = OwnedHandle(handle_id)
        self._handle_id = handle_id
        self._requested = False  # a read request is out and its frame has not come back
        self._frames: EventStream[DataTrackFrame]
        self._feed, self._frames = open_event_stream(
            max_buffered=1, overflow="fail", on_close=self._release, what="data track stream"
        )
        bridge = get_bridge()
        try:
            bridge.bind(handle_id, self._on_event)
        except BaseException:
            self._handle.close()
            raise

    @property
    def track(self) -> RemoteDataTrack:
        """The track this stream receives."""
        return self._track

    def _on_event(self, event: Any) -> None:
        which = event.WhichOneof("detail")
        if which == "frame_received":
            self._requested = False
            frame = event.frame_received.frame
            self._feed.send_nowait(
                DataTrackFrame(
                    payload=frame.payload,
                    user_timestamp=(
                        frame.user_timestamp if frame.HasField("user_timestamp") else None
                    ),
                )
            )
        elif which == "eos":
            self._on_eos(event.eos)

    def _on_eos(self, eos: Any) -> None:
        self._requested = False
        error = None
        if eos.HasField("error"):
            error = native_error(eos, DataTrackError, what="subscription failed")
        self._feed.end(error)
        self._release()

    def _release(self) -> None:
        if self._handle.closed:
            return
        get_bridge().unbind(self._handle_id)
        self._handle.close()

    def _request_frame(self) -> None:
        if self._requested or self._handle.closed:
            return
        req = ffi_pb2.FfiRequest()
        req.data_track_stream_read.stream_handle = self._handle_id
        self._requested = True
        try:
            result = get_bridge().request(req).data_track_stream_read
        except BaseException:
            self._requested = False
            raise
        if result.HasField("eos_event"):
            self._on_eos(result.eos_event)

    async def receive(self) -> DataTrackFrame:
        """Wait for the next frame.

        Raises:
            anyio.EndOfStream: the track was unpublished or the room closed (ends ``async for``).
            anyio.ClosedResourceError: you closed the stream.
            DataTrackError: the subscription failed.
        """
        if not self._frames.statistics().buffered:
            # Ask for one frame.  If this call is cancelled the frame still comes and waits
            # here for the next receive, which then asks for nothing more.
            self._request_frame()
        return await self._frames.receive()

    def close(self) -> None:
        """Unsubscribe and discard a frame that was on its way (idempotent, synchronous)."""
        self._frames.close()

    def statistics(self) -> EventStreamStatistics:
        """Return the stream's counters (``received`` counts frames delivered to you)."""
        return self._frames.statistics()

    def __repr__(self) -> str:
        return f"<DataTrackStream of {self._track!r}>"
