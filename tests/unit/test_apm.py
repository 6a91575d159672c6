"""The audio processing module, offline (no server needed)."""

from __future__ import annotations

import random
import subprocess
import sys
from array import array

import pytest

import lkanyio
from _media import RATE

PER = RATE // 100


def frame(samples: list[int]) -> lkanyio.AudioFrame:
    return lkanyio.AudioFrame(
        array("h", samples).tobytes(), sample_rate=RATE, num_channels=1, samples_per_channel=PER
    )


def test_high_pass_filter_removes_a_dc_offset() -> None:
    with lkanyio.AudioProcessingModule(high_pass_filter=True) as apm:
        last = None
        for _ in range(100):  # 1 s
            f = frame([6000] * PER)
            apm.process_stream(f)
            last = f
        assert last is not None
        mean = sum(last.data) / PER
        assert abs(mean) < 600  # was 6000: the filter took the DC away


def test_noise_suppression_reduces_white_noise() -> None:
    rng = random.Random(7)
    energy_in = energy_out = 0.0
    with lkanyio.AudioProcessingModule(noise_suppression=True) as apm:
        for i in range(300):  # 3 s: the suppressor adapts first
            samples = [int(rng.gauss(0, 3000)) for _ in range(PER)]
            f = frame(samples)
            apm.process_stream(f)
            if i >= 200:
                energy_in += sum(s * s for s in samples)
                energy_out += sum(s * s for s in f.data)
    assert energy_out < energy_in / 4


def test_echo_canceller_accepts_both_directions_and_a_delay() -> None:
    with lkanyio.AudioProcessingModule(echo_cancellation=True, auto_gain_control=True) as apm:
        apm.set_stream_delay_ms(40)
        for _ in range(10):
            apm.process_reverse_stream(frame([1000] * PER))
            apm.process_stream(frame([1000] * PER))
        with pytest.raises(ValueError, match="delay_ms"):
            apm.set_stream_delay_ms(-1)


def test_frames_that_are_not_10_ms_are_refused_and_the_process_survives() -> None:
    with lkanyio.AudioProcessingModule() as apm:
        odd = lkanyio.AudioFrame.create(sample_rate=RATE, num_channels=1, samples_per_channel=500)
        with pytest.raises(ValueError, match="10 ms"):
            apm.process_stream(odd)
        with pytest.raises(TypeError):
            apm.process_stream(b"raw")  # type: ignore[arg-type]
    # The same refusal in a child process: had the frame reached the native core, the child
    # would have died of SIGABRT instead of printing.
    code = (
        "import lkanyio\n"
        "apm = lkanyio.AudioProcessingModule(noise_suppression=True)\n"
        "f = lkanyio.AudioFrame.create(\n"
        "    sample_rate=48000, num_channels=1, samples_per_channel=500)\n"
        "try:\n    apm.process_stream(f)\nexcept ValueError:\n    print('refused')\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "refused"
