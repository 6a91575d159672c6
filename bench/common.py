"""What every benchmark side shares: the workload sizes, measuring helpers, tokens and the tone."""

from __future__ import annotations

import math
import os
import resource
from array import array

SEQ_WARMUP, SEQ_COUNT = 500, 5000
CONCURRENCY = (10, 100, 1000, 5000)
AUDIO_FRAMES = 500  # 5 s of 10 ms frames (sources play out in real time)
DATA_MESSAGES = 2000
SCALE_K = int(os.environ.get("LKANYIO_BENCH_K", "100"))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
