"""The sans-IO core: pure synchronous Python, driven by explicit inputs, returning decisions.

Nothing here imports anyio, trio, sniffio, cffi or the native layer (``lkanyio._native``, but
for the protocol types of ``lkanyio._native._proto``); of lkanyio it imports only its data
modules (``_events``, ``_types``).  ``tests/unit/test_core_layout.py`` enforces it.  The
bridge (``_native._bridge``) parses each native
event, asks :func:`classify` what kind it is and the :class:`Correlator` who receives it; the
room's shell (``_room``) hands its events to a :class:`RoomSession`, the one owner of the
room's state, and does the I/O.  The agent worker's protocol (:mod:`lkanyio._core._worker`,
the messages of livekit-protocol in, decisions out) is imported from its module by the worker
shell (``lkanyio.worker``) alone, so that a room does not load livekit-protocol.
"""

from __future__ import annotations

from ._classify import KEYED_EVENTS, Action, classify
from ._correlator import ASYNC_ID_BASE, Correlator, CorrelatorStatistics
from ._session import (
    Adopter,
    EventClasses,
    LocalPublicationRecord,
    LocalRecord,
    NativeHandle,
    ParticipantRecord,
    RemotePublicationRecord,
    RemoteRecord,
    RoomSession,
)
from ._spin import SpinPolicy

__all__ = [
    "ASYNC_ID_BASE",
    "KEYED_EVENTS",
    "Action",
    "Adopter",
    "Correlator",
    "CorrelatorStatistics",
    "EventClasses",
    "LocalPublicationRecord",
    "LocalRecord",
    "NativeHandle",
    "ParticipantRecord",
    "RemotePublicationRecord",
    "RemoteRecord",
    "RoomSession",
    "SpinPolicy",
    "classify",
]
