"""Native memory is copied by one typed, bounds-checked helper of the binding layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lkanyio
from lkanyio._native._memory import buffer_pointer, copy_native, copy_native_into, native_bytearray

PACKAGE = Path(lkanyio.__file__).parent
BINDING = PACKAGE / "_native"  # the only folder that may touch cffi


def test_only_the_binding_layer_uses_ffi() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if BINDING in path.parents:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [alias.name for alias in node.names]
                bad = (node.module or "").endswith("_ffi") or "ffi" in names or "_ffi" in names
            else:
                bad = isinstance(node, ast.Name) and node.id == "ffi"
            if bad:
                offenders.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', 0)}")
    assert offenders == []


def _source(data: bytes) -> tuple[int, object]:
    return buffer_pointer(data)


def test_copies_contiguous_and_strided_rows() -> None:
    address, pinned = _source(bytes(range(24)))
    assert copy_native(address, 5) == bytes(range(5))
    assert native_bytearray(address + 3, 4) == bytearray(range(3, 7))
    dest = bytearray(8)
    copy_native_into(dest, 2, address, 6)
    assert dest == bytearray([0, 0, 0, 1, 2, 3, 4, 5])
    rows = bytearray(9)  # 3 rows of 3 bytes, read 8 bytes apart (padded rows)
    copy_native_into(rows, 0, address, 3, rows=3, stride=8)
    assert rows == bytearray([0, 1, 2, 8, 9, 10, 16, 17, 18])
    del pinned


@pytest.mark.parametrize(
    ("offset", "row_bytes", "rows", "stride"),
    [(5, 4, 1, None), (-1, 1, 1, None), (0, 3, 4, None), (0, 4, 2, 3), (0, -1, 1, None),
     (0, 1, -1, None)],
)
def test_a_copy_that_does_not_fit_is_refused(
    offset: int, row_bytes: int, rows: int, stride: int | None
) -> None:
    address, pinned = _source(bytes(64))
    dest = bytearray(8)
    with pytest.raises(ValueError, match=r"cannot copy|do not fit"):
        copy_native_into(dest, offset, address, row_bytes, rows=rows, stride=stride)
    assert dest == bytearray(8)  # nothing was written
    del pinned


def test_a_null_or_negative_region_is_refused_before_cffi() -> None:
    with pytest.raises(ValueError, match="address"):
        copy_native(0, 4)
    with pytest.raises(ValueError, match="address"):
        native_bytearray(0, 4)
    with pytest.raises(ValueError, match="bytes"):
        copy_native(1, -1)
    with pytest.raises(ValueError, match="address"):
        copy_native_into(bytearray(4), 0, 0, 4)
    assert copy_native(0, 0) == b""
    assert native_bytearray(0, 0) == bytearray()
