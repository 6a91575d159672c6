"""Participants: the local one (who acts) and the remote ones (who are observed)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, final, overload

import anyio

from . import _data_streams as _ds
from ._checks import check_identities, check_str, check_uint
from ._data_streams import ByteStreamInfo, ByteStreamWriter, TextStreamInfo, TextStreamWriter
from ._data_tracks import LocalDataTrack, RemoteDataTrack
from ._errors import (
    DataTrackError,
    NativeError,
    PublishDataError,
    PublishDTMFError,
    PublishTrackError,
    PublishTranscriptionError,
    ResourceClosedError,
    UnpublishTrackError,
    check_native,
    native_error,
)
from ._media._encoded_video import publish_options_for
from ._native._bridge import get_bridge
from ._native._memory import buffer_pointer
from ._native._proto import ffi_pb2, participant_pb2
from ._publication import (
    LocalTrackPublication,
    RemoteTrackPublication,
    TrackPublication,
    TrackPublishOptions,
)
from ._rpc import RpcCallInfo, RpcHandler, RpcInterceptor, RpcServer, perform_rpc
from ._track_permissions import ParticipantTrackPermission, set_track_subscription_permissions
from ._types import (
    ConnectionQuality,
    DisconnectReason,
    ParticipantKind,
    ParticipantKindDetail,
    ParticipantState,
    TrackSource,
)

if TYPE_CHECKING:
    from os import PathLike

    from ._core._session import LocalRecord, NativeHandle, ParticipantRecord, RemoteRecord
    from ._media._track import LocalTrack
    from ._port import RoomPort

__all__ = [
    "LocalParticipant",
    "Participant",
    "ParticipantPermissions",
    "RemoteParticipant",
    "Transcription",
    "TranscriptionSegment",
]

_DEFAULT_PUBLISH_OPTIONS = TrackPublishOptions()

_LOST_ANSWER = "request timeout"
"""How the native core ends an update whose answer it did not see (see ``_update_self``)."""
_UPDATE_SEEN_WAIT = 5.0
"""Seconds an accepted update waits for the room's state to show it (see ``_update_self``)."""


def attributes_applied(current: Mapping[str, str], requested: Mapping[str, str]) -> bool:
    """Whether ``current`` attributes show every requested change (an empty value deletes)."""
    return all(current.get(key, "") == value for key, value in requested.items())


@final
@dataclass(frozen=True)
class ParticipantPermissions:
    """What the server allows a participant to do (the protocol's eight permission fields).

    Attributes:
        can_subscribe: may subscribe to the others' tracks.
        can_publish: may publish tracks.
        can_publish_data: may send data packets and data streams.
        can_update_metadata: may change its own name, metadata and attributes.
        hidden: invisible to the other participants.
        can_publish_sources: the track sources it may publish; empty: any source.
        can_subscribe_metrics: may receive the others' metrics.
        can_manage_agent_session: may manage agent sessions in the room.
    """

    can_subscribe: bool
    can_publish: bool
    can_publish_data: bool
    can_update_metadata: bool
    hidden: bool
    can_publish_sources: tuple[TrackSource, ...] = ()
    can_subscribe_metrics: bool = False
    can_manage_agent_session: bool = False


def permissions_from_proto(p: participant_pb2.ParticipantPermission) -> ParticipantPermissions:
    """The public form of the native core's ``ParticipantPermission``."""
    return ParticipantPermissions(
        can_subscribe=p.can_subscribe,
        can_publish=p.can_publish,
        can_publish_data=p.can_publish_data,
        can_update_metadata=p.can_update_metadata,
        hidden=p.hidden,
        can_publish_sources=tuple(TrackSource(s) for s in p.can_publish_sources),
        can_subscribe_metrics=p.can_subscribe_metrics,
        can_manage_agent_session=p.can_manage_agent_session,
    )


@final
@dataclass(frozen=True, kw_only=True)
class TranscriptionSegment:
    """One segment of a transcription.

    Attributes:
        id: segment id; resending a segment with the same id updates it.
        text: the transcribed text.
        start_time: start of the segment, in milliseconds.
        end_time: end of the segment, in milliseconds.
        final: whether the text will not change any more.
        language: BCP-47 language tag.
    """

    id: str
    text: str
    start_time: int = 0
    end_time: int = 0
    final: bool = True
    language: str = ""


@final
@dataclass(frozen=True, kw_only=True)
class Transcription:
    """A transcription of a participant's track, sent to the room.

    Attributes:
        participant_identity: whose speech this is.
        track_sid: the track that was transcribed.
        segments: the transcribed segments.
    """

    participant_identity: str
    track_sid: str
    segments: Sequence[TranscriptionSegment] = field(default_factory=tuple)


