"""The demo's tone check (``lkanyio.demo.dominant_frequency``), offline.

The suite's tone tests (demo, hosts, audio server, cluster, CLI recording) judge what they heard
with it, so it must find any tone in its range, not only the 440 and 660 Hz they send.
"""

from __future__ import annotations

import math
import random

import pytest

from lkanyio.demo import dominant_frequency

RATE = 48_000


def _tone(hz: float, *, rate: int = RATE, noise: float = 0.0, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [
        int(16_000 * math.sin(2 * math.pi * hz * i / rate + 0.3) + rng.gauss(0.0, noise))
        for i in range(rate)
    ]


@pytest.mark.parametrize("hz", [60.0, 440.0, 660.0, 1234.0, 1990.0, 523.3, 1052.0])
def test_a_clean_tone_is_found_within_a_hertz(hz: float) -> None:
    # 1234 and 1052 Hz: the scan's coarse 10 Hz grid fell on the zeros of the half-second
    # window's response (multiples of 2 Hz away from the tone), and it answered 1199 for 1234.
    assert abs(dominant_frequency(_tone(hz), RATE) - hz) <= 1.0


def test_a_noisy_tone_with_quiet_frames_is_found() -> None:
    rng = random.Random(7)
    for n in range(12):
        hz = rng.uniform(55.0, 1995.0)
        samples = _tone(hz, noise=3_000.0, seed=n)
        for _ in range(20):  # concealed (silent) 10 ms frames here and there
            start = rng.randrange(0, RATE // 480) * 480
            samples[start : start + 480] = [0] * 480
        assert abs(dominant_frequency(samples, RATE) - hz) <= 1.0, hz


@pytest.mark.parametrize("rate", [16_000, 24_000, 44_100])
def test_other_sample_rates(rate: int) -> None:
    assert abs(dominant_frequency(_tone(440.0, rate=rate), rate) - 440.0) <= 1.0


def test_silence_and_nothing() -> None:
    assert dominant_frequency([], RATE) == 0.0
    assert 50.0 <= dominant_frequency([0] * RATE, RATE) <= 2000.0


def _concealed(hz: float, bursts: list[tuple[int, int]], *, off: float, seed: int) -> list[int]:
    """A second of ``hz`` whose 10 ms frames in ``bursts`` ([first, last) frame numbers) are
    replaced by the jitter buffer's concealment: the tone repeated at a period ``off`` times
    the real one, as the native core's expansion does when its receiving thread is starved."""
    samples = _tone(hz, noise=500.0, seed=seed)
    for first, last in bursts:
        phase = 0.0
        for i in range(first * 480, last * 480):
            samples[i] = int(16_000 * math.sin(phase))
            phase += 2 * math.pi * hz * off / RATE
    return samples


def test_a_tone_partly_concealed_off_pitch_is_found() -> None:
    # Measured in loaded full runs: the hosts scenario heard 446 Hz for 440 and 669 for 660 (both
    # 1.4% high): under CPU contention the receiver conceals late packets by repeating a pitch
    # period, quantized, so a burst of concealment plays the tone a little sharp. The check
    # judged the last half second only, so a burst there decided the answer.
    rng = random.Random(11)
    for n in range(12):
        hz = rng.choice([440.0, 660.0, rng.uniform(100.0, 1900.0)])
        start = rng.randrange(50, 80)  # one burst of 150-250 ms in the second half
        bursts = [(start, min(100, start + rng.randrange(15, 26)))]
        samples = _concealed(hz, bursts, off=1.014, seed=n)
        assert abs(dominant_frequency(samples, RATE) - hz) <= 1.0, (hz, bursts)
