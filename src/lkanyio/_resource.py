"""One base for objects that own a native resource: ``close``, ``aclose`` and ``async with``.

The model is anyio's :class:`~anyio.abc.AsyncResource` (and trio's ``AsyncResource``): a
subclass implements the synchronous, idempotent :meth:`Resource.close`; the base gives it
``aclose`` and the async context manager.  Release is synchronous (a subclass may wait, shielded,
in ``_released`` for a release that needs a native answer), so ``aclose`` has released when its
checkpoint sees a cancellation: the resource is released even if cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.lowlevel

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["Resource"]


class Resource:
    """Base of lkanyio's closable objects (private: users see the methods, not the class)."""

    __slots__ = ()

    def close(self) -> None:  # pragma: no cover - every subclass overrides it
        """Release the resource (idempotent, synchronous)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the resource (see :meth:`close`); it is released even if cancelled."""
        self.close()
        await self._released()
        await anyio.lowlevel.checkpoint()

    async def _released(self) -> None:
        """Wait, shielded, for what :meth:`close` started but could not finish (default: none).

        A subclass whose native release waits for an answer (``AudioSource`` with a capture in
        flight) overrides this, so that nothing of it is left when ``async with`` ends.
        """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
