"""Audio frames: 16-bit interleaved PCM in a buffer lkanyio owns.

The native core reads and writes raw pointers without checking them, so a frame is validated
completely when it is built: every frame that exists describes its own buffer exactly, and a
frame handed to the native core can never make it read past the end of its memory.
"""

from __future__ import annotations

import array
import io
import sys
import wave
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, final

from .._checks import check_positive

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["AudioFrame", "combine_audio_frames"]

_BYTES_PER_SAMPLE: Final = 2

# Buffer formats whose bytes are taken as they are: raw bytes, or native-order int16 samples
# (what the native core reads).  numpy's int16 arrays export "h" (or "<h" on little-endian).
_BYTE_FORMATS: Final = frozenset({"B", "b", "c"})
_INT16_FORMATS: Final = frozenset(
    {"h", "@h", "=h", "<h" if sys.byteorder == "little" else ">h"}
)


def _as_bytes_view(data: object) -> memoryview:
    """Return a flat, C-contiguous byte view of ``data`` holding int16 samples.

    Raises:
        TypeError: if ``data`` is not a bytes-like object, or holds something else than int16
            samples or raw bytes (e.g. float32 samples or big-endian int16).
        ValueError: if the buffer is not C-contiguous.
    """
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"audio data must be a bytes-like object (bytes, bytearray, memoryview, "
            f"array('h'), an int16 numpy array …), not {type(data).__name__}"
        ) from None
    if view.format not in _BYTE_FORMATS and view.format not in _INT16_FORMATS:
        raise TypeError(
            f"audio data must hold native-order int16 samples or raw bytes, but its buffer "
            f"format is {view.format!r} (itemsize {view.itemsize}); convert it first, e.g. "
            "numpy: (samples * 32767).astype(numpy.int16)"
        )
    if not view.c_contiguous:
        raise ValueError(
            "audio data must be a C-contiguous buffer (a strided slice or a transposed array "
            "is not); copy it first, e.g. bytes(view) or numpy.ascontiguousarray(array)"
        )
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


