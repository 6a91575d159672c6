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


def _long_audio(seconds: float) -> AudioFrame:
    samples = int(48_000 * seconds)
    return AudioFrame.create(sample_rate=48_000, num_channels=1, samples_per_channel=samples)


async def test_clear_queue_releases_waiting_pushes_and_restarts_the_clock() -> None:
    results: dict[str, bool] = {}
    async with (
        AudioSource(48_000, 1) as audio,
        VideoSource(64, 64) as video,
        # A 1 s video slot, and no audio lead: after a 0.5 s audio frame the next waits.
        AVSynchronizer(audio, video, video_fps=1, audio_lead=0) as sync,
    ):
        with anyio.fail_after(GUARD):
            assert await sync.push_video(_video())  # slot 0: at once
            assert await sync.push_audio(_long_audio(0.5))  # slot 0: at once, now queued
            assert audio.queued_duration > 0

            async def push(kind: str) -> None:
                if kind == "video":
                    results[kind] = await sync.push_video(_video())  # waits for slot 1 s
                else:
                    results[kind] = await sync.push_audio(_audio())  # waits for slot 0.5 s

            async with anyio.create_task_group() as tg:
                tg.start_soon(push, "video")
                tg.start_soon(push, "audio")
                await anyio.wait_all_tasks_blocked()
                assert results == {}  # both are waiting for their slots
                sync.clear_queue()
        # Both were released uncaptured; the source's queue was discarded.
        assert results == {"video": False, "audio": False}
        assert audio.queued_duration == 0.0
        stats = sync.statistics()
        assert (stats.video_frames, stats.audio_frames) == (1, 1)
        assert (stats.dropped_video_frames, stats.dropped_audio_frames) == (1, 1)
        assert stats.resets == 1
        assert stats.clock is None  # restarted: it starts again at the next push
        assert stats.last_video_slot is None
        assert stats.last_audio_slot is None
        # The next frames take slot 0 of the new clock (not slots 1 s and 0.5 s of the old).
        with anyio.fail_after(GUARD):
            assert await sync.push_video(_video())
            assert await sync.push_audio(_audio())
        stats = sync.statistics()
        assert (stats.last_video_slot, stats.last_audio_slot) == (0.0, 0.0)
        assert (stats.video_frames, stats.audio_frames) == (2, 2)
        assert stats.video_time == pytest.approx(2.0)  # totals keep counting across the restart
        assert stats.audio_time == pytest.approx(0.51)
        # Pushes begun after the clear are not dropped by it.
        assert (stats.dropped_video_frames, stats.dropped_audio_frames) == (1, 1)


async def test_reset_restarts_the_clock_for_a_waiting_push() -> None:
    async with (
        AudioSource(48_000, 1) as audio,
        VideoSource(64, 64) as video,
        AVSynchronizer(audio, video, video_fps=1) as sync,
    ):
        with anyio.fail_after(GUARD):
            assert await sync.push_video(_video())  # slot 0
            async with anyio.create_task_group() as tg:
                tg.start_soon(sync.push_video, _video())  # waits for slot 1 s
                await anyio.wait_all_tasks_blocked()
                assert sync.statistics().video_frames == 1
                sync.reset()
        # The waiting push took slot 0 of the restarted clock, at once and not late.
        stats = sync.statistics()
        assert stats.video_frames == 2
        assert stats.last_video_slot == 0.0
        assert stats.late_video_frames == 0
        assert stats.resets == 1
        assert stats.dropped_video_frames == 0


@pytest.mark.parametrize("reset", [False, True], ids=["no_reset", "reset"])
async def test_after_a_pause_reset_paces_from_the_next_frame(reset: bool) -> None:
    async with (
        AudioSource(48_000, 1) as audio,
        VideoSource(64, 64) as video,
        AVSynchronizer(audio, video, video_fps=FPS) as sync,  # a 20 ms slot
    ):
        with anyio.fail_after(GUARD):
            for _ in range(3):
                await sync.push_video(_video())
            # Counted from here: a starved process (other work on the machine) pushes even
            # these late (it failed so, counting from zero, and ran in the real-time phase).
            late_before = sync.statistics().late_video_frames
            await anyio.sleep(0.2)  # the producer pauses for ten slots or more
            if reset:
                sync.reset()
            await sync.push_video(_video())
        stats = sync.statistics()
    late = stats.late_video_frames - late_before
    if reset:
        # Paced from its arrival: slot 0 of a new clock, on time (no await between the
        # clock's start and the capture decision, so no starvation makes it late).
        assert (stats.last_video_slot, late) == (0.0, 0)
    else:
        # Its slot (60 ms) was long past: captured at once to catch up, counted late.
        assert stats.last_video_slot == pytest.approx(3 / FPS)
        assert late == 1


async def test_close_releases_a_waiting_push_with_the_closed_error() -> None:
    async with (
        AudioSource(48_000, 1) as audio,
        VideoSource(64, 64) as video,
    ):
        sync = AVSynchronizer(audio, video, video_fps=1)
        failures: list[BaseException] = []

        async def push() -> None:
            try:
                await sync.push_video(_video())  # waits for slot 1 s
            except lkanyio.ResourceClosedError as exc:
                failures.append(exc)

        with anyio.fail_after(GUARD):
            await sync.push_video(_video())
            async with anyio.create_task_group() as tg:
                tg.start_soon(push)
                await anyio.wait_all_tasks_blocked()
                sync.close()
        assert len(failures) == 1
        assert sync.statistics().video_frames == 1
        with pytest.raises(lkanyio.ResourceClosedError):
            sync.reset()
        with pytest.raises(lkanyio.ResourceClosedError):
            sync.clear_queue()
