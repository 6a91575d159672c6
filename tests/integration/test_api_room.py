"""lkanyio.api's RoomService and AgentDispatchService against the real server (both backends).

Each call is checked by what a connected lkanyio participant sees happen, not only by the answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, announce, joined, next_event
from lkanyio import api

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]


@pytest.fixture
async def lkapi(server_info: Any) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(server_info.url, server_info.api_key, server_info.api_secret) as c:
        yield c


async def test_rooms_are_created_listed_and_deleted(lkapi: api.LiveKitAPI, room_name: str) -> None:
    created = await lkapi.room.create_room(
        api.CreateRoomRequest(name=room_name, empty_timeout=300, metadata="m0", max_participants=7)
    )
    assert isinstance(created, api.Room)
    assert (created.name, created.metadata, created.max_participants) == (room_name, "m0", 7)
    assert created.sid.startswith("RM_")
    again = await lkapi.room.create_room(api.CreateRoomRequest(name=room_name))
    assert again.sid == created.sid  # the existing room
    listed = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[room_name]))
    assert [r.sid for r in listed.rooms] == [created.sid]
    everything = await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert created.sid in {r.sid for r in everything.rooms}
    assert isinstance(
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room_name)), api.DeleteRoomResponse
    )
    gone = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[room_name]))
    assert list(gone.rooms) == []


async def _ends_with(server_info: Any, token: str, end: Any) -> lkanyio.DisconnectReason | None:
    """Join with ``token``, have ``end()`` end the session server-side: the block's loss reason."""
    with anyio.fail_after(EVENT_WAIT), pytest.raises(lkanyio.ConnectionLostError) as info:
        async with lkanyio.connect(server_info.url, token) as room:
            await room.wait_for_sid()
            await end()
            await anyio.sleep_forever()
    return info.value.reason


async def test_deleting_a_room_disconnects_its_participants(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async def delete() -> None:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room_name))

    reason = await _ends_with(server_info, token_factory("alice", room_name), delete)
    assert reason == lkanyio.DisconnectReason.ROOM_DELETED


async def test_room_metadata_reaches_the_participants(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
        async with room.events() as events:
            updated = await lkapi.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=room_name, metadata="lights off")
            )
            assert updated.metadata == "lights off"
            changed = await next_event(events, lkanyio.RoomMetadataChanged)
            assert changed.metadata == "lights off"
            assert room.metadata == "lights off"


async def test_participants_are_listed_and_fetched_as_they_joined(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    token = token_factory("alice", room_name, name="Alice", metadata="m", attributes={"a": "1"})
    async with lkanyio.connect(server_info.url, token) as room:
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room_name))
        assert [
            (p.identity, p.name, p.metadata, dict(p.attributes)) for p in listed.participants
        ] == [("alice", "Alice", "m", {"a": "1"})]
        one = await lkapi.room.get_participant(
            api.RoomParticipantIdentity(room=room_name, identity="alice")
        )
        assert isinstance(one, api.ParticipantInfo)
        assert one.sid == room.local_participant.sid
        with pytest.raises(lkanyio.TwirpError) as info:
            await lkapi.room.get_participant(
                api.RoomParticipantIdentity(room=room_name, identity="nobody")
            )
        assert (info.value.code, info.value.status) == (api.ServerErrorCode.NOT_FOUND, 404)
        assert (info.value.service, info.value.method) == ("RoomService", "GetParticipant")
        assert str(info.value).startswith("RoomService.GetParticipant: not_found (HTTP 404)")


