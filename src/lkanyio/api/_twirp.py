"""Twirp over HTTP: one POST per call, protobuf bodies, failures mapped once into lkanyio's family.

A call is ``POST {base}/twirp/livekit.{Service}/{Method}`` with the serialized request as an
``application/protobuf`` body and a bearer token carrying exactly the grants that call needs.  A
200 carries the serialized response; any other status carries a Twirp error as JSON
(``{"code": ..., "msg": ..., "meta": {...}}``).  :func:`Twirp.call` is the only place that talks
to httpx and the only place its failures turn into :class:`~lkanyio.APIError` and its subclasses.

No timeouts of ours: the client has none, so a call takes as long as the caller's cancel scope
allows (``with anyio.fail_after(5): await lkapi.room.list_rooms(...)``).  A cancelled call leaves
no connection half used: httpx's pool closes a connection whose exchange was interrupted (checked
in ``tests/integration/test_api_errors.py`` through the pool's connections).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta
from importlib import metadata
from typing import TYPE_CHECKING, Final, TypeVar, final
from urllib.parse import urlsplit, urlunsplit

import anyio.lowlevel
import httpx
from google.protobuf.message import DecodeError, Message

from .._errors import (
    APIConnectionError,
    APIError,
    ResourceClosedError,
    ServerUnreachableError,
    SipCallError,
    TwirpError,
)
from ._access_token import AccessToken, SIPGrants, VideoGrants

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CALL_TOKEN_TTL", "ServerErrorCode", "Twirp", "http_base"]

try:
    _VERSION = metadata.version("lkanyio")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    _VERSION = "0"
USER_AGENT: Final = f"lkanyio/{_VERSION}"
REQUEST_ID_HEADER: Final = "X-Livekit-Request-Id"
"""A fresh id per call (livekit-api sends one too; the server logs it)."""
PREFIX: Final = "twirp"
PACKAGE: Final = "livekit"


CALL_TOKEN_TTL: Final = timedelta(minutes=10)
"""How long the token signing one call stays valid (livekit-api signs each call for 6 hours)."""

_SIGNED_KEPT: Final = 256
"""Call tokens kept for reuse (one per distinct set of grants; room-scoped grants name a room)."""

# Twirp's spec for an answer that is not a Twirp error (a proxy's page, say): the code follows
# from the HTTP status.
_INTERMEDIARY_CODES: Final[Mapping[int, str]] = {
    400: "internal",
    401: "unauthenticated",
    403: "permission_denied",
    404: "bad_route",
    429: "unavailable",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}

R = TypeVar("R", bound=Message)


def http_base(url: str) -> str:
    """The HTTP(S) base of the server API at ``url`` (``ws``/``wss`` become ``http``/``https``).

    A path is kept (a server behind a reverse proxy); a trailing ``/`` is not.

    Raises:
        ValueError: not an ``http``, ``https``, ``ws`` or ``wss`` URL with a host.
    """
    parts = urlsplit(url.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https"):
        raise ValueError(
            f"the server URL must start with ws://, wss://, http:// or https://, not {url!r}"
        )
    if not parts.hostname:
        raise ValueError(f"the server URL names no host: {url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the members of any exception group among them."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        todo.extend(getattr(current, "exceptions", ()))
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return found


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words.

    The system's error if there is one (``Connection refused``, ``Network is unreachable``), else
    the most specific text httpx gave.
    """
    chain = _chain(exc)
    for error in chain:
        if isinstance(error, OSError) and error.errno:
            return os.strerror(error.errno)
    texts = [text for error in chain if (text := str(error).strip())]
    return texts[-1] if texts else type(exc).__name__


