"""Telling a join that failed for want of file descriptors (lkanyio._descriptors)."""

from __future__ import annotations

import errno
import os
import resource

import pytest

from lkanyio._descriptors import FDS_PER_JOIN, descriptor_usage, out_of_descriptors_hint

SIGNAL_EMFILE = (  # measured: the WebSocket could not open a socket
    "engine: signal failure: transport connection error: "
    "IO error: Too many open files (os error 24)"
)
ICE_TIMEOUT = "engine: connection error: wait_pc_connection timed out"


def test_the_native_core_saying_so_is_certain() -> None:
    hint = out_of_descriptors_hint(SIGNAL_EMFILE, (1000, 1000))
    assert hint is not None
    assert hint.startswith("this process ran out of file descriptors (1000 open, limit 1000)")
    assert "ulimit -n" in hint
    assert "RLIMIT_NOFILE" in hint
    # the system's limit (ENFILE) too, and without counts where they are unknown
    hint = out_of_descriptors_hint("IO error: (os error 23)", None)
    assert hint is not None
    assert hint.startswith("this process ran out of file descriptors:")


def test_an_ice_timeout_with_few_descriptors_left_is_likely_them() -> None:
    hint = out_of_descriptors_hint(ICE_TIMEOUT, (980, 1000))
    assert hint is not None
    assert hint.startswith("this process has only 20 of its 1000 file descriptors free")
    assert f"needs about {FDS_PER_JOIN}" in hint
    assert out_of_descriptors_hint(ICE_TIMEOUT, (1010, 1000)) is not None  # limit lowered


def test_other_failures_get_no_hint() -> None:
    assert out_of_descriptors_hint(ICE_TIMEOUT, (100, 1000 + FDS_PER_JOIN)) is None
    assert out_of_descriptors_hint(ICE_TIMEOUT, None) is None
    assert out_of_descriptors_hint("401 Unauthorized", (10, 20_000)) is None


def test_usage_counts_this_process() -> None:
    usage = descriptor_usage()
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        assert usage is None
        return
    assert usage is not None
    in_use, limit = usage
    assert limit == soft
    with open(os.devnull) as _:
        assert descriptor_usage() == (in_use + 1, soft)


def test_usage_when_even_listing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # The listing needs a descriptor itself: when none is left, all are in use.
    def no_descriptor_left(path: str) -> list[str]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "listdir", no_descriptor_left)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert descriptor_usage() == (None if soft == resource.RLIM_INFINITY else (soft, soft))
