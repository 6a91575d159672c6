"""The aarch64 wheel, run: its shim loaded and LiveKit's native core driven through it.

scripts/build-dist runs this under qemu-user with an aarch64 Python; the core is the livekit
wheel's aarch64 liblivekit_ffi.so.  Argument: the directory the wheel was installed into; the
package must come from there.
"""

import math
import platform
import sys
from array import array

import lkanyio
from lkanyio._native import _ffi as _native

assert platform.machine() == "aarch64", platform.machine()
assert lkanyio.__file__.startswith(sys.argv[1]), lkanyio.__file__
assert _native.__file__.endswith("_ffi.abi3.so"), _native.__file__

# 10 ms of a 440 Hz tone at 48 kHz, pushed 10 times through the native sox resampler to 16 kHz.
tone = array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(480)))
frame = lkanyio.AudioFrame(tone, sample_rate=48000, num_channels=1, samples_per_channel=480)
with lkanyio.AudioResampler(input_rate=48000, output_rate=16000, num_channels=1) as resampler:
    out = [f for _ in range(10) for f in resampler.push(frame)] + resampler.flush()
samples = sum(f.samples_per_channel for f in out)
stats = lkanyio.statistics()
print(
    f"aarch64-probe: Python {platform.python_version()} on {platform.machine()}: "
    f"{_native.__file__.rsplit('/', 1)[-1]} loaded, native core resampled 4800 samples at 48 kHz "
    f"to {samples} at 16 kHz; bridge started={stats.started}"
)
assert stats.started, stats
assert 1500 <= samples <= 1600, samples
