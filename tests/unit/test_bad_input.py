"""Inputs the native core can't take are rejected in Python, and the process survives them.

The native core (livekit 1.2.0) aborts the whole process on some inputs (a Rust panic with
``panic = "abort"``, a WebRTC check, a libc++ assertion) and hangs on others.  Each such input
must raise ``ValueError``/``TypeError`` before it reaches the library.  The attempts run in a
subprocess, so a missing check shows up as a dead child, not as a dead test run; for a few cases
the raw request (bypassing lkanyio's checks) is sent too, to show that the check matters.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
from array import array
from typing import Any

import pytest

from _media import RATE
from lkanyio import (
    AudioFrame,
    AudioResampler,
    AudioSource,
    AudioStream,
    LocalAudioTrack,
    statistics,
)

# -- in process: every check raises the right error ---------------------------------------------

_GOOD: dict[str, Any] = {"sample_rate": RATE, "num_channels": 1, "samples_per_channel": 480}


@pytest.mark.parametrize(
    ("data", "overrides", "error", "match"),
    [
        pytest.param(bytes(960), {"num_channels": 0}, ValueError, "num_channels", id="0-channels"),
        pytest.param(bytes(960), {"sample_rate": 0}, ValueError, "sample_rate", id="0-rate"),
        pytest.param(bytes(960), {"sample_rate": -48000}, ValueError, "positive", id="neg-rate"),
        pytest.param(bytes(0), {"samples_per_channel": 0}, ValueError, "samples_per", id="0-len"),
        pytest.param(bytes(960), {"sample_rate": 48000.0}, TypeError, "int", id="float-rate"),
        pytest.param(bytes(960), {"num_channels": True}, TypeError, "int", id="bool-channels"),
        pytest.param(bytes(958), {}, ValueError, "958 bytes", id="short-buffer"),
        pytest.param(bytes(962), {}, ValueError, "962 bytes", id="long-buffer"),
        pytest.param(bytes(960), {"num_channels": 2}, ValueError, "1920", id="channels-vs-size"),
        pytest.param(
            memoryview(bytearray(1920))[::2], {}, ValueError, "contiguous", id="strided-view"
        ),
        pytest.param(array("f", [0.0] * 480), {}, TypeError, "'f'", id="float32-samples"),
        pytest.param(array("i", [0] * 240), {}, TypeError, "'i'", id="int32-samples"),
        pytest.param(
            memoryview(bytes(960)).cast("h").cast("B").cast("d"),
            {},
            TypeError,
            "'d'",
            id="float64-view",
        ),
        pytest.param("x" * 960, {}, TypeError, "bytes-like", id="str"),
        pytest.param([0] * 480, {}, TypeError, "bytes-like", id="list"),
    ],
)
def test_audio_frame_rejects(
    data: Any, overrides: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AudioFrame(data, **{**_GOOD, **overrides})


def test_audio_frame_rejects_non_contiguous_numpy() -> None:
    numpy = pytest.importorskip("numpy")
    stereo = numpy.zeros((480, 2), dtype=numpy.int16)
    with pytest.raises(ValueError, match="contiguous"):
        AudioFrame(stereo.T, sample_rate=RATE, num_channels=2, samples_per_channel=480)
    with pytest.raises(TypeError, match="int16"):
        AudioFrame(
            stereo.astype(numpy.float32), sample_rate=RATE, num_channels=2, samples_per_channel=480
        )
    big_endian = stereo.astype(">i2" if sys.byteorder == "little" else "<i2")
    with pytest.raises(TypeError, match="native-order int16"):
        AudioFrame(big_endian, sample_rate=RATE, num_channels=2, samples_per_channel=480)


def test_create_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="num_channels"):
        AudioFrame.create(sample_rate=RATE, num_channels=0, samples_per_channel=480)
    with pytest.raises(TypeError, match="samples_per_channel"):
        AudioFrame.create(sample_rate=RATE, num_channels=1, samples_per_channel=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        pytest.param((48000, 16000), {"num_channels": 0}, ValueError, "num_channels", id="0-ch"),
        pytest.param((0, 16000), {}, ValueError, "input_rate", id="0-in"),
        pytest.param((48000, 0), {}, ValueError, "output_rate", id="0-out"),
        pytest.param((-1, 16000), {}, ValueError, "input_rate", id="neg-in"),
        pytest.param((float("nan"), 16000), {}, TypeError, "input_rate", id="nan"),
        pytest.param((48000, float("inf")), {}, TypeError, "output_rate", id="inf"),
        pytest.param(
            (48000, 16000), {"quality": 9}, ValueError, "AudioResamplerQuality", id="quality"
        ),
    ],
)
def test_resampler_rejects(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    before = statistics().live_handles
    with pytest.raises(error, match=match):
        AudioResampler(*args, **kwargs)
    assert statistics().live_handles == before  # rejected before anything native was made


def test_resampler_push_rejects_mismatched_frames() -> None:
    with AudioResampler(RATE, 16_000) as resampler:
        with pytest.raises(ValueError, match="16000 Hz"):
            resampler.push(
                AudioFrame.create(sample_rate=16_000, num_channels=1, samples_per_channel=160)
            )
        with pytest.raises(ValueError, match="2 channels"):
            resampler.push(
                AudioFrame.create(sample_rate=RATE, num_channels=2, samples_per_channel=480)
            )
        with pytest.raises(TypeError, match="AudioFrame"):
            resampler.push(bytes(960))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        pytest.param((RATE, 0), {}, ValueError, "num_channels", id="0-channels"),
        pytest.param((0, 1), {}, ValueError, "sample_rate", id="0-rate"),
        pytest.param((1000, 1), {}, ValueError, "between", id="1kHz"),
        pytest.param((99, 1), {}, ValueError, "between", id="99Hz"),
        pytest.param((768_000, 1), {}, ValueError, "between", id="768kHz"),
        pytest.param((RATE, 1), {"queue_size_ms": -1}, ValueError, "queue_size_ms", id="neg-q"),
        pytest.param((RATE, 1), {"queue_size_ms": 1.5}, TypeError, "queue_size_ms", id="float-q"),
        pytest.param((float(RATE), 1), {}, TypeError, "sample_rate", id="float-rate"),
    ],
)
def test_source_rejects(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    before = statistics().live_handles
    with pytest.raises(error, match=match):
        AudioSource(*args, **kwargs)
    assert statistics().live_handles == before


@pytest.mark.anyio
async def test_capture_rejects_frames_that_do_not_fit_the_source() -> None:
    async with AudioSource(RATE, 1) as source:
        before = statistics()
        for frame in (
            AudioFrame.create(sample_rate=16_000, num_channels=1, samples_per_channel=160),
            AudioFrame.create(sample_rate=RATE, num_channels=2, samples_per_channel=480),
        ):
            with pytest.raises(ValueError, match="resample it first"):
                await source.capture_frame(frame)
        with pytest.raises(TypeError, match="AudioFrame"):
            await source.capture_frame(bytes(960))  # type: ignore[arg-type]
        assert statistics().delivered == before.delivered  # nothing reached the native core
    async with AudioSource(RATE, 1, queue_size_ms=0) as direct:
        with pytest.raises(ValueError, match="exactly 10 ms"):
            await direct.capture_frame(
                AudioFrame.create(sample_rate=RATE, num_channels=1, samples_per_channel=960)
            )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"num_channels": 0}, ValueError, "num_channels", id="0-channels"),
        pytest.param({"num_channels": 3}, ValueError, "1 or 2", id="3-channels"),
        pytest.param({"sample_rate": 0}, ValueError, "sample_rate", id="0-rate"),
        pytest.param({"sample_rate": 7}, ValueError, "between", id="7Hz"),
        pytest.param({"sample_rate": 1_000_000}, ValueError, "between", id="1MHz"),
        pytest.param({"frame_size_ms": 0}, ValueError, "frame_size_ms", id="0ms-frames"),
        pytest.param({"max_buffered": 0}, ValueError, "max_buffered", id="0-buffer"),
        pytest.param({"overflow": "block"}, ValueError, "overflow", id="overflow"),
    ],
)
async def test_stream_rejects(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    async with AudioSource(RATE, 1) as source:
        async with LocalAudioTrack.create_audio_track("t", source) as track:
            before = statistics()
            with pytest.raises(error, match=match):
                AudioStream(track, **kwargs)
            after = statistics()
            assert after.live_handles == before.live_handles
            assert after.bound_handles == before.bound_handles
    with pytest.raises(TypeError, match="audio track"):
        AudioStream(source)  # type: ignore[arg-type]


# -- in a subprocess: the process survives each known-abort input --------------------------------

_PRELUDE = """
import anyio
from array import array
from lkanyio import AudioResampler, AudioSource, AudioStream
from lkanyio import AudioFrame
from lkanyio import LocalAudioTrack