class Participant:
    """State shared by local and remote participants (kept current by the room's events).

    A view: what it shows is the room session's record of the participant (the session
    changes it as events arrive; nothing else does).
    """

    __slots__ = ("__weakref__", "_record")

    def __init__(self, record: ParticipantRecord) -> None:
        self._record = record

    @property
    def _handle(self) -> NativeHandle:
        return self._record.handle

    @property
    def _info(self) -> participant_pb2.ParticipantInfo:
        return self._record.info

    @property
    def sid(self) -> str:
        """Server id of the participant."""
        return self._info.sid

    @property
    def identity(self) -> str:
        """Identity from the access token (unique in the room)."""
        return self._info.identity

    @property
    def name(self) -> str:
        """Display name."""
        return self._info.name

    @property
    def metadata(self) -> str:
        """Application metadata."""
        return self._info.metadata

    @property
    def attributes(self) -> Mapping[str, str]:
        """Key/value attributes (a read-only view)."""
        return MappingProxyType(dict(self._info.attributes))

    @property
    def kind(self) -> ParticipantKind:
        """Standard client, agent, SIP, ingress …."""
        return ParticipantKind(self._info.kind)

    @property
    def kind_details(self) -> tuple[ParticipantKindDetail, ...]:
        """More about the kind: Twilio or WhatsApp connector, cloud agent … (often empty)."""
        return tuple(ParticipantKindDetail(d) for d in self._info.kind_details)

    @property
    def state(self) -> ParticipantState:
        """Lifecycle state on the server."""
        return ParticipantState(self._info.state)

    @property
    def permissions(self) -> ParticipantPermissions:
        """What the server allows this participant to do."""
        return permissions_from_proto(self._info.permission)

    @property
    def connection_quality(self) -> ConnectionQuality | None:
        """Latest connection quality reported by the server (``None`` before its first report).

        Each report is a :class:`~lkanyio.ConnectionQualityChanged` event.  Measured on
        livekit-server v1.13.5: this client's own comes about 3 s after joining; a remote
        participant's once it publishes (none came in 20 s for one that published nothing).
        """
        # None until the server's first report: the native core's participant info has no
        # quality (measured: the first ConnectionQualityChanged comes about 3 s after joining,
        # EXCELLENT on the test namespace), so any value before it would be invented.
        return self._record.quality

    @property
    def joined_at(self) -> int:
        """When the participant joined, in milliseconds since the epoch (as the protocol has it).

        The native core passes on the server's ``joined_at_ms`` (measured: equal to what the
        server's RoomService lists as ``joined_at_ms``; its ``joined_at`` is in seconds).
        """
        return self._info.joined_at

    @property
    def disconnect_reason(self) -> DisconnectReason:
        """Why the participant left (``UNKNOWN`` while connected)."""
        return DisconnectReason(self._info.disconnect_reason)

    @property
    def track_publications(self) -> Mapping[str, TrackPublication]:
        """Published tracks by sid (a read-only view)."""
        raise NotImplementedError  # pragma: no cover - both subclasses override it

    def __repr__(self) -> str:
        return f"<{type(self).__name__} identity={self.identity!r} sid={self.sid!r}>"


@final
class RemoteParticipant(Participant):
    """Another participant in the room."""

    __slots__ = ()
    _record: RemoteRecord[RemoteTrackPublication, RemoteDataTrack]

    def __init__(self, record: RemoteRecord[RemoteTrackPublication, RemoteDataTrack]) -> None:
        super().__init__(record)

    @property
    def track_publications(self) -> Mapping[str, RemoteTrackPublication]:
        """Published tracks by sid (a read-only view)."""
        return MappingProxyType(self._record.publications)

    @property
    def data_tracks(self) -> Mapping[str, RemoteDataTrack]:
        """Published data tracks by sid (a read-only view)."""
        return MappingProxyType(self._record.data_tracks)


