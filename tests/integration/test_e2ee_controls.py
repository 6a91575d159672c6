"""E2EE encryption types, frame cryptor controls and the manager's switch (both backends)."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import lkanyio
from _media import RATE, tone_frames, tone_share
from _util import EVENT_WAIT, TokenFactory
from test_e2ee import KEY

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

GCM = lkanyio.EncryptionType.GCM
NONE = lkanyio.EncryptionType.NONE

TONE = tone_frames(440.0, 0.05)
"""50 ms of the 440 Hz tone: exactly 22 periods, so cycling it is seamless.  ``_publish`` used
to build 30 s of it per call, 0.43 CPU-s of ``math.sin`` each time (8 calls in this module)."""


async def _hear(
    events: lkanyio.EventStream[Any], out: dict[str, Any], name: str, reference: str = ""
) -> None:
    """Record the announced encryption, the best tone shares of the first track heard and how
    many samples were heard (``out[name + " heard"]``): ``out[name]`` measured in pieces, for a
    tone's presence, ``out[name + " strict"]`` in one transform, for its absence (see
    ``tone_share``).

    Shares are taken over successive half seconds of audio, up to 4 s of it, stopping at the
    first clear tone: the first frames after subscribing can be silence or concealment while
    the decoder (and the decryptor) settle, which a single fixed window mistook for no tone on
    a loaded machine.

    A listener that must hear no tone, given the ``reference`` listener that hears it, stops
    sooner: once it has heard 1 s (two shares) more than the reference needed for its clear
    tone, so it listened through the settling the reference needed and then on while the tone
    was coming through.  Listening on to 4 s regardless cost ~0.6 CPU-s per encrypted case
    (three rooms decoding in real time: 1.1 CPU-s against 0.5 for NONE, measured).
    """
    samples: list[int] = []
    best = strict = 0.0
    with anyio.fail_after(EVENT_WAIT):
        async for event in events:
            if isinstance(event, lkanyio.TrackSubscribed):
                out[f"{name} announced"] = event.publication.encryption_type
                async with lkanyio.AudioStream(event.track, sample_rate=RATE) as stream:
                    async for frame_event in stream:
                        samples.extend(frame_event.frame.data)
                        if len(samples) % (RATE // 2) < len(frame_event.frame.data):
                            best = max(best, tone_share(samples, 440.0, pieces=True))
                            strict = max(strict, tone_share(samples, 440.0))
                            enough = 4 * RATE
                            if reference and f"{reference} heard" in out:
                                enough = min(enough, out[f"{reference} heard"] + RATE)
                            if best > 0.9 or len(samples) >= enough:
                                break
                break
    out[name] = best
    out[f"{name} strict"] = strict
    out[f"{name} heard"] = len(samples)


async def _publish(room: lkanyio.Room, before_sending: Any, done: anyio.Event) -> None:
    async with (
        lkanyio.AudioSource(RATE, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track,
    ):
        await room.local_participant.publish_track(track)
        before_sending()
        for frame in itertools.islice(itertools.cycle(TONE), 30 * 100):  # at most 30 s
            if done.is_set():
                break
            await source.capture_frame(frame)


async def _exchange(
    server_info: Any,
    token_factory: TokenFactory,
    room_name: str,
    alice_options: lkanyio.E2EEOptions,
    before_sending: Any,
) -> dict[str, Any]:
    """Alice publishes a tone; bob (E2EE, same key) and carol (no E2EE) listen.

    When alice encrypts, carol must hear no tone: bob is her reference (see ``_hear``)."""
    url = server_info.url
    shared = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=KEY))
    out: dict[str, Any] = {}
    async with (
        lkanyio.connect(
            url, token_factory("alice", room_name), options=lkanyio.RoomOptions(e2ee=alice_options)
        ) as alice,
        lkanyio.connect(url, token_factory("bob", room_name), options=shared) as bob,
        lkanyio.connect(url, token_factory("carol", room_name)) as carol,
        bob.events() as bob_events,
        carol.events() as carol_events,
    ):
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_publish, alice, lambda: before_sending(alice), done)
            async with anyio.create_task_group() as listeners:
                listeners.start_soon(_hear, bob_events, out, "bob")
                reference = "" if alice_options.encryption_type == NONE else "bob"
                listeners.start_soon(_hear, carol_events, out, "carol", reference)
            done.set()
        out["alice cryptors"] = alice.e2ee.frame_cryptors()
    return out


@pytest.mark.parametrize("kind", list(lkanyio.EncryptionType), ids=lambda k: k.name)
async def test_every_encryption_type(
    server_info: Any, token_factory: TokenFactory, room_name: str, kind: lkanyio.EncryptionType
) -> None:
    options = lkanyio.E2EEOptions(shared_key=KEY, encryption_type=kind)
    out = await _exchange(server_info, token_factory, room_name, options, lambda room: None)
    assert out["bob announced"] == out["carol announced"] == kind
    assert out["bob"] > 0.5  # GCM and CUSTOM: decrypted with the key; NONE: never encrypted
    if kind == NONE:
        assert out["alice cryptors"] == []  # no encryptor: the tone goes out in the clear
        assert out["carol"] > 0.5
    else:
        assert [c.enabled for c in out["alice cryptors"]] == [True]
        assert out["carol strict"] < 0.05  # ciphertext without a key is no tone
        # ... over 1 s more audio than bob needed for his tone (or 4 s): not a stream cut short
        assert out["carol heard"] >= min(4 * RATE, out["bob heard"] + RATE), out


async def test_a_disabled_decryptor_passes_ciphertext_through(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    url = server_info.url
    shared = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=KEY))
    out: dict[str, Any] = {}
    async with (
        lkanyio.connect(url, token_factory("alice", room_name), options=shared) as alice,
        lkanyio.connect(url, token_factory("bob", room_name), options=shared) as bob,
        bob.events() as bob_events,
    ):

        def refuse_own(room: lkanyio.Room) -> None:
            (own,) = room.e2ee.frame_cryptors()
            with pytest.raises(ValueError, match="encryptor"):
                own.set_enabled(False)  # would abort bob's process (measured)
            own.set_enabled(True)  # turning it on is harmless

        async def listen() -> None:
            with anyio.fail_after(EVENT_WAIT):
                while not bob.e2ee.frame_cryptors():
                    await anyio.sleep(0.05)
            (decryptor,) = bob.e2ee.frame_cryptors()
            assert decryptor.participant_identity == "alice"
            decryptor.set_enabled(False)
            out["after"] = bob.e2ee.frame_cryptors()
            await _hear(bob_events, out, "bob")

        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_publish, alice, lambda: refuse_own(alice), done)
            await listen()
            done.set()
    assert [c.enabled for c in out["after"]] == [False]
    assert out["bob strict"] < 0.05  # ciphertext reaches the decoder undecrypted: no tone


async def test_key_index_and_manager_switch(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    options = lkanyio.RoomOptions(e2ee=lkanyio.E2EEOptions(shared_key=KEY))
    async with (
        lkanyio.connect(
            server_info.url, token_factory("alice", room_name), options=options
        ) as room,
        lkanyio.AudioSource(RATE, 1) as source,
        lkanyio.LocalAudioTrack.create_audio_track("tone", source) as track,
    ):
        await room.local_participant.publish_track(track)
        manager = room.e2ee
        assert room.e2ee is manager  # one manager per room: it remembers the switch
        (cryptor,) = manager.frame_cryptors()
        assert cryptor.key_index == 0
        manager.set_shared_key(b"second key", key_index=1)
        cryptor.set_key_index(1)
        assert [c.key_index for c in manager.frame_cryptors()] == [1]
        assert cryptor.key_index == 0  # a snapshot: read the list again for new values
        with pytest.raises(ValueError, match="no key"):
            cryptor.set_key_index(5)
        with pytest.raises(ValueError, match="key_ring_size"):
            cryptor.set_key_index(16)
        with pytest.raises(TypeError):
            cryptor.set_enabled(1)  # type: ignore[arg-type]
        assert manager.enabled is True
        manager.set_enabled(False)
        assert manager.enabled is False
        manager.set_enabled(True)
        assert room.e2ee.enabled is True
    with pytest.raises(lkanyio.LiveKitError):
        cryptor.set_enabled(True)  # the room is gone


async def test_encryption_type_is_checked() -> None:
    with pytest.raises(ValueError, match="EncryptionType"):
        lkanyio.E2EEOptions(encryption_type=7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lkanyio.E2EEOptions(encryption_type="GCM")  # type: ignore[arg-type]
    assert lkanyio.E2EEOptions(encryption_type=2).encryption_type == lkanyio.EncryptionType.CUSTOM  # type: ignore[arg-type]
    with pytest.raises(lkanyio.LiveKitError, match="room"):
        lkanyio.FrameCryptor("a", "TR_x", 0, True).set_enabled(False)
