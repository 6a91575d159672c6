"""Data-stream options between two lkanyio participants on a real server (both backends):
caller-chosen ids, replies, attachments, compression, announced sizes, closing attributes."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, joined

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]



async def test_stream_id_reply_to_and_attachments_reach_the_reader(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with (
            bob.text_streams("chat") as readers,
            bob.byte_streams("files") as files,
            alice.text_streams("chat") as replies,
        ):
            attachment = await alice.local_participant.send_bytes(
                b"\x00\x01", topic="files", name="a.bin", stream_id="attachment-1"
            )
            assert attachment.stream_id == "attachment-1"
            sent = await alice.local_participant.send_text(
                "question",
                topic="chat",
                stream_id="question-1",
                attachments=[attachment.stream_id],
            )
            assert sent.stream_id == "question-1"
            assert sent.attachments == ("attachment-1",)
            assert sent.reply_to_id is None
            with anyio.fail_after(EVENT_WAIT):
                file_reader = await files.receive()
                question = await readers.receive()
            async with file_reader, question:
                assert file_reader.info.stream_id == "attachment-1"
                assert question.info.stream_id == "question-1"
                assert question.info.attachments == ("attachment-1",)
                assert question.info.reply_to_id is None
                with anyio.fail_after(EVENT_WAIT):
                    assert await question.read_all() == "question"
                    assert await file_reader.read_all() == b"\x00\x01"

            answer = await bob.local_participant.send_text(
                "answer", topic="chat", reply_to_id=question.info.stream_id
            )
            assert answer.reply_to_id == "question-1"
            async with bob.local_participant.stream_text(
                topic="chat", reply_to_id="question-1", stream_id="answer-2"
            ) as writer:
                assert writer.info is not None
                assert writer.info.stream_id == "answer-2"
                assert writer.info.reply_to_id == "question-1"
                await writer.write("second answer")
            with anyio.fail_after(EVENT_WAIT):
                first, second = await replies.receive(), await replies.receive()
            async with first, second:
                for reply, stream_id, text in [
                    (first, answer.stream_id, "answer"),
                    (second, "answer-2", "second answer"),
                ]:
                    assert reply.sender_identity == "bob"
                    assert reply.info.stream_id == stream_id
                    assert reply.info.reply_to_id == "question-1"
                    with anyio.fail_after(EVENT_WAIT):
                        assert await reply.read_all() == text


@pytest.mark.parametrize("compress", [True, False])
async def test_compressed_and_plain_text_arrive_identical(
    server_info: Any, token_factory: TokenFactory, room_name: str, compress: bool
) -> None:
    text = "compressible ✓ " * 20_000  # ~320 KB of UTF-8, very repetitive
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.text_streams("big") as readers:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: alice.local_participant.send_text(text, topic="big", compress=compress)
                )
                with anyio.fail_after(EVENT_WAIT):
                    reader = await readers.receive()
                async with reader:
                    chunks = []
                    with anyio.fail_after(EVENT_WAIT):
                        async for chunk in reader:
                            chunks.append(chunk)
            assert "".join(chunks) == text
            assert reader.info.size == len(text.encode())
            # Measured (native core v0.13.2): a compressed stream is delivered whole, as one
            # chunk; a plain one in chunks of about 15 KB (23 here).  So the option took effect.
            assert len(chunks) == 1 if compress else len(chunks) > 1


async def test_byte_stream_total_size_and_closing_attributes(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.byte_streams("upload") as readers:
            async with alice.local_participant.stream_bytes(
                topic="upload", name="x.bin", total_size=6, attributes={"stage": "open", "a": "1"}
            ) as writer:
                assert writer.info is not None
                assert writer.info.total_length == writer.info.size == 6
                await writer.write(b"abc")
                with anyio.fail_after(EVENT_WAIT):
                    reader = await readers.receive()
                # Still open: the reader shows the opening attributes only.
                assert reader.info.size == 6
                assert dict(reader.info.attributes) == {"stage": "open", "a": "1"}
                await writer.write(b"def")
                await writer.aclose(attributes={"stage": "done", "sha": "ok"})
                await writer.aclose()  # closing again does nothing
                with pytest.raises(lkanyio.ResourceClosedError):
                    await writer.write(b"late")
            async with reader:
                with anyio.fail_after(EVENT_WAIT):
                    assert await reader.read_all() == b"abcdef"
                # The closing attributes arrive with the end and win over the opening ones.
                assert dict(reader.info.attributes) == {"stage": "done", "a": "1", "sha": "ok"}


async def test_text_stream_closing_attributes_and_reason(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.text_streams("t") as readers:
            async with alice.local_participant.stream_text(topic="t") as writer:
                await writer.write("one")
                await writer.aclose(attributes={"final": "yes"})
            async with alice.local_participant.stream_text(topic="t") as writer:
                await writer.write("two")
                await writer.aclose(reason="gave up")
            with anyio.fail_after(EVENT_WAIT):
                first = await readers.receive()
                second = await readers.receive()
            async with first, second:
                with anyio.fail_after(EVENT_WAIT):
                    assert await first.read_all() == "one"
                assert first.info.attributes["final"] == "yes"
                with pytest.raises(lkanyio.DataStreamError, match="gave up"):
                    with anyio.fail_after(EVENT_WAIT):
                        await second.read_all()


async def test_the_server_names_the_real_sender_whatever_sender_identity_says(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with bob.text_streams("as") as readers:
            await alice.local_participant.send_text("hi", topic="as", sender_identity="carol")
            with anyio.fail_after(EVENT_WAIT):
                reader = await readers.receive()
            async with reader:
                with anyio.fail_after(EVENT_WAIT):
                    assert await reader.read_all() == "hi"
                # Measured: livekit-server delivers the stream as alice's (no impersonation).
                assert reader.sender_identity == "alice"


async def test_bad_options_are_refused_before_the_native_core(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice") as (alice,):
        lp = alice.local_participant
        with pytest.raises(TypeError):
            await lp.send_text("x", stream_id=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await lp.send_text("x", attachments="one-id")
        with pytest.raises(TypeError):
            await lp.send_text("x", compress=1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="lone surrogate"):
            await lp.send_text("x", reply_to_id="\ud800")
        with pytest.raises(ValueError, match="total_size"):
            async with lp.stream_bytes(total_size=-1):
                pass
        with pytest.raises(TypeError):
            async with lp.stream_text() as writer:
                await writer.aclose(attributes={"k": 1})  # type: ignore[dict-item]
