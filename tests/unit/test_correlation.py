"""The sans-IO correlation core, driven by hypothesis over every interleaving.

The core is pure Python, so the "native core" here is a model: a fake event source is the point of
these tests (and the only place the project uses one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from _util import examples
from lkanyio._core import ASYNC_ID_BASE, Correlator


@dataclass
class Receiver:
    """Records what it was handed (the shell's waiter or late handler)."""

    name: str
    got: list[Any] = field(default_factory=list)

    def __call__(self, message: Any) -> None:
        self.got.append(message)


def deliver(core: Correlator[Receiver, Any], async_id: int, message: Any) -> Receiver | None:
    """What the bridge does with a callback."""
    receiver = core.resolve(async_id)
    if receiver is not None:
        receiver(message)
    return receiver


# -- contracts -------------------------------------------------------------------------------


def test_ids_are_ours_unique_and_increasing() -> None:
    core: Correlator[Receiver, Any] = Correlator()
    ids = [core.register(Receiver(str(i))) for i in range(100)]
    assert ids[0] == ASYNC_ID_BASE
    assert ids == sorted(set(ids))
    assert all(i >= 1 << 63 for i in ids)


def test_resolve_delivers_once_then_counts_late() -> None:
    core: Correlator[Receiver, Any] = Correlator()
    waiter = Receiver("w")
    async_id = core.register(waiter)
    assert core.is_waiting(async_id)
    assert deliver(core, async_id, "first") is waiter
    assert deliver(core, async_id, "duplicate") is None
    assert waiter.got == ["first"]
    stats = core.statistics()
    assert (stats.delivered, stats.late, stats.foreign, stats.pending) == (1, 1, 0, 0)


@pytest.mark.parametrize("foreign", [0, 1, 12345, ASYNC_ID_BASE - 1, ASYNC_ID_BASE + 10])
def test_foreign_ids_are_counted_and_dropped(foreign: int) -> None:
    core: Correlator[Receiver, Any] = Correlator()
    assert deliver(core, foreign, "x") is None
    assert core.statistics().foreign == 1


def test_abandon_without_and_with_late_handler() -> None:
    core: Correlator[Receiver, Any] = Correlator()
    plain, late = Receiver("plain"), Receiver("late")
    a = core.register(plain)
    b = core.register(Receiver("b"))
    assert core.abandon(a) is True
    assert core.abandon(b, late) is True
    assert not core.is_waiting(a)
    assert core.waiting_count() == 0
    assert core.statistics().pending == 1  # only the late handler is still registered
    assert deliver(core, a, "for a") is None
    assert deliver(core, b, "for b") is late
    assert late.got == ["for b"]
    assert plain.got == []
    assert core.statistics().late == 2
    assert core.statistics().pending == 0


def test_abandon_after_resolve_changes_nothing() -> None:
    core: Correlator[Receiver, Any] = Correlator()
    waiter = Receiver("w")
    async_id = core.register(waiter)
    deliver(core, async_id, "m")
    assert core.abandon(async_id, Receiver("late")) is False
    assert core.statistics().pending == 0
    assert core.abandon(async_id) is False


def test_forget_removes_every_trace() -> None:
    core: Correlator[Receiver, Any] = Correlator()
    waiter = Receiver("w")
    async_id = core.register(waiter)
    core.forget(async_id)
    assert core.statistics().pending == 0
    assert deliver(core, async_id, "m") is None
    assert waiter.got == []


def test_take_late_handlers_leaves_live_waiters() -> None:
    core: Correlator[Receiver, Any] = Correlator()
    live, late = Receiver("live"), Receiver("late")
    a = core.register(live)
    b = core.register(Receiver("b"))
    core.abandon(b, late)
    assert core.take_late_handlers() == [late]
    assert core.is_waiting(a)
    assert deliver(core, a, "m") is live


def test_bind_route_unbind() -> None:
    core: Correlator[Receiver, Receiver] = Correlator()
    sink = Receiver("sink")
    core.bind(7, sink)
    assert core.route(7) is sink
    with pytest.raises(ValueError, match="already bound"):
        core.bind(7, Receiver("other"))
    for bad in (0, -1):
        with pytest.raises(ValueError, match="invalid handle"):
            core.bind(bad, sink)
    assert core.unbind(7) is sink
    assert core.unbind(7) is None
    assert core.route(7) is None
    stats = core.statistics()
    assert (stats.bound_handles, stats.unrouted) == (0, 1)


# -- every interleaving ----------------------------------------------------------------------

# One request's life, as seen by the shell: it is registered before it is sent; then the
# native core may answer (its callback may even come before the send returns), the waiter may
# be cancelled (with or without a late handler), the send may fail (forget), and the callback
# may be duplicated.  Operations refer to requests by index into the pool.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("register"), st.integers(0, 5)),
        st.tuples(st.just("callback"), st.integers(0, 5)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("cancel_late"), st.integers(0, 5)),
        st.tuples(st.just("forget"), st.integers(0, 5)),
        st.tuples(st.just("foreign"), st.integers(0, (1 << 63) - 1)),
    ),
    max_size=60,
)


