"""Room: joining a LiveKit room as an async context manager, and its event stream."""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, final
from urllib.parse import urlsplit

import anyio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

from . import _events as ev
from ._checks import check_bool, check_enum, check_positive, check_uint
from ._core._session import LocalRecord, RoomSession
from ._data_streams import (
    DEFAULT_MAX_BUFFERED_BYTES,
    ByteStreamReader,
    TextStreamReader,
    _Subscription,
)
from ._data_tracks import LocalDataTrack, RemoteDataTrack
from ._descriptors import descriptor_usage, out_of_descriptors_hint
from ._e2ee import E2EEManager, E2EEOptions
from ._errors import (
    ConnectError,
    ConnectionLostError,
    LiveKitError,
    NativeError,
    ResourceClosedError,
    check_native,
    native_error,
    raise_lone,
)
from ._media._track import remote_track_from_owned
from ._native._bridge import get_bridge
from ._native._handles import OwnedHandle
from ._native._logs import redact
from ._native._memory import copy_native
from ._native._proto import ffi_pb2, participant_pb2, room_pb2
from ._native._requests import wire_enum
from ._participant import (
    LocalParticipant,
    ParticipantPermissions,
    RemoteParticipant,
    TranscriptionSegment,
    permissions_from_proto,
)
from ._publication import LocalTrackPublication, RemoteTrackPublication
from ._rtc_config import DataStreamOptions, RtcConfiguration
from ._stats import TrackStats
from ._streams import EventSender, EventStream, open_event_stream
from ._types import (
    ConnectionState,
    DisconnectReason,
    IceTransportType,
    SimulateScenario,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from _lkffi_proto import data_track_pb2
    from anyio.abc import TaskGroup

    from ._core._session import LocalPublicationRecord, RemotePublicationRecord, RemoteRecord
    from ._media._track import LocalTrack, RemoteTrack
    from ._native._proto import handle_pb2, track_pb2
    from ._port import RoomPort, Session
    from ._rpc import RpcServer

__all__ = ["DISCONNECT_TIMEOUT", "Room", "RoomOptions", "SessionStats", "connect"]

_log = logging.getLogger("lkanyio")

DISCONNECT_TIMEOUT: Final = 5.0
"""Seconds leaving a room may take (shielded from cancellation) before lkanyio stops waiting for
the server's goodbye and releases everything anyway."""

_ALLOWED_SCHEMES: Final = frozenset({"ws", "wss", "http", "https"})
# connect_timeout is sent in whole milliseconds (uint64 connect_timeout_ms).  Measured on
# livekit-ffi 0.13.2: 0 ms fails the join at once ("signal failure: transport timed out"), so
# 0 does not mean "no limit" and is refused here; 1 ms mostly fails the same way (a local
# server sometimes answers within it); 2**64 - 1 ms joins normally (no overflow in the core).
# The bound above is one day: a longer wait for one WebSocket attempt is a mistake (a unit
# mix-up, milliseconds for seconds), not a wish.
_MAX_CONNECT_TIMEOUT: Final = 86_400.0


def _check_connect_timeout(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"connect_timeout must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or not 0.001 <= value <= _MAX_CONNECT_TIMEOUT:
        raise ValueError(
            f"connect_timeout must be from 0.001 to {_MAX_CONNECT_TIMEOUT:g} seconds, got {value}"
        )


@final
@dataclass(frozen=True, kw_only=True)
class RoomOptions:
    """Options for joining a room.

    Attributes:
        auto_subscribe: subscribe to every published track automatically.
        dynacast: pause video layers nobody watches.
        adaptive_stream: let the server adapt video quality to what is rendered.
        join_retries: how often the native core retries the initial connection.
        e2ee: end-to-end encryption; then ``room.e2ee`` manages the keys.
        rtc_config: ICE servers (STUN/TURN with credentials), relay-only and candidate
            gathering; ``None``: the LiveKit server's ICE servers, every candidate type.
        connect_timeout: seconds each signalling attempt (the WebSocket join) may take before
            the native core gives up on it and retries (``join_retries``), a protocol limit
            enforced by the native core: from 1 ms to one day, sent in whole milliseconds.
            ``None``: the native default (5 s).  To bound the whole join, wrap ``connect``
            in ``anyio.fail_after``.
        single_peer_connection: carry publishing and subscribing on one peer connection
            (``True``) or two (``False``).  ``None``: the native core's default, one
            connection when the server supports it (as the official SDK joins).  With two
            connections, every video track after the first goes out in the first one's codec
            whatever its ``TrackPublishOptions.video_codec`` says (measured with
            livekit-server 1.13.5, also with the official SDK: the server answers each later
            video section of the publisher connection with the first one's codec only).
        data_stream: how incoming data streams are received (their size limit).
    """

    auto_subscribe: bool = True
    dynacast: bool = False
    adaptive_stream: bool = False
    join_retries: int | None = None
    e2ee: E2EEOptions | None = None
    rtc_config: RtcConfiguration | None = None
    connect_timeout: float | None = None
    single_peer_connection: bool | None = None
    data_stream: DataStreamOptions | None = None

    def __post_init__(self) -> None:
        check_bool("auto_subscribe", self.auto_subscribe)
        check_bool("dynacast", self.dynacast)
        check_bool("adaptive_stream", self.adaptive_stream)
        if self.join_retries is not None:
            check_uint("join_retries", self.join_retries)
        if self.e2ee is not None and not isinstance(self.e2ee, E2EEOptions):
            raise TypeError("e2ee must be a lkanyio.E2EEOptions")
        if self.rtc_config is not None and not isinstance(self.rtc_config, RtcConfiguration):
            raise TypeError("rtc_config must be a lkanyio.RtcConfiguration")
        if self.connect_timeout is not None:
            _check_connect_timeout(self.connect_timeout)
        if self.single_peer_connection is not None:
            check_bool("single_peer_connection", self.single_peer_connection)
        if self.data_stream is not None and not isinstance(self.data_stream, DataStreamOptions):
            raise TypeError("data_stream must be a lkanyio.DataStreamOptions")

    def _to_proto(self, out: room_pb2.RoomOptions) -> None:
        if self.e2ee is not None:
            self.e2ee._to_proto(out.encryption)
        out.auto_subscribe = self.auto_subscribe
        out.dynacast = self.dynacast
        out.adaptive_stream = self.adaptive_stream
        if self.join_retries is not None:
            out.join_retries = self.join_retries
        if self.rtc_config is not None:
            self.rtc_config._to_proto(out.rtc_config)
        if self.connect_timeout is not None:
            out.connect_timeout_ms = max(1, round(self.connect_timeout * 1000))
        # Unset unless asked for: proto2 ``optional``, and the native core reads unset as its
        # own default, one peer connection (livekit-ffi 0.13.2; livekit-server 1.13.5 logs
        # "UseSinglePeerConnection": true, as for the official SDK, which leaves it unset).
        # Measured: sending ``false`` (lkanyio's old default) made a participant's second
        # video track go out in its first track's codec (VP9 then H264: VP9 twice), because
        # on two connections the server answers the second video section with the codec of
        # the first; the official SDK sending ``false`` does the same.
        if self.single_peer_connection is not None:
            out.single_peer_connection = self.single_peer_connection
        if self.data_stream is not None:
            self.data_stream._to_proto(out.data_stream)


_DEFAULT_OPTIONS = RoomOptions()


@final
@dataclass(frozen=True)
class SessionStats:
    """WebRTC statistics of a room's peer connections.

    On one peer connection (the default when the server supports it, or
    ``RoomOptions(single_peer_connection=True)``) the one connection reports as the
    publisher's and ``subscriber`` has no reports; ``single_peer_connection=False`` gives
    two connections, each with its own reports.

    Attributes:
        publisher: reports of the connection that sends this client's tracks and data.
        subscriber: reports of the connection that receives the others' tracks and data.
    """

    publisher: TrackStats
    subscriber: TrackStats


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in _ALLOWED_SCHEMES or not parts.netloc:
        raise ValueError(
            "url must be a ws://, wss://, http:// or https:// URL of a LiveKit server"
        )
    return url


def connect(url: str, token: str, *, options: RoomOptions | None = None) -> Room:
    """Join a room: use the result with ``async with``.

    ::

        async with lkanyio.connect(url, token) as room:
            async with room.events() as events:
                async for event in events:
                    ...

    Leaving the block disconnects and releases everything, also on error or cancellation.  If
    the server or the network ends the session, the block is cancelled and ends with
    :class:`~lkanyio.ConnectionLostError`.  Cancelling the ``async with`` while it connects never
    hangs: if the connection completes afterwards, lkanyio leaves the room again.

    Args:
        url: the server's URL (``ws``, ``wss``, ``http`` or ``https``).
        token: an access token for the room (never logged nor shown in reprs).
        options: how to join.

    Raises:
        ConnectError: the server or the native core refused the connection.
        ValueError: a URL with another scheme, or an empty token.
    """
    _check_url(url)
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    if not token:
        raise ValueError("token must not be empty")
    if options is not None and not isinstance(options, RoomOptions):
        raise TypeError("options must be a lkanyio.RoomOptions")
    return Room(url, token, options or _DEFAULT_OPTIONS)


def _late_connect(cb: Any) -> None:
    """A connect finished after its caller gave up: leave the room and drop what it returned."""
    if cb.WhichOneof("message") != "result":
        return
    result = cb.result
    handles = [result.room.handle.id, result.local_participant.handle.id]
    for entry in result.participants:
        handles.append(entry.participant.handle.id)
        handles.extend(p.handle.id for p in entry.publications)
    bridge = get_bridge()
    # The native room holds its events, and its disconnect, until it is told the client is
    # ready (measured: without this the disconnect callback never comes).  Its events then go
    # unrouted, and the bridge drops the handles they carry.
    try:
        bridge.request(_ready_request(result.room.handle.id))
    except Exception:
        _log.exception("lkanyio: could not release a room whose connect was cancelled")
    req = ffi_pb2.FfiRequest()
    req.disconnect.room_handle = result.room.handle.id
    req.disconnect.reason = wire_enum(
        participant_pb2.DisconnectReason, DisconnectReason.CLIENT_INITIATED
    )

    def drop_all(_cb: Any) -> None:
        for handle in handles:
            bridge.drop_native(handle)

    bridge.request_detached(req, drop_all)


@final
class Room:
    """A joined room.  Get one from :func:`connect`; it is usable inside its ``async with``."""

    def __init__(self, url: str, token: str, options: RoomOptions) -> None:
        self._url = url
        self._token = token
        self._options = options
        self._e2ee: E2EEManager | None = None
        self._handle: OwnedHandle | None = None
        self._session: Session | None = None  # the room's state, from joining on
        self._port: Final = _Port(self)
        self._rpc: RpcServer | None = None
        self._subscribers: set[EventSender[ev.RoomEvent]] = set()
        self._tg: TaskGroup | None = None
        self._entered = False
        self._closing = False
        self._leave_reason = DisconnectReason.CLIENT_INITIATED
        self._said_disconnected = False  # whether subscribers got a Disconnected event
        self._closed = False
        self._eos: anyio.Event | None = None
        self._ready_sent = False
        self._changed: anyio.Event | None = None  # see _notify_changed
        self._lost: ConnectionLostError | None = None
        self._stream_subscribers: list[_Subscription] = []
        self._unclaimed_streams = 0

    # -- public state -------------------------------------------------------------------------

    @property
    def _info(self) -> room_pb2.RoomInfo:
        return _NO_INFO if self._session is None else self._session.info

    @property
    def name(self) -> str:
        """The room's name."""
        return self._info.name

    @property
    def sid(self) -> str:
        """The room's server id ("" until the server has assigned it; see :meth:`wait_for_sid`)."""
        return self._info.sid

    @property
    def metadata(self) -> str:
        """The room's metadata."""
        return self._info.metadata

    @property
    def num_participants(self) -> int:
        """Participant count as last reported by the server."""
        return self._info.num_participants

    @property
    def num_publishers(self) -> int:
        """How many participants publish tracks, as last reported by the server."""
        return self._info.num_publishers

    @property
    def creation_time(self) -> int:
        """When the server created the room, in milliseconds since the epoch.

        The native core passes on the server's ``creation_time_ms`` (measured: equal to the
        RoomService's ``creation_time_ms`` for the room; its ``creation_time`` is in seconds).
        """
        return self._info.creation_time

    @property
    def is_recording(self) -> bool:
        """Whether the room is being recorded (an egress is active), as reported by the server."""
        return self._info.active_recording

    @property
    def empty_timeout(self) -> int:
        """Seconds the server keeps the room open with nobody in it (the room's setting)."""
        return self._info.empty_timeout

    @property
    def departure_timeout(self) -> int:
        """Seconds the server keeps the room open after the last participant left."""
        return self._info.departure_timeout

    @property
    def connection_state(self) -> ConnectionState:
        """Connected, reconnecting or disconnected."""
        return ConnectionState.DISCONNECTED if self._session is None else self._session.state

    @property
    def connected(self) -> bool:
        """Whether the room is connected (or reconnecting) and not closed."""
        return self._handle is not None and not self._closing and self._lost is None

    @property
    def local_participant(self) -> LocalParticipant:
        """This client in the room.

        Raises:
            ResourceClosedError: before the room is joined.
        """
        if self._session is None:
            raise ResourceClosedError("the room is not connected; use 'async with connect(...)'")
        return self._session.local_view

    @property
    def remote_participants(self) -> Mapping[str, RemoteParticipant]:
        """The other participants, by identity (a read-only view)."""
        return MappingProxyType({} if self._session is None else self._session.remote_views)

    async def wait_for_sid(self) -> str:
        """Wait until the server has assigned the room's sid and return it.

        Raises:
            ConnectionLostError: the room disconnected first (never hangs on a dead room).
            ResourceClosedError: the room was closed first.
        """
        while not self._info.sid:
            self._check_connected()
            await self._next_change()
        return self._info.sid

    @property
    def e2ee(self) -> E2EEManager:
        """The end-to-end encryption key manager.

        Raises:
            LiveKitError: the room was joined without ``RoomOptions(e2ee=...)``.
        """
        if self._options.e2ee is None:
            raise LiveKitError("this room was joined without end-to-end encryption")
        if self._e2ee is None:  # one manager per room: it remembers set_enabled
            self._e2ee = E2EEManager(self._port, self._options.e2ee)
        return self._e2ee

    async def get_rtc_stats(self) -> SessionStats:
        """Ask WebRTC for the statistics of the room's publisher and subscriber connections.

        Raises:
            NativeError: with the native core's message.
            ResourceClosedError: the room is not connected.
        """
        req = ffi_pb2.FfiRequest()
        req.get_session_stats.room_handle = self._require_connected_handle()
        cb = await get_bridge().request_async(req)
        if cb.WhichOneof("message") != "result":
            raise native_error(cb, NativeError, what="get_rtc_stats failed")
        return SessionStats(
            publisher=TrackStats._from_proto(cb.result.publisher_stats),
            subscriber=TrackStats._from_proto(cb.result.subscriber_stats),
        )

    async def simulate_scenario(self, kind: SimulateScenario) -> None:
        """Make the native core simulate a failure of this room's connection (for tests).

        Returns once the native core has started the scenario; what follows arrives as room
        events (see :class:`~lkanyio.SimulateScenario` for what each kind did, measured).

        Raises:
            NativeError: the native core refused the scenario (with its message).
            ResourceClosedError: the room is not connected.
            TypeError: ``kind`` is not a :class:`~lkanyio.SimulateScenario`.
        """
        kind = check_enum("kind", kind, SimulateScenario)
        req = ffi_pb2.FfiRequest()
        req.simulate_scenario.room_handle = self._require_connected_handle()
        req.simulate_scenario.scenario = wire_enum(room_pb2.SimulateScenarioKind, kind)
        cb = await get_bridge().request_async(req)
        check_native(cb, what=f"simulate_scenario({kind.name}) failed")

    def _require_connected_handle(self) -> int:
        self._check_connected()
        return self._require_handle()

    def events(self, *, max_buffered: int = 1024) -> EventStream[ev.RoomEvent]:
        """Subscribe to the room's events.

        Every subscriber gets every event from the moment it subscribes; subscribe before your
        first ``await`` after joining to miss nothing.  Events are never dropped: a subscriber
        that lets more than ``max_buffered`` events pile up has its stream ended with
        :class:`~lkanyio.EventStreamOverflowError`.  The stream ends after ``Disconnected`` when
        the room closes.

        Args:
            max_buffered: how many undelivered events to hold for this subscriber.
        """
        check_positive("max_buffered", max_buffered)
        sender: EventSender[ev.RoomEvent]

        def unsubscribe() -> None:
            self._subscribers.discard(sender)

        sender, stream = open_event_stream(
            max_buffered=max_buffered, overflow="fail", on_close=unsubscribe, what="room events"
        )
        if self._closed or (self._eos is not None and self._eos.is_set()):
            sender.end()
        else:
            self._subscribers.add(sender)
        return stream

    def _check_connected(self) -> None:
        if self._lost is not None:
            raise ConnectionLostError(str(self._lost), reason=self._lost.reason)
        if self._handle is None or self._closing:
            raise ResourceClosedError("the room is not connected")

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Room:
        if self._entered:
            raise RuntimeError("a Room can be entered only once; call connect() again")
        self._entered = True
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            await self._connect()
        except BaseException:
            with anyio.move_on_after(DISCONNECT_TIMEOUT, shield=True):
                await self._shutdown()
            # Close the (still empty) task group without handing it the error, so the caller
            # gets the error itself and not an ExceptionGroup wrapping it.
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        with anyio.move_on_after(DISCONNECT_TIMEOUT, shield=True):
            await self._shutdown()
        tg.cancel_scope.cancel()
        try:
            suppressed = await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            raise_lone(group)
        lost = self._lost
        if lost is None or isinstance(exc, ConnectionLostError):
            return suppressed
        if exc is None or suppressed or _is_cancellation(exc):
            # The block was cancelled because the session ended.  That cancellation is ours, but
            # it may have buried the block's own failure (cleanup awaits are cancelled too):
            # chain that one.
            raise lost from _failure_behind(exc)
        if isinstance(exc, LiveKitError):
            # An operation in the block failed because the session ended: say so, and chain it.
            raise lost from exc
        return suppressed

    async def disconnect(
        self, *, reason: DisconnectReason = DisconnectReason.CLIENT_INITIATED
    ) -> None:
        """Leave the room now (idempotent); the ``async with`` block then just ends.

        Args:
            reason: why this client leaves, as the others see it (measured: the other
                participants' :class:`~lkanyio.ParticipantDisconnected` and this room's last
                :class:`~lkanyio.Disconnected` carry it).  Only the first call's reason counts.

        Raises:
            TypeError: ``reason`` is not a :class:`~lkanyio.DisconnectReason`.
            ValueError: an ``int`` that is not one.
        """
        reason = check_enum("reason", reason, DisconnectReason)
        with anyio.move_on_after(DISCONNECT_TIMEOUT, shield=True):
            await self._shutdown(reason)

    async def _connect(self) -> None:
        req = ffi_pb2.FfiRequest()
        req.connect.url = self._url
        req.connect.token = self._token
        self._options._to_proto(req.connect.options)
        await get_bridge().request_async(req, on_deliver=self._adopt, on_late=_late_connect)
        self._send_ready()

    def _send_ready(self) -> None:
        """Let the native room deliver its events (and, later, complete its disconnect)."""
        handle = self._require_handle()
        if not self._ready_sent:
            self._ready_sent = True
            get_bridge().request(_ready_request(handle))

    def _adopt(self, cb: Any) -> None:
        """Build the room's state from the connect callback (runs in the dispatcher)."""
        if cb.WhichOneof("message") != "result":
            # The server echoes a refused token in its 401 body: never show it.
            raise ConnectError(self._connect_failure(redact(cb.error) or "the connection failed"))
        result = cb.result
        bridge = get_bridge()
        self._handle = OwnedHandle(result.room.handle.id)
        owned = result.local_participant
        local: LocalRecord[LocalTrackPublication, LocalDataTrack] = LocalRecord(
            OwnedHandle(owned.handle.id), owned.info
        )
        session: Session = RoomSession(
            NativeAdopter(self._port), ev, result.room.info, local, self._notify_changed
        )
        session.set_local_view(LocalParticipant(local, self._port))
        for entry in result.participants:
            session.adopt_remote(entry.participant, entry.publications)
        self._session = session
        self._eos = anyio.Event()
        bridge.bind(self._handle.id, self._on_room_event)
        bridge.bind(local.handle.id, self._on_rpc_invocation)

    def _connect_failure(self, message: str) -> str:
        """The native core's reason, and what it means: out of file descriptors, or relay-only.

        A process out of descriptors fails a join with the native core's "Too many open
        files", or after its ICE wait with "wait_pc_connection timed out" (lkanyio._descriptors
        has the measurements): both are told by :func:`out_of_descriptors_hint`.

        Measured (livekit-ffi 0.13.2, coturn refusing the password with 401): a relay-only
        client gathers no candidate at all, signalling succeeds, and each join attempt ends
        after the native core's fixed 15 s peer-connection wait (``connect_timeout`` does not
        shorten it) with "wait_pc_connection timed out" - the same words as any other ICE
        failure, so the hint names what relay-only depends on.
        """
        hint = out_of_descriptors_hint(message, descriptor_usage())
        if hint is not None:
            return f"{message}; {hint}"
        rtc = self._options.rtc_config
        if (
            rtc is not None
            and rtc.ice_transport_type == IceTransportType.RELAY
            and "wait_pc_connection" in message
        ):
            servers = ", ".join(url for server in rtc.ice_servers for url in server.urls)
            message += (
                "; relay-only (IceTransportType.RELAY) and no relayed connection came up: "
                + (
                    f"check the TURN servers {servers} are reachable and take the username "
                    "and password given"
                    if servers
                    else "no ice_servers were given, so only the LiveKit server's TURN could "
                    "relay"
                )
            )
        return message

    def _require_handle(self) -> int:
        if self._handle is None:
            raise ResourceClosedError("the room is not connected")
        return self._handle.id

    async def _shutdown(self, reason: DisconnectReason = DisconnectReason.CLIENT_INITIATED) -> None:
        """Leave the room (if joined) and release every handle.  Idempotent."""
        if self._closed:
            return
        self._closing = True
        self._leave_reason = reason
        bridge = get_bridge()
        handle = self._handle
        try:
            if handle is not None and self._eos is not None and not self._eos.is_set():
                # A connect cancelled after its answer was adopted never said "ready"; the
                # native room would then never finish its disconnect, and the server would
                # keep a ghost until its departure timeout.
                self._send_ready()
                req = ffi_pb2.FfiRequest()
                req.disconnect.room_handle = handle.id
                req.disconnect.reason = wire_enum(participant_pb2.DisconnectReason, reason)
                await bridge.request_async(req)
                with anyio.move_on_after(DISCONNECT_TIMEOUT):
                    await self._eos.wait()
        finally:
            self._release()

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        bridge = get_bridge()
        self._say_disconnected()
        for sender in list(self._subscribers):
            sender.end()
        self._subscribers.clear()
        for subscription in self._stream_subscribers:
            subscription.feed.end()
            subscription.close_readers()  # the room is gone: so are the streams it delivered
        self._stream_subscribers.clear()
        if self._rpc is not None:
            self._rpc.cancel_running()
        session = self._session
        if session is not None:
            if not session.local.handle.closed:
                bridge.unbind(session.local.handle.id)
            session.close()  # every participant, publication and track it adopted
        if self._handle is not None:
            bridge.unbind(self._handle.id)
            self._handle.close()
        self._notify_changed()

    # -- event routing (synchronous, in the dispatcher) ---------------------------------------

    def _emit(self, event: ev.RoomEvent) -> None:
        for sender in list(self._subscribers):
            if not sender.send_nowait(event):
                self._subscribers.discard(sender)

    def _on_rpc_invocation(self, message: Any) -> None:
        if self._rpc is not None:
            self._rpc.on_invocation(message)
            return
        # Nobody serves RPC in this room: answer at once so the caller does not wait for its
        # timeout.  1400 is LiveKit's "unsupported method".
        req = ffi_pb2.FfiRequest()
        resp = req.rpc_method_invocation_response
        resp.local_participant_handle = message.local_participant_handle
        resp.invocation_id = message.invocation_id
        resp.error.code = 1400
        resp.error.message = "Method not supported at destination"
        get_bridge().request(req)

    def _on_room_event(self, message: Any) -> None:
        which = message.WhichOneof("message")
        if which == "eos":
            self._ev_eos()
        elif which in ("byte_stream_opened", "text_stream_opened"):
            self._ev_stream_opened(which, getattr(message, which))
        elif which is not None and self._session is not None:
            for event in self._session.apply(which, getattr(message, which)):
                if isinstance(event, ev.Disconnected):
                    self._ev_disconnected(event)
                self._emit(event)
        self._notify_changed()

    def _notify_changed(self) -> None:
        """Wake every task waiting for the room's state to change.

        Called after each room event (once the state is updated) and when the room closes.
        """
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def _next_change(self) -> None:
        """Wait for the next :meth:`_notify_changed`."""
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    async def _wait_state(self, predicate: Callable[[], bool], bound: float) -> bool:
        """Wait until ``predicate()`` holds, re-checking after each change of the room's state.

        Gives up (returning ``False``) after ``bound`` seconds or when the room is no longer
        connected; never raises for either.
        """
        with anyio.move_on_after(bound):
            while not predicate() and self.connection_state == ConnectionState.CONNECTED:
                await self._next_change()
        return predicate()

    async def _wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (see :meth:`_Port.wait_until`)."""
        while not predicate():
            await self._next_change()

    def _say_disconnected(self) -> None:
        """End a joined room's event streams with Disconnected, once, when we leave.

        Measured (livekit-ffi 0.13.2, 1 run in about 20 under a loaded test run): after a
        client-initiated disconnect the native core sent the connection state change and the
        end of stream but no ``disconnected`` event, so a subscriber's last event was not
        Disconnected.  Leaving always ends with one, carrying the reason given to ``disconnect``.
        """
        if self._closing and not self._said_disconnected and self._handle is not None:
            self._said_disconnected = True
            self._emit(ev.Disconnected(self._leave_reason))

    def _ev_disconnected(self, event: ev.Disconnected) -> None:
        self._said_disconnected = True
        if not self._closing and self._lost is None:
            # The server or the network ended the session: end the user's block loudly.
            self._lost = ConnectionLostError(
                f"disconnected from the room: {event.reason.name}", reason=event.reason
            )
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    def _ev_eos(self) -> None:
        self._say_disconnected()
        for sender in list(self._subscribers):
            sender.end()
        self._subscribers.clear()
        if self._eos is not None:
            self._eos.set()

    def text_streams(
        self, topic: str | None = None, *, max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    ) -> EventStream[TextStreamReader]:
        """Receive incoming text streams (on ``topic``, or on every topic) as readers.

        Each stream goes to one subscriber: the first live one whose topic matches (a
        subscription that overflowed takes no more streams).  A stream nobody subscribed for is
        released at once and counted in :attr:`unclaimed_streams`.

        The readers belong to the subscription: closing it (leaving its ``async with``) closes
        every reader it delivered, read or not; read them inside the block.  A reader dropped
        unread is released when garbage collected.

        Args:
            topic: only streams on this topic (``None``: every topic not taken by an earlier
                subscription).
            max_buffered_bytes: how many bytes of a stream a reader holds unread (UTF-8 for
                text).  The native core pushes every chunk as it arrives and cannot be made to
                wait, so past this the stream is dropped and reading it raises
                :class:`~lkanyio.DataStreamOverflowError`; the room carries on.  ``read_all``
                holds the whole stream, so for it this bounds the stream's size.
        """
        return self._subscribe_streams("text", topic, max_buffered_bytes)

    def byte_streams(
        self, topic: str | None = None, *, max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    ) -> EventStream[ByteStreamReader]:
        """Receive incoming byte streams and files (see :meth:`text_streams`)."""
        return self._subscribe_streams("byte", topic, max_buffered_bytes)

    def _subscribe_streams(
        self, kind: Literal["text", "byte"], topic: str | None, max_buffered_bytes: int
    ) -> EventStream[Any]:
        if topic is not None and not isinstance(topic, str):
            raise TypeError("topic must be a str or None")
        check_uint("max_buffered_bytes", max_buffered_bytes, minimum=1, bits=63)
        subscription: _Subscription

        def unsubscribe() -> None:
            if subscription in self._stream_subscribers:
                self._stream_subscribers.remove(subscription)
            subscription.close_readers()

        sender: EventSender[Any]
        stream: EventStream[Any]
        sender, stream = open_event_stream(
            max_buffered=256,
            overflow="fail",
            on_close=unsubscribe,
            discard=self._release_unclaimed,
            what=f"{kind} streams",
        )
        subscription = _Subscription(kind, topic, max_buffered_bytes, sender)
        if self._closed:
            sender.end()
        else:
            self._stream_subscribers.append(subscription)
        return stream

    @property
    def unclaimed_streams(self) -> int:
        """Incoming data streams released unread.

        Counts streams nobody subscribed to, and readers still waiting in a
        :meth:`text_streams`/:meth:`byte_streams` subscription when it was closed or overflowed.
        """
        return self._unclaimed_streams

    def _ev_stream_opened(self, which: str, m: Any) -> None:
        kind: Literal["text", "byte"] = "text" if which == "text_stream_opened" else "byte"
        topic = m.reader.info.topic
        for subscription in list(self._stream_subscribers):
            if not subscription.matches(kind, topic):
                continue
            # Ask before building the reader: a reader starts receiving (taking the native
            # stream) as it is built, so it can only be built for a subscription that takes it.
            if subscription.feed.make_room():
                subscription.feed.send_nowait(
                    subscription.reader(m.reader, m.participant_identity)
                )
                return
            # Ended (it overflowed, now or before): it takes nothing any more.  Left in the list
            # it stayed the first match and swallowed every later stream; drop it, as _emit does
            # for room events, and offer the stream to the next subscriber.
            self._stream_subscribers.remove(subscription)
        # Nobody reads these streams: release the reader at once, and count it.
        self._unclaimed_streams += 1
        get_bridge().drop_native(m.reader.handle.id)

    def _release_unclaimed(self, reader: TextStreamReader | ByteStreamReader) -> None:
        """A reader nobody will receive (its subscription closed or overflowed): free it."""
        self._unclaimed_streams += 1
        reader.close()

    def __repr__(self) -> str:
        return f"<Room name={self.name!r} sid={self.sid!r} state={self.connection_state.name}>"


def _failure_behind(exc: BaseException | None) -> BaseException | None:
    """The first exception behind a cancellation that is neither one nor a lost connection."""
    seen = 0
    while exc is not None and seen < 16:
        if not _is_cancellation(exc) and not isinstance(exc, ConnectionLostError):
            return exc
        exc = exc.__context__
        seen += 1
    return None


def _is_cancellation(exc: BaseException | None) -> bool:
    return exc is not None and isinstance(exc, anyio.get_cancelled_exc_class())


def _ready_request(room_handle: int) -> ffi_pb2.FfiRequest:
    req = ffi_pb2.FfiRequest()
    req.ready_for_room_event.room_handle = room_handle
    return req


@final
class _Port:
    """The room as its features see it (:class:`~lkanyio._port.RoomPort`)."""

    __slots__ = ("_room",)

    def __init__(self, room: Room) -> None:
        self._room = room

    @property
    def session(self) -> Session:
        session = self._room._session
        if session is None:
            raise ResourceClosedError("the room is not connected")
        return session

    @property
    def connected(self) -> bool:
        return self._room.connected

    @property
    def closed(self) -> bool:
        return self._room._closed

    def check_connected(self) -> None:
        self._room._check_connected()

    def request(self) -> ffi_pb2.FfiRequest:
        self._room._check_connected()
        return ffi_pb2.FfiRequest()

    def room_handle(self) -> int:
        return self._room._require_connected_handle()

    def local_handle(self) -> int:
        return self.session.local.handle.id

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: object, name: str) -> bool:
        room = self._room
        if room._tg is None or room._closing:
            return False
        room._tg.start_soon(fn, *args, name=name)
        return True

    def serve_rpc(self, server: RpcServer) -> None:
        self._room._rpc = server

    async def wait_state(self, predicate: Callable[[], bool], bound: float) -> bool:
        return await self._room._wait_state(predicate, bound)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        await self._room._wait_until(predicate)


@final
class NativeAdopter:
    """The session's :class:`~lkanyio._core.Adopter` for real native handles."""

    __slots__ = ("_port",)

    def __init__(self, port: RoomPort) -> None:
        self._port = port

    def handle(self, handle_id: int) -> OwnedHandle:
        return OwnedHandle(handle_id)

    def drop(self, handle_id: int) -> None:
        get_bridge().drop_native(handle_id)

    def participant_view(
        self, record: RemoteRecord[RemoteTrackPublication, RemoteDataTrack]
    ) -> RemoteParticipant:
        return RemoteParticipant(record)

    def publication_view(
        self, record: RemotePublicationRecord[RemoteTrack]
    ) -> RemoteTrackPublication:
        return RemoteTrackPublication(record)

    def local_publication_view(
        self, record: LocalPublicationRecord, track: LocalTrack
    ) -> LocalTrackPublication:
        return LocalTrackPublication(record, track, self._port)

    def track_view(self, owned: track_pb2.OwnedTrack) -> RemoteTrack:
        return remote_track_from_owned(owned)

    def data_track_view(self, owned: data_track_pb2.OwnedRemoteDataTrack) -> RemoteDataTrack:
        return RemoteDataTrack(owned)

    def payload(self, owned: handle_pb2.FfiOwnedHandle, ptr: int, length: int) -> bytes:
        try:
            return copy_native(ptr, length)
        finally:
            get_bridge().drop_native(owned.id)

    def permissions(self, proto: participant_pb2.ParticipantPermission) -> ParticipantPermissions:
        return permissions_from_proto(proto)

    def segment(self, proto: room_pb2.TranscriptionSegment) -> TranscriptionSegment:
        return TranscriptionSegment(
            id=proto.id,
            text=proto.text,
            start_time=proto.start_time,
            end_time=proto.end_time,
            final=proto.final,
            language=proto.language,
        )


_NO_INFO: Final = room_pb2.RoomInfo()
"""A room's info before it is joined (empty; never written)."""
