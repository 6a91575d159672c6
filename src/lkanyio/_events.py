"""Typed room events, as received from ``room.events()``.

Events are frozen; the participants, publications and tracks they name are the room's live
objects (already updated when the event is delivered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias, final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._data_tracks import RemoteDataTrack
    from ._media._track import RemoteTrack
    from ._participant import (
        Participant,
        ParticipantPermissions,
        RemoteParticipant,
        TranscriptionSegment,
    )
    from ._publication import LocalTrackPublication, RemoteTrackPublication, TrackPublication
    from ._types import (
        ConnectionQuality,
        ConnectionState,
        DataPacketKind,
        DisconnectReason,
        EncryptionState,
    )

__all__ = [
    "ActiveSpeakersChanged",
    "ConnectionQualityChanged",
    "ConnectionStateChanged",
    "DataReceived",
    "DataTrackPublished",
    "DataTrackUnpublished",
    "Disconnected",
    "E2EEStateChanged",
    "LocalTrackPublished",
    "LocalTrackRepublished",
    "LocalTrackSubscribed",
    "LocalTrackUnpublished",
    "Moved",
    "ParticipantActive",
    "ParticipantAttributesChanged",
    "ParticipantConnected",
    "ParticipantDisconnected",
    "ParticipantEncryptionStatusChanged",
    "ParticipantMetadataChanged",
    "ParticipantNameChanged",
    "ParticipantPermissionsChanged",
    "Reconnected",
    "Reconnecting",
    "RoomEvent",
    "RoomMetadataChanged",
    "RoomSidChanged",
    "RoomUpdated",
    "SipDTMFReceived",
    "TokenRefreshed",
    "TrackMuted",
    "TrackPublished",
    "TrackSubscribed",
    "TrackSubscriptionFailed",
    "TrackUnmuted",
    "TrackUnpublished",
    "TrackUnsubscribed",
    "TranscriptionReceived",
]

@final
@dataclass(frozen=True, slots=True)
class ParticipantConnected:
    """A remote participant joined."""

    participant: RemoteParticipant


@final
@dataclass(frozen=True, slots=True)
class ParticipantDisconnected:
    """A remote participant left (it is no longer in ``room.remote_participants``)."""

    participant: RemoteParticipant
    reason: DisconnectReason


@final
@dataclass(frozen=True, slots=True)
class ParticipantActive:
    """A remote participant finished joining and is fully active."""

    participant: RemoteParticipant


@final
@dataclass(frozen=True, slots=True)
class LocalTrackPublished:
    """A track this client published is live on the server."""

    publication: LocalTrackPublication


@final
@dataclass(frozen=True, slots=True)
class LocalTrackUnpublished:
    """A track this client published was unpublished."""

    publication: LocalTrackPublication


@final
@dataclass(frozen=True, slots=True)
class LocalTrackRepublished:
    """After a full reconnect the native core published one of this client's tracks again.

    The server gave it a new sid: ``publication`` is the same object as before, now under its
    new :attr:`~lkanyio.LocalTrackPublication.sid` in ``track_publications``, and waiting for a
    subscriber again.  ``previous_sid`` is the sid it had.
    """

    publication: LocalTrackPublication
    previous_sid: str


@final
@dataclass(frozen=True, slots=True)
class LocalTrackSubscribed:
    """A remote participant subscribed to one of this client's tracks."""

    publication: LocalTrackPublication


@final
@dataclass(frozen=True, slots=True)
class TrackPublished:
    """A remote participant published a track."""

    participant: RemoteParticipant
    publication: RemoteTrackPublication


@final
@dataclass(frozen=True, slots=True)
class TrackUnpublished:
    """A remote participant unpublished a track."""

    participant: RemoteParticipant
    publication: RemoteTrackPublication


@final
@dataclass(frozen=True, slots=True)
class TrackSubscribed:
    """This client subscribed to a remote track: media can be received from ``track``."""

    participant: RemoteParticipant
    publication: RemoteTrackPublication
    track: RemoteTrack


