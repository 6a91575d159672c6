"""Audio media: a source you capture frames into, a stream of a track's frames, a resampler.

Everything that reaches the native core is checked here first.  The native core aborts the
whole process (a Rust panic or a WebRTC check, measured on livekit 1.2.0) for, among others:

* a source or stream with 0 channels, or a frame with 0 channels;
* a stream whose sample rate is below 100 Hz or gives more than 7,680 samples per 10 ms;
* a source slower than about 2 kHz once its track is consumed (WebRTC's resampler check);
* a sox resampler with 0 channels (division by zero on the first push);

it hangs for a stream with ``frame_size_ms=0`` and for a resampler with a NaN or infinite rate,
and a capture into a source slower than 100 Hz never completes.  So the accepted ranges below are
narrower than what the protocol can express: sample rates of sources and streams are 8 kHz to
384 kHz, streams have 1 or 2 channels (the native core delivers mono for any other count).
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import anyio.lowlevel

from .._checkpoints import checkpoint_if_cancelled
from .._checks import check_positive
from .._errors import ResourceClosedError, check_native
from .._native._bridge import Bridge, get_bridge
from .._native._handles import OwnedHandle
from .._native._memory import buffer_pointer, native_bytearray
from .._native._proto import audio_frame_pb2, ffi_pb2
from .._resource import Resource
from .._types import TrackKind, TrackSource
from ._audio_frame import AudioFrame
from ._frame_processors import FrameProcessor, NoiseCancellationOptions, apply_processor
from ._frame_stream import InlineAudio, NativeStream
from ._track import Track

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from typing_extensions import Self

    from .._participant import Participant
    from .._streams import OverflowPolicy

__all__ = [
    "AudioFrameEvent",
    "AudioResampler",
    "AudioResamplerQuality",
    "AudioSource",
    "AudioStream",
]

MIN_SAMPLE_RATE: Final = 8_000
"""Lowest sample rate of an :class:`AudioSource` or :class:`AudioStream`, in Hz."""
MAX_SAMPLE_RATE: Final = 384_000
"""Highest sample rate of an :class:`AudioSource` or :class:`AudioStream`, in Hz."""

MAX_CHANNELS: Final = 8
"""Most channels an :class:`AudioSource` or :class:`AudioResampler` takes (huge counts abort the
native core)."""
MAX_QUEUE_MS: Final = 60_000
"""Longest native queue of an :class:`AudioSource`, in milliseconds."""


def _check_channels(name: str, value: object) -> int:
    channels = check_positive(name, value)
    if channels > MAX_CHANNELS:
        raise ValueError(f"{name} must be at most {MAX_CHANNELS}, got {channels}")
    return channels


def _check_rate(name: str, value: object) -> int:
    rate = check_positive(name, value)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{name} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {rate} "
            "(the native core aborts the process outside the range WebRTC supports)"
        )
    return rate


def _copy_frame(info: audio_frame_pb2.AudioFrameBufferInfo) -> AudioFrame | None:
    """Copy a native frame buffer into a new :class:`AudioFrame` (``None`` if it is empty)."""
    channels, samples = info.num_channels, info.samples_per_channel
    if not info.data_ptr or channels <= 0 or samples <= 0 or info.sample_rate <= 0:
        return None
    size = samples * channels * 2
    data = native_bytearray(info.data_ptr, size)
    return AudioFrame._adopt(
        data, sample_rate=info.sample_rate, num_channels=channels, samples_per_channel=samples
    )


# -- source --------------------------------------------------------------------------------------


def _empty_and_drop(bridge: Bridge, handle: int) -> None:
    """Empty a native source's queue, then drop its handle.

    The native core (livekit-ffi 0.13, webrtc-sys ``AudioTrackSource::InternalSource``) plays a
    queued source out from a 10 ms task on its own "AudioSourceCapture" thread, and its destructor
    neither stops that task first nor takes the mutex the task holds: the queue's vector is freed
    while a tick may be inside ``buffer_.erase`` (a memmove of everything still queued), so the
    tick writes into freed heap memory (glibc: "malloc(): unsorted double linked list
    corrupted", a segfault, or a tick spinning forever in the vector's shrink loop and the
    destructor joining it).  The source is destroyed when its last holder lets go: this handle
    or, later, a track built on it (the room's teardown).  ``clear_audio_buffer`` takes that mutex
    (so it waits for a running tick) and leaves the queue empty, and once the handle is gone
    nothing can fill it again: no later tick has anything to move.
    """
    _clear(bridge, handle)
    bridge.drop_handle(handle)


def _clear(bridge: Bridge, handle: int) -> None:
    req = ffi_pb2.FfiRequest()
    req.clear_audio_buffer.source_handle = handle
    with contextlib.suppress(Exception):  # disposed or forked: nothing is played out any more
        bridge.request(req)


_RELEASE_GUARD = 5.0
"""How long :meth:`AudioSource.aclose` waits for a deferred release (a hang guard only)."""


class _SourceHandle(OwnedHandle):
    """An :class:`AudioSource`'s native handle: emptied before it is dropped (see above).

    A capture the native core has not answered yet may still add its samples to the queue after
    a clear, so while one is in flight closing empties the queue (the capture, if it waited for
    room, is taken at once) and the release (clear again, then drop) waits for its answer.  Each
    capture holds this object until its answer, so the finalizer never runs with one in flight.
    ``close`` may come from another thread than the answers (which arrive in the loop's), so the
    count and the deferred release share a lock; the finalizer cannot deadlock on it (it runs
    only once nothing holds this object).
    """

    __slots__ = ("_deferred", "_in_flight", "_lock", "_on_release")

    def __init__(self, handle_id: int) -> None:
        super().__init__(handle_id)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._deferred = 0
        self._on_release: list[Callable[[], object]] = []

    def when_released(self, callback: Callable[[], object]) -> bool:
        """Call ``callback`` (in the thread of the answer) once a deferred release is done.

        Returns False, and never calls it, when no release is deferred now.
        """
        with self._lock:
            if not self._deferred:
                return False
            self._on_release.append(callback)
            return True

    def capture_sent(self) -> None:
        with self._lock:
            self._in_flight += 1

    def capture_done(self) -> None:
        with self._lock:
            self._in_flight -= 1
            handle = self._deferred if self._in_flight <= 0 else 0
            notify: list[Callable[[], object]] = []
            if handle:
                self._deferred = 0
                notify, self._on_release = self._on_release, []
        if handle:
            _empty_and_drop(self._bridge, handle)
        for callback in notify:
            callback()

    def close(self) -> None:
        handle = self._take()
        if not handle:
            return
        with self._lock:
            deferred = self._in_flight > 0
            if deferred:
                self._deferred = handle  # released by the answer of the capture in flight
        if deferred:
            # Emptied now too, so a capture waiting for room in the queue is taken at once and
            # answers within milliseconds (otherwise only once the queue had played out: a
            # room left right after kept the source alive, measured in the server-kill test).
            _clear(self._bridge, handle)
        else:
            _empty_and_drop(self._bridge, handle)


class _CaptureTurns:
    """Lets one capture at a time into the native core, in the order the captures arrived.

    Measured on livekit 1.2.0: a second ``capture_audio_frame`` sent while another one on the
    same source waits for room in its queue fails with "InvalidState - failed to capture frame"
    (4 tasks capturing 10 ms frames: after 5 frames with a 50 ms queue, after 100 with 1000 ms;
    never with ``queue_size_ms=0``).  A turn therefore lasts until the native core answers the
    capture, also when its caller was cancelled meanwhile: the native core goes on with it.
    A waiter cancelled before its turn leaves the line; one cancelled just as its turn came
    passes the turn on.  Synchronous bookkeeping only: :meth:`release` runs in the dispatcher.
    """

    __slots__ = ("_busy", "_closed", "_waiting")

    def __init__(self) -> None:
        self._busy = False  # a capture holds the turn (False => nobody is waiting)
        self._closed = False
        self._waiting: deque[anyio.Event] = deque()

    async def acquire(self) -> None:
        """Wait for this task's turn (first come, first served).

        Raises:
            ResourceClosedError: the source was closed before the turn came.
        """
        if self._closed:
            raise ResourceClosedError("the AudioSource is closed")
        if not self._busy:
            # No checkpoint: an uncontended capture is sent as before, even in a cancelled
            # scope (the request's own wait is the checkpoint, and may leave it played).
            self._busy = True
            return
        turn = anyio.Event()
        self._waiting.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if not turn.is_set():
                self._waiting.remove(turn)
            elif not self._closed:
                self.release()  # the turn came as the caller was cancelled: pass it on
            raise
        if self._closed:
            raise ResourceClosedError("the AudioSource is closed")

    def release(self) -> None:
        """End the current turn: hand it to the next waiter, if any."""
        if self._waiting:
            self._waiting.popleft().set()
        else:
            self._busy = False

    def close(self) -> None:
        """Wake every waiter: they raise ``ResourceClosedError`` instead of taking a turn."""
        self._closed = True
        while self._waiting:
            self._waiting.popleft().set()


@final
class AudioSource(Resource):
    """A real-time audio source: frames you capture are queued and played out at their pace.

    Create one, build a :class:`~lkanyio.LocalAudioTrack` on it and publish the track; every
    subscriber hears what you capture.  The native queue holds up to ``queue_size_ms`` of audio:
    :meth:`capture_frame` returns as soon as the frame is queued and waits while the queue is
    full, which paces a producer to real time.  Use it as an async context manager (or call
    :meth:`aclose`) to release the native source::

        async with lkanyio.AudioSource(48000, 1) as source:
            track = lkanyio.LocalAudioTrack.create_audio_track("mic", source)
            await source.capture_frame(frame)
            await source.wait_for_playout()

    Args:
        sample_rate: samples per second and channel of every captured frame, 8,000 to
            384,000 Hz.
        num_channels: interleaved channels of every captured frame (WebRTC sends at most 2;
            more are mixed down).
        queue_size_ms: how much audio the native queue buffers, in milliseconds.  ``0`` selects
            the native core's direct path: no queue, and every frame must be exactly 10 ms.

    Raises:
        TypeError: if an argument is not an ``int``.
        ValueError: if an argument is out of range.
    """

    __slots__ = ("__weakref__", "_handle", "_num_channels", "_playout_end", "_queue_size_ms",
                 "_sample_rate", "_turns", "_wakeup")

    def __init__(self, sample_rate: int, num_channels: int, *, queue_size_ms: int = 1000) -> None:
        _check_rate("sample_rate", sample_rate)
        _check_channels("num_channels", num_channels)
        if isinstance(queue_size_ms, bool) or not isinstance(queue_size_ms, int):
            raise TypeError(f"queue_size_ms must be an int, not {type(queue_size_ms).__name__}")
        if not 0 <= queue_size_ms <= MAX_QUEUE_MS or queue_size_ms % 10:
            # The native core panics (aborting the process) on anything else.
            raise ValueError(
                f"queue_size_ms must be 0 or a multiple of 10 up to {MAX_QUEUE_MS}, "
                f"got {queue_size_ms}"
            )
        req = ffi_pb2.FfiRequest()
        msg = req.new_audio_source
        msg.type = audio_frame_pb2.AUDIO_SOURCE_NATIVE
        msg.sample_rate = sample_rate
        msg.num_channels = num_channels
        msg.queue_size_ms = queue_size_ms
        self._handle = _SourceHandle(get_bridge().request(req).new_audio_source.source.handle.id)
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._queue_size_ms = queue_size_ms
        # time.monotonic() at which the audio queued so far has been played out.
        self._playout_end = 0.0
        self._wakeup: anyio.Event | None = None
        self._turns = _CaptureTurns()

    @property
    def sample_rate(self) -> int:
        """Sample rate of the source in Hz."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Number of channels of the source."""
        return self._num_channels

    @property
    def queue_size_ms(self) -> int:
        """Capacity of the native queue in milliseconds (``0``: direct path, no queue)."""
        return self._queue_size_ms

    @property
    def closed(self) -> bool:
        """Whether the source has been closed."""
        return self._handle.closed

    @property
    def queued_duration(self) -> float:
        """Seconds of captured audio not yet played out (an estimate kept by lkanyio).

        The native core does not report its queue; lkanyio adds each captured frame's duration
        when the native core accepts it and lets the queue drain in real time.
        """
        return max(self._playout_end - time.monotonic(), 0.0)

    def _check_frame(self, frame: AudioFrame) -> None:
        if not isinstance(frame, AudioFrame):
            raise TypeError(f"capture_frame takes an AudioFrame, not {type(frame).__name__}")
        if frame.sample_rate != self._sample_rate or frame.num_channels != self._num_channels:
            raise ValueError(
                f"the frame is {frame.sample_rate} Hz x {frame.num_channels} channels but the "
                f"source is {self._sample_rate} Hz x {self._num_channels} channels; "
                "resample it first (AudioResampler)"
            )
        if self._queue_size_ms == 0 and frame.samples_per_channel != self._sample_rate // 100:
            raise ValueError(
                f"a source with queue_size_ms=0 takes frames of exactly 10 ms "
                f"({self._sample_rate // 100} samples per channel), not "
                f"{frame.samples_per_channel}"
            )

    def _queued(self, duration: float) -> None:
        self._playout_end = max(self._playout_end, time.monotonic()) + duration

    async def capture_frame(self, frame: AudioFrame) -> None:
        """Queue ``frame`` for playout, waiting while the native queue is full.

        Several tasks may capture into one source at once: their frames are queued one after
        the other, in the order the calls were made.

        Cancellation: a capture still waiting for the ones before it, or made where a
        cancellation is already pending, is withdrawn and never played.  One the native core
        has already taken may still be played; the next capture then waits until the native
        core is done with it.  The frame's memory stays alive until the native core is done
        with it either way.  Don't change the frame's samples until the call has returned.

        Raises:
            TypeError: if ``frame`` is not an :class:`AudioFrame`.
            ValueError: if its sample rate or channel count differ from the source's (or, with
                ``queue_size_ms=0``, it is not 10 ms long).
            ResourceClosedError: if the source has been closed.
            NativeError: if the native core refused the frame (with its message).
        """
        self._check_frame(frame)
        turns = self._turns
        await turns.acquire()
        ended = False

        def end_turn() -> None:
            nonlocal ended
            if not ended:
                ended = True
                turns.release()

        try:
            # A cancellation already pending is raised here, before anything is sent, and ends
            # the turn.  (``request_async`` would raise it unsent too, and with no answer to
            # come the turn would never end; with no await between here and the send, it is
            # told not to check again.)
            await checkpoint_if_cancelled()
        except BaseException:
            end_turn()
            raise
        try:
            callback = await self._capture(frame, end_turn)
        except anyio.get_cancelled_exc_class():
            raise  # the request was sent: its answer, however late, ends the turn
        except BaseException:
            end_turn()  # the request never reached the native core
            raise
        check_native(callback, what="capture_frame failed")

    async def _capture(self, frame: AudioFrame, end_turn: Callable[[], None]) -> Any:
        """Send one capture and return the native core's answer; ``end_turn`` runs on it."""
        owner = self._handle
        handle = owner.id
        address, pinned = buffer_pointer(frame._data)
        req = ffi_pb2.FfiRequest()
        msg = req.capture_audio_frame
        msg.source_handle = handle
        info = msg.buffer
        info.data_ptr = address
        info.sample_rate = frame.sample_rate
        info.num_channels = frame.num_channels
        info.samples_per_channel = frame.samples_per_channel
        duration = frame.duration
        source = weakref.ref(self)

        answers = [owner]  # emptied by the first answer: the capture is over exactly once

        def done() -> None:
            if answers:
                answers.pop().capture_done()  # may release a source closed meanwhile

        def answered(callback: Any, _keep: tuple[object, ...] = (pinned, frame)) -> Any:
            # Runs in the dispatcher the moment the native core answers, whether the caller
            # still waits (on_deliver) or was cancelled (on_late).  Holding ``_keep`` until here
            # is the point: the native core reads the samples until it answers.  Ending the turn
            # here, not when the caller resumes, lets the next capture go at once.
            end_turn()
            done()
            alive = source()
            if alive is not None and not callback.error:
                alive._queued(duration)
            return callback

        owner.capture_sent()
        try:  # a cancellation (or KeyboardInterrupt) comes only after the send (see
            # capture_frame): its answer, however late, runs ``done``, so it is not caught here
            callback = await get_bridge().request_async(
                req, on_deliver=answered, on_late=answered, cancel_checked=True
            )
        except Exception:
            done()  # refused before the native core took it (or its answer is lost for good)
            raise
        del pinned
        return callback

    def clear_queue(self) -> None:
        """Discard the audio queued but not yet played out.

        Raises:
            ResourceClosedError: if the source has been closed.
        """
        req = ffi_pb2.FfiRequest()
        req.clear_audio_buffer.source_handle = self._handle.id
        get_bridge().request(req)
        self._playout_end = 0.0
        self._wake()

    async def wait_for_playout(self) -> None:
        """Wait until the queued audio has been played out, including audio captured meanwhile.

        Returns at once when nothing is queued, after :meth:`clear_queue`, or when the source is
        closed.
        """
        while True:
            remaining = self.queued_duration
            if remaining <= 0.0 or self._handle.closed:
                await anyio.lowlevel.checkpoint()
                return
            wakeup = self._wakeup
            if wakeup is None:
                wakeup = self._wakeup = anyio.Event()
            with anyio.move_on_after(remaining):
                await wakeup.wait()

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.set()

    def close(self) -> None:
        """Release the native source (idempotent).

        Audio queued but not yet played is discarded (a track built on this source plays
        silence from then on); call :meth:`wait_for_playout` first to let it finish.  The
        native core cannot safely destroy a source whose queue is not empty, so lkanyio empties
        it before letting go (after the answer of a capture still in flight, if there is one).
        """
        self._handle.close()
        self._turns.close()
        self._playout_end = 0.0
        self._wake()

    async def _released(self) -> None:
        # With a capture in flight the release waits for its answer, which comes within
        # milliseconds once the queue is emptied; ``aclose`` (and the end of ``async with``)
        # waits for it too, shielded, up to _RELEASE_GUARD seconds (a hang guard only), so that
        # nothing of the source is left when the block ends.
        released = anyio.Event()
        if self._handle.when_released(released.set):
            with anyio.move_on_after(_RELEASE_GUARD, shield=True):
                await released.wait()

    def __repr__(self) -> str:
        state = " closed" if self._handle.closed else ""
        return (
            f"<AudioSource {self._sample_rate} Hz x {self._num_channels} ch, "
            f"queue {self._queue_size_ms} ms{state}>"
        )


# -- stream --------------------------------------------------------------------------------------


@final
@dataclass(frozen=True)
class AudioFrameEvent:
    """One frame received from an :class:`AudioStream`.

    Attributes:
        frame: the samples, in the stream's sample rate and channel count.
    """

    frame: AudioFrame


@final
class AudioStream(NativeStream[AudioFrameEvent]):
    """The decoded audio of a track, as a bounded stream of :class:`AudioFrameEvent`.

    Works for local tracks (you hear what you capture, sample for sample) and for subscribed
    remote tracks.  The native core converts to the sample rate and channel count asked for and
    cuts frames of ``frame_size_ms``.  Create it in async code and close it (``async with``)::

        async with lkanyio.AudioStream(track, sample_rate=16000) as stream:
            async for event in stream:
                handle(event.frame)

    The stream ends (iteration stops) when the track goes away.  Frames wait in a buffer of
    ``max_buffered`` frames; when it is full, ``overflow="fail"`` ends the stream with
    :class:`~lkanyio.EventStreamOverflowError`, ``"drop_oldest"`` discards the oldest frame and
    counts it in :meth:`statistics`.

    Args:
        track: an audio track (:class:`~lkanyio.LocalAudioTrack` or
            :class:`~lkanyio.RemoteAudioTrack`).
        sample_rate: sample rate of the frames you receive, 8,000 to 384,000 Hz.
        num_channels: 1 or 2.
        frame_size_ms: length of each frame, in milliseconds (at least 1).
        max_buffered: how many frames may wait for you (default: 5 s of 10 ms frames).
        overflow: what a full buffer does: ``"fail"`` or ``"drop_oldest"``.
        processor: a :data:`~lkanyio.FrameProcessor` run on each frame as you receive it (in
            your task); what it returns is what you get.  If it raises, the stream ends with
            that exception (raised by this receive and the next ones); the room goes on.
        noise_cancellation: a native audio filter (:class:`~lkanyio.NoiseCancellationOptions`)
            the native core runs before the frames reach Python; its plugin must be loaded
            (:func:`~lkanyio.load_audio_filter`).

    Raises:
        TypeError: if ``track`` is not an audio track or an option has the wrong type.
        ValueError: if an option is out of range.
        ResourceClosedError: if the track has been closed.
        AudioFilterError: ``noise_cancellation`` names a filter that is not loaded.
    """

    def __init__(
        self,
        track: Track,
        *,
        sample_rate: int = 48_000,
        num_channels: int = 1,
        frame_size_ms: int = 10,
        max_buffered: int = 500,
        overflow: OverflowPolicy = "fail",
        processor: FrameProcessor | None = None,
        noise_cancellation: NoiseCancellationOptions | None = None,
    ) -> None:
        if not isinstance(track, Track) or track.kind != TrackKind.AUDIO:
            raise TypeError(f"AudioStream needs an audio track, not {track!r}")
        self._start(track._handle.id, None, sample_rate, num_channels, frame_size_ms,
                    max_buffered, overflow, processor, noise_cancellation)

    @classmethod
    def from_participant(
        cls,
        participant: Participant,
        source: TrackSource = TrackSource.MICROPHONE,
        *,
        sample_rate: int = 48_000,
        num_channels: int = 1,
        frame_size_ms: int = 10,
        max_buffered: int = 500,
        overflow: OverflowPolicy = "fail",
        processor: FrameProcessor | None = None,
        noise_cancellation: NoiseCancellationOptions | None = None,
    ) -> AudioStream:
        """The audio of ``participant``'s track from ``source``, whichever track that is.

        The stream can be opened before the participant publishes: frames start once the
        track is subscribed.  The options are those of :class:`AudioStream`.

        Raises:
            TypeError: ``participant`` is not a participant or ``source`` not a TrackSource.
            ValueError: an option is out of range.
        """
        stream = cls.__new__(cls)
        stream._start(None, cls._participant_source(participant, source), sample_rate, num_channels,
                      frame_size_ms, max_buffered, overflow, processor, noise_cancellation)
        return stream

    def _start(
        self,
        track_handle: int | None,
        participant_source: tuple[int, TrackSource] | None,
        sample_rate: int,
        num_channels: int,
        frame_size_ms: int,
        max_buffered: int,
        overflow: OverflowPolicy,
        processor: FrameProcessor | None = None,
        noise_cancellation: NoiseCancellationOptions | None = None,
    ) -> None:
        if processor is not None and not callable(processor):
            raise TypeError(f"processor must be callable (frame -> frame), not {processor!r}")
        if noise_cancellation is not None and not isinstance(
            noise_cancellation, NoiseCancellationOptions
        ):
            raise TypeError(
                f"noise_cancellation must be NoiseCancellationOptions, not {noise_cancellation!r}"
            )
        # Checked before the request: the native core answers handle 0 (no text) for a filter
        # module it has not loaded (measured on livekit 1.2.0).
        filter_options = None if noise_cancellation is None else noise_cancellation._to_json()
        self._processor = processor
        _check_rate("sample_rate", sample_rate)
        check_positive("num_channels", num_channels)
        if num_channels > 2:
            raise ValueError(
                f"num_channels must be 1 or 2, got {num_channels} (the native core delivers "
                "mono for any other count)"
            )
        check_positive("frame_size_ms", frame_size_ms)
        check_positive("max_buffered", max_buffered)
        if overflow not in ("fail", "drop_oldest"):
            raise ValueError(f"overflow must be 'fail' or 'drop_oldest', not {overflow!r}")
        self._sample_rate = sample_rate
        self._num_channels = num_channels

        def fill(msg: Any) -> None:
            msg.type = audio_frame_pb2.AUDIO_STREAM_NATIVE
            msg.sample_rate = sample_rate
            msg.num_channels = num_channels
            msg.frame_size_ms = frame_size_ms
            if noise_cancellation is not None and filter_options is not None:
                msg.audio_filter_module_id = noise_cancellation.module_id
                msg.audio_filter_options = filter_options

        self._create(
            "audio", track_handle, participant_source, fill,
            max_buffered=max_buffered, overflow=overflow,
        )

    _what = "audio stream"

    def _read(self, received: Any) -> AudioFrameEvent | None:
        frame = _copy_frame(received.frame.info)
        if frame is None:
            return None
        return self._event(frame)

    def _read_inline(self, frame: InlineAudio) -> AudioFrameEvent:
        samples, sample_rate, num_channels, samples_per_channel = frame
        return self._event(
            AudioFrame._adopt(
                samples,
                sample_rate=sample_rate,
                num_channels=num_channels,
                samples_per_channel=samples_per_channel,
            )
        )

    def _event(self, frame: AudioFrame) -> AudioFrameEvent:
        processor = self._processor
        if processor is None:
            return AudioFrameEvent(frame)
        try:
            return AudioFrameEvent(apply_processor(processor, frame))
        except Exception as exc:
            # The processor's failure ends this stream only: later receives raise it too, the
            # native stream is released, and nothing reaches the room's task group.
            self._sender.fail(exc)
            self._release()
            raise

    @property
    def sample_rate(self) -> int:
        """Sample rate of the frames, in Hz."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Channels of the frames."""
        return self._num_channels

    def __repr__(self) -> str:
        return f"<AudioStream {self._sample_rate} Hz x {self._num_channels} ch>"


# -- resampler -----------------------------------------------------------------------------------


class AudioResamplerQuality(enum.IntEnum):
    """Quality (and cost) of :class:`AudioResampler`, as the sox library defines it."""

    QUICK = audio_frame_pb2.SOXR_QUALITY_QUICK
    LOW = audio_frame_pb2.SOXR_QUALITY_LOW
    MEDIUM = audio_frame_pb2.SOXR_QUALITY_MEDIUM
    HIGH = audio_frame_pb2.SOXR_QUALITY_HIGH
    VERY_HIGH = audio_frame_pb2.SOXR_QUALITY_VERYHIGH


@final
class AudioResampler:
    """Convert audio between sample rates with the native core's sox resampler (synchronous).

    Push frames of ``input_rate`` and receive frames of ``output_rate``; the resampler keeps a
    few milliseconds of history, which :meth:`flush` releases at the end (after a flush it starts
    afresh).  Use it as a context manager or call :meth:`close`::

        with lkanyio.AudioResampler(48000, 16000) as resampler:
            for frame in frames:
                out.extend(resampler.push(frame))
            out.extend(resampler.flush())

    Args:
        input_rate: sample rate of the frames you push, in Hz.
        output_rate: sample rate of the frames you receive, in Hz.
        num_channels: channels of the frames (in and out).
        quality: the sox quality recipe.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate or the channel count is not positive.
        NativeError: if the native core refused to create the resampler.
    """

    __slots__ = ("_handle", "_input_rate", "_num_channels", "_output_rate", "_quality")

    def __init__(
        self,
        input_rate: int,
        output_rate: int,
        *,
        num_channels: int = 1,
        quality: AudioResamplerQuality = AudioResamplerQuality.MEDIUM,
    ) -> None:
        # Rates and channel counts outside these bounds make the native core fail to allocate
        # (aborting the process).
        _check_rate("input_rate", input_rate)
        _check_rate("output_rate", output_rate)
        _check_channels("num_channels", num_channels)
        quality = AudioResamplerQuality(quality)
        req = ffi_pb2.FfiRequest()
        msg = req.new_sox_resampler
        msg.input_rate = input_rate
        msg.output_rate = output_rate
        msg.num_channels = num_channels
        msg.input_data_type = audio_frame_pb2.SOXR_DATATYPE_INT16I
        msg.output_data_type = audio_frame_pb2.SOXR_DATATYPE_INT16I
        msg.quality_recipe = quality.value
        msg.flags = 0
        response = get_bridge().request(req).new_sox_resampler
        check_native(response, what="cannot create the resampler")
        self._handle = OwnedHandle(response.resampler.handle.id)
        self._input_rate = input_rate
        self._output_rate = output_rate
        self._num_channels = num_channels
        self._quality = quality

    @property
    def input_rate(self) -> int:
        """Sample rate of the frames pushed, in Hz."""
        return self._input_rate

    @property
    def output_rate(self) -> int:
        """Sample rate of the frames returned, in Hz."""
        return self._output_rate

    @property
    def num_channels(self) -> int:
        """Channels of the frames."""
        return self._num_channels

    @property
    def quality(self) -> AudioResamplerQuality:
        """The sox quality recipe."""
        return self._quality

    def _output(self, address: int, size: int) -> list[AudioFrame]:
        # ``address`` is native memory, valid until the next call on this resampler: copy now.
        samples = size // (2 * self._num_channels)
        if not address or samples <= 0:
            return []
        size = samples * 2 * self._num_channels
        data = native_bytearray(address, size)
        return [
            AudioFrame._adopt(
                data,
                sample_rate=self._output_rate,
                num_channels=self._num_channels,
                samples_per_channel=samples,
            )
        ]

    def push(self, frame: AudioFrame) -> list[AudioFrame]:
        """Resample ``frame``; return what is ready (none or one frame, of any length).

        Raises:
            TypeError: if ``frame`` is not an :class:`AudioFrame`.
            ValueError: if its sample rate or channel count differ from the resampler's.
            ResourceClosedError: if the resampler has been closed.
            NativeError: if the native core reports an error.
        """
        if not isinstance(frame, AudioFrame):
            raise TypeError(f"push takes an AudioFrame, not {type(frame).__name__}")
        if frame.sample_rate != self._input_rate or frame.num_channels != self._num_channels:
            raise ValueError(
                f"the frame is {frame.sample_rate} Hz x {frame.num_channels} channels but the "
                f"resampler takes {self._input_rate} Hz x {self._num_channels} channels"
            )
        address, pinned = buffer_pointer(frame._data)
        req = ffi_pb2.FfiRequest()
        msg = req.push_sox_resampler
        msg.resampler_handle = self._handle.id
        msg.data_ptr = address
        msg.size = len(frame._data)
        response = get_bridge().request(req).push_sox_resampler
        del pinned  # the push is synchronous: the native core is done with the input
        check_native(response, what="resampling failed")
        return self._output(response.output_ptr, response.size)

    def flush(self) -> list[AudioFrame]:
        """Return the audio still held inside the resampler; the next push starts afresh.

        Raises:
            ResourceClosedError: if the resampler has been closed.
            NativeError: if the native core reports an error.
        """
        req = ffi_pb2.FfiRequest()
        req.flush_sox_resampler.resampler_handle = self._handle.id
        response = get_bridge().request(req).flush_sox_resampler
        check_native(response, what="resampling failed")
        return self._output(response.output_ptr, response.size)

    def close(self) -> None:
        """Release the native resampler (idempotent)."""
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<AudioResampler {self._input_rate} -> {self._output_rate} Hz x "
            f"{self._num_channels} ch, {self._quality.name}>"
        )
