"""The demo, end to end: each side sees everything the other sends, and says so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import anyio
import pytest

from _util import assert_no_leaks
from lkanyio import demo
from lkanyio.demo import ALICE, BOB, Seen

RUN_WAIT = 90.0
"""Upper bound for a whole exchange (a hang guard, never a timing assertion)."""


@pytest.mark.anyio
async def test_each_side_sees_everything_the_other_sends(server_info: Any) -> None:
    reports = demo.new_reports()
    lines: list[str] = []
    with anyio.fail_after(RUN_WAIT):
        await demo.run(server_info, reports, say=lines.append)
    alice, bob = reports
    assert (alice.me, bob.me) == (ALICE, BOB)
    assert (alice.problems, bob.problems) == ([], []), lines
    # Spelled out, so that a lenient problems() cannot hide a broken exchange.
    assert bob.seen.data == "hello from alice"
    assert alice.seen.data == "hi alice, bob here"
    assert (bob.seen.metadata, bob.seen.name) == ('{"mood": "curious"}', "Alice L.")
    assert (alice.seen.metadata, alice.seen.name) == ('{"mood": "cheerful"}', "Bob B.")
    assert bob.seen.attributes == {"role": "speaker"}
    assert alice.seen.attributes == {"role": "listener"}
    assert (bob.seen.dtmf, alice.seen.dtmf) == ((1, "1"), (11, "#"))
    assert bob.seen.tone is not None
    assert abs(bob.seen.tone - 440.0) <= 5.0
    assert alice.seen.tone is not None
    assert abs(alice.seen.tone - 660.0) <= 5.0
    # What each side printed is labelled with that side.
    assert "bob   | got data on 'chat': 'hello from alice'" in lines
    assert "alice | got data on 'chat': 'hi alice, bob here'" in lines
    assert "alice | left the room" in lines
    assert "bob   | left the room" in lines
    assert_no_leaks()


def test_problems_name_what_is_missing_or_wrong() -> None:
    assert Seen.expected_from(ALICE).problems(ALICE) == []
    seen = Seen.expected_from(ALICE)
    seen.tone = 440.0 + 4.0  # within the tolerance: codecs and the scan are not exact
    assert seen.problems(ALICE) == []
    seen.tone = 660.0
    seen.name = "Mallory"
    seen.dtmf = None
    assert seen.problems(ALICE) == [
        "name 'Mallory' instead of 'Alice L.'",
        "no dtmf arrived",
        "heard the tone at 660 Hz, not 440 Hz",
    ]
    assert Seen().problems(BOB) == [
        f"no {name} arrived" for name in ("data", "metadata", "name", "attributes", "dtmf", "tone")
    ]


def _run_demo(server_info: Any, *args: str, url: str | None = None) -> tuple[int, list[str]]:
    """``python -m lkanyio.demo`` against the test server (the child shares our namespace)."""
    env = dict(
        os.environ,
        LIVEKIT_URL=url or server_info.url,
        LIVEKIT_API_KEY=server_info.api_key,
        LIVEKIT_API_SECRET=server_info.api_secret,
    )
    result = subprocess.run(
        [sys.executable, "-m", "lkanyio.demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_WAIT,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.splitlines()


def test_the_command_prints_both_sides_and_exits_0(server_info: Any) -> None:
    status, lines = _run_demo(server_info, "--backend", "asyncio")
    assert status == 0, lines
    assert lines[0] == f"using the server at {server_info.url}"
    assert "bob   | got DTMF '1' (code 1)" in lines
    assert "alice | got DTMF '#' (code 11)" in lines
    assert any(line.startswith("bob   | heard alice's tone at") for line in lines)
    assert lines[-3] == "after leaving: 0 pending requests, 0 routed handles, 0 live handles"
    assert lines[-2:] == [
        "alice: OK, saw all bob sent (data, metadata, name, attributes, dtmf, tone)",
        "bob: OK, saw all alice sent (data, metadata, name, attributes, dtmf, tone)",
    ]


MISSING = "no data arrived; no metadata arrived; no name arrived; no attributes arrived"


def test_the_command_names_what_never_arrived_and_exits_1(server_info: Any) -> None:
    # A server that accepts and never answers, and a zero deadline: nothing can arrive.  (Not
    # the test server: a connect abandoned as the process exits would linger there.)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        status, lines = _run_demo(server_info, "--timeout", "0", url=url)
    assert status == 1, lines
    assert "gave up after 0 s: not everything arrived" in lines
    assert lines[-2].startswith(f"alice: FAILED: {MISSING}")
    assert lines[-1].startswith(f"bob: FAILED: {MISSING}")


def test_the_command_reports_a_failed_connect_and_exits_1(server_info: Any) -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{closed.getsockname()[1]}"
        status, lines = _run_demo(server_info, url=url)
    assert status == 1, lines
    # The first side to fail ends the exchange; its summary leads with the error.
    failed = [line for line in lines if line.startswith(("alice: FAILED", "bob: FAILED"))]
    assert len(failed) == 2, lines
    assert any("FAILED: ConnectError: " in line for line in failed), lines
    assert all(line.endswith("no tone arrived") for line in failed), lines
