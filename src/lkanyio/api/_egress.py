"""Egress: recording and streaming rooms, participants and tracks."""

from __future__ import annotations

from typing import final

from livekit.protocol.egress import (
    EgressInfo,
    ListEgressRequest,
    ListEgressResponse,
    ParticipantEgressRequest,
    RoomCompositeEgressRequest,
    StartEgressRequest,
    StopEgressRequest,
    TrackCompositeEgressRequest,
    TrackEgressRequest,
    UpdateLayoutRequest,
    UpdateStreamRequest,
    WebEgressRequest,
)

from ._access_token import VideoGrants
from ._service import Service

__all__ = ["EgressService"]


def _record() -> VideoGrants:
    return VideoGrants(room_record=True)


@final
class EgressService(Service):
    """Start, update, list and stop egresses (``lkapi.egress``; needs an egress service)."""

    SERVICE = "Egress"

    async def start_room_composite_egress(self, start: RoomCompositeEgressRequest) -> EgressInfo:
        """Record or stream a whole room, composited."""
        return await self._call("StartRoomCompositeEgress", start, EgressInfo, video=_record())

    async def start_web_egress(self, start: WebEgressRequest) -> EgressInfo:
        """Record or stream a web page."""
        return await self._call("StartWebEgress", start, EgressInfo, video=_record())

    async def start_participant_egress(self, start: ParticipantEgressRequest) -> EgressInfo:
        """Record or stream one participant's tracks."""
        return await self._call("StartParticipantEgress", start, EgressInfo, video=_record())

    async def start_track_composite_egress(self, start: TrackCompositeEgressRequest) -> EgressInfo:
        """Record or stream an audio and a video track, composited."""
        return await self._call("StartTrackCompositeEgress", start, EgressInfo, video=_record())

    async def start_track_egress(self, start: TrackEgressRequest) -> EgressInfo:
        """Record or stream one track, not transcoded."""
        return await self._call("StartTrackEgress", start, EgressInfo, video=_record())

    async def start_egress(self, start: StartEgressRequest) -> EgressInfo:
        """Start an egress of any kind (the unified request)."""
        return await self._call("StartEgress", start, EgressInfo, video=_record())

    async def update_layout(self, update: UpdateLayoutRequest) -> EgressInfo:
        """Change a composite egress's layout."""
        return await self._call("UpdateLayout", update, EgressInfo, video=_record())

    async def update_stream(self, update: UpdateStreamRequest) -> EgressInfo:
        """Add or remove stream URLs of a streaming egress."""
        return await self._call("UpdateStream", update, EgressInfo, video=_record())

    async def list_egress(self, list: ListEgressRequest) -> ListEgressResponse:
        """The egresses (of a room, by id, or only the active ones)."""
        return await self._call("ListEgress", list, ListEgressResponse, video=_record())

    async def stop_egress(self, stop: StopEgressRequest) -> EgressInfo:
        """Stop an egress."""
        return await self._call("StopEgress", stop, EgressInfo, video=_record())
