"""End-to-end encryption on a real server (both backends)."""

from __future__ import annotations

import cmath
import gc
import math
from typing import Any

import anyio
import pytest

import lkanyio
from _util import EVENT_WAIT, TokenFactory, assert_no_leaks
from lkanyio.demo import dominant_frequency
from test_audio_server import RATE, publish_tone

pytestmark = pytest.mark.anyio

KEY = b"correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Any:
    yield
    gc.collect()
    assert_no_leaks()


def tone_share(samples: list[int], hz: float) -> float:
    """Share of the last half second's energy that is a sine at ``hz`` (1.0: a pure tone)."""
    window = samples[-RATE // 2 :]
    energy = sum(x * x for x in window)
    if not energy:
        return 0.0
    w = 2 * math.pi * hz / RATE
    acc = sum(x * cmath.exp(-1j * w * k) for k, x in enumerate(window))
    return min(1.0, 2 * abs(acc) ** 2 / (len(window) * energy))


async def _listen(events: lkanyio.EventStream[Any], states: list[Any]) -> list[int]:
    """Record E2EE states; return 2 s of the first subscribed track's samples."""
    samples: list[int] = []
    with anyio.fail_after(EVENT_WAIT):
        async for event in events:
            if isinstance(event, lkanyio.E2EEStateChanged):
                states.append((event.participant.identity, event.state))
            elif isinstance(event, lkanyio.TrackSubscribed):
                async with lkanyio.AudioStream(event.track, sample_rate=RATE) as stream:
                    async for frame_event in stream:
                        samples.extend(frame_event.frame.data)
                        if len(samples) >= RATE * 3:
                            break
                break
    with anyio.move_on_after(2):  # state changes may trail the media
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

        async def listen(name: str, events: Any, states: list[Any]) -> None:
            heard[name] = await _listen(events, states)

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_tone, alice, 440.0, 5.0)
            tg.start_soon(listen, "bob", bob_events, bob_states)
            tg.start_soon(listen, "carol", carol_events, carol_states)

        assert abs(dominant_frequency(heard["bob"], RATE) - 440.0) <= 5.0
        assert ("alice", lkanyio.EncryptionState.OK) in bob_states
        # No plaintext reaches the wrong key.  What its decoder outputs varies from run to
        # run: silence, concealment noise (seen: peak 98) or noise decoded from ciphertext
        # (seen: peak 7,816), so the check is that none of it is the tone.
        assert heard["carol"]
        assert tone_share(heard["bob"], 440.0) > 0.5
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

        async def round_of(hz: float) -> tuple[dict[str, list[int]], dict[str, list[Any]]]:
            heard: dict[str, list[int]] = {}
            states: dict[str, list[Any]] = {name: [] for name in listeners}

            async def listen(name: str) -> None:
                async with listeners[name].events() as events:
                    heard[name] = await _listen(events, states[name])

            async with anyio.create_task_group() as tg:
                tg.start_soon(publish_tone, alice, hz, 5.0)
                for name in listeners:
                    tg.start_soon(listen, name)
            return heard, states

        heard, states = await round_of(440.0)
        for name in ("bob", "carol"):
            assert abs(dominant_frequency(heard[name], RATE) - 440.0) <= 5.0, name
            assert tone_share(heard[name], 440.0) > 0.5, name
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

        heard, states = await round_of(660.0)
        assert abs(dominant_frequency(heard["bob"], RATE) - 660.0) <= 5.0
        assert tone_share(heard["bob"], 660.0) > 0.5
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
