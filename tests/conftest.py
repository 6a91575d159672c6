"""Fixtures for every test: each async test on asyncio and trio; reproducible property tests in CI.

The server, the namespace and the token fixtures are the integration tests' (tests/integration/
conftest.py); the unit tests (tests/unit) run as an ordinary user without root or a server.
"""

from __future__ import annotations

import os

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
