"""RPC between participants: calls with a peer-enforced deadline, handlers run as tasks."""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, final

import anyio

from ._checks import check_str
from ._errors import RpcError
from ._native._bridge import get_bridge
from ._native._proto import ffi_pb2
from ._types import ConnectionState

if TYPE_CHECKING:
    from ._port import RoomPort

__all__ = ["RpcCallInfo", "RpcHandler", "RpcInterceptor", "RpcInvocationData"]

_MAX_PAYLOAD: Final = 15 * 1024
"""LiveKit's RPC payload limit (requests and responses), in UTF-8 bytes."""
_MAX_ERROR_MESSAGE: Final = 256
"""LiveKit's limit on an RPC error's message, in UTF-8 bytes."""
_MAX_ERROR_DATA: Final = 15 * 1024
"""LiveKit's limit on an RPC error's data, in UTF-8 bytes."""
_MAX_METHOD: Final = 8 * 1024
"""lkanyio's limit on a called method's name, in UTF-8 bytes.

The native core sends the method, the caller's and the callee's identities in one data packet
apart from the payload, and that packet is limited to 15 KiB: measured (livekit-ffi 0.13.2,
livekit-server 1.13.5), from ``alice`` to ``bob`` a method of 14,754 bytes went out and one of
14,755 failed with ``SEND_FAILED`` ("Failed to send"), whatever the payload (0 bytes, or 15 KiB of
random text); with 256-byte identities the room for the method shrinks by their length.  8 KiB
leaves room for the longest identities with every call within the limits.
"""
_MAX_IDENTITY: Final = 256
"""livekit-server's default ``limit.max_participant_identity_length``, in UTF-8 bytes: a longer
identity cannot join a server with the default limits, so no call to one can be answered."""
_ANNOUNCE_WAIT: Final = 4.0
"""Seconds a call to an identity the room does not know waits for the server to announce it.

livekit-server announces a participant that publishes nothing to the others only on a 3 s
tick (``subscriberUpdateInterval`` in its ``pkg/rtc/room.go``; measured: 2.4-2.8 s after the
join), but routes a call to it at once.  A participant that joined before the call is announced
within the tick; the extra second covers delivery.
"""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")




class _InvocationState:
    """Why the SDK cancelled one invocation (shared by the server and the handler's data)."""

    __slots__ = ("reason", "scope")

    def __init__(self) -> None:
        self.reason: int | None = None
        self.scope: anyio.CancelScope | None = None


@final
@dataclass(frozen=True, kw_only=True)
class RpcInvocationData:
    """What a handler (and an incoming interceptor) receives.

    Attributes:
        request_id: unique id of this call (the same on both sides).
        caller_identity: who called (it comes with the call, so it is there also before the
            room knows the caller).
        payload: the caller's payload.
        response_timeout: seconds the caller waits; the handler is cancelled when they pass.
        method: the method called.
    """

    request_id: str
    caller_identity: str
    payload: str
    response_timeout: float
    method: str = ""
    _state: _InvocationState = field(default_factory=_InvocationState, repr=False, compare=False)

    @property
    def cancel_reason(self) -> int | None:
        """Why lkanyio cancelled this invocation's handler, once it has; else ``None``.

        ``RpcError.RESPONSE_TIMEOUT`` when the caller's ``response_timeout`` passed,
        ``RpcError.RECIPIENT_DISCONNECTED`` when this room was left; the first cause wins.
        Read it while unwinding from the cancellation (an ``except``/``finally`` block of the
        handler or an interceptor).  A cancellation from an enclosing scope of your own gives
        ``None``.  The native core (livekit-ffi 0.13.2) tells the handler's side nothing
        about the caller: a caller that stops waiting (its own cancel scope) or leaves the
        room does not cancel the handler; the deadline still does (measured).
        """
        state = self._state
        if state.reason is not None:
            return state.reason
        if state.scope is not None and state.scope.cancel_called:
            return RpcError.RESPONSE_TIMEOUT  # nothing but the deadline cancels it unannounced
        return None


RpcHandler = Callable[[RpcInvocationData], Awaitable[str]]
"""``async def handler(data: RpcInvocationData) -> str``.

Only async callables are accepted (``TypeError`` at registration otherwise): a synchronous
handler would run on the event loop and stall every room of the process while it works, and
could not be cancelled at the caller's deadline.  Run blocking work in a thread from an async
handler: ``return await anyio.to_thread.run_sync(work, data.payload)``.
"""


