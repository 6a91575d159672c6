"""Bounded, single-consumer event streams fed synchronously by the dispatcher.

The dispatcher must never block, so producers call :meth:`EventSender.send_nowait` and a full
buffer is resolved by the stream's overflow policy instead of by waiting:

* ``"fail"`` — nothing is ever dropped silently: when the buffer is full the subscription ends,
  and after the buffered items the consumer gets :class:`~lkanyio.EventStreamOverflowError`.
  Default for control events (room events) and for audio.
* ``"drop_oldest"`` — the oldest buffered item is discarded and counted in
  :meth:`EventStream.statistics`.  Default for video (keep the latest frames).

An :class:`EventStream` is an :class:`anyio.abc.ObjectReceiveStream`: use it with ``async for``
and ``async with``; closing it unsubscribes.  It is receive-only: :func:`open_event_stream`
returns it together with its producer end, an :class:`EventSender` that stays inside lkanyio
(anyio's ``MemoryObjectSendStream``/``ReceiveStream`` pair is the model), so nothing a user
holds can feed or end a stream.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, final

import anyio
from anyio.abc import ObjectReceiveStream

from ._checkpoints import Waiters, checkpoint, checkpoint_if_cancelled, park, unpark_all
from ._checks import check_positive
from ._errors import EventStreamOverflowError
from ._resource import Resource

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EventSender",
    "EventStream",
    "EventStreamStatistics",
    "OverflowPolicy",
    "open_event_stream",
]

T = TypeVar("T")

_live = 0  # streams neither closed by their consumer nor ended by their producer


def live_streams() -> int:
    """How many event streams are live subscriptions right now (for :func:`lkanyio.statistics`)."""
    return _live


OverflowPolicy = Literal["fail", "drop_oldest"]
"""What a full stream does with a new item: end loudly (``"fail"``) or drop the oldest."""


@final
@dataclass(frozen=True)
class EventStreamStatistics:
    """Counters of one :class:`EventStream`.

    Attributes:
        buffered: items waiting to be received.
        max_buffered: the buffer's bound.
        received: items handed to the consumer so far.
        dropped: items discarded by the ``"drop_oldest"`` policy.
        overflowed: whether the ``"fail"`` policy ended the stream.
    """

    buffered: int
    max_buffered: int
    received: int
    dropped: int
    overflowed: bool


@final
class EventStream(Resource, ObjectReceiveStream[T], Generic[T]):
    """A bounded stream of events or frames, filled by lkanyio and received by you.

    Create one through the object that produces it (``room.events()``, ``AudioStream`` …),
    never directly.  Only the consumer's side is public: lkanyio feeds it through its private
    :class:`EventSender`.
    """

    def __init__(
        self,
        *,
        max_buffered: int,
        overflow: OverflowPolicy,
        on_close: Callable[[], None] | None = None,
        discard: Callable[[T], None] | None = None,
        what: str = "event stream",
    ) -> None:
        check_positive("max_buffered", max_buffered)
        if overflow not in ("fail", "drop_oldest"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self._items: deque[T] = deque()
        self._max = max_buffered
        self._policy: OverflowPolicy = overflow
        self._on_close = on_close
        self._discard = discard  # releases an item nobody will receive (one that owns a handle)
        self._what = what
        self._parked: Waiters = []  # consumers waiting for an item
        self._closed = False  # closed by the consumer
        self._ended = False  # ended by the producer (end of stream, error or overflow)
        self._error: BaseException | None = None
        self._received = 0
        self._dropped = 0
        self._overflowed = False
        global _live
        _live += 1

    @property
    def _subscribed(self) -> bool:
        """Neither closed by the consumer nor ended by the producer: a live subscription."""
        return not (self._closed or self._ended)

    def _retire(self) -> None:
        """Call just before the stream stops being a live subscription (first close or end)."""
        global _live
        _live -= 1

    # -- producer side (synchronous, in the event loop thread; only EventSender calls these) --

    def _send_nowait(self, item: T) -> bool:
        """Queue ``item`` for the consumer without blocking.

        Returns:
            ``False`` if the item was not queued because the stream is closed or ended.
        """
        if not self._make_room():
            return False
        self._items.append(item)
        self._wake()
        return True

    def _make_room(self) -> bool:
        """Make room for one more item, as :meth:`_send_nowait` would; return whether there is.

        For a producer that must know before it builds the item (one that takes ownership of
        something).  A full ``"drop_oldest"`` stream drops its oldest item; a full ``"fail"``
        stream ends with :class:`EventStreamOverflowError`; a closed or ended one has no room.
        """
        if self._closed or self._ended:
            return False
        items = self._items
        if len(items) < self._max:
            return True
        if self._policy == "drop_oldest":
            oldest = items.popleft()
            self._dropped += 1
            if self._discard is not None:
                self._discard(oldest)
            return True
        self._overflowed = True
        self._end(
            EventStreamOverflowError(
                f"{self._what} overflowed: more than {self._max} items were waiting; "
                "receive faster or subscribe with a larger max_buffered"
            )
        )
        return False

    def _end(self, error: BaseException | None = None) -> None:
        """End the stream: the consumer gets what is buffered, then ``error`` or end of stream."""
        if self._ended:
            return
        if not self._closed:
            self._retire()
        self._ended = True
        self._error = error
        self._wake()

    def _fail(self, error: BaseException) -> None:
        """End the stream with ``error`` now, discarding what is buffered (consumer side too).

        For an item that turned out to be unusable when it was received: the consumer gets
        ``error`` next, and what was queued behind the item is released.
        """
        discard = self._discard
        while self._items:
            item = self._items.popleft()
            if discard is not None:
                discard(item)
        self._end(error)

    def _wake(self) -> None:
        if self._parked:
            unpark_all(self._parked)

    # -- consumer side -----------------------------------------------------------------------

    def receive_nowait(self) -> T:
        """Return the next item if one is buffered.

        Raises:
            anyio.WouldBlock: nothing is buffered yet.
            anyio.EndOfStream: the stream has ended normally.
            anyio.ClosedResourceError: you closed the stream.
            EventStreamOverflowError: the stream ended because you fell behind (``"fail"``).
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._items:
            self._received += 1
            return self._items.popleft()
        if self._ended:
            if self._error is not None:
                raise self._error
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    async def receive(self) -> T:
        """Wait for and return the next item (see :meth:`receive_nowait` for the errors)."""
        if self._items and not self._closed:
            # Every receive is a schedule point: taken before the item, so a cancellation
            # there leaves it buffered.  (A receive that waits has been one already: a
            # consumer keeping up with its stream waits once per item.)
            await checkpoint()
        else:
            await checkpoint_if_cancelled()
        while True:
            try:
                return self.receive_nowait()
            except anyio.WouldBlock:
                await park(self._parked)

    def close(self) -> None:
        """Unsubscribe and discard what is buffered (idempotent, synchronous)."""
        if self._closed:
            return
        if not self._ended:
            self._retire()
        self._closed = True
        discard = self._discard
        while self._items:
            item = self._items.popleft()
            if discard is not None:
                discard(item)
        self._wake()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    @property
    def closed(self) -> bool:
        """Whether the consumer closed the stream."""
        return self._closed

    def statistics(self) -> EventStreamStatistics:
        """Return the stream's counters."""
        return EventStreamStatistics(
            buffered=len(self._items),
            max_buffered=self._max,
            received=self._received,
            dropped=self._dropped,
            overflowed=self._overflowed,
        )

    def __del__(self) -> None:
        if not hasattr(self, "_ended"):  # __init__ refused its arguments: never counted
            return
        if self._subscribed:
            self._retire()
            warnings.warn(
                f"unclosed {self._what}; use it with 'async with' or call close()",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )


