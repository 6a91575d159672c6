"""lkanyio: a structured-concurrency LiveKit SDK for trio and asyncio (through AnyIO)."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
