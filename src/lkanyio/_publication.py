"""Track publications: what a participant has published to the room."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar, final

from ._checks import check_bool, check_enum, check_str, check_uint
from ._errors import ResourceClosedError
from ._native._bridge import get_bridge
from ._native._proto import ffi_pb2, room_pb2, track_pb2, track_publication_pb2, video_frame_pb2
from ._native._requests import wire_enum, wire_enums
from ._types import (
    AudioTrackFeature,
    DegradationPreference,
    EncryptionType,
    FrameMetadataFeature,
    TrackKind,
    TrackSource,
    VideoCodec,
    VideoEncoderBackend,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._core._session import LocalPublicationRecord, NativeHandle, RemotePublicationRecord
    from ._media._track import LocalTrack, RemoteTrack
    from ._port import RoomPort

__all__ = [
    "AudioEncoding",
    "LocalTrackPublication",
    "RemoteTrackPublication",
    "TrackPublication",
    "TrackPublishOptions",
    "VideoEncoding",
    "VideoQuality",
]


SCALABILITY_MODES: Final = frozenset(
    [f"L1T{t}" for t in (1, 2, 3)]
    + [f"L{s}T{t}{suffix}" for s in (2, 3) for t in (1, 2, 3) for suffix in ("", "h", "_KEY")]
    + ["L2T2_KEY_SHIFT"]
    + [f"S{s}T{t}{suffix}" for s in (2, 3) for t in (1, 2, 3) for suffix in ("", "h")]
)
"""The scalability modes libwebrtc knows (its ``ScalabilityMode`` names, 34 of them).

