"""Two livekit-server nodes sharing one Redis, and what lkanyio does when a part of it fails.

Every test places its room on node A (``cluster.nodes[0]``) through A's RoomService; alice
signals through A (the room's node), bob through B (``cluster.nodes[1]``), which relays his
signalling to A over Redis while his media ends on A.  The cluster is the worker's (one per
pytest-xdist worker, see conftest.py), made whole again before every test.

What a failure looks like, measured with livekit 1.2.0 against livekit-server v1.13.5 (README
"Running against a cluster" has the figures): relay node killed, the relayed participant's block
ends with ConnectionLostError after ~23 s and the room's node reports him gone at the same time;
room node killed, its participant's block ends after ~15 s and the relayed participant is moved
to a new room on his node after ~10 s; Redis restarted, nothing happens to a live room.
:data:`FAILURE_BOUND` is the hang guard of every fault test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import lkanyio
from _media import RATE, dominant_frequency, tone_frames
from _util import EVENT_WAIT, announce, next_event
from lkanyio.testing import LocalCluster, ServerInfo, create_room, make_token

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]


FAILURE_BOUND = 90.0
"""How long lkanyio may take to report a failed node (the hang guard of every fault test here,
as in test_reliability: the native core's 10 retries paced by 5 s stay well below it)."""



def _token(info: ServerInfo, identity: str, room: str) -> str:
    return make_token(info, identity=identity, room=room)


async def _place_on_a(cluster: LocalCluster, room: str) -> None:
    a = cluster.nodes[0]
    await anyio.to_thread.run_sync(lambda: create_room(a.info, room, node_id=cluster.node_id(0)))


@asynccontextmanager
async def _alice_on_a_bob_on_b(
    cluster: LocalCluster, room: str
) -> AsyncIterator[tuple[lkanyio.Room, lkanyio.Room]]:
    """The room on node A, alice through A, bob through B, each seeing the other."""
    a, b = cluster.nodes
    await _place_on_a(cluster, room)
    async with (
        lkanyio.connect(a.info.url, _token(a.info, "alice", room)) as alice,
        lkanyio.connect(b.info.url, _token(b.info, "bob", room)) as bob,
    ):
        await announce(bob)
        with anyio.fail_after(EVENT_WAIT):
            while "bob" not in alice.remote_participants or "alice" not in bob.remote_participants:
                await anyio.sleep(0.02)
        assert cluster.room_node(room) == 0  # bob's join did not move it: B relays to A
        yield alice, bob



async def _play(room: lkanyio.Room, hz: float, seconds: float) -> None:
    async with (
        lkanyio.AudioSource(RATE, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track(f"tone-{hz:.0f}", source) as track,
    ):
        publication = await room.local_participant.publish_track(track)
        await publication.wait_for_subscription()
        for frame in tone_frames(hz, seconds):
            await source.capture_frame(frame)
        await source.wait_for_playout()


async def _hear(events: lkanyio.EventStream[Any]) -> float:
    """The dominant frequency of the first second of tone on the next subscribed track."""
    subscribed = await next_event(events, lkanyio.TrackSubscribed)
    samples: list[int] = []
    async with lkanyio.AudioStream(subscribed.track, sample_rate=RATE) as stream:
        with anyio.fail_after(EVENT_WAIT):
            async for event in stream:
                if samples or max(event.frame.data, default=0) > 2000:
                    samples.extend(event.frame.data)
                if len(samples) >= RATE:
                    break
    return dominant_frequency(samples, RATE)


async def _data_both_ways(
    alice: lkanyio.Room,
    alice_events: lkanyio.EventStream[Any],
    bob: lkanyio.Room,
    bob_events: lkanyio.EventStream[Any],
    tag: str,
) -> None:
    await alice.local_participant.publish_data(f"a->b {tag}".encode(), topic="c")
    got = await next_event(bob_events, lkanyio.DataReceived)
    assert (got.data, got.participant and got.participant.identity) == (
        f"a->b {tag}".encode(),
        alice.local_participant.identity,
    )
    await bob.local_participant.publish_data(f"b->a {tag}".encode(), topic="c")
    back = await next_event(alice_events, lkanyio.DataReceived)
    assert (back.data, back.participant and back.participant.identity) == (
        f"b->a {tag}".encode(),
        bob.local_participant.identity,
    )


# It judges a tone's pitch: a receiver starved of CPU conceals late audio and the pitch reads off
# (516 Hz for 440 once, beside the parallel phase's 8 workers at nice 10), so it runs with the
# other real-time tests, at normal priority and one at a time.
@pytest.mark.realtime
async def test_across_two_nodes_data_rpc_audio_and_attributes_flow_both_ways(
    cluster: LocalCluster, room_name: str
) -> None:
    async with (
        _alice_on_a_bob_on_b(cluster, room_name) as (alice, bob),
        alice.events() as alice_events,
        bob.events() as bob_events,
    ):
        await _data_both_ways(alice, alice_events, bob, bob_events, "hello")

        for caller, callee in ((alice, bob), (bob, alice)):

            async def echo(data: lkanyio.RpcInvocationData) -> str:
                return f"{data.caller_identity}: {data.payload}"

            callee.local_participant.register_rpc_method("echo", echo)
            reply = await caller.local_participant.perform_rpc(
                destination_identity=callee.local_participant.identity,
                method="echo",
                payload="across nodes",
                response_timeout=10,
            )
            assert reply == f"{caller.local_participant.identity}: across nodes"

        await alice.local_participant.set_attributes({"node": "a"})
        changed = await next_event(
            bob_events,
            lkanyio.ParticipantAttributesChanged,
            lambda ev: ev.participant.identity == "alice",
        )
        assert dict(changed.changed) == {"node": "a"}
        assert dict(bob.remote_participants["alice"].attributes) == {"node": "a"}
        await bob.local_participant.set_attributes({"node": "b"})
        changed = await next_event(
            alice_events,
            lkanyio.ParticipantAttributesChanged,
            lambda ev: ev.participant.identity == "bob",
        )
        assert dict(changed.changed) == {"node": "b"}
        assert dict(alice.remote_participants["bob"].attributes) == {"node": "b"}

        heard: dict[str, float] = {}

        async def hear(name: str, events: lkanyio.EventStream[Any]) -> None:
            heard[name] = await _hear(events)

        async with anyio.create_task_group() as tg:
            tg.start_soon(_play, alice, 440.0, 3.0)
            tg.start_soon(_play, bob, 660.0, 3.0)
            tg.start_soon(hear, "bob", bob_events)
            tg.start_soon(hear, "alice", alice_events)
        assert abs(heard["bob"] - 440.0) <= 5.0
        assert abs(heard["alice"] - 660.0) <= 5.0
        assert cluster.room_node(room_name) == 0


async def _until_sees(room: lkanyio.Room, *identities: str) -> None:
    with anyio.fail_after(EVENT_WAIT):
        while not set(identities) <= set(room.remote_participants):
            await anyio.sleep(0.02)


async def test_relay_node_killed(cluster: LocalCluster, room_name: str) -> None:
    """Node B (bob's signalling relay) dies: bob's block ends with ConnectionLostError (his
    native core retries B until it gives up); alice, on the room's node, stays connected and
    sees bob leave; bob joins again through A and the exchange works."""
    a, b = cluster.nodes
    await _place_on_a(cluster, room_name)
    async with (
        lkanyio.connect(a.info.url, _token(a.info, "alice", room_name)) as alice,
        alice.events() as alice_events,
    ):
        with anyio.fail_after(FAILURE_BOUND):
            with pytest.raises(lkanyio.ConnectionLostError) as lost:
                async with lkanyio.connect(b.info.url, _token(b.info, "bob", room_name)) as bob:
                    await announce(bob)
                    await _until_sees(bob, "alice")
                    await _until_sees(alice, "bob")
                    assert cluster.room_node(room_name) == 0
                    await anyio.to_thread.run_sync(b.kill)
                    await anyio.sleep_forever()  # until the lost connection cancels the block
            await next_event(
                alice_events,
                lkanyio.ParticipantDisconnected,
                lambda ev: ev.participant.identity == "bob",
            )
        assert isinstance(lost.value.reason, lkanyio.DisconnectReason)
        assert not bob.connected
        assert "bob" not in alice.remote_participants
        assert alice.connection_state == lkanyio.ConnectionState.CONNECTED
        await alice.local_participant.set_attributes({"after": "b died"})
        assert alice.local_participant.attributes["after"] == "b died"

        async with (
            lkanyio.connect(a.info.url, _token(a.info, "bob", room_name)) as bob_again,
            bob_again.events() as bob_again_events,
        ):
            await announce(bob_again)
            await _until_sees(bob_again, "alice")
            await _until_sees(alice, "bob")
            await _data_both_ways(alice, alice_events, bob_again, bob_again_events, "again")
            assert dict(bob_again.remote_participants["alice"].attributes) == {"after": "b died"}
        assert cluster.room_node(room_name) == 0
    assert not alice.connected


@asynccontextmanager
async def _member(
    url: str, info: ServerInfo, identity: str, room_name: str, outcome: dict[str, Any]
) -> AsyncIterator[lkanyio.Room]:
    """Join; on leaving, record in ``outcome[identity]`` how the block ended ("left" or the
    ConnectionLostError) instead of raising it."""
    try:
        async with lkanyio.connect(url, _token(info, identity, room_name)) as room:
            yield room
        outcome[identity] = "left"
    except lkanyio.ConnectionLostError as exc:
        outcome[identity] = exc


async def test_room_node_killed(cluster: LocalCluster, room_name: str) -> None:
    """Node A (the room's node, alice's signalling node) dies.  Alice's block ends with
    ConnectionLostError once her native core gives up on A.  Bob's node B notices that A is gone,
    his native core reconnects through B, and as A has stopped reporting to Redis (5 s), B
    places the room anew on itself: bob sees Reconnecting, alice leave, then Reconnected, and
    stays in the (now empty) room on node B."""
    a, b = cluster.nodes
    await _place_on_a(cluster, room_name)
    outcome: dict[str, Any] = {}
    with anyio.fail_after(FAILURE_BOUND):
        async with _member(b.info.url, b.info, "bob", room_name, outcome) as bob:
            async with bob.events() as bob_events:
                async with _member(a.info.url, a.info, "alice", room_name, outcome) as alice:
                    await announce(alice)
                    await _until_sees(alice, "bob")
                    await _until_sees(bob, "alice")
                    await anyio.to_thread.run_sync(a.kill)
                    await anyio.sleep_forever()  # until the lost connection cancels the block
                assert isinstance(outcome["alice"], lkanyio.ConnectionLostError), outcome
                assert not alice.connected
                await next_event(bob_events, lkanyio.Reconnecting)
                left = await next_event(bob_events, lkanyio.ParticipantDisconnected)
                assert left.participant.identity == "alice"
                await next_event(bob_events, lkanyio.Reconnected)
            assert bob.connection_state == lkanyio.ConnectionState.CONNECTED
            assert cluster.room_node(room_name) == 1
            assert "alice" not in bob.remote_participants
            await bob.local_participant.set_attributes({"on": "b"})
        assert outcome["bob"] == "left"


async def test_redis_restarted_under_a_live_room(cluster: LocalCluster, room_name: str) -> None:
    """Redis is killed and started again, empty, while alice (through A) and bob (through B)
    are in the room.  Measured: nothing reaches either client, both stay connected and data,
    RPC and attributes keep flowing through B's relay; the nodes register again in Redis, but
    the room's placement (``room_node_map``) is gone until the room is placed again."""
    a, b = cluster.nodes
    await _place_on_a(cluster, room_name)
    outcome: dict[str, Any] = {}
    with anyio.fail_after(FAILURE_BOUND):
        async with (
            _member(a.info.url, a.info, "alice", room_name, outcome) as alice,
            _member(b.info.url, b.info, "bob", room_name, outcome) as bob,
            alice.events() as alice_events,
            bob.events() as bob_events,
        ):
            await announce(bob)
            await _until_sees(alice, "bob")
            await _until_sees(bob, "alice")
            await anyio.to_thread.run_sync(cluster.redis.kill)
            await anyio.to_thread.run_sync(cluster.redis.start)
            # The nodes write their registry entries again within their stats interval.
            await anyio.to_thread.run_sync(cluster.start)
            assert cluster.room_node(room_name) is None

            await _data_both_ways(alice, alice_events, bob, bob_events, "after redis")

            async def echo(data: lkanyio.RpcInvocationData) -> str:
                return data.payload

            alice.local_participant.register_rpc_method("echo", echo)
            reply = await bob.local_participant.perform_rpc(
                destination_identity="alice", method="echo", payload="relay", response_timeout=10
            )
            assert reply == "relay"
            await bob.local_participant.set_attributes({"redis": "restarted"})
            changed = await next_event(
                alice_events,
                lkanyio.ParticipantAttributesChanged,
                lambda ev: ev.participant.identity == "bob",
            )
            assert dict(changed.changed) == {"redis": "restarted"}
            assert alice.connection_state == lkanyio.ConnectionState.CONNECTED
            assert bob.connection_state == lkanyio.ConnectionState.CONNECTED
    assert outcome == {"alice": "left", "bob": "left"}