def _check_async(what: str, fn: object) -> None:
    """Refuse anything but an async callable.

    Accepted: a coroutine function, an object with an ``async def __call__``, or a
    ``functools.partial`` of either.
    """
    if not callable(fn):
        raise TypeError(f"{what} must be an async function, not {type(fn).__name__}")
    target: object = fn
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target):
        return
    if not inspect.isfunction(target) and inspect.iscoroutinefunction(type(target).__call__):
        return
    raise TypeError(
        f"{what} must be an async function (async def): a synchronous one would block the "
        "event loop; run blocking work with anyio.to_thread.run_sync inside an async one"
    )


_MAX_TIMEOUT: Final = (2**32 - 1) / 1000
"""The longest response timeout the protocol carries (milliseconds in a uint32), in seconds."""


def _answer_error_code(answer: object) -> int:
    """The code for a handler's answer that cannot be sent: too large, or not text at all."""
    too_large = isinstance(answer, str) and len(answer.encode(errors="replace")) > _MAX_PAYLOAD
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


def _unsupported() -> RpcError:
    return RpcError(RpcError.UNSUPPORTED_METHOD, "Method not supported at destination")


def check_payload(payload: object) -> str:
    """Validate an RPC payload (a str within LiveKit's size limit)."""
    text = check_str("payload", payload)
    if len(text.encode()) > _MAX_PAYLOAD:
        raise ValueError(f"RPC payloads are limited to {_MAX_PAYLOAD} bytes of UTF-8")
    return text


class RpcServer:
    """The handlers and interceptors of one local participant.

    Invocations run in the room's task group.
    """

    __slots__ = ("_handle_id", "_handlers", "_port", "_running", "interceptors")

    def __init__(self, port: RoomPort, local_participant_handle: int) -> None:
        self._port = port
        self._handle_id = local_participant_handle
        self._handlers: dict[str, RpcHandler] = {}
        self._running: set[_InvocationState] = set()  # one per handler task in flight
        self.interceptors: list[RpcInterceptor] = []

    def add_interceptor(self, interceptor: RpcInterceptor) -> None:
        if not isinstance(interceptor, RpcInterceptor):
            raise TypeError(f"expected an RpcInterceptor, not {type(interceptor).__name__}")
        if not any(existing is interceptor for existing in self.interceptors):
            self.interceptors.append(interceptor)

    def remove_interceptor(self, interceptor: RpcInterceptor) -> None:
        # A new list: calls in flight keep the snapshot they started with.
        self.interceptors = [i for i in self.interceptors if i is not interceptor]

    def cancel_running(self) -> None:
        """Cancel every handler still running (the room is being left)."""
        for state in self._running:
            if state.scope is None:
                continue
            if state.reason is None and not state.scope.cancel_called:
                state.reason = RpcError.RECIPIENT_DISCONNECTED  # first cause wins
            state.scope.cancel()

    def register(self, method: str, handler: RpcHandler) -> None:
        check_str("method", method)
        _check_async("an RPC handler", handler)
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
        interceptors = [i for i in self.interceptors if i.incoming is not None]
        if (handler is None and not interceptors) or not self._port.spawn(
            self._run, handler, interceptors, message, name=f"lkanyio rpc {message.method!r}"
        ):
            self._respond(message.invocation_id, error=_unsupported())

    async def _run(
        self, handler: RpcHandler | None, interceptors: list[RpcInterceptor], message: Any
    ) -> None:
        timeout = message.response_timeout_ms / 1000
        data = RpcInvocationData(
            request_id=message.request_id,
            caller_identity=message.caller_identity,
            payload=message.payload,
            response_timeout=timeout,
            method=message.method,
        )
        state = data._state

        async def call_handler(final: RpcInvocationData) -> str:
            if not isinstance(final, RpcInvocationData):
                raise TypeError(f"call_next takes an RpcInvocationData, not {type(final).__name__}")
            if handler is None:
                raise _unsupported()
            return await handler(final)

        chain = _chain_incoming(interceptors, call_handler)
        payload: str | None = None
        error: RpcError | None = None
        with anyio.move_on_after(timeout) as scope:
            state.scope = scope
            self._running.add(state)
            try:
                result = await chain(data)
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
                self._running.discard(state)
        if scope.cancelled_caught:
            # The deadline passed (the caller stopped waiting) or the room is being left;
            # answering keeps the native side's books straight.
            if data.cancel_reason == RpcError.RECIPIENT_DISCONNECTED:
                error = RpcError(RpcError.RECIPIENT_DISCONNECTED, "Recipient disconnected")
            else:
                error = RpcError(RpcError.RESPONSE_TIMEOUT, "Response timeout")
            payload = None
        self._respond(message.invocation_id, payload=payload, error=error)

    def _respond(
        self, invocation_id: int, *, payload: str | None = None, error: RpcError | None = None
    ) -> None:
        if self._port.closed:
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


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value <= _MAX_TIMEOUT):
        raise ValueError(f"{name} must be a positive number of seconds up to {_MAX_TIMEOUT:.0f}")
    return float(value)


