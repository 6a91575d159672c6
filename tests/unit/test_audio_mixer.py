"""AudioMixer: inputs mixed at a fixed frame size in the mixer's own task group (no server)."""

from __future__ import annotations

import gc
import itertools
import math
import statistics
from array import array
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import lkanyio
from _media import RATE
from _util import EVENT_WAIT, assert_no_leaks

pytestmark = pytest.mark.anyio

BLOCK = RATE // 100  # the mixer's default: 10 ms


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Any:
    yield
    gc.collect()
    assert_no_leaks()


async def tone(
    freq: float, *, frames: int | None = None, rate: int = RATE, amplitude: int = 8000
) -> AsyncGenerator[lkanyio.AudioFrame]:
    """10 ms frames of a sine (phase-continuous), ``frames`` of them or forever."""
    n = rate // 100
    for index in itertools.count() if frames is None else range(frames):
        start = index * n
        samples = array(
            "h",
            (int(amplitude * math.sin(2 * math.pi * freq * (start + i) / rate)) for i in range(n)),
        )
        yield lkanyio.AudioFrame(samples, sample_rate=rate, num_channels=1, samples_per_channel=n)
        await anyio.lowlevel.checkpoint()


def level(frames: list[list[int]], freq: float) -> float:
    """Median over the frames of each one's amplitude at ``freq`` (Hann-windowed Goertzel).

    Per frame, not over the whole run: an input that ran dry for a tick shifts its phase, and
    one long transform would add the shifted pieces out of phase.
    """
    amplitudes = []
    for samples in frames:
        n = len(samples)
        window = [0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1)) for i in range(n)]
        coeff = 2 * math.cos(2 * math.pi * freq / RATE)
        s1 = s2 = 0.0
        for x, w in zip(samples, window, strict=True):
            s1, s2 = x * w + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        amplitudes.append(2 * math.sqrt(max(power, 0.0)) / sum(window))
    return statistics.median(amplitudes)


async def collect(
    mixer: lkanyio.AudioMixer, frames: int, *, skip_silence: bool = True
) -> list[list[int]]:
    """The samples of the next ``frames`` mixed frames (after the silent ones, if asked)."""
    got: list[list[int]] = []
    with anyio.fail_after(EVENT_WAIT):
        async for frame in mixer:
            assert (frame.sample_rate, frame.num_channels) == (RATE, 1)
            assert frame.samples_per_channel == BLOCK
            data = frame.data
            if skip_silence and not got and not any(data):
                continue
            got.append(list(data))
            if len(got) == frames:
                break
    return got


async def test_a_440_and_a_660_hz_input_both_are_in_the_mix() -> None:
    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        a = mixer.add_input(tone(440))
        b = mixer.add_input(tone(660))
        await collect(mixer, 5)  # both inputs are running by now
        samples = await collect(mixer, 30)
        assert not a.ended
        assert not b.ended
    assert level(samples, 440) > 6000
    assert level(samples, 660) > 6000
    assert level(samples, 1500) < 500  # not just noise everywhere
    assert level(samples, 250) < 500
    assert (a.ended, b.ended) == (True, True)  # leaving the block stopped the inputs


async def test_an_input_that_ends_leaves_the_other_playing() -> None:
    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        short = mixer.add_input(tone(440, frames=3))
        mixer.add_input(tone(660))
        with anyio.fail_after(EVENT_WAIT):
            while short in mixer.inputs:  # ended and played out
                await mixer.receive()
        assert short.ended
        assert short.error is None
        samples = await collect(mixer, 30)
    assert level(samples, 660) > 6000
    assert level(samples, 440) < 1000


async def test_an_input_that_fails_leaves_the_others_playing() -> None:
    async def failing() -> AsyncIterator[lkanyio.AudioFrame]:
        async with aclosing(tone(440, frames=2)) as frames:
            async for frame in frames:
                yield frame
        raise OSError("microphone unplugged")

    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        broken = mixer.add_input(failing())
        wrong_rate = mixer.add_input(tone(440, rate=16000))
        not_frames = mixer.add_input(_yield_bytes())
        mixer.add_input(tone(660))
        with anyio.fail_after(EVENT_WAIT):
            while {broken, wrong_rate, not_frames} & set(mixer.inputs):
                await mixer.receive()
        samples = await collect(mixer, 30)
    assert isinstance(broken.error, OSError)
    assert isinstance(wrong_rate.error, ValueError)
    assert "16000 Hz x 1 channels into a 48000 Hz x 1 channels mixer" in str(wrong_rate.error)
    assert isinstance(not_frames.error, TypeError)
    assert level(samples, 660) > 6000


async def _yield_bytes() -> AsyncIterator[Any]:
    yield b"\0\0"


async def test_a_removed_input_stops_at_once() -> None:
    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        a = mixer.add_input(tone(440))
        mixer.add_input(tone(660))
        await collect(mixer, 5)
        a.remove()
        a.remove()  # idempotent
        await mixer.receive()  # the tick that drops it
        samples = await collect(mixer, 30)
    assert a.ended
    assert a.error is None
    assert level(samples, 440) < 1000
    assert level(samples, 660) > 6000