def rejected(attempt):
    try:
        attempt()
    except (ValueError, TypeError) as exc:
        print("rejected", type(exc).__name__, exc, flush=True)
    else:
        print("accepted", flush=True)

async def frames_flow(**stream_options):
    # Media really flows through the native pipeline after the rejection.
    async with AudioSource(48000, 1) as source:
        async with LocalAudioTrack.create_audio_track("t", source) as track:
            async with AudioStream(track, **stream_options) as stream:
                for _ in range(20):
                    await stream.receive()
                    await source.capture_frame(AudioFrame.create(
                        sample_rate=48000, num_channels=1, samples_per_channel=480))

def alive():
    with AudioResampler(48000, 16000) as resampler:
        for _ in range(5):
            resampler.push(AudioFrame.create(
                sample_rate=48000, num_channels=1, samples_per_channel=480))
        resampler.flush()
    anyio.run(frames_flow)
    print("alive", flush=True)
"""

_STREAM_ATTEMPT = """
async def main():
    async with AudioSource(48000, 1) as source:
        async with LocalAudioTrack.create_audio_track("t", source) as track:
            rejected(lambda: AudioStream(track, {options}))
anyio.run(main)
alive()
"""

# name -> (code run after the prelude, expected exception name)
_SURVIVAL_CASES: dict[str, tuple[str, str]] = {
    # sox resampler with 0 channels: Rust "attempt to divide by zero" on the first push.
    "resampler-0-channels": (
        "rejected(lambda: AudioResampler(48000, 16000, num_channels=0))\nalive()",
        "ValueError",
    ),
    # sox resampler with a NaN or infinite rate: new_sox_resampler never returns.
    "resampler-nan-rate": (
        "rejected(lambda: AudioResampler(float('nan'), 16000))\nalive()",
        "TypeError",
    ),
    # audio source and frame with 0 channels: "remainder with a divisor of zero" (livekit-audio).
    "source-0-channels": ("rejected(lambda: AudioSource(48000, 0))\nalive()", "ValueError"),
    "frame-0-channels": (
        "rejected(lambda: AudioFrame(b'', sample_rate=48000, num_channels=0,"
        " samples_per_channel=480))\nalive()",
        "ValueError",
    ),
    # a 1 kHz source aborts WebRTC's resampler ("Check failed: source_available_ == frames").
    "source-1kHz": ("rejected(lambda: AudioSource(1000, 1))\nalive()", "ValueError"),
    # streams: 0 channels or < 100 Hz (libc++ assertion), > 7680 samples per 10 ms (WebRTC
    # check), frame_size_ms=0 (hangs).
    "stream-0-channels": (_STREAM_ATTEMPT.format(options="num_channels=0"), "ValueError"),
    "stream-7Hz": (_STREAM_ATTEMPT.format(options="sample_rate=7"), "ValueError"),
    "stream-1MHz": (_STREAM_ATTEMPT.format(options="sample_rate=1_000_000"), "ValueError"),
    "stream-0ms-frames": (_STREAM_ATTEMPT.format(options="frame_size_ms=0"), "ValueError"),
    # A frame whose buffer is smaller than announced would make the native core read past it.
    "frame-short-buffer": (
        "rejected(lambda: AudioFrame(bytes(100), sample_rate=48000, num_channels=1,"
        " samples_per_channel=480000))\nalive()",
        "ValueError",
    ),
    "frame-strided-view": (
        "rejected(lambda: AudioFrame(memoryview(bytearray(1920))[::2], sample_rate=48000,"
        " num_channels=1, samples_per_channel=480))\nalive()",
        "ValueError",
    ),
    "frame-float32": (
        "rejected(lambda: AudioFrame(array('f', [0.5] * 480), sample_rate=48000,"
        " num_channels=1, samples_per_channel=480))\nalive()",
        "TypeError",
    ),
}


def _no_core_dump() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    env["RUST_BACKTRACE"] = "0"
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: a hanging child fails the test instead of the run
        env=env,
        preexec_fn=_no_core_dump,
    )


def _one_child_for_all(cases: dict[str, str]) -> str:
    """One child's program: each case in turn, announced on its own line before it starts."""
    parts = [_PRELUDE]
    for name, code in cases.items():
        body = textwrap.indent(textwrap.dedent(code), "    ")
        parts.append(f"print('case', {name!r}, flush=True)\ndef _case():\n{body}\n_case()\n")
    return "".join(parts)


