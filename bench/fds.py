"""File descriptors per joined room: join rooms one by one and count ``/proc/self/fd``.

Public API only.  Each room is its own room name with one participant (this process), joined
and kept until all are joined; the count after each join, minus the count before the first (the
native core started, nothing joined), gives descriptors per room.  Both backends.

    sudo python bench/fds.py                    # 8 rooms, local livekit-server in a netns
    sudo python bench/fds.py --rooms 20
    sudo python bench/fds.py --pairs            # two publishing participants per room
"""

from __future__ import annotations

import argparse
import os
import resource
import uuid
from contextlib import AsyncExitStack, ExitStack

import anyio

import lkanyio
from lkanyio.testing import LocalServer, ServerInfo, enter_private_netns, make_token


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _socket_protocols() -> dict[str, str]:
    """``{inode: protocol}`` of the sockets this network namespace knows."""
    protocols = {}
    for proto in ("tcp", "tcp6", "udp", "udp6", "unix", "netlink", "raw", "raw6"):
        try:
            with open(f"/proc/self/net/{proto}") as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        column = {"unix": 6, "netlink": 8}.get(proto, 9)
        for line in lines:
            fields = line.split()
            if len(fields) > column:
                protocols[fields[column]] = proto
    return protocols


def fd_kinds() -> dict[str, int]:
    """Open descriptors by kind; sockets by protocol."""
    protocols = _socket_protocols()
    kinds: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        if kind == "socket":
            kind = protocols.get(target[len("socket:[") : -1], "socket")
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


async def join(
    stack: AsyncExitStack, info: ServerInfo, room: str, identity: str, publish: bool
) -> None:
    token = make_token(info, identity=identity, room=room)
    joined = await stack.enter_async_context(lkanyio.connect(info.url, token))
    if publish:
        source = await stack.enter_async_context(lkanyio.AudioSource(48_000, 1))
        track = await stack.enter_async_context(
            lkanyio.LocalAudioTrack.create_audio_track("mic", source)
        )
        await joined.local_participant.publish_track(track)


async def measure(info: ServerInfo, rooms: int, pairs: bool) -> None:
    # The native core's own threads and pipes come with its first use: start it first.
    async with lkanyio.connect(
        info.url, make_token(info, identity="warm", room=f"warm-{uuid.uuid4().hex[:6]}")
    ):
        pass
    base = open_fds()
    for _ in range(50):  # until what the warm-up room held is released
        await anyio.sleep(0.2)
        base, before = open_fds(), base
        if base == before:
            break
    counts = []
    async with AsyncExitStack() as stack:
        for _ in range(rooms):
            name = f"fds-{uuid.uuid4().hex[:8]}"
            await join(stack, info, name, "a", publish=pairs)
            if pairs:
                await join(stack, info, name, "b", publish=True)
            await anyio.sleep(0.5)
            counts.append(open_fds() - base)
        await anyio.sleep(5)  # the joins settle (ICE ends its gathering)
        settled = open_fds() - base
        kinds = fd_kinds()
    per_room = [b - a for a, b in zip([0, *counts], counts, strict=False)]
    print(f"  before joining: {base} fds; after each join: {counts}")
    print(f"  per room, 0.5 s after its join: {per_room}")
    print(f"  5 s after the last join: {settled} fds, {settled / rooms:.1f} per room; {kinds}")
    await anyio.sleep(1)
    print(f"  after leaving every room: {open_fds() - base:+d}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=8)
    parser.add_argument(
        "--pairs",
        action="store_true",
        help="two participants per room, each publishing an audio track (counts per room: both)",
    )
    args = parser.parse_args()
    print("RLIMIT_NOFILE:", resource.getrlimit(resource.RLIMIT_NOFILE))
    with ExitStack() as stack:
        node_ip = enter_private_netns()
        server = stack.enter_context(LocalServer(node_ip=node_ip))
        for backend in ("asyncio", "trio"):
            print(backend)
            anyio.run(measure, server.info, args.rooms, args.pairs, backend=backend)


if __name__ == "__main__":
    main()
