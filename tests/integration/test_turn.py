"""Relay-only rooms through a real TURN server (coturn in the test namespace), and RoomOptions.

Both participants join with ``IceTransportType.RELAY`` and the coturn server's long-term
credentials in ``rtc_config``: every candidate they gather is relayed by that server, so audio
and data that arrive prove the relayed path, and ``get_rtc_stats`` shows it (the selected
candidate pair's local candidate is a relay candidate of that TURN URL).  livekit-server runs
without its own TURN (LocalServer never enables it), so no other relay could be in use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
import pytest

import lkanyio
from _media import RATE, tone_frames
from _util import EVENT_WAIT, TokenFactory, announce, joined, next_event
from lkanyio.testing import LocalServer, LocalTurn

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

# Measured (livekit-ffi 0.13.2): with the TURN server refusing the password, each join attempt
# ends after the native core's fixed 15 s wait for the peer connection.  The tests join with
# join_retries=0 (one attempt); the bound is a hang guard on top of that wait.
NATIVE_PC_WAIT = 15.0
NATIVE_CONNECT_TIMEOUT = 5.0
"""The native core's limit per signalling attempt when RoomOptions.connect_timeout is None."""


@pytest.fixture(scope="module")
def turn(livekit_server: LocalServer | None) -> Iterator[LocalTurn]:
    """coturn on the namespace's PEER_IP: it exists only with the local harness."""
    if livekit_server is None:
        reason = "the TURN server runs in the local harness's namespace: it needs the local server"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with LocalTurn() as server:
        yield server



def relay_only(
    turn: LocalTurn, *, password: str | None = None, **options: Any
) -> lkanyio.RoomOptions:
    return lkanyio.RoomOptions(
        rtc_config=lkanyio.RtcConfiguration(
            ice_transport_type=lkanyio.IceTransportType.RELAY,
            ice_servers=[turn.ice_server(password=password)],
        ),
        **options,
    )



def selected_local_candidates(stats: lkanyio.TrackStats) -> list[lkanyio.StatsReport]:
    """The local candidate of each transport's selected candidate pair."""
    pairs = {r.id: r for r in stats.of_type("candidate_pair")}
    locals_ = {r.id: r for r in stats.of_type("local_candidate")}
    found = []
    for transport in stats.of_type("transport"):
        pair = pairs.get(str(transport.get("selected_candidate_pair_id", "")))
        if pair is not None and pair["local_candidate_id"] in locals_:
            found.append(locals_[str(pair["local_candidate_id"])])
    return found


async def wait_relayed(room: lkanyio.Room, side: str, turn: LocalTurn) -> lkanyio.StatsReport:
    """Wait until ``side``'s connection has a selected pair, and return its local candidate."""
    with anyio.fail_after(EVENT_WAIT):
        while True:
            chosen = selected_local_candidates(getattr(await room.get_rtc_stats(), side))
            if chosen:
                (candidate,) = chosen
                return candidate
            await anyio.sleep(0.1)


async def publish_tone(room: lkanyio.Room, done: anyio.Event) -> None:
    async with lkanyio.AudioSource(RATE, 1) as source:
        async with lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track:
            publication = await room.local_participant.publish_track(track)
            await publication.wait_for_subscription()
            frames = tone_frames(440, 0.5)
            while not done.is_set():
                for frame in frames:
                    await source.capture_frame(frame)


async def test_relay_only_rooms_exchange_audio_and_data_through_turn(
    server_info: Any, token_factory: TokenFactory, room_name: str, turn: LocalTurn
) -> None:
    # Two peer connections (the single-connection case is below), so each side's own
    # connection is checked for the relay.
    options = relay_only(turn, single_peer_connection=False)
    async with joined(
        server_info, token_factory, room_name, "alice", "bob", options=options
    ) as (alice, bob):
        async with bob.events() as events, anyio.create_task_group() as tg:
            done = anyio.Event()
            tg.start_soon(publish_tone, alice, done)
            subscribed = await next_event(events, lkanyio.TrackSubscribed)
            async with lkanyio.AudioStream(subscribed.track, sample_rate=RATE) as stream:
                with anyio.fail_after(EVENT_WAIT):
                    async for event in stream:
                        if max(event.frame.data, default=0) > 2000:
                            break  # the tone itself came through the relay
            await alice.local_participant.publish_data(b"through the relay", topic="turn")
            received = await next_event(events, lkanyio.DataReceived, lambda e: e.topic == "turn")
            assert received.data == b"through the relay"
            assert received.participant is not None
            assert received.participant.identity == "alice"
            # Both ends of the media path were relayed by this TURN server: alice publishes, bob
            # subscribes.
            for room, side in ((alice, "publisher"), (bob, "subscriber")):
                candidate = await wait_relayed(room, side, turn)
                assert candidate["candidate_type"] == "RELAY", candidate.values
                assert candidate["url"] == turn.url, candidate.values
                assert candidate["address"] == turn.ip, candidate.values
            done.set()