@final
class Twirp:
    """The HTTP side of one :class:`~lkanyio.api.LiveKitAPI`: client, base URL, credentials."""

    def __init__(self, base: str, api_key: str, api_secret: str, token: str | None) -> None:
        self.base = base
        self._api_key = api_key
        self._api_secret = api_secret
        self._token = token
        # No timeouts (the caller's cancel scope bounds a call); no proxies or .netrc from the
        # environment, as livekit-api (aiohttp's default); redirects are errors (Twirp has none).
        self.client = httpx.AsyncClient(timeout=None, trust_env=False, follow_redirects=False)
        self.closed = False
        self._signed: dict[str, tuple[float, str]] = {}
        self._loop: object = None

    def authorization(self, video: VideoGrants | None, sip: SIPGrants | None) -> str:
        """The ``Authorization`` header for a call needing ``video`` and ``sip`` grants."""
        if self._token:  # a pre-signed token is sent as it is: its grants are the caller's
            return f"Bearer {self._token}"
        # Calls that need the same grants share a token for the first half of its life, so no
        # call goes out with less than half of it left (signing one is ~10% of a call's CPU).
        key = repr((video, sip))
        now = time.time()
        minted, header = self._signed.get(key, (0.0, ""))
        if now - minted < CALL_TOKEN_TTL.total_seconds() / 2:
            return header
        token = AccessToken(self._api_key, self._api_secret).with_ttl(CALL_TOKEN_TTL)
        if video is not None:
            token.with_grants(video)
        if sip is not None:
            token.with_sip_grants(sip)
        header = f"Bearer {token.to_jwt()}"
        if len(self._signed) >= _SIGNED_KEPT:  # one per room-scoped grant: keep it bounded
            self._signed.clear()
        self._signed[key] = (now, header)
        return header

    async def call(
        self,
        service: str,
        method: str,
        request: Message,
        response_type: type[R],
        *,
        video: VideoGrants | None,
        sip: SIPGrants | None = None,
        sip_call: bool = False,
    ) -> R:
        """POST ``request`` to ``service.method`` and return the decoded ``response_type``.

        Args:
            service: the Twirp service (``"RoomService"``).
            method: the Twirp method (``"CreateRoom"``).
            request: the request message.
            response_type: the response message's class.
            video: the room grants the call's token carries.
            sip: the SIP grants the call's token carries.
            sip_call: a SIP dialing call: errors with a SIP status become :class:`SipCallError`.

        Raises:
            TwirpError: the server answered with an error.
            ServerUnreachableError: no connection could be made.
            APIConnectionError: the connection failed during the call.
            APIError: the answer could not be read as ``response_type``.
            ResourceClosedError: the :class:`~lkanyio.api.LiveKitAPI` was closed.
        """
        if self.closed:
            raise ResourceClosedError(f"{service}.{method}: the LiveKitAPI is closed")
        self._check_loop(service, method)
        headers = {
            "Authorization": self.authorization(video, sip),
            "Content-Type": "application/protobuf",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",  # the answer's bytes are read as they come (_post)
            REQUEST_ID_HEADER: str(uuid.uuid4()),
        }
        url = f"{self.base}/{PREFIX}/{PACKAGE}.{service}/{method}"
        try:
            response, body = await self._post(url, request.SerializeToString(), headers)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, service, method) from exc
        except RuntimeError as exc:  # httpx: "Cannot send a request, as the client has been closed"
            if self.client.is_closed:
                raise ResourceClosedError(
                    f"{service}.{method}: the LiveKitAPI was closed during the call"
                ) from exc
            raise
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise APIError(
                f"the server's answer could not be decoded (Content-Encoding: {encoding}, "
                f"{len(body)} bytes): lkanyio asks for answers that are not encoded",
                service=service,
                method=method,
            )
        if response.status_code == 200:
            try:
                return response_type.FromString(body)
            except DecodeError as exc:
                raise APIError(
                    f"the server's answer is not a {response_type.DESCRIPTOR.full_name} "
                    f"({len(body)} bytes, {response.headers.get('content-type')})",
                    service=service,
                    method=method,
                ) from exc
        error = _twirp_error(response, body, service, method)
        if sip_call and (
            "sip_status_code" in error.metadata or "sip_transfer_reason" in error.metadata
        ):
            error = SipCallError(
                error.code,
                error.message,
                status=error.status,
                service=service,
                method=method,
                metadata=error.metadata,
            )
        raise error

    async def _post(
        self, url: str, content: bytes, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """POST and read the answer's bytes as they came (no decoding by httpx).

        httpx would decode a ``Content-Encoding`` itself, and when that fails (a broken proxy) it
        raises its own ``DecodingError`` from inside a body generator it leaves to the garbage
        collector.  The raw bytes are read to their end here (an error inside the generator ends
        it), and the caller judges the encoding.
        """
        request = self.client.build_request("POST", url, content=content, headers=headers)
        response = await self.client.send(request, stream=True)
        chunks: list[bytes] = []
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response, b"".join(chunks)

    def _check_loop(self, service: str, method: str) -> None:
        """Refuse a call from another event loop than the first call's.

        The pool's connections belong to the loop that opened them: used from another one they
        fail with the loop's own confusing error (measured: ``RuntimeError: no running event
        loop`` from trio on a connection asyncio opened).
        """
        loop = anyio.lowlevel.current_token()
        if self._loop is None:
            self._loop = loop
        elif loop != self._loop:  # anyio >= 4.11: a fresh token object that compares equal
            raise RuntimeError(
                f"{service}.{method}: this LiveKitAPI was first used in another event loop, "
                "whose connections it holds; make one LiveKitAPI per event loop run "
                "(async with LiveKitAPI(...) inside it)"
            )

    def _transport_error(
        self, exc: httpx.TransportError, service: str, method: str
    ) -> ResourceClosedError | APIConnectionError:
        if self.closed:
            return ResourceClosedError(
                f"{service}.{method}: the LiveKitAPI was closed during the call"
            )
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ServerUnreachableError(
                f"cannot connect to {self.base}: {_reason(exc)}", service=service, method=method
            )
        return APIConnectionError(
            f"the connection to {self.base} failed: {_reason(exc)}",
            service=service,
            method=method,
        )

    async def aclose(self) -> None:
        """Close the client (its idle connections); calls afterwards raise."""
        self.closed = True
        await self.client.aclose()


def _twirp_error(response: httpx.Response, body: bytes, service: str, method: str) -> TwirpError:
    """The :class:`TwirpError` of a non-200 ``response``."""
    status = response.status_code
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        meta = data.get("meta")
        return TwirpError(
            data["code"],
            str(data.get("msg", "")),
            status=status,
            service=service,
            method=method,
            metadata={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else None,
        )
    code = "internal" if 300 <= status < 400 else _INTERMEDIARY_CODES.get(status, "unknown")
    text = body[:200].decode("utf-8", "replace").strip()
    return TwirpError(
        code,
        f"not a Twirp error: {text!r}" if text else "not a Twirp error (empty body)",
        status=status,
        service=service,
        method=method,
        metadata={"http_error_from_intermediary": "true"},
    )


@final
class ServerErrorCode:
    """The Twirp error codes (:attr:`~lkanyio.TwirpError.code`)."""

    CANCELED: Final = "canceled"
    UNKNOWN: Final = "unknown"
    INVALID_ARGUMENT: Final = "invalid_argument"
    MALFORMED: Final = "malformed"
    DEADLINE_EXCEEDED: Final = "deadline_exceeded"
    NOT_FOUND: Final = "not_found"
    BAD_ROUTE: Final = "bad_route"
    ALREADY_EXISTS: Final = "already_exists"
    PERMISSION_DENIED: Final = "permission_denied"
    UNAUTHENTICATED: Final = "unauthenticated"
    RESOURCE_EXHAUSTED: Final = "resource_exhausted"
    FAILED_PRECONDITION: Final = "failed_precondition"
    ABORTED: Final = "aborted"
    OUT_OF_RANGE: Final = "out_of_range"
    UNIMPLEMENTED: Final = "unimplemented"
    INTERNAL: Final = "internal"
    UNAVAILABLE: Final = "unavailable"
    DATA_LOSS: Final = "dataloss"
