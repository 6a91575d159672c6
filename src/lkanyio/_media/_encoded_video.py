"""Pre-encoded video: publish an H264/VP8/… bitstream without re-encoding it.

The native core (livekit 1.2.0, core 0.13.2) has an encoded video source
(``new_video_source`` with ``VIDEO_SOURCE_ENCODED``) that takes one complete access unit per
``capture_encoded_video_frame`` (copied before the request returns) and a passthrough encoder
that hands it to WebRTC's packetizer.  What the receiving side asks of the encoder (a keyframe,
a target bitrate) accumulates in the native source and is *taken* with
``take_encoded_video_source_feedback``: there is no event for it.  lkanyio takes it after every
captured frame (a publisher captures frames continuously; no timer, no background task) and
whenever you call :meth:`EncodedVideoSource.take_feedback`, and fans it out to the
:meth:`EncodedVideoSource.feedback` streams.

Measured offline: every access unit PyAV's libx264 (baseline, Annex B) and libvpx produce is
``accepted``; feedback on a source nobody subscribes to is ``keyframe_requested: false`` with
no rate control.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from .._checks import check_bool, check_uint
from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._memory import buffer_pointer
from .._native._requests import wire_enum
from .._resource import Resource
from .._streams import EventSender, EventStream, open_event_stream
from .._types import VideoCodec

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from ._video import FrameMetadata

__all__ = ["EncodedVideoFeedback", "EncodedVideoSource"]

_MAX_DIMENSION: Final = 16_384
_MIN_DIMENSION: Final = 16
_CODECS: Final = (VideoCodec.H264, VideoCodec.VP8)
"""The codecs lkanyio has tested pre-encoded through the server (others are refused)."""
_MAX_ACCESS_UNIT: Final = 64 * 1024 * 1024


@final
@dataclass(frozen=True)
class EncodedVideoFeedback:
    """What the receiving side asks of a pre-encoded publisher.

    Attributes:
        keyframe_requested: a subscriber needs a keyframe: encode the next frame as one.
        target_bitrate_bps: the bitrate the congestion controller allows now, if it said.
        framerate_fps: the frame rate it expects, if it said.
    """

    keyframe_requested: bool
    target_bitrate_bps: int | None = None
    framerate_fps: float | None = None


@final
class EncodedVideoSource(Resource):
    """Publish a pre-encoded video bitstream through a :class:`~lkanyio.LocalVideoTrack`.

    ::

        async with lkanyio.EncodedVideoSource(640, 360, codec=lkanyio.VideoCodec.H264) as src:
            track = lkanyio.LocalVideoTrack.create_video_track("cam", src)
            await room.local_participant.publish_track(track, lkanyio.TrackPublishOptions(
                source=lkanyio.TrackSource.CAMERA, video_codec=lkanyio.VideoCodec.H264))
            async with src.feedback() as feedback:
                ...  # capture_frame(access_unit, keyframe=...) for each encoded frame
                     # and read keyframe requests from `feedback`

    ``publish_track`` publishes its track with the codec of the source and the native core's
    passthrough encoder (``TrackPublishOptions.video_codec`` must be that codec or unset).

    Args:
        width: the bitstream's width in pixels.
        height: its height in pixels.
        codec: ``VideoCodec.H264`` (Annex B byte stream, SPS/PPS with each keyframe) or
            ``VideoCodec.VP8``.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: a size out of range or an untested codec.
    """

    def __init__(self, width: int, height: int, *, codec: VideoCodec) -> None:
        from .._native._proto import ffi_pb2, video_frame_pb2

        for name, value in (("width", width), ("height", height)):
            check_uint(name, value)
            if not _MIN_DIMENSION <= value <= _MAX_DIMENSION:
                raise ValueError(
                    f"{name} must be between {_MIN_DIMENSION} and {_MAX_DIMENSION}, got {value}"
                )
        if not isinstance(codec, VideoCodec):
            raise TypeError(f"codec must be a lkanyio.VideoCodec, not {codec!r}")
        if codec not in _CODECS:
            raise ValueError(
                f"pre-encoded {codec.name} is not supported: lkanyio publishes pre-encoded "
                "H264 and VP8"
            )
        req = ffi_pb2.FfiRequest()
        req.new_video_source.type = video_frame_pb2.VIDEO_SOURCE_ENCODED
        req.new_video_source.resolution.width = width
        req.new_video_source.resolution.height = height
        owned = get_bridge().request(req).new_video_source.source
        self._handle = OwnedHandle(owned.handle.id)
        self.width = width
        self.height = height
        self.codec = codec
        self._feeds: list[EventSender[EncodedVideoFeedback]] = []
        self._keyframe_pending = False

    def capture_frame(
        self,
        data: Buffer,
        *,
        keyframe: bool,
        timestamp_us: int = 0,
        metadata: FrameMetadata | None = None,
    ) -> bool:
        """Hand one complete encoded access unit to the native core (copied before returning).

        Then takes the native source's feedback and sends it to the :meth:`feedback` streams.

        Args:
            data: the access unit (H264: Annex B NAL units of one picture; VP8: one frame).
            keyframe: whether it is a keyframe (IDR for H264).
            timestamp_us: its capture time in microseconds.
            metadata: values carried with the frame to subscribers.

        Returns:
            Whether the native core accepted it.

        Raises:
            TypeError: ``data`` is not bytes-like, or an option has the wrong type.
            ValueError: ``data`` is empty.
            ResourceClosedError: the source was closed.
        """
        from .._native._proto import ffi_pb2, video_frame_pb2
        from ._video import FrameMetadata

        check_bool("keyframe", keyframe)
        check_uint("timestamp_us", timestamp_us, bits=64)
        if metadata is not None and not isinstance(metadata, FrameMetadata):
            raise TypeError("metadata must be a lkanyio.FrameMetadata")
        try:
            size = memoryview(data).nbytes
        except TypeError:
            raise TypeError(
                f"an encoded frame must be a bytes-like object, not {type(data).__name__}"
            ) from None
        if size == 0:
            raise ValueError("an encoded frame cannot be empty")
        if size > _MAX_ACCESS_UNIT:
            raise ValueError(f"an encoded frame of {size} bytes is beyond {_MAX_ACCESS_UNIT}")
        address, pinned = buffer_pointer(data)
        req = ffi_pb2.FfiRequest()
        msg = req.capture_encoded_video_frame
        msg.source_handle = self._handle.id
        msg.codec = wire_enum(video_frame_pb2.VideoCodec, self.codec)
        msg.frame_type = (
            video_frame_pb2.ENCODED_FRAME_KEY if keyframe else video_frame_pb2.ENCODED_FRAME_DELTA
        )
        msg.width = self.width
        msg.height = self.height
        msg.timestamp_us = timestamp_us
        msg.buffer.data_ptr = address
        msg.buffer.data_len = size
        if metadata is not None:
            metadata._to_proto(msg.metadata)
        accepted = get_bridge().request(req).capture_encoded_video_frame.accepted
        del pinned
        self.take_feedback()
        return accepted

    def take_feedback(self) -> EncodedVideoFeedback:
        """Take the feedback accumulated since the last take (and send it to the streams).

        Nothing is sent to the :meth:`feedback` streams when there is nothing new (no keyframe
        request, no rate control).

        Raises:
            ResourceClosedError: the source was closed.
        """
        from .._native._proto import ffi_pb2

        req = ffi_pb2.FfiRequest()
        req.take_encoded_video_source_feedback.source_handle = self._handle.id
        answer = get_bridge().request(req).take_encoded_video_source_feedback
        rate = answer.rate_control if answer.HasField("rate_control") else None
        feedback = EncodedVideoFeedback(
            keyframe_requested=answer.keyframe_requested,
            target_bitrate_bps=(
                rate.target_bitrate_bps if rate and rate.HasField("target_bitrate_bps") else None
            ),
            framerate_fps=rate.framerate_fps if rate and rate.HasField("framerate_fps") else None,
        )
        if feedback.keyframe_requested or rate is not None:
            self._feeds = [feed for feed in self._feeds if not feed.closed]
            for feed in self._feeds:
                feed.send_nowait(feedback)
        return feedback

    def feedback(self, *, max_buffered: int = 64) -> EventStream[EncodedVideoFeedback]:
        """Subscribe to the feedback (keyframe requests, target bitrate): a bounded stream.

        Feedback is latest-wins: a full buffer drops the oldest (counted in ``statistics()``).
        Close the stream (``async with``) to unsubscribe.  It ends when the source closes.
        """
        check_uint("max_buffered", max_buffered, minimum=1)
        self._handle.id  # noqa: B018 - raises ResourceClosedError once closed
        sender: EventSender[EncodedVideoFeedback]
        stream: EventStream[EncodedVideoFeedback]
        sender, stream = open_event_stream(
            max_buffered=max_buffered, overflow="drop_oldest", what="encoded video feedback"
        )
        self._feeds.append(sender)
        return stream

    @property
    def closed(self) -> bool:
        """Whether the source has been released."""
        return self._handle.closed

    def close(self) -> None:
        """Release the source and end its feedback streams (idempotent)."""
        self._handle.close()
        feeds, self._feeds = self._feeds, []
        for feed in feeds:
            feed.end()

    def __repr__(self) -> str:
        return f"<EncodedVideoSource {self.codec.name} {self.width}x{self.height}>"


def publish_options_for(track: object, out: object) -> None:
    """Complete the publish options of a track fed by an :class:`EncodedVideoSource`.

    Its codec is the source's and the encoder is the native passthrough
    (``ENCODER_BACKEND_PRE_ENCODED``); without them the native core would try to re-encode a
    source that has no raw frames.  Tracks of other sources are left alone.
    """
    from .._native._proto import room_pb2

    source = getattr(track, "source", None)
    if not isinstance(source, EncodedVideoSource):
        return
    out.video_codec = int(source.codec)  # type: ignore[attr-defined]
    out.video_encoder = room_pb2.ENCODER_BACKEND_PRE_ENCODED  # type: ignore[attr-defined]
    out.simulcast = False  # type: ignore[attr-defined] # one bitstream: one layer
