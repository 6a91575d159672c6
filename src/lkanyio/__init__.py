"""lkanyio: a structured-concurrency LiveKit SDK for trio and asyncio (through AnyIO).

::

    import lkanyio

    async with lkanyio.connect(url, token) as room:
        async with room.events() as events:
            async for event in events:
                print(event)
"""

import contextlib as _contextlib
import logging as _logging

from ._data_streams import DEFAULT_MAX_BUFFERED_BYTES as DEFAULT_MAX_BUFFERED_BYTES
from ._data_streams import ByteStreamInfo as ByteStreamInfo
from ._data_streams import ByteStreamReader as ByteStreamReader
from ._data_streams import ByteStreamWriter as ByteStreamWriter
from ._data_streams import TextStreamInfo as TextStreamInfo
from ._data_streams import TextStreamReader as TextStreamReader
from ._data_streams import TextStreamWriter as TextStreamWriter
from ._data_tracks import DataTrackFrame as DataTrackFrame
from ._data_tracks import DataTrackInfo as DataTrackInfo
from ._data_tracks import DataTrackStream as DataTrackStream
from ._data_tracks import LocalDataTrack as LocalDataTrack
from ._data_tracks import RemoteDataTrack as RemoteDataTrack
from ._e2ee import E2EEManager as E2EEManager
from ._e2ee import E2EEOptions as E2EEOptions
from ._e2ee import FrameCryptor as FrameCryptor
from ._e2ee import KeyDerivationFunction as KeyDerivationFunction
from ._errors import APIConnectionError as APIConnectionError
from ._errors import APIError as APIError
from ._errors import AudioDeviceError as AudioDeviceError
from ._errors import AudioFilterError as AudioFilterError
from ._errors import ConnectError as ConnectError
from ._errors import ConnectionLostError as ConnectionLostError
from ._errors import DataStreamError as DataStreamError
from ._errors import DataStreamOverflowError as DataStreamOverflowError
from ._errors import DataTrackError as DataTrackError
from ._errors import EventStreamOverflowError as EventStreamOverflowError
from ._errors import InvalidTokenError as InvalidTokenError
from ._errors import LiveKitError as LiveKitError
from ._errors import NativeError as NativeError
from ._errors import PublishDataError as PublishDataError
from ._errors import PublishDTMFError as PublishDTMFError
from ._errors import PublishTrackError as PublishTrackError
from ._errors import PublishTranscriptionError as PublishTranscriptionError
from ._errors import ResourceClosedError as ResourceClosedError
from ._errors import RpcError as RpcError
from ._errors import ServerUnreachableError as ServerUnreachableError
from ._errors import SipCallError as SipCallError
from ._errors import TwirpError as TwirpError
from ._errors import UnpublishTrackError as UnpublishTrackError
from ._errors import WebhookError as WebhookError
from ._errors import WorkerError as WorkerError
from ._events import *  # noqa: F403 - every event class, listed in _events.__all__
from ._events import RoomEvent as RoomEvent
from ._held import HeldRoom as HeldRoom
from ._held import hold_open as hold_open
from ._media._apm import AudioProcessingModule as AudioProcessingModule
from ._media._audio import AudioFrameEvent as AudioFrameEvent
from ._media._audio import AudioResampler as AudioResampler
from ._media._audio import AudioResamplerQuality as AudioResamplerQuality
from ._media._audio import AudioSource as AudioSource
from ._media._audio import AudioStream as AudioStream
from ._media._audio_frame import AudioFrame as AudioFrame
from ._media._audio_frame import combine_audio_frames as combine_audio_frames
from ._media._av_sync import AVSynchronizer as AVSynchronizer
from ._media._av_sync import AVSynchronizerStatistics as AVSynchronizerStatistics
from ._media._devices import AudioDevice as AudioDevice
from ._media._devices import PlatformAudio as PlatformAudio
from ._media._devices import PlatformAudioOptions as PlatformAudioOptions
from ._media._devices import PlatformAudioSource as PlatformAudioSource
from ._media._encoded_video import EncodedVideoFeedback as EncodedVideoFeedback
from ._media._encoded_video import EncodedVideoSource as EncodedVideoSource
from ._media._frame_processors import FrameProcessor as FrameProcessor
from ._media._frame_processors import NoiseCancellationOptions as NoiseCancellationOptions
from ._media._frame_processors import load_audio_filter as load_audio_filter
from ._media._mixer import AudioMixer as AudioMixer
from ._media._mixer import MixerInput as MixerInput
from ._media._track import LocalAudioTrack as LocalAudioTrack
from ._media._track import LocalTrack as LocalTrack
from ._media._track import LocalVideoTrack as LocalVideoTrack
from ._media._track import RemoteAudioTrack as RemoteAudioTrack
from ._media._track import RemoteTrack as RemoteTrack
from ._media._track import RemoteVideoTrack as RemoteVideoTrack
from ._media._track import Track as Track
from ._media._video import FrameMetadata as FrameMetadata
from ._media._video import VideoBufferType as VideoBufferType
from ._media._video import VideoFrame as VideoFrame
from ._media._video import VideoFrameEvent as VideoFrameEvent
from ._media._video import VideoRotation as VideoRotation
from ._media._video import VideoSource as VideoSource
from ._media._video import VideoStream as VideoStream
from ._native._bridge import BridgeStatistics as BridgeStatistics
from ._native._bridge import statistics as statistics
from ._participant import LocalParticipant as LocalParticipant
from ._participant import Participant as Participant
from ._participant import ParticipantPermissions as ParticipantPermissions
from ._participant import RemoteParticipant as RemoteParticipant
from ._participant import Transcription as Transcription
from ._participant import TranscriptionSegment as TranscriptionSegment
from ._publication import AudioEncoding as AudioEncoding
from ._publication import LocalTrackPublication as LocalTrackPublication
from ._publication import RemoteTrackPublication as RemoteTrackPublication
from ._publication import TrackPublication as TrackPublication
from ._publication import TrackPublishOptions as TrackPublishOptions
from ._publication import VideoEncoding as VideoEncoding
from ._publication import VideoQuality as VideoQuality
from ._room import DISCONNECT_TIMEOUT as DISCONNECT_TIMEOUT
from ._room import Room as Room
from ._room import RoomOptions as RoomOptions
from ._room import SessionStats as SessionStats
from ._room import connect as connect
from ._rpc import RpcCallInfo as RpcCallInfo
from ._rpc import RpcHandler as RpcHandler
from ._rpc import RpcInterceptor as RpcInterceptor
from ._rpc import RpcInvocationData as RpcInvocationData
from ._rtc_config import DataStreamOptions as DataStreamOptions
from ._rtc_config import IceServer as IceServer
from ._rtc_config import RtcConfiguration as RtcConfiguration
from ._stats import StatsReport as StatsReport
from ._stats import StatValue as StatValue
from ._stats import TrackStats as TrackStats
from ._streams import EventStream as EventStream
from ._streams import EventStreamStatistics as EventStreamStatistics
from ._track_permissions import ParticipantTrackPermission as ParticipantTrackPermission
from ._types import AudioTrackFeature as AudioTrackFeature
from ._types import ConnectionQuality as ConnectionQuality
from ._types import ConnectionState as ConnectionState
from ._types import ContinualGatheringPolicy as ContinualGatheringPolicy
from ._types import DataPacketKind as DataPacketKind
from ._types import DegradationPreference as DegradationPreference
from ._types import DisconnectReason as DisconnectReason
from ._types import EncryptionState as EncryptionState
from ._types import EncryptionType as EncryptionType
from ._types import FrameMetadataFeature as FrameMetadataFeature
from ._types import IceTransportType as IceTransportType
from ._types import ParticipantKind as ParticipantKind
from ._types import ParticipantKindDetail as ParticipantKindDetail
from ._types import ParticipantState as ParticipantState
from ._types import SimulateScenario as SimulateScenario
from ._types import StreamState as StreamState
from ._types import TrackKind as TrackKind
from ._types import TrackSource as TrackSource
from ._types import VideoCodec as VideoCodec
from ._types import VideoEncoderBackend as VideoEncoderBackend

__version__ = "0.1.0.dev0"

# A library does not print on its own: native warnings reach stderr only once the application
# configures logging (the "lkanyio" and "lkanyio.native" loggers).
_logging.getLogger("lkanyio").addHandler(_logging.NullHandler())


def _fix_module_names() -> None:
    """Show public names as ``lkanyio.X`` in reprs and tracebacks."""
    for name, value in list(globals().items()):
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("lkanyio._"):
            with _contextlib.suppress(AttributeError, TypeError):
                value.__module__ = __name__


_fix_module_names()
del _fix_module_names
