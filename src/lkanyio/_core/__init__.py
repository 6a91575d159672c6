"""The sans-IO core: pure synchronous Python, driven by explicit inputs, returning decisions.

Nothing here imports anyio, trio, sniffio, cffi or the native module (``lkanyio._native``,
``lkanyio._bridge``); ``tests/unit/test_core_layout.py`` enforces it.  The async shell
(``_bridge``) parses each native event, asks :func:`classify` what kind it is, asks the
:class:`Correlator` who receives it, and does the I/O.
"""

from __future__ import annotations

from ._classify import KEYED_EVENTS, Action, classify
from ._correlator import ASYNC_ID_BASE, Correlator, CorrelatorStatistics

__all__ = [
    "ASYNC_ID_BASE",
    "KEYED_EVENTS",
    "Action",
    "Correlator",
    "CorrelatorStatistics",
    "classify",
]
