"""The parity table (docs/parity.md) lists every public name of livekit.rtc, and stays true.

``livekit.rtc`` is listed in a child process (tests/rtc_public_api.py): lkanyio never imports the
official SDK, and this test process does not either.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lkanyio

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<lkanyio>.*?) \| (?P<notes>.*?) \|$")
COUNTERPARTS = re.compile(r"^`lkanyio\.[\w.]+`(, `lkanyio\.[\w.]+`)*$")
NOT_YET = re.compile(r"^not yet \(issue \d+\)$")


@pytest.fixture(scope="module")
def rtc_api() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "rtc_public_api.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    api: dict[str, Any] = json.loads(out)["api"]
    assert len(api) > 300  # the enumeration itself works (1.2.0: 441 names)
    return api


@pytest.fixture(scope="module")
def table() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in (ROOT / "docs" / "parity.md").read_text().splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        name = match["name"]
        if name.startswith("livekit.api"):  # the livekit-api section: tests/unit/test_api_parity.py
            continue
        assert name not in rows, f"{name} is listed twice"
        rows[name] = (match["lkanyio"].strip(), match["notes"].strip())
    return rows


def resolve(dotted: str) -> object:
    """The lkanyio object a dotted name names, or raise LookupError."""
    parts = dotted.split(".")
    assert parts[0] == "lkanyio"
    obj: Any = lkanyio
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        # A field without a class-level value: a dataclass field or an annotated attribute.
        last = i == len(parts) - 1
        if last and inspect.isclass(obj):
            for cls in obj.__mro__:
                if part in getattr(cls, "__dataclass_fields__", {}) or part in vars(cls).get(
                    "__annotations__", {}
                ):
                    return cls
        raise LookupError(dotted)
    return obj


def test_every_public_name_of_livekit_rtc_is_in_the_table(
    rtc_api: dict[str, Any], table: dict[str, tuple[str, str]]
) -> None:
    assert sorted(set(rtc_api) - set(table)) == []


def test_the_table_lists_nothing_livekit_rtc_does_not_have(
    rtc_api: dict[str, Any], table: dict[str, tuple[str, str]]
) -> None:
    assert sorted(set(table) - set(rtc_api)) == []


def test_every_row_names_a_counterpart_that_exists_or_says_why_not(
    table: dict[str, tuple[str, str]],
) -> None:
    bad: list[str] = []
    for name, (cell, _notes) in table.items():
        if cell.startswith("by design: ") or NOT_YET.match(cell):
            continue
        if not COUNTERPARTS.match(cell):
            bad.append(f"{name}: {cell!r} is neither counterparts, 'by design: ...' nor 'not yet'")
            continue
        for dotted in re.findall(r"`(lkanyio\.[\w.]+)`", cell):
            try:
                resolve(dotted)
            except LookupError:
                bad.append(f"{name}: {dotted} does not exist")
    assert bad == []


def test_every_value_of_an_official_enumeration_has_a_member(
    rtc_api: dict[str, Any], table: dict[str, tuple[str, str]]
) -> None:
    missing: list[str] = []
    for name, info in rtc_api.items():
        if info["kind"] != "enum" or not table[name][0].startswith("`lkanyio."):
            continue
        ours = resolve(re.findall(r"`(lkanyio\.[\w.]+)`", table[name][0])[0])
        if not (isinstance(ours, type) and issubclass(ours, enum.IntEnum)):
            # Another shape on purpose (a flag, a class constant): the row must say so.
            assert table[name][1].startswith("by design: "), f"{name}: not an IntEnum"
            continue
        numbers = {member.value for member in ours}
        missing.extend(f"{name}={value}" for value in info["values"] if value not in numbers)
    assert missing == []


def test_the_resolver_refuses_names_that_do_not_exist() -> None:
    with pytest.raises(LookupError):
        resolve("lkanyio.Room.no_such_member")
    with pytest.raises(LookupError):
        resolve("lkanyio.NoSuchClass")
    resolve("lkanyio.DataReceived.topic")  # a slotted dataclass field
    resolve("lkanyio.TextStreamReader.info")  # an annotated instance attribute
