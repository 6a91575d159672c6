"""lkanyio.testing's daemon base: a service never mistakes another program for itself."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from lkanyio.testing._daemon import Daemon


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def squatter() -> Iterator[int]:
    """Another program already answering on a loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _SlowService(Daemon):
    """A service that takes its time to answer on ``port`` (it never does, here)."""

    NAME: ClassVar[str] = "slow-service"

    def __init__(self, port: int) -> None:
        super().__init__(scratch_prefix="lkanyio-test-daemon-", log_name="slow.log")
        self.port = port

    def _command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(30)"]

    def answers(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False


def test_a_port_another_program_answers_on_is_refused_before_starting(squatter: int) -> None:
    # A second livekit-server on a port a cluster node already served "started" in 0 s: the
    # node answered its readiness check, and the test then signed tokens with the wrong secret.
    service = _SlowService(squatter)
    with pytest.raises(RuntimeError, match="already answers"):
        service.start()
    assert not service.running
    service.close()
