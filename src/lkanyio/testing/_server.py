"""A real livekit-server for tests and demos, inside a private network namespace.

libwebrtc ignores loopback adapters, so WebRTC media needs a non-loopback interface; touching the
machine's own interfaces is not acceptable either.  :func:`enter_private_netns` therefore moves the
*calling process* into a new network namespace holding only ``lo`` and a veth pair with two test
addresses.  The server, the native library's threads and every socket of the process live there:
no packet can leave it.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import secrets
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol, TypeVar, final

import anyio

from ._daemon import Daemon

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from lkanyio.api import LiveKitAPI

T = TypeVar("T")

__all__ = [
    "LocalServer",
    "ParticipantSnapshot",
    "ServerInfo",
    "TokenFactory",
    "enter_private_netns",
    "external_server_from_env",
    "list_participants",
    "remove_participant",
    "make_token",
    "server_binary",
]

_CLONE_NEWNET: Final = 0x40000000
_CLONE_NEWUSER: Final = 0x10000000
NODE_IP: Final = "10.213.7.1"
"""The address the server advertises (on the veth end ``lkv0``)."""
PEER_IP: Final = "10.213.7.2"
"""The other end of the veth pair (``lkv1``)."""
SERVER_VERSION: Final = "v1.13.5"
"""The livekit-server release :func:`server_binary` builds and :class:`LocalServer` runs."""

_netns_lock = threading.Lock()
_netns_ip: str | None = None


def _ip(*args: str) -> None:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    result = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"'ip {' '.join(args)}' failed: {result.stderr.strip()}")


_NO_USERNS_HELP: Final = (
    "run as root, or point LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET at a server you run"
)


def _unshare(flags: int) -> int:
    """``unshare(flags)``: 0, or the errno (a seam: tests simulate a refusing kernel here)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _os_thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - no procfs
        return threading.active_count()


def _enter_user_and_netns() -> None:
    """``unshare(CLONE_NEWUSER | CLONE_NEWNET)`` with the caller mapped to root inside.

    Root inside a user namespace it created has every capability over the network namespace
    created with it, so ``ip link add ... type veth`` works (measured: as ``nobody``,
    ``unshare -Urn`` then veth and addresses work).  The kernel refuses a user namespace to a
    process with several threads (EINVAL), and unprivileged ones where the administrator
    disabled them.
    """
    uid, gid = os.geteuid(), os.getegid()
    err = _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    if err == errno.EINVAL and _os_thread_count() > 1:
        raise RuntimeError(
            "without root, the namespace is a user namespace too, and the kernel refuses that "
            "to a process with several threads: enter it before any thread starts (with "
            "pytest-xdist: in the controller, which --livekit-netns does), or "
            + _NO_USERNS_HELP
        )
    if err in (errno.EPERM, errno.EACCES, errno.ENOSPC, errno.EUSERS):
        raise RuntimeError(
            f"this kernel does not let unprivileged users create user namespaces "
            f"(unshare(CLONE_NEWUSER): {os.strerror(err)}; see kernel.unprivileged_userns_clone, "
            f"user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns): "
            + _NO_USERNS_HELP
        )
    if err:
        raise RuntimeError(f"unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: {os.strerror(err)}")
    try:
        Path("/proc/self/setgroups").write_text("deny")  # required before gid_map, unprivileged
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    except OSError as exc:
        raise RuntimeError(
            f"entered a user namespace but could not map this user to root in it ({exc}): "
            + _NO_USERNS_HELP
        ) from exc


def enter_private_netns(*, allow_threads: bool = False) -> str:
    """Move this process into a new, private network namespace and return the server address.

    The namespace has ``lo`` up and a veth pair ``lkv0``/``lkv1`` with :data:`NODE_IP` and
    :data:`PEER_IP`.  Call it while the process is still single-threaded (before lkanyio
    starts the native core), so that every later thread lives in the namespace too.
    Idempotent.

    As root (or root inside a user namespace) it is a plain ``unshare(CLONE_NEWNET)``.  As an
    ordinary user it enters a new user namespace too, mapped to root inside (the process keeps
    its files and uid outside), which needs a single-threaded process and a kernel that allows
    unprivileged user namespaces.  Children inherit both namespaces, and as root inside they
    can enter their own network namespace even with threads running (pytest-xdist workers).

    Args:
        allow_threads: enter even though other threads run.  They stay in the old namespace
            (only threads started afterwards inherit the new one), which is fine for threads
            that never use the network, such as a test runner's pipe reader (pytest-xdist).
            Only as root: an ordinary user's process must be single-threaded.

    Raises:
        RuntimeError: threads already running, or the kernel refused (the message says why and
            names the alternatives: root, or an external server through ``LIVEKIT_URL``).
    """
    global _netns_ip
    with _netns_lock:
        if _netns_ip is not None:
            return _netns_ip
        if not allow_threads and threading.active_count() != 1:
            raise RuntimeError(
                "enter_private_netns() must run before any thread starts (call it first thing, "
                "before lkanyio connects or creates sources)"
            )
        err = _unshare(_CLONE_NEWNET) if os.geteuid() == 0 else errno.EPERM
        if err in (errno.EPERM, errno.EACCES):  # not root, or root without CAP_SYS_ADMIN
            _enter_user_and_netns()
        elif err:
            raise RuntimeError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
        _ip("link", "set", "lo", "up")
        _ip("link", "add", "lkv0", "type", "veth", "peer", "name", "lkv1")
        _ip("addr", "add", f"{NODE_IP}/24", "dev", "lkv0")
        _ip("addr", "add", f"{PEER_IP}/24", "dev", "lkv1")
        _ip("link", "set", "lkv0", "up")
        _ip("link", "set", "lkv1", "up")
        _netns_ip = NODE_IP
        return NODE_IP


