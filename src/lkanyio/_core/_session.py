"""RoomSession: the one owner of a room's state, changed by native events and request answers.

The room's state is what the native core has told lkanyio: the room's info, the connection
state, the participants (local and remote), their publications, subscribed tracks and data
tracks.  :class:`RoomSession` holds all of it and is its only writer.  The public objects
(``RemoteParticipant``, ``RemoteTrackPublication`` ...) are views: each reads a state record the
session owns (:class:`ParticipantRecord`, :class:`RemotePublicationRecord`,
:class:`LocalPublicationRecord`), and keeps its identity for as long as the session knows it.

Sans-IO: :meth:`RoomSession.apply` takes one room event (a protocol message) and returns the
public events to emit; it never calls the native bridge, anyio or trio.  Native handles come in
through an injected :class:`Adopter` (the room's shell passes one that builds the public objects
around owned native handles; the unit tests pass a recorder), and every handle the session
adopted is closed by it exactly once: when its object leaves the room, or when the room closes
(:meth:`RoomSession.close`).  ``tests/unit/test_session.py`` drives it with hypothesis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from .. import _events as ev
from .._types import (
    ConnectionQuality,
    ConnectionState,
    DataPacketKind,
    DisconnectReason,
    EncryptionState,
)

if TYPE_CHECKING:
    from _lkffi_proto import data_track_pb2

    from .._data_tracks import LocalDataTrack, RemoteDataTrack
    from .._media._track import LocalTrack, RemoteTrack
    from .._native._proto import (
        handle_pb2,
        participant_pb2,
        room_pb2,
        track_pb2,
    )
    from .._participant import (
        LocalParticipant,
        Participant,
        ParticipantPermissions,
        RemoteParticipant,
        TranscriptionSegment,
    )
    from .._publication import (
        LocalTrackPublication,
        RemoteTrackPublication,
        TrackPublication,
    )

__all__ = [
    "Adopter",
    "LocalPublicationRecord",
    "NativeHandle",
    "LocalRecord",
    "ParticipantRecord",
    "RemotePublicationRecord",
    "RemoteRecord",
    "RoomSession",
]

class NativeHandle(Protocol):
    """An owned native handle: its id until closed, closed exactly once."""

    @property
    def id(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class ParticipantRecord:
    """What is known of one participant (its view reads it; the session writes it)."""

    handle: NativeHandle
    info: participant_pb2.ParticipantInfo
    quality: ConnectionQuality | None = None
    """``None`` until the server's first report (measured: about 3 s after joining)."""


@dataclass(eq=False)
class RemoteRecord(ParticipantRecord):
    """A remote participant: its publications and data tracks by sid."""

    publications: dict[str, RemoteTrackPublication] = field(default_factory=dict)
    data_tracks: dict[str, RemoteDataTrack] = field(default_factory=dict)


@dataclass(eq=False)
class LocalRecord(ParticipantRecord):
    """This client: its publications and data tracks by sid."""

    publications: dict[str, LocalTrackPublication] = field(default_factory=dict)
    data_tracks: dict[str, LocalDataTrack] = field(default_factory=dict)


@dataclass(eq=False)
class RemotePublicationRecord:
    """A remote participant's publication and, while subscribed, its track."""

    handle: NativeHandle
    info: track_pb2.TrackPublicationInfo
    track: RemoteTrack | None = None


@dataclass(eq=False)
class LocalPublicationRecord:
    """One of this client's publications."""

    handle: NativeHandle
    info: track_pb2.TrackPublicationInfo
    subscribed: bool = False
    """Whether a remote participant subscribed (reset by a republish)."""
    gone: bool = False
    """Unpublished, or the room closed: nobody will subscribe any more."""