Measured (livekit-ffi 0.13.2): publishing with a name outside this set fails with "internal
webrtc failure", and the same track published again afterwards timed out ("track publication
timed out, no response received from the server"), so an unknown name is refused here.  Each
of these 34 published a VP9 track; a known mode the codec cannot use is ignored: VP8, H264
and AV1 with ``L3T3_KEY`` published and played normally."""


class VideoQuality(enum.IntEnum):
    """Simulcast layer of a subscribed video track."""

    LOW = track_publication_pb2.VIDEO_QUALITY_LOW
    MEDIUM = track_publication_pb2.VIDEO_QUALITY_MEDIUM
    HIGH = track_publication_pb2.VIDEO_QUALITY_HIGH


@final
@dataclass(frozen=True, kw_only=True)
class VideoEncoding:
    """Video encoder limits for a published track."""

    max_bitrate: int
    max_framerate: float

    def __post_init__(self) -> None:
        check_uint("max_bitrate", self.max_bitrate, bits=64)
        if isinstance(self.max_framerate, bool) or not isinstance(self.max_framerate, (int, float)):
            raise TypeError("max_framerate must be a number")
        if not 0 <= self.max_framerate < math.inf:
            raise ValueError(f"max_framerate must be finite and >= 0, got {self.max_framerate}")


@final
@dataclass(frozen=True, kw_only=True)
class AudioEncoding:
    """Audio encoder limits for a published track."""

    max_bitrate: int

    def __post_init__(self) -> None:
        check_uint("max_bitrate", self.max_bitrate, bits=64)


@final
@dataclass(frozen=True, kw_only=True)
class TrackPublishOptions:
    """How to publish a track (every field has the native core's default when left as is).

    Attributes:
        source: what the track is (microphone, camera, screen share …).
        simulcast: publish several video layers.
        dtx: discontinuous transmission for audio (saves bandwidth in silence).
        red: redundant audio encoding.
        video_encoding: video bitrate and frame rate limits.
        audio_encoding: audio bitrate limit.
        stream: name of the stream the track belongs to.
        video_codec: the codec a video track is encoded with (native default: VP8).  Each
            video track of a participant gets its own codec on one peer connection (the
            default); with ``RoomOptions(single_peer_connection=False)`` every video track
            after the first goes out in the first one's codec (measured with livekit-server
            1.13.5, the official SDK alike).
        video_encoder: which encoder implementation to prefer (native default: ``AUTO``).
            A hardware backend the machine lacks falls back to software silently (see
            :class:`~lkanyio.VideoEncoderBackend`); ``PRE_ENCODED`` is chosen by
            ``publish_track`` for a track of an :class:`~lkanyio.EncodedVideoSource` (with
            the source's codec) and refused for other tracks.
        scalability_mode: an RTP scalability mode such as ``"L3T3_KEY"``: one SVC encoding
            with that layering (VP9 and AV1; no effect for VP8 and H264).  A name libwebrtc
            does not know (``L1T1`` … ``L3T3_KEY``, ``S2T1`` … ``S3T3h``) is refused.
        degradation_preference: what the encoder gives up first when short of bandwidth.
        preconnect_buffer: buffer a microphone track's audio from before the room connected
            and send it to the agent that joins.
        frame_metadata_features: announce the per-frame metadata (``FrameMetadata``) a video
            track carries.  Listing any feature switches the metadata on: measured with
            livekit-ffi 0.13.2, with FRAME_ID alone listed all three fields still arrived;
            with none listed, no frame carries metadata (``VideoFrameEvent.metadata`` is
            ``None``).

    Example::

        options = lkanyio.TrackPublishOptions(
            source=lkanyio.TrackSource.CAMERA,
            video_codec=lkanyio.VideoCodec.H264,
            frame_metadata_features=(lkanyio.FrameMetadataFeature.FRAME_ID,),
        )
    """

    source: TrackSource = TrackSource.UNKNOWN
    simulcast: bool | None = None
    dtx: bool | None = None
    red: bool | None = None
    video_encoding: VideoEncoding | None = None
    audio_encoding: AudioEncoding | None = None
    stream: str | None = None
    video_codec: VideoCodec | None = None
    video_encoder: VideoEncoderBackend | None = None
    scalability_mode: str | None = None
    degradation_preference: DegradationPreference | None = None
    preconnect_buffer: bool | None = None
    frame_metadata_features: tuple[FrameMetadataFeature, ...] = ()

    def __post_init__(self) -> None:
        check_enum("source", self.source, TrackSource)
        for name in ("simulcast", "dtx", "red", "preconnect_buffer"):
            if getattr(self, name) is not None:
                check_bool(name, getattr(self, name))
        if self.video_encoding is not None and not isinstance(self.video_encoding, VideoEncoding):
            raise TypeError("video_encoding must be a lkanyio.VideoEncoding")
        if self.audio_encoding is not None and not isinstance(self.audio_encoding, AudioEncoding):
            raise TypeError("audio_encoding must be a lkanyio.AudioEncoding")
        if self.stream is not None:
            check_str("stream", self.stream)
        if self.video_codec is not None:
            check_enum("video_codec", self.video_codec, VideoCodec)
        if self.video_encoder is not None:
            check_enum("video_encoder", self.video_encoder, VideoEncoderBackend)
        if self.degradation_preference is not None:
            check_enum(
                "degradation_preference", self.degradation_preference, DegradationPreference
            )
        if self.scalability_mode is not None:
            check_str("scalability_mode", self.scalability_mode)
            if self.scalability_mode not in SCALABILITY_MODES:
                raise ValueError(
                    f"unknown scalability mode {self.scalability_mode!r}; one of: "
                    + ", ".join(sorted(SCALABILITY_MODES))
                )
        features: object = self.frame_metadata_features
        if not isinstance(features, (tuple, list)):
            raise TypeError(
                "frame_metadata_features must be a tuple of FrameMetadataFeature, "
                f"not {type(features).__name__}"
            )
        # A frozen dataclass keeps a tuple: a list passed in is copied, so the options stay
        # immutable (and hashable) whatever the caller does with its list afterwards.
        object.__setattr__(
            self,
            "frame_metadata_features",
            tuple(
                check_enum("a frame metadata feature", f, FrameMetadataFeature)
                for f in features
            ),
        )

    def _check_for(self, track: LocalTrack) -> None:
        """Refuse options that cannot work for ``track`` (before anything is sent).

        Raises:
            ValueError: the ``PRE_ENCODED`` backend: measured (livekit-ffi 0.13.2), a
                VideoSource's track published with it is accepted, its encoder reports
                itself as "LiveKit pre-encoded passthrough", and no frame ever reaches a
                subscriber.  lkanyio's sources all hand over raw frames.
        """
        from ._media._encoded_video import EncodedVideoSource

        source = getattr(track, "source", None)
        if isinstance(source, EncodedVideoSource):
            if self.video_codec is not None and self.video_codec != source.codec:
                raise ValueError(
                    f"{track!r} carries pre-encoded {source.codec.name}: video_codec must be "
                    f"{source.codec.name} or unset, not {self.video_codec.name}"
                )
            return
        if self.video_encoder == VideoEncoderBackend.PRE_ENCODED:
            raise ValueError(
                f"video_encoder=PRE_ENCODED cannot publish {track!r}: its source hands over raw "
                "frames for the native core to encode (the track would publish and no frame "
                "would ever reach a subscriber); leave video_encoder unset or choose SOFTWARE"
            )

    def _to_proto(self, out: room_pb2.TrackPublishOptions) -> None:
        out.source = wire_enum(track_pb2.TrackSource, self.source)
        if self.simulcast is not None:
            out.simulcast = self.simulcast
        if self.dtx is not None:
            out.dtx = self.dtx
        if self.red is not None:
            out.red = self.red
        if self.video_encoding is not None:
            out.video_encoding.max_bitrate = self.video_encoding.max_bitrate
            out.video_encoding.max_framerate = self.video_encoding.max_framerate
        if self.audio_encoding is not None:
            out.audio_encoding.max_bitrate = self.audio_encoding.max_bitrate
        if self.stream is not None:
            out.stream = self.stream
        if self.video_codec is not None:
            out.video_codec = wire_enum(video_frame_pb2.VideoCodec, self.video_codec)
        if self.video_encoder is not None:
            out.video_encoder = wire_enum(room_pb2.VideoEncoderBackend, self.video_encoder)
        if self.scalability_mode is not None:
            out.scalability_mode = self.scalability_mode
        if self.degradation_preference is not None:
            out.degradation_preference = wire_enum(
                room_pb2.DegradationPreference, self.degradation_preference
            )
        if self.preconnect_buffer is not None:
            out.preconnect_buffer = self.preconnect_buffer
        out.frame_metadata_features.extend(
            wire_enums(track_pb2.FrameMetadataFeature, self.frame_metadata_features)
        )


_F = TypeVar("_F", AudioTrackFeature, FrameMetadataFeature)


def _known(kind: type[_F], values: Iterable[int]) -> tuple[_F, ...]:
    """The members of ``kind`` among ``values``, in order (unknown numbers are skipped)."""
    known = set(kind.__members__.values())
    return tuple(kind(v) for v in values if v in known)


class TrackPublication:
    """A published track as the room sees it; the track itself may or may not be local."""

    __slots__ = ("_record",)

    def __init__(
        self, record: LocalPublicationRecord | RemotePublicationRecord[RemoteTrack]
    ) -> None:
        self._record = record

    @property
    def _handle(self) -> NativeHandle:
        return self._record.handle

    @property
    def _info(self) -> track_pb2.TrackPublicationInfo:
        return self._record.info

    @property
    def sid(self) -> str:
        """Server id of the publication (the track sid)."""
        return self._info.sid

    @property
    def name(self) -> str:
        """Name given at publish time."""
        return self._info.name

    @property
    def kind(self) -> TrackKind:
        """Audio or video."""
        return TrackKind(self._info.kind)

    @property
    def source(self) -> TrackSource:
        """Microphone, camera, screen share …."""
        return TrackSource(self._info.source)

    @property
    def simulcasted(self) -> bool:
        """Whether several video layers are published."""
        return self._info.simulcasted

    @property
    def width(self) -> int:
        """Published video width (0 for audio)."""
        return self._info.width

    @property
    def height(self) -> int:
        """Published video height (0 for audio)."""
        return self._info.height

    @property
    def mime_type(self) -> str:
        """Codec MIME type, e.g. ``audio/opus``."""
        return self._info.mime_type

    @property
    def muted(self) -> bool:
        """Whether the publisher muted the track."""
        return self._info.muted

    @property
    def encryption_type(self) -> EncryptionType:
        """End-to-end encryption scheme of the track."""
        return EncryptionType(self._info.encryption_type)

    @property
    def audio_features(self) -> tuple[AudioTrackFeature, ...]:
        """The audio features the publisher announced (empty for video).

        A value this version of lkanyio does not know is left out.
        """
        return _known(AudioTrackFeature, self._info.audio_features)

    @property
    def frame_metadata_features(self) -> tuple[FrameMetadataFeature, ...]:
        """The per-frame metadata the publisher's video carries (see ``FrameMetadata``)."""
        return _known(FrameMetadataFeature, self._info.frame_metadata_features)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} sid={self.sid!r} name={self.name!r} "
            f"kind={self.kind.name} muted={self.muted}>"
        )


