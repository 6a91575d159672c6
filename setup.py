"""Build hook: setuptools runs the cffi builder declared here (pyproject has no cffi_modules key)."""

from setuptools import setup

setup(cffi_modules=["native/_native_build.py:ffibuilder"])
