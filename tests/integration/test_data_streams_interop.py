"""Text streams between lkanyio and the official SDK (``livekit.rtc`` in a child process), both
ways: compressed and plain, replies (``reply_to_id``) and closing attributes."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import lkanyio
from _util import EVENT_WAIT, TokenFactory, child_process, receive_json

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

PEER = Path(__file__).resolve().parents[1] / "rtc_stream_peer.py"
TOPIC = "interop"



class Peer:
    """The child process's JSON-lines protocol (see rtc_stream_peer.py)."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None
        assert process.stdin is not None
        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def receive(self) -> dict[str, Any]:
        """The next JSON message (other lines, if any library prints, are skipped)."""
        return await receive_json(self._lines)

    async def send(self, **command: Any) -> dict[str, Any]:
        """Run a command and return what it sent."""
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(command).encode() + b"\n")
        return (await self.receive())["sent"]


@asynccontextmanager
async def official_peer(url: str, token: str) -> AsyncIterator[Peer]:
    async with child_process(sys.executable, str(PEER), url, token, TOPIC) as process:
        peer = Peer(process)
        assert (await peer.receive())["ready"] == "rtc-peer"
        yield peer


async def test_text_streams_with_the_official_sdk_both_ways(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    text = "interop ✓ " * 10_000  # ~120 KB: several chunks unless compressed
    async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
        async with (
            room.text_streams(TOPIC) as readers,
            official_peer(server_info.url, token_factory("rtc-peer", room_name)) as peer,
        ):
            with anyio.fail_after(EVENT_WAIT):
                while "rtc-peer" not in room.remote_participants:
                    await anyio.sleep(0.02)
            lp = room.local_participant

            # lkanyio -> livekit.rtc: compressed, plain, and a reply.
            first = await lp.send_text(text, topic=TOPIC, compress=True, attributes={"n": "1"})
            second = await lp.send_text(
                "plain", topic=TOPIC, compress=False, reply_to_id=first.stream_id
            )
            received = [(await peer.receive())["received"] for _ in range(2)]
            by_id = {r["stream_id"]: r for r in received}
            assert by_id[first.stream_id]["text"] == text
            assert by_id[first.stream_id]["sender"] == "alice"
            assert by_id[first.stream_id]["attributes"] == {"n": "1"}
            assert by_id[first.stream_id]["reply_to_id"] == ""
            assert by_id[second.stream_id]["text"] == "plain"
            assert by_id[second.stream_id]["reply_to_id"] == first.stream_id

            # ... and a stream written chunk by chunk, ended with attributes.
            async with lp.stream_text(topic=TOPIC, reply_to_id=second.stream_id) as writer:
                await writer.write("part one, ")
                await writer.write("part two")
                await writer.aclose(attributes={"done": "yes"})
            streamed = (await peer.receive())["received"]
            assert streamed["text"] == "part one, part two"
            assert streamed["reply_to_id"] == second.stream_id
            assert streamed["attributes"] == {"done": "yes"}

            # livekit.rtc -> lkanyio: compressed (livekit.rtc's default) and plain replies.
            compressed = await peer.send(send_text=text, reply_to_id=first.stream_id)
            plain = await peer.send(send_text=text, compress=False, attributes={"n": "2"})
            for sent, compress in [(compressed, True), (plain, False)]:
                with anyio.fail_after(EVENT_WAIT):
                    reader = await readers.receive()
                async with reader:
                    assert reader.sender_identity == "rtc-peer"
                    assert reader.info.stream_id == sent["stream_id"]
                    with anyio.fail_after(EVENT_WAIT):
                        chunks = [chunk async for chunk in reader]
                assert "".join(chunks) == text
                # Measured: the native core delivers a compressed stream whole, in one chunk.
                assert len(chunks) == 1 if compress else len(chunks) > 1
                if compress:
                    assert reader.info.reply_to_id == first.stream_id
                else:
                    assert reader.info.reply_to_id is None
                    assert dict(reader.info.attributes) == {"n": "2"}

            # ... and a reply written chunk by chunk, ended with attributes.
            await peer.send(
                stream_text=["a", "b", "c"],
                reply_to_id=second.stream_id,
                close_attributes={"done": "yes"},
            )
            with anyio.fail_after(EVENT_WAIT):
                reader = await readers.receive()
            async with reader:
                with anyio.fail_after(EVENT_WAIT):
                    assert await reader.read_all() == "abc"
                assert reader.info.reply_to_id == second.stream_id
                assert reader.info.attributes["done"] == "yes"
