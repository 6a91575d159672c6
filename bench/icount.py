"""Instructions per request / per received audio frame, by step of the path, under callgrind.

    .venv/bin/python bench/icount.py roundtrip --side trio --json rt-trio.json   # asyncio, floor
    .venv/bin/python bench/icount.py audio --side trio --cycle-from rt-trio.json
    .venv/bin/python bench/icount.py audio --side trio --report audio-trio.json  # table again

Runs one workload of bench/worker.py (``roundtrip``: one ``get_stats`` request after another on
an unpublished track; ``audio``: an AudioSource feeding an AudioStream of its own local track,
10 ms frames at 48 kHz mono, the ``audio`` row) in a child process under
``valgrind --tool=callgrind`` and prints the event loop thread's instructions per unit (request,
or received frame) by step.  Instruction counts do not depend on the machine's load; they count
user-space instructions only (the kernel's share of a syscall or a thread switch is not in them).

The child runs *windows*: ``os.getppid()`` before a window zeroes callgrind's counters
(``--zero-before=os_getppid``) and ``os.getpgrp()`` after it dumps them
(``--dump-before=os_getpgrp``), so setup, warm-up and teardown are outside every figure.  Each
window runs the same ``N`` units, and the list of windows is run ``--rounds`` times, interleaved,
so that drift evens out.  ``base`` is the workload as main runs it, except that requests park at
once instead of spinning 50 us on the shim's queue (how many empty pumps a spin makes depends on
wall time; ``asis`` keeps the spin).  CPython 3.11 has no symbol per Python function, so:

* direct: callgrind_annotate ``--inclusive=yes`` costs of C functions in ``base``: the upb
  protobuf calls, the shim's cffi entry points (``_cffi_f_lk_shim_*``, which include the native
  core's own work done in this thread), cffi's buffer copy, ``select_epoll_poll``, asyncio's
  ``Future.set_result``, CPython's ``bytes``/``bytearray`` constructors;
* trampoline (also direct): window ``t_X`` calls Python step X through ``functools.partial``
  (``partialmethod`` for a method), so its calls run inside CPython's C ``partial_vectorcall``,
  whose inclusive cost is the step's, call for call (less what ``base`` already spends there);
* differential: ``core`` awaits ``Bridge.request_async`` with the same request instead of
  ``get_stats`` / ``capture_frame`` (``base - core`` is the API layer); ``resume`` adds one ``await anyio.lowlevel.checkpoint()`` per unit
  (``resume - base`` is one yield / reschedule / resume cycle of the backend's scheduler);
* derived: the loop's iterations per unit (``select_epoll_poll`` calls) times that cycle (for
  audio, ``--cycle-from`` takes it from a roundtrip run, where every request takes one path);
* ``other`` is the base total minus every counted row.

The audio workload runs in lockstep on the source's direct path (``queue_size_ms=0``): one task
captures a frame and receives it, so one unit is one capture round trip plus one frame event,
and every unit takes the same path (see ``lk_child``).  The floor is bench/floor.py's bare loop
(no event loop; ``base`` waits in epoll, ``asis`` busy-polls as the bench's floor does): it has no
classify, route, wake or resume to measure.  Results are in docs/performance.md, "Where the
Python path's time goes".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WARMUP = {"roundtrip": 100, "audio": 100}
DEFAULT_N = {"roundtrip": 150, "audio": 100}  # per window and round
# Windows (see the module docstring); ``t_X`` calls step X through functools.partial.
WINDOWS = {
    "roundtrip": ("asis", "base", "resume", "core", "t_dispatch", "t_classify", "t_resolve",
                  "t_deliver", "t_wake"),
    "audio": ("base", "resume", "core", "t_dispatch", "t_classify", "t_resolve", "t_deliver", "t_route",
              "t_sink", "t_copy", "t_wake"),
    "floor": ("asis", "base"),
}
TRAMPOLINE = "partial_vectorcall"

# -- the child: the workload in windows ---------------------------------------------------------


def _window_marks() -> tuple[Any, Any]:
    return os.getppid, os.getpgrp  # zero-before / dump-before (see the module docstring)


class Patches:
    """Route one step of lkanyio's path through a C trampoline (src/ is not changed).

    Wrapping a step in ``functools.partial`` (``partialmethod`` for a method) makes its calls
    go through CPython's C function ``partial_vectorcall``, whose inclusive cost in callgrind
    is then the step's own cost, call for call, however the loop's timing varied.
    """

    def __init__(self, stream: Any = None) -> None:
        from lkanyio._core._correlator import Correlator
        from lkanyio._media import _audio
        from lkanyio._native import _bridge
        from lkanyio._streams import EventStream

        self.bridge_mod, self.audio_mod = _bridge, _audio
        self.bridge = _bridge.get_bridge()
        self.correlator_cls, self.stream_cls = Correlator, EventStream
        self.stream = stream
        self.saved = {
            "classify": _bridge.classify,
            "route": Correlator.route,
            "resolve": Correlator.resolve,
            "call": _bridge._Waiter.__call__,
            "native_bytearray": _audio.native_bytearray,
            "wake": EventStream._wake,
            "spin": _bridge._SPIN_NS,
            "ffi_pb2": _bridge.ffi_pb2,
        }
        self.undo: list[Any] = []

    def apply(self, label: str, workload: str) -> None:
        from functools import partial, partialmethod

        b, s = self.bridge_mod, self.saved
        # Every window but ``asis`` parks each request at once (no spin on the shim's queue):
        # how many empty pumps a request's 50 us spin makes depends on wall time (and under
        # callgrind on its slowdown); the parked path is the same every time.
        b._SPIN_NS = s["spin"] if label == "asis" else 0
        bridge, cls = self.bridge, self.correlator_cls
        if label == "t_dispatch":
            bridge._dispatch = partial(type(bridge)._dispatch, bridge)  # type: ignore[method-assign]
            self.undo.append(lambda: delattr(bridge, "_dispatch"))
        elif label == "t_classify":
            b.classify = partial(s["classify"])  # type: ignore[assignment]
        elif label == "t_route":
            cls.route = partialmethod(s["route"])  # type: ignore[assignment,method-assign]
        elif label == "t_resolve":
            cls.resolve = partialmethod(s["resolve"])  # type: ignore[assignment,method-assign]
        elif label == "t_deliver":
            b._Waiter.__call__ = partialmethod(s["call"])  # type: ignore[assignment,method-assign]
        elif label == "t_copy":
            self.audio_mod.native_bytearray = partial(s["native_bytearray"])
        elif label == "t_sink":  # the frame event into the stream: the media sink's frame()
            sink_cls = type(bridge._core._sinks[self.stream._handle.id])
            frame = sink_cls.frame
            sink_cls.frame = partialmethod(frame)  # type: ignore[method-assign]
            self.undo.append(lambda: setattr(sink_cls, "frame", frame))
        elif label == "t_wake" and workload == "audio":
            self.stream_cls._wake = partialmethod(s["wake"])  # type: ignore[assignment,method-assign]
        elif label == "t_wake" and bridge._driver.create_future is None:  # trio; asyncio: direct
            driver = bridge._driver
            reschedule = driver.reschedule
            driver.reschedule = partial(reschedule)
            self.undo.append(lambda: setattr(driver, "reschedule", reschedule))

    def restore(self) -> None:
        s, b, cls = self.saved, self.bridge_mod, self.correlator_cls
        b.classify = s["classify"]
        cls.route, cls.resolve = s["route"], s["resolve"]  # type: ignore[method-assign]
        b._Waiter.__call__ = s["call"]  # type: ignore[method-assign]
        self.audio_mod.native_bytearray = s["native_bytearray"]
        self.stream_cls._wake = s["wake"]  # type: ignore[method-assign]
        b._SPIN_NS = s["spin"]
        while self.undo:
            self.undo.pop()()


async def _lk_windows(
    patches: Patches,
    workload: str,
    windows: list[str],
    n: int,
    unit: Callable[[], Awaitable[None]],
    core: Callable[[], Awaitable[None]],
    extra: Callable[[], dict[str, Any]] = dict,
) -> list[dict[str, Any]]:
    """Warm up, then run ``n`` units in each window (``core`` in ``core``, one more checkpoint
    per unit in ``resume``) between callgrind's zero and dump marks; ``extra`` adds to each
    window's record."""
    import anyio

    zero, dump = _window_marks()
    checkpoint = anyio.lowlevel.checkpoint
    out: list[dict[str, Any]] = []
    for _ in range(WARMUP[workload]):
        await unit()
    for label in windows:
        patches.apply(label, workload)
        resume = label == "resume"
        run = core if label == "core" else unit
        zero()
        for _ in range(n):
            await run()
            if resume:
                await checkpoint()
        dump()
        patches.restore()
        out.append({"label": label, "units": n, **extra()})
    return out


