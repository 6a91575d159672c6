"""Pace audio and video capture to one clock (the event loop's), for structured concurrency.

livekit.rtc's ``AVSynchronizer`` runs a background task that drains a queue; here the pacing
happens in the tasks that push: ``push_video`` waits for its frame's slot on the clock, then
captures; ``push_audio`` waits until its frame is at most ``audio_lead`` ahead of the clock,
then captures (the :class:`~lkanyio.AudioSource` queue plays it out in real time).  No thread,
no task of its own: a cancelled push captures nothing and leaves the clock as it was, so the
next push takes the same slot.

livekit.rtc's queue of video frames waiting for their slot is, here, the pushes themselves
that are waiting: ``clear_queue`` releases them (each returns ``False``, nothing captured) and
discards the audio source's queue; ``reset`` restarts the clock at the next push.  Waiting
pushes wake on either (and on ``close``) through one event that is replaced after each change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

import anyio
import anyio.lowlevel

from .._errors import ResourceClosedError
from .._resource import Resource
from ._audio import AudioSource
from ._audio_frame import AudioFrame
from ._video import VideoFrame, VideoSource

if TYPE_CHECKING:


    from ._video import FrameMetadata

__all__ = ["AVSynchronizer", "AVSynchronizerStatistics"]


@final
@dataclass(frozen=True)
class AVSynchronizerStatistics:
    """Where each stream is on the synchronizer's clock.

    Attributes:
        video_frames: video frames captured.
        audio_frames: audio frames captured.
        video_time: seconds of video captured (``video_frames / video_fps``).
        audio_time: seconds of audio captured (the sum of the frames' durations).
        late_video_frames: video frames pushed after their slot had passed (captured at once).
        last_video_slot: clock position (seconds since the clock started: the first push, or
            the first after :meth:`AVSynchronizer.reset`) of the last video frame.
        last_audio_slot: clock position of the start of the last audio frame.
        clock: the clock's position now (seconds since it started; ``None`` before the first
            push and after a reset until the next).
        dropped_video_frames: video pushes :meth:`AVSynchronizer.clear_queue` released
            uncaptured.
        dropped_audio_frames: audio pushes :meth:`AVSynchronizer.clear_queue` released
            uncaptured (audio it discarded from the source's queue is not counted here).
        resets: how many times the clock restarted (``reset`` and ``clear_queue``).
    """

    video_frames: int
    audio_frames: int
    video_time: float
    audio_time: float
    late_video_frames: int
    last_video_slot: float | None
    last_audio_slot: float | None
    clock: float | None
    dropped_video_frames: int = 0
    dropped_audio_frames: int = 0
    resets: int = 0


@final
class AVSynchronizer(Resource):
    """Capture audio and video frames in step, paced to one clock (async context manager).

    ::

        sync = lkanyio.AVSynchronizer(audio_source, video_source, video_fps=30)
        async with sync, anyio.create_task_group() as tg:
            tg.start_soon(push_all_video, sync)   # await sync.push_video(frame) per frame
            tg.start_soon(push_all_audio, sync)   # await sync.push_audio(frame) per frame

    The clock starts at the first push.  Video frame *n* is captured at ``n / video_fps``;
    audio is captured once it is at most ``audio_lead`` seconds ahead of the clock.  A producer
    that falls behind is not waited for: its frames are captured at once (late video frames
    are counted).  Push each stream from one task at a time (concurrent pushes of one stream
    take turns).

    After a pause in the media (the producer stopped, e.g. between two utterances), call
    :meth:`reset` so the frames after it are paced from their arrival instead of captured in a
    burst to catch up; on an interruption, :meth:`clear_queue` drops what is waiting and
    restarts the clock, so the next frames start at once, in step.

    Args:
        audio_source: where audio frames go.
        video_source: where video frames go.
        video_fps: the video frame rate, above 0 and at most 240.
        audio_lead: how far ahead of the clock audio may be captured, in seconds (at least the
            length of one audio frame is sensible; default 0.1 s, within the source's queue).

    Raises:
        TypeError: a source of the wrong type.
        ValueError: ``video_fps`` or ``audio_lead`` out of range.
    """

    def __init__(
        self,
        audio_source: AudioSource,
        video_source: VideoSource,
        *,
        video_fps: float,
        audio_lead: float = 0.1,
    ) -> None:
        if not isinstance(audio_source, AudioSource):
            raise TypeError(f"audio_source must be an AudioSource, not {audio_source!r}")
        if not isinstance(video_source, VideoSource):
            raise TypeError(f"video_source must be a VideoSource, not {video_source!r}")
        for name, value in (("video_fps", video_fps), ("audio_lead", audio_lead)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        if not (math.isfinite(video_fps) and 0 < video_fps <= 240):
            raise ValueError(f"video_fps must be above 0 and at most 240, got {video_fps!r}")
        if not (math.isfinite(audio_lead) and 0 <= audio_lead <= 10):
            raise ValueError(f"audio_lead must be from 0 to 10 seconds, got {audio_lead!r}")
        self._audio_source = audio_source
        self._video_source = video_source
        self._fps = float(video_fps)
        self._lead = float(audio_lead)
        self._start: float | None = None
        # Totals, and the positions on the current clock (restarted by reset/clear_queue).
        self._video_frames = 0
        self._audio_frames = 0
        self._audio_time = 0.0
        self._video_slots = 0
        self._audio_offset = 0.0
        self._late = 0
        self._last_video: float | None = None
        self._last_audio: float | None = None
        self._dropped_video = 0
        self._dropped_audio = 0
        self._resets = 0
        self._clears = 0  # pushes begun before a clear_queue (another count) are dropped
        self._changed = anyio.Event()  # set and replaced by reset, clear_queue and close
        self._video_turn = anyio.Lock()
        self._audio_turn = anyio.Lock()
        self._closed = False

    @property
    def video_fps(self) -> float:
        """The video frame rate the clock paces to."""
        return self._fps

    def _clock(self) -> float:
        if self._closed:
            raise ResourceClosedError("the AVSynchronizer has been closed")
        now = anyio.current_time()
        if self._start is None:
            self._start = now
        return self._start

    async def _wait_until(self, due: float, clears: int) -> bool:
        """Sleep until ``due`` or a change; ``False`` once a ``clear_queue`` came after ``clears``.

        ``True`` means: look again (the slot came, or the clock restarted and the slot moved).
        """
        changed = self._changed
        with anyio.move_on_at(due):
            await changed.wait()
        return self._clears == clears

    async def push_video(
        self, frame: VideoFrame, *, metadata: FrameMetadata | None = None
    ) -> bool:
        """Wait for the next video slot on the clock, then capture ``frame``.

        Cancellation-safe: cancelled while waiting, nothing is captured and the slot stays
        free for the next push.

        Returns:
            ``True`` once captured; ``False`` if :meth:`clear_queue` released the push while it
            waited (nothing captured).

        Raises:
            TypeError: ``frame`` is not a :class:`~lkanyio.VideoFrame`.
            ResourceClosedError: the synchronizer or the source was closed.
        """
        if not isinstance(frame, VideoFrame):
            raise TypeError("push_video takes a lkanyio.VideoFrame")
        clears = self._clears  # a push waiting for its turn is queued too
        async with self._video_turn:
            while True:
                if self._clears != clears:
                    self._dropped_video += 1
                    return False
                start = self._clock()
                slot = self._video_slots / self._fps
                due = start + slot
                now = anyio.current_time()
                if now >= due:
                    break
                if not await self._wait_until(due, clears):
                    continue  # counted as dropped at the top
                if anyio.current_time() >= due and self._start == start:
                    break  # the slot came, on the same clock
            if now - due > 1 / self._fps:
                self._late += 1
            await anyio.lowlevel.checkpoint()
            if self._clock() != start:  # closed (raises) or restarted meanwhile: slot 0 now
                slot = self._video_slots / self._fps
            if self._clears != clears:
                self._dropped_video += 1
                return False
            self._video_source.capture_frame(frame, metadata=metadata)
            self._video_frames += 1
            self._video_slots += 1
            self._last_video = slot
            return True

    async def push_audio(self, frame: AudioFrame) -> bool:
        """Wait until ``frame`` is at most ``audio_lead`` ahead of the clock, then capture it.

        Cancellation-safe before the capture starts (nothing captured, the clock unchanged);
        a cancelled capture is :meth:`AudioSource.capture_frame`'s (the frame may still play).

        Returns:
            ``True`` once captured; ``False`` if :meth:`clear_queue` released the push before
            its capture began (nothing captured).

        Raises:
            TypeError: ``frame`` is not a :class:`~lkanyio.AudioFrame`.
            ResourceClosedError: the synchronizer or the source was closed.
        """
        if not isinstance(frame, AudioFrame):
            raise TypeError("push_audio takes a lkanyio.AudioFrame")
        clears = self._clears
        async with self._audio_turn:
            while True:
                if self._clears != clears:
                    self._dropped_audio += 1
                    return False
                start = self._clock()
                slot = self._audio_offset
                due = start + slot - self._lead
                if anyio.current_time() >= due:
                    break
                if not await self._wait_until(due, clears):
                    continue
                if anyio.current_time() >= due and self._start == start:
                    break
            await anyio.lowlevel.checkpoint()
            if self._clock() != start:  # closed (raises) or restarted meanwhile
                start, slot = self._clock(), self._audio_offset
            if self._clears != clears:
                self._dropped_audio += 1
                return False
            # A clear_queue during this capture is the source's: the frame may be queued
            # after the clear (as with livekit.rtc, whose push awaits the same capture).
            await self._audio_source.capture_frame(frame)
            self._audio_frames += 1
            self._audio_time += frame.duration
            if self._start == start:
                self._audio_offset += frame.duration
                self._last_audio = slot
            return True

    def _changed_now(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def reset(self) -> None:
        """Restart the clock: the next push of either stream starts it again at slot 0.

        Both streams restart at the new clock's start; pushes waiting for a slot take their
        slots on it (the first at once).  Frames already captured stay captured; the totals in
        :meth:`statistics` keep counting.  Use it after a pause in the media, so the frames
        after it are paced from their arrival rather than captured in a burst to catch up.

        Raises:
            ResourceClosedError: the synchronizer has been closed.
        """
        if self._closed:
            raise ResourceClosedError("the AVSynchronizer has been closed")
        self._start = None
        self._video_slots = 0
        self._audio_offset = 0.0
        self._last_video = self._last_audio = None
        self._resets += 1
        self._changed_now()

    def clear_queue(self) -> None:
        """Drop what waits to be played: the audio source's queue and the pushes still waiting.

        Discards the audio captured but not yet played out (:meth:`AudioSource.clear_queue`);
        every push begun before this call that has not captured its frame returns ``False``
        without capturing it; then the clock restarts as with :meth:`reset`, so the frames
        pushed next start at once and in step.  Use it on an interruption (e.g. an avatar that
        stops speaking mid-sentence).

        Raises:
            ResourceClosedError: the synchronizer or the audio source has been closed.
        """
        if self._closed:
            raise ResourceClosedError("the AVSynchronizer has been closed")
        self._audio_source.clear_queue()
        self._clears += 1
        self.reset()

    def statistics(self) -> AVSynchronizerStatistics:
        """Return the counters and clock positions of both streams."""
        return AVSynchronizerStatistics(
            video_frames=self._video_frames,
            audio_frames=self._audio_frames,
            video_time=self._video_frames / self._fps,
            audio_time=self._audio_time,
            late_video_frames=self._late,
            last_video_slot=self._last_video,
            last_audio_slot=self._last_audio,
            clock=None if self._start is None else anyio.current_time() - self._start,
            dropped_video_frames=self._dropped_video,
            dropped_audio_frames=self._dropped_audio,
            resets=self._resets,
        )

    def close(self) -> None:
        """Stop: pushes (also those waiting for a slot) raise ``ResourceClosedError``.

        The sources stay yours.
        """
        self._closed = True
        self._changed_now()

    def __repr__(self) -> str:
        return (
            f"<AVSynchronizer {self._fps:g} fps video={self._video_frames} "
            f"audio={self._audio_frames}>"
        )