class Adopter(Protocol):
    """What the session needs from the world around it: public objects around native handles.

    Each ``handle``/``*_view`` call adopts a native handle (the session closes it later, once);
    :meth:`drop` releases a handle the session does not keep.
    """

    def handle(self, handle_id: int) -> NativeHandle:
        """Take ownership of a native handle."""
        ...

    def drop(self, handle_id: int) -> None:
        """Release a native handle that nothing adopts."""
        ...

    def participant_view(self, state: RemoteRecord) -> RemoteParticipant:
        """The public object for a remote participant."""
        ...

    def publication_view(self, state: RemotePublicationRecord) -> RemoteTrackPublication:
        """The public object for a remote publication."""
        ...

    def local_publication_view(
        self, state: LocalPublicationRecord, track: LocalTrack
    ) -> LocalTrackPublication:
        """The public object for one of this client's publications."""
        ...

    def track_view(self, owned: track_pb2.OwnedTrack) -> RemoteTrack:
        """A subscribed remote track (it owns ``owned``'s handle; the session closes it)."""
        ...

    def data_track_view(self, owned: data_track_pb2.OwnedRemoteDataTrack) -> RemoteDataTrack:
        """A remote data track (it owns ``owned``'s handle; the session closes it)."""
        ...

    def payload(self, owned: handle_pb2.FfiOwnedHandle, ptr: int, length: int) -> bytes:
        """Copy a received data packet out of native memory and release its buffer."""
        ...

    def permissions(self, proto: participant_pb2.ParticipantPermission) -> ParticipantPermissions:
        """The public permissions for a protocol permission message."""
        ...

    def segment(self, proto: room_pb2.TranscriptionSegment) -> TranscriptionSegment:
        """The public transcription segment for a protocol one."""
        ...


class _Closable(Protocol):
    def _close(self) -> None: ...


def _close_each(items: Iterable[_Closable]) -> None:
    for item in items:
        item._close()


@dataclass(eq=False)
class _Remote:
    """A remote participant: its view, its state and its publications' states by sid."""

    view: RemoteParticipant
    state: RemoteRecord
    publications: dict[str, RemotePublicationRecord] = field(default_factory=dict)


