"""An official-SDK (``livekit.rtc``) participant for the data-stream interop tests.

Run in a child process (one FFI server per process: it cannot share lkanyio's):
``python rtc_stream_peer.py URL TOKEN TOPIC``.  It speaks JSON lines:

* stdout: ``{"ready": identity}`` once connected; ``{"received": {...}}`` for every text
  stream on TOPIC (text, sender, stream id, reply-to id, attributes, attachments);
  ``{"sent": {...}}`` after each send; ``{"error": "..."}`` when a command failed.
* stdin: ``{"send_text": text, "reply_to_id": id | null, "compress": bool,
  "attributes": {...}}`` sends a text stream on TOPIC; ``{"stream_text": [chunks, ...],
  "reply_to_id": ..., "close_attributes": {...}}`` writes one chunk by chunk; EOF leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from livekit import rtc

from _rtc_peer_exit import run_and_exit


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(url: str, token: str, topic: str) -> None:
    room = rtc.Room()
    # livekit.rtc's TextStreamInfo has no reply-to id: read it from the opening event (the
    # SDK's own handler, wrapped; test code only).
    replies: dict[str, str] = {}
    opened = rtc.Room._handle_text_stream_opened

    def remember_reply(self: rtc.Room, event: Any) -> None:
        replies[event.reader.info.stream_id] = event.reader.info.reply_to_stream_id
        opened(self, event)

    rtc.Room._handle_text_stream_opened = remember_reply  # type: ignore[method-assign]
    tasks: set[asyncio.Task[None]] = set()

    async def read(reader: rtc.TextStreamReader, sender: str) -> None:
        text = await reader.read_all()
        info = reader.info
        emit(
            {
                "received": {
                    "text": text,
                    "sender": sender,
                    "stream_id": info.stream_id,
                    "reply_to_id": replies.get(info.stream_id, ""),
                    "attributes": dict(info.attributes or {}),
                    "attachments": list(info.attachments),
                }
            }
        )

    def on_text(reader: rtc.TextStreamReader, sender: str) -> None:
        task = asyncio.get_running_loop().create_task(read(reader, sender))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    room.register_text_stream_handler(topic, on_text)
    await room.connect(url, token)
    emit({"ready": room.local_participant.identity})
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            try:
                lp = room.local_participant
                if "send_text" in command:
                    info = await lp.send_text(
                        command["send_text"],
                        topic=topic,
                        reply_to_id=command.get("reply_to_id"),
                        compress=command.get("compress", True),
                        attributes=command.get("attributes"),
                    )
                else:
                    writer = await lp.stream_text(
                        topic=topic, reply_to_id=command.get("reply_to_id")
                    )
                    for chunk in command["stream_text"]:
                        await writer.write(chunk)
                    await writer.aclose(attributes=command.get("close_attributes"))
                    info = writer.info
                emit({"sent": {"stream_id": info.stream_id}})
            except Exception as exc:
                emit({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await room.disconnect()


if __name__ == "__main__":
    run_and_exit(main(*sys.argv[1:4]))
