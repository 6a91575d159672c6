"""Local audio devices through the native core's platform audio (WebRTC's audio device module).

What the shipped native core (livekit 1.2.0, core 0.13.2) offers: ``new_platform_audio`` (a
handle that keeps the device module enabled), ``get_audio_devices``, ``set_recording_device``,
``set_playout_device``, ``start_recording`` and ``stop_recording``.  Device listing needs the
handle: there is no request that lists devices without enabling the device module.

Measured on a machine without sound hardware (no ALSA/PulseAudio devices): ``new_platform_audio``
answers ``error: "Failed to initialize platform audio"`` and no handle; lkanyio raises
:class:`AudioDeviceError` with that text.

A microphone source is ``new_audio_source`` with ``type = AUDIO_SOURCE_PLATFORM``, the
platform-audio handle and ``AudioSourceOptions`` (echo cancellation, noise suppression, automatic
gain control, prefer hardware processing).  Measured: the native core does not check that handle
— with none, 0, an unknown id or another object's handle it still returns a platform source (and
``create_audio_track`` a track on it) — so lkanyio creates one only from an open
:class:`PlatformAudio`, whose handle keeps the device module enabled.  ``sample_rate`` and
``num_channels`` are required by the protocol (proto2) but ignored for this type (the device
module decides); lkanyio sends WebRTC's 48 kHz mono as livekit.rtc does.  A platform source has
no capture: the device module feeds WebRTC directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

import anyio.lowlevel

from .._errors import AudioDeviceError
from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._proto import audio_frame_pb2, ffi_pb2
from .._resource import Resource

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "AudioDevice",
    "PlatformAudio",
    "PlatformAudioOptions",
    "PlatformAudioSource",
]




@final
@dataclass(frozen=True)
class AudioDevice:
    """A microphone or speaker, as the platform reports it.

    Attributes:
        index: position in the platform's list (changes when devices come and go).
        name: the name the operating system gives it.
        guid: the platform's stable identifier; pass it to ``set_*_device``.
    """

    index: int
    name: str
    guid: str


@final
@dataclass(frozen=True, kw_only=True)
class PlatformAudioOptions:
    """How WebRTC processes the microphone of a :class:`PlatformAudioSource`.

    ::

        options = lkanyio.PlatformAudioOptions(noise_suppression=False)
        source = audio.create_audio_source(options)

    Attributes:
        echo_cancellation: remove the echo of what the speakers play (AEC).
        noise_suppression: remove steady background noise (NS).
        auto_gain_control: even out the microphone's level (AGC).
        prefer_hardware: use the platform's own voice processing where it has one (iOS's
            voice-processing I/O; most desktops have none, and then WebRTC's is used).

    Raises:
        TypeError: an option that is not a ``bool``.
    """

    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain_control: bool = True
    prefer_hardware: bool = False

    def __post_init__(self) -> None:
        for name in ("echo_cancellation", "noise_suppression", "auto_gain_control",
                     "prefer_hardware"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, not {type(value).__name__}")

    def _to_proto(self) -> audio_frame_pb2.AudioSourceOptions:
        return audio_frame_pb2.AudioSourceOptions(
            echo_cancellation=self.echo_cancellation,
            noise_suppression=self.noise_suppression,
            auto_gain_control=self.auto_gain_control,
            prefer_hardware=self.prefer_hardware,
        )


@final
class PlatformAudioSource(Resource):
    """The microphone the platform's device module records, as a source to publish.

    Made by :meth:`PlatformAudio.create_audio_source`; build a track on it with
    :meth:`LocalAudioTrack.create_audio_track` and publish that.  It has no ``capture_frame``:
    the device module sends what it records straight to WebRTC (for frame-level processing,
    use an :class:`~lkanyio.AudioSource`).  It is closed when you close it (``close``,
    ``aclose`` or ``async with``) or when its :class:`PlatformAudio` closes; a track built on it
    keeps the native source alive until the track is closed.
    """

    __slots__ = ("__weakref__", "_handle", "_options")

    def __init__(self, _platform_handle: int, options: PlatformAudioOptions) -> None:
        req = ffi_pb2.FfiRequest()
        msg = req.new_audio_source
        msg.type = audio_frame_pb2.AUDIO_SOURCE_PLATFORM
        msg.platform_audio_handle = _platform_handle
        msg.options.CopyFrom(options._to_proto())
        # Required by proto2, ignored for a platform source (the device module decides).
        msg.sample_rate = 48_000
        msg.num_channels = 1
        source = get_bridge().request(req).new_audio_source.source
        if not source.handle.id:
            raise AudioDeviceError("the native core created no platform audio source")
        self._handle = OwnedHandle(source.handle.id)
        self._options = options

    @property
    def options(self) -> PlatformAudioOptions:
        """The processing options it was created with."""
        return self._options

    @property
    def closed(self) -> bool:
        """Whether the source has been closed."""
        return self._handle.closed

    def close(self) -> None:
        """Release the native source (idempotent); a track built on it keeps playing."""
        self._handle.close()

    def __repr__(self) -> str:
        state = "closed" if self._handle.closed else "open"
        return f"<PlatformAudioSource {state} {self._options}>"


@final
class PlatformAudio:
    """The machine's microphones and speakers (WebRTC's audio device module), while open.

    ::

        async with lkanyio.PlatformAudio() as audio:
            for device in audio.recording_devices():
                print(device.name)

    Opening it enables the native device module (recording starts); leaving the block releases
    it.  Device calls are quick synchronous native requests.

    Raises:
        AudioDeviceError: when entered, if the platform has no usable audio (the native core's
            message says so).
    """

    def __init__(self) -> None:
        self._handle: OwnedHandle | None = None
        self._recording_count = 0
        self._playout_count = 0
        self._sources: list[PlatformAudioSource] = []

    async def __aenter__(self) -> Self:
        await anyio.lowlevel.checkpoint()
        req = ffi_pb2.FfiRequest()
        req.new_platform_audio.SetInParent()
        response = get_bridge().request(req).new_platform_audio
        if response.error or not response.platform_audio.handle.id:
            raise AudioDeviceError(
                f"platform audio is unavailable: {response.error or 'no handle returned'}"
            )
        self._handle = OwnedHandle(response.platform_audio.handle.id)
        info = response.platform_audio.info
        self._recording_count = info.recording_device_count
        self._playout_count = info.playout_device_count
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the device module and the sources made from it (idempotent).

        The sources close first (livekit.rtc asks its users for that order).
        """
        sources, self._sources = self._sources, []
        for source in sources:
            source.close()
        if self._handle is not None:
            self._handle.close()

    def create_audio_source(
        self, options: PlatformAudioOptions | None = None
    ) -> PlatformAudioSource:
        """Make a source of the selected microphone (or the system's default), to publish.

        ::

            async with lkanyio.PlatformAudio() as audio:
                source = audio.create_audio_source(lkanyio.PlatformAudioOptions())
                track = lkanyio.LocalAudioTrack.create_audio_track("mic", source)
                await room.local_participant.publish_track(track)

        Args:
            options: how WebRTC processes the microphone; ``None`` for the defaults (echo
                cancellation, noise suppression and gain control on).

        Raises:
            TypeError: ``options`` is not a :class:`PlatformAudioOptions`.
            AudioDeviceError: the PlatformAudio is not open (there is no device module to
                record from), or the native core made no source.
            ResourceClosedError: the PlatformAudio was closed.
        """
        if options is None:
            options = PlatformAudioOptions()
        elif not isinstance(options, PlatformAudioOptions):
            raise TypeError(
                f"options must be a PlatformAudioOptions, not {type(options).__name__}"
            )
        source = PlatformAudioSource(self._id(), options)
        self._sources = [s for s in self._sources if not s.closed]
        self._sources.append(source)
        return source

    def _id(self) -> int:
        if self._handle is None:
            raise AudioDeviceError("PlatformAudio is not open: use `async with PlatformAudio()`")
        return self._handle.id  # ResourceClosedError once closed

    def _devices(self) -> tuple[list[AudioDevice], list[AudioDevice]]:
        req = ffi_pb2.FfiRequest()
        req.get_audio_devices.platform_audio_handle = self._id()
        response = get_bridge().request(req).get_audio_devices
        if response.error:
            raise AudioDeviceError(f"could not list audio devices: {response.error}")

        def convert(devices: object) -> list[AudioDevice]:
            return [AudioDevice(d.index, d.name, d.guid) for d in devices]  # type: ignore[attr-defined]

        return convert(response.recording_devices), convert(response.playout_devices)

    def recording_devices(self) -> list[AudioDevice]:
        """List the microphones.

        Raises:
            AudioDeviceError: the platform could not list them.
            ResourceClosedError: the PlatformAudio was closed.
        """
        return self._devices()[0]

    def playout_devices(self) -> list[AudioDevice]:
        """List the speakers and headphones.

        Raises:
            AudioDeviceError: the platform could not list them.
            ResourceClosedError: the PlatformAudio was closed.
        """
        return self._devices()[1]

    def _simple(self, which: str, device_id: str | None = None) -> None:
        req = ffi_pb2.FfiRequest()
        msg = getattr(req, which)
        msg.platform_audio_handle = self._id()
        if device_id is not None:
            if not isinstance(device_id, str) or not device_id:
                raise ValueError(f"device_id must be a non-empty str (a guid), not {device_id!r}")
            msg.device_id = device_id
        error = getattr(get_bridge().request(req), which).error
        if error:
            raise AudioDeviceError(f"{which} failed: {error}")

    def set_recording_device(self, device_id: str) -> None:
        """Record from the microphone whose :attr:`AudioDevice.guid` is ``device_id``.

        Raises:
            AudioDeviceError: the platform refused (e.g. no such device).
        """
        self._simple("set_recording_device", device_id)

    def set_playout_device(self, device_id: str) -> None:
        """Play out through the speaker whose :attr:`AudioDevice.guid` is ``device_id``.

        Raises:
            AudioDeviceError: the platform refused (e.g. no such device).
        """
        self._simple("set_playout_device", device_id)

    def start_recording(self) -> None:
        """Resume recording from the microphone (it starts when the PlatformAudio opens).

        Raises:
            AudioDeviceError: the platform refused.
        """
        self._simple("start_recording")

    def stop_recording(self) -> None:
        """Stop recording from the microphone (and the platform's recording indicator).

        Raises:
            AudioDeviceError: the platform refused.
        """
        self._simple("stop_recording")

    def __repr__(self) -> str:
        state = "open" if self._handle is not None and not self._handle.closed else "closed"
        return (
            f"<PlatformAudio {state} recording={self._recording_count} "
            f"playout={self._playout_count}>"
        )
