"""RoomService: rooms and their participants, tracks, metadata and data."""

from __future__ import annotations

import uuid
from typing import final

from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import (
    CreateRoomRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ForwardParticipantRequest,
    ForwardParticipantResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
    MoveParticipantRequest,
    MoveParticipantResponse,
    MuteRoomTrackRequest,
    MuteRoomTrackResponse,
    RemoveParticipantResponse,
    RoomParticipantIdentity,
    SendDataRequest,
    SendDataResponse,
    UpdateParticipantRequest,
    UpdateRoomMetadataRequest,
    UpdateSubscriptionsRequest,
    UpdateSubscriptionsResponse,
)

from ._access_token import VideoGrants
from ._service import Service

__all__ = ["RoomService"]


def _admin(room: str, destination_room: str | None = None) -> VideoGrants:
    return VideoGrants(room_admin=True, room=room, destination_room=destination_room)


@final
class RoomService(Service):
    """Create, list and delete rooms; manage their participants (``lkapi.room``).

    Every method takes and returns livekit-protocol messages, as livekit-api's do.
    """

    SERVICE = "RoomService"

    async def create_room(self, create: CreateRoomRequest) -> Room:
        """Create a room (or return the existing one of that name)."""
        return await self._call("CreateRoom", create, Room, video=VideoGrants(room_create=True))

    async def list_rooms(self, list: ListRoomsRequest) -> ListRoomsResponse:
        """The active rooms (all, or those ``list.names`` names)."""
        return await self._call(
            "ListRooms", list, ListRoomsResponse, video=VideoGrants(room_list=True)
        )

    async def delete_room(self, delete: DeleteRoomRequest) -> DeleteRoomResponse:
        """Delete a room: every participant is disconnected."""
        return await self._call(
            "DeleteRoom", delete, DeleteRoomResponse, video=VideoGrants(room_create=True)
        )

    async def update_room_metadata(self, update: UpdateRoomMetadataRequest) -> Room:
        """Set a room's metadata (every participant sees the change)."""
        return await self._call("UpdateRoomMetadata", update, Room, video=_admin(update.room))

    async def list_participants(
        self,
        list: ListParticipantsRequest,
    ) -> ListParticipantsResponse:
        """The participants of a room."""
        return await self._call(
            "ListParticipants", list, ListParticipantsResponse, video=_admin(list.room)
        )

    async def get_participant(self, get: RoomParticipantIdentity) -> ParticipantInfo:
        """One participant of a room."""
        return await self._call("GetParticipant", get, ParticipantInfo, video=_admin(get.room))

    async def remove_participant(
        self, remove: RoomParticipantIdentity
    ) -> RemoveParticipantResponse:
        """Disconnect a participant from a room (it can join again with a token)."""
        return await self._call(
            "RemoveParticipant", remove, RemoveParticipantResponse, video=_admin(remove.room)
        )

    async def forward_participant(self, forward: ForwardParticipantRequest) -> None:
        """Forward a participant and its tracks to another room (LiveKit Cloud only)."""
        await self._call(
            "ForwardParticipant",
            forward,
            ForwardParticipantResponse,
            video=_admin(forward.room, forward.destination_room),
        )

    async def move_participant(self, move: MoveParticipantRequest) -> None:
        """Move a participant to another room (LiveKit Cloud only)."""
        await self._call(
            "MoveParticipant",
            move,
            MoveParticipantResponse,
            video=_admin(move.room, move.destination_room),
        )

    async def mute_published_track(self, update: MuteRoomTrackRequest) -> MuteRoomTrackResponse:
        """Mute or unmute a participant's published track.

        The server answers with the track's new ``TrackInfo``, or an empty one when it does not
        list the track as published yet: a track whose ``publish_track`` has just returned
        may still be on its way (its media not set up).  When the answer matters, wait until
        the track is in :meth:`get_participant`'s ``tracks`` first.
        """
        return await self._call(
            "MutePublishedTrack", update, MuteRoomTrackResponse, video=_admin(update.room)
        )

    async def update_participant(self, update: UpdateParticipantRequest) -> ParticipantInfo:
        """Change a participant's name, metadata, attributes or permissions."""
        return await self._call(
            "UpdateParticipant", update, ParticipantInfo, video=_admin(update.room)
        )

    async def update_subscriptions(
        self, update: UpdateSubscriptionsRequest
    ) -> UpdateSubscriptionsResponse:
        """Subscribe a participant to tracks, or unsubscribe it."""
        return await self._call(
            "UpdateSubscriptions", update, UpdateSubscriptionsResponse, video=_admin(update.room)
        )

    async def send_data(self, send: SendDataRequest) -> SendDataResponse:
        """Send a data packet to a room's participants (all, or those named).

        A fresh ``nonce`` goes with it (the server drops a packet whose nonce it saw), unless
        ``send`` has one; ``send`` itself is left as it is.
        """
        request = SendDataRequest()
        request.CopyFrom(send)
        if not request.nonce:
            request.nonce = uuid.uuid4().bytes
        return await self._call("SendData", request, SendDataResponse, video=_admin(send.room))
