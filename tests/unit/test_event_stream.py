"""What users get from lkanyio is receive-only: the producer end of a stream stays private."""

from __future__ import annotations

import inspect

import anyio
import pytest

import lkanyio
from lkanyio._streams import EventSender, open_event_stream

pytestmark = pytest.mark.anyio

PRODUCER = {"send", "send_nowait", "make_room", "end", "fail", "put", "put_nowait", "feed"}

# Every public stream-like class a user receives frames, events or chunks from.
RECEIVERS = [
    lkanyio.EventStream,
    lkanyio.AudioStream,
    lkanyio.VideoStream,
    lkanyio.DataTrackStream,
    lkanyio.TextStreamReader,
    lkanyio.ByteStreamReader,
]


def _public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


@pytest.mark.parametrize("cls", RECEIVERS, ids=lambda c: c.__name__)
def test_no_public_producer_method(cls: type) -> None:
    assert _public_methods(cls) & PRODUCER == set()


def test_the_sender_is_not_exported() -> None:
    assert not any(
        getattr(lkanyio, name) is EventSender for name in dir(lkanyio) if not name.startswith("_")
    )
    assert "EventSender" not in dir(lkanyio)


async def test_sender_feeds_and_ends_its_receive_only_stream() -> None:
    sender: EventSender[int]
    sender, stream = open_event_stream(max_buffered=2, overflow="fail")
    assert sender.stream is stream
    assert sender.send_nowait(1)
    sender.end()
    assert not sender.send_nowait(2)  # ended: nothing more is queued
    async with stream:
        assert [item async for item in stream] == [1]
    assert sender.closed


async def test_a_full_fail_stream_ends_with_overflow_for_its_consumer() -> None:
    sender: EventSender[int]
    sender, stream = open_event_stream(max_buffered=1, overflow="fail", what="test events")
    assert sender.send_nowait(1)
    assert not sender.make_room()
    async with stream:
        assert stream.receive_nowait() == 1
        with pytest.raises(lkanyio.EventStreamOverflowError, match="test events overflowed"):
            stream.receive_nowait()


async def test_closing_the_stream_is_seen_by_the_sender() -> None:
    closed: list[bool] = []
    sender: EventSender[str]
    sender, stream = open_event_stream(
        max_buffered=4, overflow="drop_oldest", on_close=lambda: closed.append(True)
    )
    assert sender.send_nowait("a")
    await stream.aclose()
    assert closed == [True]
    assert sender.closed
    assert not sender.send_nowait("b")
    with pytest.raises(anyio.ClosedResourceError):
        stream.receive_nowait()
