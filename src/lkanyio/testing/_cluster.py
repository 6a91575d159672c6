"""A LiveKit cluster for tests: one Redis and N livekit-server nodes, inside the private namespace.

LiveKit scales out as nodes sharing one Redis: Redis holds the node registry (hash ``nodes``,
node id -> ``livekit.Node`` protobuf) and the room placement (hash ``room_node_map``, room name
-> node id), and carries the signal relay between nodes (psrpc over Redis pub/sub).  A
participant may signal through any node; that node relays to the room's node, where the media
ends.  Everything here listens on the namespace's veth addresses or on loopback only.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Final, final

from . import _server
from ._daemon import READY_TIMEOUT, Daemon
from ._server import (
    NODE_IP,
    PEER_IP,
    LocalServer,
    ServerInfo,
    server_binary,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["LocalCluster", "LocalRedis", "create_room"]

_REDIS_PORT: Final = 6379
# Node i listens on 7890 + 10 i (ICE-TCP one above) with UDP media ports 51000 + 1000 i ... +999:
# clear of the single LocalServer (7880/7881, UDP 50000-50999) sharing the namespace.
_NODE_PORT: Final = 7890
_NODE_UDP: Final = 51000


def _redis_command(address: tuple[str, int], *args: str, timeout: float = 2.0) -> object:
    """One Redis command over RESP2 (enough of the protocol for tests: no pipelining)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        sock.sendall(request.encode())
        reader = sock.makefile("rb")
        return _read_reply(reader)


def _read_reply(reader: BinaryIO) -> object:
    line = reader.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data: bytes = reader.read(size + 2)[:size]
        return data
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise RuntimeError(f"unexpected redis reply {line!r}")


def _proto_strings(message: bytes) -> dict[int, str]:
    """The length-delimited fields of a protobuf message that decode as UTF-8, by number.

    ``livekit.Node`` keeps ``id`` in field 1 and ``ip`` in field 2; reading two strings does
    not justify a dependency on LiveKit's internal protobufs.
    """
    fields: dict[int, str] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = message[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(message):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size = varint()
            chunk = message[i : i + size]
            i += size
            with contextlib.suppress(UnicodeDecodeError):
                fields.setdefault(number, chunk.decode())
        else:
            break  # groups: not used by livekit.Node
    return fields


@final
class LocalRedis(Daemon):
    """A ``redis-server`` child process on loopback, without persistence.

    Nothing is saved: a restart starts empty, as a Redis that lost its data would.
    """

    NAME: ClassVar[str] = "redis-server"

    def __init__(self, *, port: int = _REDIS_PORT, binary: str | None = None) -> None:
        """Prepare (not start) a Redis.

        Args:
            port: the TCP port on ``127.0.0.1``.
            binary: the ``redis-server`` executable (default: found on ``PATH``).

        Raises:
            RuntimeError: no ``redis-server`` (``scripts/bootstrap`` installs Debian's).
        """
        found = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).is_file():
            raise RuntimeError("no redis-server: run scripts/bootstrap (it installs Debian's)")
        self.binary = found
        self.port = port
        self.address = f"127.0.0.1:{port}"
        super().__init__(scratch_prefix="lkanyio-redis-", log_name="redis.log")

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
            "--daemonize",
            "no",
        ]

    def answers(self) -> bool:
        """Whether ``PING`` answers ``PONG`` right now."""
        try:
            return self.command("PING") == "PONG"
        except (OSError, RuntimeError):
            return False

    def command(self, *args: str) -> object:
        """Run one command and return its reply (bulk strings as ``bytes``).

        Raises:
            OSError: Redis is unreachable.
            RuntimeError: Redis answered with an error.
        """
        return _redis_command(("127.0.0.1", self.port), *args)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of Redis's log."""
        return super().log_tail(lines)


def _node_ips(nodes: int) -> list[str]:
    """Node addresses: the two ends of the veth pair, then 10.213.7.11 and up (on ``lkv0``)."""
    extra = [f"10.213.7.{10 + i}" for i in range(1, max(0, nodes - 2) + 1)]
    return [NODE_IP, PEER_IP, *extra][:nodes]


