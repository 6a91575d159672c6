"""What one request in flight keeps alive: a few GC-tracked objects, however many are in flight.

Measured (issue 18): lkanyio's own throughput on asyncio fell from 19.8k to 15.2k requests/s
between 10 and 5,000 requests in flight.  The request path itself is flat (the loop thread's CPU
per request with the cyclic GC disabled: 45.6, 48.7, 46.5, 44.6 µs at N = 10, 100, 1,000,
5,000); what grows is the cyclic GC, which with thousands of requests in flight promotes and
traverses every object they keep alive (0 µs per request at N = 10, ~20 µs at N = 5,000, on
trio as much as on asyncio).  Of the ~28 tracked objects an in-flight request keeps on asyncio
(~25 on trio) the caller's task owns most (anyio's task handle, cancel scope, events, contexts
and coroutines); lkanyio's request path holds 6 (asyncio: the FfiRequest, the _Waiter, the
loop's Future and its iterator, two coroutines) or 5 (trio: the waiter's abort method instead
of the Future).  This test keeps that small and independent of the number in flight: a task
parked in a request holds at most two objects more than the same task parked on an
``anyio.Event`` (measured: one more on asyncio, two fewer on trio), so there is no
``anyio.Event`` per request and nothing in the correlator per request but ints.

The requests are real: ``connect`` to a listening socket that never answers stays pending for
as long as the socket is open (measured: 13 s until the native core gives up), so the count
needs no timing; closing the socket fails them within a second.  Counting is by snapshot of
``gc.get_objects()``, not by wall-clock time.
"""

from __future__ import annotations

import gc
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio
import anyio.lowlevel
import pytest

import lkanyio
from _util import EVENT_WAIT
from lkanyio._native._bridge import get_bridge
from lkanyio._native._proto import ffi_pb2

pytestmark = pytest.mark.anyio

# Objects a task parked in a request holds beyond the same task parked on an anyio.Event.
# Measured on CPython 3.11: asyncio +1.0 (+ FfiRequest + _Waiter, one coroutine fewer), trio
# -2.0 (+ FfiRequest + _Waiter + the waiter's abort method, five of anyio's Event.wait fewer).
# One more is allowed for interpreter differences.
LIMIT = 2
# The only kinds of object there is one more of per request; an anyio.Event per request (what
# _Waiter replaced) would show up here as Event, deque, Future … on either backend.
PER_REQUEST = {"FfiRequest", "_Waiter", "method"}


