"""Junk into every public entry point of a joined participant, in a child process; a peer
still hears it afterwards.

The fuzzed participant ("alice") runs in a child process (this file, run as a script), so an
input that aborts the native core shows up as a dead child rather than a dead test run.  The
test process holds the peer ("bob"): he publishes an audio track (alice gets a
``RemoteTrackPublication`` to fuzz) and serves an ``echo`` RPC.  Alice first feeds every entry
point a fixed list of bad values, then hypothesis draws more; each call must end in
``TypeError``, ``ValueError`` (not a ``UnicodeError``) or a ``LiveKitError``, or succeed, within
a bound.  Afterwards bob must receive a data packet alice sends and answer her RPC.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

import lkanyio

TokenFactory = Callable[..., str]

CALL_BOUND = 20.0
"""How long one fuzzed call may take (a hang guard)."""

CHILD_EXAMPLES = 60
"""Hypothesis examples in the child, each a list of up to 4 (call, junk) pairs, after the
fixed pass over every call."""

CHILD_BOUND = 600.0
"""How long the whole child may take (a hang guard, far above a normal run)."""

ALIVE_TOPIC = "alive"

# -- the junk -------------------------------------------------------------------------------

FIXED_JUNK: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**31,
    2**64,
    -(2**70),
    math.nan,
    -math.inf,
    1.5,
    "",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "ok\udfffok",
    "\x00",
    "x" * 70_000,
    b"\xff",
    b"\x00" * 70_000,
    bytearray(b"ab"),
    memoryview(bytes(8))[::2],
    ["alice", 3],
    ("bob",),
    {"k": None},
    {"\ud800": "v"},
    {"k": "\udc00"},
    object(),
)
"""Every call meets each of these once (so every entry point is covered in every run)."""


def _junk_strategy() -> Any:
    from hypothesis import strategies as st

    return st.one_of(
        st.sampled_from(FIXED_JUNK),
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.integers(min_value=-3, max_value=70_000),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.binary(max_size=64),
        st.lists(st.text(max_size=5), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    )


# -- the child: alice, fuzzed -----------------------------------------------------------------


@dataclass
class _Alice:
    """What the fuzzed calls work on."""

    url: str
    tokens: Callable[[str], str]
    room: lkanyio.Room
    e2ee_room: lkanyio.Room
    bob: lkanyio.RemoteParticipant
    bob_publication: lkanyio.RemoteTrackPublication
    audio_track: lkanyio.LocalAudioTrack
    video_track: lkanyio.LocalVideoTrack
    video_source: lkanyio.VideoSource
    data_track: lkanyio.LocalDataTrack
    guests: Iterator[int] = field(default_factory=lambda: iter(range(10**6)))

    @property
    def lp(self) -> lkanyio.LocalParticipant:
        return self.room.local_participant


async def _echo(data: lkanyio.RpcInvocationData) -> str:
    return data.payload


def _rgba(width: int = 4, height: int = 4) -> lkanyio.VideoFrame:
    data = bytes(width * height * 4)
    return lkanyio.VideoFrame(width, height, lkanyio.VideoBufferType.RGBA, data)


async def _join_guest(a: _Alice, options: lkanyio.RoomOptions) -> None:
    token = a.tokens(f"guest-{next(a.guests)}")
    async with lkanyio.connect(a.url, token, options=options):
        pass


async def _publish(a: _Alice, options: Any, kind: str = "audio") -> None:
    """Publish a fresh track (republishing one track makes the server queue it for seconds)."""
    async with contextlib.AsyncExitStack() as stack:
        track: lkanyio.LocalTrack
        if kind == "audio":
            audio = await stack.enter_async_context(lkanyio.AudioSource(48_000, 1))
            track = lkanyio.LocalAudioTrack.create_audio_track("fuzz-publish", audio)
        else:
            video = await stack.enter_async_context(lkanyio.VideoSource(16, 16))
            track = lkanyio.LocalVideoTrack.create_video_track("fuzz-publish", video)
        await stack.enter_async_context(track)
        publication = await a.lp.publish_track(track, options)
        await a.lp.unpublish_track(publication.sid)


async def _with_text_writer(a: _Alice, chunk: Any) -> None:
    async with a.lp.stream_text(topic="fuzz") as writer:
        await writer.write(chunk)


async def _with_byte_writer(a: _Alice, chunk: Any) -> None:
    async with a.lp.stream_bytes(topic="fuzz") as writer:
        await writer.write(chunk)


async def _rpc(a: _Alice, **overrides: Any) -> None:
    kwargs: dict[str, Any] = {
        "destination_identity": "bob",
        "method": "echo",
        "payload": "p",
        "response_timeout": 3.0,
    }
    await a.lp.perform_rpc(**{**kwargs, **overrides})


def _register(a: _Alice, method: Any, handler: Any) -> None:
    a.lp.register_rpc_method(method, handler)
    a.lp.unregister_rpc_method(method)


async def _concurrent_captures(junk: Any) -> None:
    """Captures racing on one queued source: the valid ones all play, the junk one is refused."""
    frame = lkanyio.AudioFrame.create(sample_rate=48_000, num_channels=1, samples_per_channel=480)
    refused: list[BaseException] = []

    async def capture_junk(source: lkanyio.AudioSource) -> None:
        try:
            await source.capture_frame(junk)
        except Exception as exc:  # judged below, outside the task group's wrapping
            refused.append(exc)

    async with lkanyio.AudioSource(48_000, 1, queue_size_ms=50) as source:
        async with anyio.create_task_group() as tg:
            for _ in range(8):  # more than the queue holds: they must take turns
                tg.start_soon(source.capture_frame, frame)
            tg.start_soon(capture_junk, source)
    if refused:
        raise refused[0]


async def _simulate_unless_a_kind(a: _Alice, junk: Any) -> None:
    """``simulate_scenario`` with junk; a real kind is skipped (it would end or move the room)."""
    if isinstance(junk, int) and junk in {kind.value for kind in lkanyio.SimulateScenario}:
        return
    await a.room.simulate_scenario(junk)


async def _closed_after(make: Callable[[], Any]) -> None:
    """Build a stream (or other closable object) and close it again."""
    made = make()
    made.close()
    await anyio.lowlevel.checkpoint()


def _apm(**options: Any) -> None:
    with lkanyio.AudioProcessingModule(**options):
        pass


def _apm_frame(frame: Any) -> None:
    with lkanyio.AudioProcessingModule(echo_cancellation=True, noise_suppression=True) as apm:
        apm.process_stream(frame)
        apm.process_reverse_stream(frame)


def _apm_delay(delay: Any) -> None:
    with lkanyio.AudioProcessingModule(echo_cancellation=True) as apm:
        apm.set_stream_delay_ms(delay)


def _frame_from(junk: Any) -> Any:
    """An AudioFrame whose format comes from ``junk`` when it can, else ``junk`` itself."""
    if isinstance(junk, int) and not isinstance(junk, bool) and 0 < junk <= 400_000:
        rate = junk - junk % 100 or 100
        return lkanyio.AudioFrame.create(
            sample_rate=rate, num_channels=1 + junk % 3, samples_per_channel=rate // 100
        )
    return junk


async def _video_source(**kwargs: Any) -> None:
    async with lkanyio.VideoSource(**{"width": 16, "height": 16, **kwargs}) as source:
        source.capture_frame(_rgba(16, 16))


def _calls() -> dict[str, Callable[[_Alice, Any], Awaitable[Any] | Any]]:
    """Every fuzzed entry point: name -> f(alice, junk) (sync or async)."""
    vq = lkanyio.VideoQuality
    calls: dict[str, Callable[[_Alice, Any], Awaitable[Any] | Any]] = {
        # RPC
        # Nobody of that name ("" and "\x00" get that far) is told only by the acknowledgement
        # not coming: at the native default of 7 s those two took 14 s of the child's ~21 s
        # (and ~0.5 CPU-s of idle rooms in it, more in the parent), measured; 1 s ends the
        # same refusal (CONNECTION_TIMEOUT) sooner.
        "rpc_destination": lambda a, j: _rpc(a, destination_identity=j, max_round_trip_latency=1.0),
        "rpc_method": lambda a, j: _rpc(a, method=j),
        "rpc_payload": lambda a, j: _rpc(a, payload=j),
        "rpc_timeout": lambda a, j: _rpc(a, response_timeout=j),
        "rpc_register_method": lambda a, j: _register(a, j, _echo),
        "rpc_register_handler": lambda a, j: _register(a, "fuzz", j),
        "rpc_unregister": lambda a, j: a.lp.unregister_rpc_method(j),
        "rpc_error_code": lambda a, j: lkanyio.RpcError(j, "fuzz"),
        "rpc_error_message": lambda a, j: lkanyio.RpcError(1, j),
        "rpc_error_data": lambda a, j: lkanyio.RpcError(1, "fuzz", j),
        "audio_capture_concurrent": lambda a, j: _concurrent_captures(j),
        "simulate_scenario": lambda a, j: _simulate_unless_a_kind(a, j),
        "text_streams_max_bytes": lambda a, j: _closed_after(
            lambda: a.room.text_streams(max_buffered_bytes=j)
        ),
        "byte_streams_max_bytes": lambda a, j: _closed_after(
            lambda: a.room.byte_streams(max_buffered_bytes=j)
        ),
        # data streams
        "send_text": lambda a, j: a.lp.send_text(j),
        "send_text_topic": lambda a, j: a.lp.send_text("x", topic=j),
        "send_text_attributes": lambda a, j: a.lp.send_text("x", attributes=j),
        "send_text_to": lambda a, j: a.lp.send_text("x", destination_identities=j),
        "send_bytes": lambda a, j: a.lp.send_bytes(j),
        "send_bytes_name": lambda a, j: a.lp.send_bytes(b"x", name=j),
        "send_bytes_mime_type": lambda a, j: a.lp.send_bytes(b"x", mime_type=j),
        "send_bytes_attributes": lambda a, j: a.lp.send_bytes(b"x", attributes=j),
        "send_bytes_to": lambda a, j: a.lp.send_bytes(b"x", destination_identities=j),
        "send_file": lambda a, j: a.lp.send_file(j),
        "stream_text_topic": lambda a, j: _closed_stream_writer(a.lp.stream_text(topic=j)),
        "stream_text_to": lambda a, j: _closed_stream_writer(
            a.lp.stream_text(destination_identities=j)
        ),
        "stream_text_write": _with_text_writer,
        "stream_bytes_name": lambda a, j: _closed_stream_writer(a.lp.stream_bytes(name=j)),
        "stream_bytes_mime_type": lambda a, j: _closed_stream_writer(
            a.lp.stream_bytes(mime_type=j)
        ),
        "stream_bytes_attributes": lambda a, j: _closed_stream_writer(
            a.lp.stream_bytes(attributes=j)
        ),
        "stream_bytes_write": _with_byte_writer,
        "text_streams_topic": lambda a, j: a.room.text_streams(j).close(),
        "byte_streams_topic": lambda a, j: a.room.byte_streams(j).close(),
        # tracks and publications
        "publish_track": lambda a, j: a.lp.publish_track(j),
        "publish_options": lambda a, j: _publish(a, j),
        "publish_source": lambda a, j: _publish(a, lkanyio.TrackPublishOptions(source=j)),
        "publish_dtx": lambda a, j: _publish(a, lkanyio.TrackPublishOptions(dtx=j)),
        "publish_red": lambda a, j: _publish(a, lkanyio.TrackPublishOptions(red=j)),
        "publish_simulcast": lambda a, j: _publish(
            a, lkanyio.TrackPublishOptions(simulcast=j), "video"
        ),
        "publish_stream": lambda a, j: _publish(a, lkanyio.TrackPublishOptions(stream=j)),
        "publish_audio_bitrate": lambda a, j: _publish(
            a, lkanyio.TrackPublishOptions(audio_encoding=lkanyio.AudioEncoding(max_bitrate=j))
        ),
        "publish_video_bitrate": lambda a, j: _publish(
            a,
            lkanyio.TrackPublishOptions(
                video_encoding=lkanyio.VideoEncoding(max_bitrate=j, max_framerate=30.0)
            ),
            "video",
        ),
        "publish_video_framerate": lambda a, j: _publish(
            a,
            lkanyio.TrackPublishOptions(
                video_encoding=lkanyio.VideoEncoding(max_bitrate=500_000, max_framerate=j)
            ),
            "video",
        ),
        "unpublish_track": lambda a, j: a.lp.unpublish_track(j),
        "mute_unmute": lambda a, j: (a.audio_track.mute(), a.audio_track.unmute()),
        "remote_set_subscribed": lambda a, j: a.bob_publication.set_subscribed(j),
        "remote_set_enabled": lambda a, j: a.bob_publication.set_enabled(j),
        "remote_set_video_quality": lambda a, j: a.bob_publication.set_video_quality(j),
        "remote_video_quality_enum": lambda a, j: a.bob_publication.set_video_quality(
            vq.HIGH if j else vq.LOW
        ),
        "remote_video_width": lambda a, j: a.bob_publication.set_video_dimensions(
            width=j, height=480
        ),
        "remote_video_height": lambda a, j: a.bob_publication.set_video_dimensions(
            width=640, height=j
        ),
        "data_track_push": lambda a, j: a.data_track.try_push(j),
        "data_track_timestamp": lambda a, j: a.data_track.try_push(b"x", user_timestamp=j),
        # the key manager of a room joined with end-to-end encryption
        "e2ee_set_enabled": lambda a, j: a.e2ee_room.e2ee.set_enabled(j),
        "e2ee_set_shared_key": lambda a, j: a.e2ee_room.e2ee.set_shared_key(j),
        "e2ee_set_shared_key_index": lambda a, j: a.e2ee_room.e2ee.set_shared_key(
            b"k", key_index=j
        ),
        "e2ee_ratchet_shared_key": lambda a, j: a.e2ee_room.e2ee.ratchet_shared_key(key_index=j),
        "e2ee_get_shared_key": lambda a, j: a.e2ee_room.e2ee.get_shared_key(key_index=j),
        "e2ee_set_key_identity": lambda a, j: a.e2ee_room.e2ee.set_key(j, b"k"),
        "e2ee_set_key": lambda a, j: a.e2ee_room.e2ee.set_key("bob", j),
        "e2ee_set_key_index": lambda a, j: a.e2ee_room.e2ee.set_key("bob", b"k", key_index=j),
        "e2ee_ratchet_key": lambda a, j: a.e2ee_room.e2ee.ratchet_key(j),
        "e2ee_ratchet_key_index": lambda a, j: a.e2ee_room.e2ee.ratchet_key("bob", key_index=j),
        "e2ee_get_key": lambda a, j: a.e2ee_room.e2ee.get_key(j),
        "e2ee_get_key_index": lambda a, j: a.e2ee_room.e2ee.get_key("bob", key_index=j),
        # media streams (they build native objects: this is why alice is a child process)
        "audio_stream_track": lambda a, j: _closed_after(lambda: lkanyio.AudioStream(j)),
        "video_stream_track": lambda a, j: _closed_after(lambda: lkanyio.VideoStream(j)),
        "audio_from_participant": lambda a, j: _closed_after(
            lambda: lkanyio.AudioStream.from_participant(j)
        ),
        "audio_from_participant_source": lambda a, j: _closed_after(
            lambda: lkanyio.AudioStream.from_participant(a.bob, j)
        ),
        "video_from_participant": lambda a, j: _closed_after(
            lambda: lkanyio.VideoStream.from_participant(j)
        ),
        "video_from_participant_source": lambda a, j: _closed_after(
            lambda: lkanyio.VideoStream.from_participant(a.bob, j)
        ),
        # audio processing
        "apm_frame": lambda a, j: _apm_frame(_frame_from(j)),
        "apm_delay": lambda a, j: _apm_delay(j),
        # video frames and sources: construction and capture only (not convert)
        "video_frame_width": lambda a, j: lkanyio.VideoFrame(
            j, 2, lkanyio.VideoBufferType.RGBA, bytes(16)
        ),
        "video_frame_height": lambda a, j: lkanyio.VideoFrame(
            2, j, lkanyio.VideoBufferType.RGBA, bytes(16)
        ),
        "video_frame_type": lambda a, j: lkanyio.VideoFrame(2, 2, j, bytes(16)),
        "video_frame_data": lambda a, j: lkanyio.VideoFrame(2, 2, lkanyio.VideoBufferType.RGBA, j),
        "video_source_width": lambda a, j: _video_source(width=j),
        "video_source_height": lambda a, j: _video_source(height=j),
        "video_source_screencast": lambda a, j: _video_source(is_screencast=j),
        "video_capture_frame": lambda a, j: a.video_source.capture_frame(j),
        "video_capture_timestamp": lambda a, j: a.video_source.capture_frame(
            _rgba(), timestamp_us=j
        ),
        "video_capture_rotation": lambda a, j: a.video_source.capture_frame(_rgba(), rotation=j),
    }
    for option in ("sample_rate", "num_channels", "frame_size_ms", "max_buffered", "overflow"):
        calls[f"audio_stream_{option}"] = lambda a, j, o=option: _closed_after(
            lambda: lkanyio.AudioStream(a.audio_track, **{o: j})
        )
        calls[f"audio_from_participant_{option}"] = lambda a, j, o=option: _closed_after(
            lambda: lkanyio.AudioStream.from_participant(a.bob, **{o: j})
        )
    for option in ("format", "max_buffered", "overflow"):
        calls[f"video_stream_{option}"] = lambda a, j, o=option: _closed_after(
            lambda: lkanyio.VideoStream(a.video_track, **{o: j})
        )
        calls[f"video_from_participant_{option}"] = lambda a, j, o=option: _closed_after(
            lambda: lkanyio.VideoStream.from_participant(a.bob, **{o: j})
        )
    for option in (
        "echo_cancellation",
        "noise_suppression",
        "high_pass_filter",
        "auto_gain_control",
    ):
        calls[f"apm_{option}"] = lambda a, j, o=option: _apm(**{o: j})
    # joining with odd options (a guest joins the same room when they are accepted)
    for option in ("auto_subscribe", "dynacast", "adaptive_stream", "e2ee"):
        calls[f"room_{option}"] = lambda a, j, o=option: _join_guest(
            a, lkanyio.RoomOptions(**{o: j})
        )
    for option in (
        "shared_key",
        "ratchet_salt",
        "ratchet_window_size",
        "failure_tolerance",
        "key_ring_size",
        "key_derivation_function",
    ):
        calls[f"e2ee_{option}"] = lambda a, j, o=option: _join_guest(
            a, lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(**{o: j}))
        )
    return calls


async def _closed_stream_writer(writer: Any) -> None:
    async with writer:
        pass


def _verdict(exc: BaseException) -> str | None:
    """``None`` if ``exc`` is a clear refusal, else what is wrong with it."""
    if isinstance(exc, lkanyio.ConnectionLostError):
        return "the room was lost"
    if isinstance(exc, UnicodeError):
        return "a UnicodeError leaked (lone surrogates must be a clear ValueError)"
    if isinstance(exc, (TypeError, ValueError, lkanyio.LiveKitError)):
        return None
    return "not TypeError/ValueError/LiveKitError"


@dataclass
class _Tally:
    tried: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    unclear: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


async def _attempt(a: _Alice, tally: _Tally, name: str, call: Any, junk: Any) -> None:
    shown = repr(junk)[:60]
    tally.tried[name] = tally.tried.get(name, 0) + 1
    started = time.monotonic()
    print(f"{name}: {shown}", file=sys.stderr, flush=True)  # the last line names a killer
    try:
        with anyio.fail_after(CALL_BOUND):
            result = call(a, junk)
            if hasattr(result, "__await__"):
                await result
    except TimeoutError:
        tally.unclear.append(f"{name}({shown}): hung for {CALL_BOUND} s")
    except Exception as exc:
        problem = _verdict(exc)
        if problem is not None:
            tally.unclear.append(f"{name}({shown}): {problem}: {exc!r}"[:300])
    else:
        tally.accepted[name] = tally.accepted.get(name, 0) + 1
    tally.seconds[name] = tally.seconds.get(name, 0.0) + time.monotonic() - started
    if not a.room.connected:
        raise RuntimeError(f"alice's room is gone after {name}({shown})")


def _run_hypothesis(a: _Alice, tally: _Tally, calls: dict[str, Any], examples: int) -> None:
    """Runs in a worker thread: hypothesis is synchronous, each call runs in the event loop."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # no shrinking: every bad call is recorded as found
    )
    @given(st.lists(st.tuples(st.sampled_from(sorted(calls)), _junk_strategy()), max_size=4))
    def fuzz(pairs: list[tuple[str, Any]]) -> None:
        for name, junk in pairs:
            anyio.from_thread.run(_attempt, a, tally, name, calls[name], junk)

    fuzz()


