"""Helpers shared by the integration tests (not fixtures: those live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio

import lkanyio

E = TypeVar("E")

EVENT_WAIT = 20.0
"""Upper bound for an event that must arrive (a hang guard, never a timing assertion)."""


async def next_event(
    events: lkanyio.EventStream[Any],
    kind: type[E],
    predicate: Callable[[E], bool] | None = None,
) -> E:
    """Receive from ``events`` until an event of ``kind`` (matching ``predicate``) arrives."""
    with anyio.fail_after(EVENT_WAIT):
        async for event in events:
            if isinstance(event, kind) and (predicate is None or predicate(event)):
                return event
    raise AssertionError(f"the event stream ended before a {kind.__name__} arrived")


async def collect_for(events: lkanyio.EventStream[Any], seconds: float) -> list[Any]:
    """Everything ``events`` delivers within ``seconds`` (for asserting absence)."""
    seen: list[Any] = []
    with anyio.move_on_after(seconds):
        async for event in events:
            seen.append(event)
    return seen


def assert_no_leaks() -> None:
    """Nothing lkanyio owns is left once every ``async with`` block has ended."""
    stats = lkanyio.statistics()
    assert stats.pending_requests == 0, stats
    assert stats.bound_handles == 0, stats
    assert stats.live_handles == 0, stats
