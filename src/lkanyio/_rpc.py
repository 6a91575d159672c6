"""RPC between participants: calls with a peer-enforced deadline, handlers run as tasks."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, final

import anyio

from ._bridge import get_bridge
from ._checks import check_str
from ._errors import LiveKitError
from ._proto import ffi_pb2

if TYPE_CHECKING:
    from ._room import Room

__all__ = ["RpcError", "RpcHandler", "RpcInvocationData"]

_MAX_PAYLOAD: Final = 15 * 1024
"""LiveKit's RPC payload limit (requests and responses), in UTF-8 bytes."""


@final
class RpcError(LiveKitError):
    """An RPC failed: the built-in codes below, or an application's own code (< 1000).

    Raise it from a handler to send that code, message and data to the caller.

    Attributes:
        code: the error code.
        message: a human-readable message.
        data: optional application data.
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
        super().__init__(f"RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data

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
                error = RpcError(RpcError.APPLICATION_ERROR, str(exc) or type(exc).__name__)
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
            resp.error.code = error.code
            resp.error.message = error.message
            if error.data is not None:
                resp.error.data = error.data
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
