"""The exception hierarchy: one root, native failures mapped at the boundary with their message."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import sys

    if sys.version_info < (3, 11):
        from exceptiongroup import BaseExceptionGroup

    from ._types import DisconnectReason

__all__ = [
    "ConnectError",
    "ConnectionLostError",
    "EventStreamOverflowError",
    "LiveKitError",
    "NativeError",
    "PublishDTMFError",
    "PublishDataError",
    "PublishTrackError",
    "PublishTranscriptionError",
    "ResourceClosedError",
    "UnpublishTrackError",
]


class LiveKitError(Exception):
    """Root of every error lkanyio raises (besides ``ValueError``/``TypeError`` for bad input)."""


class NativeError(LiveKitError):
    """The native core refused or failed a request (with the native message when it has one)."""


class ResourceClosedError(LiveKitError):
    """The object was closed by you (its ``async with`` block ended or ``aclose()`` was called)."""


class ConnectionLostError(LiveKitError):
    """The server or the network ended the session.

    A room's ``async with`` block is cancelled when that happens and ends with this error.  If the
    block failed on its own first (an operation that failed because of the loss, or any error
    that the cancellation then buried in a cleanup ``await``), that failure is its ``__cause__``.
    Any other error that leaves the block uncancelled propagates unchanged.

    Attributes:
        reason: the :class:`~lkanyio.DisconnectReason` the native core reported, if any.
    """

    def __init__(self, message: str, *, reason: DisconnectReason | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class ConnectError(LiveKitError):
    """Joining the room failed; the message is the server's or the native core's."""


class EventStreamOverflowError(LiveKitError):
    """A control-event subscriber fell so far behind that its bounded buffer filled up.

    Control events are never dropped silently: the subscription is ended with this error instead.
    """


class PublishDataError(LiveKitError):
    """``publish_data`` failed."""


class PublishDTMFError(LiveKitError):
    """``publish_dtmf`` failed."""


class PublishTranscriptionError(LiveKitError):
    """``publish_transcription`` failed."""


class PublishTrackError(LiveKitError):
    """``publish_track`` failed."""


class UnpublishTrackError(LiveKitError):
    """``unpublish_track`` failed."""


def raise_lone(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the only exception of ``group`` exactly as it was raised, else ``group`` itself.

    For an ``async with`` that owns a task group: the user gets their own error, not an
    ``ExceptionGroup`` around it.  Raising an exception again inside ``except`` sets its
    ``__context__`` to the group being handled, and ``raise ... from None`` would also
    overwrite its ``__cause__`` and ``__suppress_context__`` (measured: a block's
    ``raise ValueError from KeyError`` arrived with ``__cause__`` None on both backends).  So all
    three are put back while the exception propagates (trio-websocket's ``_raise`` does the same).
    Call it only from the ``except`` clause that caught ``group``.
    """
    __tracebackhide__ = True  # pytest: start the traceback at the caller
    if len(group.exceptions) != 1:
        raise group
    exc = group.exceptions[0]
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        # Setting __cause__ sets __suppress_context__ too: restore that one last.
        exc.__cause__ = cause
        exc.__context__ = context
        exc.__suppress_context__ = suppress
        del exc, cause, context
