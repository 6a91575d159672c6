"""One end-to-end scenario, run in a child process under one *host* (how the program starts).

``python tests/hosts_scenario.py HOST`` with ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
``LIVEKIT_API_SECRET`` set.  The scenario: two participants exchange data, metadata, DTMF and a tone
both ways (the demo's exchange), one calls the other over RPC, one request is cancelled at its
deadline, both leave, and nothing is left in :func:`lkanyio.statistics`.  It prints one JSON line
per scenario run (``{"ok": true, ...}``) and exits 0 only if every run was clean.

Hosts: ``asyncio-run``, ``uvloop-run``, ``asyncio-loop-factory`` (``asyncio.run(...,
loop_factory=uvloop.new_event_loop)``; ``asyncio.Runner`` on 3.11), ``trio-run``,
``anyio-asyncio``, ``anyio-trio``, ``sequential`` (two ``asyncio.run`` in a row, then
``trio.run``), ``uvicorn`` (a Starlette app served by uvicorn, whose endpoint runs the scenario;
this script sends it a real HTTP request) and ``portal`` (synchronous code through
``anyio.from_thread.start_blocking_portal``).  ``two-loops`` checks that a second loop running at
once in another thread gets a clear error, not corrupted state.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import sys
import threading
import uuid
from typing import Any

import anyio

import lkanyio
from lkanyio import demo
from lkanyio.testing import external_server_from_env, make_token

SCENARIO_WAIT = 90.0
"""A hang guard for one scenario run, never a timing assertion."""


def _server() -> Any:
    info = external_server_from_env()
    if info is None:
        raise SystemExit("hosts_scenario: LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET")
    return info


def _leaks() -> dict[str, int]:
    stats = lkanyio.statistics()
    names = ("pending_requests", "bound_handles", "live_handles", "live_subscriptions")
    return {name: getattr(stats, name) for name in names if getattr(stats, name)}


async def _rpc_and_cancel(server: Any) -> dict[str, Any]:
    """RPC both ways, one call cancelled at its caller's deadline; both sides then leave."""
    room_name = f"hosts-{uuid.uuid4().hex[:8]}"
    carol_token = make_token(server, identity="carol", room=room_name)
    dave_token = make_token(server, identity="dave", room=room_name)
    result: dict[str, Any] = {}
    async with lkanyio.connect(server.url, carol_token) as carol:
        release = anyio.Event()

        @carol.local_participant.register_rpc_method("square")
        async def square(data: lkanyio.RpcInvocationData) -> str:
            return str(int(data.payload) ** 2)

        @carol.local_participant.register_rpc_method("stall")
        async def stall(data: lkanyio.RpcInvocationData) -> str:
            await release.wait()
            return "late"

        async with lkanyio.connect(server.url, dave_token) as dave:
            with anyio.fail_after(20):
                while "carol" not in dave.remote_participants:
                    await anyio.sleep(0.02)
            dp = dave.local_participant
            result["square"] = await dp.perform_rpc(
                destination_identity="carol", method="square", payload="7"
            )
            with anyio.move_on_after(0.5) as scope:
                await dp.perform_rpc(destination_identity="carol", method="stall", payload="")
            result["cancelled"] = scope.cancelled_caught
            release.set()
    return result


async def scenario() -> dict[str, Any]:
    """The whole scenario once, in whatever event loop runs it."""
    server = _server()
    lines: list[str] = []
    reports = demo.new_reports()
    with anyio.fail_after(SCENARIO_WAIT):
        await demo.run(server, reports, say=lines.append)
        rpc = await _rpc_and_cancel(server)
    problems = [p for report in reports for p in report.problems]
    if rpc.get("square") != "49":
        problems.append(f"RPC answered {rpc.get('square')!r}, not '49'")
    if rpc.get("cancelled") is not True:
        problems.append("the stalled RPC was not cancelled at its deadline")
    leaks = _leaks()
    if leaks:
        problems.append(f"left behind: {leaks}")
    return {"ok": not problems, "problems": problems}


def _report(host: str, outcome: dict[str, Any]) -> bool:
    print(json.dumps({"host": host, **outcome}), flush=True)
    return bool(outcome["ok"])


def _run_asyncio() -> dict[str, Any]:
    return asyncio.run(scenario())


def _run_uvloop() -> dict[str, Any]:
    import uvloop

    return uvloop.run(scenario())


def _run_loop_factory() -> dict[str, Any]:
    import uvloop

    if sys.version_info >= (3, 12):
        return asyncio.run(scenario(), loop_factory=uvloop.new_event_loop)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(scenario())
    loop = uvloop.new_event_loop()  # pragma: no cover - Python 3.10
    try:
        return loop.run_until_complete(scenario())
    finally:
        loop.close()


def _run_trio() -> dict[str, Any]:
    import trio

    return trio.run(scenario)