async def test_end_input_ends_the_mix_once_every_input_played_out() -> None:
    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        mixer.add_input(tone(440, frames=4))
        mixer.add_input(tone(660, frames=6))
        mixer.end_input()
        with pytest.raises(lkanyio.ResourceClosedError, match="end_input"):
            mixer.add_input(tone(440))
        frames = []
        with anyio.fail_after(EVENT_WAIT):
            async for frame in mixer:
                frames.append(frame)
        assert mixer.inputs == ()
    audible = [f for f in frames if any(f.data)]
    assert len(audible) >= 6  # all of the longer input was played, nothing was lost
    samples = [s for f in frames for s in f.data]
    assert sum(1 for s in samples if s) >= 6 * BLOCK - 20  # (the sine's zero crossings)


async def test_leaving_the_block_leaves_nothing_behind() -> None:
    finalized = anyio.Event()

    async def generator() -> AsyncIterator[lkanyio.AudioFrame]:
        try:
            async with aclosing(tone(440)) as frames:
                async for frame in frames:
                    yield frame
        finally:
            finalized.set()

    mixer = lkanyio.AudioMixer(RATE, 1)
    with pytest.raises(RuntimeError, match="inside its block"):
        mixer.add_input(tone(440))
    async with mixer:
        mixer.add_input(generator())
        await collect(mixer, 2)
    assert finalized.is_set()  # the async generator's finally ran
    with pytest.raises(lkanyio.ResourceClosedError):
        await mixer.receive()
    with pytest.raises(lkanyio.ResourceClosedError):
        mixer.add_input(tone(440))
    with pytest.raises(RuntimeError, match="only once"):
        async with mixer:
            pass


async def test_an_error_in_the_block_comes_out_as_itself_and_cancellation_stops_it() -> None:
    with pytest.raises(KeyError):
        async with lkanyio.AudioMixer(RATE, 1) as mixer:
            mixer.add_input(tone(440))
            await mixer.receive()
            raise KeyError("boom")
    with anyio.move_on_after(0.05) as scope:
        async with lkanyio.AudioMixer(RATE, 1) as mixer:
            mixer.add_input(tone(440))
            async for _frame in mixer:
                pass
    assert scope.cancelled_caught


async def test_mixing_clips_instead_of_wrapping() -> None:
    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        for _ in range(3):
            mixer.add_input(tone(440, amplitude=20000))
        await collect(mixer, 5)
        samples = await collect(mixer, 10)
    assert max(max(f) for f in samples) == 32767
    assert min(min(f) for f in samples) == -32768


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        lkanyio.AudioMixer(0, 1)
    with pytest.raises(TypeError, match="num_channels"):
        lkanyio.AudioMixer(48000, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="samples_per_channel"):
        lkanyio.AudioMixer(48000, 1, samples_per_channel=0)
    mixer = lkanyio.AudioMixer(16000, 2, samples_per_channel=320)
    assert (mixer.sample_rate, mixer.num_channels, mixer.samples_per_channel) == (16000, 2, 320)


async def test_add_input_refuses_what_is_not_async_iterable() -> None:
    async with lkanyio.AudioMixer(RATE, 1) as mixer:
        with pytest.raises(TypeError, match="async iterable"):
            frame = lkanyio.AudioFrame.create(
                sample_rate=RATE, num_channels=1, samples_per_channel=BLOCK
            )
            mixer.add_input([frame])  # type: ignore[arg-type]


# The stream's frames come at the native core's real-time pace: a starved process (SCHED_IDLE
# beside the parallel phase) got 660 Hz in fewer than 10 of 30 ticks (measured: both backends
# on Python 3.10, in one full run), so this runs in scripts/test's real-time phase.
@pytest.mark.realtime
async def test_an_audio_stream_is_an_input_as_it_is() -> None:
    """An AudioStream yields AudioFrameEvents: the mixer takes them (a local track, offline)."""
    async with (
        lkanyio.AudioSource(RATE, 1) as source,  # its queue paces capture in real time
        lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track,
        lkanyio.AudioStream(track) as stream,
        lkanyio.AudioMixer(RATE, 1) as mixer,
        anyio.create_task_group() as tg,
    ):

        async def play() -> None:
            async with aclosing(tone(660)) as frames:
                async for frame in frames:
                    await source.capture_frame(frame)

        tg.start_soon(play)
        from_stream = mixer.add_input(stream)
        mixer.add_input(tone(440))
        await collect(mixer, 10)
        samples = await collect(mixer, 30)
        assert from_stream.error is None
        tg.cancel_scope.cancel()
    assert level(samples, 440) > 6000
    # The stream's frames come at the native core's pace, not the mixer's clock: some ticks
    # may find none (silence for that input), so count the frames that carry it.
    assert sum(level([f], 660) > 6000 for f in samples) >= 10, [level([f], 660) for f in samples]