def _check_length(name: str, value: object, limit: int) -> None:
    if len(check_str(name, value).encode()) > limit:
        raise ValueError(f"{name} is limited to {limit} bytes of UTF-8")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@final
@dataclass(frozen=True, kw_only=True)
class RpcCallInfo:
    """An outgoing call as an outgoing interceptor sees it: ``perform_rpc``'s arguments.

    An interceptor may pass a changed copy on: ``dataclasses.replace(call, ...)``.

    Attributes:
        destination_identity: the participant called.
        method: the method name.
        payload: the request payload (at most 15 KiB of UTF-8).
        response_timeout: seconds the caller waits for the answer (the protocol's deadline).
        max_round_trip_latency: seconds the request may take to reach the callee and be
            acknowledged, or ``None`` for the native core's default (7 s).

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a payload over 15 KiB, a method name over 8 KiB or a destination identity
            over 256 bytes (UTF-8; see ``perform_rpc``), or a timeout that is not positive (or
            beyond the protocol's 32-bit milliseconds).
    """

    destination_identity: str
    method: str
    payload: str
    response_timeout: float = 10.0
    max_round_trip_latency: float | None = None

    def __post_init__(self) -> None:
        _check_length("destination_identity", self.destination_identity, _MAX_IDENTITY)
        _check_length("method", self.method, _MAX_METHOD)
        check_payload(self.payload)
        _check_seconds("response_timeout", self.response_timeout)
        if self.max_round_trip_latency is not None:
            _check_seconds("max_round_trip_latency", self.max_round_trip_latency)


OutgoingNext = Callable[[RpcCallInfo], Awaitable[str]]
IncomingNext = Callable[[RpcInvocationData], Awaitable[str]]


@final
@dataclass(frozen=True, eq=False)
class RpcInterceptor:
    """Middleware around this participant's RPC: outgoing calls, incoming invocations, or both.

    Each side is an async function that receives the call and ``call_next``, and returns (or
    raises) what ``await call_next(...)`` returns (or raises) unless it answers by itself::

        async def timed(call: lkanyio.RpcCallInfo, call_next) -> str:
            start = anyio.current_time()
            try:
                return await call_next(call)
            finally:
                print(call.method, anyio.current_time() - start)

        lp.add_rpc_interceptor(lkanyio.RpcInterceptor(outgoing=timed))

    Interceptors run in the order they were added, the first outermost; a call takes a
    snapshot of the list when it starts.  ``outgoing`` runs in the caller's task, inside its
    cancel scopes.  ``incoming`` runs in the handler's task under the caller's deadline,
    which covers the whole chain: when it passes (or the room is left) the chain is
    cancelled and ``RpcInvocationData.cancel_reason`` says why.  Only methods registered here
    reach the chain: the native core (livekit-ffi 0.13.2) answers a call of any other
    method with ``UNSUPPORTED_METHOD`` itself, without an event (measured); a call that
    races with ``unregister_rpc_method`` finds ``call_next`` raising that error.  Whatever
    the chain raises reaches the caller as for a handler (``RpcError`` as is, anything else
    as ``APPLICATION_ERROR``).

    Args:
        outgoing: ``async (call: RpcCallInfo, call_next) -> str`` around ``perform_rpc``.
        incoming: ``async (data: RpcInvocationData, call_next) -> str`` around handlers.

    Raises:
        TypeError: a side that is not an async function, or neither side given.
    """

    outgoing: Callable[[RpcCallInfo, OutgoingNext], Awaitable[str]] | None = None
    incoming: Callable[[RpcInvocationData, IncomingNext], Awaitable[str]] | None = None

    def __post_init__(self) -> None:
        if self.outgoing is None and self.incoming is None:
            raise TypeError("an RpcInterceptor needs outgoing=, incoming= or both")
        if self.outgoing is not None:
            _check_async("outgoing", self.outgoing)
        if self.incoming is not None:
            _check_async("incoming", self.incoming)


