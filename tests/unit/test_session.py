"""The room's state machine (``lkanyio._core.RoomSession``), driven by hypothesis.

The session is sans-IO: it takes protocol messages and returns public events, and adopts native
handles only through its adopter.  Here the adopter is a recorder (the only fake in the project
besides the correlator's event source): it builds lkanyio's real public objects around recorded
handles, so every rule below runs the same views users get.  The machine plays joins, leaves,
publish/subscribe/mute/unpublish in any order (a subscription before its publication, events
for participants that left), this client's publish/unpublish/republish, reconnects, disconnects
and the room's close; after every step the public maps must equal a model of the room, every
event must name objects that are live (or, for a departure, released), and every handle the
session took must be open exactly while its object is in the room and closed exactly once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lkanyio
from _util import examples
from lkanyio import (
    LocalDataTrack,
    LocalParticipant,
    LocalTrackPublication,
    RemoteDataTrack,
    RemoteParticipant,
    RemoteTrackPublication,
    ResourceClosedError,
    TranscriptionSegment,
)
from lkanyio import _events as ev
from lkanyio._core import RoomSession
from lkanyio._core._session import LocalRecord
from lkanyio._media._track import remote_track_from_owned
from lkanyio._native._proto import participant_pb2, room_pb2, track_pb2
from lkanyio._participant import permissions_from_proto

IDENTITIES = ("alice", "bob", "carol")
LOCAL = "me"
SIDS = ("TR_a", "TR_b", "TR_c")
DATA_SIDS = ("DTR_x", "DTR_y")


@dataclass(eq=False)
class RecordedHandle:
    """A native handle that counts its drops (as ``OwnedHandle``: ``close`` is idempotent)."""

    handle_id: int
    recorder: Recorder

    @property
    def id(self) -> int:
        if self.closed:
            raise ResourceClosedError("this object has been closed")
        return self.handle_id

    @property
    def closed(self) -> bool:
        return self.recorder.dropped[self.handle_id] > 0

    def close(self) -> None:
        if not self.closed:
            self.recorder.dropped[self.handle_id] += 1


@dataclass
class Recorder:
    """The session's adopter: real public objects, recorded handles."""

    adopted: dict[int, RecordedHandle] = field(default_factory=dict)
    dropped: Counter[int] = field(default_factory=Counter)
    unadopted: Counter[int] = field(default_factory=Counter)  # drop() without adoption

    def handle(self, handle_id: int) -> RecordedHandle:
        assert handle_id not in self.adopted, f"handle {handle_id} adopted twice"
        handle = self.adopted[handle_id] = RecordedHandle(handle_id, self)
        return handle

    def drop(self, handle_id: int) -> None:
        assert handle_id not in self.adopted, f"handle {handle_id} adopted and dropped"
        self.unadopted[handle_id] += 1
        self.dropped[handle_id] += 1

    def participant_view(self, record: Any) -> RemoteParticipant:
        return RemoteParticipant(record)

    def publication_view(self, record: Any) -> RemoteTrackPublication:
        return RemoteTrackPublication(record)

    def local_publication_view(self, record: Any, track: Any) -> LocalTrackPublication:
        return LocalTrackPublication(record, track, port=None)  # type: ignore[arg-type]

    def track_view(self, owned: track_pb2.OwnedTrack) -> Any:
        return remote_track_from_owned(owned, self.handle(owned.handle.id))

    def data_track_view(self, owned: Any) -> RemoteDataTrack:
        return RemoteDataTrack(owned, self.handle(owned.handle.id))

    def payload(self, owned: Any, ptr: int, length: int) -> bytes:
        self.drop(owned.id)
        return bytes(length)

    def permissions(self, proto: Any) -> Any:
        return permissions_from_proto(proto)

    def segment(self, proto: Any) -> TranscriptionSegment:
        return TranscriptionSegment(id=proto.id, text=proto.text, start_time=0, end_time=0,
                                    final=proto.final, language=proto.language)


_ids = count(1000)


def _owned_participant(identity: str) -> participant_pb2.OwnedParticipant:
    owned = participant_pb2.OwnedParticipant()
    owned.handle.id = next(_ids)
    owned.info.identity = identity
    owned.info.sid = f"PA_{identity}_{owned.handle.id}"
    return owned


