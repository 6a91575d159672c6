"""Fixtures for every test: each async test on asyncio and trio; reproducible property tests in CI.

The server, the namespace and the token fixtures are the integration tests' (tests/integration/
conftest.py); the unit tests (tests/unit) run as an ordinary user without root or a server.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Property tests explore randomly on developer machines; in CI they replay a fixed sequence so
# a run is reproducible (anything a random run finds is fixed and kept as a regression).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def no_leaks_after() -> Iterator[None]:
    """After the test, nothing of lkanyio's is left: requests, handles, subscriptions (modules
    that check this use it through ``pytest.mark.usefixtures``)."""
    from _util import collect_and_assert_no_leaks  # imports lkanyio: only when a test asks

    yield
    collect_and_assert_no_leaks()


# Under pytest-xdist (scripts/test: ``-n LKANYIO_TEST_WORKERS --maxschedchunk=1``) the slowest
# tests go first, one at a time to whichever worker is free, so the run does not end waiting on
# one worker that drew a 30 s test last (measured, 4 workers on 2 cores: the last two minutes of
# the parallel phase had under a quarter of a core busy).  Modules in order of their measured
# seconds per test (``--durations``, December): the cluster tests (~17 s each: nodes and Redis
# are killed and restarted), the hosts scenario in subprocesses (~12 s), the fuzzers, the plugin
# and rootless suites (pytest in subprocesses), the fault and scenario tests (~6-9 s: the native
# core's reconnect timers).  The slow modules' tests are dealt out in turn (one of each, then the
# next of each) rather than module by module: run module by module, the ten hosts scenarios (real-
# time audio in subprocesses) ran side by side at the start and, with other work keeping the
# machine busy, three heard a tone a few Hz off.  (They are marked realtime now, and scripts/test
# runs those one after another, without xdist; the hint stays for a plain ``pytest -n``.)
# An ordering hint only: a module missing here runs after them, in collection order, and every
# test runs whatever the order.  A run without xdist keeps the collection order.
_SLOWEST_FIRST = (
    "test_cluster.py",
    "test_hosts.py",
    "test_fuzz_more.py",
    "test_plugin.py",
    "test_reliability.py",
    "test_scenarios.py",
    "test_rootless.py",
    "test_e2ee.py",
    "test_fuzz.py",
    "test_demo.py",
    "test_turn.py",
    "test_room_state.py",
    "test_e2ee_controls.py",
    "test_audio_server.py",
    "test_cli.py",
    "test_audio_source_teardown.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, deal the slowest modules' tests out first (the same order on every worker)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    rank = {name: index for index, name in enumerate(_SLOWEST_FIRST)}
    turn: dict[str, int] = {}
    keys: dict[int, tuple[int, int]] = {}
    for item in items:
        name = item.path.name
        if name in rank:
            turn[name] = turn.get(name, -1) + 1
            keys[id(item)] = (turn[name], rank[name])
        else:
            keys[id(item)] = (len(items), 0)  # after every slow test, in collection order
    items.sort(key=lambda item: keys[id(item)])


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collecting made (modules, test items, strategies: nothing of lkanyio's owns a
    native handle yet), so the cyclic collector, in the tests' own ``gc.collect()`` calls and on
    its own, no longer visits it (``tests/_util.collect_and_assert_no_leaks`` says why)."""
    gc.collect()
    gc.freeze()
