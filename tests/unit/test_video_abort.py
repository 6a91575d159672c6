"""No video input can abort the process: every conversion, capture and publish runs in a child.

The native core aborts (SIGABRT, no exception) on some video inputs, so each test runs its cases
in one child process that prints a JSON line per case; the parent asserts that the child exited
normally and that every case either worked (with the right size and layout) or was refused with
ValueError/NativeError before anything could abort.
"""

from __future__ import annotations

import json

from _children import _COMMON, run_child
from _util import EVENT_WAIT
from lkanyio import VideoBufferType as VBT
from lkanyio._media._video import planes

SIZES = [(1, 1), (2, 2), (3, 5), (5, 3), (7, 7), (64, 48)]
CAPTURE_SIZES = [(1, 1), (2, 2), (3, 5), (4, 3), (4, 4), (5, 9), (7, 7), (64, 48)]
# 1280x720: the size at which the I444 pass-through's V-plane pointer used to segfault.
STREAM_SIZES = [(4, 4), (7, 7), (10, 6), (9, 13), (64, 48), (1280, 720)]

# Before lkanyio handled them, each of these aborted the process on every size.
USED_TO_ABORT = {
    *((VBT.ABGR, target) for target in VBT),
    (VBT.I010, VBT.RGBA),
    (VBT.I010, VBT.BGRA),
    (VBT.I010, VBT.I420),
    (VBT.NV12, VBT.NV12),
}


_CONVERT_CHILD = (
    _COMMON
    + r"""
for s in V:
    for d in V:
        for w, h in json.loads(sys.argv[1]):
            for flip in (False, True):
                case = dict(src=s.name, dst=d.name, w=w, h=h, flip=flip)
                emit(start=case)
                frame = lkanyio.VideoFrame(w, h, s, os.urandom(
                    sum(size for _stride, size in lkanyio._media._video.planes(s, w, h))))
                try:
                    out = frame.convert(d, flip_y=flip)
                except Exception as exc:
                    emit(**case, outcome=outcome(exc))
                else:
                    emit(**case, outcome="ok", got=[out.width, out.height, out.type.name,
                                                    len(out.data)])
emit(done=True)
"""
)

_CAPTURE_CHILD = (
    _COMMON
    + r"""
import anyio

RGB = (200, 40, 90)

async def one(t, w, h, rotation):
    async with (
        lkanyio.VideoSource(w, h) as source,
        lkanyio.LocalVideoTrack.create_video_track("t", source) as track,
        # I420: a stream passing I444 through describes its V plane with a wrong pointer.
        lkanyio.VideoStream(track, format=V.I420, max_buffered=30) as stream,
    ):
        frame = solid(t, w, h, RGB)
        with anyio.fail_after(float(sys.argv[2])):
            while True:  # the first frame may be the source's own black one
                source.capture_frame(frame, rotation=rotation)
                await anyio.sleep(0.02)
                try:
                    event = stream.receive_nowait()
                except anyio.WouldBlock:
                    continue
                colour = mean_rgb(event.frame)
                if max(colour) > 20:
                    return [event.frame.width, event.frame.height, colour]

async def main():
    for t in V:
        for w, h in json.loads(sys.argv[1]):
            for rotation in (lkanyio.VideoRotation.DEG_0, lkanyio.VideoRotation.DEG_90):
                case = dict(type=t.name, w=w, h=h, rotation=int(rotation))
                emit(start=case)
                try:
                    got = await one(t, w, h, rotation)
                except Exception as exc:
                    emit(**case, outcome=outcome(exc))
                else:
                    emit(**case, outcome="ok", got=got)
    # A frame smaller than its source, or than 4x4, is refused too.
    async with lkanyio.VideoSource(64, 48) as source:
        for w, h in [(2, 2), (64, 3)]:
            case = dict(type="RGBA", w=w, h=h, rotation=0, source=[64, 48])
            try:
                source.capture_frame(solid(V.RGBA, w, h, RGB))
            except Exception as exc:
                emit(**case, outcome=outcome(exc))
            else:
                emit(**case, outcome="ok", got=None)
    emit(done=True)

anyio.run(main)
"""
)