def _run_uvicorn() -> dict[str, Any]:
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse(await scenario())

    app = Starlette(routes=[Route("/scenario", endpoint)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(timeout=SCENARIO_WAIT + 30) as client:
            for _ in range(200):
                if server.started:
                    break
                threading.Event().wait(0.05)
            response = client.get(f"http://127.0.0.1:{port}/scenario")
            response.raise_for_status()
            outcome: dict[str, Any] = response.json()
    finally:
        server.should_exit = True
        thread.join(30)
    return outcome


def _run_portal() -> dict[str, Any]:
    """The documented recipe for synchronous callers: join, send, receive, leave."""
    server = _server()
    room_name = f"portal-{uuid.uuid4().hex[:8]}"
    problems: list[str] = []
    with anyio.from_thread.start_blocking_portal() as portal:
        erin_cm = lkanyio.connect(server.url, make_token(server, identity="erin", room=room_name))
        frank_cm = lkanyio.connect(server.url, make_token(server, identity="frank", room=room_name))
        with portal.wrap_async_context_manager(erin_cm) as erin:
            with portal.wrap_async_context_manager(frank_cm) as frank:
                with portal.wrap_async_context_manager(frank.events()) as events:
                    send = functools.partial(
                        erin.local_participant.publish_data, "from sync code", topic="t"
                    )
                    portal.call(send)

                    async def next_data() -> bytes:
                        with anyio.fail_after(20):
                            async for event in events:
                                if isinstance(event, lkanyio.DataReceived):
                                    return event.data
                        raise AssertionError("the event stream ended")

                    data = portal.call(next_data)
                    if data != b"from sync code":
                        problems.append(f"frank got {data!r}")
        # A synchronous native call from this (non-loop) thread works too.
        frame = lkanyio.VideoFrame(
            16, 16, lkanyio.VideoBufferType.RGBA, bytes(range(256)) * 4
        ).convert(lkanyio.VideoBufferType.I420)
        if (frame.width, frame.height) != (16, 16):
            problems.append("convert from a worker thread returned the wrong frame")
        problems.extend(portal.call(_portal_leaks))
    return {"ok": not problems, "problems": problems}


async def _portal_leaks() -> list[str]:
    leaks = _leaks()
    return [f"left behind: {leaks}"] if leaks else []


def _two_loops() -> dict[str, Any]:
    """A second loop running at the same time in another thread gets a clear error."""
    server = _server()
    first_in = threading.Event()
    second_done = threading.Event()
    outcome: dict[str, Any] = {}

    async def first() -> None:
        token = make_token(server, identity="g1", room=f"two-{uuid.uuid4().hex[:8]}")
        async with lkanyio.connect(server.url, token):
            first_in.set()
            while not second_done.is_set():
                await asyncio.sleep(0.02)

    async def second() -> None:
        token = make_token(server, identity="g2", room=f"two-{uuid.uuid4().hex[:8]}")
        try:
            async with lkanyio.connect(server.url, token):
                outcome["second"] = "joined"
        except RuntimeError as exc:
            outcome["second"] = f"RuntimeError: {exc}"
        except BaseException as exc:  # reported, never hidden
            outcome["second"] = f"{type(exc).__name__}: {exc}"

    def run_second() -> None:
        first_in.wait(30)
        try:
            asyncio.run(second())
        finally:
            second_done.set()

    thread = threading.Thread(target=run_second)
    thread.start()
    asyncio.run(first())
    thread.join(30)
    got = outcome.get("second", "nothing")
    problems = []
    if not (got.startswith("RuntimeError:") and "one running event loop" in got):
        problems.append(f"the second loop got {got!r}, not the clear RuntimeError")
    # The first loop's bridge state is intact: a new run afterwards still works end to end.
    after = asyncio.run(scenario())
    problems.extend(after["problems"])
    return {"ok": not problems, "problems": problems, "second": got}


HOSTS = {
    "asyncio-run": [_run_asyncio],
    "uvloop-run": [_run_uvloop],
    "asyncio-loop-factory": [_run_loop_factory],
    "trio-run": [_run_trio],
    "anyio-asyncio": [lambda: anyio.run(scenario, backend="asyncio")],
    "anyio-trio": [lambda: anyio.run(scenario, backend="trio")],
    "sequential": [_run_asyncio, _run_asyncio, _run_trio],
    "uvicorn": [_run_uvicorn],
    "portal": [_run_portal],
    "two-loops": [_two_loops],
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in HOSTS:
        print(f"usage: hosts_scenario.py {{{','.join(HOSTS)}}}", file=sys.stderr)
        return 2
    host = argv[0]
    ok = True
    for run in HOSTS[host]:
        try:
            outcome = run()
        except BaseException as exc:
            import traceback

            traceback.print_exc()
            outcome = {"ok": False, "problems": [f"{type(exc).__name__}: {exc}"]}
        ok = _report(host, outcome) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
