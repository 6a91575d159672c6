"""RPC between two participants on a real server (both backends)."""

from __future__ import annotations

import gc
from typing import Any

import anyio
import pytest

import lkanyio
from _util import TokenFactory, assert_no_leaks, joined

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Any:
    yield
    gc.collect()
    assert_no_leaks()


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

        with pytest.raises(lkanyio.RpcError) as caught:
            await alice.local_participant.perform_rpc(
                destination_identity="bob", method="slow", payload="", response_timeout=1.5
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
        with pytest.raises(lkanyio.RpcError) as caught:
            await lp.perform_rpc(destination_identity="nobody", method="echo", payload="")
        assert caught.value.code in (
            lkanyio.RpcError.RECIPIENT_NOT_FOUND,
            lkanyio.RpcError.CONNECTION_TIMEOUT,
        )
