"""Fixtures: every async test on asyncio and trio, and one real livekit-server per run.

Unless LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET name an external server, the test process
moves itself into a private network namespace at import (before any thread starts) and runs
livekit-server there: no traffic leaves the namespace.  If that is impossible the run fails: the
integration tests never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

from lkanyio.testing import (
    LocalCluster,
    LocalServer,
    ServerInfo,
    enter_private_netns,
    external_server_from_env,
    make_token,
)

# Property tests explore randomly on developer machines; in CI they replay a fixed sequence so
# a run is reproducible (anything a random run finds is fixed and kept as a regression).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

_EXTERNAL = external_server_from_env()
_NODE_IP: str | None = None
if _EXTERNAL is None:
    try:
        # A pytest-xdist worker has a thread reading its pipe from the controller; it never
        # touches the network, so it may stay outside.  Each worker has its own namespace and
        # its own livekit-server (the session fixture below), so workers never share state.
        _NODE_IP = enter_private_netns(allow_threads="PYTEST_XDIST_WORKER" in os.environ)
    except RuntimeError as exc:
        raise pytest.UsageError(
            f"cannot create the private network namespace the integration tests run in: {exc}"
        ) from exc


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[LocalServer | None]:
    if _EXTERNAL is not None:
        yield None
        return
    assert _NODE_IP is not None
    with LocalServer(node_ip=_NODE_IP) as server:
        yield server


@pytest.fixture
def local_server(livekit_server: LocalServer | None) -> LocalServer:
    """The local server, for fault tests that kill it or cut its network namespace's link.

    An external server (LIVEKIT_URL) allows neither: a developer's run skips these tests,
    but CI must run them all, so there it is an error.
    """
    if livekit_server is None:
        reason = "fault tests kill the server or cut its link: they need the local one"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return livekit_server


@pytest.fixture(scope="session")
def livekit_cluster() -> Iterator[LocalCluster | None]:
    """One Redis and two livekit-server nodes per worker, started by the first test that asks."""
    if _EXTERNAL is not None:
        yield None
        return
    with LocalCluster(nodes=2) as cluster:
        yield cluster


@pytest.fixture
def cluster(livekit_cluster: LocalCluster | None) -> LocalCluster:
    """The worker's cluster, whole again (fault tests kill nodes and Redis): needs the local
    harness, as :func:`local_server` does."""
    if livekit_cluster is None:
        reason = "cluster tests run their own Redis and nodes: they need the local harness"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    livekit_cluster.start()  # restarts whatever a previous test killed; waits for registration
    return livekit_cluster


@pytest.fixture
def server_info(livekit_server: LocalServer | None) -> ServerInfo:
    if livekit_server is None:
        assert _EXTERNAL is not None
        return _EXTERNAL
    if not livekit_server.running:  # a fault test killed it: bring it back for the next test
        livekit_server.start()
    return livekit_server.info


@pytest.fixture
def token_factory(server_info: ServerInfo) -> Callable[..., str]:
    def make(identity: str, room: str, **grants: Any) -> str:
        return make_token(server_info, identity=identity, room=room, **grants)

    return make


@pytest.fixture
def room_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("livekit_server") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, LocalServer):
        report.sections.append(("livekit-server log (tail)", server.log_tail()))
    cluster = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(cluster, LocalCluster):
        for name, tail in cluster.log_tails():
            report.sections.append((f"cluster {name} log (tail)", tail))
