"""SIP: trunks, dispatch rules, and phone calls as room participants."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, TypeVar, final

from livekit.protocol.models import ListUpdate
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    CreateSIPOutboundTrunkRequest,
    CreateSIPParticipantRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPDispatchRuleResponse,
    ListSIPInboundTrunkRequest,
    ListSIPInboundTrunkResponse,
    ListSIPOutboundTrunkRequest,
    ListSIPOutboundTrunkResponse,
    SIPDispatchRule,
    SIPDispatchRuleInfo,
    SIPDispatchRuleUpdate,
    SIPInboundTrunkInfo,
    SIPInboundTrunkUpdate,
    SIPMediaConfig,
    SIPOutboundConfig,
    SIPOutboundTrunkInfo,
    SIPOutboundTrunkUpdate,
    SIPParticipantInfo,
    SIPTransport,
    SIPTrunkInfo,
    TransferSIPParticipantRequest,
    TransferSIPParticipantResponse,
    UpdateSIPDispatchRuleRequest,
    UpdateSIPInboundTrunkRequest,
    UpdateSIPOutboundTrunkRequest,
)

from ._access_token import SIPGrants, VideoGrants
from ._service import Service

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from google.protobuf.message import Message

__all__ = ["SipService"]

DEFAULT_RINGING_TIMEOUT = 30
"""Seconds a dialing request rings when it does not say (the server's default, made explicit as
livekit-api does, so the request means the same if that default changes)."""

M = TypeVar("M", bound="Message")


def _copy(message: M) -> M:
    """A copy of the caller's request (livekit-api changes the caller's own; we do not)."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _fill(target: ListUpdate, value: ListUpdate | list[str] | None) -> None:
    """A list field of an update: ``ListUpdate`` as it is, a plain list replaces the list."""
    if value is None:
        return
    if isinstance(value, ListUpdate):
        target.set.extend(value.set)
        target.add.extend(value.add)
        target.remove.extend(value.remove)
    else:
        target.set.extend(value)