async def _wait_for(predicate: Callable[[], Any], what: str) -> Any:
    with anyio.move_on_after(CALL_BOUND):
        while not (found := predicate()):
            await anyio.sleep(0.02)
        return found
    raise AssertionError(f"no {what} after {CALL_BOUND} s")


async def _alice(setup: dict[str, Any]) -> dict[str, Any]:
    from lkanyio.testing import ServerInfo, make_token

    info = ServerInfo(**setup["server"])

    def tokens(identity: str, room: str = setup["room"]) -> str:
        return make_token(info, identity=identity, room=room)

    calls = _calls()
    tally = _Tally()
    e2ee = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=b"fuzz key"))
    async with (
        lkanyio.connect(info.url, tokens("alice")) as room,
        lkanyio.connect(info.url, tokens("alice", setup["e2ee_room"]), options=e2ee) as e2ee_room,
        lkanyio.AudioSource(48_000, 1) as audio_source,
        lkanyio.LocalAudioTrack.create_audio_track("fuzz-audio", audio_source) as audio_track,
        lkanyio.VideoSource(16, 16) as video_source,
        lkanyio.LocalVideoTrack.create_video_track("fuzz-video", video_source) as video_track,
        await room.local_participant.publish_data_track("fuzz-data") as data_track,
    ):
        bob = await _wait_for(lambda: room.remote_participants.get("bob"), "bob")
        publication = await _wait_for(
            lambda: next(iter(bob.track_publications.values()), None), "bob's track"
        )
        a = _Alice(
            url=info.url,
            tokens=tokens,
            room=room,
            e2ee_room=e2ee_room,
            bob=bob,
            bob_publication=publication,
            audio_track=audio_track,
            video_track=video_track,
            video_source=video_source,
            data_track=data_track,
        )
        for name, call in calls.items():
            for junk in FIXED_JUNK:
                await _attempt(a, tally, name, call, junk)
        await anyio.to_thread.run_sync(_run_hypothesis, a, tally, calls, setup["examples"])

        # The room still works: bob receives this packet (the parent checks), and RPC works.
        with anyio.fail_after(CALL_BOUND):
            await room.local_participant.publish_data(b"still alive", topic=ALIVE_TOPIC)
            echoed = await room.local_participant.perform_rpc(
                destination_identity="bob", method="echo", payload="still alive"
            )
    gc.collect()
    return {
        "tried": tally.tried,
        "accepted": tally.accepted,
        "unclear": tally.unclear,
        "slowest": sorted(tally.seconds.items(), key=lambda kv: -kv[1])[:8],
        "echoed": echoed,
        "held_after_leaving": [
            lkanyio.statistics().pending_requests,
            lkanyio.statistics().bound_handles,
            lkanyio.statistics().live_handles,
        ],
    }


