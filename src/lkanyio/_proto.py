"""Load the pinned ``livekit`` wheel's generated protocol modules under a private name.

``import livekit.rtc._proto.ffi_pb2`` would run ``livekit/rtc/__init__.py`` and with it the whole
asyncio SDK and numpy.  The generated ``*_pb2`` modules only import ``google.protobuf`` and each
other (relatively), so the ``_proto`` folder can be loaded as a top-level package of its own,
``_lkffi_proto``, without executing anything else from the wheel.  Messages are identical to the
wheel's (the default descriptor pool merges identical files), so this coexists with ``livekit.rtc``
being imported elsewhere in the process.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = "_lkffi_proto"
PINNED_LIVEKIT = "1.2.0"


def wheel_root() -> Path:
    """Return the folder of the installed ``livekit`` wheel's ``rtc`` package.

    Raises:
        ImportError: if the pinned ``livekit`` wheel is not installed.
    """
    try:
        dist = metadata.distribution("livekit")
    except metadata.PackageNotFoundError:
        raise ImportError(
            f"lkanyio needs the 'livekit=={PINNED_LIVEKIT}' wheel (it carries the native core); "
            "install lkanyio with pip so its dependencies come along"
        ) from None
    if dist.version != PINNED_LIVEKIT:
        raise ImportError(
            f"lkanyio is built for livekit=={PINNED_LIVEKIT} but {dist.version} is installed; "
            "the native library and the protocol must match exactly"
        )
    return Path(str(dist.locate_file("livekit/rtc")))


def load() -> None:
    """Register ``_lkffi_proto`` in :data:`sys.modules` (idempotent)."""
    if PACKAGE in sys.modules:
        return
    folder = wheel_root() / "_proto"
    init = folder / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        PACKAGE, init, submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:  # pragma: no cover - a broken install
        raise ImportError(f"cannot load the LiveKit protocol modules from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise


load()

from _lkffi_proto import (  # noqa: E402
    audio_frame_pb2 as audio_frame_pb2,
)
from _lkffi_proto import (  # noqa: E402
    data_stream_pb2 as data_stream_pb2,
)
from _lkffi_proto import (  # noqa: E402
    e2ee_pb2 as e2ee_pb2,
)
from _lkffi_proto import (  # noqa: E402
    ffi_pb2 as ffi_pb2,
)
from _lkffi_proto import (  # noqa: E402
    handle_pb2 as handle_pb2,
)
from _lkffi_proto import (  # noqa: E402
    participant_pb2 as participant_pb2,
)
from _lkffi_proto import (  # noqa: E402
    room_pb2 as room_pb2,
)
from _lkffi_proto import (  # noqa: E402
    rpc_pb2 as rpc_pb2,
)
from _lkffi_proto import (  # noqa: E402
    stats_pb2 as stats_pb2,
)
from _lkffi_proto import (  # noqa: E402
    track_pb2 as track_pb2,
)
from _lkffi_proto import (  # noqa: E402
    track_publication_pb2 as track_publication_pb2,
)
from _lkffi_proto import (  # noqa: E402
    video_frame_pb2 as video_frame_pb2,
)

__all__ = [
    "audio_frame_pb2",
    "data_stream_pb2",
    "e2ee_pb2",
    "ffi_pb2",
    "handle_pb2",
    "participant_pb2",
    "room_pb2",
    "rpc_pb2",
    "stats_pb2",
    "track_pb2",
    "track_publication_pb2",
    "video_frame_pb2",
]
