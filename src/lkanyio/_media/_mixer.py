"""Audio mixing: several async iterables of frames summed into one stream of fixed-size frames.

The mixer is pure Python (no native request): the native core's mixer is not exposed by the
FFI protocol, so the samples are summed here, in the mixer's own task, a block at a time.
"""

from __future__ import annotations

import inspect
import itertools
import sys
from array import array
from typing import TYPE_CHECKING, Final, final

import anyio

from .._checks import check_positive
from .._errors import ResourceClosedError, raise_lone
from ._audio_frame import AudioFrame

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator
    from types import TracebackType

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._audio import AudioFrameEvent

__all__ = ["AudioMixer", "MixerInput"]

_INT16_MIN: Final = -32768
_INT16_MAX: Final = 32767
_CLOSE_INPUT_TIMEOUT: Final = 1.0
"""How long an input's async generator may take to run its ``finally`` blocks when the mixer
stops reading it (shielded, so a cancelled mixer still finalizes its inputs)."""


@final
class MixerInput:
    """One input of an :class:`AudioMixer`: what :meth:`AudioMixer.add_input` returns.

    The mixer reads the input in its own task until the input ends, fails or is removed; the
    samples it already buffered are still mixed after the input ends.
    """

    __slots__ = ("_buffer", "_ended", "_error", "_scope", "_space")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._ended = False
        self._error: Exception | None = None
        self._scope = anyio.CancelScope()
        self._space: anyio.Event | None = None

    @property
    def ended(self) -> bool:
        """Whether the mixer has stopped reading this input (it ended, failed or was removed)."""
        return self._ended

    @property
    def error(self) -> Exception | None:
        """The exception the input raised (or the format error it caused), if it failed.

        A failing input is dropped from the mix and its error kept here: it never ends the
        mixer or the other inputs.
        """
        return self._error

    def remove(self) -> None:
        """Stop reading this input and drop what it buffered (idempotent)."""
        self._scope.cancel()
        self._ended = True
        self._buffer.clear()
        self._wake()

    def _wake(self) -> None:
        if self._space is not None:
            self._space.set()

    def __repr__(self) -> str:
        state = "failed" if self._error is not None else "ended" if self._ended else "live"
        return f"<MixerInput {state}, {len(self._buffer)} bytes buffered>"


