"""RoomOptions' WebRTC and data stream options: checked before the native core, mapped to its
protocol (the behaviour on a real server and through TURN: tests/integration/test_turn.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

import lkanyio


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (0.0004, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        (86_401, ValueError),
        (True, TypeError),
        ("5", TypeError),
        (None, None),
    ],
)
def test_connect_timeout_bad_input(value: object, error: type[Exception] | None) -> None:
    if error is None:
        assert lkanyio.RoomOptions(connect_timeout=None).connect_timeout is None
        return
    with pytest.raises(error, match="connect_timeout"):
        lkanyio.RoomOptions(connect_timeout=value)  # type: ignore[arg-type]


def test_room_options_map_to_the_native_request() -> None:
    from lkanyio._native._proto import room_pb2

    options = lkanyio.RoomOptions(
        rtc_config=lkanyio.RtcConfiguration(
            ice_transport_type=lkanyio.IceTransportType.NOHOST,
            continual_gathering_policy=lkanyio.ContinualGatheringPolicy.GATHER_ONCE,
            ice_servers=[
                lkanyio.IceServer(urls=["stun:10.0.0.1:3478"]),
                lkanyio.IceServer(urls=["turn:10.0.0.1?transport=tcp"], username="u", password="p"),
            ],
        ),
        connect_timeout=2.5,
        single_peer_connection=True,
        data_stream=lkanyio.DataStreamOptions(max_payload_byte_length=1 << 20),
    )
    out = room_pb2.RoomOptions()
    options._to_proto(out)
    assert out.rtc_config.ice_transport_type == room_pb2.TRANSPORT_NOHOST
    assert out.rtc_config.continual_gathering_policy == room_pb2.GATHER_ONCE
    assert [list(s.urls) for s in out.rtc_config.ice_servers] == [
        ["stun:10.0.0.1:3478"],
        ["turn:10.0.0.1?transport=tcp"],
    ]
    assert not out.rtc_config.ice_servers[0].HasField("username")
    assert (out.rtc_config.ice_servers[1].username, out.rtc_config.ice_servers[1].password) == (
        "u",
        "p",
    )
    assert out.connect_timeout_ms == 2500
    assert out.single_peer_connection is True
    assert out.data_stream.max_payload_byte_length == 1 << 20
    # Left unset, the native core's defaults apply (no rtc_config: the server's ICE servers).
    plain = room_pb2.RoomOptions()
    lkanyio.RoomOptions()._to_proto(plain)
    assert not plain.HasField("rtc_config")
    assert not plain.HasField("connect_timeout_ms")
    assert not plain.HasField("data_stream")
    # Unset too: the native core's default is one peer connection (false, sent, makes two).
    assert not plain.HasField("single_peer_connection")
    two = room_pb2.RoomOptions()
    lkanyio.RoomOptions(single_peer_connection=False)._to_proto(two)
    assert two.HasField("single_peer_connection")
    assert two.single_peer_connection is False
    # Frozen and hashable: lists given are kept as tuples.
    assert isinstance(options.rtc_config, lkanyio.RtcConfiguration)
    assert isinstance(options.rtc_config.ice_servers, tuple)
    assert hash(options.rtc_config)
    assert "p" not in repr(options.rtc_config.ice_servers[1]).split("username")[1]


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: lkanyio.IceServer(urls="turn:h"), TypeError, "sequence"),
        (lambda: lkanyio.IceServer(urls=[]), ValueError, "at least one"),
        (lambda: lkanyio.IceServer(urls=[b"stun:h"]), TypeError, "str"),
        (lambda: lkanyio.IceServer(urls=["http://h"]), ValueError, "not an ICE server URL"),
        (lambda: lkanyio.IceServer(urls=["STUN:h"]), ValueError, "not an ICE server URL"),
        (lambda: lkanyio.IceServer(urls=["turn:"]), ValueError, "not an ICE server URL"),
        (lambda: lkanyio.IceServer(urls=["turn:?transport=udp"]), ValueError, "no host"),
        (lambda: lkanyio.IceServer(urls=["turn:h"]), ValueError, "username and a password"),
        (lambda: lkanyio.IceServer(urls=["turn:h"], username="u"), ValueError, "password"),
        (lambda: lkanyio.IceServer(urls=["stun:h"], username=1), TypeError, "username"),
        (lambda: lkanyio.IceServer(urls=["stun:\ud800"]), ValueError, "surrogate"),
        (lambda: lkanyio.RtcConfiguration(ice_transport_type=7), ValueError, "IceTransportType"),
        (lambda: lkanyio.RtcConfiguration(ice_transport_type="relay"), TypeError, "IceTransport"),
        (
            lambda: lkanyio.RtcConfiguration(continual_gathering_policy=5),
            ValueError,
            "ContinualGatheringPolicy",
        ),
        (
            lambda: lkanyio.RtcConfiguration(ice_servers=lkanyio.IceServer(urls=["stun:h"])),
            TypeError,
            "sequence",
        ),
        (lambda: lkanyio.RtcConfiguration(ice_servers=["stun:h"]), TypeError, "IceServer"),
        (lambda: lkanyio.RoomOptions(rtc_config={}), TypeError, "RtcConfiguration"),
        (lambda: lkanyio.RoomOptions(single_peer_connection=1), TypeError, "single_peer"),
        (lambda: lkanyio.RoomOptions(data_stream=1), TypeError, "DataStreamOptions"),
        (lambda: lkanyio.DataStreamOptions(max_payload_byte_length=0), ValueError, "max_payload"),
        (lambda: lkanyio.DataStreamOptions(max_payload_byte_length=1.5), TypeError, "max_payload"),
        (
            lambda: lkanyio.DataStreamOptions(max_payload_byte_length=1 << 64),
            ValueError,
            "max_payload",
        ),
    ],
)
def test_rtc_config_and_data_stream_bad_input(
    make: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        make()
