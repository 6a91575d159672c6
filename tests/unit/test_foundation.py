"""The bridge's own promises, each in a fresh process where the process is what is tested."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from typing import Any

import anyio
import pytest

import lkanyio
from _util import assert_no_leaks

pytestmark = pytest.mark.anyio


def _child(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_the_asyncio_sdk_and_numpy_are_never_imported() -> None:
    done = _child(
        """
        import sys, anyio, lkanyio

        async def main():
            async with lkanyio.AudioSource(48_000, 1) as source:
                async with lkanyio.LocalAudioTrack.create_audio_track("t", source) as track:
                    async with lkanyio.AudioStream(track) as stream:
                        await source.capture_frame(lkanyio.AudioFrame.create(
                            sample_rate=48_000, num_channels=1, samples_per_channel=480))
                        await stream.receive()

        anyio.run(main)
        print(sorted(m for m in sys.modules if m.startswith(("livekit.rtc", "numpy"))))
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_livekit_lib_path_is_honoured_and_a_bad_one_is_a_clear_error() -> None:
    from lkanyio._native._bridge import _library_path

    code = """
        import lkanyio
        try:
            lkanyio.AudioSource(48_000, 1).close()
            print("loaded", lkanyio.statistics().live_handles)
        except lkanyio.LiveKitError as exc:
            print("refused:", exc)
        """
    bad = _child(code, LIVEKIT_LIB_PATH="/nonexistent/liblivekit_ffi.so")
    assert bad.returncode == 0, bad.stderr[-2000:]
    assert bad.stdout.startswith("refused: cannot load the LiveKit native library")
    assert "/nonexistent/liblivekit_ffi.so" in bad.stdout
    good = _child(code, LIVEKIT_LIB_PATH=str(_library_path()))
    assert good.returncode == 0, good.stderr[-2000:]
    assert good.stdout.strip() == "loaded 0"


def test_exiting_with_live_streams_is_clean() -> None:
    # Without livekit_ffi_dispose() at exit a tokio worker panics while the process shuts down
    # (FFI-NOTES 3d); lkanyio disposes from an atexit handler.
    done = _child(
        """
        import anyio, lkanyio

        async def main():
            source = lkanyio.AudioSource(48_000, 1)
            track = lkanyio.LocalAudioTrack.create_audio_track("t", source)
            stream = lkanyio.AudioStream(track)
            await source.capture_frame(lkanyio.AudioFrame.create(
                sample_rate=48_000, num_channels=1, samples_per_channel=480))
            await stream.receive()
            globals()["kept"] = (source, track, stream)  # still live at exit

        anyio.run(main)
        print("leaving")
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "leaving"
    assert "panic" not in done.stderr


async def test_an_owned_handle_is_dropped_exactly_once() -> None:
    from lkanyio._native._bridge import get_bridge

    before = lkanyio.statistics().live_handles
    source = lkanyio.AudioSource(48_000, 1)
    handle_id = source._handle.id
    assert lkanyio.statistics().live_handles == before + 1
    source.close()
    source.close()  # idempotent
    assert lkanyio.statistics().live_handles == before
    # The native core agrees: the id is gone (a second drop of it would return false).
    assert not get_bridge()._lib.lk_shim_drop_handle(handle_id)
    # The finalizer drops what nobody closed, once.
    orphan = lkanyio.AudioSource(48_000, 1)
    assert lkanyio.statistics().live_handles == before + 1
    del orphan
    gc.collect()
    assert lkanyio.statistics().live_handles == before
    assert_no_leaks()


# The queue fills only while capturing outpaces the native core's real-time playout: a
# starved process (SCHED_IDLE beside the parallel phase, other work on the machine) saw
# at most 60 ms queued, so this runs in scripts/test's real-time phase.
@pytest.mark.realtime
async def test_capture_waits_for_room_in_the_native_queue() -> None:
    # Backpressure: capture_frame returns only once the native core accepts the frame into its
    # 100 ms queue, so what is queued stays near 100 ms (without it: 400 ms at once).
    frame = lkanyio.AudioFrame.create(sample_rate=48_000, num_channels=1, samples_per_channel=480)
    async with lkanyio.AudioSource(48_000, 1, queue_size_ms=100) as source:
        most = 0.0
        for _ in range(40):  # 400 ms of audio through a 100 ms queue
            await source.capture_frame(frame)
            most = max(most, source.queued_duration)
        assert 0.09 <= most <= 0.2, most
        with anyio.fail_after(5):
            await source.wait_for_playout()
        assert source.queued_duration == 0


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Any:
    yield
    gc.collect()
    assert_no_leaks()
