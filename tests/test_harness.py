"""The test harness itself: a real server, in a namespace nothing can leave."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from lkanyio.testing import NODE_IP, PEER_IP, LocalServer, list_participants


def test_namespace_holds_only_loopback_and_the_test_pair(livekit_server: Any) -> None:
    if livekit_server is None:
        pytest.fail("this check is about the local harness; unset LIVEKIT_URL to run it")
    links = json.loads(
        subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    )
    names = {link["ifname"] for link in links}
    assert names == {"lo", "lkv0", "lkv1"}
    addresses = {
        a["local"] for link in links for a in link.get("addr_info", []) if a["family"] == "inet"
    }
    assert addresses == {"127.0.0.1", NODE_IP, PEER_IP}
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    assert "default" not in routes  # nothing outside the namespace is reachable


def test_server_answers_and_knows_rooms(livekit_server: Any, server_info: Any) -> None:
    assert isinstance(livekit_server, LocalServer)
    assert livekit_server.answers()
    assert list_participants(server_info, "nobody-here") == []


def test_kill_and_restart(livekit_server: Any, server_info: Any) -> None:
    assert isinstance(livekit_server, LocalServer)
    livekit_server.kill()
    assert not livekit_server.running
    assert not livekit_server.answers()
    livekit_server.restart()
    assert livekit_server.answers()
    assert list_participants(server_info, "nobody-here") == []
