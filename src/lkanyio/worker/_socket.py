"""The worker's WebSocket: wsproto (sans-IO) over an anyio TCP stream (TLS for ``wss``).

Why wsproto and not httpx-ws: the worker holds one long-lived socket and speaks a protocol whose
rules live in a sans-IO machine (``lkanyio._core._worker``); wsproto is the same shape (bytes in,
events out), so this module only moves bytes between the two and the stream, on whichever backend
anyio runs (trio or asyncio) with no background task of its own.  It hands over the HTTP answer
to a refused upgrade (status and body), which is how livekit-server says "bad credentials" (401)
or how something that is not a LiveKit server shows itself.  httpx-ws would bring httpx's
connection pool and transports for a single socket, and run its own reader task and queue
between our reader and the socket.  Its one gain, proxies, is not needed for a worker.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Final
from urllib.parse import urlsplit

import anyio
import anyio.abc
import wsproto
import wsproto.events as wse
from wsproto.connection import ConnectionState
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

__all__ = ["HandshakeRefused", "NotAWebSocket", "SocketClosed", "WebSocket", "agent_endpoint"]

_CHUNK: Final = 65536
_MAX_BODY: Final = 4096


class SocketClosed(Exception):
    """The WebSocket or its stream ended (a transient failure: connect again)."""


class HandshakeRefused(Exception):
    """The server answered the upgrade with an HTTP status instead of switching protocols."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class NotAWebSocket(Exception):
    """What answered the upgrade did not speak HTTP/WebSocket at all."""


def agent_endpoint(url: str) -> tuple[str, str, int, str, bool]:
    """``(scheme, host, port, target, secure)`` of the ``/agent`` endpoint under ``url``."""
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = parts.path.rstrip("/") + "/agent"
    return parts.scheme, host, port, target, secure


class WebSocket:
    """A connected client WebSocket (binary messages), owned by one ``async with``."""

    def __init__(self, stream: anyio.abc.ByteStream, connection: wsproto.WSConnection) -> None:
        self._stream = stream
        self._ws = connection
        self._send_lock = anyio.Lock()
        self._pending: list[wse.Event] = []
        self._parts: list[bytes] = []
        self._closed = False

    @classmethod
    async def connect(cls, url: str, headers: list[tuple[bytes, bytes]]) -> WebSocket:
        """Open the TCP (TLS) stream and upgrade it at ``url``'s ``/agent``.

        Raises:
            OSError: the TCP connection failed.
            SocketClosed: the stream ended during the TLS or WebSocket handshake.
            HandshakeRefused: an HTTP answer other than 101.
            NotAWebSocket: an answer that is not HTTP.
        """
        _, host, port, target, secure = agent_endpoint(url)
        # anyio reports a stream cut during the TLS handshake or the request's send as
        # BrokenResourceError / EndOfStream (not OSError): transient, like a refused connection.
        try:
            if secure:
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                    host, port, tls=True, ssl_context=ssl.create_default_context(),
                    tls_hostname=host,
                )
            else:
                stream = await anyio.connect_tcp(host, port)
        except (anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            raise SocketClosed("the connection ended during the TLS handshake") from exc
        try:
            connection = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            host_header = host if port in (80, 443) else f"{host}:{port}"
            try:
                await stream.send(connection.send(
                    wse.Request(host=host_header, target=target, extra_headers=headers)))
            except (anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                raise SocketClosed("the connection ended before the upgrade was sent") from exc
            self = cls(stream, connection)
            await self._handshake()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
        return self

    async def _handshake(self) -> None:
        status = 0
        body = b""
        while True:
            for event in await self._read_events():
                if isinstance(event, wse.AcceptConnection):
                    return
                if isinstance(event, wse.RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise HandshakeRefused(status, "")
                elif isinstance(event, wse.RejectData):
                    body += event.data
                    if event.body_finished or len(body) > _MAX_BODY:
                        text = body[:_MAX_BODY].decode("utf-8", "replace").strip()
                        raise HandshakeRefused(status, text)
                else:
                    self._pending.append(event)

    async def _read_events(self) -> list[wse.Event]:
        try:
            data = await self._stream.receive(_CHUNK)
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
            self._closed = True
            self._ws.receive_data(None)
            raise SocketClosed("the connection ended") from exc
        try:
            self._ws.receive_data(data)  # the handshake's answer is parsed here already
            return list(self._ws.events())
        except RemoteProtocolError as exc:
            self._closed = True
            raise NotAWebSocket(str(exc)) from exc

    async def send(self, data: bytes) -> None:
        """Send one binary message.

        Raises:
            SocketClosed: the socket is closed or broken.
        """
        await self._send_raw(wse.BytesMessage(data=data))

    async def _send_raw(self, event: wse.Event) -> None:
        if self._closed:
            raise SocketClosed("the WebSocket is closed")
        try:
            out = self._ws.send(event)
        except LocalProtocolError as exc:
            raise SocketClosed(f"the WebSocket is closing ({exc})") from exc
        async with self._send_lock:
            try:
                await self._stream.send(out)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self._closed = True
                raise SocketClosed("the connection broke") from exc

    async def receive(self) -> bytes:
        """The next binary message (text messages are skipped; pings answered).

        Raises:
            SocketClosed: the peer closed the WebSocket or the stream ended.
            NotAWebSocket: the peer broke the WebSocket protocol.
        """
        while True:
            while self._pending:
                event = self._pending.pop(0)
                if isinstance(event, wse.BytesMessage):
                    self._parts.append(bytes(event.data))
                    if event.message_finished:
                        data, self._parts = b"".join(self._parts), []
                        return data
                elif isinstance(event, wse.Ping):
                    await self._send_raw(event.response())
                elif isinstance(event, wse.CloseConnection):
                    if self._ws.state is ConnectionState.REMOTE_CLOSING:
                        await self._send_raw(event.response())
                    self._closed = True
                    raise SocketClosed(f"the server closed the WebSocket ({event.code} "
                                       f"{event.reason})".replace(" )", ")"))
            self._pending.extend(await self._read_events())

    async def aclose(self) -> None:
        """Close the WebSocket (normal closure) and the stream; never raises, bounded."""
        with anyio.move_on_after(2, shield=True):
            if not self._closed and self._ws.state is ConnectionState.OPEN:
                with contextlib.suppress(SocketClosed):
                    await self._send_raw(wse.CloseConnection(code=1000))
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(self._stream)
