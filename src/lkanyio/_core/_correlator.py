"""Sans-IO correlation core: which receiver gets which native callback or event.

Pure synchronous Python: no anyio, no FFI, no protobuf.  The bridge (``_native._bridge``) feeds it
explicit inputs (an async id or a handle taken from a parsed event) and acts on the explicit
answer (the receiver to call, or nothing).

Async requests.  The native core lets the client choose each request's ``request_async_id``.  We
take ids from ``1 << 63 | n``, a range the native core never hands out (its handles and ids share
one counter that starts at 1), and the receiver is registered *before* the request is sent:
callbacks can arrive before ``livekit_ffi_request`` returns.

Cancellation.  A waiter that gives up calls :meth:`Correlator.abandon`.  Its callback can still
arrive later; it then goes to the optional ``on_late`` receiver (which, for example, drops the
handles the late result owns, or kept a capture buffer alive until the native side was done with
it) or is counted and dropped.  Either way the waiter itself never sees it.

Keyed streams.  Room, media-stream, data-stream-reader and RPC-invocation events carry a handle
instead of an async id.  Exactly one sink is bound to a handle; fan-out to several user
subscriptions happens above this layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, final

__all__ = ["ASYNC_ID_BASE", "CorrelatorStatistics", "Correlator"]

ASYNC_ID_BASE = 1 << 63
"""First async id lkanyio chooses; everything below belongs to the native core's own counter."""

_ASYNC_ID_LIMIT = 1 << 64

R = TypeVar("R")
S = TypeVar("S")


@final
@dataclass(frozen=True)
class CorrelatorStatistics:
    """Counters of the correlation core.

    Attributes:
        pending: async requests whose receiver (waiter or late handler) is still registered.
        bound_handles: handles with a sink bound to them.
        delivered: callbacks handed to a live waiter.
        late: callbacks for one of our ids that had been abandoned or already answered
            (counted whether or not a late handler ran).
        foreign: callbacks carrying an id lkanyio never issued.
        unrouted: keyed events for a handle with no sink bound.
    """

    pending: int
    bound_handles: int
    delivered: int
    late: int
    foreign: int
    unrouted: int


@final
class Correlator(Generic[R, S]):
    """Routing tables for async callbacks (by id) and keyed events (by handle).

    ``R`` is whatever the shell registers as a receiver (for lkanyio: a callable taking the
    callback message); ``S`` is the sink type bound to handles.
    """

    __slots__ = ("_delivered", "_foreign", "_late", "_live", "_next", "_receivers", "_sinks",
                 "_unrouted")

    def __init__(self) -> None:
        self._next = ASYNC_ID_BASE
        self._receivers: dict[int, R] = {}
        self._live: set[int] = set()
        self._sinks: dict[int, S] = {}
        self._delivered = 0
        self._late = 0
        self._foreign = 0
        self._unrouted = 0

    # -- async requests ----------------------------------------------------------------------

    def register(self, receiver: R) -> int:
        """Allocate a fresh async id and register ``receiver`` as its live waiter.

        Call this *before* sending the request.

        Returns:
            The id to put in the request's ``request_async_id``.
        """
        async_id = self._next
        self._next += 1
        if self._next >= _ASYNC_ID_LIMIT:  # pragma: no cover - 2**63 requests
            self._next = ASYNC_ID_BASE
        self._receivers[async_id] = receiver
        self._live.add(async_id)
        return async_id

    def resolve(self, async_id: int) -> R | None:
        """Route the callback for ``async_id``; the registration is consumed.

        Returns:
            The live waiter or the late handler to hand the callback to, or ``None`` when the
            callback is to be dropped (it was counted as late or foreign).
        """
        receiver = self._receivers.pop(async_id, None)
        if async_id in self._live:
            self._live.discard(async_id)
            self._delivered += 1
            return receiver
        if ASYNC_ID_BASE <= async_id < self._next:
            self._late += 1
        else:
            self._foreign += 1
        return receiver

    def abandon(self, async_id: int, on_late: R | None = None) -> bool:
        """Withdraw the live waiter of ``async_id`` (cancelled, failed to send, timed out).

        Args:
            async_id: the id :meth:`register` returned.
            on_late: receives the callback if it still arrives; ``None`` drops it.

        Returns:
            ``True`` if a live waiter was withdrawn, ``False`` if the id was no longer waiting
            (already resolved or abandoned): then nothing changes.
        """
        if async_id not in self._live:
            return False
        self._live.discard(async_id)
        if on_late is None:
            del self._receivers[async_id]
        else:
            self._receivers[async_id] = on_late
        return True

    def forget(self, async_id: int) -> None:
        """Remove every trace of ``async_id``: the request was never sent, no callback will come."""
        self._live.discard(async_id)
        self._receivers.pop(async_id, None)

    def is_waiting(self, async_id: int) -> bool:
        """Whether a live waiter is registered for ``async_id``."""
        return async_id in self._live

    def take_late_handlers(self) -> list[R]:
        """Remove and return every registered late handler (the native core is going away)."""
        late = [r for i, r in self._receivers.items() if i not in self._live]
        self._receivers = {i: r for i, r in self._receivers.items() if i in self._live}
        return late

    # -- keyed events ------------------------------------------------------------------------

    def bind(self, handle: int, sink: S) -> None:
        """Route events keyed by ``handle`` to ``sink``.

        Raises:
            ValueError: if ``handle`` is 0 or already bound (a native handle is unique while it
                lives, so a second bind is a bug in the caller).
        """
        if handle <= 0:
            raise ValueError(f"cannot bind invalid handle {handle}")
        if handle in self._sinks:
            raise ValueError(f"handle {handle} is already bound")
        self._sinks[handle] = sink

    def unbind(self, handle: int) -> S | None:
        """Stop routing ``handle``; returns the sink that was bound, if any."""
        return self._sinks.pop(handle, None)

    def route(self, handle: int) -> S | None:
        """Return the sink for a keyed event, or ``None`` (counted as unrouted)."""
        sink = self._sinks.get(handle)
        if sink is None:
            self._unrouted += 1
        return sink

    # -- introspection -----------------------------------------------------------------------

    def statistics(self) -> CorrelatorStatistics:
        """Return a snapshot of the counters."""
        return CorrelatorStatistics(
            pending=len(self._receivers),
            bound_handles=len(self._sinks),
            delivered=self._delivered,
            late=self._late,
            foreign=self._foreign,
            unrouted=self._unrouted,
        )

    def take_waiting(self) -> list[R]:
        """Remove and return every live waiter (their callbacks can no longer be trusted to come).

        Their ids stay known, so a callback that still arrives counts as late, not foreign.
        """
        waiting = [self._receivers.pop(i) for i in self._live if i in self._receivers]
        self._live.clear()
        return waiting

    def waiting_count(self) -> int:
        """Number of live waiters (not counting late handlers)."""
        return len(self._live)
