"""RPC between participants: calls with a peer-enforced deadline, handlers run as tasks."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, final

import anyio

from ._bridge import get_bridge
from ._checks import check_str, check_uint
from ._errors import LiveKitError
from ._proto import ffi_pb2

if TYPE_CHECKING:
    from ._room import Room

__all__ = ["RpcError", "RpcHandler", "RpcInvocationData"]

_MAX_PAYLOAD: Final = 15 * 1024
"""LiveKit's RPC payload limit (requests and responses), in UTF-8 bytes."""
_MAX_ERROR_MESSAGE: Final = 256
"""LiveKit's limit on an RPC error's message, in UTF-8 bytes."""
_MAX_ERROR_DATA: Final = 15 * 1024
"""LiveKit's limit on an RPC error's data, in UTF-8 bytes."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


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


@final
@dataclass(frozen=True, kw_only=True)
class RpcInvocationData:
    """What a handler receives.

    Attributes:
        request_id: unique id of this call.
        caller_identity: who called.
        payload: the caller's payload.
        response_timeout: seconds the caller waits; the handler is cancelled when they pass.
    """

    request_id: str
    caller_identity: str
    payload: str
    response_timeout: float


RpcHandler = Callable[[RpcInvocationData], Awaitable[str]]
"""``async def handler(data: RpcInvocationData) -> str``."""


_MAX_TIMEOUT: Final = (2**32 - 1) / 1000
"""The longest response timeout the protocol carries (milliseconds in a uint32), in seconds."""


def _answer_error_code(answer: object) -> int:
    """The code for a handler's answer that cannot be sent: too large, or not text at all."""
    too_large = (
        isinstance(answer, str) and len(answer.encode(errors="replace")) > _MAX_PAYLOAD
    )
    return RpcError.RESPONSE_PAYLOAD_TOO_LARGE if too_large else RpcError.APPLICATION_ERROR


def _wire_text(text: str, limit: int) -> str:
    """``text`` as the wire can carry it: lone surrogates replaced, at most ``limit`` bytes.

    A lone surrogate (``os.fsdecode`` of a non-UTF-8 file name, say) made protobuf raise
    ``UnicodeEncodeError`` while the answer was built, which ended the handler's room.  The cut
    falls on a character boundary.
    """
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode(errors="ignore")  # drops only a character the cut split


def _describe(exc: BaseException) -> str:
    """The message of a handler's exception for the caller (its type name if it has none)."""
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ fails must not end the room
        text = ""
    return text or type(exc).__name__


def check_payload(payload: object) -> str:
    """Validate an RPC payload (a str within LiveKit's size limit)."""
    text = check_str("payload", payload)
    if len(text.encode()) > _MAX_PAYLOAD:
        raise ValueError(f"RPC payloads are limited to {_MAX_PAYLOAD} bytes of UTF-8")
    return text


class RpcServer:
    """The handlers of one local participant; invocations run in the room's task group."""

    __slots__ = ("_handle_id", "_handlers", "_room", "_running")

    def __init__(self, room: Room, local_participant_handle: int) -> None:
        self._room = room
        self._handle_id = local_participant_handle
        self._handlers: dict[str, RpcHandler] = {}
        self._running: set[anyio.CancelScope] = set()  # one per handler task in flight

    def cancel_running(self) -> None:
        """Cancel every handler still running (the room is being left)."""
        for scope in self._running:
            scope.cancel()

    def register(self, method: str, handler: RpcHandler) -> None:
        check_str("method", method)
        if not callable(handler):
            raise TypeError("an RPC handler must be an async function")
        req = ffi_pb2.FfiRequest()
        req.register_rpc_method.local_participant_handle = self._handle_id
        req.register_rpc_method.method = method
        get_bridge().request(req)
        self._handlers[method] = handler

    def unregister(self, method: str) -> None:
        check_str("method", method)
        if self._handlers.pop(method, None) is None:
            return
        req = ffi_pb2.FfiRequest()
        req.unregister_rpc_method.local_participant_handle = self._handle_id
        req.unregister_rpc_method.method = method
        get_bridge().request(req)

    def on_invocation(self, message: Any) -> None:
        """Start a handler task for an invocation (runs in the dispatcher: never blocks)."""
        handler = self._handlers.get(message.method)
        tg = self._room._tg
        if handler is None or tg is None or self._room._closing:
            self._respond(
                message.invocation_id,
                error=RpcError(RpcError.UNSUPPORTED_METHOD, "Method not supported at destination"),
            )
            return
        tg.start_soon(self._run, handler, message, name=f"lkanyio rpc {message.method!r}")

    async def _run(self, handler: RpcHandler, message: Any) -> None:
        timeout = message.response_timeout_ms / 1000
        data = RpcInvocationData(
            request_id=message.request_id,
            caller_identity=message.caller_identity,
            payload=message.payload,
            response_timeout=timeout,
        )
        payload: str | None = None
        error: RpcError | None = None
        with anyio.move_on_after(timeout) as scope:
            self._running.add(scope)
            try:
                result = await handler(data)
            except RpcError as exc:
                error = exc
            except Exception as exc:  # the caller gets it as an application error
                error = RpcError(RpcError.APPLICATION_ERROR, _describe(exc))
            else:
                try:
                    payload = check_payload(result)
                except (TypeError, ValueError) as exc:
                    error = RpcError(_answer_error_code(result), str(exc))
            finally:
                self._running.discard(scope)
        if scope.cancelled_caught:
            # The caller stopped waiting; answering keeps the native side's books straight.
            error = RpcError(RpcError.RESPONSE_TIMEOUT, "Response timeout")
            payload = None
        self._respond(message.invocation_id, payload=payload, error=error)

    def _respond(
        self, invocation_id: int, *, payload: str | None = None, error: RpcError | None = None
    ) -> None:
        if self._room._closed:
            return
        req = ffi_pb2.FfiRequest()
        resp = req.rpc_method_invocation_response
        resp.local_participant_handle = self._handle_id
        resp.invocation_id = invocation_id
        if error is not None:
            resp.error.code = error.code  # a uint32: RpcError checked it
            resp.error.message = _wire_text(error.message, _MAX_ERROR_MESSAGE)
            if error.data is not None:
                resp.error.data = _wire_text(error.data, _MAX_ERROR_DATA)
        elif payload is not None:
            resp.payload = payload
        get_bridge().request(req)


async def perform_rpc(
    local_participant_handle: int,
    *,
    destination_identity: str,
    method: str,
    payload: str,
    response_timeout: float,
) -> str:
    """Call ``method`` on another participant (see ``LocalParticipant.perform_rpc``)."""
    check_str("destination_identity", destination_identity)
    check_str("method", method)
    check_payload(payload)
    if isinstance(response_timeout, bool) or not isinstance(response_timeout, (int, float)):
        raise TypeError(
            f"response_timeout must be a number of seconds, not {type(response_timeout).__name__}"
        )
    if not (math.isfinite(response_timeout) and 0 < response_timeout <= _MAX_TIMEOUT):
        raise ValueError(
            f"response_timeout must be a positive number of seconds up to {_MAX_TIMEOUT:.0f}"
        )
    req = ffi_pb2.FfiRequest()
    msg = req.perform_rpc
    msg.local_participant_handle = local_participant_handle
    msg.destination_identity = destination_identity
    msg.method = method
    msg.payload = payload
    msg.response_timeout_ms = max(1, round(response_timeout * 1000))
    cb = await get_bridge().request_async(req)
    if cb.HasField("error"):
        raise RpcError._from_proto(cb.error)
    return str(cb.payload)