async def lk_child(workload: str, n: int, windows: list[str]) -> list[dict[str, Any]]:
    from common import tone

    import lkanyio

    if workload == "roundtrip":
        async with lkanyio.AudioSource(48_000, 1) as source:
            async with lkanyio.LocalAudioTrack.create_audio_track("t", source) as track:

                async def one() -> None:
                    try:
                        await track.get_stats()
                    except lkanyio.NativeError:
                        pass

                patches = Patches()
                bridge = patches.bridge
                handle = track._handle.id
                new_request = patches.saved["ffi_pb2"].FfiRequest

                async def core() -> None:  # get_stats without its API layer (no NativeError)
                    req = new_request()
                    req.get_stats.track_handle = handle
                    await bridge.request_async(req)

                return await _lk_windows(patches, workload, windows, n, one, core)
    # audio: the source's direct path (queue_size_ms=0: each capture hands its frame to the
    # track at once, no 10 ms playout tick), in lockstep: capture one frame, receive it, in one
    # task.  The bench's source queues 1 s and a second task receives: then how many events one
    # drain takes and how many loop iterations a frame costs depend on timing (under callgrind
    # the playout tick also inserted frames of its own), and windows differed by +-10 %.
    frame = lkanyio.AudioFrame(tone(), sample_rate=48_000, num_channels=1, samples_per_channel=480)
    async with lkanyio.AudioSource(48_000, 1, queue_size_ms=0) as source:
        async with lkanyio.LocalAudioTrack.create_audio_track("t", source) as track:
            async with lkanyio.AudioStream(track, sample_rate=48_000, num_channels=1) as stream:
                patches = Patches(stream)

                async def unit() -> None:
                    await source.capture_frame(frame)
                    await stream.receive()

                bridge = patches.bridge
                new_request = patches.saved["ffi_pb2"].FfiRequest
                address, _pinned = patches.audio_mod.buffer_pointer(frame._data)
                source_id = source._handle.id

                async def core() -> None:  # capture_frame without its API layer
                    req = new_request()
                    info = req.capture_audio_frame.buffer
                    req.capture_audio_frame.source_handle = source_id
                    info.data_ptr, info.sample_rate = address, 48_000
                    info.num_channels, info.samples_per_channel = 1, 480
                    await bridge.request_async(req)
                    await stream.receive()

                # One frame per capture: anything more would be waiting in the stream.
                return await _lk_windows(
                    patches, workload, windows, n, unit, core,
                    lambda: {"captures": n, "ahead": stream.statistics().buffered},
                )


