"""Requests started together are sent together, and each caller still gets its own outcome.

While other tasks are ready to run, a request is committed and sent with the rest of its batch
once they have run (the native core then wakes one of its threads per batch, not per request).
These tests pin what a caller sees of that: every request of a batch is answered; a request
the native core refuses fails its own caller with :class:`~lkanyio.NativeError`, not its
neighbours; a committed request whose caller is cancelled is still sent and its callback goes
to the late handler; nothing stays pending.  The requests are real (``get_stats`` on an
unpublished local track, which the native core answers with an error in microseconds; one on a
handle that does not exist, which it refuses outright).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import pytest

import lkanyio
from _util import assert_no_leaks
from lkanyio._native._bridge import get_bridge
from lkanyio._native._proto import ffi_pb2

pytestmark = pytest.mark.anyio

BATCH = 40
NO_SUCH_HANDLE = (1 << 62) + 12345  # never handed out: the native core counts up from 1


@asynccontextmanager
async def _one_request_pending() -> AsyncIterator[None]:
    """Keep one request in flight meanwhile, as an application with a room often has.

    Otherwise trio's idle check (it cannot see the rest of a batch: trio empties its run queue
    when a batch starts) lets each request of a batch go at once as the lone one, its callback
    answered by the spin before the next task runs, and no batch forms.  A ``connect`` to a
    socket that accepts and never answers stays pending until the socket closes.
    """
    bridge = get_bridge()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        req = ffi_pb2.FfiRequest()
        req.connect.url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
        req.connect.token = "never-checked"
        req.connect.options.join_retries = 0
        async with anyio.create_task_group() as tg:
            tg.start_soon(bridge.request_async, req)
            with anyio.fail_after(5):
                while not lkanyio.statistics().pending_requests:
                    await anyio.lowlevel.checkpoint()
            yield
            sock.close()  # the connect fails now, and the task group ends with it


def _get_stats(handle: int) -> ffi_pb2.FfiRequest:
    req = ffi_pb2.FfiRequest()
    req.get_stats.track_handle = handle
    return req


async def test_a_batch_is_answered_and_a_refused_request_fails_only_its_caller() -> None:
    bridge = get_bridge()
    outcomes: dict[int, str] = {}
    committed: list[int] = []
    async with (
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("t", source) as track,
    ):
        handle = track._handle.id

        async def one(i: int) -> None:
            req = _get_stats(NO_SUCH_HANDLE if i == BATCH // 2 else handle)
            try:
                callback = await bridge.request_async(req)
            except lkanyio.NativeError as exc:
                outcomes[i] = "refused" if "rejected" in str(exc) else f"error: {exc}"
                return
            outcomes[i] = "answered" if callback.DESCRIPTOR.name == "GetStatsCallback" else "?"

        flush = bridge._flush

        def counting_flush() -> None:
            committed.append(len(bridge._outbox))
            flush()

        bridge._flush = counting_flush  # type: ignore[method-assign]
        try:
            async with _one_request_pending(), anyio.create_task_group() as tg:
                for i in range(BATCH):
                    tg.start_soon(one, i)
        finally:
            del bridge._flush
    assert outcomes[BATCH // 2] == "refused", outcomes
    assert {outcomes[i] for i in range(BATCH) if i != BATCH // 2} == {"answered"}, outcomes
    assert max(committed, default=0) > 1, committed  # the batch was sent as one
    assert bridge._outbox == []
    assert lkanyio.statistics().pending_requests == 0
    assert_no_leaks()


async def test_a_committed_request_of_a_cancelled_caller_reaches_its_late_handler() -> None:
    bridge = get_bridge()
    late: list[str] = []
    cancelled: list[int] = []
    async with (
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("t", source) as track,
    ):
        handle = track._handle.id

        async def one(i: int, scope: anyio.CancelScope) -> None:
            with scope:
                await bridge.request_async(
                    _get_stats(handle), on_late=lambda m: late.append(m.DESCRIPTOR.name)
                )
            if scope.cancelled_caught:
                cancelled.append(i)

        scopes = [anyio.CancelScope() for _ in range(BATCH)]
        send = bridge._send
        sent = [0]

        def send_then_cancel_all(request: ffi_pb2.FfiRequest, which: str) -> None:
            send(request, which)  # committed (the batch goes once every task has run)
            sent[0] += which == "get_stats"  # not the connect kept pending meanwhile
            if sent[0] == BATCH:  # every caller is cancelled before its batch is sent
                for scope in scopes:
                    scope.cancel()

        bridge._send = send_then_cancel_all  # type: ignore[method-assign]
        try:
            async with _one_request_pending(), anyio.create_task_group() as tg:
                for i in range(BATCH):
                    tg.start_soon(one, i, scopes[i])
        finally:
            del bridge._send
        with anyio.fail_after(5):  # each callback still comes, to the late handler
            while lkanyio.statistics().late_handlers:
                await anyio.sleep(0.01)
    assert sorted(cancelled) == list(range(BATCH))
    assert late == ["GetStatsCallback"] * BATCH  # each sent all the same, answered late
    assert lkanyio.statistics().pending_requests == 0
    assert_no_leaks()
