"""What the shim's tests share: its C source's field numbers against the wheel's, fake handles."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHIM = Path(__file__).parents[1] / "native" / "lkanyio_shim.c"

FAKE_HANDLE = 2**62
"""Stream and buffer handles the native core never issues (dropping one is a no-op)."""


def shim_defines() -> dict[str, int]:
    """The shim's ``#define NAME number`` lines."""
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^#define (\w+) (\d+)$", SHIM.read_text(), re.M)
    }


def field_number(message: Any, field: str) -> int:
    """The protobuf field number of ``message.field`` in the wheel's descriptors."""
    return int(message.DESCRIPTOR.fields_by_name[field].number)


async def assert_it_ends_a_video_stream(inject: Callable[[int], object], match: str) -> None:
    """``inject(stream_handle)`` sends an event to a fresh ``VideoStream`` of a local track:
    receiving it must end the stream with a ``NativeError`` whose text holds ``match``.

    The track sends a few frames of its own when a stream opens (black ones, with no capture):
    they may come first, so they are received and skipped, and the buffer has room for all of
    them (a drop_oldest one could drop the injected event).
    """
    import anyio
    import pytest

    import lkanyio

    async with (
        lkanyio.VideoSource(16, 16) as source,
        lkanyio.LocalVideoTrack.create_video_track("t", source) as track,
        lkanyio.VideoStream(track, max_buffered=64) as stream,
    ):
        inject(stream._handle.id)
        with pytest.raises(lkanyio.NativeError) as caught, anyio.fail_after(10):
            while True:
                await stream.receive()
        assert match in str(caught.value)
        with pytest.raises(lkanyio.NativeError):  # the stream has ended with it
            await stream.receive()
