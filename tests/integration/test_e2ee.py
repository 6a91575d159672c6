"""End-to-end encryption on a real server (both backends)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import textwrap
from typing import Any

import anyio
import pytest

import lkanyio
from _media import RATE, dominant_frequency, tone_share
from _util import EVENT_WAIT, TokenFactory
from test_audio_server import publish_tone

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

KEY = b"correct horse battery staple"


OK = lkanyio.EncryptionState.OK
FAILED = lkanyio.EncryptionState.DECRYPTION_FAILED


async def _listen(
    events: lkanyio.EventStream[Any], states: list[Any], until: Any = None, *, who: str = ""
) -> list[int]:
    """Record E2EE states; return 3 s of the first subscribed track's samples.

    Afterwards it keeps recording states until ``until`` (a ``(identity, state)`` pair) has
    been seen, bounded only by the hang guard: the state change may trail the media by any
    amount on a loaded machine.  With no ``until`` it watches for 2 s more, for tests that
    assert a state never comes.
    """
    samples: list[int] = []
    subscribed = False
    try:
        with anyio.fail_after(EVENT_WAIT):
            async for event in events:
                if isinstance(event, lkanyio.E2EEStateChanged):
                    states.append((event.participant.identity, event.state))
                elif isinstance(event, lkanyio.TrackSubscribed):
                    subscribed = True
                    async with lkanyio.AudioStream(event.track, sample_rate=RATE) as stream:
                        async for frame_event in stream:
                            samples.extend(frame_event.frame.data)
                            if len(samples) >= RATE * 3:
                                break
                    break
    except TimeoutError as exc:  # say which wait it was: a bare TimeoutError once had nothing
        got = f"{len(samples)} samples" if subscribed else "no TrackSubscribed"
        raise AssertionError(f"{who}: {got} within {EVENT_WAIT} s; states: {states}") from exc
    if until is not None:
        with anyio.fail_after(EVENT_WAIT):
            async for event in events:
                if until in states:
                    break
                if isinstance(event, lkanyio.E2EEStateChanged):
                    states.append((event.participant.identity, event.state))
                    if until in states:
                        break
        return samples
    with anyio.move_on_after(2):  # an absence can only be watched for a while
        async for event in events:
            if isinstance(event, lkanyio.E2EEStateChanged):
                states.append((event.participant.identity, event.state))
    return samples


async def test_shared_key_decodes_and_a_wrong_key_gets_nothing(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    good = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=KEY))
    # failure_tolerance: with the default (-1) a wrong key yields silence but no state change.
    bad = lkanyio.RoomOptions(
        e2ee=lkanyio.E2EEOptions(shared_key=b"not the key", failure_tolerance=3)
    )
    url = server_info.url
    async with (
        lkanyio.connect(url, token_factory("alice", room_name), options=good) as alice,
        lkanyio.connect(url, token_factory("bob", room_name), options=good) as bob,
        lkanyio.connect(url, token_factory("carol", room_name), options=bad) as carol,
        bob.events() as bob_events,
        carol.events() as carol_events,
    ):
        bob_states: list[Any] = []
        carol_states: list[Any] = []
        heard: dict[str, list[int]] = {}

        async def listen(name: str, events: Any, states: list[Any], until: Any) -> None:
            heard[name] = await _listen(events, states, until, who=name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_tone, alice, 440.0, 5.0)
            tg.start_soon(listen, "bob", bob_events, bob_states, ("alice", OK))
            tg.start_soon(listen, "carol", carol_events, carol_states, ("alice", FAILED))

        assert abs(dominant_frequency(heard["bob"], RATE) - 440.0) <= 5.0
        assert ("alice", lkanyio.EncryptionState.OK) in bob_states
        # No plaintext reaches the wrong key.  What its decoder outputs varies from run to
        # run: silence, concealment noise (seen: peak 98) or noise decoded from ciphertext
        # (seen: peak 7,816), so the check is that none of it is the tone.
        assert heard["carol"]
        assert tone_share(heard["bob"], 440.0, pieces=True) > 0.5
        assert tone_share(heard["carol"], 440.0) < 0.05
        assert ("alice", lkanyio.EncryptionState.DECRYPTION_FAILED) in carol_states

        cryptors = bob.e2ee.frame_cryptors()
        assert [c.participant_identity for c in cryptors] == ["alice"]
        assert all(c.enabled for c in cryptors)


async def test_key_manager(server_info: Any, token_factory: TokenFactory, room_name: str) -> None:
    options = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=KEY))
    assert "horse" not in repr(options)
    async with lkanyio.connect(
        server_info.url, token_factory("alice", room_name), options=options
    ) as alice:
        manager = alice.e2ee
        assert manager.get_shared_key() == KEY
        ratcheted = manager.ratchet_shared_key()
        assert ratcheted
        assert ratcheted != KEY
        assert manager.get_shared_key() == ratcheted
        manager.set_shared_key(b"another key", key_index=1)
        assert manager.get_shared_key(key_index=1) == b"another key"
        with pytest.raises(ValueError, match="empty"):
            manager.set_shared_key(b"")
        with pytest.raises(TypeError):
            manager.set_shared_key("text")  # type: ignore[arg-type]
    async with lkanyio.connect(server_info.url, token_factory("bob", room_name)) as bob:
        with pytest.raises(lkanyio.LiveKitError, match="without end-to-end"):
            _ = bob.e2ee


ALICE_KEY = bytes(range(1, 33))
BOB_KEY = bytes(range(101, 133))


async def test_per_participant_keys_decode_and_agree_after_a_ratchet(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # No shared key.  ratchet_window_size=0: a receiver decrypts only with exactly the key the
    # sender uses (it never ratchets on its own), so hearing the tone proves the keys agree.
    # failure_tolerance=0 reports DECRYPTION_FAILED; dave keeps the default (-1): never reported.
    exact = lkanyio.RoomOptions(
        e2ee=lkanyio.E2EEOptions(ratchet_window_size=0, failure_tolerance=0)
    )
    default = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(ratchet_window_size=0))
    url = server_info.url
    async with (
        lkanyio.connect(url, token_factory("alice", room_name), options=exact) as alice,
        lkanyio.connect(url, token_factory("bob", room_name), options=exact) as bob,
        lkanyio.connect(url, token_factory("carol", room_name), options=exact) as carol,
        lkanyio.connect(url, token_factory("dave", room_name), options=default) as dave,
    ):
        listeners = {"bob": bob, "carol": carol, "dave": dave}
        for room in (alice, bob):
            room.e2ee.set_key("alice", ALICE_KEY)
            room.e2ee.set_key("bob", BOB_KEY)
        carol.e2ee.set_key("alice", ALICE_KEY)  # right now; stale once alice ratchets
        dave.e2ee.set_key("alice", BOB_KEY)  # wrong from the start
        assert alice.e2ee.get_key("alice") == bob.e2ee.get_key("alice") == ALICE_KEY
        assert bob.e2ee.get_key("bob") == BOB_KEY
        assert carol.e2ee.get_key("bob") is None
        assert alice.e2ee.get_shared_key() is None

        async def round_of(
            hz: float, expect: dict[str, Any]
        ) -> tuple[dict[str, list[int]], dict[str, list[Any]]]:
            heard: dict[str, list[int]] = {}
            states: dict[str, list[Any]] = {name: [] for name in listeners}

            async def listen(name: str) -> None:
                async with listeners[name].events() as events:
                    heard[name] = await _listen(events, states[name], expect.get(name), who=name)

            async with anyio.create_task_group() as tg:
                tg.start_soon(publish_tone, alice, hz, 5.0)
                for name in listeners:
                    tg.start_soon(listen, name)
            return heard, states

        heard, states = await round_of(440.0, {"bob": ("alice", OK), "carol": ("alice", OK)})
        for name in ("bob", "carol"):
            assert abs(dominant_frequency(heard[name], RATE) - 440.0) <= 5.0, name
            assert tone_share(heard[name], 440.0, pieces=True) > 0.5, name
            assert ("alice", lkanyio.EncryptionState.OK) in states[name], states
        assert heard["dave"]
        assert tone_share(heard["dave"], 440.0) < 0.05
        assert states["dave"] == []  # failure_tolerance=-1: the failure is never reported

        # Both sides ratchet alice's key: the same new key on each side.
        ratcheted = alice.e2ee.ratchet_key("alice")
        assert ratcheted not in (b"", ALICE_KEY)
        assert bob.e2ee.ratchet_key("alice") == ratcheted
        assert alice.e2ee.get_key("alice") == bob.e2ee.get_key("alice") == ratcheted
        assert carol.e2ee.get_key("alice") == ALICE_KEY

        heard, states = await round_of(660.0, {"carol": ("alice", FAILED)})
        assert abs(dominant_frequency(heard["bob"], RATE) - 660.0) <= 5.0
        assert tone_share(heard["bob"], 660.0, pieces=True) > 0.5
        # Alice really encrypts with the ratcheted key: carol's old key decrypts nothing.
        assert tone_share(heard["carol"], 660.0) < 0.05
        assert ("alice", lkanyio.EncryptionState.DECRYPTION_FAILED) in states["carol"], states
        assert tone_share(heard["dave"], 660.0) < 0.05
        assert states["dave"] == []


async def test_key_indexes_outside_the_ring_and_missing_keys_are_errors(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    shared = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=KEY, key_ring_size=4))
    async with lkanyio.connect(
        server_info.url, token_factory("alice", room_name), options=shared
    ) as alice:
        manager = alice.e2ee
        manager.set_shared_key(b"three", key_index=3)
        assert manager.get_shared_key(key_index=3) == b"three"
        manager.set_key("bob", b"bob three", key_index=3)
        # The native core would quietly map these onto another slot of the ring.
        for index in (-1, 4, 16, 2**31):
            with pytest.raises(ValueError, match="key_index"):
                manager.set_shared_key(b"other", key_index=index)
            with pytest.raises(ValueError, match="key_index"):
                manager.get_shared_key(key_index=index)
            with pytest.raises(ValueError, match="key_index"):
                manager.ratchet_shared_key(key_index=index)
            with pytest.raises(ValueError, match="key_index"):
                manager.set_key("bob", b"other", key_index=index)
            with pytest.raises(ValueError, match="key_index"):
                manager.ratchet_key("bob", key_index=index)
            with pytest.raises(ValueError, match="key_index"):
                manager.get_key("bob", key_index=index)
        with pytest.raises(TypeError, match="key_index"):
            manager.set_key("bob", b"k", key_index=True)
        with pytest.raises(TypeError, match="key_index"):
            manager.get_shared_key(key_index="0")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="participant_identity"):
            manager.set_key(b"bob", b"k")  # type: ignore[arg-type]
        assert manager.get_shared_key(key_index=0) == KEY
        assert manager.get_shared_key(key_index=3) == b"three"
        assert manager.get_key("bob", key_index=3) == b"bob three"
        # Nothing to ratchet: an error, not an empty "new key".
        with pytest.raises(lkanyio.NativeError, match="no shared key"):
            manager.ratchet_shared_key(key_index=1)
        with pytest.raises(lkanyio.NativeError, match="no key of 'nobody'"):
            manager.ratchet_key("nobody")
        assert manager.get_key("nobody") is None

    # Joined without a shared key, the native core ignores set_shared_key: say so.
    per_participant = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions())
    async with lkanyio.connect(
        server_info.url, token_factory("bob", room_name), options=per_participant
    ) as bob:
        with pytest.raises(lkanyio.LiveKitError, match="per-participant keys"):
            bob.e2ee.set_shared_key(KEY)
        with pytest.raises(lkanyio.LiveKitError, match="per-participant keys"):
            bob.e2ee.ratchet_shared_key()
        assert bob.e2ee.get_shared_key() is None
        bob.e2ee.set_key("bob", KEY)
        assert bob.e2ee.get_key("bob") == KEY


# -- secrets: no key reaches a log record (native ones at TRACE), a repr or an error ---------

_SECRETS_CHILD = textwrap.dedent(
    """
    import json, logging, math, sys, traceback
    from array import array
    import anyio
    import lkanyio

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.name, record.levelno, record.getMessage()))

    root = logging.getLogger("lkanyio")
    root.setLevel(1)
    root.addHandler(Keep(level=1))
    url, backend, a_tok, b_tok, c_tok, d_tok = sys.argv[1:7]
    keys = {name: bytes.fromhex(value) for name, value in json.load(sys.stdin).items()}
    shown, errors, ratcheted, frames_heard = [], [], [], {}

    def show(*objects):
        for obj in objects:
            shown.extend((repr(obj), str(obj)))

    def bad(call):
        try:
            call()
        except Exception as exc:
            errors.append("".join(traceback.format_exception(exc)) + repr(exc))
        else:
            raise AssertionError("no error")

    per = 480
    tone = [
        lkanyio.AudioFrame(
            array("h", (int(9000 * math.sin(2 * math.pi * 440 * (i * per + k) / 48000))
                        for k in range(per))).tobytes(),
            sample_rate=48000, num_channels=1, samples_per_channel=per,
        )
        for i in range(200)
    ]

    async def speak(room):
        async with (
            lkanyio.AudioSource(48000, 1) as source,
            lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track,
        ):
            publication = await room.local_participant.publish_track(track)
            await publication.wait_for_subscription()
            for frame in tone:
                await source.capture_frame(frame)
            await source.wait_for_playout()

    async def listen(name, room):
        async with room.events() as events:
            async for event in events:
                show(event)
                if isinstance(event, lkanyio.TrackSubscribed):
                    async with lkanyio.AudioStream(event.track) as stream:
                        frames_heard[name] = 0
                        async for _ in stream:
                            frames_heard[name] += 1
                            if frames_heard[name] == 100:
                                return

    async def session(first, second, options, setup):
        show(options, options.e2ee)
        async with (
            lkanyio.connect(url, first, options=options) as speaker,
            lkanyio.connect(url, second, options=options) as listener,
        ):
            for room in (speaker, listener):
                setup(room.e2ee)
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(speak, speaker)
                    tg.start_soon(listen, listener.local_participant.identity, listener)
            for room in (speaker, listener):
                manager = room.e2ee
                show(room, manager, *manager.frame_cryptors())
            return speaker.e2ee, listener.e2ee

    async def main():
        shared = lkanyio.RoomOptions(
            e2ee=lkanyio.E2EEOptions(shared_key=keys["shared"], failure_tolerance=3)
        )

        def shared_setup(manager):
            manager.set_shared_key(keys["shared 2"], key_index=1)
            assert manager.get_shared_key(key_index=1) == keys["shared 2"]

        await session(a_tok, b_tok, shared, shared_setup)

        per_participant = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(failure_tolerance=3))

        def keys_setup(manager):
            manager.set_key("carol", keys["carol"])
            manager.set_key("dave", keys["dave"])
            assert manager.get_key("carol") == keys["carol"]

        await session(c_tok, d_tok, per_participant, keys_setup)
        async with lkanyio.connect(url, a_tok, options=shared) as room:
            manager = room.e2ee
            ratcheted.append(manager.ratchet_shared_key())
            manager.set_shared_key(keys["shared 2"], key_index=1)
            ratcheted.append(manager.ratchet_shared_key(key_index=1))
            manager.set_key("carol", keys["carol"])
            ratcheted.append(manager.ratchet_key("carol"))
            show(manager.get_shared_key(key_index=5))
            bad(lambda: manager.set_shared_key(keys["shared"].hex()))
            bad(lambda: manager.set_shared_key(memoryview(keys["shared"])))
            bad(lambda: manager.set_shared_key(keys["shared"], key_index=16))
            bad(lambda: manager.set_key("carol", keys["carol"].decode("latin-1")))
            bad(lambda: manager.set_key("carol", keys["carol"], key_index=-1))
            bad(lambda: manager.ratchet_key("nobody"))
            bad(lambda: manager.ratchet_shared_key(key_index=9))
        async with lkanyio.connect(url, c_tok, options=per_participant) as room:
            bad(lambda: room.e2ee.set_shared_key(keys["carol"]))
        # Bad options are refused when they are made, before any room sees them.
        for wrong in (
            {"shared_key": keys["shared"].decode("latin-1")},
            {"shared_key": keys["shared"], "ratchet_window_size": -1},
            {"shared_key": keys["shared"], "ratchet_salt": b""},
        ):
            bad(lambda wrong=wrong: lkanyio.E2EEOptions(**wrong))

    anyio.run(main, backend=backend)
    json.dump(
        {
            "records": records,
            "shown": shown,
            "errors": errors,
            "ratcheted": [key.hex() for key in ratcheted],
            "frames_heard": frames_heard,
        },
        sys.stdout,
    )
    """
)


def _forms(key: bytes) -> list[str]:
    """Ways a key could be shown: raw, hex, base64, Python's and Rust's ``Debug`` of bytes."""
    b64 = base64.b64encode(key).decode()
    forms = [
        key.hex(),
        key.hex().upper(),
        b64.rstrip("="),
        base64.urlsafe_b64encode(key).decode().rstrip("="),
        repr(key)[2:-1],
        ", ".join(str(byte) for byte in key),  # Rust: [12, 200, ...]
        ",".join(str(byte) for byte in key),
    ]
    if key.isascii() and key.decode().isprintable():
        forms.append(key.decode())
    return forms


async def test_keys_never_reach_logs_reprs_or_errors(
    server_info: Any, token_factory: TokenFactory, room_name: str, anyio_backend: str
) -> None:
    keys = {
        "shared": f"shared-{secrets.token_urlsafe(24)}".encode(),  # printable
        "shared 2": secrets.token_bytes(32),
        "carol": f"carol-{secrets.token_urlsafe(24)}".encode(),
        "dave": secrets.token_bytes(32),
    }
    # alice and bob share a key; carol and dave, in another room, use per-participant keys.
    tokens = [token_factory(name, room_name) for name in ("alice", "bob")]
    tokens += [token_factory(name, f"{room_name}-keys") for name in ("carol", "dave")]
    env = {**os.environ, "LKANYIO_NATIVE_LOG_LEVEL": "trace", "PYTHONWARNINGS": "error"}
    with anyio.fail_after(240):
        done = await anyio.run_process(
            [sys.executable, "-c", _SECRETS_CHILD, server_info.url, anyio_backend, *tokens],
            input=json.dumps({name: key.hex() for name, key in keys.items()}).encode(),
            env=env,
            check=False,
        )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-3000:]
    result = json.loads(done.stdout)
    records: list[tuple[str, int, str]] = result["records"]
    native = [r for r in records if r[0] == "lkanyio.native"]
    # Only meaningful if the native core logged in detail while keys were set and used.
    assert len(native) > 50, records[:20]
    assert any(level < 20 for _name, level, _msg in native)
    assert any("frame_crypto" in message for _name, _level, message in native)
    assert result["frames_heard"] == {"bob": 100, "dave": 100}  # encrypted media flowed
    ratcheted = [bytes.fromhex(key) for key in result["ratcheted"]]
    assert len(ratcheted) == 3
    assert all(ratcheted)
    secret_forms = [form for key in [*keys.values(), *ratcheted] for form in _forms(key)]
    assert len(result["errors"]) == 11
    texts = [
        *((f"the {name} log", message) for name, _level, message in records),
        *(("a repr or str", text) for text in result["shown"]),
        *(("an error", text) for text in result["errors"]),
        ("stderr", stderr),
    ]
    for where, text in texts:
        for form in secret_forms:
            assert form not in text, f"a key leaked into {where}: {text[:300]!r}"
