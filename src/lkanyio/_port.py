"""The one small port through which the room's features reach the room.

``LocalParticipant``, the RPC server, the E2EE manager, the data-stream functions and writers
and ``LocalDataTrack`` need a few things of the room they belong to: its session (the state
and its request-side changes), the local participant's handle, whether it is still
connected, a place to start tasks, and a way to wait until the room's state shows something.
They get exactly that, as a :class:`RoomPort`, and never the ``Room`` itself: no feature module
imports ``_room`` at run time or touches its private attributes (``tests/unit/test_core_layout.py``
checks both).  ``Room`` implements the port in ``_room.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._core._session import RoomSession
    from ._data_tracks import LocalDataTrack, RemoteDataTrack
    from ._media._track import LocalTrack, RemoteTrack
    from ._native._proto import ffi_pb2
    from ._participant import (
        LocalParticipant,
        ParticipantPermissions,
        RemoteParticipant,
        TranscriptionSegment,
    )
    from ._publication import LocalTrackPublication, RemoteTrackPublication
    from ._rpc import RpcServer

    Session: TypeAlias = RoomSession[
        RemoteParticipant,
        LocalParticipant,
        RemoteTrackPublication,
        LocalTrackPublication,
        RemoteTrack,
        LocalTrack,
        RemoteDataTrack,
        LocalDataTrack,
        ParticipantPermissions,
        TranscriptionSegment,
    ]
    """The room's session, holding the public views (the core names none of them)."""

__all__ = ["RoomPort"]


class RoomPort(Protocol):
    """What a feature may ask of its room."""

    @property
    def session(self) -> Session:
        """The room's state (read it; change it only through its request-side methods).

        Raises:
            ResourceClosedError: before the room is joined.
        """
        ...

    @property
    def connected(self) -> bool:
        """Whether the room is connected (or reconnecting) and not leaving."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the room has released everything (nothing may be sent for it any more)."""
        ...

    def check_connected(self) -> None:
        """Raise unless the room is connected.

        Raises:
            ConnectionLostError: the server or the network ended the session.
            ResourceClosedError: the room is not joined, or is leaving.
        """
        ...

    def request(self) -> ffi_pb2.FfiRequest:
        """A new request, after :meth:`check_connected`."""
        ...

    def room_handle(self) -> int:
        """The native room's handle, after :meth:`check_connected`."""
        ...

    def local_handle(self) -> int:
        """The local participant's native handle.

        Raises:
            ResourceClosedError: the room has been left.
        """
        ...

    def spawn(
        self, fn: Callable[..., Coroutine[Any, Any, object]], *args: object, name: str
    ) -> bool:
        """Start ``fn(*args)`` in the room's task group.

        Returns ``False`` (nothing started) if the room is leaving or gone.
        """
        ...

    def serve_rpc(self, server: RpcServer) -> None:
        """Route this room's RPC invocations to ``server`` (and cancel its calls on leaving)."""
        ...

    async def wait_state(self, predicate: Callable[[], bool], bound: float) -> bool:
        """Wait until ``predicate()`` holds, re-checked after each change of the room's state.

        Gives up (returning ``predicate()``) after ``bound`` seconds or once the room is no
        longer connected; never raises for either.
        """
        ...

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds.

        It is re-checked after each change of the room's state and when the room closes (so
        the predicate must hold once the room has closed).
        """
        ...
