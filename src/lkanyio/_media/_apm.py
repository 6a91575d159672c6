"""WebRTC audio processing: echo cancellation, noise suppression, gain control, high-pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from .._checks import check_bool, check_uint
from .._errors import check_native
from .._native._bridge import get_bridge
from .._native._handles import OwnedHandle
from .._native._memory import buffer_pointer
from .._native._proto import ffi_pb2
from ._audio_frame import AudioFrame

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["AudioProcessingModule"]


def _check_10ms(frame: object) -> AudioFrame:
    if not isinstance(frame, AudioFrame):
        raise TypeError("the audio processing module takes a lkanyio.AudioFrame")
    if frame.samples_per_channel * 100 != frame.sample_rate:
        # The native core aborts the whole process on any other frame size.
        raise ValueError(
            "the audio processing module takes 10 ms frames only "
            f"({frame.sample_rate // 100} samples per channel at {frame.sample_rate} Hz), "
            f"got {frame.samples_per_channel}"
        )
    return frame


@final
class AudioProcessingModule:
    """WebRTC's audio processing, applied in place to 10 ms frames (a sync context manager).

    Feed what you capture to :meth:`process_stream` and what you play to
    :meth:`process_reverse_stream` (the echo canceller needs both).
    """

    def __init__(
        self,
        *,
        echo_cancellation: bool = False,
        noise_suppression: bool = False,
        high_pass_filter: bool = False,
        auto_gain_control: bool = False,
    ) -> None:
        req = ffi_pb2.FfiRequest()
        msg = req.new_apm
        msg.echo_canceller_enabled = check_bool("echo_cancellation", echo_cancellation)
        msg.noise_suppression_enabled = check_bool("noise_suppression", noise_suppression)
        msg.high_pass_filter_enabled = check_bool("high_pass_filter", high_pass_filter)
        msg.gain_controller_enabled = check_bool("auto_gain_control", auto_gain_control)
        self._handle = OwnedHandle(get_bridge().request(req).new_apm.apm.handle.id)

    def _process(self, kind: str, frame: AudioFrame) -> None:
        _check_10ms(frame)
        req = ffi_pb2.FfiRequest()
        msg = getattr(req, kind)
        msg.apm_handle = self._handle.id
        address, pinned = buffer_pointer(frame.data)
        msg.data_ptr = address
        msg.size = frame.samples_per_channel * frame.num_channels * 2
        msg.sample_rate = frame.sample_rate
        msg.num_channels = frame.num_channels
        response = getattr(get_bridge().request(req), kind)
        del pinned
        check_native(response, what="audio processing failed")

    def process_stream(self, frame: AudioFrame) -> None:
        """Process a captured (near-end) 10 ms frame in place."""
        self._process("apm_process_stream", frame)

    def process_reverse_stream(self, frame: AudioFrame) -> None:
        """Analyse a played-out (far-end) 10 ms frame, for echo cancellation (in place)."""
        self._process("apm_process_reverse_stream", frame)

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        """Tell the echo canceller the delay between playing and capturing, in milliseconds."""
        check_uint("delay_ms", delay_ms, maximum=500)
        req = ffi_pb2.FfiRequest()
        req.apm_set_stream_delay.apm_handle = self._handle.id
        req.apm_set_stream_delay.delay_ms = delay_ms
        response = get_bridge().request(req).apm_set_stream_delay
        check_native(response, what="set_stream_delay_ms failed")

    def close(self) -> None:
        """Release the module (idempotent)."""
        self._handle.close()

    def __enter__(self) -> AudioProcessingModule:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
