"""A small HTTP/1.1 server on loopback that records what server-API clients send (tests only).

It answers each request with ``200`` and an empty protobuf body (every response message decodes
from it), or stalls at a chosen point of the exchange so that tests can cancel a call there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Stall(enum.Enum):
    """Where the recorder stops answering."""

    NEVER = "answers"
    BEFORE_READING = "accepts the connection, reads nothing"
    AFTER_REQUEST = "reads the request, answers nothing"
    IN_HEADERS = "sends the status line only"
    IN_BODY = "sends the headers and part of the body"


@dataclass
class Recorder:
    """Serve with ``port = await tg.start(recorder.serve)``."""

    stall: Stall = Stall.NEVER
    port: int = 0
    """The port to listen on (0: any free one)."""
    requests: list[Recorded] = field(default_factory=list)
    stalled: anyio.Event = field(default_factory=anyio.Event)
    """Set when a connection reached the stall point."""
    closed_by_client: anyio.Event = field(default_factory=anyio.Event)
    """Set when the client closed a connection that was stalled."""
    connections: int = 0

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        async with listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            task_status.started(port)
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            buffered = BufferedByteReceiveStream(stream)
            while True:
                if self.stall is Stall.BEFORE_READING:
                    await self._stall_until_closed(stream)
                    return
                try:
                    head = await buffered.receive_until(b"\r\n\r\n", 65536)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await buffered.receive_exactly(int(headers.get("content-length", "0")))
                self.requests.append(Recorded(method, path, headers, body))
                if self.stall is Stall.AFTER_REQUEST:
                    await self._stall_until_closed(stream)
                    return
                if self.stall is Stall.IN_HEADERS:
                    await stream.send(b"HTTP/1.1 200 OK\r\n")
                    await self._stall_until_closed(stream)
                    return
                if self.stall is Stall.IN_BODY:
                    await stream.send(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\n"
                        b"Content-Length: 10\r\n\r\n\x08\x01"
                    )
                    await self._stall_until_closed(stream)
                    return
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )

    async def _stall_until_closed(self, stream: Any) -> None:
        self.stalled.set()
        try:
            while await stream.receive():
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        self.closed_by_client.set()
