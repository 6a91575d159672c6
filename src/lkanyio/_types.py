"""Public enumerations, mirroring the native protocol's numbering."""

from __future__ import annotations

import enum

from ._native._proto import e2ee_pb2, participant_pb2, room_pb2, track_pb2, video_frame_pb2

__all__ = [
    "AudioTrackFeature",
    "ConnectionQuality",
    "ConnectionState",
    "ContinualGatheringPolicy",
    "DataPacketKind",
    "DegradationPreference",
    "DisconnectReason",
    "EncryptionState",
    "EncryptionType",
    "FrameMetadataFeature",
    "IceTransportType",
    "ParticipantKind",
    "ParticipantKindDetail",
    "ParticipantState",
    "SimulateScenario",
    "StreamState",
    "TrackKind",
    "TrackSource",
    "VideoCodec",
    "VideoEncoderBackend",
]


class ConnectionState(enum.IntEnum):
    """State of the connection to the room."""

    DISCONNECTED = room_pb2.CONN_DISCONNECTED
    CONNECTED = room_pb2.CONN_CONNECTED
    RECONNECTING = room_pb2.CONN_RECONNECTING


class ConnectionQuality(enum.IntEnum):
    """A participant's connection quality as judged by the server."""

    POOR = room_pb2.QUALITY_POOR
    GOOD = room_pb2.QUALITY_GOOD
    EXCELLENT = room_pb2.QUALITY_EXCELLENT
    LOST = room_pb2.QUALITY_LOST


class IceTransportType(enum.IntEnum):
    """Which ICE candidates a client may use (WebRTC's ``iceTransportPolicy``).

    ``RELAY`` uses only candidates relayed by the TURN servers given in
    :attr:`RtcConfiguration.ice_servers`: every packet goes through TURN.
    """

    RELAY = room_pb2.TRANSPORT_RELAY
    NOHOST = room_pb2.TRANSPORT_NOHOST
    ALL = room_pb2.TRANSPORT_ALL


class ContinualGatheringPolicy(enum.IntEnum):
    """Whether ICE gathers candidates once, or keeps gathering as networks change."""

    GATHER_ONCE = room_pb2.GATHER_ONCE
    GATHER_CONTINUALLY = room_pb2.GATHER_CONTINUALLY


class DataPacketKind(enum.IntEnum):
    """Delivery mode of a data packet."""

    LOSSY = room_pb2.KIND_LOSSY
    RELIABLE = room_pb2.KIND_RELIABLE


class DisconnectReason(enum.IntEnum):
    """Why a participant left or was removed."""

    UNKNOWN = participant_pb2.UNKNOWN_REASON
    CLIENT_INITIATED = participant_pb2.CLIENT_INITIATED
    DUPLICATE_IDENTITY = participant_pb2.DUPLICATE_IDENTITY
    SERVER_SHUTDOWN = participant_pb2.SERVER_SHUTDOWN
    PARTICIPANT_REMOVED = participant_pb2.PARTICIPANT_REMOVED
    ROOM_DELETED = participant_pb2.ROOM_DELETED
    STATE_MISMATCH = participant_pb2.STATE_MISMATCH
    JOIN_FAILURE = participant_pb2.JOIN_FAILURE
    MIGRATION = participant_pb2.MIGRATION
    SIGNAL_CLOSE = participant_pb2.SIGNAL_CLOSE
    ROOM_CLOSED = participant_pb2.ROOM_CLOSED
    USER_UNAVAILABLE = participant_pb2.USER_UNAVAILABLE
    USER_REJECTED = participant_pb2.USER_REJECTED
    SIP_TRUNK_FAILURE = participant_pb2.SIP_TRUNK_FAILURE
    CONNECTION_TIMEOUT = participant_pb2.CONNECTION_TIMEOUT
    MEDIA_FAILURE = participant_pb2.MEDIA_FAILURE
    AGENT_ERROR = participant_pb2.AGENT_ERROR


class ParticipantKind(enum.IntEnum):
    """What kind of client a participant is."""

    STANDARD = participant_pb2.PARTICIPANT_KIND_STANDARD
    INGRESS = participant_pb2.PARTICIPANT_KIND_INGRESS
    EGRESS = participant_pb2.PARTICIPANT_KIND_EGRESS
    SIP = participant_pb2.PARTICIPANT_KIND_SIP
    AGENT = participant_pb2.PARTICIPANT_KIND_AGENT
    CONNECTOR = participant_pb2.PARTICIPANT_KIND_CONNECTOR
    BRIDGE = participant_pb2.PARTICIPANT_KIND_BRIDGE


