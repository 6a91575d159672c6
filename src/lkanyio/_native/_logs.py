"""The native core's log records, forwarded into :mod:`logging` (logger ``lkanyio.native``)."""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Final

from ._proto import ffi_pb2

__all__ = ["forward_logs", "native_log", "native_log_threshold", "redact"]

native_log = logging.getLogger("lkanyio.native")

# Secrets that must never reach a log: access tokens in URLs and bare JWTs.
_SECRET_RE = re.compile(
    r"(access_token=)[^&\s\"']+|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+"
)


def redact(text: str) -> str:
    """Replace access tokens and JWTs in ``text`` by ``<redacted>``."""
    return _SECRET_RE.sub(lambda m: (m.group(1) or "") + "<redacted>", text)


_LOG_LEVELS: Final[dict[int, int]] = {
    ffi_pb2.LOG_ERROR: logging.ERROR,
    ffi_pb2.LOG_WARN: logging.WARNING,
    ffi_pb2.LOG_INFO: logging.INFO,
    ffi_pb2.LOG_DEBUG: logging.DEBUG,
    ffi_pb2.LOG_TRACE: 5,
}


_WIRE_LEVEL_BY_NAME: Final[dict[str, int]] = {
    "ERROR": ffi_pb2.LOG_ERROR,
    "WARN": ffi_pb2.LOG_WARN,
    "WARNING": ffi_pb2.LOG_WARN,
    "INFO": ffi_pb2.LOG_INFO,
    "DEBUG": ffi_pb2.LOG_DEBUG,
    "TRACE": ffi_pb2.LOG_TRACE,
}


def native_log_threshold() -> int:
    """The most verbose native log level to forward into :mod:`logging` (``lkanyio.native``).

    ``LKANYIO_NATIVE_LOG_LEVEL`` (error, warn, info, debug, trace) wins; otherwise it follows
    the ``lkanyio.native`` logger's level when the native core starts, and is at least WARN.
    The shim drops less severe records before they reach Python.
    """
    name = os.environ.get("LKANYIO_NATIVE_LOG_LEVEL", "").strip().upper()
    if name in _WIRE_LEVEL_BY_NAME:
        return _WIRE_LEVEL_BY_NAME[name]
    level = native_log.getEffectiveLevel()
    if level <= 5:
        return ffi_pb2.LOG_TRACE
    if level <= logging.DEBUG:
        return ffi_pb2.LOG_DEBUG
    if level <= logging.INFO:
        return ffi_pb2.LOG_INFO
    return ffi_pb2.LOG_WARN


def forward_logs(batch: Any) -> None:
    """Log every record of a native ``logs`` event that ``lkanyio.native`` has enabled."""
    for record in batch.records:
        level = _LOG_LEVELS.get(record.level, logging.INFO)
        if native_log.isEnabledFor(level):
            native_log.log(level, "%s: %s", record.target, redact(record.message))