def _sections(stdout: str) -> dict[str, list[str]]:
    """Each case's output lines, by the announcement before them."""
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("case "):
            lines = sections.setdefault(line.removeprefix("case "), [])
        else:
            lines.append(line)
    return sections


# Every case in one child, in turn (they were one child each: 12 interpreters importing lkanyio
# and starting the native core, ~7 CPU-seconds per interpreter run).  A rejection raises before
# anything reaches the native core, so one case cannot change what the next meets; a missing
# check shows as a child that died or hung in that case, and every case it never reached fails
# too, naming it.  The control case is a valid frame: it must read "accepted", so the harness
# can see a rejection fail.
_CONTROL = (
    "rejected(lambda: AudioFrame.create(sample_rate=48000, num_channels=1,"
    " samples_per_channel=480))\nalive()"
)


def test_process_survives_every_known_abort_input() -> None:
    cases = {"control-a-valid-frame": _CONTROL}
    cases.update((name, code) for name, (code, _) in sorted(_SURVIVAL_CASES.items()))
    try:
        result = _run(_one_child_for_all(cases))
    except subprocess.TimeoutExpired as hung:  # its output so far names the case it hung in
        out = hung.stdout.decode() if isinstance(hung.stdout, bytes) else hung.stdout or ""
        last = [line for line in out.splitlines() if line.startswith("case ")][-1:]
        raise AssertionError(f"the child hung in {last}: {out[-2000:]}") from hung
    sections = _sections(result.stdout)
    died = f"exit status {result.returncode}, stderr:\n{result.stderr[-2000:]}"
    problems = []
    for name, (_, expected) in sorted(_SURVIVAL_CASES.items()):
        lines = sections.get(name)
        if lines is None:
            problems.append(f"{name}: never reached ({died})")
        elif lines[-1:] != ["alive"]:
            problems.append(f"{name}: the process did not survive it: {lines} ({died})")
        elif not lines[0].startswith(f"rejected {expected} "):
            problems.append(f"{name}: not rejected with {expected}: {lines}")
    assert not problems, "\n".join(problems)
    assert sections.get("control-a-valid-frame") == ["accepted", "alive"], (sections, died)
    assert result.returncode == 0, died