@final
@dataclass(frozen=True, slots=True)
class TrackUnsubscribed:
    """This client unsubscribed from a remote track."""

    participant: RemoteParticipant
    publication: RemoteTrackPublication
    track: RemoteTrack


@final
@dataclass(frozen=True, slots=True)
class TrackSubscriptionFailed:
    """Subscribing to a remote track failed."""

    participant: RemoteParticipant
    track_sid: str
    error: str


@final
@dataclass(frozen=True, slots=True)
class DataTrackPublished:
    """A remote participant published a data track (subscribe with ``track.subscribe()``)."""

    participant: RemoteParticipant
    track: RemoteDataTrack


@final
@dataclass(frozen=True, slots=True)
class DataTrackUnpublished:
    """A remote participant unpublished a data track (its streams end)."""

    participant: RemoteParticipant
    track: RemoteDataTrack


@final
@dataclass(frozen=True, slots=True)
class TrackMuted:
    """A participant (local or remote) muted a track."""

    participant: Participant
    publication: TrackPublication


@final
@dataclass(frozen=True, slots=True)
class TrackUnmuted:
    """A participant (local or remote) unmuted a track."""

    participant: Participant
    publication: TrackPublication


@final
@dataclass(frozen=True, slots=True)
class ActiveSpeakersChanged:
    """The set of participants currently speaking changed (loudest first)."""

    speakers: tuple[Participant, ...]


@final
@dataclass(frozen=True, slots=True)
class RoomMetadataChanged:
    """The room's metadata changed."""

    old_metadata: str
    metadata: str


@final
@dataclass(frozen=True, slots=True)
class RoomSidChanged:
    """The room's server id became known."""

    sid: str


@final
@dataclass(frozen=True, slots=True)
class RoomUpdated:
    """The server sent the room's state anew (the room's properties are already updated).

    Measured on livekit-server v1.13.5: sent when the participant or publisher count changes
    (a few seconds after a join or a publish: the server batches these) and along with
    :class:`RoomMetadataChanged` when the metadata changes.  The fields are the counts this
    update carried.
    """

    num_participants: int
    num_publishers: int
    is_recording: bool


@final
@dataclass(frozen=True, slots=True)
class Moved:
    """The server moved this client to another room (``room.name`` and ``room.sid`` now say so).

    The server's ``MoveParticipant`` API does it; livekit-server v1.13.5 answers it with "not
    implemented" (a LiveKit Cloud feature), so lkanyio's tests feed the native core's message
    through the real dispatch path.
    """

    old_name: str
    name: str
    old_sid: str
    sid: str


@final
@dataclass(frozen=True, slots=True)
class ParticipantMetadataChanged:
    """A participant's metadata changed."""

    participant: Participant
    old_metadata: str
    metadata: str


@final
@dataclass(frozen=True, slots=True)
class ParticipantNameChanged:
    """A participant's name changed."""

    participant: Participant
    old_name: str
    name: str


@final
@dataclass(frozen=True, slots=True)
class ParticipantAttributesChanged:
    """Some of a participant's attributes changed (``changed`` has only those; "" = deleted)."""

    participant: Participant
    changed: Mapping[str, str]


@final
@dataclass(frozen=True, slots=True)
class ParticipantPermissionsChanged:
    """The server changed what a participant may do."""

    participant: Participant
    permissions: ParticipantPermissions


@final
@dataclass(frozen=True, slots=True)
class ConnectionQualityChanged:
    """A participant's connection quality changed."""

    participant: Participant
    quality: ConnectionQuality


@final
@dataclass(frozen=True, slots=True)
class ConnectionStateChanged:
    """This client's connection state changed."""

    state: ConnectionState


@final
@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection dropped; the native core is trying to resume it."""


@final
@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection was resumed."""


@final
@dataclass(frozen=True, slots=True)
class Disconnected:
    """This client left the room (the last event of every stream)."""

    reason: DisconnectReason


