"""Your own tests against a real LiveKit server, from lkanyio's pytest plugin.

The plugin comes with lkanyio (entry point ``lkanyio``); its fixtures start a local
livekit-server in a private network namespace, or use the server named by ``LIVEKIT_URL``,
``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET``.  Run this file with::

    pytest --livekit-netns docs/examples/test_with_livekit.py

(``--livekit-netns``, or ``livekit_netns = true`` in your pytest ini options, enters the namespace
at startup, before any thread starts; without it the plugin enters it when the first test needs
the server, if the process is still single-threaded then.)  lkanyio's own suite runs this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

import lkanyio

if TYPE_CHECKING:
    from lkanyio.testing import ServerInfo, TokenFactory


@pytest.mark.anyio
async def test_bob_says_hi_to_alice(
    livekit_server_info: ServerInfo, livekit_token: TokenFactory
) -> None:
    """Two participants in the test's room: what bob sends, alice receives as his."""
    url = livekit_server_info.url
    async with (
        lkanyio.connect(url, livekit_token("alice")) as alice,  # both in the test's own room
        alice.events() as events,
        lkanyio.connect(url, livekit_token("bob")) as bob,
    ):
        with anyio.fail_after(20):
            async for event in events:
                if isinstance(event, lkanyio.ParticipantConnected):
                    break  # alice knows bob now: his data arrives as his
            await bob.local_participant.publish_data("hi alice", topic="chat")
            async for event in events:
                if isinstance(event, lkanyio.DataReceived):
                    break
    assert (event.data, event.topic) == (b"hi alice", "chat")
    assert event.participant is not None
    assert event.participant.identity == "bob"
