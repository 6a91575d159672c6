"""Sans-IO spin policy: whether a lone request waits for its callback by spinning, per kind.

A request alone in an otherwise idle loop can drain the shim's queue for a bounded moment instead
of sleeping in the selector: most callbacks (``get_stats``, a data packet's send) come back within
microseconds, and the spin saves a loop iteration and a thread wake-up.  Other kinds answer late
as a rule: a capture into a full audio queue is answered when the native source plays the next
10 ms out.  A spin for those burns its whole budget for nothing, on every request (measured on
trio, a lone source at 100 frames/s into its own stream: 60,596 drains per 1,000 frames against
3,135 with this policy, and 37-46 µs of the loop thread's CPU per frame, 11-14% of it).

So the policy learns per request kind (the ``FfiRequest`` oneof member, process-wide): a kind
whose last spin caught its callback spins again; a kind whose spins keep missing backs off
exponentially (after ``n`` consecutive misses the next ``2**n - 1`` lone requests of that kind in
an idle loop do not spin, up to ``2**MAX_BACKOFF - 1``), and probes again after that, so a kind
that becomes fast again (the queue drained) spins again within that many requests.  One miss
costs a fast kind one request without a spin.  Requests of one kind that differ (captures into
a full queue and into an empty one) share what is learned.

A callback that arrives during the request's schedule point, taken before the spin, counts as
caught: the kind is fast.

Pure synchronous Python, driven by explicit inputs (the kind, whether the spin caught its
callback), returning explicit decisions; the bridge owns the spinning itself.
"""

from __future__ import annotations

from typing import Final, final

__all__ = ["MAX_BACKOFF", "SpinPolicy"]

MAX_BACKOFF: Final = 6
"""A kind that only misses spins for one request in ``2**MAX_BACKOFF`` (64)."""


@final
class SpinPolicy:
    """Decides, per request kind, whether a lone request spins for its callback.

    Attributes:
        spins: outcomes recorded (a spin, or an answer during the schedule point before it).
        caught: of those, answered by the end of the spin.
        skipped: requests that would have spun but did not because their kind backs off.
    """

    __slots__ = ("_misses", "_skip", "caught", "skipped", "spins")

    def __init__(self) -> None:
        self._misses: dict[str, int] = {}  # consecutive misses of a kind (absent: 0)
        self._skip: dict[str, int] = {}  # requests of a kind still to go without a spin
        self.spins = 0
        self.caught = 0
        self.skipped = 0

    def should_spin(self, kind: str) -> bool:
        """Whether the next lone request of ``kind`` may spin (one that may not is counted).

        A request that then spins reports how it went with :meth:`record`.
        """
        skip = self._skip.get(kind)
        if skip is None:
            return True
        if skip > 1:
            self._skip[kind] = skip - 1
        else:
            del self._skip[kind]
        self.skipped += 1
        return False

    def record(self, kind: str, caught: bool) -> None:
        """Record whether a spin of ``kind`` caught its callback before its budget ran out."""
        self.spins += 1
        if caught:
            self.caught += 1
            self._misses.pop(kind, None)
            return
        misses = min(self._misses.get(kind, 0) + 1, MAX_BACKOFF)
        self._misses[kind] = misses
        self._skip[kind] = (1 << misses) - 1

    def backoff(self, kind: str) -> int:
        """Consecutive misses of ``kind``, up to :data:`MAX_BACKOFF` (0: it spins every time)."""
        return self._misses.get(kind, 0)
