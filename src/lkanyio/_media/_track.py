"""Tracks: what a participant publishes (local) or receives (remote).

A track owns its native handle.  Local tracks are made by you and closed by you; remote tracks
are made by the room when a subscription starts (:meth:`Track._from_owned`) and closed by it when
the subscription ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from .._errors import check_native
from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._proto import ffi_pb2, track_pb2
from .._resource import Resource
from .._stats import TrackStats
from .._types import StreamState, TrackKind

if TYPE_CHECKING:
    from typing_extensions import Self

    from .._core._session import NativeHandle
    from ._audio import AudioSource
    from ._devices import PlatformAudioSource
    from ._encoded_video import EncodedVideoSource
    from ._video import VideoSource

__all__ = [
    "LocalAudioTrack",
    "LocalTrack",
    "LocalVideoTrack",
    "RemoteAudioTrack",
    "RemoteTrack",
    "RemoteVideoTrack",
    "Track",
    "remote_track_from_owned",
]


class Track:
    """What every track has: a server id, a name, a kind, a muted state and statistics.

    Tracks are not constructed directly: use :meth:`LocalAudioTrack.create_audio_track`, or
    receive remote tracks from the room's events.
    """

    __slots__ = ("__weakref__", "_handle", "_info")

    _handle: NativeHandle
    _info: track_pb2.TrackInfo

    def __init__(self) -> None:
        raise TypeError(
            f"{type(self).__name__} has no public constructor; use "
            "LocalAudioTrack.create_audio_track(...) or the tracks the room gives you"
        )

    @classmethod
    def _from_owned(cls, owned: track_pb2.OwnedTrack, handle: NativeHandle | None = None) -> Self:
        """Adopt the native track described by ``owned`` (its handle is now this object's).

        ``handle``: ``owned``'s handle, already adopted (default: adopt it here).

        Raises:
            NativeError: if ``owned`` carries no handle.
        """
        track = cls.__new__(cls)
        info = track_pb2.TrackInfo()
        info.CopyFrom(owned.info)
        track._info = info
        track._handle = OwnedHandle(owned.handle.id) if handle is None else handle
        return track

    @property
    def sid(self) -> str:
        """Server id of the track (``"TR_unknown"`` for a local track until it is published)."""
        return self._info.sid

    @property
    def name(self) -> str:
        """Name given by the publisher."""
        return self._info.name

    @property
    def kind(self) -> TrackKind:
        """Audio or video."""
        return TrackKind(self._info.kind)

    @property
    def muted(self) -> bool:
        """Whether the track is muted (as last known to lkanyio)."""
        return self._info.muted

    @property
    def stream_state(self) -> StreamState:
        """Whether media is flowing (meaningful for remote tracks)."""
        return StreamState(self._info.stream_state)

    @property
    def closed(self) -> bool:
        """Whether the track's native handle has been released."""
        return self._handle.closed

    async def get_stats(self) -> TrackStats:
        """Ask WebRTC for this track's statistics.

        A track that is not published (or subscribed) has no statistics: the native core then
        answers with an error.  A cancelled call leaves nothing behind.

        Raises:
            NativeError: with the native core's message (e.g. ``"room failure: no transceiver
                found for track"`` for a track that is not published).
            ResourceClosedError: if the track has been closed.
        """
        req = ffi_pb2.FfiRequest()
        req.get_stats.track_handle = self._handle.id
        callback = await get_bridge().request_async(req)
        check_native(callback, what="get_stats failed")
        return TrackStats._from_proto(callback.stats)

    def _close(self) -> None:
        """Release the native handle (idempotent)."""
        self._handle.close()

    def __repr__(self) -> str:
        state = " closed" if self._handle.closed else (" muted" if self._info.muted else "")
        return f"<{type(self).__name__} {self._info.sid} {self._info.name!r}{state}>"


class LocalTrack(Resource, Track):
    """A track this client produces: mute it, publish it, close it when done."""

    __slots__ = ()

    def mute(self) -> None:
        """Mute the track for subscribers until :meth:`unmute`.

        Only what is sent to the room changes: an :class:`~lkanyio.AudioStream` on this local
        track still receives the source's samples.

        Raises:
            ResourceClosedError: if the track has been closed.
        """
        self._set_muted(True)

    def unmute(self) -> None:
        """Unmute the track.

        Raises:
            ResourceClosedError: if the track has been closed.
        """
        self._set_muted(False)

    def _set_muted(self, muted: bool) -> None:
        req = ffi_pb2.FfiRequest()
        req.local_track_mute.track_handle = self._handle.id
        req.local_track_mute.mute = muted
        self._info.muted = get_bridge().request(req).local_track_mute.muted

    def close(self) -> None:
        """Release the native track (idempotent); streams reading it end.

        Unpublish a published track first (or leave the room).
        """
        self._close()


@final
class LocalAudioTrack(LocalTrack):
    """An audio track fed by an :class:`~lkanyio.AudioSource`, ready to publish.

    A microphone's :class:`~lkanyio.PlatformAudioSource` feeds one too.  ::

        async with lkanyio.AudioSource(48000, 1) as source:
            async with lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track:
                await room.local_participant.publish_track(track)
    """

    __slots__ = ("_source",)

    _source: AudioSource | PlatformAudioSource

    @classmethod
    def create_audio_track(
        cls, name: str, source: AudioSource | PlatformAudioSource
    ) -> LocalAudioTrack:
        """Create a track that plays what is captured into ``source``.

        The track keeps the native source alive: audio captured into ``source`` plays on the
        track even if ``source`` is closed later.

        Raises:
            TypeError: if ``name`` is not a ``str`` or ``source`` not an ``AudioSource`` or a
                ``PlatformAudioSource``.
            ResourceClosedError: if ``source`` has been closed.
        """
        from ._audio import AudioSource
        from ._devices import PlatformAudioSource

        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not isinstance(source, (AudioSource, PlatformAudioSource)):
            raise TypeError(
                f"source must be an AudioSource or a PlatformAudioSource, "
                f"not {type(source).__name__}"
            )
        req = ffi_pb2.FfiRequest()
        req.create_audio_track.name = name
        req.create_audio_track.source_handle = source._handle.id
        track = cls._from_owned(get_bridge().request(req).create_audio_track.track)
        track._source = source
        return track

    @property
    def source(self) -> AudioSource | PlatformAudioSource:
        """The source the track plays."""
        return self._source


@final
class LocalVideoTrack(LocalTrack):
    """A video track fed by a :class:`~lkanyio.VideoSource`, ready to publish."""

    __slots__ = ("_source",)

    _source: VideoSource | EncodedVideoSource

    @classmethod
    def create_video_track(
        cls, name: str, source: VideoSource | EncodedVideoSource
    ) -> LocalVideoTrack:
        """Create a track that shows what is captured into ``source`` (raw or pre-encoded).

        Raises:
            TypeError: if ``name`` is not a ``str`` or ``source`` not a ``VideoSource``.
            ResourceClosedError: if ``source`` has been closed.
        """
        from ._encoded_video import EncodedVideoSource
        from ._video import VideoSource

        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not isinstance(source, (VideoSource, EncodedVideoSource)):
            raise TypeError(
                f"source must be a VideoSource or EncodedVideoSource, not {type(source).__name__}"
            )
        req = ffi_pb2.FfiRequest()
        req.create_video_track.name = name
        req.create_video_track.source_handle = source._handle.id
        track = cls._from_owned(get_bridge().request(req).create_video_track.track)
        track._source = source
        return track

    @property
    def source(self) -> VideoSource | EncodedVideoSource:
        """The source the track shows."""
        return self._source


class RemoteTrack(Track):
    """A track another participant publishes and this client subscribes to.

    The room creates it when the subscription starts and closes it when it ends.
    """

    __slots__ = ()


@final
class RemoteAudioTrack(RemoteTrack):
    """A subscribed remote audio track; read it with :class:`~lkanyio.AudioStream`."""

    __slots__ = ()


@final
class RemoteVideoTrack(RemoteTrack):
    """A subscribed remote video track."""

    __slots__ = ()


def remote_track_from_owned(
    owned: track_pb2.OwnedTrack, handle: NativeHandle | None = None
) -> RemoteTrack:
    """Build the remote track of the right kind for a subscribed ``OwnedTrack``.

    ``handle``: ``owned``'s handle, already adopted (default: adopt it here).

    Raises:
        ValueError: if the kind is neither audio nor video (the handle is released).
        NativeError: if ``owned`` carries no handle.
    """
    if owned.info.kind == track_pb2.KIND_AUDIO:
        return RemoteAudioTrack._from_owned(owned, handle)
    if owned.info.kind == track_pb2.KIND_VIDEO:
        return RemoteVideoTrack._from_owned(owned, handle)
    if handle is not None:
        handle.close()
        raise ValueError(f"unknown track kind {owned.info.kind} for track {owned.info.sid!r}")
    get_bridge().drop_native(owned.handle.id)
    raise ValueError(f"unknown track kind {owned.info.kind} for track {owned.info.sid!r}")
