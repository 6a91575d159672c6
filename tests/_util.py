"""Helpers shared by the tests (not fixtures: those live in the conftest.py files)."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

import lkanyio

E = TypeVar("E")

TokenFactory = Callable[..., str]

EVENT_WAIT = 20.0
"""Upper bound for an event that must arrive (a hang guard, never a timing assertion)."""


def examples(n: int) -> int:
    """How many examples a property test runs: ``n``, or a quarter (at least 10) in the matrix.

    scripts/test-pythons sets ``LKANYIO_TEST_MATRIX=1`` for the unit tests on Python 3.10 and
    3.13, which are there for what differs between interpreters (syntax, typing, asyncio and trio
    internals, object counts); the logic the properties explore is the same code on every
    version, and the default Python's run explores it in full.  In CI the examples are
    derandomized, so the matrix replays the first of them (measured: the session state machine
    alone took 11.4 CPU-seconds per version).
    """
    return max(10, n // 4) if os.environ.get("LKANYIO_TEST_MATRIX") == "1" else n


async def next_event(
    events: lkanyio.EventStream[Any],
    kind: type[E],
    predicate: Callable[[E], bool] | None = None,
) -> E:
    """Receive from ``events`` until an event of ``kind`` (matching ``predicate``) arrives.

    On a timeout or an ended stream the error lists what arrived instead (a flaky wait for
    ``TrackSubscribed`` once failed with nothing else to go on).
    """
    skipped: list[str] = []
    try:
        with anyio.fail_after(EVENT_WAIT):
            async for event in events:
                if isinstance(event, kind) and (predicate is None or predicate(event)):
                    return event
                skipped.append(type(event).__name__)
    except TimeoutError as exc:
        raise AssertionError(
            f"no {kind.__name__} within {EVENT_WAIT} s; arrived instead: {skipped}"
        ) from exc
    raise AssertionError(f"the event stream ended before a {kind.__name__} arrived: {skipped}")


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
    assert stats.live_subscriptions == 0, stats


def collect_and_assert_no_leaks() -> None:
    """Collect garbage, check nothing lkanyio owns is left, then freeze what is still alive.

    A full collection visits every object the process holds, and a test process late in a run
    holds many (pytest's, hypothesis's, every imported module's): measured, the collections in
    these checks and the cyclic collector behind them took about a third of the test workers'
    Python time.  Once the check has passed nothing alive holds a native handle, so what is left
    goes to the permanent generation (:func:`gc.freeze`) and the next collection visits only
    what came after.  What a later test makes is never frozen before its own check; a frozen
    object freed by reference counting is freed as before (only a cycle among frozen objects
    stays, as memory).
    """
    gc.collect()
    assert_no_leaks()
    gc.freeze()


async def announce(room: lkanyio.Room) -> None:
    """Have the server tell the others about ``room``'s participant now, not on its batch tick.

    livekit-server (1.13.5, ``pkg/rtc/room.go``) sends the join of a participant that publishes
    nothing to the others only on a fixed 3 s tick (measured: seen 2.4-2.8 s after the join),
    but a metadata or attributes change goes out at once and carries the queued join with it.
    Deleting an attribute nobody has is such a change that changes nothing (no attributes event
    on either side; the participant gets a refreshed token).  Tests use it so that a join costs
    a round trip, not most of the tick; what a test asserts about joins is the same either way.
    """
    await room.local_participant.set_attributes({"lkanyio.tests.announce": ""})


@asynccontextmanager
async def joined(
    server_info: Any,
    token_factory: TokenFactory,
    room_name: str,
    *identities: str,
    options: lkanyio.RoomOptions | None = None,
) -> AsyncIterator[list[lkanyio.Room]]:
    """Join every identity (in order, each with ``options``) and wait until each sees all the
    others."""
    async with AsyncExitStack() as stack:
        rooms: list[lkanyio.Room] = []
        for identity in identities:
            token = token_factory(identity, room_name)
            room = await stack.enter_async_context(
                lkanyio.connect(server_info.url, token, options=options)
            )
            await announce(room)
            rooms.append(room)
        with anyio.fail_after(20):
            for room in rooms:
                while len(room.remote_participants) < len(rooms) - 1:
                    await anyio.sleep(0.02)
        yield rooms


def rpc_limits(handler_deadline: float) -> dict[str, float]:
    """``perform_rpc`` limits that give the handler ``handler_deadline`` seconds (at least 1).

    The handler's deadline is the caller's less the round-trip allowance, and the allowance is
    how long the acknowledgement may take: under load that is long (CI printed "RpcError 1501:
    Connection timeout" with 0.5 s, and beside 14 busy processes the native core logged "Ack
    received for unexpected RPC request" after the caller had given up).  Tests that look at
    the handler's deadline take an allowance of ``EVENT_WAIT``; the call still ends at the
    handler's deadline, whose answer comes back at once.
    """
    return {
        "response_timeout": handler_deadline + EVENT_WAIT,
        "max_round_trip_latency": EVENT_WAIT,
    }


def seeded_frame(
    buffer_type: lkanyio.VideoBufferType, width: int, height: int, seed: int = 1
) -> lkanyio.VideoFrame:
    """A frame of pseudo-random bytes (the same for the same arguments)."""
    from random import Random

    from lkanyio._media._video import planes

    size = sum(s for _stride, s in planes(buffer_type, width, height))
    return lkanyio.VideoFrame(width, height, buffer_type, Random(seed).randbytes(size))


def without_silence(got: bytes, *, block_samples: int) -> bytes:
    """16-bit audio ``got`` less the all-zero 10 ms blocks a source played with its queue empty.

    A queued ``AudioSource`` plays 10 ms (``block_samples``, interleaved) every 10 ms, and
    silence when less than that is queued (the native core's ``AudioTrackSource``): captures of
    10 ms each come back contiguous only if each reaches the native core before the previous one
    has played, which beside other work is not so (measured: with a capture late by 30 ms a
    silent block lay inside the pattern on every run).  What was captured comes back whole and
    in order; where silence goes between the blocks depends on timing.  A stream of a local
    track hands on the source's blocks from the first, so each frame it yields is a run of whole
    blocks, and a pattern of whole captured blocks is found in what this leaves of them.
    """
    block = block_samples * 2
    zero = bytes(block)
    return b"".join(
        got[start : start + block]
        for start in range(0, len(got), block)
        if got[start : start + block] != zero
    )


async def audio_until(
    stream: lkanyio.AudioStream,
    wanted: bytes,
    *,
    limit: int,
    after: bytes = b"",
    block_samples: int = 0,
) -> bytes:
    """Receive 16-bit audio until ``wanted`` is among it, or ``limit`` bytes have come.

    ``after`` is what was already received: ``wanted`` may begin in it.  With
    ``block_samples``, each frame is taken without its silent blocks (:func:`without_silence`)
    as it comes, and so is what this returns: ``wanted`` may have silence between its pieces.
    """
    heard = bytearray()
    received = 0

    def take(data: bytes) -> None:
        nonlocal received
        received += len(data)
        heard.extend(without_silence(data, block_samples=block_samples) if block_samples else data)

    take(after)
    with anyio.fail_after(EVENT_WAIT):
        async for event in stream:
            assert isinstance(event, lkanyio.AudioFrameEvent)
            take(event.frame.data.cast("B"))
            if heard.find(wanted) >= 0 or received > limit:
                break
    return bytes(heard)


def crop_centred(frame: lkanyio.VideoFrame, width: int, height: int) -> lkanyio.VideoFrame:
    """The centre ``width`` x ``height`` of an I420, I422 or I444 ``frame``, as WebRTC crops a
    source to multiples of 4 pixels (measured: the offsets are half the cut, rounded down to
    whole chroma samples, e.g. 7x7 I444 keeps rows and columns 1-4, I420 keeps 0-3)."""
    from lkanyio._media._video import planes

    sx, sy = {"I420": (2, 2), "I422": (2, 1), "I444": (1, 1)}[frame.type.name]
    x0 = (frame.width - width) // 2 // sx * sx
    y0 = (frame.height - height) // 2 // sy * sy
    out = bytearray()
    offset = 0
    full = planes(frame.type, frame.width, frame.height)
    kept = planes(frame.type, width, height)
    for index, ((stride, size), (keep, kept_size)) in enumerate(zip(full, kept, strict=True)):
        px, py = (1, 1) if index == 0 else (sx, sy)
        for row in range(kept_size // keep):
            start = offset + (y0 // py + row) * stride + x0 // px
            out += frame.data[start : start + keep]
        offset += size
    return lkanyio.VideoFrame(width, height, frame.type, out)


async def receive_json(lines: BufferedByteReceiveStream) -> dict[str, Any]:
    """The next JSON line a child peer printed (other lines, should a library print any, are
    skipped), within ``EVENT_WAIT``.

    Raises:
        AssertionError: the child reported ``{"error": ...}``, or its output ended (it died:
            its stderr is shown above).
    """
    with anyio.fail_after(EVENT_WAIT):
        while True:
            try:
                line = await lines.receive_until(b"\n", 1 << 24)
            except (anyio.IncompleteRead, anyio.EndOfStream) as exc:
                raise AssertionError("the child's output ended: did it die?") from exc
            if line.startswith(b"{"):
                message: dict[str, Any] = json.loads(line)
                assert "error" not in message, message
                return message


@asynccontextmanager
async def child_process(*argv: str) -> AsyncIterator[anyio.abc.Process]:
    """Run ``argv`` with pipes for stdin and stdout (stderr shown), yield the process.

    Leaving the block normally closes its stdin (the peer scripts leave the room and exit on
    that) and requires exit status 0 within ``EVENT_WAIT``; in every case a process still
    running is killed and reaped.
    """
    process = await anyio.open_process(list(argv), stderr=None)
    try:
        yield process
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(EVENT_WAIT):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5, shield=True):
                await process.wait()
        await process.aclose()
