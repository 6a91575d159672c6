"""What audio and video streams share: a native stream handle feeding a bounded EventStream."""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import anyio
from anyio.abc import ObjectReceiveStream

from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._proto import ffi_pb2
from .._resource import Resource
from .._streams import EventStreamStatistics, OverflowPolicy, open_event_stream

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["NativeStream"]

E = TypeVar("E")

def _stream_sink(stream_ref: weakref.ReferenceType[NativeStream[Any]], buffer_field: str) -> Any:
    """Build the sink of one native media stream.

    It holds the stream weakly (an abandoned stream can be collected: its handle is dropped
    and its routing removed by finalizers).  Each frame's native buffer (the frame event's
    ``buffer_field``) goes to the stream's :meth:`~NativeStream._accept`; one it does not take
    (or that arrives for a stream that is gone) is dropped at once.
    """
    bridge = get_bridge()

    def sink(event: Any) -> None:
        stream = stream_ref()
        which = event.WhichOneof("message")
        if which == "frame_received":
            received = event.frame_received
            buffer_id = getattr(received, buffer_field).handle.id
            taken = False
            try:
                if stream is not None and stream._accepting:
                    taken = stream._accept(received, buffer_id)
            finally:
                if not taken:
                    bridge.drop_native(buffer_id)
        elif which == "eos" and stream is not None:
            stream._on_eos()

    return sink


def _forget_stream(bridge: Any, handle_id: int) -> None:
    bridge.unbind(handle_id)
    bridge.unbound_stream(handle_id)


class NativeStream(Resource, ObjectReceiveStream[E]):
    """A native media stream as a bounded async stream of events (base of Audio/VideoStream).

    Subclasses create the native stream, then call :meth:`_open`, and implement
    :meth:`_convert` (copy one native frame into an event; the base drops the native buffer),
    or :meth:`_accept` and :meth:`_take` to buffer native frames and copy them when received.
    """

    _what = "media stream"
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
            bridge.bind(handle_id, _stream_sink(weakref.ref(self), self._buffer_field))
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

    def _convert(self, received: Any) -> E | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _accept(self, received: Any, buffer_id: int) -> bool:
        """Take one frame event; return whether this took ownership of its native buffer.

        The default copies the frame now (:meth:`_convert`) and leaves the buffer to be dropped.
        """
        item = self._convert(received)
        if item is not None:
            self._deliver(item)
        return False

    def _take(self, item: Any) -> E:
        """Turn a buffered item into the event the consumer receives (default: as is)."""
        return cast("E", item)

    def _discard(self, item: Any) -> None:
        """Release a buffered item nobody will receive (default: nothing to release)."""

    # -- called by the sink (event loop thread, synchronous) ---------------------------------

    @property
    def _accepting(self) -> bool:
        return not self._handle.closed

    def _deliver(self, event: E) -> None:
        if not self._sender.send_nowait(event):
            # The buffer overflowed ("fail"): the stream is over, stop the native one too.
            self._release()

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
        return self._take(await self._events.receive())

    def receive_nowait(self) -> E:
        """Return the next frame if one is buffered (see :meth:`receive`).

        Raises:
            anyio.WouldBlock: nothing is buffered yet.
        """
        return self._take(self._events.receive_nowait())

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
