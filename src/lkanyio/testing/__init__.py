"""Test support: a real livekit-server in a private network namespace, and tokens for it.

Used by lkanyio's own tests and demo, and usable in yours::

    from lkanyio.testing import LocalServer, enter_private_netns, make_token

    node_ip = enter_private_netns()          # first thing: before any thread starts
    with LocalServer(node_ip=node_ip) as server:
        token = make_token(server.info, identity="alice", room="r")
        ...

    with LocalCluster(nodes=2) as cluster:   # one Redis, two livekit-server nodes sharing it
        a, b = cluster.nodes
        ...

    with LocalTurn() as turn:                # coturn, for relay-only clients (rtc_config)
        server = turn.ice_server()
        ...

Without root, the namespace is inside a user namespace of its own (the kernel must allow them).
Tokens and the RoomService helpers come from :mod:`lkanyio.api`.  The pytest plugin
(``lkanyio.testing._plugin``, entry point ``lkanyio``) offers the same as fixtures.
"""

from __future__ import annotations

__all__ = [
    "NODE_IP",
    "PEER_IP",
    "SERVER_VERSION",
    "LocalCluster",
    "LocalRedis",
    "LocalServer",
    "LocalTurn",
    "ParticipantSnapshot",
    "ServerInfo",
    "TokenFactory",
    "create_room",
    "enter_private_netns",
    "external_server_from_env",
    "list_participants",
    "make_token",
    "remove_participant",
    "server_binary",
]

from ._cluster import LocalCluster as LocalCluster
from ._cluster import LocalRedis as LocalRedis
from ._cluster import create_room as create_room
from ._server import NODE_IP as NODE_IP
from ._server import PEER_IP as PEER_IP
from ._server import SERVER_VERSION as SERVER_VERSION
from ._server import LocalServer as LocalServer
from ._server import ParticipantSnapshot as ParticipantSnapshot
from ._server import ServerInfo as ServerInfo
from ._server import TokenFactory as TokenFactory
from ._server import enter_private_netns as enter_private_netns
from ._server import external_server_from_env as external_server_from_env
from ._server import list_participants as list_participants
from ._server import make_token as make_token
from ._server import remove_participant as remove_participant
from ._server import server_binary as server_binary
from ._turn import LocalTurn as LocalTurn
