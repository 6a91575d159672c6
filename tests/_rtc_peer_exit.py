"""How the official-SDK peer scripts (``rtc_*_peer.py``) end: without finalizing the interpreter.

Seen in a full run (December): a peer that had done its work, left its room and returned from
``asyncio.run`` died with SIGABRT ("panic in a function that cannot unwind", from a tokio worker
thread), failing a test that had passed in every other respect.  livekit.rtc's native callback is
a ctypes function, so a native thread that calls it while the interpreter finalizes is ended by
CPython with ``pthread_exit`` (``take_gil`` on a finalizing runtime), and that forced unwind
through the native core's ``extern "C"`` frames aborts the process.  lkanyio's own callback is C
in its shim and never takes the GIL, so this cannot happen to it; in the official SDK's child it
is no part of what the tests compare.  So the peers end the process directly once their work is
done and their output flushed; an exception still ends them with Python's usual exit status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Coroutine
from typing import Any


def run_and_exit(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` with ``asyncio.run``; on success flush and end the process with status 0."""
    import asyncio

    asyncio.run(main)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
