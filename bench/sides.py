"""The frame of the benchmarks that compare sides, each in its own process, on one server.

One livekit-server (in a private network namespace, as the tests run it, or the one
LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET name); each repetition runs every side once, one
after another (interleaved, so load from elsewhere hits every side alike); each side prints one
JSON object as its last line.  Used by bench/api.py and bench/agents.py.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path


def fmt(value: float) -> str:
    """A number for a table: thousands separated from 100 on, else three significant digits."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def run_interleaved(
    script: Path,
    sides: Sequence[str],
    reps: int,
    child_args: Sequence[str],
    server: Callable[[Any], list[str]],
    prepare: Callable[[Any], None] = lambda info: None,
) -> dict[str, list[dict[str, float]]]:
    """Run ``script --side SIDE *child_args --server JSON`` ``reps`` times per side.

    ``server(info)`` is what the child gets as ``--server`` (JSON); ``prepare(info)`` runs once
    the server is up.  Returns each side's results, in order.
    """
    from lkanyio.testing import LocalServer, enter_private_netns, external_server_from_env

    external = external_server_from_env()
    local = None if external else LocalServer(node_ip=enter_private_netns())
    if local is not None:
        local.start()
    info = external or local.info  # type: ignore[union-attr]
    try:
        prepare(info)
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for _ in range(reps):
            for side in sides:
                out = subprocess.run(
                    [sys.executable, str(script), "--side", side, *child_args,
                     "--server", json.dumps(server(info))],
                    capture_output=True, text=True, check=True,
                ).stdout
                runs[side].append(json.loads(out.splitlines()[-1]))
    finally:
        if local is not None:
            local.stop()
    return runs


def medians(
    runs: dict[str, list[dict[str, float]]], metrics: Sequence[tuple[str, str, str]]
) -> dict[str, dict[str, float]]:
    """Each side's median of each metric over its runs."""
    return {
        side: {m: statistics.median(r[m] for r in results) for m, _, _ in metrics}
        for side, results in runs.items()
    }


def write_results(
    path: Path, settings: dict[str, int], runs: dict[str, Any], medians: dict[str, Any]
) -> None:
    """Write a run's raw numbers as JSON (bench/results/ is not under version control)."""
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **settings,
        "runs": runs,
        "medians": medians,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
