"""Data streams between two participants on a real server (both backends)."""

from __future__ import annotations

import gc
import hashlib
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, joined

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]



async def test_send_text_topic_attributes_and_read_all(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.text_streams("chat") as readers:
            text = "héllo ✓ " * 5000  # ~50 KB: several chunks
            info = await alice.local_participant.send_text(
                text, topic="chat", attributes={"lang": "fr"}
            )
            with anyio.fail_after(EVENT_WAIT):
                reader = await readers.receive()
            async with reader:
                assert reader.sender_identity == "alice"
                assert reader.info.stream_id == info.stream_id
                assert reader.info.topic == "chat"
                assert dict(reader.info.attributes) == {"lang": "fr"}
                with anyio.fail_after(EVENT_WAIT):
                    assert await reader.read_all() == text
                with pytest.raises(lkanyio.LiveKitError, match="already been read"):
                    await reader.read_all()


async def test_stream_text_chunks_arrive_in_order(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.text_streams() as readers:
            async with alice.local_participant.stream_text(topic="live") as writer:
                for i in range(50):
                    await writer.write(f"<{i}>")
            with anyio.fail_after(EVENT_WAIT):
                reader = await readers.receive()
                async with reader:
                    received = "".join([chunk async for chunk in reader])
            assert received == "".join(f"<{i}>" for i in range(50))
            assert reader.info.topic == "live"


async def test_a_5_mb_file_arrives_byte_identical(
    server_info: Any, token_factory: TokenFactory, room_name: str, tmp_path: Path
) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.byte_streams("files") as readers:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: alice.local_participant.send_file(
                        path, topic="files", mime_type="application/octet-stream"
                    )
                )
                with anyio.fail_after(120):
                    reader = await readers.receive()
                    async with reader:
                        assert reader.info.name == "blob.bin"
                        digest = hashlib.sha256()
                        size = 0
                        async for chunk in reader:
                            digest.update(chunk)
                            size += len(chunk)
            assert size == len(payload)
            assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()


async def test_reader_closed_early_and_unclaimed_streams_free_their_handles(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        before = lkanyio.statistics().live_handles
        async with bob.byte_streams("big") as readers:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: alice.local_participant.send_bytes(b"x" * 500_000, topic="big")
                )
                with anyio.fail_after(EVENT_WAIT):
                    reader = await readers.receive()
                    assert lkanyio.statistics().live_handles == before + 1
                    async for _chunk in reader:
                        break  # stop after the first chunk
                    await reader.aclose()
                    assert lkanyio.statistics().live_handles == before
        # A stream on a topic nobody listens to is released and counted.
        await alice.local_participant.send_text("nobody", topic="unheard")
        with anyio.fail_after(EVENT_WAIT):
            while bob.unclaimed_streams == 0:
                await anyio.sleep(0.02)
        assert lkanyio.statistics().live_handles == before
        with pytest.raises(TypeError):
            await alice.local_participant.send_text(b"bytes")  # type: ignore[arg-type]


async def test_readers_left_in_a_closed_subscription_are_freed_and_counted(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        before = lkanyio.statistics().live_handles
        async with bob.text_streams("queued") as readers:
            for n in range(3):
                await alice.local_participant.send_text(f"message {n}", topic="queued")
            with anyio.fail_after(EVENT_WAIT):
                while readers.statistics().buffered < 3:
                    await anyio.sleep(0.02)
            assert lkanyio.statistics().live_handles == before + 3
            assert bob.unclaimed_streams == 0
        # Closing the subscription frees the three readers nobody received, and counts them.
        assert bob.unclaimed_streams == 3
        assert lkanyio.statistics().live_handles == before


async def test_an_overflowed_subscription_does_not_swallow_later_streams(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        lp = alice.local_participant
        stuck = bob.text_streams()  # its consumer never reads: it overflows
        try:
            capacity = stuck.statistics().max_buffered
            for n in range(capacity + 1):
                await lp.send_text(f"flood {n}", topic="flood")
            with anyio.fail_after(EVENT_WAIT):
                while not stuck.statistics().overflowed:
                    await anyio.sleep(0.02)
            assert bob.unclaimed_streams == 1  # the one that did not fit

            # The overflowed subscription is dead: a live one gets every later stream.
            async with bob.text_streams() as live:
                await lp.send_text("after the flood", topic="flood")
                with anyio.fail_after(EVENT_WAIT):
                    reader = await live.receive()
                    async with reader:
                        assert await reader.read_all() == "after the flood"
            assert bob.unclaimed_streams == 1
        finally:
            stuck.close()
        # The readers still buffered in the overflowed subscription are freed when it is closed.
        assert bob.unclaimed_streams == 1 + capacity


async def test_stream_bytes_chunks_arrive_in_order_with_name_and_mime_type(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    chunks = [bytes([i]) * (1000 + i) for i in range(40)]
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.byte_streams("raw") as readers:
            writer = alice.local_participant.stream_bytes(
                topic="raw",
                name="frames.bin",
                mime_type="application/x-test",
                attributes={"k": "v"},
            )
            with pytest.raises(lkanyio.LiveKitError, match="async with"):
                await writer.write(b"too early")
            async with writer:
                assert writer.info is not None
                with pytest.raises(TypeError, match="bytes"):
                    await writer.write("text")  # type: ignore[arg-type]
                for chunk in chunks:
                    await writer.write(chunk)
            with pytest.raises(lkanyio.LiveKitError, match="once"):
                async with writer:
                    pass
            with anyio.fail_after(EVENT_WAIT):
                reader = await readers.receive()
                async with reader:
                    received = b"".join([chunk async for chunk in reader])
            assert received == b"".join(chunks)
            assert reader.info.stream_id == writer.info.stream_id
            assert (reader.info.name, reader.info.mime_type) == ("frames.bin", "application/x-test")
            assert dict(reader.info.attributes) == {"k": "v"}


async def test_a_sender_over_the_byte_limit_fails_the_reader_and_the_room_lives_on(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        before = lkanyio.statistics()
        async with bob.byte_streams("big", max_buffered_bytes=64 * 1024) as readers:
            await alice.local_participant.send_bytes(b"x" * 500_000, topic="big")
            with anyio.fail_after(EVENT_WAIT):
                reader = await readers.receive()
            # Nobody read: the stream was buffered up to the limit, then failed and released.
            with anyio.fail_after(EVENT_WAIT):
                while lkanyio.statistics().bound_handles > before.bound_handles:
                    await anyio.sleep(0.02)
            assert lkanyio.statistics().live_handles == before.live_handles
            received = 0
            with pytest.raises(lkanyio.DataStreamOverflowError, match="65536 bytes") as caught:
                async for chunk in reader:
                    received += len(chunk)
            assert isinstance(caught.value, lkanyio.DataStreamError)
            assert received <= 64 * 1024
            reader.close()
            # The room and the subscription live on: the next stream, within the limit, arrives.
            await alice.local_participant.send_bytes(b"y" * 30_000, topic="big")
            with anyio.fail_after(EVENT_WAIT):
                async with await readers.receive() as small:
                    assert await small.read_all() == b"y" * 30_000
        # read_all holds the whole stream, so the limit bounds its total.
        async with bob.text_streams("t", max_buffered_bytes=10_000) as texts:
            await alice.local_participant.send_text("é" * 6_000, topic="t")  # 12,000 bytes
            with anyio.fail_after(EVENT_WAIT):
                async with await texts.receive() as text_reader:
                    with pytest.raises(lkanyio.DataStreamOverflowError):
                        await text_reader.read_all()
        with pytest.raises(ValueError, match="max_buffered_bytes"):
            bob.byte_streams(max_buffered_bytes=0)
        assert lkanyio.DEFAULT_MAX_BUFFERED_BYTES == 16 * 1024 * 1024
        await alice.local_participant.publish_data(b"still here", topic="after")
        assert bob.connected


async def test_a_reader_left_unread_when_its_subscription_closes_is_released(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        before = lkanyio.statistics()
        readers = bob.byte_streams("open")  # subscribed before the stream opens
        try:
            async with alice.local_participant.stream_bytes(topic="open") as writer:
                await writer.write(b"first")
                with anyio.fail_after(EVENT_WAIT):
                    reader = await readers.receive()
                    assert await reader.__anext__() == b"first"
                # The sender keeps the stream open; the reader is neither read nor closed.
                await readers.aclose()
                stats = lkanyio.statistics()
                assert stats.bound_handles == before.bound_handles, stats
                assert stats.live_handles == before.live_handles + 1, stats  # the writer's
                assert stats.live_subscriptions == before.live_subscriptions, stats
                with pytest.raises(lkanyio.ResourceClosedError):
                    await reader.__anext__()
                await writer.write(b"second")  # nobody listens any more: nothing breaks
        finally:
            readers.close()


async def test_a_reader_garbage_collected_unread_is_released(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.text_streams("gc") as readers:
            before = lkanyio.statistics()
            async with alice.local_participant.stream_text(topic="gc") as writer:
                await writer.write("first")
                with anyio.fail_after(EVENT_WAIT):
                    reader = await readers.receive()
                    assert await reader.__anext__() == "first"
                del reader
                gc.collect()
                stats = lkanyio.statistics()
                assert stats.bound_handles == before.bound_handles, stats
                assert stats.live_handles == before.live_handles + 1, stats  # the writer's
                await writer.write("second")
