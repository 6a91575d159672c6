"""Ingress: RTMP, WHIP and URL inputs published into rooms."""

from __future__ import annotations

from typing import final

from livekit.protocol.ingress import (
    CreateIngressRequest,
    DeleteIngressRequest,
    IngressInfo,
    ListIngressRequest,
    ListIngressResponse,
    UpdateIngressRequest,
)

from ._access_token import VideoGrants
from ._service import Service

__all__ = ["IngressService"]


def _admin() -> VideoGrants:
    return VideoGrants(ingress_admin=True)


@final
class IngressService(Service):
    """Create, update, list and delete ingresses (``lkapi.ingress``; needs an ingress service)."""

    SERVICE = "Ingress"

    async def create_ingress(self, create: CreateIngressRequest) -> IngressInfo:
        """Create an ingress."""
        return await self._call("CreateIngress", create, IngressInfo, video=_admin())

    async def update_ingress(self, update: UpdateIngressRequest) -> IngressInfo:
        """Change an ingress."""
        return await self._call("UpdateIngress", update, IngressInfo, video=_admin())

    async def list_ingress(self, list: ListIngressRequest) -> ListIngressResponse:
        """The ingresses (of a room, or by id)."""
        return await self._call("ListIngress", list, ListIngressResponse, video=_admin())

    async def delete_ingress(self, delete: DeleteIngressRequest) -> IngressInfo:
        """Delete an ingress."""
        return await self._call("DeleteIngress", delete, IngressInfo, video=_admin())