async def test_updating_a_participant_changes_what_it_sees_of_itself(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
        lp = room.local_participant
        async with room.events() as events:
            info = await lkapi.room.update_participant(
                api.UpdateParticipantRequest(room=room_name, identity="alice", metadata="new-meta")
            )
            assert info.metadata == "new-meta"
            meta = await next_event(events, lkanyio.ParticipantMetadataChanged)
            assert (meta.participant, meta.metadata) == (lp, "new-meta")

            info = await lkapi.room.update_participant(
                api.UpdateParticipantRequest(room=room_name, identity="alice", name="Alicia")
            )
            assert info.name == "Alicia"
            name = await next_event(events, lkanyio.ParticipantNameChanged)
            assert (name.participant, name.name, lp.name) == (lp, "Alicia", "Alicia")

            await lkapi.room.update_participant(
                api.UpdateParticipantRequest(
                    room=room_name, identity="alice", attributes={"role": "host"}
                )
            )
            attrs = await next_event(events, lkanyio.ParticipantAttributesChanged)
            assert dict(attrs.changed) == {"role": "host"}
            assert lp.attributes == {"role": "host"}

            await lkapi.room.update_participant(
                api.UpdateParticipantRequest(
                    room=room_name,
                    identity="alice",
                    permission=api.ParticipantPermission(
                        can_subscribe=True, can_publish=False, can_publish_data=False
                    ),
                )
            )
            perms = await next_event(events, lkanyio.ParticipantPermissionsChanged)
            assert perms.participant is lp
            assert (perms.permissions.can_publish, perms.permissions.can_publish_data) == (
                False,
                False,
            )


async def _published_on_the_server(
    lkapi: api.LiveKitAPI, room: str, identity: str, sid: str
) -> None:
    """Wait until the server lists track ``sid`` among ``identity``'s published tracks.

    ``publish_track`` returns when the server has accepted the track, before its media has
    arrived; between the two the server's ``MutePublishedTrack`` finds the track nowhere and
    answers with an empty ``TrackInfo`` (CI printed ``('', False)``: the server logged the call
    and "mediaTrack published" in the same millisecond).  The server lists a track only once
    it is published.
    """
    with anyio.fail_after(EVENT_WAIT):
        while True:
            info = await lkapi.room.get_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
            if any(track.sid == sid for track in info.tracks):
                return
            await anyio.sleep(0.02)


async def test_the_server_mutes_a_published_track(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with (
        lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room,
        room.events() as events,
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track,
    ):
        publication = await room.local_participant.publish_track(track)
        await _published_on_the_server(lkapi, room_name, "alice", publication.sid)
        answer = await lkapi.room.mute_published_track(
            api.MuteRoomTrackRequest(
                room=room_name, identity="alice", track_sid=publication.sid, muted=True
            )
        )
        assert (answer.track.sid, answer.track.muted) == (publication.sid, True)
        muted = await next_event(events, lkanyio.TrackMuted)
        assert muted.publication is publication
        assert publication.muted


async def test_data_sent_by_the_server_arrives_from_nobody(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        async with alice.events() as a_events, bob.events() as b_events:
            request = api.SendDataRequest(
                room=room_name,
                data=b"from the server",
                kind=api.DataPacket.Kind.RELIABLE,
                topic="news",
                destination_identities=["alice"],
            )
            await lkapi.room.send_data(request)
            assert request.nonce == b""  # the caller's message is left as it was
            got = await next_event(a_events, lkanyio.DataReceived)
            assert (got.data, got.topic, got.participant) == (b"from the server", "news", None)
            await lkapi.room.send_data(
                api.SendDataRequest(
                    room=room_name, data=b"to all", kind=api.DataPacket.Kind.RELIABLE
                )
            )
            to_all = await next_event(b_events, lkanyio.DataReceived)
            assert to_all.data == b"to all"  # bob's first packet: the targeted one skipped him


async def test_subscriptions_follow_the_servers_updates(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    manual = lkanyio.RoomOptions(auto_subscribe=False)
    async with (
        lkanyio.connect(server_info.url, token_factory("alice", room_name)) as alice,
        lkanyio.connect(server_info.url, token_factory("bob", room_name), options=manual) as bob,
        bob.events() as events,
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track,
    ):
        publication = await alice.local_participant.publish_track(track)
        await next_event(events, lkanyio.TrackPublished)
        await lkapi.room.update_subscriptions(
            api.UpdateSubscriptionsRequest(
                room=room_name, identity="bob", track_sids=[publication.sid], subscribe=True
            )
        )
        subscribed = await next_event(events, lkanyio.TrackSubscribed)
        assert subscribed.publication.sid == publication.sid
        assert subscribed.participant.identity == "alice"
        # (The server's unsubscribe, subscribe=False, answered 200 but bob saw no
        # TrackUnsubscribed within 4 s in a trial run: not asserted here.)


async def test_a_removed_participant_ends_with_connection_lost(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async def remove() -> None:
        answer = await lkapi.room.remove_participant(
            api.RoomParticipantIdentity(room=room_name, identity="alice")
        )
        assert isinstance(answer, api.RemoveParticipantResponse)

    reason = await _ends_with(server_info, token_factory("alice", room_name), remove)
    assert reason == lkanyio.DisconnectReason.PARTICIPANT_REMOVED


async def test_forwarding_and_moving_are_refused_by_this_server(
    lkapi: api.LiveKitAPI, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # LiveKit Cloud features: the open-source server answers with a Twirp error, mapped.
    async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
        await announce(room)
        for call, method in (
            (
                lkapi.room.forward_participant(
                    api.ForwardParticipantRequest(
                        room=room_name, identity="alice", destination_room="elsewhere"
                    )
                ),
                "ForwardParticipant",
            ),
            (
                lkapi.room.move_participant(
                    api.MoveParticipantRequest(
                        room=room_name, identity="alice", destination_room="elsewhere"
                    )
                ),
                "MoveParticipant",
            ),
        ):
            with pytest.raises(lkanyio.TwirpError) as info:
                await call
            assert info.value.method == method
            assert info.value.status >= 400


async def test_agent_dispatches_are_created_listed_fetched_and_deleted(
    lkapi: api.LiveKitAPI, room_name: str
) -> None:
    dispatch = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="helper", room=room_name, metadata='{"job": 1}')
    )
    assert isinstance(dispatch, api.AgentDispatch)
    assert (dispatch.agent_name, dispatch.room, dispatch.metadata) == (
        "helper",
        room_name,
        '{"job": 1}',
    )
    assert dispatch.id
    other = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="second", room=room_name)
    )
    listed = await lkapi.agent_dispatch.list_dispatch(room_name)
    assert isinstance(listed, list)
    # The room the first dispatch created has the server's default dispatch too (no agent name).
    assert {d.id for d in listed if d.agent_name} == {dispatch.id, other.id}
    fetched = await lkapi.agent_dispatch.get_dispatch(dispatch.id, room_name)
    assert fetched is not None
    assert (fetched.id, fetched.agent_name) == (dispatch.id, "helper")
    deleted = await lkapi.agent_dispatch.delete_dispatch(dispatch.id, room_name)
    assert deleted.id == dispatch.id
    left = await lkapi.agent_dispatch.list_dispatch(room_name)
    assert [d.id for d in left if d.agent_name] == [other.id]
    assert await lkapi.agent_dispatch.get_dispatch(dispatch.id, room_name) is None


async def test_a_token_with_a_room_configuration_dispatches_its_agents(
    lkapi: api.LiveKitAPI, server_info: Any, room_name: str
) -> None:
    # The join creates the room with the token's configuration: its agent dispatch is listed.
    config = api.RoomConfiguration(
        agents=[api.RoomAgentDispatch(agent_name="greeter", metadata="hi")]
    )
    token = (
        api.AccessToken(server_info.api_key, server_info.api_secret)
        .with_identity("alice")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .with_room_config(config)
        .to_jwt()
    )
    async with lkanyio.connect(server_info.url, token) as room:
        await room.wait_for_sid()
        with anyio.fail_after(EVENT_WAIT):
            while not (listed := await lkapi.agent_dispatch.list_dispatch(room_name)):
                await anyio.sleep(0.05)
        assert [(d.agent_name, d.metadata) for d in listed] == [("greeter", "hi")]