def _chain_outgoing(interceptors: Sequence[RpcInterceptor], last: OutgoingNext) -> OutgoingNext:
    call_next = last
    for interceptor in reversed(interceptors):
        if interceptor.outgoing is not None:
            call_next = functools.partial(_outgoing_step, interceptor.outgoing, call_next)
    return call_next


async def _outgoing_step(
    step: Callable[[RpcCallInfo, OutgoingNext], Awaitable[str]],
    call_next: OutgoingNext,
    call: RpcCallInfo,
) -> str:
    if not isinstance(call, RpcCallInfo):
        raise TypeError(f"call_next takes an RpcCallInfo, not {type(call).__name__}")
    return await step(call, call_next)


def _chain_incoming(interceptors: Sequence[RpcInterceptor], last: IncomingNext) -> IncomingNext:
    call_next = last
    for interceptor in reversed(interceptors):
        if interceptor.incoming is not None:
            call_next = functools.partial(_incoming_step, interceptor.incoming, call_next)
    return call_next


async def _incoming_step(
    step: Callable[[RpcInvocationData, IncomingNext], Awaitable[str]],
    call_next: IncomingNext,
    data: RpcInvocationData,
) -> str:
    if not isinstance(data, RpcInvocationData):
        raise TypeError(f"call_next takes an RpcInvocationData, not {type(data).__name__}")
    return await step(data, call_next)


async def perform_rpc(
    port: RoomPort, call: RpcCallInfo, interceptors: Sequence[RpcInterceptor]
) -> str:
    """Call through the outgoing interceptors (see ``LocalParticipant.perform_rpc``)."""

    async def send(final_call: RpcCallInfo) -> str:
        if not isinstance(final_call, RpcCallInfo):
            raise TypeError(f"call_next takes an RpcCallInfo, not {type(final_call).__name__}")
        return await _call_someone(port, final_call)

    return await _chain_outgoing(list(interceptors), send)(call)


async def _call_someone(port: RoomPort, call: RpcCallInfo) -> str:
    """Send the call; fail it as ``RECIPIENT_NOT_FOUND`` if nobody has that identity.

    The server drops a call to an identity not in the room, and the native core then waits for
    an acknowledgement until ``max_round_trip_latency`` (7 s) and says ``CONNECTION_TIMEOUT``.
    A participant the room does not know yet may have just joined (see ``_ANNOUNCE_WAIT``),
    and the server routes the call to it, so the call goes out at once and the room waits for
    the identity alongside: the call fails as not found when the identity is still unknown
    after ``_ANNOUNCE_WAIT`` and no answer has come, or when the native core gave up waiting for
    the callee's acknowledgement before that.  A hidden participant is never announced: a call
    to one that takes longer than ``_ANNOUNCE_WAIT`` fails as not found too.
    """
    identity = call.destination_identity
    handle = port.local_handle()

    def known() -> bool:
        return port.session.remote(identity) is not None

    if known():
        return await _send_rpc(handle, call)
    result: str | None = None
    error: RpcError | None = None  # raised after the task group, so never inside a group
    missing = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal missing
            with anyio.move_on_after(_ANNOUNCE_WAIT):
                await port.wait_until(known)
                return
            # Not while reconnecting (nobody is announced then): the call runs its course.
            if port.connected and port.session.state == ConnectionState.CONNECTED:
                missing = True
                tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            result = await _send_rpc(handle, call)
        except RpcError as exc:
            error = exc
            missing = exc.code == RpcError.CONNECTION_TIMEOUT and not known()
        tg.cancel_scope.cancel()
    if result is not None:  # answered as the wait ended: the handler ran, its result stands
        return result
    if missing:
        raise RpcError(
            RpcError.RECIPIENT_NOT_FOUND, f"no participant {identity!r} in the room"
        ) from error
    if error is not None:
        raise error
    raise AssertionError("unreachable: neither a result, an error nor a missing callee")


async def _send_rpc(local_participant_handle: int, call: RpcCallInfo) -> str:
    req = ffi_pb2.FfiRequest()
    msg = req.perform_rpc
    msg.local_participant_handle = local_participant_handle
    msg.destination_identity = call.destination_identity
    msg.method = call.method
    msg.payload = call.payload
    msg.response_timeout_ms = _ms(call.response_timeout)
    if call.max_round_trip_latency is not None:
        msg.max_round_trip_latency_ms = _ms(call.max_round_trip_latency)
    cb = await get_bridge().request_async(req)
    if cb.HasField("error"):
        raise RpcError._from_proto(cb.error)
    return str(cb.payload)
