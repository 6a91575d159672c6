"""The default load: the share of the machine's CPUs this worker (and its job processes) used."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["CpuShare"]

_MIN_WINDOW: Final = 1.0
"""Seconds a measurement spans at least: a shorter one returns the last value (a status report
right after an offer would otherwise divide a few ticks by a few milliseconds)."""


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _child_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a live process, from ``/proc``; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)


class CpuShare:
    """CPU time used per wall time and CPU, in [0, 1].

    It counts this process's threads (the native core's included) and the child processes
    ``pids()`` names.
    """

    def __init__(self, pids: Callable[[], Iterable[int]] = tuple) -> None:
        self._pids = pids
        self._cpus = _cpus()
        self._children: dict[int, float]
        self._at: float
        self._used: float
        self.value: float
        self.restart()

    def restart(self) -> None:
        """Measure from now on: what was spent before is not load.

        For the CPU the worker spends starting its job processes (each imports lkanyio and
        the job's module): counted, it made the registration's report read the worker full
        (0.94 on a 2-core machine, three processes), and the server did not offer it the jobs
        dispatched in the 2.5 s before the next report.
        """
        self._at = time.monotonic()
        self._used = self._process_seconds()
        self._children = {pid: _child_seconds(pid) for pid in self._pids()}
        self.value = 0.0

    def _process_seconds(self) -> float:
        times = os.times()
        return times.user + times.system

    def __call__(self) -> float:
        """The share since the previous measurement (at least :data:`_MIN_WINDOW` ago)."""
        now = time.monotonic()
        if now - self._at < _MIN_WINDOW:
            return self.value
        used = self._process_seconds()
        children = {pid: _child_seconds(pid) for pid in self._pids()}
        spent = used - self._used + sum(
            max(0.0, seconds - self._children.get(pid, 0.0)) for pid, seconds in children.items()
        )
        self.value = min(1.0, max(0.0, spent / ((now - self._at) * self._cpus)))
        self._at, self._used, self._children = now, used, children
        return self.value
