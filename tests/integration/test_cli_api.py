"""``lkanyio room``, ``participants`` and ``dispatch``: the server API from the command line.

Each command runs as a child process against the real server; what it prints is checked against
what the server then holds.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import anyio
import pytest

import lkanyio
from _util import TokenFactory
from lkanyio import api
from test_cli import _cli, _env

pytestmark = pytest.mark.anyio

def _lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_rooms_are_created_listed_and_deleted_from_the_command_line(
    server_info: Any, room_name: str
) -> None:
    env = _env(server_info)
    created = _lines(
        _cli(
            "room",
            "create",
            room_name,
            "--metadata",
            "m1",
            "--empty-timeout",
            "60",
            "--json",
            env=env,
        )
    )
    assert [(r["name"], r["metadata"], r["emptyTimeout"]) for r in created] == [
        (room_name, "m1", 60)
    ]
    listed = _lines(_cli("room", "list", room_name, "--json", "--backend", "trio", env=env))
    assert [r["sid"] for r in listed] == [created[0]["sid"]]
    plain = _cli("room", "list", env=env)
    assert f"{room_name}\t{created[0]['sid']}\t0\tm1" in plain.stdout.splitlines()
    deleted = _cli("room", "delete", room_name, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted room {room_name!r}" in deleted.stderr
    assert _lines(_cli("room", "list", room_name, "--json", env=env)) == []


async def test_participants_lists_who_is_in_the_room(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    token = token_factory("alice", room_name, name="Alice", metadata="hi")
    async with lkanyio.connect(server_info.url, token) as room:
        result = await anyio.to_thread.run_sync(
            lambda: _cli("participants", room_name, env=_env(server_info))
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"alice\t{room.local_participant.sid}\tAlice\thi"]


def test_agent_dispatches_from_the_command_line(server_info: Any, room_name: str) -> None:
    env = _env(server_info)
    (created,) = _lines(
        _cli(
            "dispatch",
            "create",
            "--room",
            room_name,
            "--agent-name",
            "helper",
            "--metadata",
            "j",
            "--json",
            env=env,
        )
    )
    assert (created["agentName"], created["room"], created["metadata"]) == (
        "helper",
        room_name,
        "j",
    )
    listed = _lines(_cli("dispatch", "list", "--room", room_name, "--json", env=env))
    assert created["id"] in [d["id"] for d in listed]
    deleted = _cli("dispatch", "delete", created["id"], "--room", room_name, env=env)
    assert deleted.returncode == 0, deleted.stderr
    listed = _lines(_cli("dispatch", "list", "--room", room_name, "--json", env=env))
    assert created["id"] not in [d["id"] for d in listed]


def test_server_errors_end_the_command_with_their_message(server_info: Any) -> None:
    result = _cli("room", "list", env=_env(server_info, LIVEKIT_API_SECRET="w" * 40))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "lkanyio: error: TwirpError: RoomService.ListRooms: unauthenticated (HTTP 401)"
    ), result.stderr
    bad_url = _cli("participants", "r", env=_env(server_info, LIVEKIT_URL="ftp://x"))
    assert bad_url.returncode == 1
    assert "ws://, wss://, http:// or https://" in bad_url.stderr


def test_a_minted_token_verifies_with_lkanyio_alone(server_info: Any) -> None:
    result = _cli("token", "--room", "r1", "--identity", "ann", env=_env(server_info))
    assert result.returncode == 0, result.stderr
    claims = api.TokenVerifier(server_info.api_key, server_info.api_secret).verify(
        result.stdout.strip()
    )
    assert (claims.identity, claims.video and claims.video.room) == ("ann", "r1")