@settings(max_examples=examples(400), deadline=None)
@given(OPS)
def test_any_interleaving_routes_each_callback_exactly_right(ops: list[tuple[str, int]]) -> None:
    core: Correlator[Receiver, Any] = Correlator()
    ids: dict[int, int] = {}  # pool index -> async id
    waiters: dict[int, Receiver] = {}
    lates: dict[int, Receiver] = {}
    # Reference model of one request: "live", "abandoned", "abandoned_late", "done", "forgotten".
    state: dict[int, str] = {}
    expected = Counter[str]()
    callbacks_sent: Counter[int] = Counter()

    for op, n in ops:
        if op == "register":
            if n in ids:
                continue
            waiters[n] = Receiver(f"w{n}")
            ids[n] = core.register(waiters[n])
            state[n] = "live"
        elif op == "foreign":
            assert deliver(core, n, "stray") is None
            expected["foreign"] += 1
        elif n not in ids:
            continue
        elif op == "callback":
            callbacks_sent[n] += 1
            got = deliver(core, ids[n], ("msg", n, callbacks_sent[n]))
            if state[n] == "live":
                assert got is waiters[n]
                expected["delivered"] += 1
                state[n] = "done"
            elif state[n] == "abandoned_late":
                assert got is lates[n]
                expected["late"] += 1
                state[n] = "done"
            else:
                assert got is None
                expected["late"] += 1
        elif op in ("cancel", "cancel_late"):
            late = Receiver(f"late{n}") if op == "cancel_late" else None
            withdrew = core.abandon(ids[n], late)
            assert withdrew == (state[n] == "live")
            if withdrew:
                if late is not None:
                    lates[n] = late
                    state[n] = "abandoned_late"
                else:
                    state[n] = "abandoned"
        elif op == "forget" and state[n] == "live":  # a failed send: no callback will come
            core.forget(ids[n])
            state[n] = "forgotten"

        stats = core.statistics()
        assert stats.delivered == expected["delivered"]
        assert stats.late == expected["late"]
        assert stats.foreign == expected["foreign"]
        live = sum(1 for s in state.values() if s == "live")
        assert core.waiting_count() == live
        assert stats.pending == live + sum(1 for s in state.values() if s == "abandoned_late")

    for n, waiter in waiters.items():
        # A waiter gets its own callback, once, and only if it was still live when it came.
        assert len(waiter.got) <= 1
        if waiter.got:
            assert waiter.got[0][1] == n
            assert waiter.got[0][2] == 1
    for n, late in lates.items():
        assert len(late.got) <= 1
        assert all(m[1] == n for m in late.got)

    # Drain: answer everything still outstanding; afterwards no state remains.
    for n, async_id in ids.items():
        if state[n] in ("live", "abandoned_late"):
            deliver(core, async_id, ("final", n, 0))
    assert core.statistics().pending == 0
    assert core.waiting_count() == 0


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["bind", "unbind", "route"]), st.integers(1, 6)), max_size=50
    )
)
def test_handle_routing_follows_the_bindings(ops: list[tuple[str, int]]) -> None:
    core: Correlator[Receiver, Receiver] = Correlator()
    bound: dict[int, Receiver] = {}
    generation = 0
    unrouted = 0
    for op, handle in ops:
        if op == "bind":
            if handle in bound:
                with pytest.raises(ValueError, match="already bound"):
                    core.bind(handle, Receiver("dup"))
            else:
                generation += 1
                bound[handle] = Receiver(f"s{handle}.{generation}")
                core.bind(handle, bound[handle])
        elif op == "unbind":
            assert core.unbind(handle) is bound.pop(handle, None)
        else:
            sink = core.route(handle)
            assert sink is bound.get(handle)
            unrouted += sink is None
    assert core.statistics().bound_handles == len(bound)
    assert core.statistics().unrouted == unrouted


# -- the same invariants as a state machine ---------------------------------------------------


class CorrelatorMachine(RuleBasedStateMachine):
    """Requests are registered, answered, cancelled and forgotten in any order."""

    live = Bundle("live")
    closed = Bundle("closed")

    @initialize()
    def setup(self) -> None:
        self.core: Correlator[Receiver, Any] = Correlator()
        self.model_live: dict[int, Receiver] = {}
        self.model_late: dict[int, Receiver] = {}
        self.calls: Counter[str] = Counter()
        self.cancelled: set[int] = set()

    @rule(target=live)
    def register(self) -> int:
        waiter = Receiver("w")
        async_id = self.core.register(waiter)
        self.model_live[async_id] = waiter
        return async_id

    @rule(async_id=consumes(live), target=closed)
    def answer(self, async_id: int) -> int:
        waiter = self.model_live.pop(async_id)
        assert deliver(self.core, async_id, async_id) is waiter
        assert waiter.got == [async_id]
        return async_id

    @rule(async_id=consumes(live), with_late=st.booleans(), target=closed)
    def cancel(self, async_id: int, with_late: bool) -> int:
        waiter = self.model_live.pop(async_id)
        late = Receiver("late") if with_late else None
        assert self.core.abandon(async_id, late)
        if late is not None:
            self.model_late[async_id] = late
        self.cancelled.add(async_id)
        assert waiter.got == []
        return async_id

    @rule(async_id=consumes(live))
    def forget(self, async_id: int) -> None:
        self.model_live.pop(async_id)
        self.core.forget(async_id)

    @rule(async_id=closed)
    def late_or_duplicate_callback(self, async_id: int) -> None:
        late = self.model_late.pop(async_id, None)
        assert deliver(self.core, async_id, "again") is late
        if late is not None:
            assert late.got == ["again"]

    @rule(stray=st.integers(0, (1 << 63) - 1))
    def foreign_callback(self, stray: int) -> None:
        assert deliver(self.core, stray, "stray") is None

    @invariant()
    def tables_match_the_model(self) -> None:
        if not hasattr(self, "core"):
            return
        assert self.core.waiting_count() == len(self.model_live)
        assert self.core.statistics().pending == len(self.model_live) + len(self.model_late)
        for async_id, waiter in self.model_live.items():
            assert self.core.is_waiting(async_id)
            assert waiter.got == []


CorrelatorMachine.TestCase.settings = settings(
    max_examples=examples(100), stateful_step_count=50, deadline=None
)
TestCorrelatorMachine = CorrelatorMachine.TestCase
