"""Child-process harness for the video abort tests: the native core aborts on some inputs.

A child prints one JSON line per case (``emit``) and ``{"done": true}`` at the end; ``run_child``
fails, naming the case the child died in, when it did not get there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

_COMMON = r'''
import json, os, struct, sys
import lkanyio
from lkanyio import VideoBufferType as V

def emit(**fields):
    print(json.dumps(fields), flush=True)

def outcome(exc):
    return type(exc).__name__ if isinstance(exc, (ValueError, lkanyio.NativeError)) else repr(exc)

def solid(t, w, h, rgb):
    """A frame of one colour in layout t (YUV values from the native RGBA->I420)."""
    r, g, b = rgb
    cw, ch = (w + 1) // 2, (h + 1) // 2
    packed = {V.RGBA: [r, g, b, 255], V.ABGR: [255, b, g, r], V.ARGB: [255, r, g, b],
              V.BGRA: [b, g, r, 255], V.RGB24: [r, g, b]}
    if t in packed:
        return lkanyio.VideoFrame(w, h, t, bytes(packed[t]) * (w * h))
    yuv = lkanyio.VideoFrame(2, 2, V.RGBA, bytes([r, g, b, 255]) * 4).convert(V.I420).data
    y, u, v = yuv[0], yuv[4], yuv[5]
    planes = {
        V.I420: [(y, w * h), (u, cw * ch), (v, cw * ch)],
        V.I420A: [(y, w * h), (u, cw * ch), (v, cw * ch), (255, w * h)],
        V.I422: [(y, w * h), (u, cw * h), (v, cw * h)],
        V.I444: [(y, w * h), (u, w * h), (v, w * h)],
    }
    if t in planes:
        data = b"".join(bytes([value]) * n for value, n in planes[t])
    elif t == V.NV12:
        data = bytes([y]) * (w * h) + bytes([u, v]) * (cw * ch)
    else:  # I010: 10-bit little-endian samples
        data = b"".join(struct.pack("<H", value << 2) * n
                        for value, n in [(y, w * h), (u, cw * ch), (v, cw * ch)])
    return lkanyio.VideoFrame(w, h, t, data)

def mean_rgb(frame):
    rgba = frame.convert(V.RGBA)
    data, n = rgba.data, rgba.width * rgba.height
    return [sum(data[i::4]) / n for i in range(3)]
'''


def run_child(code: str, *args: str) -> list[dict[str, Any]]:
    """Run ``code`` in a fresh interpreter; fail (naming the case) if it died or failed."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines or lines[-1] != {"done": True}:
        started = [line["start"] for line in lines if "start" in line]
        how = (
            f"killed by {signal.Signals(-proc.returncode).name}"
            if proc.returncode < 0
            else f"exit status {proc.returncode}"
        )
        raise AssertionError(
            f"the child {how} during {started[-1] if started else 'setup'}:\n"
            + "\n".join(proc.stderr.splitlines()[-25:])
        )
    return [line for line in lines if "outcome" in line or "case" in line]