def entered_netns() -> str | None:
    """The server address if :func:`enter_private_netns` has run in this process, else ``None``."""
    return _netns_ip


@final
@dataclass(frozen=True)
class ServerInfo:
    """Where a LiveKit server is and how to sign tokens for it (the secret is kept out of repr)."""

    url: str
    http_url: str
    api_key: str
    api_secret: str = field(repr=False)
    node_ip: str = ""


def external_server_from_env() -> ServerInfo | None:
    """The server named by ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``, if set."""
    url = os.environ.get("LIVEKIT_URL", "").strip()
    if not url:
        return None
    key = os.environ.get("LIVEKIT_API_KEY", "").strip()
    secret = os.environ.get("LIVEKIT_API_SECRET", "").strip()
    if not key or not secret:
        raise RuntimeError(
            "LIVEKIT_URL is set, so LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be too"
        )
    http_url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return ServerInfo(url=url, http_url=http_url, api_key=key, api_secret=secret)


def server_binary() -> Path:
    """The livekit-server binary: ``LKANYIO_SERVER_BIN``, else ``scripts/ensure-server``'s cache.

    Raises:
        RuntimeError: no binary (run ``scripts/ensure-server``).
    """
    explicit = os.environ.get("LKANYIO_SERVER_BIN", "").strip()
    if explicit:
        path = Path(explicit)
    else:
        cache = Path(os.environ.get("LKANYIO_CACHE", Path.home() / ".cache" / "lkanyio"))
        path = cache / f"livekit-server-{SERVER_VERSION}" / "livekit-server"
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no livekit-server binary at {path}; run scripts/ensure-server (it builds "
            f"{SERVER_VERSION} from the Go module proxy)"
        )
    return path


_CONFIG = """\
port: {port}
bind_addresses: [{bind_addresses}]
rtc:
  tcp_port: {tcp_port}
  port_range_start: {udp_start}
  port_range_end: {udp_end}
  use_external_ip: false
  stun_servers: ["{node_ip}:3478"]
keys:
  {api_key}: {api_secret}
logging:
  level: info
{extra}"""


def _extra_config(redis_address: str | None, webhook_urls: Sequence[str], webhook_key: str) -> str:
    """The optional sections of the server's YAML: a shared Redis, webhooks."""
    extra = f'redis:\n  address: "{redis_address}"\n' if redis_address else ""
    if webhook_urls:
        urls = ", ".join(json.dumps(url) for url in webhook_urls)  # JSON strings are YAML strings
        extra += f"webhook:\n  api_key: {json.dumps(webhook_key)}\n  urls: [{urls}]\n"
    return extra


