"""Native memory: the address of a Python buffer, and copies out of memory the native core owns.

The native core trusts every pointer it is given and every pointer it returns is valid only
until its handle is dropped, so these are the only places that turn addresses into bytes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["buffer_pointer", "copy_native", "copy_native_into", "native_bytearray"]

_ffi: Any = None
"""The shim's cffi ``FFI`` once loaded.  Not imported per call: ``from ._ffi import ffi`` in a
function cost thousands of instructions each time (``_ffi`` is an extension module, not a
package, so every such import formats and discards an ``AttributeError`` for its ``__path__``;
callgrind, bench/icount.py)."""


def _load_ffi() -> Any:
    global _ffi
    from ._ffi import ffi

    _ffi = ffi
    return ffi


def buffer_pointer(data: Any) -> tuple[int, object]:
    """Return the address of a contiguous buffer and the object that keeps it pinned.

    The native core trusts the pointers it is given (an invalid one crashes the process), so
    the second element must stay referenced for as long as the native side may read the memory.

    Raises:
        TypeError: if ``data`` does not expose a contiguous buffer.
    """
    ffi = _ffi if _ffi is not None else _load_ffi()
    try:
        pinned = ffi.from_buffer(data, require_writable=False)
    except TypeError:
        raise TypeError(
            f"expected a contiguous bytes-like object, not {type(data).__name__}"
        ) from None
    return int(ffi.cast("uintptr_t", pinned)), pinned


def _check_native_region(address: int, length: int) -> None:
    # The native core's pointers are trusted by cffi: a zero address or a negative length
    # would crash the process or raise deep inside cffi, so they are refused here.
    if length < 0:
        raise ValueError(f"cannot copy {length} bytes of native memory")
    if length and address <= 0:
        raise ValueError(f"cannot copy native memory at address {address:#x}")


def copy_native(address: int, length: int) -> bytes:
    """Copy ``length`` bytes the native core owns at ``address`` (valid only until it is freed).

    Raises:
        ValueError: a negative length, or a null address for a non-empty region.
    """
    _check_native_region(address, length)
    if length == 0:
        return b""
    ffi = _ffi if _ffi is not None else _load_ffi()
    return bytes(ffi.buffer(ffi.cast("uint8_t *", address), length))


def native_bytearray(address: int, length: int) -> bytearray:
    """Like :func:`copy_native`, into a new ``bytearray`` (one copy; frames own theirs)."""
    _check_native_region(address, length)
    if length == 0:
        return bytearray()
    ffi = _ffi if _ffi is not None else _load_ffi()
    return bytearray(ffi.buffer(ffi.cast("uint8_t *", address), length))


def copy_native_into(
    dest: bytearray,
    offset: int,
    address: int,
    row_bytes: int,
    *,
    rows: int = 1,
    stride: int | None = None,
) -> None:
    """Copy ``rows`` rows of ``row_bytes`` native bytes into ``dest`` at ``offset``, packed.

    The source rows start ``stride`` bytes apart (default: ``row_bytes``, one contiguous
    region); only each row's first ``row_bytes`` are copied.  The caller has checked that the
    source region belongs to its native buffer (the video plane checks do); this checks the
    rest, so a wrong layout raises instead of writing past ``dest``.

    Raises:
        ValueError: the rows do not fit ``dest`` at ``offset``, a stride shorter than a row,
            a negative count, or a null address.
    """
    stride = row_bytes if stride is None else stride
    if rows < 0 or row_bytes < 0 or stride < row_bytes:
        raise ValueError(f"cannot copy {rows} rows of {row_bytes} bytes {stride} bytes apart")
    if offset < 0 or offset + rows * row_bytes > len(dest):
        raise ValueError(
            f"{rows} rows of {row_bytes} bytes at offset {offset} do not fit {len(dest)} bytes"
        )
    _check_native_region(address, (rows - 1) * stride + row_bytes if rows else 0)
    if not rows or not row_bytes:
        return
    ffi = _ffi if _ffi is not None else _load_ffi()
    pinned = ffi.from_buffer(dest)  # kept referenced: it pins ``dest`` while copying
    target = pinned + offset
    source = ffi.cast("uint8_t *", address)
    if stride == row_bytes:
        ffi.memmove(target, source, rows * row_bytes)
    else:  # padded rows: each row's pixels only
        for row in range(rows):
            ffi.memmove(target + row * row_bytes, source + row * stride, row_bytes)
    del pinned

