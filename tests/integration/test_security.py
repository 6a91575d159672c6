"""Secrets stay secret and connections stay verified (both backends).

* Access tokens and the API secret never reach a log record (native records included, at
  TRACE), a repr or an exception message.
* Only ``ws``/``wss``/``http``/``https`` URLs are accepted.
* TLS is verified: ``wss://`` to a plain-HTTP port fails with a ``ConnectError``, it never
  falls back to an unencrypted connection; a TLS server whose certificate no trusted root signed
  is refused with a certificate error, and the same server is accepted once its CA is trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

import lkanyio
from _util import collect_for
from lkanyio.testing import ServerInfo, make_token

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leaks_after")]

TokenFactory = Callable[..., str]

SUBPROCESS_BOUND = 120.0
"""Hang guard for a child process that joins a room and leaves it."""



def _secrets_of(token: str, info: ServerInfo) -> list[str]:
    """What must never be shown: the token, its signature, and the API secret."""
    return [token, token.rsplit(".", 1)[-1], info.api_secret]


def _assert_clean(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret leaked into {where}: {text[:300]!r}"


# -- logs: a child process with the native core at TRACE --------------------------------------

_LOG_CHILD = textwrap.dedent(
    """
    import json, logging, sys
    import anyio
    import lkanyio

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.name, record.levelno, record.getMessage()))

    root = logging.getLogger("lkanyio")
    root.setLevel(1)
    root.addHandler(Keep(level=1))
    url, token, bad_token = sys.argv[1], sys.argv[2], sys.argv[3]
    errors = []

    async def main():
        async with lkanyio.connect(url, token) as room:
            await room.local_participant.publish_data(b"hello")
            await room.local_participant.set_metadata("m")
            await anyio.sleep(1)
        try:
            async with lkanyio.connect(url, bad_token):
                pass
        except lkanyio.ConnectError as exc:
            errors.append(str(exc))

    anyio.run(main, backend=sys.argv[4])
    json.dump({"records": records, "errors": errors}, sys.stdout)
    """
)


async def test_tokens_and_secret_never_reach_the_logs(
    server_info: ServerInfo, token_factory: TokenFactory, room_name: str, anyio_backend: str
) -> None:
    token = token_factory("alice", room_name)
    # Signed with another key: the server refuses it, and the refusal is logged.
    bad_token = make_token(
        ServerInfo(
            url=server_info.url,
            http_url=server_info.http_url,
            api_key=server_info.api_key,
            api_secret="a-wrong-secret-that-is-long-enough-0123456789",
        ),
        identity="mallory",
        room=room_name,
    )
    env = {**os.environ, "LKANYIO_NATIVE_LOG_LEVEL": "trace", "PYTHONWARNINGS": "error"}
    with anyio.fail_after(SUBPROCESS_BOUND):
        done = await anyio.run_process(
            [sys.executable, "-c", _LOG_CHILD, server_info.url, token, bad_token, anyio_backend],
            env=env,
            check=False,
        )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-3000:]
    result = json.loads(done.stdout)
    records: list[tuple[str, int, str]] = result["records"]
    # The check is only meaningful if the native core really logged at TRACE/DEBUG level,
    # including the signalling it does with the token.
    native = [r for r in records if r[0] == "lkanyio.native"]
    assert len(native) > 50, records[:20]
    assert any(level < 20 for _name, level, _msg in native)
    assert result["errors"], "the bad token was not refused"
    secrets = _secrets_of(token, server_info) + _secrets_of(bad_token, server_info)
    for name, _level, message in records:
        _assert_clean(message, secrets, f"the {name} log")
    _assert_clean("\n".join(result["errors"]), secrets, "a ConnectError")
    _assert_clean(stderr, secrets, "stderr")


# -- reprs and exception messages, in process -------------------------------------------------


async def test_reprs_never_show_the_token(
    server_info: ServerInfo, token_factory: TokenFactory, room_name: str
) -> None:
    token = token_factory("alice", room_name)
    secrets = _secrets_of(token, server_info)
    _assert_clean(repr(server_info), [server_info.api_secret], "repr(ServerInfo)")
    room = lkanyio.connect(server_info.url, token)
    _assert_clean(repr(room), secrets, "repr(Room) before joining")
    async with room:
        async with (
            room.events() as events,
            lkanyio.connect(server_info.url, token_factory("bob", room_name)),
        ):
            # The server sends every participant a fresh token right after joining.
            seen = await collect_for(events, 2.0)
            refreshed = [e for e in seen if isinstance(e, lkanyio.TokenRefreshed)]
            assert refreshed, seen
            assert refreshed[0].token.count(".") == 2  # a JWT, kept for the application
            for event in refreshed:
                secrets += [event.token, event.token.rsplit(".", 1)[-1]]
            shown = [room, room.local_participant, *room.remote_participants.values(), *seen]
            for obj in shown:
                _assert_clean(repr(obj), secrets, f"repr({type(obj).__name__})")
                _assert_clean(str(obj), secrets, f"str({type(obj).__name__})")
    _assert_clean(repr(room), secrets, "repr(Room) after leaving")


async def test_refused_token_is_not_echoed_in_the_error(
    server_info: ServerInfo, room_name: str
) -> None:
    # The server's 401 body repeats the token it refused; the ConnectError must not.
    wrong_key = ServerInfo(
        url=server_info.url,
        http_url=server_info.http_url,
        api_key=server_info.api_key,
        api_secret="a-wrong-secret-that-is-long-enough-0123456789",
    )
    token = make_token(wrong_key, identity="mallory", room=room_name)
    with anyio.fail_after(30), pytest.raises(lkanyio.ConnectError, match="401") as refused:
        async with lkanyio.connect(server_info.url, token):
            pass
    shown = "".join(traceback.format_exception(refused.value)) + repr(refused.value)
    _assert_clean(shown, _secrets_of(token, wrong_key), "the ConnectError")
    assert "<redacted>" in str(refused.value)


# -- URLs and TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://10.213.7.1:7880",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "10.213.7.1:7880",
        "//10.213.7.1:7880",
        "",
        "ws://",
        "wss:///path-only",
        "WS+unix://socket",
        "gopher://10.213.7.1:7880",
    ],
)
def test_only_websocket_and_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="ws://"):
        lkanyio.connect(url, "token")


@pytest.mark.parametrize("url", [b"ws://10.213.7.1:7880", None, 7880])
def test_url_of_the_wrong_type_is_a_type_error(url: Any) -> None:
    with pytest.raises(TypeError, match="url"):
        lkanyio.connect(url, "token")


async def test_tls_is_verified_and_never_downgraded(
    server_info: ServerInfo, token_factory: TokenFactory, room_name: str
) -> None:
    # The server speaks plain HTTP on its port: a wss:// connection to it must fail during the
    # TLS handshake instead of quietly talking in the clear.
    plain = server_info.url.split("://", 1)[1]
    token = token_factory("alice", room_name)
    for scheme in ("wss", "https"):
        with anyio.fail_after(60), pytest.raises(lkanyio.ConnectError) as failed:
            async with lkanyio.connect(
                f"{scheme}://{plain}", token, options=lkanyio.RoomOptions(join_retries=0)
            ):
                pytest.fail(f"{scheme}:// joined a plain-HTTP server")
        # rustls (native core v0.13.2) reads the server's HTTP answer as a TLS record:
        # "received corrupt message of type InvalidContentType".
        message = str(failed.value).lower()
        assert "invalidcontenttype" in message or "tls" in message, message
        _assert_clean(message, _secrets_of(token, server_info), "the TLS ConnectError")


# A TLS-terminating proxy in front of the real server, with a certificate of a test-made CA.

_TLS_PROXY = textwrap.dedent(
    """
    import asyncio, ssl, sys

    host, cert, key, up_host, up_port = sys.argv[1:6]

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(reader, writer):
        print("handshake completed", flush=True)
        try:
            up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = await asyncio.start_server(handle, host, 0, ssl=context)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


