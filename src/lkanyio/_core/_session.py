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

The core sits below the features whose objects it holds: the session is generic over them (the
remote and local participants, publications, tracks and data tracks, permissions and
transcription segments), asks of them only what its own small protocols say (an identity, a
sid, ``_close``), and builds the events that name them with the event classes it is handed
(:class:`EventClasses`; the shell passes ``lkanyio._events``).  The shell's
``RoomSession[RemoteParticipant, ...]`` (``_port.Session``) names the public classes, and the
type checker matches its adopter and the event classes against them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

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

    from .._native._proto import (
        handle_pb2,
        participant_pb2,
        room_pb2,
        track_pb2,
    )

__all__ = [
    "Adopter",
    "Closable",
    "DataTrackView",
    "EventClasses",
    "LocalPublicationRecord",
    "NativeHandle",
    "LocalRecord",
    "ParticipantRecord",
    "ParticipantView",
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


class Closable(Protocol):
    """An object the session releases (a track, a data track): closed once, by the session."""

    def _close(self) -> None: ...


class ParticipantView(Protocol):
    """What the session reads of a remote participant's view: who it is."""

    @property
    def identity(self) -> str: ...


class DataTrackView(Closable, Protocol):
    """What the session reads of a data track: its sid (and it releases it)."""

    @property
    def sid(self) -> str: ...


# The objects the session holds, as the shell builds them (the public views; the unit tests
# build the same).  The session only stores and hands them on: it names none of their classes,
# so the core stays below the features; the shell's ``RoomSession[...]`` names them all.
_RP = TypeVar("_RP", bound=ParticipantView)
"""A remote participant."""
_LP = TypeVar("_LP")
"""The local participant."""
_RPub = TypeVar("_RPub")
"""A remote participant's publication."""
_LPub = TypeVar("_LPub")
"""One of this client's publications."""
_RT = TypeVar("_RT", bound=Closable)
"""A subscribed remote track."""
_LT = TypeVar("_LT")
"""A local track being published."""
_RDT = TypeVar("_RDT", bound=DataTrackView)
"""A remote data track."""
_LDT = TypeVar("_LDT", bound=DataTrackView)
"""A local data track."""
_Perm = TypeVar("_Perm")
"""A participant's permissions."""
_Seg = TypeVar("_Seg")
"""A transcription segment."""
# The same for the protocols below (a protocol's parameters say which way they flow).
_RP_co = TypeVar("_RP_co", covariant=True)
_LPub_co = TypeVar("_LPub_co", covariant=True)
_Perm_co = TypeVar("_Perm_co", covariant=True)
_Seg_co = TypeVar("_Seg_co", covariant=True)
_LT_contra = TypeVar("_LT_contra", contravariant=True)
_RP_contra = TypeVar("_RP_contra", contravariant=True)
_LP_contra = TypeVar("_LP_contra", contravariant=True)
_RPub_contra = TypeVar("_RPub_contra", contravariant=True)
_LPub_contra = TypeVar("_LPub_contra", contravariant=True)
_RT_contra = TypeVar("_RT_contra", contravariant=True)
_RDT_contra = TypeVar("_RDT_contra", contravariant=True)
_Perm_contra = TypeVar("_Perm_contra", contravariant=True)
_Seg_contra = TypeVar("_Seg_contra", contravariant=True)


@dataclass(eq=False)
class ParticipantRecord:
    """What is known of one participant (its view reads it; the session writes it)."""

    handle: NativeHandle
    info: participant_pb2.ParticipantInfo
    quality: ConnectionQuality | None = None
    """``None`` until the server's first report (measured: about 3 s after joining)."""


@dataclass(eq=False)
class RemoteRecord(ParticipantRecord, Generic[_RPub, _RDT]):
    """A remote participant: its publications and data tracks by sid."""

    publications: dict[str, _RPub] = field(default_factory=dict)
    data_tracks: dict[str, _RDT] = field(default_factory=dict)


@dataclass(eq=False)
class LocalRecord(ParticipantRecord, Generic[_LPub, _LDT]):
    """This client: its publications and data tracks by sid."""

    publications: dict[str, _LPub] = field(default_factory=dict)
    data_tracks: dict[str, _LDT] = field(default_factory=dict)


@dataclass(eq=False)
class RemotePublicationRecord(Generic[_RT]):
    """A remote participant's publication and, while subscribed, its track."""

    handle: NativeHandle
    info: track_pb2.TrackPublicationInfo
    track: _RT | None = None


@dataclass(eq=False)
class LocalPublicationRecord:
    """One of this client's publications."""

    handle: NativeHandle
    info: track_pb2.TrackPublicationInfo
    subscribed: bool = False
    """Whether a remote participant subscribed (reset by a republish)."""
    gone: bool = False
    """Unpublished, or the room closed: nobody will subscribe any more."""


class Adopter(Protocol[_RP_co, _RPub, _LPub_co, _RT, _RDT, _LT_contra, _Perm_co, _Seg_co]):
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

    def participant_view(self, state: RemoteRecord[_RPub, _RDT]) -> _RP_co:
        """The public object for a remote participant."""
        ...

    def publication_view(self, state: RemotePublicationRecord[_RT]) -> _RPub:
        """The public object for a remote publication."""
        ...

    def local_publication_view(
        self, state: LocalPublicationRecord, track: _LT_contra
    ) -> _LPub_co:
        """The public object for one of this client's publications."""
        ...

    def track_view(self, owned: track_pb2.OwnedTrack) -> _RT:
        """A subscribed remote track (it owns ``owned``'s handle; the session closes it)."""
        ...

    def data_track_view(self, owned: data_track_pb2.OwnedRemoteDataTrack) -> _RDT:
        """A remote data track (it owns ``owned``'s handle; the session closes it)."""
        ...

    def payload(self, owned: handle_pb2.FfiOwnedHandle, ptr: int, length: int) -> bytes:
        """Copy a received data packet out of native memory and release its buffer."""
        ...

    def permissions(self, proto: participant_pb2.ParticipantPermission) -> _Perm_co:
        """The public permissions for a protocol permission message."""
        ...

    def segment(self, proto: room_pb2.TranscriptionSegment) -> _Seg_co:
        """The public transcription segment for a protocol one."""
        ...


class EventClasses(
    Protocol[
        _RP_contra, _LP_contra, _RPub_contra, _LPub_contra, _RT_contra, _RDT_contra,
        _Perm_contra, _Seg_contra,
    ]
):
    """The public event classes that name the session's objects, built from them.

    The shell passes the module of the public events (``lkanyio._events``): its classes are
    these constructors, and the type checker matches each against the views the shell's
    session holds.  Events that name no view the session builds from ``_events`` directly.
    """

    # One member per class: (the positional fields, in order) -> the event.
    @property
    def ParticipantConnected(self) -> Callable[[_RP_contra], ev.RoomEvent]: ...
    @property
    def ParticipantDisconnected(
        self,
    ) -> Callable[[_RP_contra, DisconnectReason], ev.RoomEvent]: ...
    @property
    def ParticipantActive(self) -> Callable[[_RP_contra], ev.RoomEvent]: ...
    @property
    def LocalTrackPublished(self) -> Callable[[_LPub_contra], ev.RoomEvent]: ...
    @property
    def LocalTrackUnpublished(self) -> Callable[[_LPub_contra], ev.RoomEvent]: ...
    @property
    def LocalTrackRepublished(self) -> Callable[[_LPub_contra, str], ev.RoomEvent]: ...
    @property
    def LocalTrackSubscribed(self) -> Callable[[_LPub_contra], ev.RoomEvent]: ...
    @property
    def TrackPublished(self) -> Callable[[_RP_contra, _RPub_contra], ev.RoomEvent]: ...
    @property
    def TrackUnpublished(self) -> Callable[[_RP_contra, _RPub_contra], ev.RoomEvent]: ...
    @property
    def TrackSubscribed(
        self,
    ) -> Callable[[_RP_contra, _RPub_contra, _RT_contra], ev.RoomEvent]: ...
    @property
    def TrackUnsubscribed(
        self,
    ) -> Callable[[_RP_contra, _RPub_contra, _RT_contra], ev.RoomEvent]: ...
    @property
    def TrackSubscriptionFailed(self) -> Callable[[_RP_contra, str, str], ev.RoomEvent]: ...
    @property
    def DataTrackPublished(self) -> Callable[[_RP_contra, _RDT_contra], ev.RoomEvent]: ...
    @property
    def DataTrackUnpublished(self) -> Callable[[_RP_contra, _RDT_contra], ev.RoomEvent]: ...
    @property
    def TrackMuted(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, _LPub_contra | _RPub_contra], ev.RoomEvent]: ...
    @property
    def TrackUnmuted(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, _LPub_contra | _RPub_contra], ev.RoomEvent]: ...
    @property
    def ActiveSpeakersChanged(
        self,
    ) -> Callable[[tuple[_LP_contra | _RP_contra, ...]], ev.RoomEvent]: ...
    @property
    def ParticipantMetadataChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, str, str], ev.RoomEvent]: ...
    @property
    def ParticipantNameChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, str, str], ev.RoomEvent]: ...
    @property
    def ParticipantAttributesChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, Mapping[str, str]], ev.RoomEvent]: ...
    @property
    def ParticipantPermissionsChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, _Perm_contra], ev.RoomEvent]: ...
    @property
    def ConnectionQualityChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, ConnectionQuality], ev.RoomEvent]: ...
    @property
    def E2EEStateChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, EncryptionState], ev.RoomEvent]: ...
    @property
    def ParticipantEncryptionStatusChanged(
        self,
    ) -> Callable[[_LP_contra | _RP_contra, bool], ev.RoomEvent]: ...
    @property
    def DataReceived(
        self,
    ) -> Callable[[bytes, DataPacketKind, _RP_contra | None, str, str], ev.RoomEvent]: ...
    @property
    def SipDTMFReceived(
        self,
    ) -> Callable[[int, str, _RP_contra | None, str], ev.RoomEvent]: ...
    @property
    def TranscriptionReceived(
        self,
    ) -> Callable[[tuple[_Seg_contra, ...], _LP_contra | _RP_contra | None, str], ev.RoomEvent]: ...