@final
class EventSender(Generic[T]):
    """The producer end of one :class:`EventStream` (lkanyio's; never handed to users).

    Synchronous and non-blocking, for the dispatcher: a full stream applies its overflow policy.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: EventStream[T]) -> None:
        self._stream = stream

    @property
    def stream(self) -> EventStream[T]:
        """The receive-only end this sender feeds."""
        return self._stream

    @property
    def closed(self) -> bool:
        """Whether the consumer closed the stream."""
        return self._stream._closed

    def send_nowait(self, item: T) -> bool:
        """Queue ``item`` for the consumer without blocking.

        Returns:
            ``False`` if the item was not queued because the stream is closed or ended.
        """
        return self._stream._send_nowait(item)

    def make_room(self) -> bool:
        """Make room for one more item, as :meth:`send_nowait` would; return whether there is.

        For a producer that must know before it builds the item (one that takes ownership of
        something).  A full ``"drop_oldest"`` stream drops its oldest item; a full ``"fail"``
        stream ends with :class:`EventStreamOverflowError`; a closed or ended one has no room.
        """
        return self._stream._make_room()

    def end(self, error: BaseException | None = None) -> None:
        """End the stream: the consumer gets what is buffered, then ``error`` or end of stream."""
        self._stream._end(error)

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` now, discarding what is buffered.

        For an item that turned out to be unusable when it was received: the consumer gets
        ``error`` next, and what was queued behind the item is released.
        """
        self._stream._fail(error)


def open_event_stream(
    *,
    max_buffered: int,
    overflow: OverflowPolicy,
    on_close: Callable[[], None] | None = None,
    discard: Callable[[T], None] | None = None,
    what: str = "event stream",
) -> tuple[EventSender[T], EventStream[T]]:
    """Create a stream: the producer end for lkanyio, the receive-only end for the user.

    Args:
        max_buffered: the buffer's bound (at least 1).
        overflow: what a full stream does with a new item.
        on_close: called once when the consumer closes the stream.
        discard: releases an item nobody will receive (one that owns a native handle).
        what: names the stream in errors and warnings.
    """
    stream: EventStream[T] = EventStream(
        max_buffered=max_buffered, overflow=overflow, on_close=on_close, discard=discard, what=what
    )
    return EventSender(stream), stream
