"""RPC between two participants on a real server (both backends)."""

from __future__ import annotations

import os
from typing import Any

import anyio
import pytest

import lkanyio
from _util import TokenFactory, joined, rpc_limits

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]



async def test_round_trip_and_invocation_data(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        seen: list[lkanyio.RpcInvocationData] = []

        @bob.local_participant.register_rpc_method("greet")
        async def greet(data: lkanyio.RpcInvocationData) -> str:
            seen.append(data)
            return f"hello {data.payload}"

        reply = await alice.local_participant.perform_rpc(
            destination_identity="bob", method="greet", payload="alice ✓", response_timeout=5
        )
        assert reply == "hello alice ✓"
        assert [(d.caller_identity, d.payload) for d in seen] == [("alice", "alice ✓")]
        assert 0 < seen[0].response_timeout <= 5


async def test_unknown_method_is_unsupported(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="nope", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.UNSUPPORTED_METHOD
        # Also once the peer serves other methods.
        bob.local_participant.register_rpc_method("other", _echo)
        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="nope", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.UNSUPPORTED_METHOD


async def test_a_call_to_nobody_fails_as_recipient_not_found(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice") as (alice,):
        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="nobody", method="greet", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.RECIPIENT_NOT_FOUND
        assert "nobody" in caught.value.message


async def test_a_joiner_not_yet_announced_is_called(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # carol publishes nothing: the server announces her to alice only on its 3 s tick, but
    # routes alice's call to her at once.
    async with (
        joined(server_info, token_factory, room_name, "alice") as (alice,),
        lkanyio.connect(server_info.url, token_factory("carol", room_name)) as carol,
    ):
        carol.local_participant.register_rpc_method("greet", _echo)
        with pytest.raises(lkanyio.RpcError) as caught:  # her answer, as is
            await alice.local_participant.perform_rpc(
                destination_identity="carol", method="nope", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.UNSUPPORTED_METHOD
        reply = await alice.local_participant.perform_rpc(
            destination_identity="carol", method="greet", payload="early"
        )
        assert reply == "early"


async def test_method_and_destination_limits_hold_at_the_boundary(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # The longest identities a default server lets join, calling the longest method lkanyio
    # sends: it goes through.  One byte more is refused before the native core, naming the
    # limit (it was "1505 Failed to send" from the native core, or a 7 s wait).
    caller, callee = "a" * 256, "b" * 256
    method = "m" * 8192
    async with joined(server_info, token_factory, room_name, caller, callee) as (a, b):
        b.local_participant.register_rpc_method(method, _echo)
        reply = await a.local_participant.perform_rpc(
            destination_identity=callee, method=method, payload="x" * 15 * 1024
        )
        assert reply == "x" * 15 * 1024
        with pytest.raises(ValueError, match="8192 bytes"):
            await a.local_participant.perform_rpc(
                destination_identity=callee, method=method + "m", payload=""
            )
        with pytest.raises(ValueError, match="256 bytes"):
            await a.local_participant.perform_rpc(
                destination_identity=callee + "b", method="m", payload=""
            )
        with pytest.raises(ValueError, match="8192 bytes"):
            await a.local_participant.perform_rpc(
                destination_identity=callee, method="é" * 4097, payload=""
            )


async def _echo(data: lkanyio.RpcInvocationData) -> str:
    return data.payload


async def test_handler_errors_reach_the_caller(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        lp = bob.local_participant

        @lp.register_rpc_method("boom")
        async def boom(data: lkanyio.RpcInvocationData) -> str:
            raise KeyError("the widget is missing")

        @lp.register_rpc_method("custom")
        async def custom(data: lkanyio.RpcInvocationData) -> str:
            raise lkanyio.RpcError(42, "teapot", data="short and stout")

        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="boom", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.APPLICATION_ERROR
        assert "the widget is missing" in caught.value.message

        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="custom", payload=""
            )
        assert (caught.value.code, caught.value.message, caught.value.data) == (
            42,
            "teapot",
            "short and stout",
        )

        @lp.register_rpc_method("huge")
        async def huge(data: lkanyio.RpcInvocationData) -> str:
            return "x" * (15 * 1024 + 1)

        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="huge", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.RESPONSE_PAYLOAD_TOO_LARGE

        @lp.register_rpc_method("not text")
        async def not_text(data: lkanyio.RpcInvocationData) -> str:
            return 42  # type: ignore[return-value]

        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="not text", payload=""
            )
        assert caught.value.code == lkanyio.RpcError.APPLICATION_ERROR
        assert "str" in caught.value.message


async def test_rpc_error_checks_its_code_and_types() -> None:
    # The code travels as a uint32: anything else failed only when the handler's answer was
    # encoded, inside the room's task group.
    for code in (-1, 2**32, 5_000_000_000):
        with pytest.raises(ValueError, match="code"):
            lkanyio.RpcError(code, "out of range")
    for bad in ("42", 4.2, True, None):
        with pytest.raises(TypeError, match="code"):
            lkanyio.RpcError(bad, "not an int")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="message"):
        lkanyio.RpcError(42, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        lkanyio.RpcError(42, "fine", data=42)  # type: ignore[arg-type]
    top = lkanyio.RpcError(2**32 - 1, "the largest code")
    assert (top.code, top.message, top.data) == (2**32 - 1, "the largest code", None)
    with pytest.raises(AttributeError):
        top.code = 5_000_000_000  # type: ignore[misc]
    await anyio.lowlevel.checkpoint()


async def _call(room: lkanyio.Room, method: str) -> lkanyio.RpcError:
    with pytest.raises(lkanyio.RpcError) as caught:
        await room.local_participant.perform_rpc(
            destination_identity="bob", method=method, payload="", response_timeout=10
        )
    return caught.value


async def test_an_error_the_wire_cannot_carry_still_reaches_the_caller(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # Each of these used to escape the handler task into bob's room and end it.
    bad_name = os.fsdecode(b"caf\xe9.wav")  # a non-UTF-8 file name: a lone surrogate
    assert not bad_name.isascii()

    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        lp = bob.local_participant

        @lp.register_rpc_method("huge code")
        async def huge_code(data: lkanyio.RpcInvocationData) -> str:
            raise lkanyio.RpcError(5_000_000_000, "out of range")

        @lp.register_rpc_method("os error")
        async def os_error(data: lkanyio.RpcInvocationData) -> str:
            raise OSError(f"cannot read {bad_name}")

        @lp.register_rpc_method("surrogates")
        async def surrogates(data: lkanyio.RpcInvocationData) -> str:
            raise lkanyio.RpcError(7, f"no {bad_name}", data=f"file={bad_name}")

        class Unprintable(Exception):
            def __str__(self) -> str:
                raise RuntimeError("str() of this error fails")

        @lp.register_rpc_method("unprintable")
        async def unprintable(data: lkanyio.RpcInvocationData) -> str:
            raise Unprintable

        error = await _call(alice, "huge code")
        assert error.code == lkanyio.RpcError.APPLICATION_ERROR
        assert "code" in error.message

        error = await _call(alice, "os error")
        assert error.code == lkanyio.RpcError.APPLICATION_ERROR
        assert error.message == "cannot read caf\ufffd.wav"

        error = await _call(alice, "surrogates")
        assert (error.code, error.message, error.data) == (
            7,
            "no caf\ufffd.wav",
            "file=caf\ufffd.wav",
        )

        error = await _call(alice, "unprintable")
        assert error.code == lkanyio.RpcError.APPLICATION_ERROR
        assert error.message == "Unprintable"

        # Bob's room lives on and still answers.
        lp.register_rpc_method("echo", _echo)
        reply = await alice.local_participant.perform_rpc(
            destination_identity="bob", method="echo", payload="still here"
        )
        assert reply == "still here"
        assert bob.connected


async def test_an_error_is_cut_to_the_protocols_limits(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    message = "é" * 200  # 400 bytes of UTF-8: over LiveKit's 256-byte error message limit
    data = "✓" * 6000  # 18,000 bytes: over the 15,360-byte data limit
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):

        @bob.local_participant.register_rpc_method("long")
        async def long(_data: lkanyio.RpcInvocationData) -> str:
            raise lkanyio.RpcError(9, message, data=data)

        error = await _call(alice, "long")
        assert error.code == 9
        assert error.data is not None
        # Cut at a character boundary, to the longest prefix within each limit.
        assert error.message == "é" * 128
        assert error.data == "✓" * (15_360 // 3)


async def test_deadline_times_out_the_caller_and_cancels_the_handler(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        started, finished = anyio.Event(), anyio.Event()
        outcome: list[str] = []

        @bob.local_participant.register_rpc_method("slow")
        async def slow(data: lkanyio.RpcInvocationData) -> str:
            started.set()
            try:
                await anyio.sleep(30)
                outcome.append("completed")
                return "late"
            except anyio.get_cancelled_exc_class():
                outcome.append("cancelled")
                raise
            finally:
                finished.set()

        # A short caller's deadline (it was 1.5 s) let a request late under load time out at
        # the caller before the handler started.
        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="slow", payload="", **rpc_limits(1.0)
            )
        assert caught.value.code == lkanyio.RpcError.RESPONSE_TIMEOUT
        assert started.is_set()
        with anyio.fail_after(10):
            await finished.wait()
        assert outcome == ["cancelled"]


async def test_leaving_the_room_cancels_a_running_handler(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    started, finished = anyio.Event(), anyio.Event()
    outcome: list[str] = []
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):

        @bob.local_participant.register_rpc_method("forever")
        async def forever(data: lkanyio.RpcInvocationData) -> str:
            started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                outcome.append("cancelled")
                raise
            finally:
                finished.set()
            return "never"

        async with anyio.create_task_group() as tg:

            async def call() -> None:
                with pytest.raises(lkanyio.RpcError):
                    await alice.local_participant.perform_rpc(
                        destination_identity="bob", method="forever", payload=""
                    )

            tg.start_soon(call)
            with anyio.fail_after(10):
                await started.wait()
            await bob.disconnect()  # bob leaves while his handler runs: it is cancelled
            with anyio.fail_after(10):
                await finished.wait()
            assert outcome == ["cancelled"]
    assert outcome == ["cancelled"]


async def test_200_concurrent_calls(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):

        @bob.local_participant.register_rpc_method("square")
        async def square(data: lkanyio.RpcInvocationData) -> str:
            await anyio.sleep(0.01)
            return str(int(data.payload) ** 2)

        results: dict[int, str] = {}

        async def call(i: int) -> None:
            results[i] = await alice.local_participant.perform_rpc(
                destination_identity="bob", method="square", payload=str(i), response_timeout=30
            )

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(200):
                    tg.start_soon(call, i)
        assert results == {i: str(i * i) for i in range(200)}


async def test_unregister_and_bad_input(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    async with joined(server_info, token_factory, room_name, "alice", "bob") as (alice, bob):
        bob.local_participant.register_rpc_method("echo", _echo)
        lp = alice.local_participant
        assert await lp.perform_rpc(destination_identity="bob", method="echo", payload="x") == "x"
        bob.local_participant.unregister_rpc_method("echo")
        with pytest.raises(lkanyio.RpcError) as caught:
            await lp.perform_rpc(destination_identity="bob", method="echo", payload="x")
        assert caught.value.code == lkanyio.RpcError.UNSUPPORTED_METHOD
        with pytest.raises(ValueError, match="15"):
            await lp.perform_rpc(destination_identity="bob", method="echo", payload="x" * 20_000)
        with pytest.raises(ValueError, match="response_timeout"):
            await lp.perform_rpc(
                destination_identity="bob", method="echo", payload="", response_timeout=0
            )
        with pytest.raises(TypeError):
            await lp.perform_rpc(destination_identity="bob", method="echo", payload=b"x")  # type: ignore[arg-type]
        with pytest.raises(lkanyio.RpcError) as caught:  # nobody acknowledges: no 7 s default wait
            await lp.perform_rpc(
                destination_identity="nobody", method="echo", payload="", max_round_trip_latency=0.5
            )
        assert caught.value.code in (
            lkanyio.RpcError.RECIPIENT_NOT_FOUND,
            lkanyio.RpcError.CONNECTION_TIMEOUT,
        )