class RoomSession:
    """The room's state and the rules that change it (see the module docstring).

    Args:
        adopter: builds the public objects around native handles.
        info: the room's info from the connect answer (the session keeps this message).
        local: the local participant's state (its view is built by the shell).
        on_change: called after a request-side change (the shell wakes the tasks waiting for
            the room's state; after :meth:`apply` the shell does that itself).
    """

    def __init__(
        self,
        adopter: Adopter,
        info: room_pb2.RoomInfo,
        local: LocalRecord,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._adopter = adopter
        self._on_change = on_change
        self.info: Final = info
        self.local: Final = local
        self.state = ConnectionState.CONNECTED
        self.token: str | None = None
        self.closed = False
        self._local_view: LocalParticipant | None = None
        self._remote: dict[str, _Remote] = {}
        self.remote_views: Final[dict[str, RemoteParticipant]] = {}
        """The remote participants' views by identity (``room.remote_participants`` shows it)."""
        self._local_pubs: dict[str, LocalPublicationRecord] = {}
        self._unpublished: dict[str, tuple[LocalTrackPublication, LocalPublicationRecord]] = {}
        """Publications whose unpublish was sent or confirmed, until LocalTrackUnpublished."""

    # -- building -----------------------------------------------------------------------------

    def set_local_view(self, view: LocalParticipant) -> None:
        """Name the local participant's view (built by the shell around :attr:`local`)."""
        self._local_view = view

    def adopt_remote(
        self,
        owned: participant_pb2.OwnedParticipant,
        publications: Iterable[track_pb2.OwnedTrackPublication] = (),
    ) -> RemoteParticipant:
        """Add a remote participant (from the connect answer or a join) with its publications.

        A participant already known under the identity is replaced (and released).
        """
        state = RemoteRecord(self._adopter.handle(owned.handle.id), owned.info)
        remote = _Remote(self._adopter.participant_view(state), state)
        old = self._remote.pop(remote.view.identity, None)
        if old is not None:
            self._release_remote(old)
        self._remote[remote.view.identity] = remote
        self.remote_views[remote.view.identity] = remote.view
        for pub in publications:
            self._add_publication(remote, pub)
        return remote.view

    def _add_publication(
        self, remote: _Remote, owned: track_pb2.OwnedTrackPublication
    ) -> RemoteTrackPublication:
        state = RemotePublicationRecord(self._adopter.handle(owned.handle.id), owned.info)
        view = self._adopter.publication_view(state)
        sid = owned.info.sid
        old = remote.publications.pop(sid, None)
        if old is not None:
            self._release_publication(old)
        remote.publications[sid] = state
        remote.state.publications[sid] = view
        return view

    # -- queries ------------------------------------------------------------------------------

    @property
    def local_view(self) -> LocalParticipant:
        """The local participant's view."""
        assert self._local_view is not None, "set_local_view was not called"
        return self._local_view

    def participant(self, identity: str) -> Participant | None:
        """The local or remote participant with this identity."""
        if self._local_view is not None and identity == self.local.info.identity:
            return self._local_view
        remote = self._remote.get(identity)
        return None if remote is None else remote.view

    def remote(self, identity: str) -> RemoteParticipant | None:
        """The remote participant with this identity."""
        remote = self._remote.get(identity)
        return None if remote is None else remote.view

    # -- the request side ---------------------------------------------------------------------

    def adopt_local_publication(
        self, owned: track_pb2.OwnedTrackPublication, track: LocalTrack
    ) -> LocalTrackPublication:
        """A publish was answered: the publication is in ``track_publications`` from now on."""
        state = LocalPublicationRecord(self._adopter.handle(owned.handle.id), owned.info)
        view = self._adopter.local_publication_view(state, track)
        self.local_unpublished(owned.info.sid, sent=False)  # a sid given twice: the old is gone
        self._local_pubs[owned.info.sid] = state
        self.local.publications[owned.info.sid] = view
        self._on_change()
        return view

    def local_unpublished(self, sid: str, *, sent: bool) -> bool:
        """This client unpublished ``sid`` (confirmed, or sent without waiting).

        It leaves ``track_publications`` now; waiters for a subscriber raise.  ``sent``: the
        LocalTrackUnpublished event that follows closes it (kept until then so that event
        still names it); otherwise nothing will come and it is closed now.  ``False`` if
        ``sid`` was not published (already unpublished, or the room closed).
        """
        view = self.local.publications.pop(sid, None)
        state = self._local_pubs.pop(sid, None)
        if view is None or state is None:
            return False
        state.gone = True
        if sent and not self.closed:
            pending = self._unpublished.pop(sid, None)
            if pending is not None:  # unpublished under this sid before: its event is moot
                pending[1].handle.close()
            self._unpublished[sid] = (view, state)
        else:
            state.handle.close()
        self._on_change()
        return True

    def adopt_local_data_track(self, track: LocalDataTrack) -> bool:
        """A data track was published: it is in ``data_tracks`` until unpublished.

        The session releases it when it is unpublished or the room closes.  ``False`` (and
        released at once) if the room has closed already.
        """
        if self.closed:
            track._close()
            return False
        self.local.data_tracks[track.sid] = track
        self._on_change()
        return True

    def local_data_track_unpublished(self, sid: str) -> None:
        """A local data track was unpublished: it leaves ``data_tracks`` and is released."""
        track = self.local.data_tracks.pop(sid, None)
        if track is not None:
            track._close()
            self._on_change()

    # -- events -------------------------------------------------------------------------------

    def apply(self, which: str | None, message: object) -> list[ev.RoomEvent]:
        """Apply one room event (``which`` is its member name); return the events to emit."""
        if self.closed:
            # Nothing changes any more, but a handle the event carries is still the session's
            # to release (never leaked, never adopted).
            carried = _CARRIED.get(which)
            for handle_id in () if carried is None else carried(message):
                self._adopter.drop(handle_id)
            return []
        handler = _HANDLERS.get(which)
        if handler is None:
            return []
        return handler(self, message)

    def close(self) -> None:
        """The room is gone: release everything the session adopted (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.state = ConnectionState.DISCONNECTED
        for remote in list(self._remote.values()):
            self._release_remote(remote)
        self._remote.clear()
        self.remote_views.clear()
        for sid in list(self._local_pubs):
            self.local_unpublished(sid, sent=False)
        for _view, state in self._unpublished.values():
            state.handle.close()
        self._unpublished.clear()
        # Data tracks left published (no ``async with``): the room unpublishes them by leaving.
        _close_each(self.local.data_tracks.values())
        self.local.data_tracks.clear()
        self.local.handle.close()

    def _release_remote(self, remote: _Remote) -> None:
        for state in remote.publications.values():
            self._release_publication(state)
        remote.publications.clear()
        remote.state.publications.clear()
        _close_each(remote.state.data_tracks.values())
        remote.state.data_tracks.clear()
        remote.state.handle.close()
        if self.remote_views.get(remote.view.identity) is remote.view:
            del self.remote_views[remote.view.identity]

    def _release_publication(self, state: RemotePublicationRecord) -> None:
        track, state.track = state.track, None
        if track is not None:
            track._close()
        state.handle.close()

    def _remote_publication(
        self, identity: str, sid: str
    ) -> tuple[_Remote, RemoteTrackPublication, RemotePublicationRecord] | None:
        remote = self._remote.get(identity)
        if remote is None:
            return None
        state = remote.publications.get(sid)
        view = remote.state.publications.get(sid)
        if state is None or view is None:
            return None
        return remote, view, state

    # participants

    def _participant_connected(self, m: room_pb2.ParticipantConnected) -> list[ev.RoomEvent]:
        return [ev.ParticipantConnected(self.adopt_remote(m.info))]

    def _participant_disconnected(
        self, m: room_pb2.ParticipantDisconnected
    ) -> list[ev.RoomEvent]:
        remote = self._remote.pop(m.participant_identity, None)
        if remote is None:
            return []
        remote.state.info.disconnect_reason = m.disconnect_reason
        self._release_remote(remote)
        return [ev.ParticipantDisconnected(remote.view, DisconnectReason(m.disconnect_reason))]

    def _participant_active(self, m: room_pb2.ParticipantActive) -> list[ev.RoomEvent]:
        view = self.remote(m.participant_identity)
        return [] if view is None else [ev.ParticipantActive(view)]

    # local publications

    def _local_track_published(self, m: room_pb2.LocalTrackPublished) -> list[ev.RoomEvent]:
        view = self.local.publications.get(m.track_sid)
        return [] if view is None else [ev.LocalTrackPublished(view)]

    def _local_track_unpublished(self, m: room_pb2.LocalTrackUnpublished) -> list[ev.RoomEvent]:
        sid = m.publication_sid
        self.local_unpublished(sid, sent=True)  # unpublished by the server or the core
        found = self._unpublished.pop(sid, None)
        if found is None:
            return []
        view, state = found
        state.handle.close()
        return [ev.LocalTrackUnpublished(view)]

    def _local_track_republished(self, m: room_pb2.LocalTrackRepublished) -> list[ev.RoomEvent]:
        # Measured (FULL_RECONNECT, NODE_FAILURE, MIGRATION and DISCONNECT_SIGNAL_ON_RESUME on
        # livekit-server 1.13.5): one event per track, just before Reconnected.  Despite the
        # protocol's comment ("the handle is preserved"), it carries a *new* publication handle
        # (the old one is still known: dropping it logs nothing); every later event
        # (LocalTrackSubscribed, unpublish) names the new sid.
        view = self.local.publications.pop(m.previous_sid, None)
        state = self._local_pubs.pop(m.previous_sid, None)
        if view is None or state is None:
            self._adopter.drop(m.publication_handle)
            return []
        state.handle.close()
        state.handle = self._adopter.handle(m.publication_handle)
        state.info.CopyFrom(m.info)
        state.subscribed = False  # nobody is subscribed to the new publication yet
        self._local_pubs[m.info.sid] = state
        self.local.publications[m.info.sid] = view
        return [ev.LocalTrackRepublished(view, m.previous_sid)]

    def _local_track_subscribed(self, m: room_pb2.LocalTrackSubscribed) -> list[ev.RoomEvent]:
        view = self.local.publications.get(m.track_sid)
        state = self._local_pubs.get(m.track_sid)
        if view is None or state is None:
            return []
        state.subscribed = True
        return [ev.LocalTrackSubscribed(view)]

    # remote publications and tracks

    def _track_published(self, m: room_pb2.TrackPublished) -> list[ev.RoomEvent]:
        remote = self._remote.get(m.participant_identity)
        if remote is None:
            self._adopter.drop(m.publication.handle.id)
            return []
        return [ev.TrackPublished(remote.view, self._add_publication(remote, m.publication))]

    def _track_unpublished(self, m: room_pb2.TrackUnpublished) -> list[ev.RoomEvent]:
        found = self._remote_publication(m.participant_identity, m.publication_sid)
        if found is None:
            return []
        remote, view, state = found
        del remote.publications[m.publication_sid]
        del remote.state.publications[m.publication_sid]
        self._release_publication(state)
        return [ev.TrackUnpublished(remote.view, view)]

    def _track_subscribed(self, m: room_pb2.TrackSubscribed) -> list[ev.RoomEvent]:
        found = self._remote_publication(m.participant_identity, m.track.info.sid)
        if found is None:
            self._adopter.drop(m.track.handle.id)
            return []
        remote, view, state = found
        if state.track is not None:
            state.track._close()
        track = state.track = self._adopter.track_view(m.track)
        return [ev.TrackSubscribed(remote.view, view, track)]

    def _track_unsubscribed(self, m: room_pb2.TrackUnsubscribed) -> list[ev.RoomEvent]:
        found = self._remote_publication(m.participant_identity, m.track_sid)
        if found is None or found[2].track is None:
            return []
        remote, view, state = found
        track, state.track = state.track, None
        assert track is not None
        track._close()
        return [ev.TrackUnsubscribed(remote.view, view, track)]

    def _track_subscription_failed(
        self, m: room_pb2.TrackSubscriptionFailed
    ) -> list[ev.RoomEvent]:
        view = self.remote(m.participant_identity)
        return [] if view is None else [ev.TrackSubscriptionFailed(view, m.track_sid, m.error)]

    def _mute(
        self, identity: str, sid: str, muted: bool
    ) -> tuple[Participant, TrackPublication] | None:
        if self._local_view is not None and identity == self.local.info.identity:
            local = self._local_pubs.get(sid)
            view = self.local.publications.get(sid)
            if local is None or view is None:
                return None
            local.info.muted = muted
            return self._local_view, view
        found = self._remote_publication(identity, sid)
        if found is None:
            return None
        found[2].info.muted = muted
        return found[0].view, found[1]

    def _track_muted(self, m: room_pb2.TrackMuted) -> list[ev.RoomEvent]:
        found = self._mute(m.participant_identity, m.track_sid, True)
        return [] if found is None else [ev.TrackMuted(*found)]

    def _track_unmuted(self, m: room_pb2.TrackUnmuted) -> list[ev.RoomEvent]:
        found = self._mute(m.participant_identity, m.track_sid, False)
        return [] if found is None else [ev.TrackUnmuted(*found)]

    # data tracks

    def _data_track_published(self, m: room_pb2.DataTrackPublished) -> list[ev.RoomEvent]:
        remote = self._remote.get(m.track.publisher_identity)
        if remote is None:
            self._adopter.drop(m.track.handle.id)
            return []
        track = self._adopter.data_track_view(m.track)
        old = remote.state.data_tracks.pop(track.sid, None)
        if old is not None:
            old._close()
        remote.state.data_tracks[track.sid] = track
        return [ev.DataTrackPublished(remote.view, track)]

    def _data_track_unpublished(self, m: room_pb2.DataTrackUnpublished) -> list[ev.RoomEvent]:
        for remote in self._remote.values():
            track = remote.state.data_tracks.pop(m.sid, None)
            if track is not None:
                track._close()
                return [ev.DataTrackUnpublished(remote.view, track)]
        return []

    # the room

    def _room_metadata_changed(self, m: room_pb2.RoomMetadataChanged) -> list[ev.RoomEvent]:
        old = self.info.metadata
        self.info.metadata = m.metadata
        return [ev.RoomMetadataChanged(old, m.metadata)]

    def _room_sid_changed(self, m: room_pb2.RoomSidChanged) -> list[ev.RoomEvent]:
        self.info.sid = m.sid
        return [ev.RoomSidChanged(m.sid)]

    def _room_updated(self, m: room_pb2.RoomInfo) -> list[ev.RoomEvent]:
        old_sid, metadata = self.info.sid, self.info.metadata
        self.info.CopyFrom(m)
        # The metadata is RoomMetadataChanged's to change (measured: it comes just before this
        # update), so that event's old value stays right whatever the order.
        self.info.metadata = metadata
        events: list[ev.RoomEvent] = []
        if not old_sid and m.sid:
            events.append(ev.RoomSidChanged(m.sid))
        events.append(ev.RoomUpdated(m.num_participants, m.num_publishers, m.active_recording))
        return events

    def _moved(self, m: room_pb2.RoomInfo) -> list[ev.RoomEvent]:
        old_name, old_sid = self.info.name, self.info.sid
        self.info.CopyFrom(m)
        return [ev.Moved(old_name, m.name, old_sid, m.sid)]

    def _active_speakers_changed(self, m: room_pb2.ActiveSpeakersChanged) -> list[ev.RoomEvent]:
        found = (self.participant(i) for i in m.participant_identities)
        return [ev.ActiveSpeakersChanged(tuple(p for p in found if p is not None))]

    # participants' info

    def _state_of(self, identity: str) -> tuple[Participant, ParticipantRecord] | None:
        if self._local_view is not None and identity == self.local.info.identity:
            return self._local_view, self.local
        remote = self._remote.get(identity)
        return None if remote is None else (remote.view, remote.state)

    def _participant_metadata_changed(
        self, m: room_pb2.ParticipantMetadataChanged
    ) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        old, state.info.metadata = state.info.metadata, m.metadata
        return [ev.ParticipantMetadataChanged(view, old, m.metadata)]

    def _participant_name_changed(self, m: room_pb2.ParticipantNameChanged) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        old, state.info.name = state.info.name, m.name
        return [ev.ParticipantNameChanged(view, old, m.name)]

    def _participant_attributes_changed(
        self, m: room_pb2.ParticipantAttributesChanged
    ) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        state.info.attributes.clear()
        for entry in m.attributes:
            state.info.attributes[entry.key] = entry.value
        changed = MappingProxyType({e.key: e.value for e in m.changed_attributes})
        return [ev.ParticipantAttributesChanged(view, changed)]

    def _participant_permission_changed(
        self, m: room_pb2.ParticipantPermissionChanged
    ) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        state.info.permission.CopyFrom(m.permission)
        return [ev.ParticipantPermissionsChanged(view, self._adopter.permissions(m.permission))]

    def _participants_updated(self, m: room_pb2.ParticipantsUpdated) -> list[ev.RoomEvent]:
        # A snapshot that can precede the specific change events: take everything from it but
        # the fields those events carry, so their "old" values stay right.
        for info in m.participants:
            found = self._state_of(info.identity)
            if found is None:
                continue
            mine = found[1].info
            name, metadata, attributes = mine.name, mine.metadata, dict(mine.attributes)
            mine.CopyFrom(info)
            mine.name, mine.metadata = name, metadata
            mine.attributes.clear()
            mine.attributes.update(attributes)
        return []

    def _connection_quality_changed(
        self, m: room_pb2.ConnectionQualityChanged
    ) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        state.quality = ConnectionQuality(m.quality)
        return [ev.ConnectionQualityChanged(view, state.quality)]

    def _e2ee_state_changed(self, m: room_pb2.E2eeStateChanged) -> list[ev.RoomEvent]:
        view = self.participant(m.participant_identity)
        return [] if view is None else [ev.E2EEStateChanged(view, EncryptionState(m.state))]

    def _participant_encryption_status_changed(
        self, m: room_pb2.ParticipantEncryptionStatusChanged
    ) -> list[ev.RoomEvent]:
        view = self.participant(m.participant_identity)
        if view is None:
            return []
        return [ev.ParticipantEncryptionStatusChanged(view, m.is_encrypted)]

    # the connection

    def _connection_state_changed(self, m: room_pb2.ConnectionStateChanged) -> list[ev.RoomEvent]:
        self.state = ConnectionState(m.state)
        return [ev.ConnectionStateChanged(self.state)]

    def _reconnecting(self, m: room_pb2.Reconnecting) -> list[ev.RoomEvent]:
        self.state = ConnectionState.RECONNECTING
        return [ev.Reconnecting()]

    def _reconnected(self, m: room_pb2.Reconnected) -> list[ev.RoomEvent]:
        self.state = ConnectionState.CONNECTED
        return [ev.Reconnected()]

    def _disconnected(self, m: room_pb2.Disconnected) -> list[ev.RoomEvent]:
        self.state = ConnectionState.DISCONNECTED
        return [ev.Disconnected(DisconnectReason(m.reason))]

    def _token_refreshed(self, m: room_pb2.TokenRefreshed) -> list[ev.RoomEvent]:
        self.token = m.token
        return [ev.TokenRefreshed(m.token)]

    # what participants send

    def _data_packet_received(self, m: room_pb2.DataPacketReceived) -> list[ev.RoomEvent]:
        # The native core names only senders it knows: "" for the server and for a participant
        # not announced yet (see DataReceived).  Nothing more to wait for: no later event says
        # who sent it.
        identity = m.participant_identity
        sender = self.remote(identity)
        which = m.WhichOneof("value")
        if which == "user":
            owned = m.user.data
            data = self._adopter.payload(owned.handle, owned.data.data_ptr, owned.data.data_len)
            kind = DataPacketKind(m.kind)
            return [ev.DataReceived(data, kind, sender, m.user.topic, identity)]
        if which == "sip_dtmf":
            return [ev.SipDTMFReceived(m.sip_dtmf.code, m.sip_dtmf.digit, sender, identity)]
        return []

    def _transcription_received(self, m: room_pb2.TranscriptionReceived) -> list[ev.RoomEvent]:
        segments = tuple(self._adopter.segment(s) for s in m.segments)
        view = self.participant(m.participant_identity) if m.participant_identity else None
        return [ev.TranscriptionReceived(segments, view, m.track_sid)]


_Handler = Callable[[RoomSession, "object"], list["ev.RoomEvent"]]

_HANDLERS: Final[dict[str | None, _Handler]] = {
    name: getattr(RoomSession, f"_{name}")
    for name in (
        "participant_connected",
        "participant_disconnected",
        "participant_active",
        "local_track_published",
        "local_track_unpublished",
        "local_track_republished",
        "local_track_subscribed",
        "track_published",
        "track_unpublished",
        "track_subscribed",
        "track_unsubscribed",
        "track_subscription_failed",
        "track_muted",
        "track_unmuted",
        "data_track_published",
        "data_track_unpublished",
        "room_metadata_changed",
        "room_sid_changed",
        "room_updated",
        "moved",
        "active_speakers_changed",
        "participant_metadata_changed",
        "participant_name_changed",
        "participant_attributes_changed",
        "participant_permission_changed",
        "participants_updated",
        "connection_quality_changed",
        "e2ee_state_changed",
        "participant_encryption_status_changed",
        "connection_state_changed",
        "reconnecting",
        "reconnected",
        "disconnected",
        "token_refreshed",
        "data_packet_received",
        "transcription_received",
    )
}
"""The room events the session handles, by member name (the shell handles eos and the streams
opened; the rest carry nothing the room keeps)."""

_CARRIED: Final[dict[str | None, Callable[[Any], tuple[int, ...]]]] = {
    "participant_connected": lambda m: (m.info.handle.id,),
    "track_published": lambda m: (m.publication.handle.id,),
    "track_subscribed": lambda m: (m.track.handle.id,),
    "data_track_published": lambda m: (m.track.handle.id,),
    "local_track_republished": lambda m: (m.publication_handle,),
    "data_packet_received": lambda m: (
        (m.user.data.handle.id,) if m.WhichOneof("value") == "user" else ()
    ),
}
"""The events that hand over native handles, and where they are (see :meth:`RoomSession.apply`)."""
