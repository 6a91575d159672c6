"""Typed helpers for building protocol requests.

The generated stubs type a protobuf enum field as its own ``ValueType`` (an ``int`` by
``NewType``), so an :class:`enum.IntEnum` of lkanyio's, whose values mirror the protocol's, cannot
be written into one without telling mypy.  :func:`wire_enum` says it once, here: the protocol
enum it names picks the type, so writing the wrong enum's value into a field is a type error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Iterable

    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

__all__ = ["wire_enum", "wire_enums"]

V = TypeVar("V", bound=int)


def wire_enum(protocol_enum: _EnumTypeWrapper[V], value: int) -> V:
    """``value`` (an ``IntEnum`` mirroring ``protocol_enum``) as that protocol enum's value.

    No conversion happens at run time beyond ``int``: lkanyio's enumerations are defined by
    the protocol's own constants (``_types.py``), so their numbers are the protocol's.
    """
    del protocol_enum  # it only chooses the type
    return cast("V", int(value))


def wire_enums(protocol_enum: _EnumTypeWrapper[V], values: Iterable[int]) -> list[V]:
    """:func:`wire_enum` over ``values``, for a repeated enum field."""
    return [wire_enum(protocol_enum, value) for value in values]
