"""A room held across notebook cells: :func:`lkanyio.hold_open`, in a real IPython kernel too.

A Jupyter kernel runs each cell as its own asyncio task.  Before ``hold_open``, a room entered
with ``await connect(...).__aenter__()`` in one cell could not be left in another (ipykernel 7.4,
the notebook of the first test with that pair of calls): ``RuntimeError: Attempted to exit
cancel scope in a different task than it was entered in``, from ``Room.__aexit__`` exiting its
task group.  The tests below stand in for cells with tasks of a task group, on both backends;
the first runs the documentation's example notebook in a real kernel.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import nbformat
import pytest
from nbclient import NotebookClient

import lkanyio
from _util import EVENT_WAIT, TokenFactory, announce, next_event
from lkanyio.testing import remove_participant

pytestmark = pytest.mark.usefixtures("no_leaks_after")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "notebook.ipynb"
HOW_TO = ROOT / "docs" / "how-to" / "notebooks.md"

# Cells the test adds to the example before its last (closing) cell: an interrupted cell (the
# kernel's own SIGINT path: ipykernel cancels the running cell's task), then the room at work.
INTERRUPTED = """\
import asyncio, os, signal
asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGINT)
async with room.events() as events:
    async for event in events:  # waits until the interrupt
        pass
"""
AFTER = """\
await room.local_participant.publish_data(b"after the interrupt", topic="notebook")
print("state:", room.connection_state.name)
"""


def _code_cells(nb: Any) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def test_the_how_to_shows_the_example_notebooks_cells() -> None:
    # The page's blocks are cells (top-level await): they are run here, in the notebook.
    blocks = re.findall(r"^```python\n(.*?)^```", HOW_TO.read_text(), re.DOTALL | re.MULTILINE)
    cells = _code_cells(nbformat.read(EXAMPLE, as_version=4))
    assert len(blocks) >= 3
    assert [block.strip() for block in blocks] == [cell.strip() for cell in cells]


def test_a_notebook_holds_a_room_across_cells_and_closes_it_from_a_later_one(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    nb = nbformat.read(EXAMPLE, as_version=4)
    extra = [nbformat.v4.new_code_cell(INTERRUPTED), nbformat.v4.new_code_cell(AFTER)]
    extra[0].metadata["tags"] = ["raises-exception"]  # nbclient: this cell's error is expected
    nb.cells[-1:-1] = extra
    env = {
        **os.environ,
        "LIVEKIT_URL": server_info.url,
        "LIVEKIT_TOKEN": token_factory("notebook", room_name),
    }
    # A hang guard per cell; the kernel (a child: it shares this worker's network namespace)
    # is python3, ipykernel's own spec on this interpreter.
    client = NotebookClient(nb, kernel_name="python3", timeout=120)
    received: list[bytes] = []

    async def watch() -> None:
        token = token_factory("watcher", room_name)
        async with lkanyio.connect(server_info.url, token) as room, room.events() as events:
            await announce(room)
            async with anyio.create_task_group() as tg:
                # nbclient's execute() runs on a loop jupyter_core makes for the thread and
                # never closes: collected later, it failed whichever test ran the garbage
                # collector with an unclosed-event-loop ResourceWarning.  asyncio.run closes it.
                tg.start_soon(
                    anyio.to_thread.run_sync,
                    lambda: asyncio.run(client.async_execute(env=env)),
                )
                while len(received) < 2:
                    got = await next_event(events, lkanyio.DataReceived)
                    received.append(got.data)
                left = await next_event(events, lkanyio.ParticipantDisconnected)
                assert left.participant.identity == "notebook"

    # The watcher on trio; the notebook's kernel runs asyncio (ipykernel's loop).
    anyio.run(watch, backend="trio")

    outputs = [
        "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
        for cell in nb.cells
        if cell.cell_type == "code"
    ]
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert [e.ename for e in errors] == ["CancelledError"], json.dumps(errors)[-3000:]
    assert f"joined {room_name} as notebook" in outputs[1]
    assert outputs[2].strip() == "['watcher']"
    assert outputs[-2].strip() == "state: CONNECTED"
    assert outputs[-1].strip() == "live handles: 0"
    assert received == [b"hello from a notebook", b"after the interrupt"]


@asynccontextmanager
async def bob_listening(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> AsyncIterator[lkanyio.EventStream[lkanyio.RoomEvent]]:
    """Bob in the room, and his events (he sees what the held room does)."""
    async with lkanyio.connect(server_info.url, token_factory("bob", room_name)) as bob:
        async with bob.events() as events:
            yield events


async def hold_alice(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> lkanyio.HeldRoom:
    room = lkanyio.connect(server_info.url, token_factory("alice", room_name))
    return await lkanyio.hold_open(room)


@pytest.mark.anyio
async def test_cells_as_tasks_join_use_and_leave(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with bob_listening(server_info, token_factory, room_name) as events:
        held: list[lkanyio.HeldRoom] = []

        async def join() -> None:
            held.append(await hold_alice(server_info, token_factory, room_name))
            await announce(held[0].room)

        async def send() -> None:
            await held[0].room.local_participant.publish_data(b"from a later task")

        async def leave() -> None:
            await held[0].aclose()

        for cell in (join, send, leave):  # each "cell" its own task, as in a kernel
            async with anyio.create_task_group() as tg:
                tg.start_soon(cell)
            if cell is join:
                assert not held[0].closed
                assert "open" in repr(held[0])
        got = await next_event(events, lkanyio.DataReceived)
        assert got.data == b"from a later task"
        left = await next_event(events, lkanyio.ParticipantDisconnected)
        assert left.participant.identity == "alice"
        assert held[0].closed
        assert "closed" in repr(held[0])
        await held[0].aclose()  # idempotent
        with pytest.raises(lkanyio.ResourceClosedError):
            await held[0].room.local_participant.publish_data(b"after leaving")


@pytest.mark.anyio
async def test_a_cancelled_cell_leaves_the_room_open(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with bob_listening(server_info, token_factory, room_name) as events:
        held = await hold_alice(server_info, token_factory, room_name)
        try:
            async with anyio.create_task_group() as tg:

                async def waits_for_events() -> None:
                    async with held.room.events() as mine:
                        async for _ in mine:
                            pass

                tg.start_soon(waits_for_events)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()  # an interrupted cell
            assert not held.closed
            await held.room.local_participant.publish_data(b"still here")
            got = await next_event(events, lkanyio.DataReceived)
            assert got.data == b"still here"
        finally:
            await held.aclose()


@pytest.mark.anyio
async def test_a_lost_session_fails_the_next_call_and_the_close(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    held = await hold_alice(server_info, token_factory, room_name)
    await held.room.wait_for_sid()
    await anyio.to_thread.run_sync(remove_participant, server_info, room_name, "alice")
    with anyio.fail_after(EVENT_WAIT):
        while not held.closed:  # the owner left the room on its own
            await anyio.sleep(0.02)
    with pytest.raises(lkanyio.ConnectionLostError) as call:
        await held.room.local_participant.publish_data(b"too late")
    assert call.value.reason == lkanyio.DisconnectReason.PARTICIPANT_REMOVED
    with pytest.raises(lkanyio.ConnectionLostError) as close:
        await held.aclose()
    assert close.value.reason == lkanyio.DisconnectReason.PARTICIPANT_REMOVED
    await held.aclose()  # reported once


@pytest.mark.anyio
async def test_a_refused_join_raises_from_hold_open(server_info: Any) -> None:
    with pytest.raises(lkanyio.ConnectError):
        await lkanyio.hold_open(lkanyio.connect(server_info.url, "not-a-token"))


@pytest.mark.anyio
async def test_a_join_its_caller_gave_up_leaves_nothing(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    room = lkanyio.connect(server_info.url, token_factory("alice", room_name))
    with anyio.CancelScope() as scope:
        scope.cancel()  # cancelled at once: while the owner task is joining
        await lkanyio.hold_open(room)
    assert scope.cancelled_caught
    # no_leaks_after: no pending request, no handle (a connect finishing later is left again)


@pytest.mark.anyio
async def test_hold_open_takes_an_unentered_room(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    with pytest.raises(TypeError, match=r"lkanyio\.connect\(\)"):
        await lkanyio.hold_open("ws://localhost:7880")  # type: ignore[arg-type]
    room = lkanyio.connect(server_info.url, token_factory("alice", room_name))
    async with room:
        with pytest.raises(RuntimeError, match="entered only once"):
            await lkanyio.hold_open(room)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_loop_that_ends_with_the_room_held_leaves_it(
    backend: str, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # asyncio.run cancels the tasks left when its main returns; trio cancels its system tasks.
    held = anyio.run(hold_alice, server_info, token_factory, room_name, backend=backend)
    assert held.closed
    assert lkanyio.statistics().live_handles == 0

    async def call_it() -> None:
        with pytest.raises(lkanyio.ResourceClosedError):
            await held.room.local_participant.publish_data(b"after the loop")
        with pytest.raises(lkanyio.ResourceClosedError, match="event loop shut down"):
            await held.aclose()

    anyio.run(call_it, backend=backend)
