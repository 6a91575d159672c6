"""The demo's tone check (``lkanyio.demo.dominant_frequency``), offline.

The suite's tone tests (demo, hosts, audio server, cluster, CLI recording) judge what they heard
with it, so it must find any tone in its range, not only the 440 and 660 Hz they send.
"""

from __future__ import annotations

import math
import random

import pytest

from _media import RATE
from lkanyio.demo import dominant_frequency


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
    # A burst of 150-250 ms played 1.4% sharp decides nothing.  (Loaded runs heard 446 Hz for
    # 440 and 669 for 660; this burst was the first guess at why.  A recording of such a run
    # showed phase jumps instead: the next test.)
    rng = random.Random(11)
    for n in range(12):
        hz = rng.choice([440.0, 660.0, rng.uniform(100.0, 1900.0)])
        start = rng.randrange(50, 80)  # one burst of 150-250 ms in the second half
        bursts = [(start, min(100, start + rng.randrange(15, 26)))]
        samples = _concealed(hz, bursts, off=1.014, seed=n)
        assert abs(dominant_frequency(samples, RATE) - hz) <= 1.0, (hz, bursts)


def _with_gaps(hz: float, cuts: list[int], *, seed: int, repeat: bool) -> list[int]:
    """A second of ``hz`` with 10 ms of concealment at each of ``cuts`` (sample offsets into the
    tone): silence, or its last period again and again (``repeat``); after each the tone resumes
    where it left off, as a receiver starved of CPU plays it."""
    tone = _tone(hz, noise=300.0, seed=seed) * 2
    period = round(RATE / hz)
    out: list[int] = []
    taken = 0
    for cut in cuts:
        out += tone[taken:cut]
        taken = cut
        last = tone[cut - period : cut]
        out += [last[i % period] if repeat else 0 for i in range(480)]
    out += tone[taken:]
    return out[:RATE]


@pytest.mark.parametrize("repeat", [False, True], ids=["silence", "repeated-period"])
def test_a_tone_with_concealed_gaps_is_found(repeat: bool) -> None:
    # Recorded in a loaded run of the hosts scenario: one second of a 440 Hz tone held 30
    # concealed gaps, each one 10 ms (the tone's phase stepped back 0.4 of a period at each),
    # and the check read it as 425 Hz; CI's runs read 434 for 440 and 666 or 667 for 660.
    rng = random.Random(5)
    for n in range(9):
        hz = [440.0, 660.0, rng.uniform(100.0, 1900.0)][n % 3]
        cuts = sorted(rng.sample(range(1_000, RATE - 1_000), rng.randrange(10, 46)))
        samples = _with_gaps(hz, cuts, seed=n, repeat=repeat)
        assert abs(dominant_frequency(samples, RATE) - hz) <= 1.0, (hz, len(cuts))