async def test_wrong_turn_credentials_fail_the_join_and_say_so(
    server_info: Any, token_factory: TokenFactory, turn: LocalTurn
) -> None:
    options = relay_only(turn, password="not-" + turn.password, join_retries=0)
    with anyio.fail_after(NATIVE_PC_WAIT + EVENT_WAIT):
        with pytest.raises(lkanyio.ConnectError) as caught:
            async with lkanyio.connect(server_info.url, token_factory("alice"), options=options):
                pytest.fail("a relay-only room joined through a TURN server that refused it")
    message = str(caught.value)
    assert "wait_pc_connection timed out" in message  # the native core's own words
    assert "relay-only" in message
    assert turn.url in message
    assert "password" in message
    assert turn.password not in message
    # The refusal is the TURN server's: it saw the allocation and refused the credentials.
    assert "credentials are incorrect" in turn.log_tail(400)


async def test_single_peer_connection_joins_and_exchanges_data(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    options = lkanyio.RoomOptions(single_peer_connection=True)
    async with joined(
        server_info, token_factory, room_name, "alice", "bob", options=options
    ) as (alice, bob):
        async with bob.events() as events:
            await alice.local_participant.publish_data(b"one connection", topic="spc")
            received = await next_event(events, lkanyio.DataReceived, lambda e: e.topic == "spc")
            assert received.data == b"one connection"
        # Measured: the one connection reports as the publisher's; the subscriber has none.
        for room in (alice, bob):
            stats = await room.get_rtc_stats()
            assert stats.publisher.of_type("transport")
            assert stats.subscriber.reports == ()


async def test_relay_only_with_a_single_peer_connection(
    server_info: Any, token_factory: TokenFactory, room_name: str, turn: LocalTurn
) -> None:
    options = relay_only(turn, single_peer_connection=True)
    async with joined(
        server_info, token_factory, room_name, "alice", "bob", options=options
    ) as (alice, bob):
        async with bob.events() as events:
            await alice.local_participant.publish_data(b"relayed, one pc", topic="spc")
            received = await next_event(events, lkanyio.DataReceived, lambda e: e.topic == "spc")
            assert received.data == b"relayed, one pc"
        for room in (alice, bob):
            candidate = await wait_relayed(room, "publisher", turn)
            assert candidate["candidate_type"] == "RELAY", candidate.values
            assert candidate["url"] == turn.url, candidate.values


async def test_connect_timeout_bounds_each_signalling_attempt(
    server_info: Any, token_factory: TokenFactory
) -> None:
    # A listener that accepts and never answers the WebSocket upgrade: a signalling attempt
    # can only end by its timeout.  Measured (livekit-ffi 0.13.2, join_retries=0): the native
    # core opens two connections here one after the other (the WebSocket, then its HTTP
    # validation request), gives each up after connect_timeout, and fails the join ~3 s later
    # with "signal failure: transport timed out" (or "signal connection timed out").  At the
    # native default (5 s) that cannot happen before 10 s: the bound tells the limit applied.
    attempts = 0

    async def silent(stream: anyio.abc.SocketStream) -> None:
        nonlocal attempts
        attempts += 1
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    options = lkanyio.RoomOptions(connect_timeout=0.05, join_retries=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        with anyio.fail_after(2 * NATIVE_CONNECT_TIMEOUT):
            with pytest.raises(lkanyio.ConnectError, match="timed out"):
                async with lkanyio.connect(f"ws://127.0.0.1:{port}", "token", options=options):
                    pytest.fail("joined a server that never answered")
        tg.cancel_scope.cancel()
    assert attempts == 2
    # A generous limit joins a real server as usual.
    options = lkanyio.RoomOptions(connect_timeout=30)
    async with lkanyio.connect(server_info.url, token_factory("alice"), options=options) as room:
        assert room.connected


async def test_max_payload_byte_length_ends_a_bigger_incoming_stream(
    server_info: Any, token_factory: TokenFactory
) -> None:
    options = lkanyio.RoomOptions(
        data_stream=lkanyio.DataStreamOptions(max_payload_byte_length=1000)
    )
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(
            lkanyio.connect(server_info.url, token_factory("alice"))
        )
        bob = await stack.enter_async_context(
            lkanyio.connect(server_info.url, token_factory("bob"), options=options)
        )
        await announce(bob)
        with anyio.fail_after(EVENT_WAIT):
            while "bob" not in alice.remote_participants:
                await anyio.sleep(0.02)
        async with bob.text_streams("limit") as readers:
            await alice.local_participant.send_text("small", topic="limit")
            with anyio.fail_after(EVENT_WAIT):
                async with await readers.receive() as reader:
                    assert await reader.read_all() == "small"
            await alice.local_participant.send_text("x" * 5000, topic="limit")
            with anyio.fail_after(EVENT_WAIT):
                async with await readers.receive() as reader:
                    # Measured: the native core ends the stream with this message.
                    with pytest.raises(lkanyio.DataStreamError, match="exceeds maximum size"):
                        await reader.read_all()