@final
class AudioFrame:
    """A block of 16-bit signed PCM audio, channels interleaved (L R L R … for stereo).

    The frame owns its samples in a :class:`bytearray`; :attr:`data` is a zero-copy, writable
    view of them.  Two frames are equal when their format and their samples are equal.

    Args:
        data: the samples: any C-contiguous bytes-like object holding native-order int16
            samples (``bytes``, ``bytearray``, ``memoryview``, ``array('h')``, an int16 numpy
            array) of exactly ``samples_per_channel * num_channels * 2`` bytes.  It is copied.
        sample_rate: samples per second and channel, in Hz.
        num_channels: number of interleaved channels.
        samples_per_channel: number of samples in each channel.

    Raises:
        TypeError: if ``data`` is not a bytes-like object of int16 samples or raw bytes, or a
            count is not an ``int``.
        ValueError: if a count is not positive, ``data`` is not C-contiguous, or its length
            does not match the counts.
    """

    __slots__ = ("_data", "_num_channels", "_sample_rate", "_samples_per_channel", "_userdata")

    def __init__(
        self,
        data: Buffer,
        *,
        sample_rate: int,
        num_channels: int,
        samples_per_channel: int,
    ) -> None:
        check_positive("sample_rate", sample_rate)
        check_positive("num_channels", num_channels)
        check_positive("samples_per_channel", samples_per_channel)
        view = _as_bytes_view(data)
        expected = samples_per_channel * num_channels * _BYTES_PER_SAMPLE
        if view.nbytes != expected:
            raise ValueError(
                f"audio data has {view.nbytes} bytes but {samples_per_channel} samples x "
                f"{num_channels} channels x 2 bytes = {expected} bytes were announced"
            )
        self._data = bytearray(view)
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._samples_per_channel = samples_per_channel
        self._userdata: dict[str, Any] | None = None

    @classmethod
    def create(
        cls, *, sample_rate: int, num_channels: int, samples_per_channel: int
    ) -> AudioFrame:
        """Return a frame of silence (all samples zero).

        Raises:
            TypeError: if a count is not an ``int``.
            ValueError: if a count is not positive.
        """
        check_positive("sample_rate", sample_rate)
        check_positive("num_channels", num_channels)
        check_positive("samples_per_channel", samples_per_channel)
        return cls._adopt(
            bytearray(samples_per_channel * num_channels * _BYTES_PER_SAMPLE),
            sample_rate=sample_rate,
            num_channels=num_channels,
            samples_per_channel=samples_per_channel,
        )

    @classmethod
    def _adopt(
        cls, data: bytearray, *, sample_rate: int, num_channels: int, samples_per_channel: int
    ) -> AudioFrame:
        """Wrap ``data`` without copying; the caller guarantees that the sizes are consistent."""
        frame = cls.__new__(cls)
        frame._data = data
        frame._sample_rate = sample_rate
        frame._num_channels = num_channels
        frame._samples_per_channel = samples_per_channel
        frame._userdata = None
        return frame

    @property
    def data(self) -> memoryview:
        """The samples as a writable, zero-copy ``memoryview`` of int16 (format ``'h'``).

        ``numpy.frombuffer(frame.data, numpy.int16)`` views them as an array, also without a
        copy.  Changing a frame while :meth:`AudioSource.capture_frame` is sending it changes
        what is sent.
        """
        return memoryview(self._data).cast("h")

    @property
    def sample_rate(self) -> int:
        """Samples per second and channel, in Hz."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Number of interleaved channels."""
        return self._num_channels

    @property
    def samples_per_channel(self) -> int:
        """Number of samples in each channel."""
        return self._samples_per_channel

    @property
    def duration(self) -> float:
        """Length of the frame in seconds."""
        return self._samples_per_channel / self._sample_rate

    @property
    def userdata(self) -> dict[str, Any]:
        """A dict of your own for this frame (empty at first; lkanyio never reads it).

        It travels with the Python object only: it is not sent, not compared by ``==``, and
        a frame received from a stream or made by :func:`combine_audio_frames` starts with an
        empty one.
        """
        if self._userdata is None:
            self._userdata = {}
        return self._userdata

    def to_wav_bytes(self) -> bytes:
        """The frame as a complete WAV file (16-bit PCM, its rate and channels) in memory.

        ``wave.open(io.BytesIO(frame.to_wav_bytes()))`` reads the same samples back.
        """
        samples: bytes | bytearray = self._data
        if sys.byteorder != "little":  # WAV is little-endian; the samples are native-order
            swapped = array.array("h", self._data)
            swapped.byteswap()
            samples = swapped.tobytes()
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(self._num_channels)
            wav.setsampwidth(_BYTES_PER_SAMPLE)
            wav.setframerate(self._sample_rate)
            wav.writeframes(samples)
        return out.getvalue()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AudioFrame):
            return NotImplemented
        return (
            self._sample_rate == other._sample_rate
            and self._num_channels == other._num_channels
            and self._samples_per_channel == other._samples_per_channel
            and self._data == other._data
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like bytearray

    def __repr__(self) -> str:
        return (
            f"AudioFrame(sample_rate={self._sample_rate}, num_channels={self._num_channels}, "
            f"samples_per_channel={self._samples_per_channel}, "
            f"duration={self.duration * 1000:.1f} ms)"
        )


def combine_audio_frames(frames: AudioFrame | Iterable[AudioFrame]) -> AudioFrame:
    """Join frames into one, in order (e.g. to hand a whole utterance to a recogniser).

    Every frame must have the same sample rate and channel count; the result has theirs and
    the sum of their lengths.

    Raises:
        TypeError: ``frames`` is not an AudioFrame or an iterable of them.
        ValueError: there is no frame, or the frames differ in sample rate or channel count
            (the message names the first frame that differs).
    """
    if isinstance(frames, AudioFrame):
        frames = [frames]
    if isinstance(frames, (str, bytes, bytearray, memoryview)) or not isinstance(
        frames, Iterable
    ):
        raise TypeError(
            f"combine_audio_frames takes AudioFrames, not {type(frames).__name__}"
        )
    items = list(frames)
    if not items:
        raise ValueError("combine_audio_frames needs at least one frame")
    for index, frame in enumerate(items):
        if not isinstance(frame, AudioFrame):
            raise TypeError(f"frame {index} is a {type(frame).__name__}, not an AudioFrame")
    first = items[0]
    for index, frame in enumerate(items[1:], start=1):
        if frame.sample_rate != first.sample_rate:
            raise ValueError(
                f"frame {index} has a sample rate of {frame.sample_rate} Hz, frame 0 of "
                f"{first.sample_rate} Hz: resample them to one rate first (AudioResampler)"
            )
        if frame.num_channels != first.num_channels:
            raise ValueError(
                f"frame {index} has {frame.num_channels} channels, frame 0 has "
                f"{first.num_channels}: remix them to one channel count first"
            )
    data = bytearray().join(frame._data for frame in items)
    return AudioFrame._adopt(
        data,
        sample_rate=first.sample_rate,
        num_channels=first.num_channels,
        samples_per_channel=sum(frame.samples_per_channel for frame in items),
    )
