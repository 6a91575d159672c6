"""What every benchmark side shares: the workload sizes, measuring helpers, tokens and the tone."""

from __future__ import annotations

import gc
import math
import os
import resource
import time
from array import array

SEQ_WARMUP, SEQ_COUNT = 500, 5000
CONCURRENCY = (10, 100, 1000, 5000)
# The official SDK stops at 1,000 unless LKANYIO_BENCH_OFFICIAL_N5000=1: its one batch of 5,000
# takes 97-115 s (its fan-out is quadratic in the number in flight), an eighth of the bench's
# 15 minutes for one ratio that was 320x in every full run (the target was 75x); lkanyio's own
# N = 5,000 rows, what issue 18's flatness target reads, are measured in every run.
OFFICIAL_CONCURRENCY = CONCURRENCY if os.environ.get("LKANYIO_BENCH_OFFICIAL_N5000") == "1" else (
    CONCURRENCY[:-1]
)
AUDIO_FRAMES = 500  # 5 s of 10 ms frames (sources play out in real time)
DATA_MESSAGES = 2000
SCALE_K = int(os.environ.get("LKANYIO_BENCH_K", "100"))
# Seconds after the last connect before the scale row's 5 s idle window: the native core keeps
# negotiating for several seconds after connect returns.  Measured 7 Dec 2026 (100 rooms, 5 s
# windows from 2 s after the last connect): trio 0.68, 0.15, 0.14, 0.16 and 1.20, 0.37, 0.12,
# 0.11 cores; asyncio 0.40, 0.19, 0.18, 0.16 and 0.59, 0.23, 0.24, 0.22.  With a 2 s settle the
# first window read 0.31-1.38 cores, whichever side, by run.
SCALE_SETTLE_S = 12.0


def pinned_cores() -> tuple[set[int], set[int]] | None:
    """With ``LKANYIO_BENCH_PIN=1``: (the cores of everything else, the measured side's core).

    The measured side runs alone on the last core, and bench.py, the servers and the peers on
    the others, so an overloaded side (the agent row at a K one core cannot serve) is overloaded
    by its own work only, the same in every run, whatever the peers and the server need.  The
    first call writes the split into the variable (``others:measured``) for the processes that
    bench.py starts, whose own affinity is one side of it already.
    """
    value = os.environ.get("LKANYIO_BENCH_PIN", "")
    if value in ("", "0"):
        return None
    if value == "1":
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            raise SystemExit("LKANYIO_BENCH_PIN=1 needs at least two cores")
        value = os.environ["LKANYIO_BENCH_PIN"] = (
            ",".join(map(str, cores[:-1])) + f":{cores[-1]}"
        )
    others, measured = value.split(":")
    return {int(c) for c in others.split(",")}, {int(measured)}
VIDEO_SIZES = ((1280, 720), (1920, 1080))
VIDEO_FPS = 30
VIDEO_SECONDS = 20.0  # per size; bench.py --seconds shortens it
CONVERT_FRAMES = 200  # offline I420 -> RGBA at 1080p
AGENT_K = tuple(int(k) for k in os.environ.get("LKANYIO_BENCH_AGENT_K", "10,25").split(","))
AGENT_SECONDS = 10.0
STREAM_FILE_MB, STREAM_TEXT_MB = 50, 1  # bench.py --quick divides both by 10
# Set up, outside every window, by every side: the sender deletes an attribute it does not have.
# livekit-server sends the join of a participant that publishes nothing to the others only on
# its 3 s batch tick (pkg/rtc/room.go), but an attributes change at once, queued join included:
# the receiver sees the sender ~0.1 s after it joined instead of ~2.5 s (measured).
ANNOUNCE = {"bench.announce": ""}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class GcClock:
    """Seconds this process has spent in the cyclic garbage collector since it was created.

    The concurrency workload reports the share of its N = 5,000 window spent there: with
    thousands of requests in flight every object they keep alive is promoted to the old
    generation and traversed again by each full collection (issue 18: this, not the request
    path, is what grows with the number in flight).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


def concurrency_summary(
    out: dict[str, float], gc_share: float, ns: tuple[int, ...] = CONCURRENCY
) -> dict[str, float]:
    """Add the largest N / N = 10 throughput ratio and the GC share of the largest N's window."""
    first, last = ns[0], ns[-1]
    out[f"n{last}_over_n{first}"] = out[f"n{last}_req_s"] / out[f"n{first}_req_s"]
    out[f"n{last}_gc_share"] = gc_share
    return out


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def token(key: str, secret: str, identity: str, room: str) -> str:
    from livekit import api

    grants = api.VideoGrants(room_join=True, room=room, can_update_own_metadata=True)
    return str(api.AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt())


def tone(sample_rate: int = 48_000) -> bytes:
    """10 ms of a 440 Hz sine, 16-bit mono."""
    n = sample_rate // 100
    return array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / sample_rate)) for i in range(n))).tobytes()


def silent(samples: memoryview | bytes) -> bool:
    """Whether a 16-bit frame carries no tone (decoded silence and comfort noise stay far below)."""
    view = memoryview(samples).cast("B").cast("h")
    return max(view, default=0) < 1000


# -- the video frame counter -------------------------------------------------------------------
# There is no per-frame metadata in this native core, so each captured frame carries its number
# in the picture: 16 blocks (8 columns x 2 rows over the top quarter) black or white, 12 bits of
# counter and a 4-bit check.  Blocks are 1/8 of the frame on a side, so the pattern survives the
# encoder and any downscaling (the decoder samples block centres at relative positions).

COUNTER_BITS = 12


def _bits(counter: int) -> list[int]:
    value = (counter % (1 << COUNTER_BITS)) | ((counter * 7 + 3) % 16) << COUNTER_BITS
    return [(value >> i) & 1 for i in range(16)]


def i420_base(width: int, height: int) -> bytearray:
    """A mid-grey I420 frame (luma 128, neutral chroma)."""
    luma = width * height
    chroma = ((width + 1) // 2) * ((height + 1) // 2)
    return bytearray(b"\x80" * (luma + 2 * chroma))


def paint_counter(frame: bytearray, width: int, height: int, counter: int) -> None:
    """Write ``counter`` into the luma plane of an I420 frame (in place)."""
    bits = _bits(counter)
    bw, bh = width // 8, height // 8
    for row in range(2):
        line = b"".join((b"\xeb" if bits[row * 8 + c] else b"\x10") * bw for c in range(8))
        line += b"\x80" * (width - len(line))
        for y in range(row * bh, (row + 1) * bh):
            frame[y * width : (y + 1) * width] = line


def read_counter(rgba: memoryview | bytes, width: int, height: int) -> int | None:
    """The counter painted in an RGBA frame, or None if the blocks do not check out."""
    view = memoryview(rgba).cast("B")
    value = 0
    for i in range(16):
        row, col = divmod(i, 8)
        x = int((col + 0.5) * width / 8)
        y = int((row + 0.5) * height / 8)
        if view[(y * width + x) * 4] > 128:  # the red channel
            value |= 1 << i
    counter = value & ((1 << COUNTER_BITS) - 1)
    return counter if _bits(counter) == [(value >> i) & 1 for i in range(16)] else None
