"""What audio and video streams share: a native stream handle feeding a bounded EventStream."""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any, Literal, TypeVar, final

import anyio
from anyio.abc import ObjectReceiveStream
from google.protobuf.message import DecodeError

from .._errors import NativeError
from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._proto import ffi_pb2
from .._resource import Resource
from .._streams import EventStreamStatistics, OverflowPolicy, open_event_stream

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InlineAudio", "NativeStream"]

E = TypeVar("E")


InlineAudio = tuple[bytearray, int, int, int]
"""An audio frame the shim copied inline: (samples, sample rate, channels, samples per channel).

It owns no native memory (the shim released the buffer once it had copied the samples), so a
stream buffers it as it is: dropping or discarding it costs nothing but the reference."""


@final
class _PendingFrame:
    """A received frame nobody has read yet: its event (bytes, or parsed) and its native buffer.

    The event stays unparsed until the consumer receives the frame, so a frame the stream
    drops (``"drop_oldest"``) or never delivers costs the event loop no parse and no copy.
    """

    __slots__ = ("event", "handle")

    def __init__(self, event: bytes | Any, handle: OwnedHandle) -> None:
        self.event = event
        self.handle = handle


@final
class _MediaSink:
    """What the bridge routes one native media stream's events to.

    It holds the stream weakly (an abandoned stream can be collected: its handle is dropped
    and its routing removed by finalizers).  Frame events normally come to :meth:`frame` raw
    (the shim read their stream and buffer handles); one the shim could not read comes parsed,
    with every other event of the stream, to the call.  Either way the frame's native buffer
    goes to the stream's :meth:`~NativeStream._accept`; one it does not take (or that arrives
    for a stream that is gone) is dropped at once.
    """

    __slots__ = ("_bridge", "_buffer_field", "_stream")

    def __init__(self, stream: NativeStream[Any], buffer_field: str) -> None:
        self._stream = weakref.ref(stream)
        self._buffer_field = buffer_field
        self._bridge = get_bridge()

    def frame(self, event: bytes | Any, buffer_id: int) -> None:
        """Take one frame event (its bytes, or its parsed ``frame_received``) and its buffer."""
        if buffer_id <= 0:
            return  # no buffer to own or drop (a frame event the shim would not route raw)
        stream = self._stream()
        taken = False
        try:
            if stream is not None and stream._accepting:
                taken = stream._accept(event, buffer_id)
        finally:
            if not taken:
                self._bridge.drop_native(buffer_id)

    def audio(
        self, samples: bytearray, sample_rate: int, num_channels: int, samples_per_channel: int
    ) -> None:
        """Take one audio frame the shim copied inline (its native buffer is released)."""
        stream = self._stream()
        if stream is not None and stream._accepting:
            stream._accept_inline((samples, sample_rate, num_channels, samples_per_channel))

    def __call__(self, event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "frame_received":
            received = event.frame_received
            self.frame(received, getattr(received, self._buffer_field).handle.id)
        elif which == "eos":
            stream = self._stream()
            if stream is not None:
                stream._on_eos()


def _forget_stream(bridge: Any, handle_id: int) -> None:
    bridge.unbind(handle_id)
    bridge.unbound_stream(handle_id)


class NativeStream(Resource, ObjectReceiveStream[E]):
    """A native media stream as a bounded async stream of events (base of Audio/VideoStream).

    Subclasses create the native stream, then call :meth:`_open`, and implement
    :meth:`_read` (copy one received native frame into the event the consumer gets).  Frames
    are buffered unread, each with its native buffer, and read when received: a frame that is
    dropped or discarded is released without being parsed or copied.
    """

    _what = "media stream"
    _event_field = "audio_stream_event"
    """The ``FfiEvent`` field of this kind's stream events (video: ``video_stream_event``)."""
    _buffer_field = "frame"
    """The field of a ``frame_received`` event holding the native buffer (video: ``buffer``)."""

    def _create(
        self,
        kind: Literal["audio", "video"],
        track_handle: int | None,
        participant_source: tuple[int, Any] | None,
        fill: Callable[[Any], None],
        *,
        max_buffered: int,
        overflow: OverflowPolicy,
    ) -> None:
        """Create the native stream of a track (or of a participant's source) and open it.

        ``fill`` completes the kind's own request fields; the rest is the same for both kinds:
        a ``new_{kind}_stream`` for ``track_handle``, or a ``{kind}_stream_from_participant``
        for ``participant_source`` (participant handle, track source).
        """
        anyio.get_current_task()  # streams are created in async code (checks for a loop)
        req = ffi_pb2.FfiRequest()
        which = f"{kind}_stream_from_participant" if participant_source else f"new_{kind}_stream"
        msg = getattr(req, which)
        if participant_source is None:
            msg.track_handle = track_handle
        else:
            msg.participant_handle, source = participant_source
            msg.track_source = int(source)
        fill(msg)
        owned = getattr(get_bridge().request(req), which).stream
        self._open(owned.handle.id, max_buffered=max_buffered, overflow=overflow)

    def _open(self, handle_id: int, *, max_buffered: int, overflow: OverflowPolicy) -> None:
        bridge = get_bridge()
        self._bridge = bridge
        self._handle_id = handle_id  # kept: frames may still be buffered once it is closed
        self._handle = OwnedHandle(handle_id)
        self._sender, self._events = open_event_stream(
            max_buffered=max_buffered,
            overflow=overflow,
            on_close=self._release,
            discard=self._discard,
            what=self._what,
        )
        self._shim_dropped = 0  # frames the shim dropped for this stream, once released
        self._drop_oldest = overflow == "drop_oldest"
        # Stops the routing once the stream is released, or collected without being closed.
        # Made first: closing the events below on a failure releases through it.
        self._unbind = weakref.finalize(self, _forget_stream, bridge, handle_id)
        try:
            bridge.bind(handle_id, _MediaSink(self, self._buffer_field))
            # The shim's queue applies the same policy while the loop is not draining (a busy
            # loop otherwise let frames pile up there, each holding its native buffer).
            bridge.bound_stream(handle_id, max_buffered, drop_oldest=self._drop_oldest)
        except BaseException:
            self._events.close()  # releases the native stream, its routing and its bound
            raise

    @staticmethod
    def _participant_source(participant: object, source: object) -> tuple[int, Any]:
        """Check the arguments of ``from_participant``; return (participant handle, source).

        Raises:
            TypeError: ``participant`` is not a participant or ``source`` not a TrackSource.
        """
        from .._core._session import ParticipantRecord
        from .._types import TrackSource

        # A participant is a view of the session's record (``Participant._record``): asking
        # the record keeps media below the room's features, which import media.
        record = getattr(participant, "_record", None)
        if not isinstance(record, ParticipantRecord):
            raise TypeError(f"from_participant needs a participant, not {participant!r}")
        if not isinstance(source, TrackSource):
            raise TypeError(f"source must be a TrackSource, not {source!r}")
        return record.handle.id, source

    def _read(self, received: Any) -> E | None:  # pragma: no cover - abstract
        """Copy one received frame (its ``frame_received`` message) into an event.

        Called when the consumer receives it, while its native buffer is still held; ``None``
        skips a frame that holds nothing (it still counts in ``statistics().received``: the
        buffer cannot tell it apart before it is read).
        """
        raise NotImplementedError

    def _accept(self, event: bytes | Any, buffer_id: int) -> bool:
        """Buffer one frame event; return whether this took ownership of its native buffer.

        ``event`` is the ``FfiEvent``'s bytes (or, when the shim could not read it, the parsed
        ``frame_received`` message).
        """
        if not self._sender.make_room():
            self._release()  # overflowed ("fail") or ended: stop the native stream too
            return False
        self._sender.send_nowait(_PendingFrame(event, OwnedHandle(buffer_id)))
        return True

    def _accept_inline(self, frame: InlineAudio) -> None:
        """Buffer one audio frame the shim copied inline (it owns nothing native)."""
        if not self._sender.send_nowait(frame):  # makes room as its policy says
            self._release()  # overflowed ("fail") or ended: stop the native stream too

    def _read_inline(self, frame: InlineAudio) -> E | None:
        """Turn an inline audio frame into the consumer's event (audio streams only).

        Raises:
            NativeError: this stream is not an audio stream.
        """
        raise NativeError(f"a {self._what} was handed an audio frame")

    def _received(self, pending: _PendingFrame) -> Any:
        """The ``frame_received`` message of a buffered frame, parsed now if it came raw.

        Raises:
            NativeError: the event is not a frame of this stream's kind, or names another
                buffer than the shim read (the stream ends with it).
        """
        event = pending.event
        if not isinstance(event, bytes):
            return event
        # The shim read only the first stream and buffer handles of the event; protobuf reads
        # all of it (a later duplicate field wins), so both must agree on whose frame it is.
        try:
            parsed = ffi_pb2.FfiEvent.FromString(event)
        except DecodeError as exc:
            raise NativeError(f"the native core sent a malformed frame event: {exc}") from exc
        which = parsed.WhichOneof("message")
        stream_event = getattr(parsed, which) if which == self._event_field else None
        if (
            stream_event is None
            or stream_event.WhichOneof("message") != "frame_received"
            or stream_event.stream_handle != self._handle_id
            or getattr(stream_event.frame_received, self._buffer_field).handle.id
            != pending.handle.id
        ):
            raise NativeError(
                f"a {self._what} was handed an event that is not one of its frames ({which})"
            )
        return stream_event.frame_received

    def _take(self, item: Any) -> E | None:
        """Read a buffered frame into the event the consumer receives, and release its buffer.

        A frame that cannot be read ends the stream loudly: skipping it would leave an
        ``async for`` waiting forever if every frame were like it.
        """
        try:
            if type(item) is tuple:  # an inline audio frame: its samples are already ours
                return self._read_inline(item)
            if self._bridge.disposed:  # the native core is gone, and the frame's memory with it
                raise NativeError("the native core has been disposed (the process is exiting)")
            return self._read(self._received(item))
        except NativeError as exc:
            self._sender.fail(exc)
            self._release()
            raise
        finally:
            self._discard(item)

    def _discard(self, item: Any) -> None:
        """Release a buffered frame nobody will receive (an inline one holds nothing)."""
        if type(item) is not tuple:
            item.handle.close()

    # -- called by the sink (event loop thread, synchronous) ---------------------------------

    @property
    def _accepting(self) -> bool:
        return not self._handle.closed

    def _on_eos(self) -> None:
        self._sender.end()
        self._release()

    # -- release -----------------------------------------------------------------------------

    def _release(self) -> None:
        """Drop the native stream and stop routing its handle.

        Not every native stream confirms a drop with an end of stream (a video stream opened
        from a participant never does), so lkanyio does not wait for one: frames already on
        their way arrive unrouted, and the bridge frees their buffers.
        """
        if self._handle.closed:
            return
        self._shim_dropped = get_bridge().stream_dropped(self._handle.id)
        self._handle.close()
        self._unbind()

    def close(self) -> None:
        """Stop the stream and discard buffered frames (idempotent, synchronous).

        The native stream is released and its frames stop being routed at once.
        """
        self._events.close()

    # -- consumer ----------------------------------------------------------------------------

    async def receive(self) -> E:
        """Wait for the next frame.

        Raises:
            anyio.EndOfStream: the track went away (ends ``async for``).
            anyio.ClosedResourceError: you closed the stream.
            EventStreamOverflowError: the buffer overflowed with ``overflow="fail"``.
        """
        while True:
            event = self._take(await self._events.receive())
            if event is not None:
                return event

    def receive_nowait(self) -> E:
        """Return the next frame if one is buffered (see :meth:`receive`).

        Raises:
            anyio.WouldBlock: nothing is buffered yet.
        """
        while True:
            event = self._take(self._events.receive_nowait())
            if event is not None:
                return event

    def statistics(self) -> EventStreamStatistics:
        """Return the buffer's counters (buffered, received, dropped, overflowed).

        ``dropped`` includes the frames lkanyio dropped before they reached the buffer, while
        the event loop was not receiving them (``"drop_oldest"``).
        """
        stats = self._events.statistics()
        shim = self._shim_dropped if self._handle.closed else get_bridge().stream_dropped(
            self._handle.id
        )
        if not shim or not self._drop_oldest:
            return stats
        return dataclasses.replace(stats, dropped=stats.dropped + shim)
