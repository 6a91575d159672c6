"""Whether a failed join ran out of file descriptors, and what to tell the user.

Measured (livekit-ffi 0.13.2, livekit-server 1.13.5, one network interface besides loopback;
``bench/fds.py``): a joined room holds 45-49 descriptors while it joins and 35-40 once ICE has
settled (TCP and UDP sockets of the native core, per participant: a room of two participants of
the same process holds twice that; publishing a track adds none); another host counted about 100
per room.  A join with only 20 descriptors left still succeeded (ICE made do with fewer
sockets); with 8 left its peer connection failed.  A process out of descriptors
fails a join in one of two ways, depending on where it runs out (measured in a child process
with a low ``RLIMIT_NOFILE``):

- the signalling WebSocket cannot open a socket: the native core retries 3 times at once and
  fails with "... IO error: Too many open files (os error 24)";
- the WebSocket opens but the peer connection's sockets do not: no ICE candidate, and each of
  the native core's attempts ends after its fixed 15 s wait with "wait_pc_connection timed out",
  the words of any other ICE failure.

The first names the cause; the second is recognised by how few descriptors are left when it
fails.  Both get the same advice.
"""

from __future__ import annotations

import errno
import os
import resource

__all__ = ["FDS_PER_JOIN", "descriptor_usage", "out_of_descriptors_hint"]

FDS_PER_JOIN = 50
"""Descriptors a join needs, rounded up from the measured 45-49 (see the module docstring)."""

# EMFILE (this process's limit) and ENFILE (the system's), as the native core words them.
_NATIVE_SAYS_SO = ("Too many open files", "os error 24", "os error 23")

_ADVICE = (
    "a joined room holds 40-100 of them, depending on the host; raise the limit (`ulimit -n`, "
    "or resource.setrlimit(resource.RLIMIT_NOFILE, ...) before joining) or join fewer rooms "
    "in this process (lkanyio's guide: Many rooms in one process)"
)


def descriptor_usage() -> tuple[int, int] | None:
    """``(open, soft limit)`` of this process's file descriptors; ``None`` if unknown or unlimited.

    Reads ``/proc/self/fd`` (Linux).  Listing it takes a descriptor itself: if even that fails
    for want of one, every descriptor is in use.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        in_use = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return soft, soft
        return None
    return in_use, soft


def out_of_descriptors_hint(message: str, usage: tuple[int, int] | None) -> str | None:
    """What to add to a failed join's ``message``, if the process is out of descriptors.

    Args:
        message: the native core's reason.
        usage: :func:`descriptor_usage` at the failure.

    Returns:
        The sentence to append, or ``None`` when descriptors are not the (likely) cause.
    """
    advice = _ADVICE
    if any(words in message for words in _NATIVE_SAYS_SO):
        counts = "" if usage is None else f" ({usage[0]} open, limit {usage[1]})"
        return f"this process ran out of file descriptors{counts}: {advice}"
    if usage is None:
        return None
    in_use, soft = usage
    free = soft - in_use
    if free >= FDS_PER_JOIN:
        return None
    return (
        f"this process has only {max(free, 0)} of its {soft} file descriptors free and a join "
        f"needs about {FDS_PER_JOIN}, so it most likely ran out of them: {advice}"
    )
