"""The base of the service clients: each method is one typed Twirp call."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ._access_token import SIPGrants, VideoGrants
    from ._twirp import Twirp

__all__ = ["Service"]

R = TypeVar("R", bound="Message")


class Service:
    """A client of one Twirp service of the server, sharing its :class:`LiveKitAPI`'s HTTP client.

    Not constructed by users: :class:`~lkanyio.api.LiveKitAPI` owns one of each.
    """

    SERVICE: ClassVar[str]
    """The Twirp service name (``"RoomService"``)."""

    def __init__(self, twirp: Twirp) -> None:
        self._twirp = twirp

    async def _call(
        self,
        method: str,
        request: Message,
        response_type: type[R],
        *,
        video: VideoGrants | None,
        sip: SIPGrants | None = None,
        sip_call: bool = False,
    ) -> R:
        return await self._twirp.call(
            self.SERVICE, method, request, response_type, video=video, sip=sip, sip_call=sip_call
        )
