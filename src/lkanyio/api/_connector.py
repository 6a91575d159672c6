"""Connector: WhatsApp and Twilio calls bridged into rooms."""

from __future__ import annotations

from typing import final

from livekit.protocol.connector_twilio import ConnectTwilioCallRequest, ConnectTwilioCallResponse
from livekit.protocol.connector_whatsapp import (
    AcceptWhatsAppCallRequest,
    AcceptWhatsAppCallResponse,
    ConnectWhatsAppCallRequest,
    ConnectWhatsAppCallResponse,
    DialWhatsAppCallRequest,
    DialWhatsAppCallResponse,
    DisconnectWhatsAppCallRequest,
    DisconnectWhatsAppCallResponse,
)

from ._access_token import VideoGrants
from ._service import Service

__all__ = ["ConnectorService"]


def _create() -> VideoGrants:
    return VideoGrants(room_create=True)


@final
class ConnectorService(Service):
    """WhatsApp and Twilio calls (``lkapi.connector``; LiveKit Cloud).

    A call that waits for the other party (``accept_whatsapp_call`` with
    ``wait_until_answered``) takes as long as that takes: bound it with ``anyio.fail_after``.
    """

    SERVICE = "Connector"

    async def dial_whatsapp_call(
        self, request: DialWhatsAppCallRequest
    ) -> DialWhatsAppCallResponse:
        """Start an outbound WhatsApp call."""
        return await self._call(
            "DialWhatsAppCall", request, DialWhatsAppCallResponse, video=_create()
        )

    async def disconnect_whatsapp_call(
        self, request: DisconnectWhatsAppCallRequest
    ) -> DisconnectWhatsAppCallResponse:
        """End a WhatsApp call."""
        return await self._call(
            "DisconnectWhatsAppCall", request, DisconnectWhatsAppCallResponse, video=_create()
        )

    async def connect_whatsapp_call(
        self, request: ConnectWhatsAppCallRequest
    ) -> ConnectWhatsAppCallResponse:
        """Connect a WhatsApp call with its SDP."""
        return await self._call(
            "ConnectWhatsAppCall", request, ConnectWhatsAppCallResponse, video=_create()
        )

    async def accept_whatsapp_call(
        self, request: AcceptWhatsAppCallRequest
    ) -> AcceptWhatsAppCallResponse:
        """Accept an inbound WhatsApp call.

        livekit-api's ``timeout=`` is not here: bound the call with ``anyio.fail_after``.
        """
        return await self._call(
            "AcceptWhatsAppCall", request, AcceptWhatsAppCallResponse, video=_create()
        )

    async def connect_twilio_call(
        self, request: ConnectTwilioCallRequest
    ) -> ConnectTwilioCallResponse:
        """Connect a Twilio call to a room."""
        return await self._call(
            "ConnectTwilioCall", request, ConnectTwilioCallResponse, video=_create()
        )
