"""Load the installed ``livekit`` wheel's protocol modules under a private name; check them.

``import livekit.rtc._proto.ffi_pb2`` would run ``livekit/rtc/__init__.py`` and with it the whole
asyncio SDK and numpy.  The generated ``*_pb2`` modules only import ``google.protobuf`` and each
other (relatively), so the ``_proto`` folder can be loaded as a top-level package of its own,
``_lkffi_proto``, without executing anything else from the wheel.  Messages are identical to the
wheel's (the default descriptor pool merges identical files), so this coexists with ``livekit.rtc``
being imported elsewhere in the process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

PACKAGE = "_lkffi_proto"
SUPPORTED_LIVEKIT = ">=1.2.0,<1.3"
"""The ``livekit`` wheels lkanyio runs on (the range in pyproject.toml's dependencies)."""
_OLDEST = (1, 2, 0)
_NEXT_MINOR = (1, 3)

PROTOCOL_FINGERPRINT = "8336c893025bae7d44904ebb5f846b7302a942dc1ce651daac00b1568d2feb40"
"""SHA-256 over the protocol files lkanyio was built for (see :func:`protocol_fingerprint`).

livekit 1.2.0 and 1.2.1 carry byte-identical protocol modules and native library (compared when
1.2.1 came out); a later wheel in the range whose protocol differs is refused at import.
"""


def _release(version: str) -> tuple[int, ...]:
    numbers = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    if numbers is None:
        return ()
    return tuple(int(n) for n in numbers.groups())


def check_version(version: str) -> None:
    """Refuse a ``livekit`` wheel outside :data:`SUPPORTED_LIVEKIT`.

    Raises:
        ImportError: naming the installed version and the supported range.
    """
    release = _release(version)
    if not (release >= _OLDEST and release[:2] < _NEXT_MINOR):
        raise ImportError(
            f"lkanyio runs on livekit{SUPPORTED_LIVEKIT} (it carries the native core and its "
            f"protocol) but livekit {version} is installed; "
            f"pip install 'livekit{SUPPORTED_LIVEKIT}'"
        )


def wheel_root() -> Path:
    """Return the folder of the installed ``livekit`` wheel's ``rtc`` package.

    Raises:
        ImportError: if no supported ``livekit`` wheel is installed.
    """
    try:
        dist = metadata.distribution("livekit")
    except metadata.PackageNotFoundError:
        raise ImportError(
            f"lkanyio needs the 'livekit{SUPPORTED_LIVEKIT}' wheel (it carries the native core); "
            "install lkanyio with pip so its dependencies come along"
        ) from None
    check_version(dist.version)
    return Path(str(dist.locate_file("livekit/rtc")))


def carrier_version() -> str:
    """The installed ``livekit`` wheel's version (what the native core reports as the SDK's)."""
    return metadata.version("livekit")


def protocol_fingerprint(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over ``(file name, serialized FileDescriptorProto)`` pairs, in name order.

    The generated modules embed their ``.proto`` file's descriptor byte for byte, so any change
    to a message, field, number or enumeration the protocol has changes the fingerprint.
    """
    digest = hashlib.sha256()
    for name, serialized in sorted(files):
        for part in (name.encode(), serialized):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def check_protocol(actual: str, expected: str = PROTOCOL_FINGERPRINT) -> None:
    """Refuse a protocol other than the one lkanyio was built for.

    Raises:
        ImportError: naming both fingerprints.
    """
    if actual != expected:
        raise ImportError(
            "the installed livekit wheel's protocol differs from the one lkanyio was built for "
            f"(fingerprint {actual[:16]}…, expected {expected[:16]}…); requests and events "
            "would be misread: install a livekit version lkanyio supports "
            f"({SUPPORTED_LIVEKIT}, protocol as in 1.2.0)"
        )


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


def _loaded_files() -> list[tuple[str, bytes]]:
    modules = (
        audio_frame_pb2, data_stream_pb2, e2ee_pb2, ffi_pb2, handle_pb2, participant_pb2,
        room_pb2, rpc_pb2, stats_pb2, track_pb2, track_publication_pb2, video_frame_pb2,
    )  # fmt: skip
    return [(m.DESCRIPTOR.name, m.DESCRIPTOR.serialized_pb) for m in modules]


check_protocol(protocol_fingerprint(_loaded_files()))
