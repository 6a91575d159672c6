"""Media helpers shared by the tests: the rate, tones and the checks that find them."""

from __future__ import annotations

import cmath
import math
from array import array

import lkanyio
from lkanyio.demo import dominant_frequency

__all__ = ["RATE", "dominant_frequency", "sine", "tone_frame", "tone_frames", "tone_share"]

RATE = 48_000
"""The sample rate the tests use (the native core's own)."""


def sine(
    hz: float, samples: int, *, rate: int = RATE, amplitude: int = 12_000, phase: float = 0.0
) -> array[int]:
    """``samples`` 16-bit samples of a sine at ``hz``."""
    return array(
        "h",
        (int(amplitude * math.sin(2 * math.pi * hz * i / rate + phase)) for i in range(samples)),
    )


def tone_frame(
    hz: float, *, rate: int = RATE, channels: int = 1, ms: int = 10, amplitude: int = 8000
) -> lkanyio.AudioFrame:
    """One frame of ``ms`` milliseconds of a sine at ``hz``, the same on every channel."""
    n = rate * ms // 1000
    mono = sine(hz, n, rate=rate, amplitude=amplitude)
    samples = array("h", (x for x in mono for _ in range(channels)))
    return lkanyio.AudioFrame(
        samples, sample_rate=rate, num_channels=channels, samples_per_channel=n
    )


def tone_frames(hz: float, seconds: float, *, rate: int = RATE) -> list[lkanyio.AudioFrame]:
    """``seconds`` of a phase-continuous sine at ``hz`` in 10 ms mono frames."""
    per = rate // 100
    samples = sine(hz, per * round(seconds * 100), rate=rate)
    return [
        lkanyio.AudioFrame(
            samples[start : start + per].tobytes(),
            sample_rate=rate,
            num_channels=1,
            samples_per_channel=per,
        )
        for start in range(0, len(samples), per)
    ]


def tone_share(samples: list[int], hz: float, *, pieces: bool = False, rate: int = 48_000) -> float:
    """Share of the last half second's energy that is a sine at ``hz`` (1.0: a pure tone).

    By default one transform over the half second: 2 Hz wide, so decoded ciphertext or other
    noise reads ~0.00-0.01; assert a tone's absence with it.  It undercounts a tone heard on a
    loaded machine, though: a receiver starved of CPU conceals 10 ms at a time and the tone
    resumes where it left off, 0.4 of a period away at 440 Hz, and the one transform adds the
    pieces out of phase (0.17-0.19 with 5 such gaps in a second, 0.02 or less with 30; an e2ee
    test read 0.43 for a tone it decrypted, in a loaded run).

    ``pieces=True`` measures ~10 ms blocks of whole periods and sums them by energy: each block
    sees a gap or two at most (0.79-0.98 with 5-45 gaps a second, tests/unit/test_tone_share.py),
    but a block is ~100 Hz wide, and decoded ciphertext read up to 0.25; assert a tone's
    presence with it.
    """
    window = samples[-rate // 2 :]
    if not window:
        return 0.0
    w = 2 * math.pi * hz / rate
    block = round(max(1, round(0.01 * hz)) * rate / hz) if pieces else len(window)
    tone = energy = 0.0
    for start in range(0, len(window) - block + 1, block):
        piece = window[start : start + block]
        acc = sum(x * cmath.exp(-1j * w * k) for k, x in enumerate(piece))
        tone += 2 * abs(acc) ** 2 / block
        energy += sum(x * x for x in piece)
    return min(1.0, tone / energy) if energy else 0.0
