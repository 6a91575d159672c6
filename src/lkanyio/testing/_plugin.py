"""The pytest plugin (entry point ``lkanyio``): a real livekit-server for your tests in one line.

Installed with lkanyio and active in every pytest run, it does nothing until a test asks for one
of its fixtures::

    import lkanyio
    import pytest

    @pytest.mark.anyio
    async def test_hello(livekit_server_info, livekit_token):
        async with lkanyio.connect(livekit_server_info.url, livekit_token("alice")) as room:
            ...

Fixtures:

- ``livekit_server_info`` (:class:`~lkanyio.testing.ServerInfo`): the server named by
  ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``, else a local livekit-server in a
  private network namespace (one per session, one per pytest-xdist worker; restarted if a test
  killed it).
- ``livekit_token``: ``livekit_token(identity, room=None, **grants)`` mints a token for that
  server (``room`` defaults to ``livekit_room_name``; grants as in
  :func:`~lkanyio.testing.make_token`).
- ``livekit_room_name``: a room name unique to the test.
- ``livekit_local_server`` (:class:`~lkanyio.testing.LocalServer`): the local server itself, for
  tests that kill it; such tests skip against an external server (and fail when ``CI`` is set).
- ``livekit_server``: the session's :class:`~lkanyio.testing.LocalServer`, or ``None`` with an
  external server.

The namespace must be entered before threads start (every later thread inherits it).  The
plugin enters it when the first test needs the local server, if the process is still
single-threaded by then; if your session starts threads earlier (lkanyio's native core, other
libraries, pytest-xdist as an ordinary user), pass ``--livekit-netns`` or set
``livekit_netns = true`` in the pytest ini options, and the plugin enters it at startup.
Without root it enters a user namespace too (the kernel must allow unprivileged user
namespaces).  Failing tests get the server log's tail in their report.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from ._server import (
    LocalServer,
    ServerInfo,
    TokenFactory,
    enter_private_netns,
    entered_netns,
    external_server_from_env,
)
from ._server import make_token as _make_token

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

__all__ = ["enter_namespace_unless_external"]

_INI: str = "livekit_netns"


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - no procfs: trust Python's count
        return threading.active_count()


def enter_namespace_unless_external(*, lazily: bool = False) -> str | None:
    """Enter the private network namespace unless ``LIVEKIT_URL`` names an external server.

    Returns the local server's address (``None``: external).  A pytest-xdist worker may enter
    with its pipe-reader thread running (it never uses the network).

    Args:
        lazily: called from a fixture, mid-session: also refuse when threads Python does not
            know about run (lkanyio's native core), since they would stay outside.

    Raises:
        pytest.UsageError: the namespace cannot be entered (the message says why and what to
            do instead).
    """
    if external_server_from_env() is not None:
        return None
    try:
        if lazily and entered_netns() is None and _os_threads() > threading.active_count():
            raise RuntimeError(
                "native threads already run in this process (lkanyio's core started before "
                "the first test that needs the server), and they would stay outside the "
                "namespace"
            )
        return enter_private_netns(allow_threads="PYTEST_XDIST_WORKER" in os.environ)
    except RuntimeError as exc:
        hint = (
            f"; enter it at startup with --livekit-netns or '{_INI} = true' in the pytest "
            "ini options"
            if lazily
            else ""
        )
        raise pytest.UsageError(
            f"lkanyio: cannot create the private network namespace the local livekit-server "
            f"runs in: {exc}{hint}"
        ) from exc


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--livekit-netns`` and the ``livekit_netns`` ini flag."""
    group = parser.getgroup("lkanyio", "lkanyio: a real livekit-server for tests")
    group.addoption(
        "--livekit-netns",
        action="store_true",
        default=False,
        help="enter the private network namespace at startup, before any thread starts "
        "(default: when the first test needs the local server)",
    )
    parser.addini(_INI, type="bool", default=False, help="like --livekit-netns")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Enter the namespace now if ``--livekit-netns`` or ``livekit_netns`` asks for it."""
    if config.getoption("livekit_netns") or config.getini(_INI):
        enter_namespace_unless_external()


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[LocalServer | None]:
    """The session's local livekit-server (``None`` with an external server)."""
    node_ip = enter_namespace_unless_external(lazily=True)
    if node_ip is None:
        yield None
        return
    with LocalServer(node_ip=node_ip) as server:
        yield server


@pytest.fixture
def livekit_local_server(livekit_server: LocalServer | None) -> LocalServer:
    """The local server, for fault tests that kill it or cut its namespace's link.

    An external server (``LIVEKIT_URL``) allows neither: the test skips, or fails when ``CI``
    is set (CI must run them all).
    """
    if livekit_server is None:
        reason = "this test kills the server or cuts its link: it needs the local one"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return livekit_server


@pytest.fixture
def livekit_server_info(livekit_server: LocalServer | None) -> ServerInfo:
    """Where the server is and its keys: the external one, or the local one (restarted)."""
    if livekit_server is None:
        external = external_server_from_env()
        assert external is not None
        return external
    if not livekit_server.running:  # a fault test killed it: bring it back for the next test
        livekit_server.start()
    return livekit_server.info


@pytest.fixture
def livekit_room_name() -> str:
    """A room name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def livekit_token(livekit_server_info: ServerInfo, livekit_room_name: str) -> TokenFactory:
    """Mint tokens for the server: ``livekit_token("alice")`` joins the test's room."""

    def make(identity: str, room: str | None = None, **grants: Any) -> str:
        room = livekit_room_name if room is None else room
        return _make_token(livekit_server_info, identity=identity, room=room, **grants)

    return make


@pytest.hookimpl(tryfirst=True, wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Append the local server's log tail to the report of a failed test that used it."""
    report = yield
    server = getattr(item, "funcargs", {}).get("livekit_server")
    if report.failed and isinstance(server, LocalServer):
        report.sections.append(("livekit-server log (tail)", server.log_tail()))
    return report
