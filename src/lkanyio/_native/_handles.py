"""Native handles owned by Python objects: each dropped exactly once."""

from __future__ import annotations

from .._errors import NativeError, ResourceClosedError
from ._bridge import get_bridge

__all__ = ["OwnedHandle"]


class OwnedHandle:
    """A native handle that is dropped exactly once: by :meth:`close`, or when garbage collected.

    Thread-safe: the id lives in a one-element list and is taken out with ``list.pop``, which is
    atomic, so ``close()`` racing another ``close()`` or the finalizer (which may run in any
    thread) drops it once, with no lock a finalizer could deadlock on.
    """

    __slots__ = ("__weakref__", "_bridge", "_cell", "_id")

    def __init__(self, handle_id: int) -> None:
        if handle_id <= 0:
            raise NativeError("the native core returned no handle")
        self._bridge = get_bridge()
        self._id = handle_id  # for repr and error messages only; _cell decides
        self._cell = [handle_id]
        self._bridge.adopted()

    @property
    def id(self) -> int:
        """The native handle id.

        Raises:
            ResourceClosedError: if the handle was already dropped.
        """
        try:
            return self._cell[0]
        except IndexError:
            raise ResourceClosedError("this object has been closed") from None

    @property
    def closed(self) -> bool:
        """Whether the handle has been dropped."""
        return not self._cell

    def _take(self) -> int:
        try:
            return self._cell.pop()
        except IndexError:
            return 0

    def close(self) -> None:
        """Drop the handle (idempotent, from any thread)."""
        handle = self._take()
        if handle:
            self._bridge.drop_handle(handle)

    def disown(self) -> None:
        """Forget the handle without dropping it: the native core took ownership of it."""
        if self._take():
            self._bridge.disowned()

    def __del__(self) -> None:
        if getattr(self, "_cell", None):
            self.close()

    def __repr__(self) -> str:
        return f"<OwnedHandle {self._id if self._cell else 'closed'}>"