def _owned_publication(
    sid: str, kind: int = track_pb2.KIND_AUDIO
) -> track_pb2.OwnedTrackPublication:
    owned = track_pb2.OwnedTrackPublication()
    owned.handle.id = next(_ids)
    owned.info.sid = sid
    owned.info.kind = kind  # type: ignore[assignment]
    return owned


def _event(which: str, **fields: Any) -> tuple[str, Any]:
    message = getattr(room_pb2.RoomEvent(), which)
    message.SetInParent()
    for name, value in fields.items():
        target = getattr(message, name)
        if hasattr(target, "CopyFrom") and not isinstance(value, (str, int)):
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return which, message


def _session() -> tuple[RoomSession, Recorder]:
    recorder = Recorder()
    owned = _owned_participant(LOCAL)
    local = LocalRecord(recorder.handle(owned.handle.id), owned.info)
    info = room_pb2.RoomInfo(name="room")
    session = RoomSession(recorder, ev, info, local)  # type: ignore[arg-type]
    session.set_local_view(LocalParticipant(local, port=None))  # type: ignore[arg-type]
    return session, recorder


@dataclass
class RemoteModel:
    view: RemoteParticipant
    publications: dict[str, bool] = field(default_factory=dict)  # sid -> subscribed
    muted: dict[str, bool] = field(default_factory=dict)
    data_tracks: set[str] = field(default_factory=set)


class RoomSessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.session, self.recorder = _session()
        self.remote: dict[str, RemoteModel] = {}
        self.local: dict[str, bool] = {}  # sid -> a subscriber came
        self.local_views: dict[str, LocalTrackPublication] = {}
        self.pending: dict[str, LocalTrackPublication] = {}  # unpublish sent, event to come
        self.local_data: dict[str, LocalDataTrack] = {}  # published by this client, by sid
        self.closed = False
        self.events: list[ev.RoomEvent] = []
        self.released: list[object] = []  # objects that just left (named by departure events)

    # -- driving --------------------------------------------------------------------------------

    def apply(self, which: str, **fields: Any) -> list[ev.RoomEvent]:
        self.events = self.session.apply(*_event(which, **fields))
        if self.closed:
            assert self.events == [], "a closed session emitted events"
        return self.events

    # remote participants

    @rule(identity=st.sampled_from(IDENTITIES))
    def join(self, identity: str) -> None:
        events = self.apply("participant_connected", info=_owned_participant(identity))
        if self.closed:
            return
        (event,) = events
        assert isinstance(event, ev.ParticipantConnected)
        old = self.remote.get(identity)
        if old is not None:  # the same identity again: the old one is replaced and released
            self._check_released_participant(old.view)
        self.remote[identity] = RemoteModel(event.participant)

    @rule(identity=st.sampled_from(IDENTITIES))
    def leave(self, identity: str) -> None:
        events = self.apply("participant_disconnected", participant_identity=identity,
                            disconnect_reason=lkanyio.DisconnectReason.CLIENT_INITIATED)
        known = self.remote.pop(identity, None)
        if known is None:
            assert events == []
            return
        (event,) = events
        assert isinstance(event, ev.ParticipantDisconnected)
        assert event.participant is known.view
        assert event.participant.disconnect_reason == lkanyio.DisconnectReason.CLIENT_INITIATED
        self._check_released_participant(known.view)

    def _check_released_participant(self, view: RemoteParticipant) -> None:
        assert view._handle.closed
        assert dict(view.track_publications) == {}
        assert dict(view.data_tracks) == {}

    # remote publications and tracks, in any order

    @rule(identity=st.sampled_from(IDENTITIES), sid=st.sampled_from(SIDS),
          video=st.booleans())
    def publish(self, identity: str, sid: str, video: bool) -> None:
        kind = track_pb2.KIND_VIDEO if video else track_pb2.KIND_AUDIO
        owned = _owned_publication(sid, kind)
        events = self.apply("track_published", participant_identity=identity, publication=owned)
        model = self.remote.get(identity)
        if model is None:
            assert events == []
            assert self.recorder.unadopted[owned.handle.id] == 1
            return
        (event,) = events
        assert isinstance(event, ev.TrackPublished)
        assert event.participant is model.view
        model.publications[sid] = False  # a publication again under a sid replaces the old
        model.muted[sid] = False

    @rule(identity=st.sampled_from(IDENTITIES), sid=st.sampled_from(SIDS))
    def unpublish(self, identity: str, sid: str) -> None:
        events = self.apply("track_unpublished", participant_identity=identity,
                            publication_sid=sid)
        model = self.remote.get(identity)
        if model is None or sid not in model.publications:
            assert events == []
            return
        (event,) = events
        assert isinstance(event, ev.TrackUnpublished)
        assert event.publication._handle.closed
        assert event.publication.track is None
        del model.publications[sid], model.muted[sid]

    @rule(identity=st.sampled_from(IDENTITIES), sid=st.sampled_from(SIDS))
    def subscribe(self, identity: str, sid: str) -> None:
        owned = track_pb2.OwnedTrack()
        owned.handle.id = next(_ids)
        owned.info.sid = sid
        owned.info.kind = track_pb2.KIND_AUDIO  # type: ignore[assignment]
        model = self.remote.get(identity)
        old = None
        if model is not None and sid in model.publications:
            old = model.view.track_publications[sid].track
        events = self.apply("track_subscribed", participant_identity=identity, track=owned)
        if model is None or sid not in model.publications:  # subscribed before published
            assert events == []
            assert self.recorder.unadopted[owned.handle.id] == 1
            return
        (event,) = events
        assert isinstance(event, ev.TrackSubscribed)
        assert event.publication.track is event.track
        if old is not None:
            assert old.closed  # subscribed again: the old track is released
        model.publications[sid] = True

    @rule(identity=st.sampled_from(IDENTITIES), sid=st.sampled_from(SIDS))
    def unsubscribe(self, identity: str, sid: str) -> None:
        events = self.apply("track_unsubscribed", participant_identity=identity, track_sid=sid)
        model = self.remote.get(identity)
        if model is None or not model.publications.get(sid):
            assert events == []
            return
        (event,) = events
        assert isinstance(event, ev.TrackUnsubscribed)
        assert event.track.closed
        model.publications[sid] = False

    @rule(identity=st.sampled_from((*IDENTITIES, LOCAL)), sid=st.sampled_from(SIDS),
          muted=st.booleans())
    def mute(self, identity: str, sid: str, muted: bool) -> None:
        events = self.apply("track_muted" if muted else "track_unmuted",
                            participant_identity=identity, track_sid=sid)
        if identity == LOCAL:
            known = sid in self.local
        else:
            model = self.remote.get(identity)
            known = model is not None and sid in model.publications
            if known:
                assert model is not None
                model.muted[sid] = muted
        if not known:
            assert events == []
            return
        (event,) = events
        assert isinstance(event, (ev.TrackMuted, ev.TrackUnmuted))
        assert event.publication.muted is muted

    # remote data tracks

    @rule(identity=st.sampled_from(IDENTITIES), sid=st.sampled_from(DATA_SIDS))
    def publish_data_track(self, identity: str, sid: str) -> None:
        owned = room_pb2.DataTrackPublished().track
        owned.handle.id = next(_ids)
        owned.info.sid = sid
        owned.info.name = sid.lower()
        owned.publisher_identity = identity
        events = self.apply("data_track_published", track=owned)
        model = self.remote.get(identity)
        if model is None:
            assert events == []
            assert self.recorder.unadopted[owned.handle.id] == 1
            return
        (event,) = events
        assert isinstance(event, ev.DataTrackPublished)
        assert event.participant is model.view
        model.data_tracks.add(sid)

    @rule(sid=st.sampled_from(DATA_SIDS))
    def unpublish_data_track(self, sid: str) -> None:
        events = self.apply("data_track_unpublished", sid=sid)
        owners = [m for m in self.remote.values() if sid in m.data_tracks]
        if not owners:
            assert events == []
            return
        (event,) = events
        assert isinstance(event, ev.DataTrackUnpublished)
        assert event.track._handle.closed
        # The first participant (in join order) that publishes it loses it.
        event_owner = next(m for m in owners if m.view is event.participant)
        event_owner.data_tracks.discard(sid)

    # this client's data tracks: published by a request, unpublished by one or by the room

    @rule(sid=st.sampled_from(DATA_SIDS))
    def local_publish_data_track(self, sid: str) -> None:
        self.events = []
        if sid in self.local_data:
            return  # the server refuses a second track under a name (and never reuses a sid)
        owned = room_pb2.DataTrackPublished().track
        owned.handle.id = next(_ids)
        owned.info.sid = sid
        track = LocalDataTrack(owned, port=None, handle=self.recorder.handle(owned.handle.id))  # type: ignore[arg-type]
        # A publish answered after the room closed is released at once, never kept.
        assert self.session.adopt_local_data_track(track) is not self.closed
        if self.closed:
            assert track._handle.closed
        else:
            self.local_data[sid] = track

    @precondition(lambda self: not self.closed)
    @rule(sid=st.sampled_from(DATA_SIDS))
    def local_unpublish_data_track(self, sid: str) -> None:
        self.events = []
        self.session.local_data_track_unpublished(sid)  # what unpublish_nowait tells it
        track = self.local_data.pop(sid, None)
        if track is not None:
            assert track._handle.closed

    # this client's publications: requests and their events

    @precondition(lambda self: not self.closed)
    @rule(sid=st.sampled_from(SIDS))
    def local_publish(self, sid: str) -> None:
        self.events = []
        old = self.local_views.get(sid)
        view = self.session.adopt_local_publication(_owned_publication(sid), track=object())  # type: ignore[arg-type]
        if old is not None:  # the server never gives one sid twice, but if it did: replaced
            assert old._handle.closed
        self.local[sid] = False
        self.local_views[sid] = view

    @rule(sid=st.sampled_from(SIDS), sent=st.booleans())
    def local_unpublish(self, sid: str, sent: bool) -> None:
        # unpublish_track's answer (sent) or a cancelled publish whose unpublish could not be
        # sent (the room is leaving): it leaves track_publications at once.
        self.events = []
        assert self.session.local_unpublished(sid, sent=sent) is (sid in self.local)
        if sid in self.local:
            view = self.local_views.pop(sid)
            del self.local[sid]
            if sent and not self.closed:
                old = self.pending.get(sid)
                if old is not None:
                    assert old._handle.closed  # its event will name the newer one
                self.pending[sid] = view
            else:
                assert view._handle.closed

    @rule(sid=st.sampled_from(SIDS))
    def local_unpublished_event(self, sid: str) -> None:
        events = self.apply("local_track_unpublished", publication_sid=sid)
        # A live publication under ``sid`` is the one the event unpublishes; an earlier one
        # waiting for its confirmation under the same sid (the server never reuses a sid, but
        # the session does not rely on it) is moot and already released.
        live = self.local_views.pop(sid, None)
        pending = self.pending.pop(sid, None)
        if live is not None and pending is not None:
            assert pending._handle.closed
        view = live or pending
        self.local.pop(sid, None)
        if view is None or self.closed:
            assert events == []
            return
        (event,) = events
        assert isinstance(event, ev.LocalTrackUnpublished)
        assert event.publication is view
        assert view._handle.closed

    @rule(sid=st.sampled_from(SIDS))
    def local_subscribed(self, sid: str) -> None:
        events = self.apply("local_track_subscribed", track_sid=sid)
        if sid not in self.local or self.closed:
            assert events == []
            return
        (event,) = events
        assert isinstance(event, ev.LocalTrackSubscribed)
        self.local[sid] = True

    @rule(previous=st.sampled_from(SIDS), new=st.sampled_from(SIDS))
    def local_republished(self, previous: str, new: str) -> None:
        if previous != new and new in self.local:
            return  # the server gives a republished track a sid no other track has
        info = track_pb2.TrackPublicationInfo(sid=new)
        handle = next(_ids)
        events = self.apply("local_track_republished", previous_sid=previous,
                            publication_handle=handle, info=info)
        view = self.local_views.pop(previous, None)
        if view is None or self.closed:
            assert events == []
            assert self.recorder.unadopted[handle] == 1
            return
        (event,) = events
        assert isinstance(event, ev.LocalTrackRepublished)
        assert event.publication is view
        assert event.previous_sid == previous
        assert view.sid == new  # the same object, new sid
        del self.local[previous]
        self.local[new] = False  # nobody is subscribed to the new publication yet
        self.local_views[new] = view

    # what participants send

    @rule(identity=st.sampled_from(("", *IDENTITIES, LOCAL)), dtmf=st.booleans())
    def receive(self, identity: str, dtmf: bool) -> None:
        message = room_pb2.RoomEvent().data_packet_received
        message.participant_identity = identity  # "": the server, or a sender not known yet
        handle = next(_ids)
        if dtmf:
            message.sip_dtmf.code = 1
        else:
            message.user.data.handle.id = handle
            message.user.data.data.data_len = 2
        events = self.apply("data_packet_received", participant_identity=identity,
                            **({"sip_dtmf": message.sip_dtmf} if dtmf else {"user": message.user}))
        if not dtmf:  # the buffer is released whatever happens to the packet
            assert self.recorder.unadopted[handle] == 1
        if self.closed:
            return
        (event,) = events
        assert isinstance(event, ev.SipDTMFReceived if dtmf else ev.DataReceived)
        assert event.sender_identity == identity  # kept whether or not the room knows it
        model = self.remote.get(identity)
        assert event.participant is (None if model is None else model.view)

    # participants' info, the room and the connection

    @rule(identity=st.sampled_from((*IDENTITIES, LOCAL)), text=st.text(max_size=5))
    def metadata(self, identity: str, text: str) -> None:
        participant = self.session.participant(identity)
        old = None if participant is None else participant.metadata
        events = self.apply("participant_metadata_changed", participant_identity=identity,
                            metadata=text)
        if participant is None or self.closed:
            assert events == []
            return
        assert events == [ev.ParticipantMetadataChanged(participant, old or "", text)]
        assert participant.metadata == text

    @rule(state=st.sampled_from(["reconnecting", "reconnected", "disconnected"]))
    def connection(self, state: str) -> None:
        reason = lkanyio.DisconnectReason.SERVER_SHUTDOWN
        fields = {"reason": reason} if state == "disconnected" else {}
        events = self.apply(state, **fields)
        if self.closed:
            return
        expected = {"reconnecting": lkanyio.ConnectionState.RECONNECTING,
                    "reconnected": lkanyio.ConnectionState.CONNECTED,
                    "disconnected": lkanyio.ConnectionState.DISCONNECTED}[state]
        assert self.session.state == expected
        assert len(events) == 1

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        self.events = []
        self.session.close()
        self.session.close()  # idempotent
        self.closed = True
        for model in self.remote.values():
            self._check_released_participant(model.view)
        for view in (*self.local_views.values(), *self.pending.values()):
            assert view._handle.closed
        for track in self.local_data.values():  # left published: the room released them
            assert track._handle.closed
        self.local_data.clear()
        self.remote.clear()
        self.local.clear()
        self.local_views.clear()
        self.pending.clear()

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def the_public_maps_equal_the_model(self) -> None:
        views = self.session.remote_views
        assert set(views) == set(self.remote)
        for identity, model in self.remote.items():
            view = views[identity]
            assert view is model.view, "a participant's object changed identity"
            assert self.session.participant(identity) is view
            pubs = view.track_publications
            assert {sid: p.subscribed for sid, p in pubs.items()} == model.publications
            assert {sid: p.muted for sid, p in pubs.items()} == model.muted
            assert set(view.data_tracks) == model.data_tracks
        local = self.session.local_view
        assert self.session.participant(LOCAL) is local
        assert set(local.track_publications) == set(self.local)
        for sid, view in local.track_publications.items():
            assert view is self.local_views[sid]
            assert view.sid == sid
        assert dict(local.data_tracks) == self.local_data

    @invariant()
    def every_event_names_live_objects(self) -> None:
        departures = (ev.ParticipantDisconnected, ev.TrackUnpublished, ev.TrackUnsubscribed,
                      ev.DataTrackUnpublished, ev.LocalTrackUnpublished)
        for event in self.events:
            if isinstance(event, departures):
                continue  # they name what just left; checked released in the rules
            participant = getattr(event, "participant", None)
            if isinstance(participant, RemoteParticipant):
                assert self.session.remote_views.get(participant.identity) is participant
                assert not participant._handle.closed
            publication = getattr(event, "publication", None)
            if publication is not None:
                assert not publication._handle.closed
                owner = participant if participant is not None else self.session.local_view
                assert owner.track_publications.get(publication.sid) is publication
            track = getattr(event, "track", None)
            if track is not None:
                assert not track._handle.closed

    @invariant()
    def a_handle_is_open_exactly_while_its_object_is_in_the_room(self) -> None:
        live: set[int] = set()
        local = self.session.local_view
        if not self.closed:
            live.add(local._handle.handle_id)
        for view in (*local.track_publications.values(), *self.pending.values()):
            live.add(view._handle.handle_id)
        for participant in self.session.remote_views.values():
            live.add(participant._handle.handle_id)
            for publication in participant.track_publications.values():
                live.add(publication._handle.handle_id)
                if publication.track is not None:
                    live.add(publication.track._handle.handle_id)
            live.update(t._handle.handle_id for t in participant.data_tracks.values())
        live.update(t._handle.handle_id for t in local.data_tracks.values())
        open_ = {i for i, h in self.recorder.adopted.items() if not h.closed}
        assert open_ == live
        assert all(n == 1 for n in self.recorder.dropped.values()), "a handle dropped twice"

    def teardown(self) -> None:
        self.session.close()
        assert all(h.closed for h in self.recorder.adopted.values())
        assert all(n == 1 for n in self.recorder.dropped.values())


