"""Hypothesis against the real stack: cancellation schedules and bad input (both backends).

* Cancellation: schedules of participant/data operations (and joins) run under random
  ``move_on_after`` deadlines of 0-50 ms; afterwards, once the late callbacks have drained, no
  waiter, bound handle or live handle is left, and the process is still alive.
* Bad input: wrong types, empty and huge values, lone surrogates, NaN/inf and odd frame sizes
  raise ``TypeError``/``ValueError``/``LiveKitError`` and never crash; the room keeps working.
  Inputs that reach the native core's media code run in a child process, so a crash shows up as
  a dead child rather than a dead test run.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import lkanyio
from _util import collect_and_assert_no_leaks

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

TokenFactory = Callable[..., str]

DRAIN_BOUND = 20.0
"""How long late callbacks (and the leaving of rooms whose join was cancelled) may take to
arrive: a hang guard."""

_FIXTURES_ARE_REUSED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking against the real server: each attempt replays a whole schedule on a live
    # room (a stuck drain costs DRAIN_BOUND per attempt; one shrink once took over 5 minutes).
    # The first failing schedule is reported as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)



async def _drained() -> None:
    """Wait until every late callback has arrived and every abandoned room has been left."""
    stats = lkanyio.statistics()
    with anyio.move_on_after(DRAIN_BOUND):
        while True:
            gc.collect()
            stats = lkanyio.statistics()
            if not (stats.late_handlers or stats.live_handles or stats.bound_handles):
                break
            await anyio.sleep(0.02)
    held = (stats.late_handlers, stats.live_handles, stats.bound_handles)
    if held != (0, 0, 0):
        from lkanyio._native._bridge import get_bridge

        late = [getattr(r, "__qualname__", repr(r)) for r in get_bridge()._core._receivers.values()]
        raise AssertionError(f"still held {DRAIN_BOUND} s after the room closed: {stats}; {late}")
    collect_and_assert_no_leaks()  # and freezes what is left: the next wait's collections are cheap


# -- cancellation schedules ---------------------------------------------------------------

OPERATIONS = (
    "publish_data",
    "set_metadata",
    "set_name",
    "set_attributes",
    "publish_dtmf",
    "connect",
    "data_track",
    "send_text",
    "rpc",
    "publish_audio",
)

_step = st.tuples(
    st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=3),  # run concurrently
    st.integers(min_value=0, max_value=50),  # deadline in ms
)
_schedule = st.lists(_step, min_size=1, max_size=5)


async def _run(op: str, room: lkanyio.Room, url: str, token: Callable[[], str], n: int) -> None:
    lp = room.local_participant
    if op == "publish_data":
        await lp.publish_data(f"packet {n}".encode(), topic="fuzz")
    elif op == "set_metadata":
        await lp.set_metadata(f"meta {n}")
    elif op == "set_name":
        await lp.set_name(f"name {n}")
    elif op == "set_attributes":
        await lp.set_attributes({"n": str(n)})
    elif op == "publish_dtmf":
        await lp.publish_dtmf(code=n % 16, digit="0123456789*#ABCD"[n % 16])
    elif op == "data_track":
        # Names are unique per publisher; a concurrent twin gets the duplicate-name error.
        try:
            async with await lp.publish_data_track(f"track {n}") as track:
                track.try_push(b"frame")
                await anyio.sleep(0.01)
        except lkanyio.DataTrackError:
            pass
    elif op == "send_text":
        await lp.send_text(f"text {n} " * 200, topic="fuzz")
    elif op == "rpc":
        # Nobody by that name: the call waits for the server's answer or its timeout.
        with contextlib.suppress(lkanyio.RpcError):
            await lp.perform_rpc(destination_identity="nobody", method="m", payload="p")
    elif op == "publish_audio":
        async with (
            lkanyio.AudioSource(48_000, 1) as source,
            lkanyio.LocalAudioTrack.create_audio_track(f"a{n}", source) as audio,
        ):
            publication = await lp.publish_track(audio)
            await source.capture_frame(
                lkanyio.AudioFrame(
                    bytes(960), sample_rate=48_000, num_channels=1, samples_per_channel=480
                )
            )
            await lp.unpublish_track(publication.sid)
    else:
        async with lkanyio.connect(url, token()):
            await anyio.sleep_forever()


@_FIXTURES_ARE_REUSED
@given(schedule=_schedule)
async def test_cancellation_schedules_leave_nothing_behind(
    server_info: Any, token_factory: TokenFactory, schedule: list[tuple[list[str], int]]
) -> None:
    room_name = f"fuzz-{uuid.uuid4().hex[:12]}"
    ghosts = iter(range(1_000))

    def ghost_token() -> str:
        return token_factory(f"ghost-{next(ghosts)}", room_name)

    async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
        for n, (ops, deadline_ms) in enumerate(schedule):
            with anyio.move_on_after(deadline_ms / 1000):
                async with anyio.create_task_group() as tg:
                    for op in ops:
                        tg.start_soon(_run, op, room, server_info.url, ghost_token, n)
            # A cancelled request withdraws its waiter at once.
            assert lkanyio.statistics().pending_requests == 0
        # Whatever was cancelled, the room still works.
        with anyio.fail_after(DRAIN_BOUND):
            await room.local_participant.publish_data(b"still alive")
            await room.local_participant.set_metadata("still alive")
    await _drained()


# -- bad input: media objects, offline, in a child process -----------------------------------

_MEDIA_CHILD = textwrap.dedent(
    """
    import json, math, resource, sys
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave a core dump
    # A runaway allocation aborts the child instead of pushing the machine into the OOM killer.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    import anyio
    from hypothesis import HealthCheck, given, settings, strategies as st
    import lkanyio

    CLEAR = (TypeError, ValueError, lkanyio.LiveKitError)
    tried = {"frame": 0, "source": 0, "resampler": 0, "accepted": 0}
    unclear = []

    numbers = st.one_of(
        st.sampled_from([0, 1, -1, 2, 8000, 48000, 2**31, 2**32, 2**63, 10**30]),
        st.integers(min_value=-10, max_value=200_000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.nan, math.inf, -math.inf, True, None, "48000", b"1"]),
    )
    small = st.one_of(st.integers(min_value=-2, max_value=8), numbers)
    data = st.one_of(
        st.binary(max_size=4000),
        st.integers(min_value=0, max_value=5000).map(bytes),
        st.sampled_from(["text", None, 12, [0, 1], memoryview(bytes(8))[::2], b"\\x00" * 3]),
    )

    def check(what, call):
        tried[what] += 1
        print(what, call.__code__.co_freevars,
              [repr(c.cell_contents)[:80] for c in (call.__closure__ or ())],
              file=sys.stderr, flush=True)
        try:
            result = call()
        except UnicodeError as exc:  # protobuf's, leaked: lkanyio must say ValueError
            unclear.append(f"{what}: {exc!r}")
            return None
        except CLEAR:
            return None
        except BaseException as exc:
            unclear.append(f"{what}: {exc!r}")
            return None
        tried["accepted"] += 1
        return result

    def frame(buf, rate, channels, spc):
        return lkanyio.AudioFrame(buf, sample_rate=rate, num_channels=channels,
                                  samples_per_channel=spc)

    SETTINGS = settings(max_examples=int(sys.argv[2]), deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))

    @SETTINGS
    @given(buf=data, rate=numbers, channels=small, spc=numbers)
    def frames(buf, rate, channels, spc):
        check("frame", lambda: frame(buf, rate, channels, spc))

    # The inputs that once aborted the native core (queue_size_ms not a multiple of 10 or
    # huge, 2**31 channels, resampling ratios so large its allocation fails) are refused by
    # lkanyio now, so the fuzz draws from the whole range: anything drawn must be refused or work.

    @SETTINGS
    @given(rate=numbers, channels=small, queue=numbers, spc=st.integers(0, 2000),
           frame_rate=numbers, frame_channels=small)
    def sources(rate, channels, queue, spc, frame_rate, frame_channels):
        async def use():
            source = check("source", lambda: lkanyio.AudioSource(rate, channels,
                                                                 queue_size_ms=queue))
            if source is None:
                return
            try:
                f = check("frame", lambda: frame(bytes(2 * spc * (frame_channels if
                          isinstance(frame_channels, int) and 0 < frame_channels < 9 else 1)),
                          frame_rate, frame_channels, spc))
                if f is not None:
                    with anyio.fail_after(10):
                        try:
                            await source.capture_frame(f)
                        except CLEAR:
                            pass
            finally:
                source.close()
        anyio.run(use, backend=sys.argv[1])

    @SETTINGS
    @given(rate_in=numbers, rate_out=numbers, channels=small, quality=small,
           spc=st.integers(0, 3000), frame_channels=small, frame_rate=numbers)
    def resamplers(rate_in, rate_out, channels, quality, spc, frame_channels, frame_rate):
        rs = check("resampler", lambda: lkanyio.AudioResampler(
            rate_in, rate_out, num_channels=channels, quality=quality))
        if rs is None:
            return
        with rs:
            n = frame_channels if isinstance(frame_channels, int) and 0 < frame_channels < 9 else 1
            f = check("frame", lambda: frame(bytes(2 * spc * n), frame_rate, frame_channels, spc))
            if f is not None:
                check("resampler", lambda: rs.push(f))
            check("resampler", rs.flush)

    # Good inputs first: they must be accepted (so "rejected" above means something).
    good = check("frame", lambda: frame(bytes(960), 48000, 1, 480))
    with check("resampler", lambda: lkanyio.AudioResampler(48000, 16000)) as rs:
        check("resampler", lambda: rs.push(good))
    check("source", lambda: lkanyio.AudioSource(48000, 1).close())
    assert tried["accepted"] == 4, (tried, unclear)
    frames()
    sources()
    resamplers()
    json.dump({"tried": tried, "unclear": unclear}, sys.stdout)
    """
)

MEDIA_EXAMPLES = 150
"""Examples per media entry point in the child (frames, sources, resamplers)."""


async def test_bad_media_input_never_crashes(anyio_backend: str) -> None:
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [sys.executable, "-c", _MEDIA_CHILD, anyio_backend, str(MEDIA_EXAMPLES)],
            check=False,
        )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"the child died ({done.returncode}):\n{stderr[-3000:]}"
    report = json.loads(done.stdout)
    assert report["unclear"] == [], report["unclear"][:10]
    tried = report["tried"]
    # Both rejected and accepted inputs were exercised (the check can tell them apart).
    assert tried["frame"] >= MEDIA_EXAMPLES, tried
    assert tried["resampler"] >= MEDIA_EXAMPLES, tried
    assert tried["accepted"] >= 4, tried


# -- known aborts: inputs that once killed the process are refused with ValueError ----------

_ABORT_CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    import anyio, lkanyio

    case = sys.argv[1]
    try:
        if case == "resampler-ratio":
            with lkanyio.AudioResampler(1, 100_000_000) as rs:
                rs.push(lkanyio.AudioFrame(bytes(960), sample_rate=1, num_channels=1,
                                           samples_per_channel=480))
        elif case == "resampler-huge-rates":
            lkanyio.AudioResampler(2**63, 2**63, num_channels=5).close()
        elif case == "source-channels":
            lkanyio.AudioSource(170939, 2**31, queue_size_ms=8000).close()
        else:
            queue = {"queue-not-10ms": 5, "queue-huge": 4_294_967_290}[case]
            lkanyio.AudioSource(48000, 1, queue_size_ms=queue).close()
    except ValueError as exc:
        print("refused:", exc)
    else:
        print("accepted")
    """
)


