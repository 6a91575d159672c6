"""WebRTC and data stream options of a room: ICE servers (STUN/TURN), relay-only, stream limits.

Plain frozen dataclasses checked when built, so bad input is a TypeError/ValueError here and
never reaches the native core; :class:`~lkanyio.RoomOptions` carries them into the connect
request (``RoomOptions.rtc_config`` and ``RoomOptions.data_stream`` of the protocol).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, final
from urllib.parse import urlsplit

from ._checks import check_enum, check_str, check_uint
from ._native._proto import room_pb2
from ._native._requests import wire_enum
from ._types import ContinualGatheringPolicy, IceTransportType

__all__ = ["DataStreamOptions", "IceServer", "RtcConfiguration"]

_ICE_SCHEMES: Final = frozenset({"stun", "stuns", "turn", "turns"})


def _check_urls(urls: object) -> tuple[str, ...]:
    if isinstance(urls, (str, bytes)) or not isinstance(urls, Iterable):
        raise TypeError("urls must be a sequence of URL strings (not one string)")
    checked = tuple(check_str("an ICE server URL", url) for url in urls)
    if not checked:
        raise ValueError("an IceServer needs at least one URL")
    for url in checked:
        # libwebrtc refuses a configuration with a URL it cannot parse, and the peer
        # connections with it: measured, the join fails with nothing but "engine: internal
        # webrtc failure" (no abort).  Say which URL here instead.
        scheme, _, rest = url.partition(":")
        if scheme not in _ICE_SCHEMES or not rest or rest.startswith("/"):
            raise ValueError(
                f"{url!r} is not an ICE server URL: use stun:host[:port], stuns:, turn: or "
                "turns:host[:port][?transport=udp|tcp]"
            )
        host = urlsplit(f"//{rest}").hostname
        if not host:
            raise ValueError(f"{url!r} names no host")
    return checked


@final
@dataclass(frozen=True, kw_only=True)
class IceServer:
    """A STUN or TURN server for ICE (WebRTC's ``RTCIceServer``).

    Attributes:
        urls: its ``stun:``, ``stuns:``, ``turn:`` or ``turns:`` URLs (a list is kept as a
            tuple).
        username: the TURN user name (long-term credentials).
        password: the TURN password (kept out of ``repr``).
    """

    urls: Sequence[str]
    username: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "urls", _check_urls(self.urls))
        check_str("username", self.username)
        check_str("password", self.password)
        turn = any(url.startswith(("turn:", "turns:")) for url in self.urls)
        if turn and (not self.username or not self.password):
            # libwebrtc refuses a TURN server without credentials, and the room's peer
            # connections with it (measured: "engine: internal webrtc failure" at join).
            raise ValueError("a TURN server (turn:/turns: URL) needs a username and a password")

    def _to_proto(self, out: room_pb2.IceServer) -> None:
        out.urls.extend(self.urls)
        if self.username:
            out.username = self.username
        if self.password:
            out.password = self.password


@final
@dataclass(frozen=True, kw_only=True)
class RtcConfiguration:
    """WebRTC configuration of a room's peer connections.

    Attributes:
        ice_transport_type: which candidates ICE may use; ``IceTransportType.RELAY`` sends
            everything through the TURN servers in ``ice_servers``.
        continual_gathering_policy: gather candidates once, or keep gathering.
        ice_servers: the STUN/TURN servers to use instead of those the LiveKit server offers
            (empty: the server's).  A list is kept as a tuple.

    A relay-only room whose TURN servers refuse it (wrong password, unreachable) cannot
    connect its peer connections: measured, each join attempt then ends after the native
    core's fixed 15 s peer-connection wait, and :func:`~lkanyio.connect` raises
    :class:`~lkanyio.ConnectError` saying so after ``join_retries + 1`` attempts.
    """

    ice_transport_type: IceTransportType = IceTransportType.ALL
    continual_gathering_policy: ContinualGatheringPolicy = (
        ContinualGatheringPolicy.GATHER_CONTINUALLY
    )
    ice_servers: Sequence[IceServer] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "ice_transport_type",
            check_enum("ice_transport_type", self.ice_transport_type, IceTransportType),
        )
        object.__setattr__(
            self,
            "continual_gathering_policy",
            check_enum(
                "continual_gathering_policy",
                self.continual_gathering_policy,
                ContinualGatheringPolicy,
            ),
        )
        servers: object = self.ice_servers
        if isinstance(servers, IceServer) or not isinstance(servers, Iterable):
            raise TypeError("ice_servers must be a sequence of lkanyio.IceServer")
        servers = tuple(servers)
        for server in servers:
            if not isinstance(server, IceServer):
                raise TypeError(
                    f"ice_servers must hold lkanyio.IceServer, not {type(server).__name__}"
                )
        object.__setattr__(self, "ice_servers", servers)

    def _to_proto(self, out: room_pb2.RtcConfig) -> None:
        out.ice_transport_type = wire_enum(room_pb2.IceTransportType, self.ice_transport_type)
        out.continual_gathering_policy = wire_enum(
            room_pb2.ContinualGatheringPolicy, self.continual_gathering_policy
        )
        for server in self.ice_servers:
            server._to_proto(out.ice_servers.add())


@final
@dataclass(frozen=True, kw_only=True)
class DataStreamOptions:
    """How a room receives data streams.

    Attributes:
        max_payload_byte_length: the largest stream (decompressed bytes) this client accepts;
            a bigger incoming stream ends with an error on the receiving side.  ``None``: the
            native core's default.
    """

    max_payload_byte_length: int | None = None

    def __post_init__(self) -> None:
        if self.max_payload_byte_length is not None:
            check_uint("max_payload_byte_length", self.max_payload_byte_length, minimum=1, bits=63)

    def _to_proto(self, out: room_pb2.RoomDataStreamOptions) -> None:
        if self.max_payload_byte_length is not None:
            out.max_payload_byte_length = self.max_payload_byte_length
