"""lkanyio's own checkpoints behave as anyio's, on every host, without asking sniffio each time."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
import sniffio
import trio

from lkanyio._checkpoints import Waiters, checkpoint, checkpoint_if_cancelled, park, unpark_all
from lkanyio._streams import EventSender, open_event_stream

pytestmark = pytest.mark.anyio


async def _others_ran_during(step: Any) -> list[str]:
    """Call ``step`` twice while a second task is ready to run; return what ran in what order.

    Twice, because trio runs each batch of ready tasks in a random order: after one schedule
    point the other task may still be waiting for its turn; after two it has had one.
    """
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await step()
        await step()
        ran.append("step")
    return ran


async def test_checkpoint_is_a_schedule_point_and_the_check_alone_is_not() -> None:
    assert await _others_ran_during(checkpoint) == ["other", "step"]
    assert await _others_ran_during(checkpoint_if_cancelled) == ["step", "other"]


async def test_a_cancelled_scope_is_raised_at_both_and_a_shield_holds() -> None:
    for step in (checkpoint, checkpoint_if_cancelled):
        with anyio.CancelScope() as scope:
            scope.cancel()
            with anyio.CancelScope(shield=True):
                await checkpoint_if_cancelled()  # shielded: nothing to raise
            await step()
            pytest.fail("not cancelled")  # pragma: no cover
        assert scope.cancelled_caught


async def test_a_deadline_that_passed_is_raised() -> None:
    with anyio.move_on_after(0) as scope:
        await checkpoint()
    assert scope.cancelled_caught


async def test_park_waits_until_every_waiter_is_woken_once() -> None:
    waiters: Waiters = []
    woken: list[int] = []

    async def waiter(index: int) -> None:
        await park(waiters)
        woken.append(index)

    async with anyio.create_task_group() as tg:
        for index in range(3):
            tg.start_soon(waiter, index)
        await anyio.wait_all_tasks_blocked()
        assert len(waiters) == 3
        assert woken == []
        unpark_all(waiters)
        assert waiters == []
        unpark_all(waiters)  # nobody left: wakes nothing twice
    assert sorted(woken) == [0, 1, 2]


async def test_a_cancelled_park_leaves_its_waiters() -> None:
    waiters: Waiters = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(park, waiters)
        await anyio.wait_all_tasks_blocked()
        assert len(waiters) == 1
        tg.cancel_scope.cancel()
    assert waiters == []
    unpark_all(waiters)


async def test_a_park_woken_then_cancelled_returns() -> None:
    # Woken first, cancelled before it ran again: it returns (its cancel scope raises at the
    # next checkpoint); the wake is not lost and not doubled.
    waiters: Waiters = []
    returned: list[bool] = []

    async def waiter(scope: anyio.CancelScope) -> None:
        with scope:
            await park(waiters)
            returned.append(True)
            await checkpoint()

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, scope)
        await anyio.wait_all_tasks_blocked()
        unpark_all(waiters)
        scope.cancel()
    assert returned == [True]
    assert scope.cancelled_caught
    assert waiters == []


async def test_sniffio_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    await checkpoint()  # the backend is loaded once

    def refuse() -> str:
        raise AssertionError("sniffio asked")

    waiters: Waiters = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(park, waiters)
        monkeypatch.setattr(sniffio, "current_async_library", refuse)
        await checkpoint_if_cancelled()
        await checkpoint()
        await checkpoint()  # twice: the parker has run (and parked) on trio too
        assert len(waiters) == 1
        unpark_all(waiters)
        await checkpoint()
        await checkpoint()
        monkeypatch.undo()  # anyio's task group asks
    assert waiters == []


async def test_a_receive_cancelled_at_its_schedule_point_takes_nothing() -> None:
    # The canceller becomes ready with the receive's schedule point; trio may run either
    # first, so this is tried until the cancellation lands there (each try: 1/2 on trio).
    cancelled = 0
    for _ in range(40):
        sender: EventSender[int]
        sender, stream = open_event_stream(max_buffered=4, overflow="fail")
        sender.send_nowait(1)
        async with stream, anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def cancel(scope: anyio.CancelScope = scope) -> None:
                scope.cancel()

            tg.start_soon(cancel)
            got = None
            with scope:
                got = await stream.receive()
            if scope.cancelled_caught:  # cancelled at the schedule point: nothing taken
                cancelled += 1
                assert got is None
                assert stream.statistics().buffered == 1
                assert stream.receive_nowait() == 1
            else:  # the receive ran first: it has the item
                assert got == 1
                assert stream.statistics().buffered == 0
    assert cancelled > 0


def _plain_host_run(library: str) -> list[str]:
    async def main() -> list[str]:
        ran = await _others_ran_during(checkpoint)
        waiters: Waiters = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(park, waiters)
            await anyio.wait_all_tasks_blocked()
            assert len(waiters) == 1
            unpark_all(waiters)
        assert waiters == []
        with anyio.CancelScope() as scope:
            scope.cancel()
            await checkpoint_if_cancelled()
        assert scope.cancelled_caught
        return ran

    if library == "asyncio":
        return asyncio.run(main())
    if library == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(main())  # type: ignore[no-any-return]
    return trio.run(main)


@pytest.mark.parametrize("library", ["asyncio", "uvloop", "trio"])
def test_plain_hosts(library: str) -> None:
    assert _plain_host_run(library) == ["other", "step"]