@dataclass(frozen=True)
class _Pki:
    ca: Path
    cert: Path
    key: Path
    host: str


@pytest.fixture
def pki(tmp_path: Path, server_info: ServerInfo) -> _Pki:
    """A CA made for this test and a server certificate it signed for the server's node IP."""
    host = server_info.node_ip or "127.0.0.1"

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ext = tmp_path / "server.ext"
    ext.write_text(
        f"subjectAltName=IP:{host}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test CA")
    openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=s")
    ca = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "server.ext"]
    openssl("x509", "-req", "-in", "server.csr", *ca, "-days", "1", "-out", "server.pem")
    return _Pki(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key", host)


@asynccontextmanager
async def _tls_proxy(pki: _Pki, upstream: str) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Run the proxy; yield its ``wss://`` URL and the lines it printed (one per handshake)."""
    parts = urlsplit(upstream)
    assert parts.hostname
    assert parts.port
    args = [str(pki.host), str(pki.cert), str(pki.key), parts.hostname, str(parts.port)]
    async with await anyio.open_process([sys.executable, "-c", _TLS_PROXY, *args]) as proxy:
        assert proxy.stdout is not None
        lines: list[bytes] = []
        buffered = b""
        with anyio.fail_after(30):
            while b"\n" not in buffered:
                buffered += await proxy.stdout.receive()
        port, buffered = buffered.split(b"\n", 1)

        async def read_lines() -> None:
            nonlocal buffered
            assert proxy.stdout is not None
            async for chunk in proxy.stdout:
                buffered += chunk
                *done, buffered = buffered.split(b"\n")
                lines.extend(done)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_lines)
                yield f"wss://{pki.host}:{int(port)}", lines
                tg.cancel_scope.cancel()
        finally:
            proxy.terminate()