@final
class AudioMixer:
    """Mixes several inputs into one stream of frames of a fixed size (an async context manager).

    Each input is an async iterable of :class:`AudioFrame` (or of
    :class:`~lkanyio.AudioFrameEvent`, so an :class:`~lkanyio.AudioStream` works as it is) at
    the mixer's sample rate and channel count.  The mixer reads every input in a task of its
    own task group and emits one frame of ``samples_per_channel`` samples every
    ``samples_per_channel / sample_rate`` seconds of the event loop's clock: the sum of what each
    input has ready for that period, clipped to 16 bits.  An input with nothing ready (late,
    paused, ended) contributes silence and never holds the others back; with no input at all the
    mixer emits silence.  An input that ends, fails or is removed leaves the others playing.

    ::

        async with lkanyio.AudioMixer(48000, 1) as mixer:
            mixer.add_input(lkanyio.AudioStream(track_a))
            mixer.add_input(my_async_generator_of_frames())
            async for frame in mixer:
                await source.capture_frame(frame)

    Nothing is dropped: a consumer slower than real time slows the mix down (the mixer waits
    for it, then goes on from the current time without a burst), and a full input buffer makes
    the input's task wait, so its own producer applies its own policy.  Leaving the block stops
    every input task (an async generator input is closed, so its ``finally`` runs) and ends the
    stream of mixed frames.

    Args:
        sample_rate: samples per second and channel, in Hz, of every input and of the mix.
        num_channels: interleaved channels of every input and of the mix.
        samples_per_channel: size of each mixed frame (default: 10 ms).
        max_buffered: how many mixed frames may wait for the consumer.
        input_buffer_frames: how many mixed frames' worth of samples each input may buffer
            ahead before its task waits.

    Raises:
        TypeError: a count is not an ``int``.
        ValueError: a count is not positive.
    """

    def __init__(
        self,
        sample_rate: int,
        num_channels: int,
        *,
        samples_per_channel: int | None = None,
        max_buffered: int = 10,
        input_buffer_frames: int = 5,
    ) -> None:
        self._sample_rate = check_positive("sample_rate", sample_rate)
        self._num_channels = check_positive("num_channels", num_channels)
        if samples_per_channel is None:
            samples_per_channel = max(1, sample_rate // 100)
        self._samples_per_channel = check_positive("samples_per_channel", samples_per_channel)
        self._max_buffered = check_positive("max_buffered", max_buffered)
        self._block_bytes = self._samples_per_channel * self._num_channels * 2
        self._input_cap = check_positive("input_buffer_frames", input_buffer_frames) * (
            self._block_bytes
        )
        self._inputs: list[MixerInput] = []
        self._tg: TaskGroup | None = None
        self._send: MemoryObjectSendStream[AudioFrame] | None = None
        self._receive: MemoryObjectReceiveStream[AudioFrame] | None = None
        self._entered = False
        self._closed = False
        self._input_ended = False

    @property
    def sample_rate(self) -> int:
        """Samples per second and channel of the inputs and the mix."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Channels of the inputs and the mix."""
        return self._num_channels

    @property
    def samples_per_channel(self) -> int:
        """Size of each mixed frame."""
        return self._samples_per_channel

    @property
    def inputs(self) -> tuple[MixerInput, ...]:
        """The inputs still mixed: live ones, and ended ones with samples left to play."""
        return tuple(self._inputs)

    def add_input(self, frames: AsyncIterable[AudioFrame | AudioFrameEvent]) -> MixerInput:
        """Start mixing ``frames`` (read in a task of the mixer's own).

        A frame that is not an AudioFrame, or whose sample rate or channel count differs from
        the mixer's, fails that input (:attr:`MixerInput.error` says why), not the mixer.

        Raises:
            TypeError: ``frames`` is not an async iterable.
            RuntimeError: the mixer's block has not been entered yet.
            ResourceClosedError: the mixer's block has ended, or :meth:`end_input` was called.
        """
        if not hasattr(frames, "__aiter__"):
            raise TypeError(
                f"a mixer input must be an async iterable of AudioFrames, not "
                f"{type(frames).__name__}"
            )
        tg = self._running()
        if self._input_ended:
            raise ResourceClosedError("end_input() was called: the mixer takes no more inputs")
        mixer_input = MixerInput()
        self._inputs.append(mixer_input)
        tg.start_soon(self._read, mixer_input, frames)
        return mixer_input

    def end_input(self) -> None:
        """Take no more inputs: the mix ends once every input has ended and been played out."""
        self._input_ended = True

    async def receive(self) -> AudioFrame:
        """Wait for and return the next mixed frame.

        Raises:
            anyio.EndOfStream: the mix ended (after :meth:`end_input`, every input played out).
            ResourceClosedError: the mixer's block has ended.
            RuntimeError: the mixer's block has not been entered yet.
        """
        self._running()
        assert self._receive is not None
        try:
            return await self._receive.receive()
        except anyio.ClosedResourceError:
            raise ResourceClosedError("the audio mixer is closed") from None

    def __aiter__(self) -> AudioMixer:
        return self

    async def __anext__(self) -> AudioFrame:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def _running(self) -> TaskGroup:
        if self._closed:
            raise ResourceClosedError("the audio mixer is closed")
        if self._tg is None:
            raise RuntimeError("use the mixer inside its block: async with AudioMixer(...)")
        return self._tg

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> AudioMixer:
        if self._entered:
            raise RuntimeError("an AudioMixer can be entered only once")
        self._entered = True
        self._send, self._receive = anyio.create_memory_object_stream[AudioFrame](
            self._max_buffered
        )
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        assert self._send is not None
        assert self._receive is not None
        self._closed = True
        tg.cancel_scope.cancel()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            raise_lone(group)
        finally:
            self._send.close()
            self._receive.close()
            self._inputs.clear()

    # -- tasks -------------------------------------------------------------------------------

    async def _read(
        self, mixer_input: MixerInput, frames: AsyncIterable[AudioFrame | AudioFrameEvent]
    ) -> None:
        """Buffer an input's samples until it ends, fails or is removed."""
        from ._audio import AudioFrameEvent

        with mixer_input._scope:
            iterator: AsyncIterator[AudioFrame | AudioFrameEvent] | None = None
            try:
                iterator = frames.__aiter__()
                async for item in iterator:
                    frame = item.frame if isinstance(item, AudioFrameEvent) else item
                    self._check(frame)
                    while len(mixer_input._buffer) >= self._input_cap:
                        mixer_input._space = anyio.Event()
                        await mixer_input._space.wait()
                    mixer_input._buffer += frame._data
            except Exception as exc:  # the input failed: it leaves the mix, the others play on
                mixer_input._error = exc
            finally:
                mixer_input._ended = True
                if inspect.isasyncgen(iterator):  # run its finally blocks, even if cancelled
                    with anyio.move_on_after(_CLOSE_INPUT_TIMEOUT, shield=True):
                        await iterator.aclose()

    def _check(self, frame: object) -> None:
        if not isinstance(frame, AudioFrame):
            raise TypeError(f"a mixer input yielded a {type(frame).__name__}, not an AudioFrame")
        if (frame.sample_rate, frame.num_channels) != (self._sample_rate, self._num_channels):
            raise ValueError(
                f"a mixer input yielded {frame.sample_rate} Hz x {frame.num_channels} channels "
                f"into a {self._sample_rate} Hz x {self._num_channels} channels mixer"
            )

    async def _run(self) -> None:
        """Emit one mixed frame per period of the event loop's clock."""
        assert self._send is not None
        period = self._samples_per_channel / self._sample_rate
        deadline = anyio.current_time()
        while True:
            deadline += period
            now = anyio.current_time()
            if now > deadline + period:  # the consumer or the loop held us up: no burst
                deadline = now
            await anyio.sleep_until(deadline)
            frame = self._mix()
            if frame is None:
                self._send.close()  # end of the mix: every input ended and played out
                return
            await self._send.send(frame)

    def _mix(self) -> AudioFrame | None:
        """Take one block from every input and sum them (``None``: the mix has ended)."""
        block = self._block_bytes
        chunks = []
        for mixer_input in list(self._inputs):
            buffer = mixer_input._buffer
            if buffer:
                chunks.append(buffer[:block])
                del buffer[:block]
                mixer_input._wake()
            if mixer_input._ended and not buffer:
                self._inputs.remove(mixer_input)
        if not chunks and self._input_ended and not self._inputs:
            return None
        out = bytearray(block)
        if len(chunks) == 1:
            out[: len(chunks[0])] = chunks[0]
        elif chunks:
            # A chunk shorter than a block (an input that ran dry) is padded with silence.
            sums = map(
                sum, itertools.zip_longest(*(memoryview(c).cast("h") for c in chunks), fillvalue=0)
            )
            mixed = array(
                "h",
                (
                    _INT16_MAX if s > _INT16_MAX else _INT16_MIN if s < _INT16_MIN else s
                    for s in sums
                ),
            )
            out[: len(mixed) * 2] = mixed.tobytes()
        return AudioFrame._adopt(
            out,
            sample_rate=self._sample_rate,
            num_channels=self._num_channels,
            samples_per_channel=self._samples_per_channel,
        )

    def __repr__(self) -> str:
        return (
            f"<AudioMixer {self._sample_rate} Hz x {self._num_channels}, "
            f"{self._samples_per_channel} samples per frame, {len(self._inputs)} inputs>"
        )
