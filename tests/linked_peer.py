"""An lkanyio participant behind a link of its own, for the network-cut test.

Run in a child process: ``python linked_peer.py URL TOKEN TOPIC LINK ADDRESS GATEWAY``.  The
child moves itself into a new network namespace first thing (while it has one thread); the
parent then moves the veth end LINK into it (``ip link set LINK netns PID``) and says so on
stdin.  The child gives LINK the address ADDRESS/24, routes everything through GATEWAY (the
parent's end, in the test namespace: the server's addresses are local there) and joins.  Its
traffic to the server arrives on the parent's veth, not on the test namespace's ``lo``, so
taking ``lo`` down cuts the test process's participants and not this one.

JSON lines:

* stdout: ``{"netns": pid}`` once in its namespace; ``{"ready": true}`` once joined;
  ``{"data": hex, "kind": name}`` for every data packet on TOPIC, in the order received;
  ``{"event": name}`` for every Reconnecting, Reconnected and Disconnected.
* stdin: ``moved`` once LINK is in its namespace; EOF leaves the room and exits 0.

Whatever happens it ends the process once ``main`` is over (status 1 after an error's
traceback): the thread waiting for EOF could otherwise keep it alive.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import traceback
from typing import Any

_CLONE_NEWNET = 0x40000000


def emit(**message: Any) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def enter_own_namespace(link: str, address: str, gateway: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
    emit(netns=os.getpid())
    if sys.stdin.readline() != "moved\n":
        raise SystemExit("the parent did not move the link into this namespace")
    for args in (
        ("link", "set", "lo", "up"),
        ("addr", "add", f"{address}/24", "dev", link),
        ("link", "set", link, "up"),
        ("route", "add", "default", "via", gateway),
    ):
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"'ip {' '.join(args)}' failed: {done.stderr.strip()}")


async def main(url: str, token: str, topic: str) -> None:
    import anyio

    import lkanyio
    from _util import announce

    async with lkanyio.connect(url, token) as room, room.events() as events:
        await announce(room)
        async with anyio.create_task_group() as tasks:

            async def leave_on_eof() -> None:
                await anyio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
                tasks.cancel_scope.cancel()

            tasks.start_soon(leave_on_eof)
            emit(ready=True)
            async for event in events:
                if isinstance(event, lkanyio.DataReceived) and event.topic == topic:
                    emit(data=event.data.hex(), kind=event.kind.name)
                elif isinstance(
                    event, (lkanyio.Reconnecting, lkanyio.Reconnected, lkanyio.Disconnected)
                ):
                    emit(event=type(event).__name__)


if __name__ == "__main__":
    url, token, topic, link, address, gateway = sys.argv[1:]
    status = 1
    try:
        enter_own_namespace(link, address, gateway)  # before lkanyio starts any thread
        import anyio

        anyio.run(main, url, token, topic)
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