def _close_each(items: Iterable[Closable]) -> None:
    for item in items:
        item._close()


@dataclass(eq=False)
class _Remote(Generic[_RP, _RPub, _RT, _RDT]):
    """A remote participant: its view, its state and its publications' states by sid."""

    view: _RP
    state: RemoteRecord[_RPub, _RDT]
    publications: dict[str, RemotePublicationRecord[_RT]] = field(default_factory=dict)


class RoomSession(Generic[_RP, _LP, _RPub, _LPub, _RT, _LT, _RDT, _LDT, _Perm, _Seg]):
    """The room's state and the rules that change it (see the module docstring).

    Generic over the objects it holds (see the type variables above): the shell names them.

    Args:
        adopter: builds the public objects around native handles.
        events: the public event classes (``lkanyio._events``), to build the events that name
            those objects.
        info: the room's info from the connect answer (the session keeps this message).
        local: the local participant's state (its view is built by the shell).
        on_change: called after a request-side change (the shell wakes the tasks waiting for
            the room's state; after :meth:`apply` the shell does that itself).
    """

    def __init__(
        self,
        adopter: Adopter[_RP, _RPub, _LPub, _RT, _RDT, _LT, _Perm, _Seg],
        events: EventClasses[_RP, _LP, _RPub, _LPub, _RT, _RDT, _Perm, _Seg],
        info: room_pb2.RoomInfo,
        local: LocalRecord[_LPub, _LDT],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._adopter = adopter
        self._ev = events
        self._on_change = on_change
        self.info: Final = info
        self.local: Final = local
        self.state = ConnectionState.CONNECTED
        self.token: str | None = None
        self.closed = False
        self._local_view: _LP | None = None
        self._remote: dict[str, _Remote[_RP, _RPub, _RT, _RDT]] = {}
        self.remote_views: Final[dict[str, _RP]] = {}
        """The remote participants' views by identity (``room.remote_participants`` shows it)."""
        self._local_pubs: dict[str, LocalPublicationRecord] = {}
        self._unpublished: dict[str, tuple[_LPub, LocalPublicationRecord]] = {}
        """Publications whose unpublish was sent or confirmed, until LocalTrackUnpublished."""

    # -- building -----------------------------------------------------------------------------

    def set_local_view(self, view: _LP) -> None:
        """Name the local participant's view (built by the shell around :attr:`local`)."""
        self._local_view = view

    def adopt_remote(
        self,
        owned: participant_pb2.OwnedParticipant,
        publications: Iterable[track_pb2.OwnedTrackPublication] = (),
    ) -> _RP:
        """Add a remote participant (from the connect answer or a join) with its publications.

        A participant already known under the identity is replaced (and released).
        """
        state: RemoteRecord[_RPub, _RDT] = RemoteRecord(
            self._adopter.handle(owned.handle.id), owned.info
        )
        remote: _Remote[_RP, _RPub, _RT, _RDT] = _Remote(
            self._adopter.participant_view(state), state
        )
        old = self._remote.pop(remote.view.identity, None)
        if old is not None:
            self._release_remote(old)
        self._remote[remote.view.identity] = remote
        self.remote_views[remote.view.identity] = remote.view
        for pub in publications:
            self._add_publication(remote, pub)
        return remote.view

    def _add_publication(
        self, remote: _Remote[_RP, _RPub, _RT, _RDT], owned: track_pb2.OwnedTrackPublication
    ) -> _RPub:
        state: RemotePublicationRecord[_RT] = RemotePublicationRecord(
            self._adopter.handle(owned.handle.id), owned.info
        )
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
    def local_view(self) -> _LP:
        """The local participant's view."""
        assert self._local_view is not None, "set_local_view was not called"
        return self._local_view

    def participant(self, identity: str) -> _LP | _RP | None:
        """The local or remote participant with this identity."""
        if self._local_view is not None and identity == self.local.info.identity:
            return self._local_view
        remote = self._remote.get(identity)
        return None if remote is None else remote.view

    def remote(self, identity: str) -> _RP | None:
        """The remote participant with this identity."""
        remote = self._remote.get(identity)
        return None if remote is None else remote.view

    # -- the request side ---------------------------------------------------------------------

    def adopt_local_publication(
        self, owned: track_pb2.OwnedTrackPublication, track: _LT
    ) -> _LPub:
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

    def adopt_local_data_track(self, track: _LDT) -> bool:
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

    def _release_remote(self, remote: _Remote[_RP, _RPub, _RT, _RDT]) -> None:
        for state in remote.publications.values():
            self._release_publication(state)
        remote.publications.clear()
        remote.state.publications.clear()
        _close_each(remote.state.data_tracks.values())
        remote.state.data_tracks.clear()
        remote.state.handle.close()
        if self.remote_views.get(remote.view.identity) is remote.view:
            del self.remote_views[remote.view.identity]

    def _release_publication(self, state: RemotePublicationRecord[_RT]) -> None:
        track, state.track = state.track, None
        if track is not None:
            track._close()
        state.handle.close()

    def _remote_publication(
        self, identity: str, sid: str
    ) -> tuple[_Remote[_RP, _RPub, _RT, _RDT], _RPub, RemotePublicationRecord[_RT]] | None:
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
        return [self._ev.ParticipantConnected(self.adopt_remote(m.info))]

    def _participant_disconnected(
        self, m: room_pb2.ParticipantDisconnected
    ) -> list[ev.RoomEvent]:
        remote = self._remote.pop(m.participant_identity, None)
        if remote is None:
            return []
        remote.state.info.disconnect_reason = m.disconnect_reason
        self._release_remote(remote)
        reason = DisconnectReason(m.disconnect_reason)
        return [self._ev.ParticipantDisconnected(remote.view, reason)]

    def _participant_active(self, m: room_pb2.ParticipantActive) -> list[ev.RoomEvent]:
        view = self.remote(m.participant_identity)
        return [] if view is None else [self._ev.ParticipantActive(view)]

    # local publications

    def _local_track_published(self, m: room_pb2.LocalTrackPublished) -> list[ev.RoomEvent]:
        view = self.local.publications.get(m.track_sid)
        return [] if view is None else [self._ev.LocalTrackPublished(view)]

    def _local_track_unpublished(self, m: room_pb2.LocalTrackUnpublished) -> list[ev.RoomEvent]:
        sid = m.publication_sid
        self.local_unpublished(sid, sent=True)  # unpublished by the server or the core
        found = self._unpublished.pop(sid, None)
        if found is None:
            return []
        view, state = found
        state.handle.close()
        return [self._ev.LocalTrackUnpublished(view)]

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
        return [self._ev.LocalTrackRepublished(view, m.previous_sid)]

    def _local_track_subscribed(self, m: room_pb2.LocalTrackSubscribed) -> list[ev.RoomEvent]:
        view = self.local.publications.get(m.track_sid)
        state = self._local_pubs.get(m.track_sid)
        if view is None or state is None:
            return []
        state.subscribed = True
        return [self._ev.LocalTrackSubscribed(view)]

    # remote publications and tracks

    def _track_published(self, m: room_pb2.TrackPublished) -> list[ev.RoomEvent]:
        remote = self._remote.get(m.participant_identity)
        if remote is None:
            self._adopter.drop(m.publication.handle.id)
            return []
        return [self._ev.TrackPublished(remote.view, self._add_publication(remote, m.publication))]

    def _track_unpublished(self, m: room_pb2.TrackUnpublished) -> list[ev.RoomEvent]:
        found = self._remote_publication(m.participant_identity, m.publication_sid)
        if found is None:
            return []
        remote, view, state = found
        del remote.publications[m.publication_sid]
        del remote.state.publications[m.publication_sid]
        self._release_publication(state)
        return [self._ev.TrackUnpublished(remote.view, view)]

    def _track_subscribed(self, m: room_pb2.TrackSubscribed) -> list[ev.RoomEvent]:
        found = self._remote_publication(m.participant_identity, m.track.info.sid)
        if found is None:
            self._adopter.drop(m.track.handle.id)
            return []
        remote, view, state = found
        if state.track is not None:
            state.track._close()
        track = state.track = self._adopter.track_view(m.track)
        return [self._ev.TrackSubscribed(remote.view, view, track)]

    def _track_unsubscribed(self, m: room_pb2.TrackUnsubscribed) -> list[ev.RoomEvent]:
        found = self._remote_publication(m.participant_identity, m.track_sid)
        if found is None or found[2].track is None:
            return []
        remote, view, state = found
        track, state.track = state.track, None
        assert track is not None
        track._close()
        return [self._ev.TrackUnsubscribed(remote.view, view, track)]

    def _track_subscription_failed(
        self, m: room_pb2.TrackSubscriptionFailed
    ) -> list[ev.RoomEvent]:
        view = self.remote(m.participant_identity)
        if view is None:
            return []
        return [self._ev.TrackSubscriptionFailed(view, m.track_sid, m.error)]

    def _mute(
        self, identity: str, sid: str, muted: bool
    ) -> tuple[_LP | _RP, _LPub | _RPub] | None:
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
        return [] if found is None else [self._ev.TrackMuted(*found)]

    def _track_unmuted(self, m: room_pb2.TrackUnmuted) -> list[ev.RoomEvent]:
        found = self._mute(m.participant_identity, m.track_sid, False)
        return [] if found is None else [self._ev.TrackUnmuted(*found)]

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
        return [self._ev.DataTrackPublished(remote.view, track)]

    def _data_track_unpublished(self, m: room_pb2.DataTrackUnpublished) -> list[ev.RoomEvent]:
        for remote in self._remote.values():
            track = remote.state.data_tracks.pop(m.sid, None)
            if track is not None:
                track._close()
                return [self._ev.DataTrackUnpublished(remote.view, track)]
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
        return [self._ev.ActiveSpeakersChanged(tuple(p for p in found if p is not None))]

    # participants' info

    def _state_of(self, identity: str) -> tuple[_LP | _RP, ParticipantRecord] | None:
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
        return [self._ev.ParticipantMetadataChanged(view, old, m.metadata)]

    def _participant_name_changed(self, m: room_pb2.ParticipantNameChanged) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        old, state.info.name = state.info.name, m.name
        return [self._ev.ParticipantNameChanged(view, old, m.name)]

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
        return [self._ev.ParticipantAttributesChanged(view, changed)]

    def _participant_permission_changed(
        self, m: room_pb2.ParticipantPermissionChanged
    ) -> list[ev.RoomEvent]:
        found = self._state_of(m.participant_identity)
        if found is None:
            return []
        view, state = found
        state.info.permission.CopyFrom(m.permission)
        permissions = self._adopter.permissions(m.permission)
        return [self._ev.ParticipantPermissionsChanged(view, permissions)]

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
        return [self._ev.ConnectionQualityChanged(view, state.quality)]

    def _e2ee_state_changed(self, m: room_pb2.E2eeStateChanged) -> list[ev.RoomEvent]:
        view = self.participant(m.participant_identity)
        return [] if view is None else [self._ev.E2EEStateChanged(view, EncryptionState(m.state))]

    def _participant_encryption_status_changed(
        self, m: room_pb2.ParticipantEncryptionStatusChanged
    ) -> list[ev.RoomEvent]:
        view = self.participant(m.participant_identity)
        if view is None:
            return []
        return [self._ev.ParticipantEncryptionStatusChanged(view, m.is_encrypted)]

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
            return [self._ev.DataReceived(data, kind, sender, m.user.topic, identity)]
        if which == "sip_dtmf":
            return [self._ev.SipDTMFReceived(m.sip_dtmf.code, m.sip_dtmf.digit, sender, identity)]
        return []

    def _transcription_received(self, m: room_pb2.TranscriptionReceived) -> list[ev.RoomEvent]:
        segments = tuple(self._adopter.segment(s) for s in m.segments)
        view = self.participant(m.participant_identity) if m.participant_identity else None
        return [self._ev.TranscriptionReceived(segments, view, m.track_sid)]


_AnySession = RoomSession[Any, Any, Any, Any, Any, Any, Any, Any, Any, Any]
"""A session whatever objects it holds (a handler returns events; no object comes out typed)."""
_Handler = Callable[[_AnySession, object], list[ev.RoomEvent]]

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
