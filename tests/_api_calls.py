"""Every server-API method livekit-api 1.2 has, with arguments, for comparing both packages.

Each entry builds fresh arguments on each use (livekit-api changes some of the requests it is
given, so the two packages must not share them).  ``M`` is livekit-protocol, the message types
both packages take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import livekit.protocol.agent_dispatch as ad
import livekit.protocol.connector_twilio as tw
import livekit.protocol.connector_whatsapp as wa
import livekit.protocol.egress as eg
import livekit.protocol.ingress as ig
import livekit.protocol.models as mo
import livekit.protocol.room as ro
import livekit.protocol.sip as sp


@dataclass(frozen=True)
class Call:
    """``lkapi.<service>.<method>(*args(), **kwargs())``."""

    service: str
    method: str
    args: Callable[[], tuple[Any, ...]]
    kwargs: Callable[[], dict[str, Any]] = dict
    deprecated: bool = False

    @property
    def id(self) -> str:
        return f"{self.service}.{self.method}"


def _file() -> eg.EncodedFileOutput:
    return eg.EncodedFileOutput(filepath="out/{room_name}.mp4")


def _inbound() -> sp.SIPInboundTrunkInfo:
    return sp.SIPInboundTrunkInfo(
        name="in", numbers=["+15550100"], allowed_addresses=["10.0.0.0/8"]
    )


def _outbound() -> sp.SIPOutboundTrunkInfo:
    return sp.SIPOutboundTrunkInfo(name="out", address="sip.example.test", numbers=["+15550101"])


def _rule() -> sp.SIPDispatchRuleInfo:
    return sp.SIPDispatchRuleInfo(
        name="rule",
        rule=sp.SIPDispatchRule(
            dispatch_rule_individual=sp.SIPDispatchRuleIndividual(room_prefix="call-")
        ),
    )


ROOM = [
    Call(
        "room",
        "create_room",
        lambda: (ro.CreateRoomRequest(name="r", empty_timeout=10, metadata="m"),),
    ),
    Call("room", "list_rooms", lambda: (ro.ListRoomsRequest(names=["r", "s"]),)),
    Call("room", "delete_room", lambda: (ro.DeleteRoomRequest(room="r"),)),
    Call(
        "room",
        "update_room_metadata",
        lambda: (ro.UpdateRoomMetadataRequest(room="r", metadata="x"),),
    ),
    Call("room", "list_participants", lambda: (ro.ListParticipantsRequest(room="r"),)),
    Call("room", "get_participant", lambda: (ro.RoomParticipantIdentity(room="r", identity="a"),)),
    Call(
        "room", "remove_participant", lambda: (ro.RoomParticipantIdentity(room="r", identity="a"),)
    ),
    Call(
        "room",
        "forward_participant",
        lambda: (ro.ForwardParticipantRequest(room="r", identity="a", destination_room="d"),),
    ),
    Call(
        "room",
        "move_participant",
        lambda: (ro.MoveParticipantRequest(room="r", identity="a", destination_room="d"),),
    ),
    Call(
        "room",
        "mute_published_track",
        lambda: (ro.MuteRoomTrackRequest(room="r", identity="a", track_sid="TR_x", muted=True),),
    ),
    Call(
        "room",
        "update_participant",
        lambda: (
            ro.UpdateParticipantRequest(
                room="r",
                identity="a",
                metadata="m",
                attributes={"k": "v"},
                permission=mo.ParticipantPermission(can_publish=True, can_subscribe=True),
            ),
        ),
    ),
    Call(
        "room",
        "update_subscriptions",
        lambda: (
            ro.UpdateSubscriptionsRequest(
                room="r", identity="a", track_sids=["TR_x"], subscribe=True
            ),
        ),
    ),
    Call(
        "room",
        "send_data",
        lambda: (
            ro.SendDataRequest(
                room="r",
                data=b"x",
                kind=mo.DataPacket.Kind.RELIABLE,
                topic="t",
                destination_identities=["a"],
            ),
        ),
    ),
]

AGENT_DISPATCH = [
    Call(
        "agent_dispatch",
        "create_dispatch",
        lambda: (ad.CreateAgentDispatchRequest(agent_name="helper", room="r", metadata="m"),),
    ),
    Call("agent_dispatch", "delete_dispatch", lambda: ("AD_x", "r")),
    Call("agent_dispatch", "list_dispatch", lambda: ("r",)),
    Call("agent_dispatch", "get_dispatch", lambda: ("AD_x", "r")),
]

EGRESS = [
    Call(
        "egress",
        "start_room_composite_egress",
        lambda: (
            eg.RoomCompositeEgressRequest(room_name="r", layout="grid", file_outputs=[_file()]),
        ),
    ),
    Call(
        "egress",
        "start_web_egress",
        lambda: (eg.WebEgressRequest(url="http://example.test", file=_file()),),
    ),
    Call(
        "egress",
        "start_participant_egress",
        lambda: (eg.ParticipantEgressRequest(room_name="r", identity="a", file_outputs=[_file()]),),
    ),
    Call(
        "egress",
        "start_track_composite_egress",
        lambda: (
            eg.TrackCompositeEgressRequest(room_name="r", audio_track_id="TR_a", file=_file()),
        ),
    ),
    Call(
        "egress",
        "start_track_egress",
        lambda: (
            eg.TrackEgressRequest(room_name="r", track_id="TR_a", websocket_url="ws://x.test"),
        ),
    ),
    Call("egress", "start_egress", lambda: (eg.StartEgressRequest(room_name="r"),)),
    Call(
        "egress",
        "update_layout",
        lambda: (eg.UpdateLayoutRequest(egress_id="EG_x", layout="speaker"),),
    ),
    Call(
        "egress",
        "update_stream",
        lambda: (eg.UpdateStreamRequest(egress_id="EG_x", add_output_urls=["rtmp://x.test/a"]),),
    ),
    Call("egress", "list_egress", lambda: (eg.ListEgressRequest(room_name="r", active=True),)),
    Call("egress", "stop_egress", lambda: (eg.StopEgressRequest(egress_id="EG_x"),)),
]

INGRESS = [
    Call(
        "ingress",
        "create_ingress",
        lambda: (
            ig.CreateIngressRequest(
                input_type=ig.IngressInput.RTMP_INPUT,
                name="in",
                room_name="r",
                participant_identity="p",
            ),
        ),
    ),
    Call(
        "ingress", "update_ingress", lambda: (ig.UpdateIngressRequest(ingress_id="IN_x", name="n"),)
    ),
    Call("ingress", "list_ingress", lambda: (ig.ListIngressRequest(room_name="r"),)),
    Call("ingress", "delete_ingress", lambda: (ig.DeleteIngressRequest(ingress_id="IN_x"),)),
]


def _sip(
    method: str,
    args: Callable[[], tuple[Any, ...]],
    kwargs: Callable[[], dict[str, Any]] = dict,
    *,
    old: str = "",
) -> list[Call]:
    calls = [Call("sip", method, args, kwargs)]
    if old:
        calls.append(Call("sip", old, args, kwargs, deprecated=True))
    return calls


SIP = [
    *_sip(
        "create_inbound_trunk",
        lambda: (sp.CreateSIPInboundTrunkRequest(trunk=_inbound()),),
        old="create_sip_inbound_trunk",
    ),
    *_sip("update_inbound_trunk", lambda: ("ST_x", _inbound()), old="update_sip_inbound_trunk"),
    *_sip(
        "update_inbound_trunk_fields",
        lambda: ("ST_x",),
        lambda: {
            "numbers": ["+15550102"],
            "allowed_numbers": ["+1555"],
            "name": "n",
            "auth_username": "u",
        },
        old="update_sip_inbound_trunk_fields",
    ),
    *_sip(
        "update_inbound_trunk_fields",
        lambda: ("ST_x",),
        lambda: {
            "allowed_addresses": mo.ListUpdate(add=["1.2.3.4"], remove=["5.6.7.8"]),
            "metadata": "m",
        },
    ),
    *_sip(
        "list_inbound_trunk",
        lambda: (sp.ListSIPInboundTrunkRequest(),),
        old="list_sip_inbound_trunk",
    ),
    *_sip(
        "create_outbound_trunk",
        lambda: (sp.CreateSIPOutboundTrunkRequest(trunk=_outbound()),),
        old="create_sip_outbound_trunk",
    ),
    *_sip("update_outbound_trunk", lambda: ("ST_x", _outbound()), old="update_sip_outbound_trunk"),
    *_sip(
        "update_outbound_trunk_fields",
        lambda: ("ST_x",),
        lambda: {
            "address": "a.test",
            "transport": sp.SIPTransport.SIP_TRANSPORT_TCP,
            "numbers": ["+1"],
        },
        old="update_sip_outbound_trunk_fields",
    ),
    *_sip(
        "update_outbound_trunk_fields",
        lambda: ("ST_x",),
        lambda: {"numbers": mo.ListUpdate(set=["+2"]), "auth_password": "p"},
    ),
    *_sip(
        "list_outbound_trunk",
        lambda: (sp.ListSIPOutboundTrunkRequest(),),
        old="list_sip_outbound_trunk",
    ),
    *_sip(
        "delete_trunk",
        lambda: (sp.DeleteSIPTrunkRequest(sip_trunk_id="ST_x"),),
        old="delete_sip_trunk",
    ),
    *_sip(
        "create_dispatch_rule",
        lambda: (sp.CreateSIPDispatchRuleRequest(dispatch_rule=_rule()),),
        old="create_sip_dispatch_rule",
    ),
    *_sip("update_dispatch_rule", lambda: ("SDR_x", _rule()), old="update_sip_dispatch_rule"),
    *_sip(
        "update_dispatch_rule_fields",
        lambda: ("SDR_x",),
        lambda: {"trunk_ids": ["ST_x"], "name": "n", "attributes": {"a": "b"}},
        old="update_sip_dispatch_rule_fields",
    ),
    *_sip(
        "list_dispatch_rule",
        lambda: (sp.ListSIPDispatchRuleRequest(),),
        old="list_sip_dispatch_rule",
    ),
    *_sip(
        "delete_dispatch_rule",
        lambda: (sp.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_x"),),
        old="delete_sip_dispatch_rule",
    ),
    *_sip(
        "create_sip_participant",
        lambda: (
            sp.CreateSIPParticipantRequest(
                sip_trunk_id="ST_x",
                sip_call_to="+15550103",
                room_name="r",
                wait_until_answered=True,
            ),
        ),
    ),
    *_sip(
        "create_sip_participant",
        lambda: (sp.CreateSIPParticipantRequest(sip_call_to="+15550104", room_name="r"),),
        lambda: {"trunk_id": "ST_y"},
    ),
    *_sip(
        "transfer_sip_participant",
        lambda: (
            sp.TransferSIPParticipantRequest(
                participant_identity="p", room_name="r", transfer_to="tel:+1"
            ),
        ),
    ),
]

CONNECTOR = [
    Call(
        "connector",
        "dial_whatsapp_call",
        lambda: (
            wa.DialWhatsAppCallRequest(
                whatsapp_phone_number_id="1", whatsapp_to_phone_number="+1", room_name="r"
            ),
        ),
    ),
    Call(
        "connector",
        "disconnect_whatsapp_call",
        lambda: (wa.DisconnectWhatsAppCallRequest(whatsapp_call_id="c"),),
    ),
    Call(
        "connector",
        "connect_whatsapp_call",
        lambda: (wa.ConnectWhatsAppCallRequest(whatsapp_call_id="c"),),
    ),
    Call(
        "connector",
        "accept_whatsapp_call",
        lambda: (wa.AcceptWhatsAppCallRequest(whatsapp_call_id="c", room_name="r"),),
    ),
    Call("connector", "connect_twilio_call", lambda: (tw.ConnectTwilioCallRequest(room_name="r"),)),
]

ALL = [*ROOM, *AGENT_DISPATCH, *EGRESS, *INGRESS, *SIP, *CONNECTOR]
SERVICES = ("room", "agent_dispatch", "egress", "ingress", "sip", "connector")