RoomSessionMachine.TestCase.settings = settings(
    max_examples=examples(300), stateful_step_count=40, deadline=None
)
TestRoomSessionMachine = RoomSessionMachine.TestCase


# -- examples the machine also reaches, spelled out -----------------------------------------------


def _check(machine: RoomSessionMachine) -> None:
    machine.a_handle_is_open_exactly_while_its_object_is_in_the_room()
    machine.every_event_names_live_objects()
    machine.the_public_maps_equal_the_model()


def test_a_sid_published_again_before_its_unpublish_is_confirmed() -> None:
    # Found by a random run (the model named the older publication, the session the live one).
    machine = RoomSessionMachine()
    for step in (
        lambda: machine.local_publish(sid="TR_a"),
        lambda: machine.local_unpublish(sent=True, sid="TR_a"),
        lambda: machine.local_publish(sid="TR_a"),
        lambda: machine.local_unpublished_event(sid="TR_a"),
    ):
        step()
        _check(machine)
    machine.teardown()


def test_a_subscription_before_its_publication_is_released_not_kept() -> None:
    session, recorder = _session()
    session.apply(*_event("participant_connected", info=_owned_participant("alice")))
    owned = track_pb2.OwnedTrack()
    owned.handle.id = next(_ids)
    owned.info.sid = "TR_early"
    assert session.apply(*_event("track_subscribed", participant_identity="alice",
                                 track=owned)) == []
    assert recorder.unadopted[owned.handle.id] == 1