async def test_tls_certificate_of_an_untrusted_ca_is_refused(
    server_info: ServerInfo, token_factory: TokenFactory, room_name: str, pki: _Pki
) -> None:
    token = token_factory("alice", room_name)
    async with _tls_proxy(pki, server_info.url) as (url, _lines):
        with anyio.fail_after(60), pytest.raises(lkanyio.ConnectError) as failed:
            async with lkanyio.connect(url, token, options=lkanyio.RoomOptions(join_retries=0)):
                pytest.fail("joined through a certificate no trusted root signed")
    # rustls (native core v0.13.2): "invalid peer certificate: UnknownIssuer".
    message = str(failed.value).lower()
    assert "certificate" in message, message
    assert "unknownissuer" in message, message
    _assert_clean(message, _secrets_of(token, server_info), "the TLS ConnectError")


_TRUSTING_CHILD = textwrap.dedent(
    """
    import sys
    import anyio
    import lkanyio

    async def main():
        async with lkanyio.connect(sys.argv[1], sys.argv[2]) as room:
            await room.local_participant.set_metadata("joined over TLS")
            print("joined as", room.local_participant.identity, flush=True)

    anyio.run(main, backend=sys.argv[3])
    """
)


async def test_tls_certificate_of_a_trusted_ca_is_accepted(
    server_info: ServerInfo,
    token_factory: TokenFactory,
    room_name: str,
    pki: _Pki,
    anyio_backend: str,
) -> None:
    # The refusal above is about trust: the same proxy and certificate work for a process that
    # trusts the CA (SSL_CERT_FILE, read by rustls-native-certs when the core connects).
    token = token_factory("alice", room_name)
    env = {**os.environ, "SSL_CERT_FILE": str(pki.ca), "PYTHONWARNINGS": "error"}
    env.pop("SSL_CERT_DIR", None)
    async with _tls_proxy(pki, server_info.url) as (url, lines):
        with anyio.fail_after(SUBPROCESS_BOUND):
            done = await anyio.run_process(
                [sys.executable, "-c", _TRUSTING_CHILD, url, token, anyio_backend],
                env=env,
                check=False,
            )
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0, output[-3000:]
        assert "joined as alice" in output, output[-3000:]
        with anyio.fail_after(10):  # it went through the proxy, over TLS
            while b"handshake completed" not in lines:
                await anyio.sleep(0.01)