@pytest.mark.parametrize(
    "case",
    ["queue-not-10ms", "queue-huge", "source-channels", "resampler-ratio", "resampler-huge-rates"],
)
def test_known_native_aborts_are_refused(case: str) -> None:
    """Found by test_bad_media_input_never_crashes: each of these aborted the process (a Rust
    panic in libwebrtc's audio_source.rs, or an allocation failure in the resampler). Each now
    runs in its own process and must end in ValueError before the native core sees it."""
    done = subprocess.run(
        [sys.executable, "-c", _ABORT_CHILD, case], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith(b"refused:"), done.stdout


# -- bad input: the room's entry points, in process -----------------------------------------

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.sampled_from(
        [
            "",
            "\ud800",  # a lone surrogate: not encodable as UTF-8
            "ok\udfffok",
            "\x00",
            "x" * 70_000,
            b"\x00" * 70_000,
            ["alice", 3],
            {"k": None},
            {"\ud800": "v"},
            {"k": "\udc00"},
            object(),
            math.nan,
            -math.inf,
        ]
    ),
)

_CALLS = (
    "publish_data",
    "publish_data_topic",
    "publish_data_to",
    "publish_data_reliable",
    "set_metadata",
    "set_name",
    "set_attributes",
    "publish_dtmf_code",
    "publish_dtmf_digit",
    "publish_transcription",
    "events",
    "connect_url",
    "connect_token",
    "connect_options",
    "join_retries",
    "data_track_name",
    "data_track_push",
    "data_track_timestamp",
)