@contextmanager
def _silent_listener() -> Iterator[tuple[str, socket.socket]]:
    """A ws:// URL whose socket accepts connections (in the backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}", sock
    finally:
        sock.close()


def _tracked() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__qualname__ for o in gc.get_objects())


@contextmanager
def _counting_only_new_objects() -> Iterator[None]:
    """Freeze every object alive now, so that ``_tracked`` sees only the ones made after.

    ``gc.get_objects()`` and ``gc.collect()`` skip the frozen (permanent) generation, so both
    snapshots count the same set and their difference is unchanged; but each costs as much as
    the objects it visits, and late in a unit run the process holds a large heap (measured on
    Python 3.10: this module took 27 CPU-seconds in the matrix run, most of it in the six
    snapshots' collections).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _footprint(n: int) -> tuple[float, Counter[str]]:
    """Tracked objects per request: ``n`` tasks parked in ``request_async`` less on an Event."""
    bridge = get_bridge()
    go = anyio.Event()
    answered = anyio.Event()
    parked, done = [0], [0]

    async def one() -> None:
        parked[0] += 1
        await go.wait()  # parks at once: no checkpoint between the count and the wait
        req = ffi_pb2.FfiRequest()
        req.connect.url, req.connect.token = url, "never-checked"
        req.connect.options.auto_subscribe = False
        req.connect.options.join_retries = 0  # one attempt: it fails once the socket closes
        callback = await bridge.request_async(req)
        assert callback.WhichOneof("message") == "error", "a silent server answered"
        done[0] += 1
        if done[0] == n:
            answered.set()

    # Every request is answered before this returns (the socket is closed and each fails in
    # well under a second): cancelling them instead left the native core retrying ~1,000
    # abandoned connects, and a later test's requests waited behind them for 80 s (measured).
    with _silent_listener() as (url, sock), _counting_only_new_objects():
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
            with anyio.fail_after(EVENT_WAIT):
                while parked[0] < n:
                    await anyio.lowlevel.checkpoint()
            before_pending = lkanyio.statistics().pending_requests
            before = _tracked()
            go.set()
            with anyio.fail_after(EVENT_WAIT):
                while lkanyio.statistics().pending_requests < before_pending + n:
                    await anyio.lowlevel.checkpoint()
            after = _tracked()
            sock.close()  # every connect now fails: the task group ends when all have answered
            with anyio.fail_after(EVENT_WAIT):  # its own bound: the counting is over
                await answered.wait()
    grown = Counter(after)
    grown.subtract(before)  # kinds that shrank stay in, negative
    return _per_request(grown, n), grown


def _per_request(grown: Counter[str], n: int) -> float:
    """Tracked objects per request, over the kinds whose count changed with the requests.

    Only kinds that grew or shrank by at least half an object per request count: in a test
    process other work (a native log line, a previous test's garbage) moves a few hundred
    objects of other kinds between the two snapshots (measured: +767 and -795 objects in two
    snapshots of a loaded run), which spread over 20 requests reads as a footprint of +38.
    """
    return sum(c for c in grown.values() if abs(c) >= n / 2) / n


# Few and many in flight: 20 and 100.  Five times as many still tells a per-request cost from
# noise (a kind counts only if it moved by n / 2: an anyio.Event per request moves five kinds by
# n each); with 200 the measurement was ~440 real connects per backend, and for each connect the
# native core runs `lsb_release` in a child (os_info; 5.5 CPU-seconds of this test's 10.7 in a
# loaded run), on every interpreter.  Measured alone: 11.0 -> 6.7 CPU-seconds for the module.
FEW, MANY = 20, 100


async def test_a_request_in_flight_holds_little_more_than_a_parked_task_however_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most LIMIT objects more than a parked task, and as many at FEW in flight as at MANY.

    One test for both (they were two, each with its own connects: the measurement, real native
    connects, was the unit suite's largest cost on every interpreter).
    """
    # Each connect makes the native core run Debian's `lsb_release` (a Python script) to name
    # the OS: 121 per backend here (counted with a logging one first on PATH).  Beside the
    # parallel phase the last hundred took over EVENT_WAIT to be answered (a fresh-clone run,
    # Python 3.13, trio: TimeoutError at the final wait).  Without PATH it is not found at once.
    monkeypatch.setenv("PATH", "")
    await _footprint(1)  # warm up: the driver, lazily built protobuf classes
    few, _ = await _footprint(FEW)
    many, grown = await _footprint(MANY)
    assert many <= LIMIT, grown.most_common(12)
    assert {kind for kind, count in grown.items() if count >= MANY / 2} <= PER_REQUEST, grown
    assert abs(many - few) < 0.5, (few, many, grown.most_common(12))
    assert lkanyio.statistics().pending_requests == 0


async def test_requests_leave_nothing_for_the_cyclic_collector() -> None:
    """A finished request, answered, failed or cancelled, is freed by reference counting alone.

    Issue 32 asks for waiters that make no reference cycles: garbage in cycles is what the
    cyclic collector has to find, and it runs more often the more of it there is.  With the
    collector off, 200 requests of each kind must leave nothing for it (measured: 0 on
    both backends).  Each kind takes a different exit from ``request_async``: a capture is
    answered (its ``on_deliver`` adopts the answer), ``get_stats`` of an unpublished track is
    answered with an error raised as ``NativeError``, and a request made in a cancelled scope
    raises its cancellation before anything is sent.  A request cancelled while parked is
    measured against a task cancelled the same way in ``anyio.sleep_forever``: on asyncio,
    anyio's cancellation of a task group leaves its own cycles (measured: 61 objects per
    cancelled group with the sleeping task, 57 with the request; none on trio).
    """
    frame = lkanyio.AudioFrame(
        bytes(960), sample_rate=48_000, num_channels=1, samples_per_channel=480
    )
    async with (
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("t", source) as track,
    ):

        async def answered() -> None:
            await source.capture_frame(frame)

        async def failed() -> None:
            with pytest.raises(lkanyio.NativeError):
                await track.get_stats()

        async def cancelled_before_sending() -> None:
            with anyio.move_on_after(0):
                await track.get_stats()

        def cancelled_while_parked(
            body: Callable[[], Awaitable[None]],
        ) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                async with anyio.create_task_group() as tg:
                    # Another task ready to run keeps a request from spinning: it parks, and
                    # is cancelled there (or, answered first, gives its result back).
                    tg.start_soon(anyio.lowlevel.checkpoint)
                    tg.start_soon(body)
                    await anyio.lowlevel.checkpoint()
                    tg.cancel_scope.cancel()

            return call

        async def cycles(call: Callable[[], Awaitable[None]]) -> int:
            for _ in range(20):  # first calls create what stays (caches, interned strings)
                await call()
            gc.collect()
            gc.disable()
            try:
                for _ in range(200):
                    await call()
                return gc.collect()
            finally:
                gc.enable()

        for call in (answered, failed, cancelled_before_sending):
            left = await cycles(call)
            assert left == 0, f"{call.__name__}: {left} objects in reference cycles"
        parked = await cycles(cancelled_while_parked(failed))
        control = await cycles(cancelled_while_parked(anyio.sleep_forever))
        assert parked <= control, (parked, control)
