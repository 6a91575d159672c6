"""The test harness itself: a real server, in a namespace nothing can leave.

These tests are about the local harness: under an external server (LIVEKIT_URL) the
``local_server`` fixture skips them on a developer's machine and fails them in CI.
"""

from __future__ import annotations

import json
import subprocess

from lkanyio.testing import NODE_IP, PEER_IP, LocalServer, ServerInfo, list_participants


def test_namespace_holds_only_loopback_and_the_test_pair(local_server: LocalServer) -> None:
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


def test_server_answers_and_knows_rooms(local_server: LocalServer, server_info: ServerInfo) -> None:
    assert local_server.answers()
    assert list_participants(server_info, "nobody-here") == []


def test_kill_and_restart(local_server: LocalServer, server_info: ServerInfo) -> None:
    local_server.kill()
    assert not local_server.running
    assert not local_server.answers()
    local_server.restart()
    assert local_server.answers()
    assert list_participants(server_info, "nobody-here") == []