def _deprecated(new: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """livekit-api's deprecated name of the method ``new``: it warns, then calls ``new``.

    The old name has ``sip_`` after the verb (``create_inbound_trunk`` was
    ``create_sip_inbound_trunk``); the arguments are passed on as they are.
    """
    verb, _, rest = new.partition("_")
    old = f"{verb}_sip_{rest}"

    async def alias(self: SipService, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{old} is deprecated, use {new} instead", DeprecationWarning, stacklevel=2)
        return await getattr(self, new)(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated: :meth:`{new}` (same arguments)."
    alias.__deprecated_for__ = new  # type: ignore[attr-defined]
    return alias


@final
class SipService(Service):
    """SIP trunks, dispatch rules and calls (``lkapi.sip``; needs a SIP service).

    Dialing calls (``create_sip_participant`` with ``wait_until_answered``,
    ``transfer_sip_participant``) take as long as the phone rings: bound them with
    ``anyio.fail_after`` (livekit-api's ``timeout=`` is not here).  A call that fails with a SIP
    status raises :class:`~lkanyio.SipCallError`.
    """

    SERVICE = "SIP"

    async def _admin(self, method: str, request: Message, response_type: type[M]) -> M:
        return await self._call(
            method, request, response_type, video=VideoGrants(), sip=SIPGrants(admin=True)
        )

    # --- inbound trunks -------------------------------------------------------------------

    async def create_inbound_trunk(
        self, create: CreateSIPInboundTrunkRequest
    ) -> SIPInboundTrunkInfo:
        """Create an inbound trunk (calls into LiveKit)."""
        return await self._admin("CreateSIPInboundTrunk", create, SIPInboundTrunkInfo)


    async def update_inbound_trunk(
        self, trunk_id: str, trunk: SIPInboundTrunkInfo
    ) -> SIPInboundTrunkInfo:
        """Replace an inbound trunk."""
        return await self._admin(
            "UpdateSIPInboundTrunk",
            UpdateSIPInboundTrunkRequest(sip_trunk_id=trunk_id, replace=trunk),
            SIPInboundTrunkInfo,
        )


    async def update_inbound_trunk_fields(
        self,
        trunk_id: str,
        *,
        numbers: ListUpdate | list[str] | None = None,
        allowed_addresses: ListUpdate | list[str] | None = None,
        allowed_numbers: ListUpdate | list[str] | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        name: str | None = None,
        metadata: str | None = None,
        media: SIPMediaConfig | None = None,
    ) -> SIPInboundTrunkInfo:
        """Change some fields of an inbound trunk (a list replaces; a ``ListUpdate`` edits)."""
        update = SIPInboundTrunkUpdate(
            auth_username=auth_username,
            auth_password=auth_password,
            name=name,
            metadata=metadata,
            media=media,
        )
        _fill(update.numbers, numbers)
        _fill(update.allowed_addresses, allowed_addresses)
        _fill(update.allowed_numbers, allowed_numbers)
        return await self._admin(
            "UpdateSIPInboundTrunk",
            UpdateSIPInboundTrunkRequest(sip_trunk_id=trunk_id, update=update),
            SIPInboundTrunkInfo,
        )


    async def list_inbound_trunk(
        self, list: ListSIPInboundTrunkRequest
    ) -> ListSIPInboundTrunkResponse:
        """The inbound trunks."""
        return await self._admin("ListSIPInboundTrunk", list, ListSIPInboundTrunkResponse)


    # --- outbound trunks ------------------------------------------------------------------

    async def create_outbound_trunk(
        self, create: CreateSIPOutboundTrunkRequest
    ) -> SIPOutboundTrunkInfo:
        """Create an outbound trunk (calls out of LiveKit)."""
        return await self._admin("CreateSIPOutboundTrunk", create, SIPOutboundTrunkInfo)


    async def update_outbound_trunk(
        self, trunk_id: str, trunk: SIPOutboundTrunkInfo
    ) -> SIPOutboundTrunkInfo:
        """Replace an outbound trunk."""
        return await self._admin(
            "UpdateSIPOutboundTrunk",
            UpdateSIPOutboundTrunkRequest(sip_trunk_id=trunk_id, replace=trunk),
            SIPOutboundTrunkInfo,
        )


    async def update_outbound_trunk_fields(
        self,
        trunk_id: str,
        *,
        address: str | None = None,
        transport: SIPTransport | None = None,
        numbers: ListUpdate | list[str] | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        name: str | None = None,
        metadata: str | None = None,
        media: SIPMediaConfig | None = None,
    ) -> SIPOutboundTrunkInfo:
        """Change some fields of an outbound trunk (a list replaces; a ``ListUpdate`` edits)."""
        update = SIPOutboundTrunkUpdate(
            address=address,
            transport=transport,
            auth_username=auth_username,
            auth_password=auth_password,
            name=name,
            metadata=metadata,
            media=media,
        )
        _fill(update.numbers, numbers)
        return await self._admin(
            "UpdateSIPOutboundTrunk",
            UpdateSIPOutboundTrunkRequest(sip_trunk_id=trunk_id, update=update),
            SIPOutboundTrunkInfo,
        )


    async def list_outbound_trunk(
        self, list: ListSIPOutboundTrunkRequest
    ) -> ListSIPOutboundTrunkResponse:
        """The outbound trunks."""
        return await self._admin("ListSIPOutboundTrunk", list, ListSIPOutboundTrunkResponse)


    async def delete_trunk(self, delete: DeleteSIPTrunkRequest) -> SIPTrunkInfo:
        """Delete a trunk (inbound or outbound)."""
        return await self._admin("DeleteSIPTrunk", delete, SIPTrunkInfo)


    # --- dispatch rules -------------------------------------------------------------------

    async def create_dispatch_rule(
        self, create: CreateSIPDispatchRuleRequest
    ) -> SIPDispatchRuleInfo:
        """Create a dispatch rule (which room an inbound call goes to)."""
        return await self._admin("CreateSIPDispatchRule", create, SIPDispatchRuleInfo)


    async def update_dispatch_rule(
        self, rule_id: str, rule: SIPDispatchRuleInfo
    ) -> SIPDispatchRuleInfo:
        """Replace a dispatch rule."""
        return await self._admin(
            "UpdateSIPDispatchRule",
            UpdateSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id, replace=rule),
            SIPDispatchRuleInfo,
        )


    async def update_dispatch_rule_fields(
        self,
        rule_id: str,
        *,
        trunk_ids: ListUpdate | list[str] | None = None,
        rule: SIPDispatchRule | None = None,
        name: str | None = None,
        metadata: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> SIPDispatchRuleInfo:
        """Change some fields of a dispatch rule (a list replaces; a ``ListUpdate`` edits)."""
        update = SIPDispatchRuleUpdate(
            name=name, metadata=metadata, rule=rule, attributes=attributes
        )
        _fill(update.trunk_ids, trunk_ids)
        return await self._admin(
            "UpdateSIPDispatchRule",
            UpdateSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id, update=update),
            SIPDispatchRuleInfo,
        )


    async def list_dispatch_rule(
        self, list: ListSIPDispatchRuleRequest
    ) -> ListSIPDispatchRuleResponse:
        """The dispatch rules."""
        return await self._admin("ListSIPDispatchRule", list, ListSIPDispatchRuleResponse)


    async def delete_dispatch_rule(
        self, delete: DeleteSIPDispatchRuleRequest
    ) -> SIPDispatchRuleInfo:
        """Delete a dispatch rule."""
        return await self._admin("DeleteSIPDispatchRule", delete, SIPDispatchRuleInfo)


    # --- calls ----------------------------------------------------------------------------

    async def create_sip_participant(
        self,
        create: CreateSIPParticipantRequest,
        *,
        trunk_id: str | None = None,
        outbound_trunk_config: SIPOutboundConfig | None = None,
    ) -> SIPParticipantInfo:
        """Dial a phone number into a room as a SIP participant.

        Args:
            create: the call.  With ``wait_until_answered`` the call returns once the phone
                answers, ringing ``ringing_timeout`` (30 s unless set).
            trunk_id: the outbound trunk (sets ``create.sip_trunk_id`` in the request sent).
            outbound_trunk_config: a trunk configuration instead of a trunk id.

        Raises:
            SipCallError: the call failed with a SIP status (busy, no answer, ...).
        """
        request = _copy(create)
        if request.wait_until_answered and not request.HasField("ringing_timeout"):
            request.ringing_timeout.seconds = DEFAULT_RINGING_TIMEOUT
        if trunk_id:
            request.sip_trunk_id = trunk_id
        if outbound_trunk_config is not None:
            request.trunk.CopyFrom(outbound_trunk_config)
        return await self._call(
            "CreateSIPParticipant",
            request,
            SIPParticipantInfo,
            video=VideoGrants(),
            sip=SIPGrants(call=True),
            sip_call=True,
        )

    async def transfer_sip_participant(
        self, transfer: TransferSIPParticipantRequest
    ) -> TransferSIPParticipantResponse:
        """Transfer a SIP participant's call to another number (it rings first).

        Raises:
            SipCallError: the transfer failed (with the SIP status or the transfer reason).
        """
        request = _copy(transfer)
        if not request.HasField("ringing_timeout"):
            request.ringing_timeout.seconds = DEFAULT_RINGING_TIMEOUT
        return await self._call(
            "TransferSIPParticipant",
            request,
            TransferSIPParticipantResponse,
            video=VideoGrants(room_admin=True, room=transfer.room_name),
            sip=SIPGrants(call=True),
            sip_call=True,
        )

    # --- livekit-api's deprecated names (each warns, then calls the new one) ----------------

    create_sip_inbound_trunk = _deprecated("create_inbound_trunk")
    update_sip_inbound_trunk = _deprecated("update_inbound_trunk")
    update_sip_inbound_trunk_fields = _deprecated("update_inbound_trunk_fields")
    list_sip_inbound_trunk = _deprecated("list_inbound_trunk")
    create_sip_outbound_trunk = _deprecated("create_outbound_trunk")
    update_sip_outbound_trunk = _deprecated("update_outbound_trunk")
    update_sip_outbound_trunk_fields = _deprecated("update_outbound_trunk_fields")
    list_sip_outbound_trunk = _deprecated("list_outbound_trunk")
    delete_sip_trunk = _deprecated("delete_trunk")
    create_sip_dispatch_rule = _deprecated("create_dispatch_rule")
    update_sip_dispatch_rule = _deprecated("update_dispatch_rule")
    update_sip_dispatch_rule_fields = _deprecated("update_dispatch_rule_fields")
    list_sip_dispatch_rule = _deprecated("list_dispatch_rule")
    delete_sip_dispatch_rule = _deprecated("delete_dispatch_rule")