_STREAM_CHILD = (
    _COMMON
    + r"""
import anyio
from _util import crop_centred, seeded_frame

# What a local stream passes through: I420, I422 and I444 stay as they are; every other layout
# reaches the stream as I420 (lkanyio converts NV12 and I010 before capturing; the native capture
# converts packed layouts and drops I420A's alpha).
KEPT = {V.I420, V.I422, V.I444}

async def one(t, w, h):
    frame = seeded_frame(t, w, h)
    cw, ch = w - w % 4, h - h % 4  # WebRTC crops a source to multiples of 4
    as_sent = frame if t in KEPT else frame.convert(V.I420)
    expected = crop_centred(as_sent, cw, ch)
    seen = []
    async with (
        lkanyio.VideoSource(w, h) as source,
        lkanyio.LocalVideoTrack.create_video_track("t", source) as track,
        lkanyio.VideoStream(track, max_buffered=30) as stream,
    ):
        with anyio.fail_after(float(sys.argv[2])):
            while len(seen) < 20:
                source.capture_frame(frame)
                await anyio.sleep(0.02)
                try:
                    got = stream.receive_nowait().frame
                except anyio.WouldBlock:
                    continue
                if got == expected:
                    return "ok"
                seen.append(f"{got.width}x{got.height} {got.type.name}")
    # Not one frame among 20 was the captured one (the first may be the source's black frame).
    return f"never the captured content, got: {sorted(set(seen))}"

async def main():
    for t in V:
        for w, h in json.loads(sys.argv[1]):
            case = dict(type=t.name, w=w, h=h)
            emit(start=case)
            try:
                result = await one(t, w, h)
            except Exception as exc:
                result = repr(exc)
            emit(**case, outcome=result)
    emit(done=True)

anyio.run(main)
"""
)

def test_no_conversion_aborts() -> None:
    results = run_child(_CONVERT_CHILD, json.dumps(SIZES))
    assert len(results) == len(VBT) ** 2 * len(SIZES) * 2
    for r in results:
        src, dst = VBT[r["src"]], VBT[r["dst"]]
        if r["outcome"] == "ok":
            expected = sum(size for _stride, size in planes(dst, r["w"], r["h"]))
            assert r["got"] == [r["w"], r["h"], dst.name, expected], r
        elif src == VBT.ABGR:  # lkanyio converts ABGR itself and refuses other targets
            assert r["outcome"] == "ValueError", r
        else:  # an unsupported pair: the core refuses it
            assert r["outcome"] == "NativeError", r
    ok = {(VBT[r["src"]], VBT[r["dst"]]) for r in results if r["outcome"] == "ok"}
    fixed = {(VBT.ABGR, VBT.RGBA), (VBT.ABGR, VBT.BGRA), (VBT.ABGR, VBT.I420)}
    assert fixed | (USED_TO_ABORT - {(VBT.ABGR, t) for t in VBT}) <= ok
    # A pair works for every size and flip, or for none.
    for pair in ok:
        outcomes = {r["outcome"] for r in results if (VBT[r["src"]], VBT[r["dst"]]) == pair}
        assert outcomes == {"ok"}, pair


def test_no_capture_aborts() -> None:
    results = run_child(_CAPTURE_CHILD, json.dumps(CAPTURE_SIZES), str(EVENT_WAIT))
    assert len(results) == len(VBT) * len(CAPTURE_SIZES) * 2 + 2
    for r in results:
        w, h = r["w"], r["h"]
        if min(w, h) < 4:
            assert r["outcome"] == "ValueError", r
            continue
        assert r["outcome"] == "ok", r
        got_w, got_h, colour = r["got"]
        # WebRTC crops to multiples of 4 (and a 90-degree rotation may swap the sides).
        assert sorted((got_w, got_h)) == sorted((w - w % 4, h - h % 4)), r
        assert all(abs(a - b) <= 12 for a, b in zip(colour, (200, 40, 90), strict=True)), r


def test_every_layout_passes_through_a_stream_intact() -> None:
    # A stream with no format= passes frames through as the native core describes them.  Its
    # I444 V-plane pointer pointed outside the frame's buffer: this segfaulted at 1280x720 and
    # read other heap bytes at small sizes.
    results = run_child(_STREAM_CHILD, json.dumps(STREAM_SIZES), str(EVENT_WAIT))
    assert len(results) == len(VBT) * len(STREAM_SIZES)
    bad = [r for r in results if r["outcome"] != "ok"]
    assert not bad, bad