def floor_child(workload: str, n: int, windows: list[str]) -> list[dict[str, Any]]:
    import floor

    zero, dump = _window_marks()
    bare = floor.Bare()
    pb = bare.pb
    out: list[dict[str, Any]] = []
    source, track = _floor_track(bare, direct=workload == "audio")
    if workload == "roundtrip":
        got = [0]
        spin: list[int | None] = [floor.FOREVER]

        def on_event(event: Any) -> None:
            got[0] += event.WhichOneof("message") == "get_stats"

        def one() -> None:
            req = pb.FfiRequest()
            req.get_stats.track_handle = track
            bare.send(req, "get_stats")
            target = got[0] + 1
            bare.run_until(lambda: got[0] >= target, on_event, spin_ns=spin[0])

        for _ in range(WARMUP[workload]):
            one()
        for label in windows:
            # ``asis`` busy-polls as bench/floor.py does (how many empty polls a request makes
            # depends on timing); ``base`` sleeps in epoll until the shim signals, as the
            # lkanyio windows do.
            spin[0] = floor.FOREVER if label == "asis" else 0
            zero()
            for _ in range(n):
                one()
            dump()
            out.append({"label": label, "units": n})
        return out
    loop = floor.AudioLoop(bare, source, track)

    def unit() -> None:  # in lockstep, as lk_child's audio: one frame out, that frame in
        target = loop.received + 1
        async_id = loop.capture()
        bare.run_until(lambda: async_id in loop.captured and loop.received >= target,
                       loop.on_event, spin_ns=0)

    for _ in range(WARMUP[workload]):
        unit()
    for label in windows:
        r0 = loop.received
        zero()
        for _ in range(n):
            unit()
        dump()
        out.append({"label": label, "units": loop.received - r0, "captures": n})
    for handle in (loop.stream, track, source):
        bare.drop(handle)
    return out


