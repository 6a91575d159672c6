"""AVSynchronizer without a server: it paces a real VideoSource and AudioSource to one clock.

Assertions are on the order and counts of captured frames and on the synchronizer's own clock
positions, never on wall-clock durations (time limits are hang guards only).
"""

from __future__ import annotations

import anyio
import pytest

import lkanyio
from lkanyio import AudioFrame, AudioSource, AVSynchronizer, VideoFrame, VideoSource

pytestmark = pytest.mark.anyio

GUARD = 20.0
FPS = 50  # a 20 ms video slot
AUDIO_MS = 10
LEAD = 0.01  # audio may run one 10 ms frame ahead


def _video() -> VideoFrame:
    return VideoFrame(64, 64, lkanyio.VideoBufferType.RGBA, bytes(64 * 64 * 4))


def _audio() -> AudioFrame:
    return AudioFrame.create(sample_rate=48_000, num_channels=1, samples_per_channel=480)


async def test_it_paces_video_and_audio_to_one_clock() -> None:
    log: list[tuple[str, float, float]] = []  # (stream, slot, clock) in capture order
    async with (
        AudioSource(48_000, 1, queue_size_ms=200) as audio,
        VideoSource(64, 64) as video,
        AVSynchronizer(audio, video, video_fps=FPS, audio_lead=LEAD) as sync,
    ):

        async def push_video() -> None:
            for _ in range(10):
                await sync.push_video(_video())
                stats = sync.statistics()
                assert stats.last_video_slot is not None
                assert stats.clock is not None
                log.append(("video", stats.last_video_slot, stats.clock))

        async def push_audio() -> None:
            for _ in range(20):
                await sync.push_audio(_audio())
                stats = sync.statistics()
                assert stats.last_audio_slot is not None
                assert stats.clock is not None
                log.append(("audio", stats.last_audio_slot, stats.clock))

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(push_video)
                tg.start_soon(push_audio)
        stats = sync.statistics()

    assert stats.video_frames == 10
    assert stats.audio_frames == 20
    assert stats.video_time == pytest.approx(10 / FPS)
    assert stats.audio_time == pytest.approx(20 * AUDIO_MS / 1000)
    video_slots = [slot for kind, slot, _ in log if kind == "video"]
    audio_slots = [slot for kind, slot, _ in log if kind == "audio"]
    assert video_slots == pytest.approx([n / FPS for n in range(10)])
    assert audio_slots == pytest.approx([k * AUDIO_MS / 1000 for k in range(20)])
    # Never early: each frame was captured once the clock reached its slot (audio: minus the
    # lead), by the synchronizer's own clock.
    for kind, slot, clock in log:
        allowance = LEAD if kind == "audio" else 0.0
        assert clock >= slot - allowance - 1e-9, (kind, slot, clock)
    # One clock for both: they interleave.  The audio from 100 ms on cannot be captured before
    # the clock reaches 90 ms, long after the first video frame (slot 0), and vice versa.
    order = [(kind, slot) for kind, slot, _ in log]
    assert order.index(("video", 0.0)) < next(
        i for i, (kind, slot) in enumerate(order) if kind == "audio" and slot >= 0.1
    )
    assert order.index(("audio", 0.0)) < next(
        i for i, (kind, slot) in enumerate(order) if kind == "video" and slot >= 0.1
    )


async def test_a_cancelled_push_captures_nothing_and_keeps_its_slot() -> None:
    async with (
        AudioSource(48_000, 1) as audio,
        VideoSource(64, 64) as video,
        AVSynchronizer(audio, video, video_fps=1) as sync,  # a 1 s slot: the 2nd push waits
    ):
        await sync.push_video(_video())  # slot 0: at once
        with anyio.move_on_after(0.05) as scope:
            await sync.push_video(_video())  # waits for slot 1 s, cancelled before
        assert scope.cancelled_caught
        stats = sync.statistics()
        assert stats.video_frames == 1
        assert stats.last_video_slot == 0.0
        # The next push takes the slot the cancelled one left (1 s after the start).
        with anyio.fail_after(GUARD):
            await sync.push_video(_video())
        assert sync.statistics().video_frames == 2
        assert sync.statistics().last_video_slot == pytest.approx(1.0)
    with pytest.raises(lkanyio.ResourceClosedError):
        await sync.push_video(_video())


async def test_it_checks_its_input() -> None:
    async with AudioSource(48_000, 1) as audio, VideoSource(64, 64) as video:
        for fps in (0, -1, float("nan"), 1000):
            with pytest.raises(ValueError, match="video_fps"):
                AVSynchronizer(audio, video, video_fps=fps)
        with pytest.raises(TypeError, match="video_fps"):
            AVSynchronizer(audio, video, video_fps="30")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="audio_source"):
            AVSynchronizer(video, video, video_fps=30)  # type: ignore[arg-type]
        async with AVSynchronizer(audio, video, video_fps=30) as sync:
            with pytest.raises(TypeError, match="VideoFrame"):
                await sync.push_video(_audio())  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="AudioFrame"):
                await sync.push_audio(_video())  # type: ignore[arg-type]
            assert "30 fps" in repr(sync)