class ParticipantKindDetail(enum.IntEnum):
    """More about what a participant is, beyond its :class:`ParticipantKind` (several may apply).

    The server takes them from the access token's ``kindDetails`` claim (lower-case names, e.g.
    ``"connector_twilio"``) or sets them itself (a LiveKit Cloud agent, a forwarded participant).
    """

    CLOUD_AGENT = participant_pb2.PARTICIPANT_KIND_DETAIL_CLOUD_AGENT
    FORWARDED = participant_pb2.PARTICIPANT_KIND_DETAIL_FORWARDED
    CONNECTOR_WHATSAPP = participant_pb2.PARTICIPANT_KIND_DETAIL_CONNECTOR_WHATSAPP
    CONNECTOR_TWILIO = participant_pb2.PARTICIPANT_KIND_DETAIL_CONNECTOR_TWILIO
    BRIDGE_RTSP = participant_pb2.PARTICIPANT_KIND_DETAIL_BRIDGE_RTSP
    SIMULATION = participant_pb2.PARTICIPANT_KIND_DETAIL_SIMULATION


class ParticipantState(enum.IntEnum):
    """A participant's lifecycle state on the server."""

    JOINING = participant_pb2.PARTICIPANT_STATE_JOINING
    JOINED = participant_pb2.PARTICIPANT_STATE_JOINED
    ACTIVE = participant_pb2.PARTICIPANT_STATE_ACTIVE
    DISCONNECTED = participant_pb2.PARTICIPANT_STATE_DISCONNECTED


class TrackKind(enum.IntEnum):
    """Audio or video."""

    UNKNOWN = track_pb2.KIND_UNKNOWN
    AUDIO = track_pb2.KIND_AUDIO
    VIDEO = track_pb2.KIND_VIDEO


class TrackSource(enum.IntEnum):
    """Where a published track comes from."""

    UNKNOWN = track_pb2.SOURCE_UNKNOWN
    CAMERA = track_pb2.SOURCE_CAMERA
    MICROPHONE = track_pb2.SOURCE_MICROPHONE
    SCREENSHARE = track_pb2.SOURCE_SCREENSHARE
    SCREENSHARE_AUDIO = track_pb2.SOURCE_SCREENSHARE_AUDIO


class StreamState(enum.IntEnum):
    """Whether a remote track's media is flowing."""

    UNKNOWN = track_pb2.STATE_UNKNOWN
    ACTIVE = track_pb2.STATE_ACTIVE
    PAUSED = track_pb2.STATE_PAUSED


class EncryptionType(enum.IntEnum):
    """End-to-end encryption scheme of a track or room."""

    NONE = e2ee_pb2.NONE
    GCM = e2ee_pb2.GCM
    CUSTOM = e2ee_pb2.CUSTOM


class EncryptionState(enum.IntEnum):
    """State of a participant's end-to-end encryption."""

    NEW = e2ee_pb2.NEW
    OK = e2ee_pb2.OK
    ENCRYPTION_FAILED = e2ee_pb2.ENCRYPTION_FAILED
    DECRYPTION_FAILED = e2ee_pb2.DECRYPTION_FAILED
    MISSING_KEY = e2ee_pb2.MISSING_KEY
    KEY_RATCHETED = e2ee_pb2.KEY_RATCHETED
    INTERNAL_ERROR = e2ee_pb2.INTERNAL_ERROR


class SimulateScenario(enum.IntEnum):
    """A failure the native core can simulate on a joined room (for your own tests).

    Pass one to :meth:`Room.simulate_scenario`.  What each did to a room on livekit-server
    v1.13.5 (measured by lkanyio's tests):

    * ``SIGNAL_RECONNECT``: the signal connection is closed locally and the session resumes:
      ``Reconnecting``, then ``Reconnected`` about 3 s later; the same sids, and the other
      participants notice nothing.
    * ``SPEAKER``: no reconnect; the server reports this participant speaking, to itself only
      (``ActiveSpeakersChanged`` with it, then an empty one 3 s later).
    * ``NODE_FAILURE``, ``MIGRATION``, ``FULL_RECONNECT``: a full reconnect, a new session on the
      server: ``Reconnecting``, then within a second the local tracks are published again under
      new sids (:class:`~lkanyio.LocalTrackRepublished`) and ``Reconnected``.  The others see
      this participant leave (reason ``SERVER_SHUTDOWN``, ``MIGRATION`` or
      ``CLIENT_INITIATED``), join again and publish its tracks anew; this client sees them
      leave and join again too (new participant objects).
    * ``DISCONNECT_SIGNAL_ON_RESUME``: a resume that cannot complete, escalated to a full
      reconnect about 3.5 s later (as above).
    * ``SERVER_LEAVE``: the server ends the session: ``Disconnected(SERVER_SHUTDOWN)``, and the
      room's block ends with :class:`~lkanyio.ConnectionLostError`.
    * ``FORCE_TCP``: a reconnect over TCP: ``Reconnecting`` for about 15 s (the first attempt
      times out), then ``Reconnected``; the others see this participant leave and rejoin.
    * ``FORCE_TLS``: a reconnect over TLS; against a server without TLS (the tests' local
      server) the room stays ``Reconnecting`` (over 75 s measured, retrying about every 15 s;
      the others see it rejoin, never active), ``publish_data`` waits meanwhile, and leaving
      the room works at once.
    """

    SIGNAL_RECONNECT = room_pb2.SIMULATE_SIGNAL_RECONNECT
    SPEAKER = room_pb2.SIMULATE_SPEAKER
    NODE_FAILURE = room_pb2.SIMULATE_NODE_FAILURE
    SERVER_LEAVE = room_pb2.SIMULATE_SERVER_LEAVE
    MIGRATION = room_pb2.SIMULATE_MIGRATION
    FORCE_TCP = room_pb2.SIMULATE_FORCE_TCP
    FORCE_TLS = room_pb2.SIMULATE_FORCE_TLS
    FULL_RECONNECT = room_pb2.SIMULATE_FULL_RECONNECT
    DISCONNECT_SIGNAL_ON_RESUME = room_pb2.SIMULATE_DISCONNECT_SIGNAL_ON_RESUME


