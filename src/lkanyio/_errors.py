"""The exception hierarchy: one root, native failures mapped at the boundary with their message."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