async def _call_with(room: lkanyio.Room, url: str, call: str, junk: Any) -> None:
    lp = room.local_participant
    if call == "publish_data":
        await lp.publish_data(junk)
    elif call == "publish_data_topic":
        await lp.publish_data(b"x", topic=junk)
    elif call == "publish_data_to":
        await lp.publish_data(b"x", destination_identities=junk)
    elif call == "publish_data_reliable":
        await lp.publish_data(b"x", reliable=junk)
    elif call == "set_metadata":
        await lp.set_metadata(junk)
    elif call == "set_name":
        await lp.set_name(junk)
    elif call == "set_attributes":
        await lp.set_attributes(junk)
    elif call == "publish_dtmf_code":
        await lp.publish_dtmf(code=junk, digit="1")
    elif call == "publish_dtmf_digit":
        await lp.publish_dtmf(code=1, digit=junk)
    elif call == "publish_transcription":
        await lp.publish_transcription(junk)
    elif call == "events":
        room.events(max_buffered=junk).close()
    elif call == "connect_url":
        lkanyio.connect(junk, "token")
    elif call == "connect_token":
        lkanyio.connect(url, junk)
    elif call == "connect_options":
        lkanyio.connect(url, "token", options=junk)
    elif call == "data_track_name":
        async with await lp.publish_data_track(junk):
            pass
    elif call in ("data_track_push", "data_track_timestamp"):
        async with await lp.publish_data_track("junk") as track:
            if call == "data_track_push":
                track.try_push(junk)
            else:
                track.try_push(b"x", user_timestamp=junk)
    else:
        lkanyio.connect(url, "token", options=lkanyio.RoomOptions(join_retries=junk))


@_FIXTURES_ARE_REUSED
@given(calls=st.lists(st.tuples(st.sampled_from(_CALLS), _junk), min_size=1, max_size=6))
@example(calls=[("publish_data_reliable", 2**63)])  # was an OverflowError from protobuf
async def test_bad_input_is_a_clear_error_and_the_room_keeps_working(
    server_info: Any, token_factory: TokenFactory, calls: list[tuple[str, Any]]
) -> None:
    room_name = f"junk-{uuid.uuid4().hex[:12]}"
    async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
        for call, junk in calls:
            with anyio.fail_after(DRAIN_BOUND):
                try:
                    await _call_with(room, server_info.url, call, junk)
                except (lkanyio.ConnectionLostError, UnicodeError):
                    raise  # a UnicodeError is protobuf's, leaked: lkanyio must say ValueError
                except (TypeError, ValueError, lkanyio.LiveKitError):
                    pass
        assert room.connected
        with anyio.fail_after(DRAIN_BOUND):
            await room.local_participant.publish_data(b"still alive")
            await room.local_participant.set_metadata("still alive")
    await _drained()