@final
@dataclass(frozen=True, slots=True)
class DataReceived:
    """A data packet arrived.

    ``sender_identity`` is the sender's identity as the native core names it, and
    ``participant`` the sender's object in the room.  Both are empty (``""`` and ``None``)
    when the server itself sent the packet, and also when the sender was a participant the
    native core did not know yet: livekit-server announces a participant that publishes
    nothing only on a 3 s tick, and livekit-ffi 0.13.2 names no sender it does not know
    (measured: every packet sent in a joiner's first 2.4-2.8 s arrived with an empty
    identity, the same in the official SDK).  What must name its sender from the first
    second on travels better as a data stream (``send_text``/``send_bytes``: the reader's
    ``sender_identity`` comes with the stream) or an RPC (``caller_identity``).

    Attributes:
        data: the payload.
        kind: reliable or lossy.
        participant: the sender, or ``None`` (see above).
        topic: the sender's topic.
        sender_identity: the sender's identity, or ``""`` (see above).
    """

    data: bytes
    kind: DataPacketKind
    participant: RemoteParticipant | None
    topic: str
    sender_identity: str = ""


@final
@dataclass(frozen=True, slots=True)
class SipDTMFReceived:
    """A DTMF tone event arrived.

    ``participant`` and ``sender_identity`` name the sender; they are empty when the server
    itself sent it.  livekit-ffi 0.13.2 drops a DTMF event from a participant it does not know
    yet (one that joined less than the server's 3 s announcement tick ago and publishes
    nothing; measured: it never arrives), so it is never delivered without its sender.

    Attributes:
        code: the DTMF code.
        digit: the digit.
        participant: the sender, or ``None`` (see above).
        sender_identity: the sender's identity, or ``""`` (see above).
    """

    code: int
    digit: str
    participant: RemoteParticipant | None
    sender_identity: str = ""


@final
@dataclass(frozen=True, slots=True)
class TranscriptionReceived:
    """A transcription arrived (of a remote track, or of one of this client's tracks)."""

    segments: tuple[TranscriptionSegment, ...]
    participant: Participant | None
    track_sid: str


@final
@dataclass(frozen=True, slots=True)
class E2EEStateChanged:
    """A participant's end-to-end encryption state changed."""

    participant: Participant
    state: EncryptionState


@final
@dataclass(frozen=True, slots=True)
class ParticipantEncryptionStatusChanged:
    """Whether everything a participant publishes is end-to-end encrypted changed.

    Measured: ``True`` when a participant of an E2EE room publishes its (encrypted) track,
    ``False`` again when it unpublishes it.
    """

    participant: Participant
    is_encrypted: bool


@final
@dataclass(frozen=True, slots=True)
class TokenRefreshed:
    """The server issued a fresh access token (kept out of ``repr`` and logs)."""

    token: str = field(repr=False)


RoomEvent: TypeAlias = (
    ParticipantConnected
    | ParticipantDisconnected
    | ParticipantActive
    | LocalTrackPublished
    | LocalTrackUnpublished
    | LocalTrackRepublished
    | LocalTrackSubscribed
    | TrackPublished
    | TrackUnpublished
    | TrackSubscribed
    | TrackUnsubscribed
    | TrackSubscriptionFailed
    | DataTrackPublished
    | DataTrackUnpublished
    | TrackMuted
    | TrackUnmuted
    | ActiveSpeakersChanged
    | RoomMetadataChanged
    | RoomSidChanged
    | RoomUpdated
    | Moved
    | ParticipantMetadataChanged
    | ParticipantNameChanged
    | ParticipantAttributesChanged
    | ParticipantPermissionsChanged
    | ConnectionQualityChanged
    | ConnectionStateChanged
    | Reconnecting
    | Reconnected
    | Disconnected
    | DataReceived
    | SipDTMFReceived
    | TranscriptionReceived
    | E2EEStateChanged
    | ParticipantEncryptionStatusChanged
    | TokenRefreshed
)
"""Every event ``room.events()`` can deliver."""
