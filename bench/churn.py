"""Track churn: tasks publish and unpublish audio tracks while data pings go both ways.

Two participants of this process join one room; each runs ``--tasks`` tasks that create an
audio track, publish it and unpublish it, over and over, for ``--seconds``.  Meanwhile each
sends the other a reliable data ping every 100 ms (answered by a pong), and alice changes her
metadata every 0.5 s.  Prints the publish cycles, the data round trips (median and worst, each
direction), the slowest metadata change and the server's "publish time out" errors.

    sudo python bench/churn.py                       # 10 s, 4 tasks each, trio
    sudo python bench/churn.py --seconds 30 --backend asyncio
    sudo python bench/churn.py --tasks 0             # the baseline: no churn
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import anyio

import lkanyio
from lkanyio.testing import LocalServer, ServerInfo, enter_private_netns, make_token


async def churn(room: lkanyio.Room, stop: anyio.Event, cycles: list[int]) -> None:
    lp = room.local_participant
    while not stop.is_set():
        async with (
            lkanyio.AudioSource(48_000, 1) as source,
            lkanyio.LocalAudioTrack.create_audio_track("churn", source) as track,
        ):
            publication = await lp.publish_track(track)
            await lp.unpublish_track(publication.sid)
            cycles[0] += 1


async def ping(me: lkanyio.Room, peer: str, stop: anyio.Event, tag: str, rtts: list[float]) -> int:
    """Ping ``peer`` until ``stop``; returns how many pongs never came (within 60 s)."""
    sent: dict[int, float] = {}
    async with me.events() as events, anyio.create_task_group() as tg:

        async def pongs() -> None:
            async for event in events:
                if isinstance(event, lkanyio.DataReceived) and event.topic == f"pong-{tag}":
                    rtts.append(time.monotonic() - sent.pop(int(event.data)))

        tg.start_soon(pongs)
        n = 0
        while not stop.is_set():
            sent[n] = time.monotonic()
            await me.local_participant.publish_data(
                str(n).encode(), topic=f"ping-{tag}", destination_identities=[peer]
            )
            n += 1
            await anyio.sleep(0.1)
        with anyio.move_on_after(60):
            while sent:
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    return len(sent)


async def pong(me: lkanyio.Room, events: Any, peer: str, tag: str) -> None:
    async for event in events:
        if isinstance(event, lkanyio.DataReceived) and event.topic == f"ping-{tag}":
            await me.local_participant.publish_data(
                event.data, topic=f"pong-{tag}", destination_identities=[peer]
            )


async def metadata(room: lkanyio.Room, stop: anyio.Event, took: list[float]) -> None:
    n = 0
    while not stop.is_set():
        start = time.monotonic()
        await room.local_participant.set_metadata(f"m{n}")
        took.append(time.monotonic() - start)
        n += 1
        await anyio.sleep(0.5)


def summary(rtts: list[float]) -> dict[str, Any]:
    ordered = sorted(rtts)
    return {
        "pongs": len(ordered),
        "median_s": round(ordered[len(ordered) // 2], 3) if ordered else None,
        "worst_s": round(ordered[-1], 3) if ordered else None,
    }


async def run(info: ServerInfo, seconds: float, tasks: int) -> dict[str, Any]:
    room = f"churn-{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as stack:
        rooms: list[lkanyio.Room] = []
        streams: list[lkanyio.EventStream[lkanyio.RoomEvent]] = []
        for identity in ("alice", "bob"):
            token = make_token(info, identity=identity, room=room)
            rooms.append(await stack.enter_async_context(lkanyio.connect(info.url, token)))
            streams.append(await stack.enter_async_context(rooms[-1].events()))
        alice, bob = rooms
        to_alice, to_bob = streams
        for joined in (alice, bob):  # announce both now, not on the server's 3 s tick
            await joined.local_participant.set_attributes({"churn": ""})
        while not alice.remote_participants or not bob.remote_participants:
            await anyio.sleep(0.05)
        stop = anyio.Event()
        cycles = [0]
        ab: list[float] = []
        ba: list[float] = []
        meta: list[float] = []
        lost: list[int] = []
        async with anyio.create_task_group() as answering:
            answering.start_soon(pong, bob, to_bob, "alice", "ab")
            answering.start_soon(pong, alice, to_alice, "bob", "ba")
            async with anyio.create_task_group() as tg:

                async def pinging(me: lkanyio.Room, peer: str, tag: str, rtts: list[float]) -> None:
                    lost.append(await ping(me, peer, stop, tag, rtts))

                tg.start_soon(pinging, alice, "bob", "ab", ab)
                tg.start_soon(pinging, bob, "alice", "ba", ba)
                tg.start_soon(metadata, alice, stop, meta)
                for joined in (alice, bob):
                    for _ in range(tasks):
                        tg.start_soon(churn, joined, stop, cycles)
                await anyio.sleep(seconds)
                stop.set()
            answering.cancel_scope.cancel()
    return {
        "publish_cycles": cycles[0],
        "alice_to_bob": summary(ab),
        "bob_to_alice": summary(ba),
        "pongs_lost": sum(lost),
        "slowest_metadata_s": round(max(meta), 3) if meta else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--tasks", type=int, default=4, help="churning tasks per participant")
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    with LocalServer(node_ip=enter_private_netns()) as server:
        result = anyio.run(run, server.info, args.seconds, args.tasks, backend=args.backend)
        log = server.log_path.read_text(errors="replace")
        result["server_publish_time_outs"] = log.count("publish time out")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