def test_the_room_state_events_change_the_room_info_they_name() -> None:
    session, _ = _session()
    assert session.apply(*_event("room_metadata_changed", metadata="m")) == [
        ev.RoomMetadataChanged("", "m")
    ]
    update = room_pb2.RoomInfo(sid="RM_1", name="room", metadata="stale", num_participants=3)
    assert session.apply("room_updated", update) == [
        ev.RoomSidChanged("RM_1"), ev.RoomUpdated(3, 0, False)
    ]
    assert (session.info.sid, session.info.metadata, session.info.num_participants) == (
        "RM_1", "m", 3)  # the metadata stays RoomMetadataChanged's


def test_unknown_and_stream_events_change_nothing() -> None:
    session, _ = _session()
    for which in ("eos", "text_stream_opened", "chat_message", None):
        assert session.apply(which, object()) == []


@pytest.mark.parametrize("which", ["data_packet_received"])
def test_a_received_packet_releases_its_buffer(which: str) -> None:
    session, recorder = _session()
    message = room_pb2.RoomEvent().data_packet_received
    message.participant_identity = "nobody"
    message.user.data.handle.id = next(_ids)
    message.user.data.data.data_len = 3
    (event,) = session.apply(which, message)
    assert isinstance(event, ev.DataReceived)
    assert event.data == bytes(3)
    assert event.participant is None
    assert recorder.unadopted[message.user.data.handle.id] == 1


def test_a_request_side_change_wakes_the_rooms_waiters() -> None:
    # wait_for_subscription and the self-updates wait on the room's state: a change the session
    # makes for a request (no event follows it at once) must wake them too.
    recorder = Recorder()
    owned = _owned_participant(LOCAL)
    local = LocalRecord(recorder.handle(owned.handle.id), owned.info)
    changes: list[str] = []
    session = RoomSession(recorder, ev, room_pb2.RoomInfo(), local,  # type: ignore[arg-type]
                          on_change=lambda: changes.append("changed"))
    session.set_local_view(LocalParticipant(local, port=None))  # type: ignore[arg-type]
    view = session.adopt_local_publication(_owned_publication("TR_w"), track=object())  # type: ignore[arg-type]
    assert changes == ["changed"]
    assert session.local_unpublished("TR_w", sent=True)
    assert changes == ["changed", "changed"]
    assert view._record.gone
    assert not session.local_unpublished("TR_w", sent=True)  # nothing changed: nobody woken
    assert changes == ["changed", "changed"]
