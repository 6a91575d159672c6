"""lkanyio.api on bad input and bad luck: wrong keys, bad URLs, dead hosts, cancelled calls.

Nothing hangs (every wait has a guard well above what the call should take) and nothing leaks:
after a cancelled call httpx's pool holds no connection that is still in use, and the other end
sees the connection closed.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import jwt
import pytest

import lkanyio
from _api_recorder import Recorder, Stall
from _util import EVENT_WAIT
from lkanyio import api

pytestmark = pytest.mark.anyio

KEY = "APIkey"
SECRET = "e" * 40


def _pool(client: api.LiveKitAPI) -> Any:
    """httpx's connection pool behind ``client`` (httpcore's AsyncConnectionPool)."""
    return client._twirp.client._transport._pool  # type: ignore[attr-defined]


def _busy(client: api.LiveKitAPI) -> list[Any]:
    """Connections of the pool that are not idle (a half-used one would show here)."""
    pool = _pool(client)
    return [c for c in pool.connections if not c.is_idle()] + list(pool._requests)


async def test_a_wrong_secret_is_the_servers_unauthenticated_error(server_info: Any) -> None:
    async with api.LiveKitAPI(server_info.url, server_info.api_key, "w" * 40) as lkapi:
        with pytest.raises(lkanyio.TwirpError) as info:
            await lkapi.room.list_rooms(api.ListRoomsRequest())
    error = info.value
    assert (error.code, error.status) == (api.ServerErrorCode.UNAUTHENTICATED, 401)
    assert (error.service, error.method) == ("RoomService", "ListRooms")
    assert str(error).startswith("RoomService.ListRooms: unauthenticated (HTTP 401)")
    assert isinstance(error, lkanyio.APIError)
    assert isinstance(error, lkanyio.LiveKitError)


async def test_an_unknown_key_and_a_missing_grant_are_refused(server_info: Any) -> None:
    async with api.LiveKitAPI(server_info.url, "nobody", server_info.api_secret) as lkapi:
        with pytest.raises(lkanyio.TwirpError, match="unauthenticated") as info:
            await lkapi.room.list_rooms(api.ListRoomsRequest())
        assert info.value.status == 401
    # A pre-signed token without the roomList grant: the server's permission error.
    token = api.AccessToken(server_info.api_key, server_info.api_secret).with_identity("x").to_jwt()
    async with api.LiveKitAPI.with_token(token, server_info.url) as lkapi:
        with pytest.raises(lkanyio.TwirpError) as info:
            await lkapi.room.list_rooms(api.ListRoomsRequest())
        # livekit-server answers a missing grant as it answers a bad token.
        assert (info.value.code, info.value.status) == ("unauthenticated", 401)


def test_bad_urls_and_missing_credentials_are_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for url in ("ftp://host:21", "host:7880", "ws://", "http:///path", ""):
        with pytest.raises(ValueError, match=r"URL|url"):
            api.LiveKitAPI(url or None, KEY, SECRET)
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="api_key and api_secret"):
        api.LiveKitAPI("ws://h:1")
    with pytest.raises(ValueError, match="api_key and api_secret"):
        api.LiveKitAPI("ws://h:1", KEY)
    monkeypatch.setenv("LIVEKIT_URL", "wss://example.test:7880/prefix/")
    monkeypatch.setenv("LIVEKIT_API_KEY", KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    assert api.LiveKitAPI().url == "https://example.test:7880/prefix"
    assert api.LiveKitAPI("ws://h:1").url == "http://h:1"
    assert api.LiveKitAPI("HTTP://h:2/").url == "http://h:2"


async def test_a_refused_connection_is_an_unreachable_server_naming_the_call() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    async with api.LiveKitAPI(f"ws://127.0.0.1:{port}", KEY, SECRET) as lkapi:
        with anyio.fail_after(EVENT_WAIT), pytest.raises(lkanyio.ServerUnreachableError) as info:
            await lkapi.room.create_room(api.CreateRoomRequest(name="r"))
        assert _busy(lkapi) == []
    error = info.value
    assert (error.service, error.method) == ("RoomService", "CreateRoom")
    assert str(error).startswith(
        f"RoomService.CreateRoom: cannot connect to http://127.0.0.1:{port}: "
    )
    assert str(error).endswith(": Connection refused")
    assert isinstance(error, lkanyio.APIConnectionError)
    assert error.__cause__ is not None


async def test_an_unroutable_host_fails_at_once() -> None:
    # An address no route in the test namespace reaches: the kernel refuses the connect.
    async with api.LiveKitAPI("ws://10.213.99.1:7880", KEY, SECRET) as lkapi:
        with anyio.fail_after(EVENT_WAIT), pytest.raises(lkanyio.ServerUnreachableError) as info:
            await lkapi.agent_dispatch.list_dispatch("r")
    assert str(info.value).endswith(": Network is unreachable")
    assert (info.value.service, info.value.method) == ("AgentDispatchService", "ListDispatch")


async def test_a_host_that_stays_silent_is_bounded_by_the_callers_scope() -> None:
    # A host that accepts and never answers (the recorder, stalled): no timeout of ours ends
    # the call, the caller's fail_after does.
    async with (
        _recorded(Stall.AFTER_REQUEST) as (recorder, url),
        api.LiveKitAPI(url, KEY, SECRET) as lkapi,
    ):
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.5):
                await lkapi.room.list_rooms(api.ListRoomsRequest())
        assert recorder.requests
        assert _busy(lkapi) == []


@asynccontextmanager
async def _recorded(stall: Stall) -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder(stall=stall)
    async with anyio.create_task_group() as tg:
        port = await tg.start(recorder.serve)
        yield recorder, f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("stall", [s for s in Stall if s is not Stall.NEVER], ids=lambda s: s.name)
async def test_a_call_cancelled_anywhere_leaves_no_connection_in_use(stall: Stall) -> None:
    async with _recorded(stall) as (recorder, url), api.LiveKitAPI(url, KEY, SECRET) as lkapi:
        with anyio.fail_after(EVENT_WAIT):
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await lkapi.room.list_rooms(api.ListRoomsRequest())

                tg.start_soon(call)
                await recorder.stalled.wait()
                tg.cancel_scope.cancel()
            assert _busy(lkapi) == []
            await recorder.closed_by_client.wait()  # the half-used connection was closed
            # The client still works: the next call opens a fresh connection.
            recorder.stall = Stall.NEVER
            assert await lkapi.room.list_rooms(api.ListRoomsRequest()) == api.ListRoomsResponse()
            assert _busy(lkapi) == []


async def test_a_call_cancelled_before_it_starts_opens_nothing() -> None:
    async with _recorded(Stall.NEVER) as (recorder, url), api.LiveKitAPI(url, KEY, SECRET) as lkapi:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await lkapi.room.list_rooms(api.ListRoomsRequest())
        assert scope.cancelled_caught
        await anyio.wait_all_tasks_blocked()
        assert (recorder.connections, _pool(lkapi).connections) == (0, [])


async def test_calls_after_close_or_during_close_are_resource_closed() -> None:
    async with _recorded(Stall.AFTER_REQUEST) as (recorder, url):
        lkapi = api.LiveKitAPI(url, KEY, SECRET)
        failures: list[BaseException] = []
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                try:
                    await lkapi.room.list_rooms(api.ListRoomsRequest())
                except lkanyio.LiveKitError as exc:
                    failures.append(exc)

            tg.start_soon(call)
            with anyio.fail_after(EVENT_WAIT):
                await recorder.stalled.wait()
            await lkapi.aclose()
        await lkapi.aclose()  # a second close does nothing
        with pytest.raises(
            lkanyio.ResourceClosedError, match=r"^RoomService.ListRooms: the LiveKitAPI is closed"
        ):
            await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert len(failures) == 1
    assert isinstance(failures[0], lkanyio.ResourceClosedError), failures
    assert "closed during the call" in str(failures[0])


async def test_an_answer_that_is_not_the_message_is_an_api_error() -> None:
    # A 200 whose body is not a protobuf of the response type (an HTML page of a proxy, say).
    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            body = b"\xff\xff\xff"
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + body)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with api.LiveKitAPI(f"http://127.0.0.1:{port}", KEY, SECRET) as lkapi:
            with pytest.raises(
                lkanyio.APIError,
                match=r"^RoomService.ListRooms: the server's answer is not a livekit.ListRooms",
            ):
                await lkapi.room.list_rooms(api.ListRoomsRequest())
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_an_answer_whose_encoding_is_broken_is_an_api_error(encoding: str) -> None:
    # A 200 that says it is compressed but is not (a broken proxy): httpx's own DecodingError
    # must not escape lkanyio.api, and the connection is given back closed, not left in use.
    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            body = b"not compressed at all"
            await stream.send(
                f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()  # until the client closes its side

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with api.LiveKitAPI(f"http://127.0.0.1:{port}", KEY, SECRET) as lkapi:
            with pytest.raises(
                lkanyio.APIError,
                match=rf"^RoomService.ListRooms: the server's answer could not be decoded "
                rf"\(Content-Encoding: {encoding},",
            ) as caught:
                await lkapi.room.list_rooms(api.ListRoomsRequest())
            assert not isinstance(caught.value, lkanyio.APIConnectionError)
            assert _busy(lkapi) == []
        tg.cancel_scope.cancel()


def test_errors_pickle_with_their_fields() -> None:
    error = lkanyio.SipCallError(
        "unavailable",
        "busy",
        status=503,
        service="SIP",
        method="CreateSIPParticipant",
        metadata={"sip_status_code": "486", "sip_status": "Busy Here"},
    )
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is lkanyio.SipCallError
    assert str(again) == str(error)
    assert (again.code, again.message, again.status, again.metadata) == (
        "unavailable",
        "busy",
        503,
        {"sip_status_code": "486", "sip_status": "Busy Here"},
    )
    assert (again.sip_status_code, again.sip_status) == (486, "Busy Here")
    unreachable = lkanyio.ServerUnreachableError("cannot connect", service="S", method="M")
    assert str(pickle.loads(pickle.dumps(unreachable))) == "S.M: cannot connect"


async def test_expired_early_and_foreign_tokens_are_refused_by_server_and_verifier(
    server_info: Any,
) -> None:
    key, secret = server_info.api_key, server_info.api_secret
    now = int(time.time())
    grants = {"roomList": True}
    tokens = {
        "expired": api.AccessToken(key, secret)
        .with_grants(api.VideoGrants(room_list=True))
        .with_ttl(timedelta(seconds=-120))
        .to_jwt(),
        "not valid before": jwt.encode(
            {"iss": key, "sub": "", "nbf": now + 3600, "exp": now + 7200, "video": grants},
            secret,
            algorithm="HS256",
        ),
        "signature does not match": api.AccessToken(key, "f" * 40)
        .with_grants(api.VideoGrants(room_list=True))
        .to_jwt(),
    }
    verifier = api.TokenVerifier(key, secret)
    for why, token in tokens.items():
        async with api.LiveKitAPI.with_token(token, server_info.url) as lkapi:
            with pytest.raises(lkanyio.TwirpError) as info:
                await lkapi.room.list_rooms(api.ListRoomsRequest())
        assert (info.value.code, info.value.status) == ("unauthenticated", 401), why
        with pytest.raises(lkanyio.InvalidTokenError, match=why):
            verifier.verify(token)
    # The same token, well made, is let through.
    good = api.AccessToken(key, secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    async with api.LiveKitAPI.with_token(good, server_info.url) as lkapi:
        assert isinstance(
            await lkapi.room.list_rooms(api.ListRoomsRequest()), api.ListRoomsResponse
        )


async def test_a_client_used_from_another_event_loop_says_so(
    server_info: Any, anyio_backend: str
) -> None:
    other = "trio" if anyio_backend == "asyncio" else "asyncio"
    async with api.LiveKitAPI(server_info.url, server_info.api_key, server_info.api_secret) as c:
        await c.room.list_rooms(api.ListRoomsRequest())  # this loop's connection, kept

        def from_another_loop() -> None:
            async def call() -> None:
                await c.room.list_rooms(api.ListRoomsRequest())

            anyio.run(call, backend=other)

        with pytest.raises(
            RuntimeError,
            match=r"^RoomService.ListRooms: this LiveKitAPI was first used in another event loop",
        ):
            await anyio.to_thread.run_sync(from_another_loop)
        await c.room.list_rooms(api.ListRoomsRequest())  # still fine in its own loop
