"""Faults: the server dies or the network drops while participants are joined (both backends).

Measured with livekit 1.2.0 (native core v0.13.2) against livekit-server v1.13.5: once the server
is killed, the native core reports ``Reconnecting`` at once, then retries (10 attempts paced by
a 5 s interval, constants in the Rust SDK that no ``RoomOptions`` field changes;
``join_retries`` and ``connect_timeout_ms`` only bound the *initial* connect) and gives up after
roughly 15-30 s with ``Disconnected(reason=UNKNOWN)``.  :data:`GIVE_UP_BOUND` is the hang guard.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import lkanyio
from _util import assert_no_leaks

pytestmark = pytest.mark.anyio

TokenFactory = Callable[..., str]

GIVE_UP_BOUND = 90.0
"""How long the native core may take to declare a killed server gone (a hang guard: 10 retries
paced by 5 s, each bounded by the 5 s signal timeout, stay well below it)."""


@pytest.fixture(autouse=True)
def _no_leaks_after() -> Iterator[None]:
    yield
    gc.collect()
    assert_no_leaks()


async def test_server_killed_ends_the_block_with_connection_lost(
    livekit_server: Any, server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    if livekit_server is None:
        pytest.skip("needs the local livekit-server (it is killed)")
    request_errors: list[lkanyio.LiveKitError] = []
    with anyio.fail_after(GIVE_UP_BOUND):
        with pytest.raises(lkanyio.ConnectionLostError) as lost:
            async with lkanyio.connect(server_info.url, token_factory("alice", room_name)) as room:
                record = room.events()  # read after the block: it keeps every event
                async with room.events() as events:
                    livekit_server.kill()
                    async for event in events:
                        if isinstance(event, lkanyio.Reconnecting):
                            break
                    assert room.connection_state == lkanyio.ConnectionState.RECONNECTING
                    # Requests made while the core retries either fail cleanly or wait; when
                    # the core gives up, the block is cancelled and none of them is left over.
                    while True:
                        try:
                            await room.local_participant.set_metadata("during the outage")
                        except lkanyio.ConnectionLostError:
                            raise
                        except lkanyio.LiveKitError as exc:
                            request_errors.append(exc)
                            await anyio.sleep(0.5)
    assert lost.value.reason is not None
    assert isinstance(lost.value.reason, lkanyio.DisconnectReason)
    assert room.connection_state == lkanyio.ConnectionState.DISCONNECTED
    assert not room.connected
    # The room reported the outage in order: Reconnecting, then Disconnected (its last event).
    with anyio.fail_after(5):
        async with record:
            kinds = [type(event) async for event in record]
    assert lkanyio.Reconnecting in kinds
    assert kinds[-1] is lkanyio.Disconnected
    assert kinds.index(lkanyio.Reconnecting) < kinds.index(lkanyio.Disconnected)
    assert lkanyio.Reconnected not in kinds
    assert_no_leaks()
