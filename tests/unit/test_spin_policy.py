"""Which lone requests spin on the shim's queue for their callback (the sans-IO spin policy).

The policy is pure Python, driven here by explicit outcomes.  The last two tests drive the real
bridge: a real audio source whose full queue answers each capture only when it plays the next
10 ms out (so a spin for it always misses), and a loop of lone requests that must each let the
event loop run.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import anyio
import pytest
import sniffio
from hypothesis import given, settings
from hypothesis import strategies as st

from _util import examples
from lkanyio import AudioFrame, AudioSource, LocalAudioTrack, NativeError
from lkanyio._core._spin import MAX_BACKOFF, SpinPolicy
from lkanyio._native._bridge import get_bridge


def _run(policy: SpinPolicy, kind: str, outcomes: list[bool]) -> list[bool]:
    """Ask for each request of ``kind`` whether it spins; a spin gets the next outcome."""
    spun = []
    it = iter(outcomes)
    for _ in range(len(outcomes)):
        spins = policy.should_spin(kind)
        spun.append(spins)
        if spins:
            policy.record(kind, next(it))
    return spun


def test_a_kind_whose_spins_catch_their_callback_always_spins() -> None:
    policy = SpinPolicy()
    assert _run(policy, "get_stats", [True] * 1000) == [True] * 1000
    assert (policy.spins, policy.caught, policy.skipped) == (1000, 1000, 0)


def test_a_kind_whose_spins_always_miss_backs_off_exponentially_to_one_in_64() -> None:
    policy = SpinPolicy()
    spun = _run(policy, "capture_audio_frame", [False] * 1000)
    at = [i for i, s in enumerate(spun) if s]
    assert at[:7] == [0, 2, 6, 14, 30, 62, 126]  # gaps 1, 3, 7, 15, 31, 63, then 63
    assert all(b - a == 2**MAX_BACKOFF for a, b in pairwise(at[5:]))
    assert policy.spins == len(at) < 25
    assert policy.skipped == 1000 - len(at)
    assert policy.backoff("capture_audio_frame") == MAX_BACKOFF


def test_one_caught_spin_resets_the_backoff() -> None:
    policy = SpinPolicy()
    _run(policy, "k", [False] * 100)
    while not policy.should_spin("k"):  # the probe comes within 64 requests
        pass
    policy.record("k", True)
    assert policy.backoff("k") == 0
    assert _run(policy, "k", [True] * 10) == [True] * 10


def test_kinds_back_off_independently() -> None:
    policy = SpinPolicy()
    _run(policy, "slow", [False] * 50)
    assert policy.backoff("slow") > 0
    assert _run(policy, "fast", [True] * 50) == [True] * 50
    assert policy.backoff("fast") == 0


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=300))
def test_never_more_than_63_requests_in_a_row_go_without_a_spin(
    requests: list[tuple[str, bool]],
) -> None:
    """Whatever the outcomes, a kind probes again within 2**MAX_BACKOFF requests, and a spin
    that caught its callback makes the next request of its kind spin."""
    policy = SpinPolicy()
    unspun = dict.fromkeys("abc", 0)
    last_caught = dict.fromkeys("abc", True)
    for kind, caught in requests:
        spins = policy.should_spin(kind)
        if last_caught[kind]:
            assert spins
        if spins:
            unspun[kind] = 0
            policy.record(kind, caught)
            last_caught[kind] = caught
        else:
            unspun[kind] += 1
            assert unspun[kind] < 2**MAX_BACKOFF
    assert policy.spins + policy.skipped == len(requests)
    assert policy.caught <= policy.spins


@pytest.mark.anyio
async def test_captures_into_a_full_audio_queue_stop_spinning() -> None:
    """A capture into a full queue is answered when the source plays the next 10 ms out, never
    within the 50 µs spin.  Every such capture spun for nothing before the policy (on trio
    60,596 drains per 1,000 frames against 3,135 with it).  Now the kind backs off: counted here
    as the captures during which the bridge drained the queue itself (the spin's drains; the
    loop's own go through its driver).  It printed ``assert 40 <= 20`` before the policy.
    """
    bridge = get_bridge()
    bridge.ensure_driver()
    sent = 0
    spun: set[int] = set()
    real_send, real_pump = bridge._send, bridge._pump

    def send(request: object, which: str) -> None:
        nonlocal sent
        sent += 1
        real_send(request, which)  # type: ignore[arg-type]

    def pump() -> None:
        spun.add(sent)
        real_pump()

    frame = AudioFrame(bytes(960), sample_rate=48_000, num_channels=1, samples_per_channel=480)
    with pytest.MonkeyPatch.context() as patch:
        async with (
            AudioSource(48_000, 1, queue_size_ms=20) as source,
            LocalAudioTrack.create_audio_track("t", source),
        ):
            with anyio.fail_after(20):
                for _ in range(5):  # fill the queue: from here on each capture waits its turn
                    await source.capture_frame(frame)
                patch.setattr(bridge, "_send", send)
                patch.setattr(bridge, "_pump", pump)
                for _ in range(40):
                    await source.capture_frame(frame)
    assert sent == 40
    # ~5 probes; a capture answered at once (the loop starved past a 10 ms tick) resets the
    # backoff and adds a few: 25 leaves room for several such episodes, and none for the 40.
    assert len(spun) <= 25, f"{len(spun)} of 40 captures into a full queue spun"


class _AlwaysSpin:
    """A spin policy that lets every lone request spin, and counts what the spins caught."""

    def __init__(self) -> None:
        self.caught = 0

    def should_spin(self, kind: str) -> bool:
        return True

    def record(self, kind: str, caught: bool) -> None:
        self.caught += caught


@pytest.mark.anyio
async def test_a_request_answered_within_its_spin_still_lets_the_loop_run() -> None:
    """A lone request spins for its answer after its schedule point, taken while the native
    core works on it: every request, however it was answered (by the spin, during the schedule
    point, or parked), ran the event loop at least once (counted as the loop's waits for I/O:
    asyncio's selector, trio's instrument), so timers and I/O are never starved by a loop of
    fast requests.  Without that schedule point every request the spin answered failed this
    (199 of 199); on a machine so loaded that no callback comes within the spin, the requests
    park and the test still checks that they yield."""
    bridge = get_bridge()
    policy = _AlwaysSpin()  # no backoff: under load a miss must not stop the next spins
    waits = drains = 0

    def count() -> None:
        nonlocal waits
        waits += 1

    real_pump = bridge._pump

    def pump() -> None:
        nonlocal drains
        drains += 1
        real_pump()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bridge, "_spin", policy)
        patch.setattr(bridge, "_pump", pump)  # the spin's drains (the loop's own bypass it)
        if sniffio.current_async_library() == "trio":
            import trio

            class Waits(trio.abc.Instrument):
                def before_io_wait(self, timeout: float) -> None:
                    count()

            instrument = Waits()
            trio.lowlevel.add_instrument(instrument)
        else:
            import asyncio

            selector: Any = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
            select = selector.select
            patch.setattr(selector, "select", lambda timeout=None: (count(), select(timeout))[1])
        try:
            async with (
                AudioSource(48_000, 1) as source,
                LocalAudioTrack.create_audio_track("t", source) as track,
            ):
                by_spin = unyielded = 0
                for _ in range(200):
                    caught, before, drained = policy.caught, waits, drains
                    with pytest.raises(NativeError):  # an unpublished track has no stats
                        await track.get_stats()
                    by_spin += policy.caught > caught and drains > drained
                    unyielded += waits == before
        finally:
            if sniffio.current_async_library() == "trio":
                trio.lowlevel.remove_instrument(instrument)
    assert unyielded == 0, f"{unyielded} of 200 ({by_spin} answered by the spin) never yielded"
