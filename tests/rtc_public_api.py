"""Print livekit.rtc's public API as JSON (run in a child process: lkanyio never imports it).

Every name in ``livekit.rtc.__all__``, and for each class its public members: attributes and
methods it defines, dataclass fields, and a protobuf message's fields.  Enumerations are one name
each, with their values' numbers (the parity test checks lkanyio's enumeration has each one).
The room's events, which callers subscribe to by name, are ``Room.on("name")`` entries.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from typing import Any

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message


def members(cls: type) -> list[str]:
    """The public members ``cls`` itself defines (not the ones it inherits)."""
    if issubclass(cls, Message):
        return [field.name for field in cls.DESCRIPTOR.fields]
    names = {name for name in vars(cls) if not name.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names.update(field.name for field in dataclasses.fields(cls))
    names.update(getattr(cls, "__annotations__", {}))
    return sorted(name for name in names if not name.startswith("_"))


def main() -> None:
    import livekit.rtc as rtc

    api: dict[str, Any] = {}
    for name in rtc.__all__:
        obj = getattr(rtc, name)
        if isinstance(obj, EnumTypeWrapper):
            api[name] = {"kind": "enum", "values": sorted(set(obj.values()))}
        elif inspect.isclass(obj):
            api[name] = {"kind": "class"}
            for member in members(obj):
                api[f"{name}.{member}"] = {"kind": "member"}
        else:
            api[name] = {"kind": type(obj).__name__}
    from typing import get_args

    from livekit.rtc import room

    for event in get_args(room.EventTypes):
        api[f'Room.on("{event}")'] = {"kind": "event"}
    json.dump({"version": rtc.__version__, "api": api}, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
