"""A real TURN server for tests: Debian's coturn (``turnserver``), inside the private namespace.

LiveKit clients reach the SFU directly (host candidates) unless told otherwise; a relay-only
client (``IceTransportType.RELAY``) gathers candidates only from the TURN servers it is given
in ``RtcConfiguration.ice_servers``.  :class:`LocalTurn` runs one such server with long-term
credentials (one static user) on one of the namespace's addresses, so that path is tested for
real: the media and data then go client -> TURN (UDP) -> livekit-server.  livekit-server's own
TURN stays off (it is off unless its config enables it, and :class:`LocalServer` never does).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import ClassVar, Final, final

from .._rtc_config import IceServer
from ._daemon import Daemon
from ._server import PEER_IP

__all__ = ["LocalTurn"]

# 3478 is the standard TURN port, but LocalServer's config names NODE_IP:3478 as its STUN
# server: stay off it so no other test's ICE ever meets this server.
_TURN_PORT: Final = 3480
# Relay ports: below livekit-server's UDP media range (LocalServer 50000-50999, LocalCluster
# nodes 51000 and up); a test needs a handful of allocations, so a small block does.
_RELAY_PORTS: Final = (49000, 49199)
_STUN_MAGIC: Final = 0x2112A442


def _stun_binding_answers(address: tuple[str, int], timeout: float = 0.5) -> bool:
    """Whether a STUN Binding request (RFC 5389) over UDP gets a Binding success response."""
    transaction = secrets.token_bytes(12)
    request = (0x0001).to_bytes(2, "big") + (0).to_bytes(2, "big")
    request += _STUN_MAGIC.to_bytes(4, "big") + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, address)
            reply, _ = sock.recvfrom(2048)
        except OSError:  # refused (ICMP port unreachable: not listening yet) or timed out
            return False
    return len(reply) >= 20 and reply[:2] == b"\x01\x01" and reply[8:20] == transaction


@final
class LocalTurn(Daemon):
    """A coturn ``turnserver`` child process with one static long-term-credential user.

    A sync context manager, like :class:`~lkanyio.testing.LocalServer`::

        with LocalTurn() as turn:
            options = lkanyio.RoomOptions(
                rtc_config=lkanyio.RtcConfiguration(
                    ice_transport_type=lkanyio.IceTransportType.RELAY,
                    ice_servers=[turn.ice_server()],
                )
            )

    It listens on UDP and TCP, without TLS, on ``ip:port`` and relays from ``ip`` on
    ``relay_ports``.  Start it inside :func:`~lkanyio.testing.enter_private_netns` (its
    addresses exist only there).  ``scripts/bootstrap`` installs Debian's ``coturn``.
    """

    NAME: ClassVar[str] = "turnserver"

    def __init__(
        self,
        *,
        ip: str = PEER_IP,
        port: int = _TURN_PORT,
        relay_ports: tuple[int, int] = _RELAY_PORTS,
        username: str = "lkanyio",
        password: str | None = None,
        realm: str = "lkanyio.test",
        binary: str | None = None,
    ) -> None:
        """Prepare (not start) a TURN server.

        Args:
            ip: the address it listens on and relays from (default: :data:`PEER_IP`, the veth
                end the livekit-server does not use, so relayed traffic crosses the veth pair).
            port: its UDP and TCP listening port.
            relay_ports: the first and last UDP port of its relay range; keep it clear of
                livekit-server's media ports.
            username: the one long-term-credential user.
            password: that user's password (default: a fresh random one).
            realm: the realm of the long-term credentials.
            binary: the ``turnserver`` executable (default: found on ``PATH``).

        Raises:
            RuntimeError: no ``turnserver`` (``scripts/bootstrap`` installs Debian's coturn).
        """
        found = binary or shutil.which("turnserver") or "/usr/bin/turnserver"
        if not Path(found).is_file():
            raise RuntimeError("no turnserver: run scripts/bootstrap (it installs Debian's coturn)")
        self.binary = found
        self.ip = ip
        self.port = port
        self.relay_ports = relay_ports
        self.username = username
        self.password = password or secrets.token_hex(16)
        self.realm = realm
        super().__init__(scratch_prefix="lkanyio-turn-", log_name="turnserver.log")
        self._config = self._dir / "turnserver.conf"
        self._config.write_text("# every option is on the command line\n")

    @property
    def url(self) -> str:
        """The ``turn:`` URL clients use (UDP transport)."""
        return f"turn:{self.ip}:{self.port}?transport=udp"

    def ice_server(self, *, password: str | None = None) -> IceServer:
        """An :class:`lkanyio.IceServer` for this server with its credentials.

        Args:
            password: use this password instead of the right one (to test a refusal).
        """
        return IceServer(
            urls=[self.url],
            username=self.username,
            password=self.password if password is None else password,
        )

    def _env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self._dir)}

    def _command(self) -> list[str]:
        return [
            self.binary,
            # Not Debian's /etc/turnserver.conf: it sends the log to syslog (measured: with it
            # the log file stayed empty) and sets options of its own.
            "-c",
            str(self._config),
            "--log-file=stdout",  # into log_path
            "--listening-ip",
            self.ip,
            "--relay-ip",
            self.ip,
            "--listening-port",
            str(self.port),
            "--min-port",
            str(self.relay_ports[0]),
            "--max-port",
            str(self.relay_ports[1]),
            "--lt-cred-mech",
            "--user",
            f"{self.username}:{self.password}",
            "--realm",
            self.realm,
            # Everything coturn would otherwise keep under /var (user database, pid file) or
            # open beyond the one UDP/TCP port the tests need.
            f"--userdb={self._dir / 'turndb'}",
            f"--pidfile={self._dir / 'turnserver.pid'}",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-rfc5780",
            "--no-software-attribute",
            "--fingerprint",
            "--verbose",
        ]

    def answers(self) -> bool:
        """Whether a STUN Binding request over UDP is answered right now."""
        return _stun_binding_answers((self.ip, self.port))
