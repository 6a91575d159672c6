"""The exception hierarchy: one root, native failures mapped at the boundary with their message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar, final

from ._checks import check_uint

if TYPE_CHECKING:
    import sys
    from collections.abc import Mapping

    if sys.version_info < (3, 11):
        from exceptiongroup import BaseExceptionGroup

    from ._types import DisconnectReason

__all__ = [
    "APIConnectionError",
    "APIError",
    "AudioDeviceError",
    "AudioFilterError",
    "ConnectError",
    "ConnectionLostError",
    "DataStreamError",
    "DataStreamOverflowError",
    "DataTrackError",
    "EventStreamOverflowError",
    "InvalidTokenError",
    "LiveKitError",
    "NativeError",
    "PublishDTMFError",
    "PublishDataError",
    "PublishTrackError",
    "PublishTranscriptionError",
    "ResourceClosedError",
    "RpcError",
    "ServerUnreachableError",
    "SipCallError",
    "TwirpError",
    "UnpublishTrackError",
    "WebhookError",
    "WorkerError",
    "check_native",
    "native_error",
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


class WorkerError(LiveKitError):
    """An agent worker cannot serve: the server refused it, or the URL is not a LiveKit server.

    Raised by :meth:`lkanyio.worker.Worker.serve` for what waiting will not mend (bad credentials,
    a refused registration, something other than livekit-server at the URL); a server that is
    down or restarting is retried instead.
    """


class ConnectError(NativeError):
    """Joining the room failed; the message is the server's or the native core's."""


class EventStreamOverflowError(LiveKitError):
    """A control-event subscriber fell so far behind that its bounded buffer filled up.

    Control events are never dropped silently: the subscription is ended with this error instead.
    """


class PublishDataError(NativeError):
    """``publish_data`` failed."""


class PublishDTMFError(NativeError):
    """``publish_dtmf`` failed."""


class PublishTranscriptionError(NativeError):
    """``publish_transcription`` failed."""


class PublishTrackError(NativeError):
    """``publish_track`` failed."""


class UnpublishTrackError(NativeError):
    """``unpublish_track`` failed."""


@final
class RpcError(LiveKitError):
    """An RPC failed: the built-in codes below, or an application's own code (< 1000).

    Raise it from a handler to send that code, message and data to the caller.  What the wire
    cannot carry is made to fit on the way: lone surrogates in the message and data become
    U+FFFD, and they are cut (at a character boundary) to LiveKit's limits of 256 and 15,360
    UTF-8 bytes.

    Args:
        code: the error code, an ``int`` from 0 to ``2**32 - 1`` (a uint32 on the wire).
        message: a human-readable message.
        data: optional application data.

    Raises:
        TypeError: ``code`` is not an ``int``, ``message`` not a ``str``, ``data`` neither a
            ``str`` nor ``None``.
        ValueError: ``code`` is out of range.
    """

    APPLICATION_ERROR: ClassVar[int] = 1500
    CONNECTION_TIMEOUT: ClassVar[int] = 1501
    RESPONSE_TIMEOUT: ClassVar[int] = 1502
    RECIPIENT_DISCONNECTED: ClassVar[int] = 1503
    RESPONSE_PAYLOAD_TOO_LARGE: ClassVar[int] = 1504
    SEND_FAILED: ClassVar[int] = 1505
    UNSUPPORTED_METHOD: ClassVar[int] = 1400
    RECIPIENT_NOT_FOUND: ClassVar[int] = 1401
    REQUEST_PAYLOAD_TOO_LARGE: ClassVar[int] = 1402
    UNSUPPORTED_SERVER: ClassVar[int] = 1403
    UNSUPPORTED_VERSION: ClassVar[int] = 1404

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        # Checked here, not when the answer is encoded: protobuf refused a code beyond 32 bits
        # there ("Value out of range"), inside the room's task group, and that ended the room.
        check_uint("code", code)
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")
        if data is not None and not isinstance(data, str):
            raise TypeError(f"data must be a str or None, not {type(data).__name__}")
        super().__init__(f"RPC error {code}: {message}")
        self._code = code
        self._message = message
        self._data = data

    @property
    def code(self) -> int:
        """The error code."""
        return self._code

    @property
    def message(self) -> str:
        """A human-readable message."""
        return self._message

    @property
    def data(self) -> str | None:
        """Optional application data."""
        return self._data

    @classmethod
    def _from_proto(cls, error: Any) -> RpcError:
        return cls(error.code, error.message, error.data if error.HasField("data") else None)


class DataStreamError(NativeError):
    """Sending or reading a data stream failed (the native description is the message)."""


class DataStreamOverflowError(DataStreamError):
    """An incoming stream outgrew its reader's ``max_buffered_bytes`` and was given up.

    The native core pushes a stream's chunks as they arrive and cannot be asked to wait, so
    a reader holds at most that many unread bytes: past it the stream is released (the room
    and the subscription carry on) and reading it raises this error after what was buffered.
    """


class DataTrackError(NativeError):
    """Publishing, pushing to or subscribing to a data track failed (native message)."""


@final
class AudioDeviceError(NativeError):
    """The platform's audio devices are unavailable, or a device request failed.

    The message carries the native core's text (e.g. ``Failed to initialize platform audio`` on
    a machine without sound devices).
    """


@final
class AudioFilterError(NativeError):
    """A native audio-filter plugin could not be loaded, or a stream names one that is not.

    The message carries the native core's text when it gave one.
    """


class APIError(LiveKitError):
    """A call to the LiveKit server API (:mod:`lkanyio.api`) failed.

    The message names the service and the method (``RoomService.CreateRoom: ...``).

    Attributes:
        service: the Twirp service (``"RoomService"``, ``"AgentDispatchService"``, ``"Egress"``,
            ``"Ingress"``, ``"SIP"``, ``"Connector"``).
        method: the Twirp method (``"CreateRoom"``).
    """

    def __init__(self, message: str, *, service: str, method: str) -> None:
        super().__init__(f"{service}.{method}: {message}")
        self.service = service
        self.method = method
        self._text = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._text, self.__dict__))


class TwirpError(APIError):
    """The server answered a server API call with an error (a Twirp error).

    ``lkanyio.api.ServerError`` is this class (livekit-api's name for it).

    Attributes:
        code: the Twirp error code (``"not_found"``, ``"unauthenticated"``, ...: the values of
            ``lkanyio.api.ServerErrorCode``).
        message: the server's message.
        status: the HTTP status of the answer.
        metadata: the error's metadata (``{}`` when it has none).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        service: str,
        method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        what = f"{code} (HTTP {status})" + (f": {message}" if message else "")
        if metadata:
            what += " " + ", ".join(f"{k}={v}" for k, v in sorted(metadata.items()))
        super().__init__(what, service=service, method=method)
        self.code = code
        self.message = message
        self.status = status
        self.metadata: dict[str, str] = dict(metadata or {})


@final
class SipCallError(TwirpError):
    """A SIP call or transfer failed with a SIP status or a transfer reason.

    Raised by ``sip.create_sip_participant`` and ``sip.transfer_sip_participant`` when the
    server's error carries ``sip_status_code`` or ``sip_transfer_reason`` in its metadata.
    """

    @property
    def sip_status_code(self) -> int | None:
        """The SIP response code of the failed call (486: Busy Here), if the server sent one."""
        raw = self.metadata.get("sip_status_code")
        try:
            return None if raw is None else int(raw)
        except ValueError:
            return None

    @property
    def sip_status(self) -> str | None:
        """The SIP reason phrase (``"Busy Here"``), if the server sent one."""
        return self.metadata.get("sip_status")

    @property
    def sip_transfer_reason(self) -> str | None:
        """Why a transfer failed (``"STR_RINGING_TIMEOUT"``), if it was a transfer."""
        return self.metadata.get("sip_transfer_reason")

    @property
    def sip_transfer_id(self) -> str | None:
        """The id of the failed transfer, if the server sent one."""
        return self.metadata.get("sip_transfer_id")


class APIConnectionError(APIError):
    """The connection to the server failed during a server API call (the cause is chained).

    The server may or may not have carried out the request.
    """


@final
class ServerUnreachableError(APIConnectionError):
    """No connection to the server could be made for a server API call.

    Refused, no route, unknown host (the cause is chained): the server never saw the request.
    """


@final
class InvalidTokenError(LiveKitError):
    """An access token failed verification (``lkanyio.api.TokenVerifier``).

    It expired, is not valid yet, was signed with another secret, was issued by another key, or
    is not a token at all: the message says which, PyJWT's error is the cause.
    """


@final
class WebhookError(LiveKitError):
    """A webhook failed verification (``lkanyio.api.WebhookReceiver``).

    Its token is invalid (the :class:`InvalidTokenError` is the cause), it carries no body hash,
    the body does not match that hash, or the body is not a webhook event.
    """


def _rebuild(kind: type[APIError], text: str, state: dict[str, Any]) -> APIError:
    """Unpickle an :class:`APIError` (its keyword-only arguments are not in ``args``)."""
    error = kind.__new__(kind)
    LiveKitError.__init__(error, f"{state['service']}.{state['method']}: {text}")
    error.__dict__.update(state)
    return error


N = TypeVar("N", bound=NativeError)

_NO_REASON = "the native core gave no reason"


def _error_text(result: object, field: str) -> str:
    """The native error text ``result.<field>`` carries, or ``""`` when it reports no error.

    The protocol carries errors in three shapes: an optional ``string`` (most callbacks and
    responses), or an optional message with a ``message`` (data tracks) or a ``description``
    (data streams) string.  A message-shaped error that is set but empty still is an error.
    """
    error = getattr(result, field, None)
    if error is None:
        return ""
    if isinstance(error, str):
        return error
    has_field = getattr(result, "HasField", None)
    if has_field is not None and not has_field(field):
        return ""
    text = getattr(error, "message", None)
    if not isinstance(text, str):
        text = getattr(error, "description", "")
    return str(text) or _NO_REASON


def native_error(
    result: object,
    kind: type[N],
    *,
    what: str = "",
    default: str = _NO_REASON,
    field: str = "error",
) -> N:
    """Build ``kind`` from the error a native callback or response carries (the one error map).

    Args:
        result: the callback or response message.
        kind: the :class:`NativeError` subclass to raise.
        what: what failed, put before the native message (``"resampling failed"``).
        default: the message when the native core gave no text (a failure it reports only by
            leaving out the result, say).
        field: the name of the error field.

    Returns:
        The exception, with the native message (or ``default``).
    """
    text = _error_text(result, field) or default
    return kind(f"{what}: {text}" if what else text)

def check_native(
    result: object, kind: type[NativeError] = NativeError, *, what: str = "", field: str = "error"
) -> None:
    """Raise :func:`native_error` if the native callback or response ``result`` carries an error.

    Raises:
        NativeError: ``kind``, with the native message.
    """
    if _error_text(result, field):
        raise native_error(result, kind, what=what, field=field)


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
