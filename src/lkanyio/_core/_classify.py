"""What kind of native event this is: a callback to resolve, a keyed event to route, or neither.

A pure function over the parsed ``FfiEvent`` (any object with protobuf's ``WhichOneof`` and
attribute access): no protobuf import, no anyio, no FFI.  The shell acts on the answer.

The split follows the protocol (FFI-NOTES section 2): eight events carry the handle of the
stream they belong to; ``logs`` and ``panic`` are process-wide; ``track_event`` is declared but
empty and never sent; every other event is an async callback carrying ``async_id``.
"""

from __future__ import annotations

import enum
from typing import Final, Literal, Protocol

__all__ = ["KEYED_EVENTS", "Action", "ParsedEvent", "classify"]


class Action(enum.Enum):
    """What the shell does with a classified event."""

    RESOLVE = enum.auto()
    """An async callback: hand it to the receiver registered for ``key`` (its ``async_id``)."""
    ROUTE = enum.auto()
    """A keyed event: hand it to the sink bound to ``key`` (its stream's handle)."""
    LOGS = enum.auto()
    """A batch of native log records (``key`` is 0)."""
    PANIC = enum.auto()
    """The native core reported a panic (``key`` is 0)."""
    IGNORE = enum.auto()
    """Nothing to do: an empty event, or ``track_event`` (unused by the protocol)."""


KEYED_EVENTS: Final[dict[str, str]] = {
    "room_event": "room_handle",
    "audio_stream_event": "stream_handle",
    "video_stream_event": "stream_handle",
    "byte_stream_reader_event": "reader_handle",
    "text_stream_reader_event": "reader_handle",
    "rpc_method_invocation": "local_participant_handle",
    "data_track_stream_event": "stream_handle",
    "capture_source_event": "capture_handle",
}
"""Events keyed by a handle, and the field of the event that carries it."""

_SPECIAL: Final[dict[str, Action]] = {
    "logs": Action.LOGS,
    "panic": Action.PANIC,
    "track_event": Action.IGNORE,
}


class ParsedEvent(Protocol):
    """The one method :func:`classify` needs of a parsed ``FfiEvent``."""

    def WhichOneof(self, oneof_group: Literal["message"], /) -> str | None:
        """Name of the set member of the ``message`` oneof (protobuf's method)."""


def classify(event: ParsedEvent) -> tuple[Action, object, int]:
    """Classify one parsed ``FfiEvent``.

    Args:
        event: the parsed event (a protobuf message with a ``message`` oneof).

    Returns:
        ``(action, message, key)``: what to do, the oneof member (the event itself when it is
        empty), and the async id or handle the action is keyed by (0 when none).
    """
    which = event.WhichOneof("message")
    if which is None:
        return Action.IGNORE, event, 0
    message = getattr(event, which)
    key_field = KEYED_EVENTS.get(which)
    if key_field is not None:
        return Action.ROUTE, message, int(getattr(message, key_field))
    special = _SPECIAL.get(which)
    if special is not None:
        return special, message, 0
    return Action.RESOLVE, message, int(message.async_id)
