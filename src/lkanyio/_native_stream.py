"""What audio and video streams share: a native stream handle feeding a bounded EventStream."""

from __future__ import annotations

import weakref
from typing import Any, Final, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream

from ._bridge import OwnedHandle, get_bridge
from ._streams import EventStream, EventStreamStatistics, OverflowPolicy

__all__ = ["NativeStream"]

E = TypeVar("E")

_STREAM_CLOSE_WAIT: Final = 1.0
"""Seconds ``aclose`` waits (shielded) for the native end of stream after dropping the handle."""


def _stream_sink(stream_ref: weakref.ReferenceType[NativeStream[Any]], handle_id: int) -> Any:
    """Build the sink of one native media stream.

    It holds the stream weakly (an abandoned stream can be collected; its handle is then
    dropped and the native end of stream unbinds the sink), copies each frame once and drops
    its native buffer at once, and unbinds itself at the end of the stream once the stream's
    handle has been dropped.
    """
    bridge = get_bridge()

    def sink(event: Any) -> None:
        stream = stream_ref()
        which = event.WhichOneof("message")
        if which == "frame_received":
            received = event.frame_received
            try:
                if stream is not None and stream._accepting:
                    item = stream._convert(received)
                    if item is not None:
                        stream._deliver(item)
            finally:
                bridge.drop_native(stream_buffer_handle(received))
        elif which == "eos":
            if stream is None:
                bridge.unbind(handle_id)
            else:
                stream._on_eos()

    return sink


def stream_buffer_handle(received: Any) -> int:
    """The native buffer handle of an audio (``frame``) or video (``buffer``) frame event."""
    owned = received.frame if received.HasField("frame") else received.buffer
    return int(owned.handle.id)


class NativeStream(ObjectReceiveStream[E]):
    """A native media stream as a bounded async stream of events (base of Audio/VideoStream).

    Subclasses create the native stream, then call :meth:`_open`, and implement
    :meth:`_convert` (copy one native frame into an event; the base drops the native buffer).
    """

    _what = "media stream"
    _ended: anyio.Event
    """Set once the native side has ended the stream; subclasses create it before the native
    stream (creating it also checks that an event loop is running)."""

    def _open(self, handle_id: int, *, max_buffered: int, overflow: OverflowPolicy) -> None:
        bridge = get_bridge()
        self._handle = OwnedHandle(handle_id)
        self._handle_id = handle_id
        self._eos = False
        self._bound = False
        self._events: EventStream[E] = EventStream(
            max_buffered=max_buffered, overflow=overflow, on_close=self._release, what=self._what
        )
        try:
            bridge.bind(handle_id, _stream_sink(weakref.ref(self), handle_id))
        except BaseException:
            self._events.close()
            raise
        self._bound = True

    def _convert(self, received: Any) -> E | None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- called by the sink (event loop thread, synchronous) ---------------------------------

    @property
    def _accepting(self) -> bool:
        return not self._handle.closed

    def _deliver(self, event: E) -> None:
        if not self._events.send_nowait(event):
            # The buffer overflowed ("fail"): the stream is over, stop the native one too.
            self._release()

    def _on_eos(self) -> None:
        self._eos = True
        self._events.end()
        if self._handle.closed:
            self._unbind()

    # -- release -----------------------------------------------------------------------------

    def _unbind(self) -> None:
        if self._bound:
            self._bound = False
            get_bridge().unbind(self._handle_id)
        self._ended.set()

    def _release(self) -> None:
        """Drop the native stream.

        Its sink stays bound until the native end of stream (which the drop triggers), to free
        the frames already on their way.
        """
        if self._handle.closed:
            return
        self._handle.close()
        if self._eos or not self._bound:
            self._unbind()

    def close(self) -> None:
        """Stop the stream and discard buffered frames (idempotent, synchronous).

        The native stream is released at once; lkanyio stops routing its handle when the
        native end of stream arrives, a moment later (:meth:`aclose` waits for it).
        """
        self._events.close()

    async def aclose(self) -> None:
        """Stop the stream and wait (shielded, at most 1 s) until the native side has ended it."""
        self.close()
        with anyio.move_on_after(_STREAM_CLOSE_WAIT, shield=True):
            await self._ended.wait()
        await anyio.lowlevel.checkpoint()

    # -- consumer ----------------------------------------------------------------------------

    async def receive(self) -> E:
        """Wait for the next frame.

        Raises:
            anyio.EndOfStream: the track went away (ends ``async for``).
            anyio.ClosedResourceError: you closed the stream.
            EventStreamOverflowError: the buffer overflowed with ``overflow="fail"``.
        """
        return await self._events.receive()

    def receive_nowait(self) -> E:
        """Return the next frame if one is buffered (see :meth:`receive`).

        Raises:
            anyio.WouldBlock: nothing is buffered yet.
        """
        return self._events.receive_nowait()

    def statistics(self) -> EventStreamStatistics:
        """Return the buffer's counters (buffered, received, dropped, overflowed)."""
        return self._events.statistics()
