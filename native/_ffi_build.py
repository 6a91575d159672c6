"""cffi builder for ``lkanyio._native._ffi`` (out-of-line, API mode).

Run by setuptools through ``cffi_modules`` in ``setup.py``.  The module contains only the small C
shim in ``lkanyio_shim.c``; the LiveKit native library itself is opened by path at run time.
"""

from pathlib import Path

from cffi import FFI

HEADER = Path(__file__).with_name("lkanyio_shim.h")


def _cdef(header: str) -> str:
    """The header's declarations, without the preprocessor lines cffi's parser cannot read."""
    return "\n".join(line for line in header.splitlines() if not line.lstrip().startswith("#"))


CDEF = _cdef(HEADER.read_text())

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "lkanyio._native._ffi",
    '#include "lkanyio_shim.h"',
    # Relative to the project root, where setuptools (and `python native/_ffi_build.py`)
    # run: setuptools refuses absolute source paths.
    sources=["native/lkanyio_shim.c"],
    include_dirs=["native"],
    libraries=["dl", "pthread"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
