"""The main job: two participants exchange data, metadata, DTMF and tones, and say what they saw.

Run it with ``./scripts/demo`` (or ``python -m lkanyio.demo``).  With no ``LIVEKIT_URL`` it starts a
local ``livekit-server`` inside a private network namespace (root needed, see ``lkanyio.testing``);
with ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET`` it uses that server.

Alice and Bob run the same code, each with its own :class:`Side` (what it sends):

1. join the room and wait until the other one is there;
2. send a greeting as a data packet (topic ``"chat"``);
3. once the other's greeting arrives (proof that it sees us too, so our changes reach it as
   events), set metadata, name and attributes, send a DTMF digit and publish a tone;
4. record what the other sent, measuring its tone's frequency;
5. having seen everything, say so (a ``"done"`` packet), and leave once the other has said it too.

Every line is labelled with the participant that saw it, and each side ends with a summary
line.  The whole exchange has a deadline (``--timeout``): whatever has not arrived by then is
named, and the exit status is 1 if anything is missing or wrong.
"""

from __future__ import annotations

import argparse
import cmath
import functools
import itertools
import math
import statistics
import sys
import uuid
from array import array
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Final, final

import anyio

import lkanyio
from lkanyio.testing import (
    LocalServer,
    ServerInfo,
    enter_private_netns,
    external_server_from_env,
    make_token,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from anyio.abc import TaskGroup
if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

SAMPLE_RATE: Final = 48_000
TONE_TOLERANCE_HZ: Final = 5.0
DEFAULT_TIMEOUT: Final = 60.0


@final
@dataclass(frozen=True)
class Side:
    """What one participant sends; the other expects exactly this."""

    identity: str
    greeting: str
    metadata: str
    name: str
    attributes: Mapping[str, str]
    dtmf: tuple[int, str]  # (code, digit)
    tone_hz: float


ALICE: Final = Side(
    identity="alice",
    greeting="hello from alice",
    metadata='{"mood": "curious"}',
    name="Alice L.",
    attributes={"role": "speaker"},
    dtmf=(1, "1"),
    tone_hz=440.0,
)
BOB: Final = Side(
    identity="bob",
    greeting="hi alice, bob here",
    metadata='{"mood": "cheerful"}',
    name="Bob B.",
    attributes={"role": "listener"},
    dtmf=(11, "#"),
    tone_hz=660.0,
)


@final
@dataclass
class Seen:
    """What one participant saw of the other (``None``: has not arrived)."""

    data: str | None = None
    metadata: str | None = None
    name: str | None = None
    attributes: dict[str, str] | None = None
    dtmf: tuple[int, str] | None = None
    tone: float | None = None  # its frequency, in Hz

    @classmethod
    def expected_from(cls, sender: Side) -> Seen:
        """What a participant should see of ``sender``."""
        return cls(
            sender.greeting,
            sender.metadata,
            sender.name,
            dict(sender.attributes),
            sender.dtmf,
            sender.tone_hz,
        )

    def complete(self) -> bool:
        """Whether everything has arrived (right or wrong)."""
        return all(getattr(self, f.name) is not None for f in fields(self))

    def problems(self, sender: Side) -> list[str]:
        """What is missing or differs from what ``sender`` sent (empty: all arrived intact)."""
        expected = Seen.expected_from(sender)
        found = []
        for f in fields(self):
            got, want = getattr(self, f.name), getattr(expected, f.name)
            if got is None:
                found.append(f"no {f.name} arrived")
            elif f.name == "tone":
                if abs(got - want) > TONE_TOLERANCE_HZ:
                    found.append(f"heard the tone at {got:.0f} Hz, not {want:.0f} Hz")
            elif got != want:
                found.append(f"{f.name} {got!r} instead of {want!r}")
        return found


@final
@dataclass
class Report:
    """One participant's side of the exchange."""

    me: Side
    peer: Side
    seen: Seen = field(default_factory=Seen)
    error: str | None = None  # why this side stopped early, if it did

    @property
    def problems(self) -> list[str]:
        """Everything that went wrong on this side (empty: it saw all the peer sent)."""
        return ([self.error] if self.error else []) + self.seen.problems(self.peer)

    def summary(self) -> str:
        """One line: all good, or what went wrong."""
        if not self.problems:
            items = ", ".join(f.name for f in fields(self.seen))
            return f"{self.me.identity}: OK, saw all {self.peer.identity} sent ({items})"
        return f"{self.me.identity}: FAILED: " + "; ".join(self.problems)


def _tone_frames(hz: float) -> list[lkanyio.AudioFrame]:
    """One second of a sine at half scale, in 10 ms frames (whole periods: it loops cleanly)."""
    per_frame = SAMPLE_RATE // 100
    frames = []
    for index in range(100):
        start = index * per_frame
        samples = array(
            "h",
            (
                int(16_000 * math.sin(2 * math.pi * hz * (start + i) / SAMPLE_RATE))
                for i in range(per_frame)
            ),
        )
        frames.append(
            lkanyio.AudioFrame(
                samples.tobytes(),
                sample_rate=SAMPLE_RATE,
                num_channels=1,
                samples_per_channel=per_frame,
            )
        )
    return frames


def dominant_frequency(samples: Sequence[int], sample_rate: int) -> float:
    """Frequency of the strongest component between 50 Hz and 2 kHz, to a fraction of a hertz.

    Judged over the last second.  First a 10 Hz scan over five 50 ms pieces (a response wide
    enough that a tone between two steps still shows) finds the strongest component; their
    median is the reference.  Then the tone is followed through blocks of whole reference
    periods (at least 2.5 ms each): every block's phase against the reference, and the median
    of the phase advance from one block to the next, gives the offset from the reference.

    A receiver starved of CPU conceals what is late: it plays a few milliseconds of silence or
    of a repeated period and then the tone resumes where it left off, so the tone's phase
    jumps (measured in a loaded run: 30 jumps of 4.4 periods in one second of a 440 Hz tone).
    A scan of whole windows reads such a second off pitch (425 Hz for that one; 434 and 667 in
    other runs); here each jump spoils only the block pair it falls in, and silent blocks are
    left out.  Pure Python: ~20 ms for a second of 48 kHz audio.
    """
    window = samples[-sample_rate:]
    if not window:
        return 0.0
    short = max(1, sample_rate // 20)
    coarse_step = max(1, sample_rate // 8_000)  # every 6th sample at 48 kHz: 4 kHz >= 2 x 2 kHz
    span = max(0, len(window) - short)
    starts = [k * span // 4 for k in range(5)]  # the first, the last and three between

    def coarse(start: int) -> int:
        piece = window[start : start + short]
        return max(range(50, 2001, 10), key=lambda hz: _power(piece, hz, sample_rate, coarse_step))

    around = sorted(map(coarse, starts))[2]
    step = max(1, sample_rate // 24_000)
    rate = sample_rate / step
    x = [float(v) for v in window[::step]]
    periods = math.ceil(around / 400)  # whole periods filling at least 2.5 ms
    block = max(2, round(periods * rate / around))
    reference = periods * rate / block  # exactly `periods` of it fill a block
    w = 2.0 * math.pi * reference / rate
    cos_w = [math.cos(w * n) for n in range(block)]
    sin_w = [-math.sin(w * n) for n in range(block)]
    phasors = [
        complex(
            sum(map(float.__mul__, x[i : i + block], cos_w)),
            sum(map(float.__mul__, x[i : i + block], sin_w)),
        )
        for i in range(0, len(x) - block + 1, block)
    ]
    if len(phasors) < 2:
        return float(around)
    floor = 0.25 * statistics.median(abs(p) for p in phasors)  # silent blocks: no phase
    advances = [
        cmath.phase(b * a.conjugate())
        for a, b in itertools.pairwise(phasors)
        if abs(a) > floor and abs(b) > floor
    ]
    if not advances:
        return float(around)
    return reference + statistics.median(advances) * rate / (2.0 * math.pi * block)


def _power(samples: Sequence[int], hz: float, sample_rate: int, step: int) -> float:
    """Squared magnitude of ``samples[::step]`` at ``hz`` (a Goertzel filter)."""
    c = 2.0 * math.cos(2.0 * math.pi * hz * step / sample_rate)
    s1 = s2 = 0.0
    for x in samples[::step]:
        s1, s2 = x + c * s1 - s2, s1
    return s1 * s1 + s2 * s2 - c * s1 * s2


@final
class _Participant:
    """One side of the exchange: it sends ``report.me`` and fills ``report.seen``."""

    def __init__(self, report: Report, say: Callable[[str], None]) -> None:
        self.me, self.peer, self.seen = report.me, report.peer, report.seen
        self.say = say
        self.peer_here = anyio.Event()  # the peer is in our room
        self.peer_greeted = anyio.Event()  # its greeting came: it sees us too
        self.seen_all = anyio.Event()  # everything the peer sends has arrived
        self.peer_done = anyio.Event()  # the peer has seen everything we send
        self.hearing = False

    async def run(self, server: ServerInfo, room_name: str) -> None:
        token = make_token(server, identity=self.me.identity, room=room_name)
        async with lkanyio.connect(server.url, token) as room, room.events() as events:
            self.say(f"joined room {room.name!r}")
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._listen, room, events, tg)
                lp = room.local_participant

                await self.peer_here.wait()
                await lp.publish_data(self.me.greeting, topic="chat")
                self.say(f"sent data {self.me.greeting!r}")

                await self.peer_greeted.wait()
                await lp.set_metadata(self.me.metadata)
                await lp.set_name(self.me.name)
                await lp.set_attributes(self.me.attributes)
                code, digit = self.me.dtmf
                await lp.publish_dtmf(code=code, digit=digit)
                self.say(f"set metadata, name and attributes; sent DTMF {digit!r}")
                tg.start_soon(self._play_tone, lp)

                await self.seen_all.wait()
                await lp.publish_data(b"done", topic="done")
                await self.peer_done.wait()
                tg.cancel_scope.cancel()  # stops the tone
        self.say("left the room")

    async def _listen(
        self,
        room: lkanyio.Room,
        events: lkanyio.EventStream[lkanyio.RoomEvent],
        tg: TaskGroup,
    ) -> None:
        peer, seen, say = self.peer.identity, self.seen, self.say
        if peer in room.remote_participants:  # joined before us: no ParticipantConnected
            self.peer_here.set()
        async for event in events:
            who = getattr(event, "participant", None)
            if who is not None and who.identity != peer:
                continue  # our own metadata, name and attributes changes come back too
            if isinstance(event, lkanyio.ParticipantConnected):
                say(f"saw {peer} join")
                self.peer_here.set()
            elif isinstance(event, lkanyio.DataReceived) and event.topic == "done":
                say(f"{peer} has seen everything")
                self.peer_done.set()
            elif isinstance(event, lkanyio.DataReceived):
                seen.data = event.data.decode()
                say(f"got data on {event.topic!r}: {seen.data!r}")
                self.peer_greeted.set()
            elif isinstance(event, lkanyio.ParticipantMetadataChanged):
                seen.metadata = event.metadata
                say(f"saw {peer}'s metadata become {seen.metadata}")
            elif isinstance(event, lkanyio.ParticipantNameChanged):
                seen.name = event.name
                say(f"saw {peer}'s name become {seen.name!r}")
            elif isinstance(event, lkanyio.ParticipantAttributesChanged):
                seen.attributes = dict(event.participant.attributes)
                say(f"saw {peer}'s attributes become {seen.attributes}")
            elif isinstance(event, lkanyio.SipDTMFReceived):
                seen.dtmf = (event.code, event.digit)
                say(f"got DTMF {event.digit!r} (code {event.code})")
            elif isinstance(event, lkanyio.TrackSubscribed) and not self.hearing:
                self.hearing = True
                say(f"subscribed to {peer}'s {event.publication.kind.name} track")
                tg.start_soon(self._hear_tone, event.track)
            self._check_seen_all()

    def _check_seen_all(self) -> None:
        if self.seen.complete() and not self.seen_all.is_set():
            self.say(f"has seen everything {self.peer.identity} sends")
            self.seen_all.set()

    async def _hear_tone(self, track: lkanyio.RemoteTrack) -> None:
        samples: list[int] = []
        async with lkanyio.AudioStream(track, sample_rate=SAMPLE_RATE) as stream:
            async for event in stream:
                if samples or any(event.frame.data):  # from the first sound on
                    samples.extend(event.frame.data)
                if len(samples) >= SAMPLE_RATE:  # one second
                    break
        # The check computes for ~20 ms (pure Python): keep it off the event loop.
        hz = await anyio.to_thread.run_sync(dominant_frequency, samples, SAMPLE_RATE)
        self.seen.tone = hz
        self.say(f"heard {self.peer.identity}'s tone at {hz:.0f} Hz")
        self._check_seen_all()

    async def _play_tone(self, lp: lkanyio.LocalParticipant) -> None:
        async with (
            lkanyio.AudioSource(SAMPLE_RATE, 1) as source,
            lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track,
        ):
            options = lkanyio.TrackPublishOptions(source=lkanyio.TrackSource.MICROPHONE)
            await lp.publish_track(track, options)
            self.say(f"playing a {self.me.tone_hz:.0f} Hz tone until the exchange ends")
            for frame in itertools.cycle(_tone_frames(self.me.tone_hz)):
                await source.capture_frame(frame)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def new_reports() -> list[Report]:
    """Empty reports for Alice and Bob (in that order), for :func:`run` to fill in."""
    return [Report(ALICE, BOB), Report(BOB, ALICE)]


async def run(
    server: ServerInfo, reports: Sequence[Report], *, say: Callable[[str], None] = print
) -> None:
    """Run one participant per report against ``server``, filling in what each one sees.

    Every event is passed to ``say`` as it happens, labelled with the side that saw it.  It
    returns when every side has seen everything or one side failed with a
    :class:`~lkanyio.LiveKitError` (recorded in its report: the others cannot finish without
    it).  To give up after a while, cancel it (``with anyio.move_on_after(60): ...``): the
    reports keep what arrived, and their ``problems`` name the rest.
    """
    room_name = f"demo-{uuid.uuid4().hex[:8]}"
    width = max(len(r.me.identity) for r in reports)

    async def side(report: Report, exchange: anyio.CancelScope) -> None:
        label = report.me.identity.ljust(width)
        participant = _Participant(report, lambda text: say(f"{label} | {text}"))
        try:
            await participant.run(server, room_name)
        except Exception as exc:
            errors = _leaves(exc)
            if not all(isinstance(e, lkanyio.LiveKitError) for e in errors):
                raise  # a bug, not a failed exchange: keep the traceback
            report.error = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            say(f"{label} | failed: {report.error}")
            exchange.cancel()

    async with anyio.create_task_group() as tg:
        for report in reports:
            tg.start_soon(side, report, tg.cancel_scope)


async def _exchange(server: ServerInfo, seconds: float) -> list[Report]:
    reports = new_reports()
    with anyio.move_on_after(seconds) as deadline:
        await run(server, reports)
    if deadline.cancelled_caught:
        print(f"gave up after {seconds:g} s: not everything arrived")
    return reports


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lkanyio.demo``: 0 if each side saw everything, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"give up after this many seconds (default {DEFAULT_TIMEOUT:g})",
        metavar="SECONDS",
    )
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        server = external_server_from_env()
        if server is None:
            node_ip = enter_private_netns()
            local = stack.enter_context(LocalServer(node_ip=node_ip))
            server = local.info
            print(f"started livekit-server at {server.url} in a private network namespace")
        else:
            print(f"using the server at {server.url}")
        reports = anyio.run(
            functools.partial(_exchange, server, args.timeout), backend=args.backend
        )
    stats = lkanyio.statistics()
    print(
        f"after leaving: {stats.pending_requests} pending requests, "
        f"{stats.bound_handles} routed handles, {stats.live_handles} live handles"
    )
    for report in reports:
        print(report.summary())
    return 0 if all(not report.problems for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