@final
class LocalServer(Daemon):
    """A livekit-server child process on :data:`NODE_IP` (inside :func:`enter_private_netns`).

    A sync context manager: ``with LocalServer(node_ip=...) as server: server.info.url``.
    """

    NAME: ClassVar[str] = "livekit-server"

    def __init__(
        self,
        *,
        node_ip: str = NODE_IP,
        port: int = 7880,
        binary: Path | None = None,
        udp_ports: tuple[int, int] = (50000, 50999),
        api_secret: str | None = None,
        redis_address: str | None = None,
        bind_loopback: bool = True,
        webhook_urls: Sequence[str] = (),
        webhook_api_key: str | None = None,
    ) -> None:
        """Prepare (not start) a server.

        Args:
            node_ip: the address it binds and advertises in ICE candidates.
            port: its HTTP/WebSocket port; ``port + 1`` is its ICE-TCP port.
            binary: the livekit-server binary (default: :func:`server_binary`).
            udp_ports: the first and last UDP port of its WebRTC media range.
            api_secret: the secret of key ``lkanyio`` (default: a fresh random one).
            redis_address: ``host:port`` of a Redis shared with other nodes (a cluster node),
                or ``None`` for a single node that keeps its state in memory.
            bind_loopback: also listen on ``127.0.0.1`` (the port must then be free there).
            webhook_urls: where the server posts its webhooks (room started, participant
                joined, track published, ...; none by default).  Check them with
                :class:`lkanyio.api.WebhookReceiver` and the server's key and secret.
            webhook_api_key: the key the server signs webhooks with (default: its own key,
                ``lkanyio``; another key must be one the server has).
        """
        self.node_ip = node_ip
        self.port = port
        self.binary = binary or server_binary()
        super().__init__(scratch_prefix="lkanyio-server-", log_name="livekit-server.log")
        self.info = ServerInfo(
            url=f"ws://{node_ip}:{port}",
            http_url=f"http://{node_ip}:{port}",
            api_key="lkanyio",
            api_secret=api_secret or secrets.token_hex(24),
            node_ip=node_ip,
        )
        binds = [node_ip, "127.0.0.1"] if bind_loopback else [node_ip]
        config = _CONFIG.format(
            port=port,
            bind_addresses=", ".join(f'"{address}"' for address in binds),
            node_ip=node_ip,
            tcp_port=port + 1,
            udp_start=udp_ports[0],
            udp_end=udp_ports[1],
            extra=_extra_config(redis_address, webhook_urls, webhook_api_key or self.info.api_key),
            api_key=self.info.api_key,
            api_secret=self.info.api_secret,
        )
        self._config = self._dir / "config.yaml"
        self._config.write_text(config)

    def _command(self) -> list[str]:
        return [str(self.binary), "--config", str(self._config), "--node-ip", self.node_ip]

    def answers(self) -> bool:
        """Whether ``GET /`` answers 200 right now."""
        try:
            with urllib.request.urlopen(self.info.http_url + "/", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def restart(self) -> None:
        """Start the server again on the same port with the same keys."""
        self.stop()
        self.start()


class TokenFactory(Protocol):
    """The ``livekit_token`` fixture of the pytest plugin: ``(identity, room=None, **grants)``."""

    def __call__(self, identity: str, room: str | None = None, **grants: Any) -> str:
        """A token for ``identity`` in ``room`` (default: the test's ``livekit_room_name``)."""
        ...


def make_token(
    info: ServerInfo,
    *,
    identity: str,
    room: str,
    name: str | None = None,
    metadata: str | None = None,
    attributes: Mapping[str, str] | None = None,
    can_update_own_metadata: bool = True,
    can_publish: bool = True,
    can_subscribe: bool = True,
    can_publish_data: bool = True,
    kind: Literal["standard", "egress", "ingress", "sip", "agent"] | None = None,
    ttl: timedelta = timedelta(hours=1),
) -> str:
    """An access token for ``identity`` in ``room``, signed with the server's key.

    ``kind`` sets the participant kind (``"agent"``, ``"standard"``, ...): livekit-server forwards
    transcriptions only from agents.  Made with :class:`lkanyio.api.AccessToken`.
    """
    from lkanyio import api

    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=can_publish,
        can_subscribe=can_subscribe,
        can_publish_data=can_publish_data,
        can_update_own_metadata=can_update_own_metadata,
    )
    token = (
        api.AccessToken(info.api_key, info.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .with_ttl(ttl)
    )
    if name is not None:
        token = token.with_name(name)
    if metadata is not None:
        token = token.with_metadata(metadata)
    if attributes is not None:
        token = token.with_attributes(dict(attributes))
    if kind is not None:
        token = token.with_kind(kind)
    return token.to_jwt()


@final
@dataclass(frozen=True)
class ParticipantSnapshot:
    """A participant as the server's RoomService reports it."""

    identity: str
    name: str
    metadata: str
    attributes: Mapping[str, str]


def _room_service(info: ServerInfo, call: Callable[[LiveKitAPI], Awaitable[T]]) -> T:
    """``await call(client)`` with a server API client for ``info``, from synchronous code.

    It runs in its own event loop on a fresh thread (:mod:`lkanyio.api` runs on any), so it is
    usable from trio, asyncio or plain code alike; it blocks, so call it from a worker thread in
    async code.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    async def session() -> None:
        from lkanyio import api

        async with api.LiveKitAPI(info.http_url, info.api_key, info.api_secret) as client:
            result.append(await call(client))

    def run() -> None:
        try:
            anyio.run(session)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="lkanyio-roomservice")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def list_participants(info: ServerInfo, room: str) -> list[ParticipantSnapshot]:
    """Ask the server's RoomService who is in ``room`` (blocking; call from a worker thread)."""
    from lkanyio import api

    async def query(client: LiveKitAPI) -> list[ParticipantSnapshot]:
        response = await client.room.list_participants(api.ListParticipantsRequest(room=room))
        return [
            ParticipantSnapshot(
                identity=p.identity,
                name=p.name,
                metadata=p.metadata,
                attributes=MappingProxyType(dict(p.attributes)),
            )
            for p in response.participants
        ]

    return _room_service(info, query)


def remove_participant(info: ServerInfo, room: str, identity: str) -> None:
    """Have the server's RoomService remove a participant (blocking; from a worker thread).

    The participant's client sees a server-initiated disconnect (``PARTICIPANT_REMOVED``).
    """
    from lkanyio import api

    async def remove(client: LiveKitAPI) -> None:
        await client.room.remove_participant(
            api.RoomParticipantIdentity(room=room, identity=identity)
        )

    _room_service(info, remove)
