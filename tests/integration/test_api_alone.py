"""Done when: a trio program mints its token, creates its room, joins it, is seen in
``list_participants`` and deletes the room, with nothing but lkanyio.

It runs in a child process whose imports of livekit-api (``livekit.api``), aiohttp and
``livekit.rtc`` fail, as they would where only lkanyio is installed; at its end none of them is
loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

BLOCKED = ("livekit.api", "aiohttp", "livekit.rtc")

PROGRAM = f"""
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in {BLOCKED!r}):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocker())

import os
import trio
import lkanyio
from lkanyio import api

async def main(room_name):
    url = os.environ["LIVEKIT_URL"]
    key, secret = os.environ["LIVEKIT_API_KEY"], os.environ["LIVEKIT_API_SECRET"]
    token = (
        api.AccessToken(key, secret)
        .with_identity("solo")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .to_jwt()
    )
    async with api.LiveKitAPI() as lkapi:  # from LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET
        created = await lkapi.room.create_room(api.CreateRoomRequest(name=room_name))
        print("created", created.name)
        async with lkanyio.connect(url, token) as room:
            request = api.ListParticipantsRequest(room=room_name)
            listed = (await lkapi.room.list_participants(request)).participants
            me = room.local_participant.sid
            print("listed", [(p.identity, p.sid == me) for p in listed])
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room_name))
        left = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[room_name]))
        print("rooms left", len(left.rooms))

trio.run(main, sys.argv[1])
try:
    import livekit.api
except ModuleNotFoundError as exc:
    print("blocked:", exc.name)
blocked = {BLOCKED!r}
loaded = [m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in blocked)]
print("loaded", sorted(loaded))
"""


def test_a_trio_program_manages_its_room_with_nothing_but_lkanyio(
    server_info: Any, room_name: str
) -> None:
    env = {
        **os.environ,
        "LIVEKIT_URL": server_info.url,
        "LIVEKIT_API_KEY": server_info.api_key,
        "LIVEKIT_API_SECRET": server_info.api_secret,
    }
    env.pop("LIVEKIT_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, room_name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"created {room_name}",
        "listed [('solo', True)]",
        "rooms left 0",
        "blocked: livekit.api",
        "loaded []",
    ]