class VideoCodec(enum.IntEnum):
    """Video codec to publish a track with (``TrackPublishOptions.video_codec``).

    The native core shipped with lkanyio (livekit-ffi 0.13.2) encodes VP8, VP9, AV1 and H264
    in software.  It has no H265 encoder: a track published with ``H265`` is sent as VP8,
    without an error or a log line (measured against livekit-server 1.13.5; the publication's
    ``mime_type`` then reads ``video/VP8``).
    """

    VP8 = video_frame_pb2.VP8
    H264 = video_frame_pb2.H264
    AV1 = video_frame_pb2.AV1
    VP9 = video_frame_pb2.VP9
    H265 = video_frame_pb2.H265


class VideoEncoderBackend(enum.IntEnum):
    """Which encoder implementation the native core should prefer for a published video track.

    ``AUTO`` lets the native core choose (a hardware encoder where one works, else software).
    ``PRE_ENCODED`` is the passthrough for an already encoded bitstream: ``publish_track``
    uses it for tracks of an :class:`~lkanyio.EncodedVideoSource` and refuses it for others.

    Measured on a machine without GPU encoders (livekit-ffi 0.13.2): ``HARDWARE``, ``NVENC``,
    ``VAAPI`` and ``VIDEOTOOLBOX`` publish as usual, without an error or a log line, encoded in
    software (the outbound RTP statistics' ``encoder_implementation`` reads ``libvpx`` for VP8
    and VP9, ``OpenH264`` for H264).
    """

    AUTO = room_pb2.ENCODER_BACKEND_AUTO
    SOFTWARE = room_pb2.ENCODER_BACKEND_SOFTWARE
    HARDWARE = room_pb2.ENCODER_BACKEND_HARDWARE
    NVENC = room_pb2.ENCODER_BACKEND_NVENC
    VAAPI = room_pb2.ENCODER_BACKEND_VAAPI
    VIDEOTOOLBOX = room_pb2.ENCODER_BACKEND_VIDEOTOOLBOX
    PRE_ENCODED = room_pb2.ENCODER_BACKEND_PRE_ENCODED


class DegradationPreference(enum.IntEnum):
    """What a video encoder gives up first when bandwidth or CPU runs short."""

    BALANCED = room_pb2.DEGRADATION_PREFERENCE_BALANCED
    MAINTAIN_FRAMERATE = room_pb2.DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE
    MAINTAIN_RESOLUTION = room_pb2.DEGRADATION_PREFERENCE_MAINTAIN_RESOLUTION
    MAINTAIN_FRAMERATE_AND_RESOLUTION = (
        room_pb2.DEGRADATION_PREFERENCE_MAINTAIN_FRAMERATE_AND_RESOLUTION
    )


class AudioTrackFeature(enum.IntEnum):
    """An audio feature a publisher announces (``TrackPublication.audio_features``)."""

    STEREO = track_pb2.TF_STEREO
    NO_DTX = track_pb2.TF_NO_DTX
    AUTO_GAIN_CONTROL = track_pb2.TF_AUTO_GAIN_CONTROL
    ECHO_CANCELLATION = track_pb2.TF_ECHO_CANCELLATION
    NOISE_SUPPRESSION = track_pb2.TF_NOISE_SUPPRESSION
    ENHANCED_NOISE_CANCELLATION = track_pb2.TF_ENHANCED_NOISE_CANCELLATION
    PRECONNECT_BUFFER = track_pb2.TF_PRECONNECT_BUFFER


class FrameMetadataFeature(enum.IntEnum):
    """Which per-frame metadata a published video track carries to its subscribers."""

    USER_TIMESTAMP = track_pb2.FMF_USER_TIMESTAMP
    FRAME_ID = track_pb2.FMF_FRAME_ID
    USER_DATA = track_pb2.FMF_USER_DATA