@final
class LocalCluster:
    """One :class:`LocalRedis` and ``nodes`` livekit-server nodes sharing it (same keys).

    A sync context manager, inside :func:`~lkanyio.testing.enter_private_netns`::

        with LocalCluster(nodes=2) as cluster:
            a, b = cluster.nodes
            create_room(a.info, "r", node_id=cluster.node_id(0))  # place "r" on node 0
            # connect one participant to a.info.url, another to b.info.url ...
            assert cluster.room_node("r") == 0

    Node ``i`` listens on ``7890 + 10 i`` (ICE-TCP one above) with UDP media ports
    ``51000 + 1000 i`` to ``+999``, on its own address: node 0 on :data:`NODE_IP`, node 1 on
    :data:`PEER_IP`, further nodes on ``10.213.7.11`` and up (added to ``lkv0``).
    """

    def __init__(self, *, nodes: int = 2, binary: Path | None = None) -> None:
        """Prepare (not start) a cluster.

        Args:
            nodes: how many livekit-server nodes (1 to 50).
            binary: the livekit-server binary (default: :func:`server_binary`).

        Raises:
            ValueError: ``nodes`` out of range.
            RuntimeError: no livekit-server or redis-server binary.
        """
        if not 1 <= nodes <= 50:
            raise ValueError(f"nodes must be 1 to 50, not {nodes}")
        self.redis = LocalRedis()
        binary = binary or server_binary()
        secret = None
        servers: list[LocalServer] = []
        for i, ip in enumerate(_node_ips(nodes)):
            server = LocalServer(
                node_ip=ip,
                port=_NODE_PORT + 10 * i,
                binary=binary,
                udp_ports=(_NODE_UDP + 1000 * i, _NODE_UDP + 1000 * i + 999),
                api_secret=secret,
                redis_address=self.redis.address,
                bind_loopback=False,
            )
            secret = server.info.api_secret
            servers.append(server)
        self.nodes: tuple[LocalServer, ...] = tuple(servers)

    @property
    def info(self) -> ServerInfo:
        """Node 0's address and the cluster's keys (every node accepts the same tokens)."""
        return self.nodes[0].info

    def start(self) -> None:
        """Start whatever is not running (Redis first); wait until every node is registered.

        Raises:
            RuntimeError: Redis or a node did not start, or a node did not register in time.
        """
        if not self.redis.running:
            self.redis.start()
        if _server._netns_ip is None:
            raise RuntimeError("LocalCluster needs enter_private_netns() first")
        for server in self.nodes[2:]:
            if not _has_address(server.node_ip):
                _server._ip("addr", "add", f"{server.node_ip}/24", "dev", "lkv0")
        for server in self.nodes:
            if not server.running:
                # A killed node cannot unregister: drop its stale entry, so that every address
                # in the registry belongs to one live node (see node_id).
                for node, address in self._registry().items():
                    if address == server.node_ip:
                        self.redis.command("HDEL", "nodes", node)
                server.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            registered = set(self._registry().values())
            if all(server.node_ip in registered for server in self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"not every node registered in redis within {READY_TIMEOUT} s "
            f"(registered: {sorted(set(self._registry().values()))})"
        )

    def _registry(self) -> dict[str, str]:
        """Node id -> node address, as Redis's ``nodes`` hash has them now."""
        try:
            reply = self.redis.command("HGETALL", "nodes")
        except (OSError, RuntimeError):
            return {}
        assert isinstance(reply, list)
        out: dict[str, str] = {}
        for key, value in zip(reply[::2], reply[1::2], strict=True):
            assert isinstance(key, bytes)
            assert isinstance(value, bytes)
            out[key.decode()] = _proto_strings(value).get(2, "")
        return out

    def node_id(self, index: int) -> str:
        """The node id (``ND_...``) node ``index`` registered in Redis under its address.

        A restarted node has a new id (:meth:`start` drops the entry of the killed one).

        Raises:
            LookupError: the node is not registered (not running, or Redis restarted and the
                node has not re-registered yet).
        """
        ip = self.nodes[index].node_ip
        ids = [node for node, address in self._registry().items() if address == ip]
        if not ids:
            raise LookupError(f"node {index} ({ip}) is not registered in redis")
        return ids[0]

    def room_node(self, room: str) -> int | None:
        """Which node (index into :attr:`nodes`) Redis places ``room`` on.

        ``None``: Redis has no placement for it (or names a node that is not one of these).
        """
        node = self.redis.command("HGET", "room_node_map", room)
        if node is None:
            return None
        assert isinstance(node, bytes)
        address = self._registry().get(node.decode())
        for index, server in enumerate(self.nodes):
            if server.node_ip == address:
                return index
        return None

    def stop(self) -> None:
        """Stop every node, then Redis."""
        for server in self.nodes:
            server.stop()
        self.redis.stop()

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything and remove the nodes' and Redis's directories."""
        for server in self.nodes:
            server.__exit__(None, None, None)
        self.redis.close()

    def log_tails(self, lines: int = 20) -> Sequence[tuple[str, str]]:
        """(name, last log lines) for every node and Redis (for failure reports)."""
        tails = [(f"node {i} ({s.node_ip})", s.log_tail(lines)) for i, s in enumerate(self.nodes)]
        return [*tails, ("redis", self.redis.log_tail(lines))]


def _has_address(ip: str) -> bool:
    result = subprocess.run(
        ["ip", "-o", "addr", "show"], capture_output=True, text=True, check=False
    )
    return f" {ip}/" in result.stdout


def create_room(info: ServerInfo, room: str, *, node_id: str = "") -> None:
    """Create ``room`` through the RoomService at ``info`` (blocking; from a worker thread).

    Args:
        info: the node to ask.
        room: the room's name.
        node_id: in a cluster, the node to place the room on (see
            :meth:`LocalCluster.node_id`); empty: the cluster's node selector chooses.
    """
    from lkanyio import api

    async def create(client: api.LiveKitAPI) -> None:
        await client.room.create_room(api.CreateRoomRequest(name=room, node_id=node_id))

    _server._room_service(info, create)