@final
class LocalParticipant(Participant):
    """This client in the room.

    Every method sends one request to the server and waits for its answer; wrap calls in
    ``anyio.fail_after`` to bound them.  A cancelled call withdraws its waiter at once, but the
    server may still have applied the change (it was already on its way).
    """

    __slots__ = ("_port", "_publishing", "_rpc")
    _record: LocalRecord[LocalTrackPublication, LocalDataTrack]

    def __init__(
        self, record: LocalRecord[LocalTrackPublication, LocalDataTrack], port: RoomPort
    ) -> None:
        super().__init__(record)
        self._port = port
        self._rpc: RpcServer | None = None
        self._publishing: anyio.Lock | None = None  # see _publish_turn

    def _publish_turn(self) -> anyio.Lock:
        """The lock that lets one publish or unpublish of this participant run at a time.

        Measured (livekit-ffi 0.13.2, livekit-server 1.13.5; two participants of one process,
        each with 4 tasks publishing and unpublishing audio tracks, a reliable data ping both
        ways every 100 ms): run concurrently for 30 s, the requests stalled the participants'
        data (worst round trip 45 s, median 17 s; 0.1 s and 0.007 s without churn), a metadata
        change took up to 6.5 s, and the server logged 212 "publish time out" errors; taking
        turns, worst 0.9 s, median 0.16 s, metadata 0.4 s, no server error.  The official SDK
        stalls the same way, so the cause is below lkanyio; taking turns here avoids it.
        """
        if self._publishing is None:  # created in a task: the constructor runs in the dispatcher
            self._publishing = anyio.Lock()
        return self._publishing

    # -- data streams --------------------------------------------------------------------------

    async def send_text(
        self,
        text: str,
        *,
        topic: str = "",
        attributes: Mapping[str, str] | None = None,
        destination_identities: Sequence[str] = (),
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        attachments: Sequence[str] = (),
        compress: bool = True,
        sender_identity: str | None = None,
    ) -> TextStreamInfo:
        """Send ``text`` as one text stream (any length: it is chunked for you).

        Args:
            text: the text.
            topic: receivers subscribe per topic (``room.text_streams(topic)``).
            attributes: key/value pairs the readers find in ``info.attributes``.
            destination_identities: send only to these participants (default: everyone).
            stream_id: the stream's id (default: a fresh one from the native core).
            reply_to_id: the id of the stream this one answers (``info.reply_to_id``).
            attachments: ids of byte streams that belong to this text
                (``info.attachments``).
            compress: let the native core compress the text for receivers that support it
                (the readers get the same text either way).
            sender_identity: the identity the stream says it is from (default: this
                participant's).  livekit-server delivers it with the sender's own identity
                regardless (see ``TextStreamReader.sender_identity``).

        Raises:
            DataStreamError: the native core or the server refused the stream.
        """
        return await _ds.send_text(
            self._port,
            text,
            topic=topic,
            attributes=attributes,
            destination_identities=destination_identities,
            stream_id=stream_id,
            reply_to_id=reply_to_id,
            attachments=attachments,
            compress=compress,
            sender_identity=sender_identity,
        )

    async def send_bytes(
        self,
        data: bytes | bytearray | memoryview,
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        attributes: Mapping[str, str] | None = None,
        destination_identities: Sequence[str] = (),
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """Send ``data`` as one byte stream.

        ``stream_id`` chooses the stream's id (default: a fresh one); with ``compress`` the
        native core may compress the data for receivers that support it (they read the same
        bytes either way).  The other options are :meth:`send_text`'s.

        Raises:
            DataStreamError: the native core or the server refused the stream.
        """
        return await _ds.send_bytes(
            self._port,
            bytes(data) if isinstance(data, (bytearray, memoryview)) else data,
            is_file=False,
            topic=topic,
            name=name,
            mime_type=mime_type,
            attributes=attributes,
            destination_identities=destination_identities,
            stream_id=stream_id,
            compress=compress,
        )

    async def send_file(
        self,
        path: str | PathLike[str],
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        attributes: Mapping[str, str] | None = None,
        destination_identities: Sequence[str] = (),
        stream_id: str | None = None,
        compress: bool = True,
    ) -> ByteStreamInfo:
        """Send a file as a byte stream (read by the native core, in chunks).

        The options are :meth:`send_bytes`'s.

        Raises:
            DataStreamError: the file could not be read or the stream was refused.
        """
        return await _ds.send_bytes(
            self._port,
            path,
            is_file=True,
            topic=topic,
            name=name,
            mime_type=mime_type,
            attributes=attributes,
            destination_identities=destination_identities,
            stream_id=stream_id,
            compress=compress,
        )

    def stream_text(
        self,
        *,
        topic: str = "",
        attributes: Mapping[str, str] | None = None,
        destination_identities: Sequence[str] = (),
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        attachments: Sequence[str] = (),
        sender_identity: str | None = None,
    ) -> TextStreamWriter:
        """Open a text stream to write chunk by chunk: ``async with lp.stream_text() as w:``.

        The options are :meth:`send_text`'s.  A text stream's size cannot be announced: the
        native core's text options have no length (``total_size`` exists for byte streams).
        ``await w.aclose(attributes=...)`` ends it with attributes for the readers.
        """
        return TextStreamWriter(
            self._port,
            topic=topic,
            attributes=attributes,
            destination_identities=destination_identities,
            stream_id=stream_id,
            reply_to_id=reply_to_id,
            attachments=attachments,
            sender_identity=sender_identity,
        )

    def stream_bytes(
        self,
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        attributes: Mapping[str, str] | None = None,
        destination_identities: Sequence[str] = (),
        stream_id: str | None = None,
        total_size: int | None = None,
    ) -> ByteStreamWriter:
        """Open a byte stream to write chunk by chunk: ``async with lp.stream_bytes() as w:``.

        Readers get it on ``room.byte_streams(topic)`` with ``name`` and ``mime_type`` in its
        info.  ``total_size`` announces the stream's size in bytes (the readers'
        ``info.total_length``); ``stream_id`` chooses its id.  Leaving the block on an
        exception ends the stream with an error for them; ``await w.aclose(attributes=...)``
        ends it with attributes for them.
        """
        return ByteStreamWriter(
            self._port,
            topic=topic,
            attributes=attributes,
            destination_identities=destination_identities,
            name=name,
            mime_type=mime_type,
            stream_id=stream_id,
            total_size=total_size,
        )

    # -- track subscription permissions -------------------------------------------------------

    def set_track_subscription_permissions(
        self,
        *,
        allow_all: bool,
        participant_permissions: Sequence[ParticipantTrackPermission] = (),
    ) -> None:
        """Choose who may subscribe to this participant's tracks (the server enforces it).

        Args:
            allow_all: every participant may subscribe to every track (the default state);
                ``participant_permissions`` is then ignored.
            participant_permissions: with ``allow_all=False``, what each listed participant
                may subscribe to; everyone else may subscribe to nothing.

        The native core sends the permissions to the server in the background, so this does
        not wait.  A participant denied a track is not subscribed to it when it asks; once
        allowed, the subscription it asked for goes through (it gets
        :class:`~lkanyio.TrackSubscribed`).  Measured with native core v0.13.2 and
        livekit-server 1.13.5: the denied participant gets no
        :class:`~lkanyio.TrackSubscriptionFailed` (the FFI protocol carries no permission
        verdict), and one whose permission is revoked while subscribed saw its
        ``TrackUnsubscribed`` only many seconds after the server revoked it.

        Raises:
            TypeError: an argument of the wrong type.
        """
        set_track_subscription_permissions(
            self._port, allow_all=allow_all, participant_permissions=participant_permissions
        )

    # -- RPC -----------------------------------------------------------------------------------

    async def perform_rpc(
        self,
        *,
        destination_identity: str,
        method: str,
        payload: str,
        response_timeout: float = 10.0,
        max_round_trip_latency: float | None = None,
    ) -> str:
        """Call ``method`` on another participant and return its response payload.

        ``response_timeout`` and ``max_round_trip_latency`` are the protocol's own limits (the
        two numbers RPC takes; bound anything else with your cancel scopes, which apply on
        top).  ``response_timeout`` is enforced by the peer as well: its handler is cancelled
        when it passes.  ``max_round_trip_latency`` bounds the time for the request to reach
        the callee and its acknowledgement to come back (the native core's default: 7 s);
        measured with livekit-ffi 0.13.2, the callee is given ``response_timeout`` minus it
        (at least 1 s) as its handler's deadline, and a call that is not acknowledged in time
        fails with ``CONNECTION_TIMEOUT``.  The call passes through the outgoing interceptors
        (:meth:`add_rpc_interceptor`) first.

        A call to an identity the room does not know goes out at once (the server routes it
        to a participant that joined but is not announced yet: livekit-server announces one
        that publishes nothing on a 3 s tick), and fails with ``RECIPIENT_NOT_FOUND`` if the
        identity is still unknown 4 s later, or if the call was not acknowledged before that:
        not after the 7 s ``CONNECTION_TIMEOUT``.  A participant the server never announces
        (a hidden one) can be called only if it answers within those 4 s.

        Raises:
            RpcError: the call failed (``code`` tells why: unsupported method, no such
                participant, timeout, application error raised by the handler, payload too
                large …).
            ValueError: a payload over 15 KiB, a method name over 8 KiB, a destination
                identity over 256 bytes (UTF-8 each), or a non-positive timeout.  The native
                core sends the method and both identities in one data packet of at most
                15 KiB (measured: a longer one failed with ``SEND_FAILED``); 256 bytes is
                livekit-server's default limit on identities, so no longer one can be in the
                room.
        """
        self._port.check_connected()
        call = RpcCallInfo(
            destination_identity=destination_identity,
            method=method,
            payload=payload,
            response_timeout=response_timeout,
            max_round_trip_latency=max_round_trip_latency,
        )
        interceptors = self._rpc.interceptors if self._rpc is not None else []
        return await perform_rpc(self._port, call, interceptors)

    def _rpc_server(self) -> RpcServer:
        self._port.check_connected()
        if self._rpc is None:
            self._rpc = RpcServer(self._port, self._handle.id)
            self._port.serve_rpc(self._rpc)
        return self._rpc

    @overload
    def register_rpc_method(self, method: str) -> Callable[[RpcHandler], RpcHandler]: ...

    @overload
    def register_rpc_method(self, method: str, handler: RpcHandler) -> RpcHandler: ...

    def register_rpc_method(
        self, method: str, handler: RpcHandler | None = None
    ) -> RpcHandler | Callable[[RpcHandler], RpcHandler]:
        """Serve ``method`` with ``async def handler(data: RpcInvocationData) -> str``.

        Also a decorator: ``@lp.register_rpc_method("name")``.

        Each call runs as a task in the room's task group, cancelled when the caller's deadline
        passes or the room closes (``data.cancel_reason`` then says which).  Returning sends
        the payload; raising :class:`RpcError` sends that error; any other exception reaches
        the caller as ``APPLICATION_ERROR`` with the exception's message.  Registering a
        method again replaces its handler.

        Synchronous handlers are refused: they would block the event loop (every room of the
        process) while they work and could not be cancelled at the deadline.  Do blocking
        work in a thread from an async handler (``await anyio.to_thread.run_sync(...)``).

        Raises:
            TypeError: ``handler`` is not an async function (``async def``, an object with an
                ``async def __call__``, or a ``functools.partial`` of either).
        """
        if handler is None:

            def decorator(fn: RpcHandler) -> RpcHandler:
                self.register_rpc_method(method, fn)
                return fn

            return decorator
        self._rpc_server().register(method, handler)
        return handler

    def unregister_rpc_method(self, method: str) -> None:
        """Stop serving ``method`` (callers then get ``UNSUPPORTED_METHOD``)."""
        if self._rpc is not None and not self._handle.closed:
            self._rpc.unregister(method)

    def add_rpc_interceptor(self, interceptor: RpcInterceptor) -> None:
        """Wrap this participant's RPC calls and/or handlers in ``interceptor``.

        Interceptors run in the order added (the first outermost); adding one already added
        does nothing.  See :class:`RpcInterceptor`.

        Raises:
            TypeError: ``interceptor`` is not an :class:`RpcInterceptor`.
        """
        self._rpc_server().add_interceptor(interceptor)

    def remove_rpc_interceptor(self, interceptor: RpcInterceptor) -> None:
        """Remove ``interceptor`` (calls already running keep it; unknown ones are ignored)."""
        if self._rpc is not None:
            self._rpc.remove_interceptor(interceptor)

    @property
    def track_publications(self) -> Mapping[str, LocalTrackPublication]:
        """Published tracks by sid (a read-only view)."""
        return MappingProxyType(self._record.publications)

    @property
    def data_tracks(self) -> Mapping[str, LocalDataTrack]:
        """Data tracks this participant publishes, by sid (a read-only view)."""
        return MappingProxyType(self._record.data_tracks)

    async def publish_data_track(self, name: str) -> LocalDataTrack:
        """Publish a data track called ``name`` (unique among this participant's tracks).

        Use the result with ``async with`` to unpublish it on exit.  A cancelled call that the
        server still completes is unpublished as soon as its late answer arrives, or at once
        if the answer had arrived but the call had not returned yet.

        Raises:
            DataTrackError: the native core or the server refused (for example a duplicate
                name, or a server without data tracks).
            ValueError: ``name`` is empty.
        """
        check_str("name", name)
        if not name:
            raise ValueError("a data track needs a non-empty name")
        req = self._request()
        msg = req.publish_data_track
        msg.local_participant_handle = self._handle.id
        msg.options.name = name

        def adopt(cb: Any) -> LocalDataTrack:
            if cb.WhichOneof("result") != "track":
                raise native_error(cb, DataTrackError, default="the data track was not published")
            track = LocalDataTrack(cb.track, self._port)
            if not self._port.session.adopt_local_data_track(track):
                raise ResourceClosedError("the room was left before the data track was published")
            return track

        def unpublish_late(cb: Any) -> None:
            if cb.WhichOneof("result") == "track":
                LocalDataTrack(cb.track, self._port).unpublish_nowait()

        result: LocalDataTrack = await get_bridge().request_async(
            req,
            on_deliver=adopt,
            on_late=unpublish_late,
            # Cancelled after ``adopt`` ran: unpublish and release it (synchronous, idempotent).
            on_abandon=LocalDataTrack.unpublish_nowait,
        )
        return result

    def _request(self) -> ffi_pb2.FfiRequest:
        return self._port.request()

    async def publish_data(
        self,
        payload: bytes | bytearray | memoryview | str,
        *,
        reliable: bool = True,
        destination_identities: Sequence[str] = (),
        topic: str = "",
    ) -> None:
        """Send a data packet to the room.

        Args:
            payload: the bytes to send; a ``str`` is sent as UTF-8.
            reliable: ordered, retransmitted delivery (``False``: lossy, lower latency).
            destination_identities: send only to these participants (default: everyone).
            topic: lets receivers tell kinds of messages apart.

        Without ``canPublishData`` in the access token this succeeds and the server drops the
        packet (it reports nothing back).  While the room is reconnecting the call waits, and
        the packet is sent once the room is back (measured: delivered exactly once, in order).

        Raises:
            PublishDataError: the native core or the server refused the packet (for example
                because it is over the size limit).
            TypeError: a payload, identity, topic or ``reliable`` of the wrong type.
            ValueError: a ``str`` payload holding a lone surrogate (not UTF-8 text).
        """
        if isinstance(payload, str):
            data = check_str("payload", payload).encode()  # a lone surrogate: ValueError
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            data = bytes(payload)
        else:
            raise TypeError(f"payload must be bytes or str, not {type(payload).__name__}")
        identities = check_identities(destination_identities)
        check_str("topic", topic)
        if not isinstance(reliable, bool):
            # protobuf would take 1 or 0.5 and raise OverflowError for 2**63.
            raise TypeError(f"reliable must be a bool, not {type(reliable).__name__}")
        req = self._request()
        msg = req.publish_data
        msg.local_participant_handle = self._handle.id
        address, pinned = buffer_pointer(data or b"\0")
        msg.data_ptr = address
        msg.data_len = len(data)
        msg.reliable = reliable
        msg.topic = topic
        msg.destination_identities.extend(identities)

        def keep_alive(_late: Any, _pinned: object = pinned) -> None:
            """The native core may read the payload until its callback arrives."""

        cb = await get_bridge().request_async(req, on_late=keep_alive)
        check_native(cb, PublishDataError)

    async def publish_dtmf(self, *, code: int, digit: str) -> None:
        """Send a SIP DTMF tone event to the room.

        Args:
            code: the DTMF code (0–15).
            digit: the matching character (``"0"``–``"9"``, ``"*"``, ``"#"``, ``"A"``–``"D"``).

        Like :meth:`publish_data`, without ``canPublishData`` this succeeds and the server
        drops it.

        Raises:
            PublishDTMFError: the native core refused it.
            TypeError: a code that is not an int.
            ValueError: a code outside 0–15.
        """
        check_uint("the DTMF code", code, maximum=15)
        check_str("digit", digit)
        req = self._request()
        req.publish_sip_dtmf.local_participant_handle = self._handle.id
        req.publish_sip_dtmf.code = code
        req.publish_sip_dtmf.digit = digit
        cb = await get_bridge().request_async(req)
        check_native(cb, PublishDTMFError)

    async def publish_transcription(self, transcription: Transcription) -> None:
        """Send a transcription to the room.

        livekit-server forwards transcriptions only from agent participants (an access token
        of kind ``agent``); from any other participant this succeeds and nobody receives it.

        Raises:
            PublishTranscriptionError: the native core or the server refused it.
        """
        if not isinstance(transcription, Transcription):
            raise TypeError("publish_transcription takes a lkanyio.Transcription")
        req = self._request()
        msg = req.publish_transcription
        msg.local_participant_handle = self._handle.id
        msg.participant_identity = check_str(
            "participant_identity", transcription.participant_identity
        )
        msg.track_id = check_str("track_sid", transcription.track_sid)
        for segment in transcription.segments:
            out = msg.segments.add()
            out.id = check_str("segment id", segment.id)
            out.text = check_str("segment text", segment.text)
            out.start_time = segment.start_time
            out.end_time = segment.end_time
            out.final = segment.final
            out.language = segment.language
        cb = await get_bridge().request_async(req)
        check_native(cb, PublishTranscriptionError)

    async def set_metadata(self, metadata: str) -> None:
        """Replace this participant's metadata.

        Needs ``canUpdateOwnMetadata`` in the access token.

        Raises:
            LiveKitError: the server refused the update.
        """
        req = self._request()
        req.set_local_metadata.local_participant_handle = self._handle.id
        req.set_local_metadata.metadata = check_str("metadata", metadata)
        await self._update_self("set_metadata", req, lambda: self.metadata == metadata)

    async def set_name(self, name: str) -> None:
        """Change this participant's display name.

        Needs ``canUpdateOwnMetadata`` in the access token.

        Raises:
            LiveKitError: the server refused the update.
        """
        req = self._request()
        req.set_local_name.local_participant_handle = self._handle.id
        req.set_local_name.name = check_str("name", name)
        await self._update_self("set_name", req, lambda: self.name == name)

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        """Set attributes (merged into the existing ones; an empty value deletes a key).

        Needs ``canUpdateOwnMetadata`` in the access token.

        Raises:
            LiveKitError: the server refused the update.
        """
        if not isinstance(attributes, Mapping):
            raise TypeError("attributes must be a mapping of str to str")
        req = self._request()
        msg = req.set_local_attributes
        msg.local_participant_handle = self._handle.id
        requested = dict(attributes)
        for key, value in requested.items():
            entry = msg.attributes.add()
            entry.key = check_str("attribute key", key)
            entry.value = check_str("attribute value", value)
        await self._update_self(
            "set_attributes", req, lambda: attributes_applied(self.attributes, requested)
        )

    async def _update_self(
        self, what: str, req: ffi_pb2.FfiRequest, applied: Callable[[], bool]
    ) -> None:
        """Send a metadata/name/attributes update; return once the room shows it.

        Two native-core (v0.13.2) quirks are handled here:

        * It builds every update from its cached name, metadata and attributes, which only the
          server's participant update refreshes, and that arrives after the call's own answer.
          Returning at the answer let ``set_attributes`` right after ``set_name`` send the old
          name back, and the server reverted it.  So the call also waits (at most
          ``_UPDATE_SEEN_WAIT`` seconds) until the room's state shows the change.
        * It listens for the server's answer only after sending, so a quick answer can be lost
          (about 1 call in 25 here) and the native call ends after 5 s with "request timeout"
          although the server applied the update.  So a change that the room's state shows is
          success without waiting for that answer.  An update the state already showed before
          it was sent (a no-op) waits for the answer, so a refusal is never masked.  A lost
          answer to a participant the server does not let update itself was a refusal (the
          server answers every update), and is reported as one.
        """
        port = self._port
        answer: Any = None
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:

            async def seen() -> None:
                if await port.wait_state(applied, math.inf):
                    tg.cancel_scope.cancel()  # the answer may be lost: do not wait for it

            if not applied():
                tg.start_soon(seen)
            try:
                answer = await get_bridge().request_async(req)
            except Exception as exc:  # raised below, not wrapped in an exception group
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if answer is None:
            return  # the room shows the change (the abandoned answer is dropped if it comes)
        error = answer.error
        if error and error.endswith(_LOST_ANSWER):
            if not self.permissions.can_update_metadata:
                raise NativeError(
                    f"{what} failed: does not have permission to update own metadata "
                    f"(the server's refusal was lost on the way; the native core said: {error})"
                )
            if await port.wait_state(applied, _UPDATE_SEEN_WAIT):
                return
        check_native(answer, what=f"{what} failed")
        await port.wait_state(applied, _UPDATE_SEEN_WAIT)

    async def publish_track(
        self, track: LocalTrack, options: TrackPublishOptions | None = None
    ) -> LocalTrackPublication:
        """Publish a local audio or video track.

        If the call is cancelled and the server still publishes the track, lkanyio unpublishes
        it again as soon as the late answer arrives; cancelled after the answer arrived but
        before the call returned, the publication is removed from ``track_publications`` and
        unpublished in the background.  Either way a cancelled publish leaves nothing behind.

        A participant's publishes and unpublishes take turns: called from several tasks at
        once, they reach the server one after the other (run together, they stalled the
        participant's data and metadata for seconds: see ``docs/how-to/media.md``).

        Raises:
            PublishTrackError: the native core or the server refused the track; or, at once,
                this participant's permissions (as last reported by the server) do not allow
                it: no ``can_publish``, or ``options.source`` outside a non-empty
                ``can_publish_sources`` (livekit-server ignores such a publication, and the
                native core would give up after 10 s).
            ValueError: ``options`` asks for the ``PRE_ENCODED`` encoder backend, which no
                track of a :class:`~lkanyio.VideoSource` or an audio source can use.
        """
        from ._media._track import LocalTrack

        if not isinstance(track, LocalTrack):
            raise TypeError("publish_track takes a LocalAudioTrack or LocalVideoTrack")
        if options is not None and not isinstance(options, TrackPublishOptions):
            raise TypeError("options must be a lkanyio.TrackPublishOptions")
        if options is not None:
            options._check_for(track)
        self._request()  # first: a closed room says so, whatever the permissions
        self._check_may_publish((options or _DEFAULT_PUBLISH_OPTIONS).source)

        def adopt(cb: Any) -> LocalTrackPublication:
            # Runs in the dispatcher, before the room event that announces the publication.
            if cb.WhichOneof("message") != "publication":
                raise native_error(cb, PublishTrackError, default="the track was not published")
            return self._port.session.adopt_local_publication(cb.publication, track)

        def unpublish_late(cb: Any) -> None:
            if cb.WhichOneof("message") != "publication":
                return
            get_bridge().drop_native(cb.publication.handle.id)
            self._unpublish_detached(cb.publication.info.sid)

        def unpublish_abandoned(publication: LocalTrackPublication) -> None:
            # Cancelled after ``adopt`` ran: the caller never sees the publication, so it
            # leaves ``track_publications`` now and is unpublished in the background.  Like
            # ``unpublish_track``, the LocalTrackUnpublished event that follows closes it.
            if publication.sid not in self._record.publications:
                return  # already unpublished (the room left, or an event beat us to it)
            sent = self._unpublish_detached(publication.sid)
            self._port.session.local_unpublished(publication.sid, sent=sent)

        async with self._publish_turn():
            req = self._request()  # the room may have closed while this waited its turn
            msg = req.publish_track
            msg.local_participant_handle = self._handle.id
            msg.track_handle = track._handle.id
            (options or _DEFAULT_PUBLISH_OPTIONS)._to_proto(msg.options)
            publish_options_for(track, msg.options)  # pre-encoded: its codec, passthrough
            result: LocalTrackPublication = await get_bridge().request_async(
                req, on_deliver=adopt, on_late=unpublish_late, on_abandon=unpublish_abandoned
            )
        return result

    def _check_may_publish(self, source: TrackSource) -> None:
        """Refuse at once a publication the server would ignore.

        Measured on livekit-server 1.13.5: it never answers one, and the native core fails it
        with "track publication timed out" after 10 s.
        """
        if not self._info.HasField("permission"):
            return  # nothing reported: let the server decide
        allowed = self.permissions
        if not allowed.can_publish:
            raise PublishTrackError(
                f"{self.identity!r} may not publish tracks (its permissions have can_publish "
                "off: the token's canPublish grant, or a later permission update)"
            )
        if allowed.can_publish_sources and source not in allowed.can_publish_sources:
            names = ", ".join(s.name for s in allowed.can_publish_sources)
            raise PublishTrackError(
                f"{self.identity!r} may publish only tracks of source {names}, not "
                f"{source.name} (set TrackPublishOptions.source)"
            )

    def _unpublish_detached(self, sid: str) -> bool:
        """Unpublish ``sid`` without waiting; ``False`` if the room is gone (nothing sent)."""
        if self._handle.closed or not self._port.connected:
            return False
        req = ffi_pb2.FfiRequest()
        req.unpublish_track.local_participant_handle = self._handle.id
        req.unpublish_track.track_sid = sid
        req.unpublish_track.stop_on_unpublish = True
        return get_bridge().request_detached(req, None)

    async def unpublish_track(self, track_sid: str) -> None:
        """Stop publishing the track with this sid.

        A call cancelled after the server answered has still unpublished the track: there is
        nothing to undo.  It takes its turn with the participant's other publishes and
        unpublishes (see :meth:`publish_track`).

        Raises:
            UnpublishTrackError: the native core or the server refused (e.g. an unknown sid).
            ValueError: ``track_sid`` is not a track sid (``"TR_…"``); the native core aborts
                the process on one.
        """
        check_str("track_sid", track_sid)
        if not track_sid.startswith("TR_"):
            raise ValueError(f"{track_sid!r} is not a track sid (they start with 'TR_')")
        self._request()  # a closed room says so at once

        def forget(cb: Any) -> None:
            # Runs in the dispatcher: the map is right before the caller resumes, and the
            # LocalTrackUnpublished event that may follow still finds the publication.  An
            # unpublish cancelled after this ran needs no undo: the track is gone either way.
            check_native(cb, UnpublishTrackError)
            self._port.session.local_unpublished(track_sid, sent=True)

        async with self._publish_turn():  # one publish or unpublish at a time (see there)
            req = self._request()
            req.unpublish_track.local_participant_handle = self._handle.id
            req.unpublish_track.track_sid = track_sid
            req.unpublish_track.stop_on_unpublish = True
            await get_bridge().request_async(req, on_deliver=forget)