def _child_main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave a core dump
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # abort, don't OOM the machine
    setup = json.loads(sys.stdin.read())
    report = anyio.run(_alice, setup, backend=setup["backend"])
    print(json.dumps(report), flush=True)


# -- the test: bob, in process --------------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_junk_everywhere_then_a_peer_still_hears_us(
    server_info: Any, token_factory: TokenFactory, anyio_backend: str
) -> None:
    room_name = f"junk-more-{uuid.uuid4().hex[:12]}"
    setup = {
        "backend": anyio_backend,
        "room": room_name,
        "e2ee_room": f"{room_name}-e2ee",
        "examples": CHILD_EXAMPLES,
        "server": {
            "url": server_info.url,
            "http_url": server_info.http_url,
            "api_key": server_info.api_key,
            "api_secret": server_info.api_secret,
        },
    }
    heard: list[lkanyio.DataReceived] = []
    async with (
        lkanyio.connect(server_info.url, token_factory("bob", room_name)) as bob,
        bob.events(max_buffered=100_000) as events,
        lkanyio.AudioSource(48_000, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("bob-audio", source) as track,
    ):
        bob.local_participant.register_rpc_method("echo", _echo)
        await bob.local_participant.publish_track(track)

        async def listen() -> None:
            async for event in events:
                if isinstance(event, lkanyio.DataReceived) and event.topic == ALIVE_TOPIC:
                    heard.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            with anyio.fail_after(CHILD_BOUND):
                done = await anyio.run_process(
                    [sys.executable, __file__],
                    input=json.dumps(setup).encode(),
                    check=False,
                )
            stderr = done.stderr.decode(errors="replace")
            assert done.returncode == 0, f"alice died ({done.returncode}):\n{stderr[-3000:]}"
            report = json.loads(done.stdout)
            print(json.dumps({"slowest": report["slowest"]}))
            # The packet was sent before alice left; give it a bound to arrive.
            with anyio.fail_after(CALL_BOUND):
                while not heard:
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    assert report["unclear"] == [], "\n".join(report["unclear"][:40])
    assert [(e.data, e.participant and e.participant.identity) for e in heard] == [
        (b"still alive", "alice")
    ]
    assert report["echoed"] == "still alive"
    assert report["held_after_leaving"] == [0, 0, 0], report["held_after_leaving"]
    calls = _calls()
    # Every call was made with every fixed value, and the good paths were taken too (the
    # fuzz can tell a refusal from an acceptance).
    made = {name: report["tried"].get(name, 0) for name in calls}
    assert all(n >= len(FIXED_JUNK) for n in made.values()), made
    assert sum(report["accepted"].values()) > 0, report


_UNPUBLISH_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import anyio, lkanyio

async def main():
    async with lkanyio.connect(sys.argv[1], sys.argv[2]) as room:
        try:
            await room.local_participant.unpublish_track("not-a-sid")
        except (TypeError, ValueError, lkanyio.LiveKitError) as exc:
            print("refused:", type(exc).__name__)

anyio.run(main)
"""


def test_unpublish_of_a_non_sid_is_refused(server_info: Any, token_factory: TokenFactory) -> None:
    """Found by test_junk_everywhere_then_a_peer_still_hears_us: the native core aborted
    (livekit-ffi room.rs unwraps TrackSid::try_from).  In a child, in case it ever does again."""
    room = f"unpublish-{uuid.uuid4().hex[:12]}"
    done = subprocess.run(
        [sys.executable, "-c", _UNPUBLISH_CHILD, server_info.url, token_factory("alice", room)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.startswith(b"refused:"), done.stdout


async def test_rpc_handler_returning_a_lone_surrogate_is_an_application_error(
    server_info: Any, token_factory: TokenFactory
) -> None:
    """The answer used to reach protobuf unchecked: UnicodeEncodeError in the room's task
    group ended the handler's room.  Now the caller gets APPLICATION_ERROR, both rooms live."""
    room_name = f"rpc-surrogate-{uuid.uuid4().hex[:12]}"

    async def bad(_data: lkanyio.RpcInvocationData) -> str:
        return "bad \ud800 answer"

    async with (
        lkanyio.connect(server_info.url, token_factory("bob", room_name)) as bob,
        lkanyio.connect(server_info.url, token_factory("alice", room_name)) as alice,
    ):
        bob.local_participant.register_rpc_method("bad", bad)
        bob.local_participant.register_rpc_method("echo", _echo)
        await _wait_for(lambda: alice.remote_participants.get("bob"), "bob")
        with anyio.fail_after(CALL_BOUND):
            with pytest.raises(lkanyio.RpcError) as caught:
                await alice.local_participant.perform_rpc(
                    destination_identity="bob", method="bad", payload=""
                )
            assert caught.value.code == lkanyio.RpcError.APPLICATION_ERROR
            assert "surrogate" in caught.value.message
            answer = await alice.local_participant.perform_rpc(
                destination_identity="bob", method="echo", payload="after"
            )
        assert answer == "after"
        assert bob.connected


if __name__ == "__main__":
    _child_main()
