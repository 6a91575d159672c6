"""The server API client: one HTTP client, one attribute per service."""

from __future__ import annotations

import os
from typing import Final, final

import anyio
import anyio.abc
import anyio.lowlevel

from ._agent_dispatch import AgentDispatchService
from ._connector import ConnectorService
from ._egress import EgressService
from ._ingress import IngressService
from ._room_service import RoomService
from ._sip import SipService
from ._twirp import Twirp, http_base

__all__ = ["LiveKitAPI"]

_CLOSE_BOUND: Final = 5.0
"""Seconds :meth:`LiveKitAPI.aclose` waits for its connections to close (a TLS goodbye)."""


@final
class LiveKitAPI(anyio.abc.AsyncResource):
    """The LiveKit server API on AnyIO: rooms, agent dispatch, egress, ingress, SIP, connectors.

    ::

        async with LiveKitAPI(url, api_key, api_secret) as lkapi:
            room = await lkapi.room.create_room(CreateRoomRequest(name="my-room"))

    One HTTP client (httpx) serves every service and every task of one event loop (its
    connections belong to the loop that opened them: a call from another loop raises
    ``RuntimeError``); it runs on trio and asyncio alike.  Each call is signed with a token
    carrying only the grants that call needs, valid for ten minutes (calls needing the same
    grants share one for its first five).  Calls take no ``timeout=``: bound them with
    ``anyio.fail_after``; a cancelled call leaves no connection half used (a call the server
    already received may still take effect).  Failures raise :class:`~lkanyio.APIError`
    subclasses that name the service and method: :class:`~lkanyio.TwirpError` (the server's
    error: code, message, HTTP status), :class:`~lkanyio.ServerUnreachableError`,
    :class:`~lkanyio.APIConnectionError`.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        token: str | None = None,
    ) -> None:
        """Prepare a client (no connection is made until the first call).

        Args:
            url: the server (``ws://``, ``wss://``, ``http://`` or ``https://``; default:
                ``LIVEKIT_URL``).
            api_key: the API key to sign calls with (default: ``LIVEKIT_API_KEY``).
            api_secret: its secret (default: ``LIVEKIT_API_SECRET``).
            token: a pre-signed token to send as it is instead (default: ``LIVEKIT_TOKEN`` when
                no key or secret is given); it must carry the grants of the calls made.

        Raises:
            ValueError: no URL, a URL that is not ws(s)/http(s), or no credentials.
        """
        url = url or os.environ.get("LIVEKIT_URL")
        # Environment credentials only when none are given, so that an ambient LIVEKIT_TOKEN
        # never overrides an explicit key and secret (or the other way round).
        if not (token or api_key or api_secret):
            token = os.environ.get("LIVEKIT_TOKEN") or None
        if not (token or api_key or api_secret):
            api_key = os.environ.get("LIVEKIT_API_KEY")
            api_secret = os.environ.get("LIVEKIT_API_SECRET")
        if not url:
            raise ValueError("url must be set (or LIVEKIT_URL)")
        if not token and not (api_key and api_secret):
            raise ValueError(
                "either a token, or api_key and api_secret, must be set (or LIVEKIT_TOKEN, or "
                "LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
            )
        self._twirp = Twirp(http_base(url), api_key or "", api_secret or "", token)
        self._room = RoomService(self._twirp)
        self._agent_dispatch = AgentDispatchService(self._twirp)
        self._egress = EgressService(self._twirp)
        self._ingress = IngressService(self._twirp)
        self._sip = SipService(self._twirp)
        self._connector = ConnectorService(self._twirp)

    @classmethod
    def with_token(cls, token: str, url: str | None = None) -> LiveKitAPI:
        """A client that sends the pre-signed ``token`` (it must carry the calls' grants)."""
        return cls(url, token=token)

    @property
    def url(self) -> str:
        """The HTTP(S) base URL the calls go to."""
        return self._twirp.base

    @property
    def room(self) -> RoomService:
        """Rooms and participants."""
        return self._room

    @property
    def agent_dispatch(self) -> AgentDispatchService:
        """Agent dispatches."""
        return self._agent_dispatch

    @property
    def egress(self) -> EgressService:
        """Recording and streaming."""
        return self._egress

    @property
    def ingress(self) -> IngressService:
        """Inputs published into rooms."""
        return self._ingress

    @property
    def sip(self) -> SipService:
        """SIP trunks, dispatch rules and calls."""
        return self._sip

    @property
    def connector(self) -> ConnectorService:
        """WhatsApp and Twilio calls."""
        return self._connector

    async def aclose(self) -> None:
        """Close the HTTP client; later calls raise :class:`~lkanyio.ResourceClosedError`.

        It closes even if cancelled (shielded, bounded), and a second call does nothing.
        """
        if not self._twirp.closed:
            with anyio.move_on_after(_CLOSE_BOUND, shield=True):
                await self._twirp.aclose()
        await anyio.lowlevel.checkpoint()

