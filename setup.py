"""Build hook: setuptools runs the cffi builder declared here (pyproject has no cffi_modules key)."""

from setuptools import setup

setup(
    cffi_modules=["native/_ffi_build.py:ffibuilder"],
    # cffi builds the module against the stable ABI (it defines Py_LIMITED_API and names the file
    # _native/_ffi.abi3.so), so one wheel per platform serves every CPython >= 3.10: tag it cp310-abi3.
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
