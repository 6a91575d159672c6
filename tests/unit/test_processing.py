"""AudioStream processing without a server: a Python frame processor and native audio filters.

Source -> local track -> stream gives the captured samples back identically (the native core's
offline path), so what a processor does is visible sample for sample.  Time limits are hang
guards only.
"""

from __future__ import annotations

from array import array

import anyio
import pytest

import lkanyio
from _media import RATE
from _util import audio_until
from lkanyio import AudioFrame, AudioSource, AudioStream, LocalAudioTrack

# A local track plays at real time: at SCHED_IDLE beside the parallel phase a stream lost or
# reordered samples of the ramp (measured: Python 3.10 and 3.13 both, in one full run; the
# default Python too with other work on the machine), so these run in scripts/test's real-time
# phase, at normal priority.  Silence the source played between two late 10 ms captures is no
# loss: what the streams yield is read without it (``without_silence``).
pytestmark = [pytest.mark.anyio, pytest.mark.realtime]

GUARD = 20.0


def ramp(samples: int) -> array[int]:
    return array("h", (-20_000 + 7 * i for i in range(samples)))


def invert(frame: AudioFrame) -> AudioFrame:
    data = frame.data
    for i in range(len(data)):
        data[i] = -data[i] if data[i] != -32768 else 32767
    return frame


async def _capture(source: AudioSource, samples: array[int]) -> None:
    for start in range(0, len(samples), 480):
        chunk = samples[start : start + 480]
        await source.capture_frame(
            AudioFrame(chunk, sample_rate=RATE, num_channels=1, samples_per_channel=len(chunk))
        )


async def _collect(stream: AudioStream, wanted: bytes) -> bytes:
    """What ``stream`` yields, without silent blocks, until ``wanted`` is in it."""
    return await audio_until(stream, wanted, limit=10 * len(wanted), block_samples=480)


async def test_inverting_processor_changes_what_the_stream_yields() -> None:
    pattern = ramp(4800)
    inverted = array("h", (-s for s in pattern))
    seen: list[int] = []

    def processor(frame: AudioFrame) -> AudioFrame:
        seen.append(frame.samples_per_channel)
        return invert(frame)

    async with AudioSource(RATE, 1) as source, LocalAudioTrack.create_audio_track(
        "p", source
    ) as track:
        async with AudioStream(track, processor=processor) as stream, AudioStream(track) as plain:
            await _capture(source, pattern)
            got = await _collect(stream, inverted.tobytes())
            raw = await _collect(plain, pattern.tobytes())
    assert inverted.tobytes() in got
    assert pattern.tobytes() not in got
    assert pattern.tobytes() in raw  # the other stream of the same track is untouched
    assert seen
    assert set(seen) == {480}


async def test_a_raising_processor_ends_its_stream_not_the_track() -> None:
    calls = 0

    def broken(frame: AudioFrame) -> AudioFrame:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("processor broke")
        return frame

    pattern = ramp(4800)
    async with AudioSource(RATE, 1) as source, LocalAudioTrack.create_audio_track(
        "p", source
    ) as track:
        async with AudioStream(track, processor=broken) as stream, AudioStream(track) as plain:
            await _capture(source, pattern)
            with anyio.fail_after(GUARD):
                with pytest.raises(RuntimeError, match="processor broke"):
                    async for _ in stream:
                        pass
                # The stream stays ended with that error; the processor is not called again.
                with pytest.raises(RuntimeError, match="processor broke"):
                    await stream.receive()
            assert calls == 3
            # The same track and source go on: another stream still receives the samples.
            await _capture(source, pattern)
            assert pattern.tobytes() in await _collect(plain, pattern.tobytes())


async def test_a_processor_must_return_a_frame() -> None:
    async with AudioSource(RATE, 1) as source, LocalAudioTrack.create_audio_track(
        "p", source
    ) as track:
        async with AudioStream(track, processor=lambda frame: None) as stream:  # type: ignore[arg-type, return-value]
            await _capture(source, ramp(480))
            with anyio.fail_after(GUARD), pytest.raises(TypeError, match="not an AudioFrame"):
                await stream.receive()
        with pytest.raises(TypeError, match="callable"):
            AudioStream(track, processor=42)  # type: ignore[arg-type]


async def test_noise_cancellation_without_a_plugin_is_a_clear_error() -> None:
    async with AudioSource(RATE, 1) as source, LocalAudioTrack.create_audio_track(
        "p", source
    ) as track:
        options = lkanyio.NoiseCancellationOptions("lk.noise_cancellation", {"model": "bvc"})
        with pytest.raises(lkanyio.AudioFilterError, match="not loaded") as caught:
            AudioStream(track, noise_cancellation=options)
        assert isinstance(caught.value, lkanyio.NativeError)
        with pytest.raises(TypeError, match="NoiseCancellationOptions"):
            AudioStream(track, noise_cancellation={"module_id": "x"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="JSON"):
            AudioStream(track, noise_cancellation=lkanyio.NoiseCancellationOptions(
                "x", {"bad": object()}
            ))


async def test_loading_a_missing_plugin_carries_the_native_message(tmp_path: object) -> None:
    with pytest.raises(lkanyio.AudioFilterError, match="cannot open shared object file"):
        lkanyio.load_audio_filter("lk.noise_cancellation", "/nonexistent/libfilter.so")
    # A file that is not a shared library: refused by the loader, the process lives on.
    with pytest.raises(lkanyio.AudioFilterError, match="dylib error"):
        lkanyio.load_audio_filter("lk.nc", __file__)
    with pytest.raises(ValueError, match="empty"):
        lkanyio.load_audio_filter("", "/x.so")
    with pytest.raises(TypeError, match="sequence"):
        lkanyio.load_audio_filter("m", "/x.so", dependencies="/y.so")
    # Still not loaded: a stream naming it is refused before the native core sees it.
    async with AudioSource(RATE, 1) as source, LocalAudioTrack.create_audio_track(
        "p", source
    ) as track:
        with pytest.raises(lkanyio.AudioFilterError, match="not loaded"):
            AudioStream(track, noise_cancellation=lkanyio.NoiseCancellationOptions("lk.nc"))


async def test_platform_audio_without_devices_is_a_clear_error() -> None:
    # This machine has no sound devices: the native core refuses to start its device module,
    # and listing needs that module (there is no request that lists without it).
    with pytest.raises(lkanyio.AudioDeviceError, match="Failed to initialize platform audio"):
        async with lkanyio.PlatformAudio() as audio:
            audio.recording_devices()
    audio = lkanyio.PlatformAudio()
    with pytest.raises(lkanyio.AudioDeviceError, match="not open"):
        audio.playout_devices()
    assert "closed" in repr(audio)
