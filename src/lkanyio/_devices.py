"""Local audio devices through the native core's platform audio (WebRTC's audio device module).

What the shipped native core (livekit 1.2.0, core 0.13.2) offers: ``new_platform_audio`` (a
handle that keeps the device module enabled), ``get_audio_devices``, ``set_recording_device``,
``set_playout_device``, ``start_recording`` and ``stop_recording``.  Device listing needs the
handle: there is no request that lists devices without enabling the device module.

Measured on a machine without sound hardware (no ALSA/PulseAudio devices): ``new_platform_audio``
answers ``error: "Failed to initialize platform audio"`` and no handle; lkanyio raises
:class:`AudioDeviceError` with that text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

import anyio.lowlevel

from ._bridge import OwnedHandle, get_bridge
from ._errors import NativeError
from ._proto import ffi_pb2

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["AudioDevice", "AudioDeviceError", "PlatformAudio"]


@final
class AudioDeviceError(NativeError):
    """The platform's audio devices are unavailable, or a device request failed.

    The message carries the native core's text (e.g. ``Failed to initialize platform audio`` on
    a machine without sound devices).
    """


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
        """Release the device module (idempotent)."""
        if self._handle is not None:
            self._handle.close()

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
