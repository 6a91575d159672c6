"""Integration fixtures: one real livekit-server per test process, in a private network namespace.

Unless LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET name an external server, the test process
moves itself into a private network namespace when this file is imported (at collection, before
any test starts a native thread) and runs livekit-server there: no traffic leaves the namespace.
If that is impossible the run fails: the integration tests never skip.  The unit tests
(tests/unit) do not load this file and need neither root nor a server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lkanyio.testing import (
    LocalCluster,
    LocalServer,
    ServerInfo,
    TokenFactory,
    external_server_from_env,
)
from lkanyio.testing._plugin import enter_namespace_unless_external

# The server fixtures are lkanyio's pytest plugin's (lkanyio.testing._plugin, loaded through its
# entry point); the short names below are aliases.  Many tests start lkanyio's native core
# without a server, in any order across the xdist workers, so the namespace is entered here, at
# import, before any thread starts (for users the plugin's --livekit-netns does the same).
enter_namespace_unless_external()


@pytest.fixture
def local_server(livekit_local_server: LocalServer) -> LocalServer:
    """The local server, for fault tests (skipped against an external one, failed in CI)."""
    return livekit_local_server


@pytest.fixture
def server_info(livekit_server_info: ServerInfo) -> ServerInfo:
    return livekit_server_info


@pytest.fixture(scope="session")
def livekit_cluster() -> Iterator[LocalCluster | None]:
    """One Redis and two livekit-server nodes per worker, started by the first test that asks."""
    if external_server_from_env() is not None:
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
def token_factory(livekit_token: TokenFactory) -> TokenFactory:
    return livekit_token


@pytest.fixture
def room_name(livekit_room_name: str) -> str:
    return livekit_room_name


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    cluster = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(cluster, LocalCluster):
        for name, tail in cluster.log_tails():
            report.sections.append((f"cluster {name} log (tail)", tail))
