"""Audio processing on a stream's frames: a Python frame processor, or a native audio filter.

Two ways to process what an :class:`~lkanyio.AudioStream` yields (e.g. noise cancellation):

* a :data:`FrameProcessor`: any callable that takes an :class:`~lkanyio.AudioFrame` and returns
  one, run on each frame in the consumer's task when it is received;
* a native audio-filter plugin (the path livekit.rtc's ``noise_cancellation=`` options take): a
  shared library loaded into the native core once per process with :func:`load_audio_filter`,
  then named per stream with :class:`NoiseCancellationOptions`.  The native core runs the
  filter before the frames reach Python.

Measured on livekit 1.2.0 (native core 0.13.2):

* ``load_audio_filter_plugin`` with a path that does not exist answers ``error: "dylib error:
  <path>: cannot open shared object file: No such file or directory"`` (no crash);
* ``new_audio_stream`` naming a module id that was never loaded returns handle 0 (no text).
  lkanyio remembers which modules it loaded and refuses an unknown one first, with a message
  that says what to do.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from .._errors import AudioFilterError
from ._audio_frame import AudioFrame

__all__ = [
    "FrameProcessor",
    "NoiseCancellationOptions",
    "load_audio_filter",
]

FrameProcessor = Callable[[AudioFrame], AudioFrame]
"""``def process(frame: AudioFrame) -> AudioFrame``: transforms each frame of an AudioStream.

Pass it as ``AudioStream(track, processor=...)``.  It runs synchronously in the task that
receives from the stream, once per frame, and must return an :class:`~lkanyio.AudioFrame`
(the same one, changed in place, or a new one).  An exception it raises ends that stream: the
receiving task gets the exception (the room and other streams are unaffected).  Keep it quick:
it runs on the event loop.
"""




_loaded: set[str] = set()
"""Module ids loaded into this process's native core (the native registry is process-wide)."""
_loaded_lock = threading.Lock()


def load_audio_filter(
    module_id: str,
    path: str | os.PathLike[str],
    *,
    dependencies: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Load a native audio-filter plugin (a shared library) into the native core.

    This is what livekit.rtc's noise-cancellation plugins do when imported: the plugin is then
    named by ``module_id`` in :class:`NoiseCancellationOptions`.  The native core keeps it for
    the life of the process; loading the same id again replaces it.

    Args:
        module_id: the plugin's identifier, chosen by the plugin (non-empty).
        path: the plugin's shared library.
        dependencies: shared libraries the plugin needs, loaded first.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``module_id`` is empty.
        AudioFilterError: the native core could not load it (its message says why, e.g. no such
            file).
    """
    from .._native._bridge import get_bridge
    from .._native._proto import ffi_pb2

    if not isinstance(module_id, str):
        raise TypeError(f"module_id must be a str, not {type(module_id).__name__}")
    if not module_id:
        raise ValueError("module_id must not be empty")
    if isinstance(dependencies, (str, bytes)):
        raise TypeError("dependencies must be a sequence of paths, not one string")
    req = ffi_pb2.FfiRequest()
    msg = req.load_audio_filter_plugin
    msg.module_id = module_id
    msg.plugin_path = os.fspath(path)
    msg.dependencies.extend(os.fspath(d) for d in dependencies)
    response = get_bridge().request(req).load_audio_filter_plugin
    if response.error:
        raise AudioFilterError(
            f"could not load audio filter {module_id!r} from {msg.plugin_path!r}: {response.error}"
        )
    with _loaded_lock:
        _loaded.add(module_id)


def _filter_loaded(module_id: str) -> bool:
    with _loaded_lock:
        return module_id in _loaded


@final
@dataclass(frozen=True)
class NoiseCancellationOptions:
    """A native audio filter for an :class:`~lkanyio.AudioStream` (``noise_cancellation=``).

    The filter's plugin must have been loaded with :func:`load_audio_filter` first.

    Attributes:
        module_id: the id the plugin was loaded under.
        options: the filter's options (sent to it as JSON).
    """

    module_id: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def _to_json(self) -> str:
        """Check the options and encode them; raise ``AudioFilterError`` for an unloaded module."""
        if not isinstance(self.module_id, str) or not self.module_id:
            raise ValueError(f"module_id must be a non-empty str, not {self.module_id!r}")
        if not isinstance(self.options, Mapping):
            raise TypeError(f"options must be a mapping, not {type(self.options).__name__}")
        try:
            encoded = json.dumps(dict(self.options))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"options must be JSON-serializable: {exc}") from None
        if not _filter_loaded(self.module_id):
            raise AudioFilterError(
                f"audio filter {self.module_id!r} is not loaded in this process: no plugin is "
                "installed under that id; load its shared library with "
                "lkanyio.load_audio_filter(module_id, path) first"
            )
        return encoded


def apply_processor(processor: FrameProcessor, frame: AudioFrame) -> AudioFrame:
    """Run ``processor`` on ``frame``; check that it returned a frame."""
    result = processor(frame)
    if not isinstance(result, AudioFrame):
        raise TypeError(
            f"the AudioStream's processor returned {type(result).__name__}, not an AudioFrame"
        )
    return result
