"""A room held open by a task of its own, for notebooks and REPLs (:func:`hold_open`).

A room is an ``async with`` resource: its task group and cancel scopes belong to the task that
entered it, and only that task can leave it.  A Jupyter kernel runs each cell as its own asyncio
task, so ``await connect(...).__aenter__()`` in one cell and ``__aexit__`` in another fails
(measured with ipykernel 7.4: ``RuntimeError: Attempted to exit cancel scope in a different task
than it was entered in``).  :func:`hold_open` gives the ``async with`` a task of its own on the
running loop, the *owner*, which enters the room, waits until :meth:`HeldRoom.aclose` asks it
to leave, and leaves; the cells only call the room.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, final

import anyio
import sniffio

from ._errors import ResourceClosedError
from ._room import Room

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ["HeldRoom", "hold_open"]


def _spawn(owner: Coroutine[Any, Any, None], name: str) -> Any:
    """Start ``owner`` as a task of the running loop that no caller's cancel scope reaches.

    asyncio: a plain task of the loop (the caller's context is copied, as for any task); the
    loop cancels it when it shuts down (``asyncio.run`` cancels what is left).  trio: a system
    task (with the caller's context): trio cancels it when the run ends, and it is shielded
    from ``KeyboardInterrupt``, which goes to the main task.
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        import asyncio

        return asyncio.get_running_loop().create_task(owner, name=name)
    if library == "trio":
        import trio

        async def run() -> None:
            await owner

        trio.lowlevel.spawn_system_task(run, name=name, context=contextvars.copy_context())
        return None
    raise RuntimeError(f"hold_open() runs on asyncio or trio, not {library}")


async def hold_open(room: Room) -> HeldRoom:
    """Join a room and keep it open until :meth:`HeldRoom.aclose`, from any task (notebooks).

    A Jupyter (IPython) kernel runs each cell as its own task, and an ``async with`` block
    cannot span cells.  This joins ``room`` in a task of its own on the running loop, which
    keeps the room's ``async with`` open, so that later cells use the room and any cell can
    close it::

        held = await lkanyio.hold_open(lkanyio.connect(url, token))   # one cell
        room = held.room
        await room.local_participant.publish_data(b"hi")               # later cells
        await held.aclose()                                             # any cell

    Interrupting or cancelling a cell cancels what that cell awaits, not the room.  If the
    session ends (the server removed the participant, the network is gone), the room's calls
    raise :class:`~lkanyio.ConnectionLostError` from then on, and :meth:`HeldRoom.aclose`
    raises it too.  In code with a task group of its own, prefer ``async with connect(...)``.

    Args:
        room: what :func:`~lkanyio.connect` returned, not yet entered.

    Returns:
        The held room, joined.

    Raises:
        ConnectError: the server or the native core refused the connection (nothing is left
            behind).
        TypeError: ``room`` is not a :class:`~lkanyio.Room`.
        RuntimeError: ``room`` was entered already.
    """
    if not isinstance(room, Room):
        raise TypeError(f"hold_open() takes what lkanyio.connect() returned, not {room!r}")
    held = HeldRoom(room)
    held._task = _spawn(held._own(), name=f"lkanyio.hold_open({room!r})")
    try:
        await held._settled.wait()
    except BaseException:
        # The caller gave up while joining (a cancelled or interrupted cell): the owner leaves
        # the room, and nothing of it is left when this returns.
        held._scope.cancel()
        with anyio.CancelScope(shield=True):
            await held._done.wait()
        raise
    if held._done.is_set():  # the join failed: the caller gets its error, not aclose()
        error = held._take_error()
        assert error is not None
        raise error
    return held


@final
class HeldRoom:
    """A joined room that a task of its own keeps open until :meth:`aclose` (:func:`hold_open`)."""

    def __init__(self, room: Room) -> None:
        self._room = room
        self._scope = anyio.CancelScope()  # the owner's, cancelled only if the join is abandoned
        self._settled = anyio.Event()  # joined, or failed to
        self._leave = anyio.Event()  # aclose() asked the owner to leave
        self._done = anyio.Event()  # the owner has left: nothing of the room is left
        self._error: BaseException | None = None  # how the room ended, until reported
        self._task: Any = None  # asyncio's task (a strong reference); None on trio

    @property
    def room(self) -> Room:
        """The room; its calls raise :class:`~lkanyio.ConnectionLostError` once the session ends."""
        return self._room

    @property
    def closed(self) -> bool:
        """Whether the room has been left (closed by :meth:`aclose`, or ended by the server)."""
        return self._done.is_set()

    async def aclose(self) -> None:
        """Leave the room and wait until nothing of it is left; from any task (idempotent).

        The room is left even if the caller is cancelled meanwhile (the wait is shielded and
        bounded, as leaving an ``async with connect(...)`` block is).

        Raises:
            ConnectionLostError: the session had ended before (reported once: the first
                ``aclose`` raises it, later ones return).
        """
        self._leave.set()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
        error = self._take_error()
        if error is not None:
            raise error
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<lkanyio.HeldRoom {state} {self._room!r}>"

    def _take_error(self) -> BaseException | None:
        error, self._error = self._error, None
        return error

    async def _own(self) -> None:
        """The owner task: enter the room, wait for :meth:`aclose`, leave."""
        cancelled = anyio.get_cancelled_exc_class()
        try:
            with self._scope:
                async with self._room:
                    self._settled.set()
                    await self._leave.wait()
        except cancelled:
            # Not ours (ours is caught by the scope): the loop is shutting down.  The room is
            # left; later calls say so, and the cancellation goes on.
            self._error = ResourceClosedError("the room was left because its event loop shut down")
            raise
        except Exception as exc:  # ConnectionLostError, ConnectError: reported to the user
            self._error = exc
        finally:
            self._done.set()
            self._settled.set()