# -- the checks matter: the same inputs sent raw kill the process --------------------------------

_RAW_PRELUDE = """
import anyio
from lkanyio._native._bridge import get_bridge
from lkanyio._native._memory import buffer_pointer
from lkanyio._native._proto import audio_frame_pb2, ffi_pb2
bridge = get_bridge()

def new_source(rate, channels):
    req = ffi_pb2.FfiRequest()
    req.new_audio_source.type = audio_frame_pb2.AUDIO_SOURCE_NATIVE
    req.new_audio_source.sample_rate = rate
    req.new_audio_source.num_channels = channels
    req.new_audio_source.queue_size_ms = 1000
    return bridge.request(req).new_audio_source.source.handle.id

def new_track(source):
    req = ffi_pb2.FfiRequest()
    req.create_audio_track.name = "t"
    req.create_audio_track.source_handle = source
    return bridge.request(req).create_audio_track.track.handle.id

def new_stream(track, rate, channels):
    req = ffi_pb2.FfiRequest()
    msg = req.new_audio_stream
    msg.track_handle = track
    msg.type = audio_frame_pb2.AUDIO_STREAM_NATIVE
    msg.sample_rate = rate
    msg.num_channels = channels
    return bridge.request(req).new_audio_stream.stream.handle.id

async def capture(source, rate, channels, samples, count):
    data = bytearray(max(samples * channels * 2, 2))
    address, pinned = buffer_pointer(data)
    for _ in range(count):
        req = ffi_pb2.FfiRequest()
        info = req.capture_audio_frame.buffer
        req.capture_audio_frame.source_handle = source
        info.data_ptr = address
        info.sample_rate = rate
        info.num_channels = channels
        info.samples_per_channel = samples
        await bridge.request_async(req)
    await anyio.sleep(1)
"""

