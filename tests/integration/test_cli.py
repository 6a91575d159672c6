"""The ``lkanyio`` command line end to end: each subcommand as a child process."""

from __future__ import annotations

import array
import json
import math
import os
import signal
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from livekit import api

import lkanyio
from _media import RATE, dominant_frequency
from _util import EVENT_WAIT, announce
from lkanyio._cli import event_record, format_record

RUN_WAIT = 90.0
"""Upper bound for one command (a hang guard, never a timing assertion)."""


def _env(server_info: Any, **extra: str) -> dict[str, str]:
    return {  # ``extra`` may override the server's variables
        **os.environ,
        "LIVEKIT_URL": server_info.url,
        "LIVEKIT_API_KEY": server_info.api_key,
        "LIVEKIT_API_SECRET": server_info.api_secret,
        **extra,
    }


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "lkanyio", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_WAIT,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _write_tone(path: Path, hz: float, seconds: float) -> None:
    count = int(RATE * seconds)
    samples = array.array(
        "h", (int(12_000 * math.sin(2 * math.pi * hz * i / RATE)) for i in range(count))
    )
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())


def _sound(path: Path) -> tuple[int, list[int]]:
    """``(sample_rate, samples)`` of a mono WAV file, from its first to its last loud sample."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    loud = [i for i, value in enumerate(samples) if abs(value) > 1000]
    return rate, list(samples[loud[0] : loud[-1] + 1]) if loud else []


def test_token_is_signed_for_the_identity_room_and_grants(server_info: Any) -> None:
    result = _cli(
        "token", "--room", "r1", "--identity", "ann", "--name", "Ann", "--no-publish",
        env=_env(server_info),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    claims = api.TokenVerifier(server_info.api_key, server_info.api_secret).verify(
        result.stdout.strip()
    )
    assert (claims.identity, claims.name) == ("ann", "Ann")
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join) == ("r1", True)
    assert (claims.video.can_publish, claims.video.can_subscribe) == (False, True)


def test_token_without_a_key_names_the_ways_to_give_one() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    result = _cli("token", "--room", "r", "--identity", "a", env=env)
    assert result.returncode == 1
    assert "LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in result.stderr
    assert "--token" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "--room", "r"], "the following arguments are required: --identity"),
        (["token", "--room", "r", "--identity", "a", "--ttl", "0"], "must be positive"),
        (["serve-local", "--port", "70000"], "must be between 1 and 65534"),
        (["record", "alice", "out.wav", "--channels", "3"], "invalid choice: 3"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_join_without_a_server_says_how_to_name_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    result = _cli("join", "--room", "r", env=env)
    assert result.returncode == 1
    assert "pass --url or set LIVEKIT_URL" in result.stderr


def test_publish_rejects_a_file_that_is_not_16_bit_wav(server_info: Any, tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    result = _cli("publish", str(text), "--room", "r", env=_env(server_info))
    assert result.returncode == 1
    assert f"cannot read {text} as a WAV file" in result.stderr
    eight_bit = tmp_path / "8bit.wav"
    with wave.open(str(eight_bit), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    result = _cli("publish", str(eight_bit), "--room", "r", env=_env(server_info))
    assert result.returncode == 1
    assert "only 16-bit PCM WAV files, not 8-bit" in result.stderr


def test_a_recorded_wav_has_the_tone_of_the_published_one(
    server_info: Any, room_name: str, tmp_path: Path
) -> None:
    tone, out = tmp_path / "tone.wav", tmp_path / "out.wav"
    _write_tone(tone, 440.0, 2.0)
    env = _env(server_info)
    base = [sys.executable, "-m", "lkanyio"]
    with subprocess.Popen(
        [*base, "record", "alice", str(out), "--room", room_name, "--backend", "trio"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as recorder:
        assert recorder.stderr is not None
        first = recorder.stderr.readline()  # it is in the room: the publisher will find it
        assert first.startswith("lkanyio: waiting for alice's audio"), first
        publisher = _cli(
            "publish", str(tone), "--room", room_name, "--identity", "alice",
            "--wait-for-subscriber", env=env,
        )  # fmt: skip
        rest = recorder.stderr.read()
        assert recorder.wait(RUN_WAIT) == 0, rest
    assert publisher.returncode == 0, publisher.stderr
    # The progress bar is redrawn (on one line: text mode reads its "\r" as a newline), and ends
    # complete.
    assert publisher.stderr.count("publishing tone.wav [") > 2, publisher.stderr
    assert publisher.stderr.endswith("] 100% 2.0/2.0 s\n"), publisher.stderr[-200:]
    assert "lkanyio: saved " in rest  # the publisher left: the recording ended by itself
    rate, sound = _sound(out)
    assert rate == RATE
    assert len(sound) >= RATE // 2, "less than half a second of the tone arrived"
    assert abs(dominant_frequency(sound, rate) - 440.0) <= 5.0


def test_record_stops_after_seconds_of_audio(
    server_info: Any, room_name: str, tmp_path: Path
) -> None:
    tone, out = tmp_path / "tone.wav", tmp_path / "out.wav"
    _write_tone(tone, 660.0, 3.0)
    env = _env(server_info)
    with subprocess.Popen(
        [sys.executable, "-m", "lkanyio", "record", "bob", str(out), "--room", room_name,
         "--seconds", "0.5", "--sample-rate", "16000"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as recorder:  # fmt: skip
        assert recorder.stderr is not None
        recorder.stderr.readline()
        publisher = _cli(
            "publish", str(tone), "--room", room_name, "--identity", "bob",
            "--wait-for-subscriber", "--quiet", env=env,
        )  # fmt: skip
        assert recorder.wait(RUN_WAIT) == 0, recorder.stderr.read()
    assert publisher.returncode == 0, publisher.stderr
    assert "publishing" not in publisher.stderr  # --quiet: no progress bar
    with wave.open(str(out), "rb") as wav:
        assert (wav.getframerate(), wav.getnframes()) == (16_000, 8_000)


def test_event_lines_name_participants_and_tracks_not_objects() -> None:
    record = {"event": "DataReceived", "data": "hi", "participant": "alice", "topic": "chat"}
    assert format_record(record, as_json=False) == (
        'DataReceived data="hi" participant="alice" topic="chat"'
    )
    assert json.loads(format_record(record, as_json=True)) == record
    event = lkanyio.SipDTMFReceived(code=1, digit="1", participant=None)
    assert event_record(event) == {
        "event": "SipDTMFReceived",
        "code": 1,
        "digit": "1",
        "participant": None,
        "sender_identity": "",
    }
    # A credential stays out of the record, as out of the event's repr, unless asked for.
    refreshed = lkanyio.TokenRefreshed("eyJsecret")
    assert "eyJ" not in repr(refreshed)
    assert event_record(refreshed) == {"event": "TokenRefreshed"}
    assert event_record(refreshed, show_secrets=True) == {
        "event": "TokenRefreshed",
        "token": "eyJsecret",
    }
    assert "--show-tokens" in _cli("join", "--help").stdout


@pytest.mark.anyio
async def test_join_prints_events_until_interrupted(
    server_info: Any, token_factory: Any, room_name: str
) -> None:
    command = [sys.executable, "-m", "lkanyio", "join", "--room", room_name, "--identity", "cli"]
    async with await anyio.open_process(
        [*command, "--json"], env=_env(server_info), stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        lines = TextReceiveStream(process.stdout)
        buffered = ""

        async def next_record() -> dict[str, Any]:
            nonlocal buffered
            while "\n" not in buffered:
                buffered += await lines.receive()
            line, buffered = buffered.split("\n", 1)
            return dict(json.loads(line))

        with anyio.fail_after(EVENT_WAIT):
            joined = await next_record()
        assert joined == {"event": "Joined", "room": room_name, "identity": "cli",
                          "participants": []}  # fmt: skip
        async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
            await announce(room)
            seen: list[dict[str, Any]] = []
            with anyio.fail_after(EVENT_WAIT):
                while not any(r["event"] == "ParticipantConnected" for r in seen):
                    seen.append(await next_record())
                await room.local_participant.publish_data("hi from alice", topic="chat")
                while seen[-1]["event"] != "DataReceived":
                    seen.append(await next_record())
        assert {"event": "ParticipantConnected", "participant": "alice"} in seen
        assert seen[-1] == {
            "event": "DataReceived",
            "data": "hi from alice",
            "kind": "RELIABLE",
            "participant": "alice",
            "topic": "chat",
            "sender_identity": "alice",
        }
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(EVENT_WAIT):
            assert await process.wait() == 0


async def _join_until_token_refreshed(
    server_info: Any, room_name: str, *flags: str
) -> tuple[dict[str, Any], str]:
    """Run ``join --json`` until it prints TokenRefreshed: that record, and all it printed."""
    command = [sys.executable, "-m", "lkanyio", "join", "--room", room_name, "--json", *flags]
    async with await anyio.open_process(
        command, env=_env(server_info), stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        lines = TextReceiveStream(process.stdout)
        printed = ""
        with anyio.fail_after(EVENT_WAIT):
            # The server refreshes a joiner's token at once (measured: ~0.5 s after the join).
            while not any("TokenRefreshed" in x for x in printed.split("\n")[:-1]):
                printed += await lines.receive()
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(EVENT_WAIT):
            assert await process.wait() == 0
    record = next(json.loads(x) for x in printed.splitlines() if "TokenRefreshed" in x)
    return dict(record), printed


@pytest.mark.anyio
async def test_join_hides_refreshed_tokens_unless_asked(server_info: Any, room_name: str) -> None:
    record, printed = await _join_until_token_refreshed(server_info, room_name)
    assert record == {"event": "TokenRefreshed"}
    assert "eyJ" not in printed  # no JWT anywhere in what went to stdout
    record, printed = await _join_until_token_refreshed(server_info, room_name, "--show-tokens")
    assert set(record) == {"event", "token"}
    assert record["token"].startswith("eyJ")


def test_serve_local_runs_the_command_inside_with_the_server_in_its_environment() -> None:
    # The demo finds the server through LIVEKIT_URL/KEY/SECRET: a full exchange proves the
    # server is up and reachable from the command.  Its status is serve-local's status.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    result = _cli("serve-local", "--", sys.executable, "-m", "lkanyio.demo", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using the server at ws://10.213.7.1:7880" in result.stdout
    assert result.stdout.rstrip().endswith(
        "bob: OK, saw all alice sent (data, metadata, name, attributes, dtmf, tone)"
    )
    code = "import sys; sys.exit(7)"
    assert _cli("serve-local", "--", sys.executable, "-c", code, env=env).returncode == 7


def test_serve_local_prints_the_server_and_stops_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    with subprocess.Popen(
        [sys.executable, "-m", "lkanyio", "serve-local", "--port", "7990"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        printed = dict(server.stdout.readline().strip().split("=", 1) for _ in range(3))
        assert printed["LIVEKIT_URL"] == "ws://10.213.7.1:7990"
        assert printed["LIVEKIT_API_KEY"] == "lkanyio"
        assert len(printed["LIVEKIT_API_SECRET"]) == 48
        server.send_signal(signal.SIGTERM)
        assert server.wait(RUN_WAIT) == 0
        assert server.stderr is not None
        assert "reachable only from there" in server.stderr.read()