def _floor_track(bare: Any, *, direct: bool) -> tuple[int, int]:
    """floor._audio_track, with the source's direct path (queue_size_ms=0) for audio."""
    from lkanyio._native._proto import audio_frame_pb2

    req = bare.pb.FfiRequest()
    src = req.new_audio_source
    src.type = audio_frame_pb2.AUDIO_SOURCE_NATIVE
    src.sample_rate, src.num_channels, src.queue_size_ms = 48_000, 1, 0 if direct else 1000
    source = bare.request(req).new_audio_source.source.handle.id
    req = bare.pb.FfiRequest()
    req.create_audio_track.name, req.create_audio_track.source_handle = "t", source
    return source, bare.request(req).create_audio_track.track.handle.id


# -- the parent: callgrind and the attribution ---------------------------------------------------

CALLS = ("_cffi_f_lk_shim_drain", "select_epoll_poll", "sched_yield", "PyUpb_Message_FromString",
         "b_buffer_new", "_cffi_f_lk_shim_drop_handle", "PyImport_ImportModuleLevelObject",
         TRAMPOLINE)


def annotate(path: Path) -> tuple[int, dict[str, int]]:
    """Total Ir of one dump and each function's inclusive Ir (first, non-recursive entry)."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    total = 0
    incl: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        count, rest = int(m.group(1).replace(",", "")), m.group(2)
        if rest.startswith("PROGRAM TOTALS"):
            total = count
            continue
        name = rest.split(" [", 1)[0].rsplit(":", 1)[-1]
        if "'" in name:
            continue  # a recursion level: its cost is inside the outer entry
        incl[name] = max(incl.get(name, 0), count)
    return total, incl


def call_counts(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """How many times each of ``names`` was called in one dump (from its ``calls=`` lines)."""
    ids: dict[str, str] = {}
    counts = dict.fromkeys(names, 0)
    target = None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2):
                    ids[m.group(1)] = m.group(2)
                target = ids.get(m.group(1), "")
        elif line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\)(?: (.*))?", line)
            if m and m.group(2):
                ids[m.group(1)] = m.group(2)
        elif line.startswith("calls=") and target is not None:
            if target in counts:
                counts[target] += int(line[6:].split()[0])
            target = None
    return counts


def run_parent(args: argparse.Namespace) -> dict[str, Any]:
    windows = list(WINDOWS["floor" if args.side == "floor" else args.workload])
    if args.side == "floor" and args.workload == "audio":
        windows.remove("asis")  # the floor's audio waits in epoll anyway
    if args.side == "asyncio" and args.workload == "roundtrip":
        windows.remove("t_wake")  # the waiter's wake is Future.set_result, a C function: direct
    n = args.n or DEFAULT_N[args.workload]
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="icount-"))
    workdir.mkdir(parents=True, exist_ok=True)
    labels = workdir / "windows.json"
    out = workdir / "cg.out"
    cmd = [
        "valgrind", "--tool=callgrind", "--separate-threads=yes",
        "--zero-before=os_getppid", "--dump-before=os_getpgrp", f"--callgrind-out-file={out}",
        sys.executable, str(Path(__file__).resolve()), "--child", args.workload,
        "--side", args.side, "--n", str(n), "--windows", ",".join(windows * args.rounds),
        "--labels", str(labels),
    ]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - t0
    info = json.loads(labels.read_text())
    sums: dict[str, dict[str, Any]] = {}
    for part, window in enumerate(info, start=1):
        dump = Path(f"{out}.{part}-01")  # thread 1: the event loop's (the main) thread
        total, incl = annotate(dump)
        acc = sums.setdefault(window["label"], {"units": 0, "captures": 0, "total": 0,
                                                "incl": {}, "calls": {}})
        acc["units"] += window["units"]
        acc["captures"] += window.get("captures", 0)
        acc["ahead"] = max(acc.get("ahead", 0), window.get("ahead", 0))
        acc["total"] += total
        for k, v in incl.items():
            acc["incl"][k] = acc["incl"].get(k, 0) + v
        for k, v in call_counts(dump, CALLS).items():
            acc["calls"][k] = acc["calls"].get(k, 0) + v
    per: dict[str, dict[str, Any]] = {}
    for label, acc in sums.items():
        units = max(acc["units"], 1)
        per[label] = {
            "units": acc["units"],
            "captures": acc["captures"],
            "ahead": acc.get("ahead", 0),
            "total": acc["total"] / units,
            "incl": {k: v / units for k, v in acc["incl"].items()},
            "calls": {k: v / units for k, v in acc["calls"].items()},
        }
    return {"workload": args.workload, "side": args.side, "n": n, "seconds": seconds,
            "windows": per, "steps": steps(per)}


def steps(
    per: dict[str, dict[str, Any]], cycle_from: dict[str, dict[str, Any]] | None = None
) -> list[tuple[str, str, float | None, bool]]:
    """The ``base`` window's instructions per unit by step.

    Rows are (step, how measured, Ir per unit, counted): counted rows do not overlap and the
    remainder is the total minus them; the others (indented) are parts of a counted row, or
    another way of running, shown for comparison.  ``cycle_from``: take the scheduler cycle from
    these windows (the roundtrip's, where every request takes the same path) instead.
    """
    base = per["base"]
    incl, calls = base["incl"], base["calls"]

    def direct(*funcs: str) -> float:
        return float(sum(incl.get(f, 0.0) for f in funcs))

    def diff(a: str, b: str) -> float | None:
        if a in per and b in per:
            return float(per[b]["total"] - per[a]["total"])
        return None

    def tramp(label: str) -> float | None:
        """What step ``label`` costs per unit: the trampoline's inclusive cost in its window."""
        if label not in per:
            return None
        return float(per[label]["incl"].get(TRAMPOLINE, 0.0) - incl.get(TRAMPOLINE, 0.0))

    def per_call(func: str) -> float:
        return incl.get(func, 0.0) / calls[func] if calls.get(func) else 0.0

    events = calls.get("PyUpb_Message_FromString", 0.0)
    buffers = per_call("b_buffer_new")
    drop = per_call("_cffi_f_lk_shim_drop_handle")
    iterations = calls.get("select_epoll_poll", 0.0)  # the loop's iterations per unit
    cycle = diff("base", "resume")
    cycle_how = "differential"
    if cycle_from is not None:
        cycle = float(cycle_from["resume"]["total"] - cycle_from["base"]["total"])
        cycle_how = "differential (from --cycle-from)"
    sink = tramp("t_sink")
    api = diff("core", "base")
    hook = None  # capture_frame's answer hook runs inside "deliver": not twice in the sum
    if api is not None and "t_route" in per and cycle_from is not None:
        plain = cycle_from["t_deliver"]["incl"].get(TRAMPOLINE, 0.0) - cycle_from["base"][
            "incl"].get(TRAMPOLINE, 0.0)  # a waiter with no hook (get_stats)
        hook = (tramp("t_deliver") or 0.0) - plain
        api -= hook
    floor_copy = "t_dispatch" not in per and "captures" in base and base["captures"]
    rows: list[tuple[str, str, float | None, bool]] = [
        ("API layer: get_stats's error check, NativeError raised + caught", "differential",
         api if "t_route" not in per else None, True),
        ("API layer: capture_frame's Python (turns, checks, pinning)" if hook is not None else
         "API layer: capture_frame's Python (turns, checks, pinning, answer hook)",
         "differential", api if "t_route" in per else None, True),
        ("send: SerializeToString", "direct", direct("PyUpb_Message_SerializeToString"), True),
        ("send: lk_shim_request (the native core's work, in this thread)", "direct",
         direct("_cffi_f_lk_shim_request"), True),
        ("shim: lk_shim_drain + lk_shim_free_events", "direct",
         direct("_cffi_f_lk_shim_drain", "_cffi_f_lk_shim_free_events"), True),
        (f"shim copy: ffi.buffer(ev.data, ev.len)[:] ({events:.2f} events)", "direct",
         buffers * events + direct("mb_subscript"), True),
        ("parse: FfiEvent.FromString", "direct", direct("PyUpb_Message_FromString"), True),
        ("classify", "trampoline", tramp("t_classify"), True),
        ("resolve (Correlator)", "trampoline", tramp("t_resolve"), True),
        ("route (Correlator)", "trampoline", tramp("t_route"), True),
        ("deliver a callback to its waiter (wake included)", "trampoline", tramp("t_deliver"),
         True),
        ("  answer hook: capture_frame's on_deliver (less a get_stats waiter's deliver)",
         "trampoline", hook, False),
        ("  wake: Future.set_result (asyncio)", "direct", direct("_asyncio_Future_set_result"),
         False),
        ("  wake: trio.lowlevel.reschedule", "trampoline",
         tramp("t_wake") if "t_route" not in per else None, False),
        ("sink: frame event into the AudioStream (less its handle drop)", "trampoline",
         None if sink is None else sink - drop, True),
        ("  user copy: native_bytearray", "trampoline", tramp("t_copy"), False),
        ("  wake: the stream's anyio.Event.set", "trampoline",
         tramp("t_wake") if "t_route" in per else None, False),
        ("user copy: bytes(ffi.buffer) + bytearray()", "direct",
         buffers + direct("bytes_new", "bytearray___init__") if floor_copy else None, True),
        ("release: lk_shim_drop_handle", "direct", direct("_cffi_f_lk_shim_drop_handle"), True),
        (f"loop: {iterations:.2f} iterations x one scheduler cycle", "derived",
         None if cycle is None else iterations * cycle, True),
        ("  one scheduler cycle (one more checkpoint per unit)", cycle_how, cycle, False),
        ("  wait: select_epoll_poll, user space" if cycle is not None else
         "wait: select_epoll_poll, user space", "direct", direct("select_epoll_poll"),
         cycle is None),
        ("  (in all rows: function-level imports)", "direct",
         direct("PyImport_ImportModuleLevelObject"), False),
        ("  (instead, as run: busy-polling (floor) / 50 us spin (lkanyio))", "differential",
         diff("base", "asis"), False),
    ]
    dispatch = tramp("t_dispatch")
    if dispatch is not None:
        parts = ("parse:", "classify", "resolve", "route", "deliver", "sink")
        inside = sum(v or 0.0 for row, _, v, _ in rows if row.startswith(parts))
        if sink is not None:
            inside += drop  # the sink's handle drop is in the release row
        at = next(i for i, r in enumerate(rows) if r[0].startswith("user copy: bytes"))
        rows.insert(at, ("dispatch: its own Python (the rest of Bridge._dispatch)", "trampoline",
                         dispatch - inside, True))
    rows = [r for r in rows if r[2] is not None and (r[2] or r[1] != "direct")]
    accounted = sum(v for _, _, v, counted in rows if counted and v is not None)
    rows.append(("other (Python glue: remainder of the total)", "remainder",
                 base["total"] - accounted, True))
    rows.append(("TOTAL (loop thread)", "direct", base["total"], False))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("workload", choices=("roundtrip", "audio"))
    parser.add_argument("--side", choices=("trio", "asyncio", "floor"), required=True)
    parser.add_argument("--n", type=int, default=0, help="units per window (default by workload)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="run the windows this many times, interleaved (drift evens out)")
    parser.add_argument("--keep", default="", help="keep callgrind's dumps in this directory")
    parser.add_argument("--json", default="", help="also write the figures here")
    parser.add_argument("--report", default="",
                        help="print the table of a --json file again (steps recomputed)")
    parser.add_argument("--cycle-from", default="",
                        help="take the scheduler cycle from this --json file (a roundtrip's)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--windows", default="", help=argparse.SUPPRESS)
    parser.add_argument("--labels", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        windows = args.windows.split(",")
        if args.side == "floor":
            result = floor_child(args.workload, args.n, windows)
        else:
            import anyio

            result = anyio.run(lk_child, args.workload, args.n, windows, backend=args.side)
        Path(args.labels).write_text(json.dumps(result))
        return
    result = json.loads(Path(args.report).read_text()) if args.report else run_parent(args)
    if args.report or args.cycle_from:
        cycle_from = json.loads(Path(args.cycle_from).read_text()) if args.cycle_from else None
        result["steps"] = steps(result["windows"], cycle_from and cycle_from["windows"])
    unit = "request" if args.workload == "roundtrip" else "received frame"
    print(f"{args.workload} on {args.side}: instructions per {unit} in the loop thread "
          f"(N = {result['n']} per window, {result['seconds']:.0f} s under callgrind)")
    for row, how, value, _ in result["steps"]:
        print(f"  {row:<66} {how:<12} {value:>10,.0f}")
    calls = result["windows"]["base"]["calls"]
    print("  calls per unit: " + ", ".join(f"{k} {v:.2f}" for k, v in calls.items()))
    for label, window in result["windows"].items():
        calls = ", ".join(f"{v:.2f}" for v in window["calls"].values())
        print(f"  window {label:<10} {window['total']:>10,.0f} per unit over {window['units']}"
              f" (calls {calls})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