@final
class LocalTrackPublication(TrackPublication):
    """A track this participant published."""

    __slots__ = ("_port", "_track")
    _record: LocalPublicationRecord

    def __init__(self, record: LocalPublicationRecord, track: LocalTrack, port: RoomPort) -> None:
        super().__init__(record)
        self._track = track
        self._port = port

    @property
    def track(self) -> LocalTrack:
        """The published local track."""
        return self._track

    async def wait_for_subscription(self) -> None:
        """Wait until at least one remote participant has subscribed to this track.

        After a full reconnect republished the track, it waits for a subscriber to the new
        publication.

        Raises:
            ResourceClosedError: the track was unpublished, or the room left, before anyone
                subscribed (also when that happens while waiting).
        """
        record = self._record
        await self._port.wait_until(lambda: record.subscribed or record.gone)
        if not record.subscribed:
            raise ResourceClosedError("the track was unpublished before anyone subscribed")


@final
class RemoteTrackPublication(TrackPublication):
    """A track another participant published; :attr:`track` is set while subscribed."""

    __slots__ = ()
    _record: RemotePublicationRecord[RemoteTrack]

    def __init__(self, record: RemotePublicationRecord[RemoteTrack]) -> None:
        super().__init__(record)

    @property
    def track(self) -> RemoteTrack | None:
        """The subscribed track, or ``None`` while not subscribed."""
        return self._record.track

    @property
    def subscribed(self) -> bool:
        """Whether the track is subscribed (its media is being received)."""
        return self._record.track is not None

    def set_subscribed(self, subscribed: bool) -> None:
        """Subscribe to or unsubscribe from the track (the result arrives as room events)."""
        req = ffi_pb2.FfiRequest()
        req.set_subscribed.publication_handle = self._handle.id
        req.set_subscribed.subscribe = check_bool("subscribed", subscribed)
        get_bridge().request(req)

    def set_enabled(self, enabled: bool) -> None:
        """Pause or resume the media of a subscribed track without unsubscribing."""
        req = ffi_pb2.FfiRequest()
        req.enable_remote_track_publication.track_publication_handle = self._handle.id
        req.enable_remote_track_publication.enabled = check_bool("enabled", enabled)
        get_bridge().request(req)

    def set_video_dimensions(self, *, width: int, height: int) -> None:
        """Ask the server for the simulcast layer closest to ``width`` × ``height``."""
        check_uint("width", width, minimum=1)
        check_uint("height", height, minimum=1)
        req = ffi_pb2.FfiRequest()
        msg = req.update_remote_track_publication_dimension
        msg.track_publication_handle = self._handle.id
        msg.width = width
        msg.height = height
        get_bridge().request(req)

    def set_video_quality(self, quality: VideoQuality) -> None:
        """Ask the server for the low, medium or high simulcast layer of a video track."""
        req = ffi_pb2.FfiRequest()
        msg = req.set_remote_track_publication_quality
        msg.track_publication_handle = self._handle.id
        msg.quality = wire_enum(
            track_publication_pb2.VideoQuality, check_enum("quality", quality, VideoQuality)
        )
        get_bridge().request(req)
