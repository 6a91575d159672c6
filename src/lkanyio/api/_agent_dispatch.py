"""AgentDispatchService: explicit dispatches of named agents to rooms."""

from __future__ import annotations

from typing import final

from livekit.protocol.agent_dispatch import (
    AgentDispatch,
    CreateAgentDispatchRequest,
    DeleteAgentDispatchRequest,
    ListAgentDispatchRequest,
    ListAgentDispatchResponse,
)

from ._access_token import VideoGrants
from ._service import Service

__all__ = ["AgentDispatchService"]


def _admin(room: str) -> VideoGrants:
    return VideoGrants(room_admin=True, room=room)


@final
class AgentDispatchService(Service):
    """Dispatch agents (registered with an ``agent_name``) to rooms (``lkapi.agent_dispatch``)."""

    SERVICE = "AgentDispatchService"

    async def create_dispatch(self, req: CreateAgentDispatchRequest) -> AgentDispatch:
        """Dispatch the agent ``req.agent_name`` to the room ``req.room`` (created if need be)."""
        return await self._call("CreateDispatch", req, AgentDispatch, video=_admin(req.room))

    async def delete_dispatch(self, dispatch_id: str, room_name: str) -> AgentDispatch:
        """Delete a dispatch; returns it."""
        return await self._call(
            "DeleteDispatch",
            DeleteAgentDispatchRequest(dispatch_id=dispatch_id, room=room_name),
            AgentDispatch,
            video=_admin(room_name),
        )

    async def list_dispatch(self, room_name: str) -> list[AgentDispatch]:
        """The dispatches of a room."""
        response = await self._call(
            "ListDispatch",
            ListAgentDispatchRequest(room=room_name),
            ListAgentDispatchResponse,
            video=_admin(room_name),
        )
        return list(response.agent_dispatches)

    async def get_dispatch(self, dispatch_id: str, room_name: str) -> AgentDispatch | None:
        """One dispatch of a room, or ``None`` if it has none of that id."""
        response = await self._call(
            "ListDispatch",
            ListAgentDispatchRequest(dispatch_id=dispatch_id, room=room_name),
            ListAgentDispatchResponse,
            video=_admin(room_name),
        )
        return response.agent_dispatches[0] if response.agent_dispatches else None
