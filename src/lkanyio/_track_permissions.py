"""Who may subscribe to the local participant's tracks (``set_track_subscription_permissions``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._checks import check_bool, check_str
from ._native._bridge import get_bridge

if TYPE_CHECKING:
    from ._port import RoomPort

__all__ = ["ParticipantTrackPermission", "set_track_subscription_permissions"]


@final
@dataclass(frozen=True, kw_only=True)
class ParticipantTrackPermission:
    """Which of the local participant's tracks one remote participant may subscribe to.

    Attributes:
        participant_identity: the remote participant this applies to.
        allow_all: every track, present and future (``allowed_track_sids`` is then ignored).
        allowed_track_sids: the sids of the tracks it may subscribe to (when not ``allow_all``).
    """

    participant_identity: str
    allow_all: bool = False
    allowed_track_sids: Sequence[str] = ()

    def __post_init__(self) -> None:
        check_str("participant_identity", self.participant_identity)
        check_bool("allow_all", self.allow_all)
        if isinstance(self.allowed_track_sids, (str, bytes)):
            raise TypeError("allowed_track_sids must be a sequence of track sids, not one string")
        sids = tuple(self.allowed_track_sids)
        for sid in sids:
            check_str("a track sid", sid)
        object.__setattr__(self, "allowed_track_sids", sids)


def set_track_subscription_permissions(
    port: RoomPort,
    *,
    allow_all: bool,
    participant_permissions: Sequence[ParticipantTrackPermission],
) -> None:
    """See ``LocalParticipant.set_track_subscription_permissions``."""
    check_bool("allow_all", allow_all)
    permissions: object = participant_permissions
    if not isinstance(permissions, Sequence) or isinstance(permissions, (str, bytes)):
        raise TypeError("participant_permissions must be a sequence of ParticipantTrackPermission")
    for permission in participant_permissions:
        if not isinstance(permission, ParticipantTrackPermission):
            raise TypeError(
                "participant_permissions must hold lkanyio.ParticipantTrackPermission, not "
                f"{type(permission).__name__}"
            )
    req = port.request()
    msg = req.set_track_subscription_permissions
    msg.local_participant_handle = port.local_handle()
    msg.all_participants_allowed = allow_all
    for permission in participant_permissions:
        out = msg.permissions.add()
        out.participant_identity = permission.participant_identity
        out.allow_all = permission.allow_all
        out.allowed_track_sids.extend(permission.allowed_track_sids)
    # Synchronous in the native core: it stores the permissions and sends them to the server
    # in the background; the server's verdict reaches the subscribers as room events.
    get_bridge().request(req)
