"""The LiveKit server API on AnyIO: tokens, rooms, agent dispatch, egress, ingress, SIP, webhooks.

::

    from lkanyio import api

    token = (
        api.AccessToken(key, secret)
        .with_identity("alice")
        .with_grants(api.VideoGrants(room_join=True, room="my-room"))
        .to_jwt()
    )
    async with api.LiveKitAPI(url, key, secret) as lkapi:
        await lkapi.room.create_room(api.CreateRoomRequest(name="my-room"))

The names, methods and message types are livekit-api's, so code moves over by importing ``api``
from ``lkanyio`` instead of from ``livekit``; it runs on trio as on asyncio (httpx underneath, not
aiohttp).  As in livekit-api, the server API's protobuf messages (livekit-protocol's
``CreateRoomRequest``, ``RoomConfiguration``, ``RoomAgentDispatch``, ``WebhookEvent``, ...) are
importable from here too.  This package imports nothing of lkanyio's room machinery or native
core: it works in a process that never joins a room.
"""

import contextlib as _contextlib

__all__ = [  # lkanyio's own names; the protocol messages are importable too, as in livekit-api
    "DEFAULT_LEEWAY",
    "DEFAULT_TTL",
    "APIConnectionError",
    "APIError",
    "AccessToken",
    "AgentDispatchService",
    "AgentEndpointGrants",
    "AgentGrants",
    "AgentThreadGrants",
    "Claims",
    "ConnectorService",
    "EgressService",
    "InferenceGrants",
    "IngressService",
    "InvalidTokenError",
    "LiveKitAPI",
    "ObservabilityGrants",
    "ParticipantKind",
    "RoomService",
    "SIPGrants",
    "ServerError",
    "ServerErrorCode",
    "ServerUnreachableError",
    "SipCallError",
    "SipService",
    "TokenVerifier",
    "TwirpError",
    "TwirpErrorCode",
    "VideoGrants",
    "WebhookError",
    "WebhookReceiver",
]

from livekit.protocol.agent import *  # noqa: F403

# The server API's messages, from the modules livekit-api re-exports them from.
from livekit.protocol.agent_dispatch import *  # noqa: F403
from livekit.protocol.agent_dispatch import RoomAgentDispatch as RoomAgentDispatch
from livekit.protocol.connector_twilio import *  # noqa: F403
from livekit.protocol.connector_whatsapp import *  # noqa: F403
from livekit.protocol.egress import *  # noqa: F403
from livekit.protocol.ingress import *  # noqa: F403
from livekit.protocol.models import *  # noqa: F403
from livekit.protocol.room import *  # noqa: F403
from livekit.protocol.room import RoomConfiguration as RoomConfiguration
from livekit.protocol.sip import *  # noqa: F403
from livekit.protocol.webhook import *  # noqa: F403
from livekit.protocol.webhook import WebhookEvent as WebhookEvent

from .._errors import APIConnectionError as APIConnectionError
from .._errors import APIError as APIError
from .._errors import InvalidTokenError as InvalidTokenError
from .._errors import ServerUnreachableError as ServerUnreachableError
from .._errors import SipCallError as SipCallError
from .._errors import TwirpError as TwirpError
from .._errors import WebhookError as WebhookError
from ._access_token import DEFAULT_LEEWAY as DEFAULT_LEEWAY
from ._access_token import DEFAULT_TTL as DEFAULT_TTL
from ._access_token import AccessToken as AccessToken
from ._access_token import AgentEndpointGrants as AgentEndpointGrants
from ._access_token import AgentGrants as AgentGrants
from ._access_token import AgentThreadGrants as AgentThreadGrants
from ._access_token import Claims as Claims
from ._access_token import InferenceGrants as InferenceGrants
from ._access_token import ObservabilityGrants as ObservabilityGrants
from ._access_token import ParticipantKind as ParticipantKind
from ._access_token import SIPGrants as SIPGrants
from ._access_token import TokenVerifier as TokenVerifier
from ._access_token import VideoGrants as VideoGrants
from ._agent_dispatch import AgentDispatchService as AgentDispatchService
from ._client import LiveKitAPI as LiveKitAPI
from ._connector import ConnectorService as ConnectorService
from ._egress import EgressService as EgressService
from ._ingress import IngressService as IngressService
from ._room_service import RoomService as RoomService
from ._sip import SipService as SipService
from ._twirp import ServerErrorCode as ServerErrorCode
from ._webhook import WebhookReceiver as WebhookReceiver

ServerError = TwirpError
"""livekit-api's name for :class:`~lkanyio.TwirpError`."""
TwirpErrorCode = ServerErrorCode
"""livekit-api's older name for :class:`ServerErrorCode`."""


def _fix_module_names() -> None:
    """Show this package's names as ``lkanyio.api.X`` in reprs and tracebacks."""
    for name, value in list(globals().items()):
        if not name.startswith("_") and getattr(value, "__module__", "").startswith(
            __name__ + "._"
        ):
            with _contextlib.suppress(AttributeError, TypeError):
                value.__module__ = __name__


_fix_module_names()
del _fix_module_names