# name -> (raw code, text the native core prints as it dies)
_RAW_ABORTS: dict[str, tuple[str, str]] = {
    # FFI-NOTES 3d: remix_and_resample with 0 channels (lkanyio does not expose it).
    "remix-0-channels": (
        """
req = ffi_pb2.FfiRequest()
req.new_audio_resampler.SetInParent()
resampler = bridge.request(req).new_audio_resampler.resampler.handle.id
data = bytearray(960)
address, pinned = buffer_pointer(data)
req = ffi_pb2.FfiRequest()
msg = req.remix_and_resample
msg.resampler_handle = resampler
msg.buffer.data_ptr = address
msg.buffer.sample_rate = 48000
msg.buffer.num_channels = 1
msg.buffer.samples_per_channel = 480
msg.num_channels = 0
msg.sample_rate = 16000
bridge.request(req)
""",
        "attempt to divide by zero",
    ),
    # What AudioResampler(num_channels=0) would do.
    "sox-0-channels": (
        """
req = ffi_pb2.FfiRequest()
msg = req.new_sox_resampler
msg.input_rate, msg.output_rate, msg.num_channels = 48000, 16000, 0
msg.input_data_type = msg.output_data_type = audio_frame_pb2.SOXR_DATATYPE_INT16I
msg.quality_recipe = audio_frame_pb2.SOXR_QUALITY_MEDIUM
resampler = bridge.request(req).new_sox_resampler.resampler.handle.id
data = bytearray(960)
address, pinned = buffer_pointer(data)
req = ffi_pb2.FfiRequest()
req.push_sox_resampler.resampler_handle = resampler
req.push_sox_resampler.data_ptr = address
req.push_sox_resampler.size = len(data)
bridge.request(req)
""",
        "attempt to divide by zero",
    ),
    # What AudioSource(48000, 0) and a 0-channel frame would do.
    "source-0-channels": (
        """
source = new_source(48000, 0)
anyio.run(capture, source, 48000, 0, 480, 3)
""",
        "divisor of zero",
    ),
    # What AudioStream(track, num_channels=0) would do.
    "stream-0-channels": (
        """
track = new_track(new_source(48000, 1))
new_stream(track, 48000, 0)
anyio.run(anyio.sleep, 2)
""",
        "out of range",
    ),
}


@pytest.mark.parametrize("case", sorted(_RAW_ABORTS))
def test_native_core_aborts_without_the_check(case: str) -> None:
    code, message = _RAW_ABORTS[case]
    result = _run(_RAW_PRELUDE + textwrap.dedent(code) + "\nprint('survived', flush=True)\n")
    assert result.returncode == -signal.SIGABRT, (result.returncode, result.stderr[-2000:])
    assert "survived" not in result.stdout
    assert message in result.stderr


# -- one positive-int check --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError), ("3", TypeError)],
)
def test_every_count_uses_the_one_positive_int_check(value: object, error: type[Exception]) -> None:
    from lkanyio import VideoSource
    from lkanyio._checks import check_positive
    from lkanyio._streams import open_event_stream

    with pytest.raises(error):
        check_positive("n", value)
    with pytest.raises(error, match="max_buffered"):
        open_event_stream(max_buffered=value, overflow="fail")  # type: ignore[arg-type]
    with pytest.raises(error, match="num_channels"):
        AudioFrame.create(sample_rate=48_000, num_channels=value, samples_per_channel=480)  # type: ignore[arg-type]
    with pytest.raises(error, match="width"):
        VideoSource(value, 16)  # type: ignore[arg-type]


def test_the_positive_int_check_bounds_and_messages() -> None:
    from lkanyio._checks import check_positive

    assert check_positive("n", 7) == 7
    assert check_positive("n", 16_384, maximum=16_384) == 16_384
    with pytest.raises(ValueError, match=r"^n must be positive, got 0$"):
        check_positive("n", 0)
    with pytest.raises(ValueError, match=r"^n must be between 1 and 4, got 5$"):
        check_positive("n", 5, maximum=4)
    with pytest.raises(TypeError, match=r"^n must be an int, not bool$"):
        check_positive("n", False)
