"""WebRTC statistics as plain, frozen Python objects.

The native core reports each WebRTC stats object as a protobuf message split into parts (the
common ``id``/``timestamp``, the RTP stream, what was sent …).  lkanyio flattens each into one
:class:`StatsReport` whose keys are the W3C ``RTCStats`` dictionary members it mirrors
(``bytes_sent``, ``packets_lost``, ``round_trip_time`` …), so no protocol type leaks out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias, final

from google.protobuf.descriptor import FieldDescriptor

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = ["StatValue", "StatsReport", "TrackStats"]

StatValue: TypeAlias = int | float | str | bool | Mapping[str, float]
"""One statistic: a number, a string, an enum member's name, or a map (per-reason durations)."""


@final
@dataclass(frozen=True)
class StatsReport:
    """One WebRTC statistics object (a codec, an outbound RTP stream, a transport …).

    Attributes:
        type: the stats type in snake case: ``"codec"``, ``"inbound_rtp"``, ``"outbound_rtp"``,
            ``"remote_inbound_rtp"``, ``"remote_outbound_rtp"``, ``"media_source"``,
            ``"media_playout"``, ``"peer_connection"``, ``"data_channel"``, ``"transport"``,
            ``"candidate_pair"``, ``"local_candidate"``, ``"remote_candidate"``,
            ``"certificate"``, ``"stream"`` or ``"track"``.
        id: the object's WebRTC id (other reports refer to it, e.g. ``codec_id``).
        timestamp: when it was measured, as WebRTC reports it (ms since the Unix epoch).
        values: every other member, by its W3C name in snake case (``report["bytes_sent"]``
            reads one; ``report.get(name)`` one that may be absent).
    """

    type: str
    id: str
    timestamp: float
    values: Mapping[str, StatValue]

    def __getitem__(self, name: str) -> StatValue:
        return self.values[name]

    def get(self, name: str, default: StatValue | None = None) -> StatValue | None:
        """Return one member, or ``default`` if this report does not have it."""
        return self.values.get(name, default)

    @classmethod
    def _from_proto(cls, message: Message) -> StatsReport | None:
        kind = message.WhichOneof("stats")
        if kind is None:
            return None
        values: dict[str, StatValue] = {}
        report_id = ""
        timestamp = 0.0
        for part, body in getattr(message, kind).ListFields():
            if part.message_type is None:  # not split into parts: a plain member
                values[part.name] = _value(part, body)
                continue
            for field, value in body.ListFields():
                if part.name == "rtc" and field.name == "id":
                    report_id = value
                elif part.name == "rtc" and field.name == "timestamp":
                    timestamp = float(value)
                else:
                    name = field.name
                    if name in values or name in ("id", "timestamp"):  # keep both: prefix
                        name = f"{part.name}_{name}"
                    values[name] = _value(field, value)
        return cls(kind, report_id, timestamp, MappingProxyType(values))

    def __repr__(self) -> str:
        return f"<StatsReport {self.type} id={self.id!r} ({len(self.values)} values)>"


def _value(field: FieldDescriptor, value: object) -> StatValue:
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        number = value if isinstance(value, int) else 0
        member = enum.values_by_number.get(number)
        return member.name if member is not None else number
    if isinstance(value, Mapping):
        return MappingProxyType(dict(value))
    if isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


@final
@dataclass(frozen=True)
class TrackStats:
    """WebRTC statistics reports (of a track, or one side of a room's session).

    Attributes:
        reports: one :class:`StatsReport` per WebRTC stats object.
    """

    reports: tuple[StatsReport, ...]

    def of_type(self, kind: str) -> list[StatsReport]:
        """Return the reports of one WebRTC stats type (e.g. ``"outbound_rtp"``)."""
        return [report for report in self.reports if report.type == kind]

    @classmethod
    def _from_proto(cls, messages: Iterable[Message]) -> TrackStats:
        reports = (StatsReport._from_proto(message) for message in messages)
        return cls(tuple(report for report in reports if report is not None))
