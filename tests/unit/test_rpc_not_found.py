"""An RPC to an identity the room does not know: a result that came back is never thrown away.

The call goes out at once and the room waits for the identity alongside (``_rpc._call_someone``).
When the callee's answer and the end of that wait land in the same scheduling batch, the answer
wins: the handler ran, so the caller gets what it returned, not ``RECIPIENT_NOT_FOUND``.  The
native send is stood in for here (its answer is made to arrive exactly as the wait ends); the
room's state is a stand-in too, with nobody in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

import lkanyio
from lkanyio import _rpc

pytestmark = pytest.mark.anyio


class _EmptyRoom:
    """What ``_call_someone`` reads of a connected room with nobody in it."""

    connected = True

    class session:  # stands for the port's ``session`` attribute
        state = lkanyio.ConnectionState.CONNECTED

        @staticmethod
        def remote(identity: str) -> None:
            return None

    @staticmethod
    def local_handle() -> int:
        return 1

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        await anyio.sleep_forever()


async def test_an_answer_arriving_as_the_wait_ends_is_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_rpc, "_ANNOUNCE_WAIT", 0.05)

    async def answered_as_the_wait_ends(handle: int, call: Any) -> str:
        # The answer is in before the cancellation of the wait reaches this task.
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.1)
        return "done"

    monkeypatch.setattr(_rpc, "_send_rpc", answered_as_the_wait_ends)
    call = _rpc.RpcCallInfo(destination_identity="bob", method="m", payload="")
    assert await _rpc._call_someone(_EmptyRoom(), call) == "done"  # type: ignore[arg-type]
