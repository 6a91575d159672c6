"""The floor: each workload's work done by the bare native library, with no event loop.

A plain loop serializes protobuf requests, hands them to the native core through lkanyio's cffi
shim (``lk_shim_request``) and takes the shim's event queue (``lk_shim_drain``): no tasks, no
waiters, no routing.  Whatever an SDK adds on top of this is its own cost.

How the loop waits for events depends on what the workload measures:

* roundtrip, concurrency, data (latency and throughput): busy-poll the queue and never sleep,
  so events are seen the moment the core queues them.  An empty poll calls sched_yield():
  on a 2-core machine a spinning loop that never yields starves the core's own threads (and
  the server), and was measured slower than lkanyio, which is no floor;
* audio, video, scale (CPU and memory): block in epoll on the shim's wakeup fd; spinning would bill
  its own CPU to the workload.
"""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING, Any

from common import (
    AGENT_K,
    AGENT_SECONDS,
    ANNOUNCE,
    AUDIO_FRAMES,
    CONCURRENCY,
    CONVERT_FRAMES,
    DATA_MESSAGES,
    SCALE_K,
    SCALE_SETTLE_S,
    SEQ_COUNT,
    SEQ_WARMUP,
    VIDEO_FPS,
    VIDEO_SECONDS,
    VIDEO_SIZES,
    GcClock,
    concurrency_summary,
    cpu,
    i420_base,
    paint_counter,
    pct,
    read_counter,
    rss_kib,
    silent,
    token,
    tone,
)

if TYPE_CHECKING:
    from collections.abc import Callable

FOREVER = None  # spin_ns: busy-poll until done


class Bare:
    """The native core through the shim: send requests, drain events, nothing else."""

    def __init__(self) -> None:
        from lkanyio._native._ffi import ffi, lib

        from lkanyio._native._bridge import get_bridge
        from lkanyio._native._proto import ffi_pb2

        self.bridge = get_bridge()  # loads the library and initializes the core (no loop)
        self.ffi, self.lib, self.pb = ffi, lib, ffi_pb2
        self.res, self.res_len = ffi.new("const uint8_t **"), ffi.new("size_t *")
        self.poller = select.epoll()
        self.poller.register(lib.lk_shim_wakeup_fd(), select.EPOLLIN)
        self.next_id = (1 << 63) + (1 << 40)  # a range the core never hands out

    def request(self, req: Any) -> Any:
        """A synchronous request: its response."""
        return self.bridge.request(req)

    def send(self, req: Any, which: str) -> int:
        """Send an async request; return the async id its callback will carry."""
        async_id = self.next_id
        self.next_id += 1
        getattr(req, which).request_async_id = async_id
        data = req.SerializeToString()
        handle = self.lib.lk_shim_request(data, len(data), self.res, self.res_len)
        if handle == 0:
            raise RuntimeError(f"the native core rejected {which}")
        self.lib.lk_shim_drop_handle(handle)
        return async_id

    def run_until(
        self,
        done: Callable[[], bool],
        on_event: Callable[[Any], None],
        *,
        spin_ns: int | None,
        timeout: float = 60.0,
    ) -> None:
        """Drain the queue into ``on_event`` until ``done()``.

        Busy-polls (yielding the CPU when the queue is empty) for ``spin_ns`` nanoseconds, or
        for ever with ``FOREVER``; after that, sleeps in epoll until the shim signals events.
        """
        lib, ffi, parse = self.lib, self.ffi, self.pb.FfiEvent.FromString
        now = time.perf_counter_ns()
        spin_end = None if spin_ns is None else now + spin_ns
        deadline = now + int(timeout * 1e9)
        while not done():
            now = time.perf_counter_ns()
            if now > deadline:
                raise TimeoutError("the floor waited too long for native events")
            if spin_end is not None and now >= spin_end:
                self.poller.poll(0.5)
            head = lib.lk_shim_drain(ffi.NULL)
            if head == ffi.NULL:
                if spin_end is None or now < spin_end:
                    os.sched_yield()  # never sleep, but let the core's threads have this CPU
                continue
            ev = head
            while ev != ffi.NULL:
                on_event(parse(ffi.buffer(ev.data, ev.len)[:]))
                ev = ev.next
            lib.lk_shim_free_events(head)

    def copy(self, address: int, length: int) -> bytes:
        return bytes(self.ffi.buffer(self.ffi.cast("uint8_t *", address), length))

    def drop(self, handle: int) -> None:
        self.lib.lk_shim_drop_handle(handle)

    def connect(self, url: str, tok: str) -> int:
        """Build and send a connect request (lkanyio's default options); its async id."""
        req = self.pb.FfiRequest()
        req.connect.url, req.connect.token = url, tok
        opts = req.connect.options
        opts.auto_subscribe, opts.dynacast, opts.adaptive_stream = True, False, False
        return self.send(req, "connect")

    def ready(self, room: int) -> None:
        req = self.pb.FfiRequest()
        req.ready_for_room_event.room_handle = room
        self.request(req)

    def announce(self, local_participant: int) -> int:
        """Send ``common.ANNOUNCE`` (its callback is not awaited); its async id."""
        req = self.pb.FfiRequest()
        req.set_local_attributes.local_participant_handle = local_participant
        for key, value in ANNOUNCE.items():
            entry = req.set_local_attributes.attributes.add()
            entry.key, entry.value = key, value
        return self.send(req, "set_local_attributes")

    def disconnect(self, room: int) -> int:
        from lkanyio._native._proto import participant_pb2

        req = self.pb.FfiRequest()
        req.disconnect.room_handle = room
        req.disconnect.reason = participant_pb2.CLIENT_INITIATED
        return self.send(req, "disconnect")


def _audio_track(bare: Bare) -> tuple[int, int]:
    from lkanyio._native._proto import audio_frame_pb2

    req = bare.pb.FfiRequest()
    src = req.new_audio_source
    src.type = audio_frame_pb2.AUDIO_SOURCE_NATIVE
    src.sample_rate, src.num_channels, src.queue_size_ms = 48_000, 1, 1000
    source = bare.request(req).new_audio_source.source.handle.id
    req = bare.pb.FfiRequest()
    req.create_audio_track.name, req.create_audio_track.source_handle = "t", source
    return source, bare.request(req).create_audio_track.track.handle.id


def requests(workload: str) -> dict[str, Any]:
    """roundtrip / concurrency: get_stats on an unpublished track (fails in the core, in µs)."""
    bare = Bare()
    _source, track = _audio_track(bare)
    got = [0]

    def on_event(event: Any) -> None:
        got[0] += event.WhichOneof("message") == "get_stats"

    def send() -> None:
        req = bare.pb.FfiRequest()
        req.get_stats.track_handle = track
        bare.send(req, "get_stats")

    def wait(count: int) -> None:
        target = got[0] + count
        bare.run_until(lambda: got[0] >= target, on_event, spin_ns=FOREVER)

    if workload == "roundtrip":
        lat = []
        for i in range(SEQ_WARMUP + SEQ_COUNT):
            t = time.perf_counter_ns()
            send()
            wait(1)
            if i >= SEQ_WARMUP:
                lat.append((time.perf_counter_ns() - t) / 1e3)
        return {"p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99)}
    out = {}
    clock = GcClock()
    for n in CONCURRENCY:
        done, t0, g = 0, time.perf_counter(), clock.seconds
        while done < max(n, 10_000):
            for _ in range(n):
                send()
            wait(n)
            done += n
        elapsed = time.perf_counter() - t0
        out[f"n{n}_req_s"] = done / elapsed
        gc_share = (clock.seconds - g) / elapsed
    return concurrency_summary(out, gc_share)


class AudioLoop:
    """The audio row's bare loop: a native AudioStream of ``track`` and a source's captures.

    ``capture()`` sends one 10 ms tone frame into ``source``; ``on_event`` records its answer
    and copies each received frame out (bench/icount.py runs the same loop under callgrind).
    """

    def __init__(self, bare: Bare, source: int, track: int) -> None:
        from lkanyio._native._proto import audio_frame_pb2

        self.bare, self.source = bare, source
        req = bare.pb.FfiRequest()
        ns = req.new_audio_stream
        ns.track_handle, ns.type = track, audio_frame_pb2.AUDIO_STREAM_NATIVE
        ns.sample_rate, ns.num_channels, ns.frame_size_ms = 48_000, 1, 10
        self.stream = bare.request(req).new_audio_stream.stream.handle.id
        self.pinned = bare.ffi.from_buffer(tone())
        self.address = int(bare.ffi.cast("uintptr_t", self.pinned))
        self.captured: set[int] = set()
        self.received = 0

    def capture(self) -> int:
        """Send one capture; return its async id."""
        req = self.bare.pb.FfiRequest()
        msg = req.capture_audio_frame
        msg.source_handle = self.source
        msg.buffer.data_ptr, msg.buffer.sample_rate = self.address, 48_000
        msg.buffer.num_channels, msg.buffer.samples_per_channel = 1, 480
        return self.bare.send(req, "capture_audio_frame")

    def on_event(self, event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "capture_audio_frame":
            if event.capture_audio_frame.error:
                raise RuntimeError(event.capture_audio_frame.error)
            self.captured.add(event.capture_audio_frame.async_id)
        elif which == "audio_stream_event" and event.audio_stream_event.HasField("frame_received"):
            frame = event.audio_stream_event.frame_received.frame
            info = frame.info
            bytearray(
                self.bare.copy(info.data_ptr, info.samples_per_channel * info.num_channels * 2)
            )
            self.bare.drop(frame.handle.id)
            self.received += 1


def audio() -> dict[str, Any]:
    """AudioSource -> local track -> AudioStream: capture 10 ms frames one by one, copy each out."""
    bare = Bare()
    source, track = _audio_track(bare)
    loop = AudioLoop(bare, source, track)
    stream, on_event = loop.stream, loop.on_event

    c0, t0 = cpu(), time.perf_counter()
    for _ in range(AUDIO_FRAMES):
        async_id = loop.capture()
        bare.run_until(lambda a=async_id: a in loop.captured, on_event, spin_ns=0)
    bare.run_until(lambda: loop.received >= AUDIO_FRAMES, on_event, spin_ns=0)
    c1, t1 = cpu(), time.perf_counter()
    for handle in (stream, track, source):
        bare.drop(handle)
    return {
        "frames_s": loop.received / (t1 - t0),
        "cpu_s_per_10k_frames": (c1 - c0) / loop.received * 10_000,
    }


def data(url: str, key: str, secret: str) -> dict[str, Any]:
    """Two participants in one process; tx publishes 1 KiB reliable packets one after another."""
    import os

    bare = Bare()
    room_name = f"bench-data-{os.getpid()}"
    connected: dict[int, Any] = {}
    callbacks: set[int] = set()
    rx_room = [0]
    tx_seen = [False]
    lat: list[float] = []

    def on_event(event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "connect":
            connected[event.connect.async_id] = event.connect
        elif which in ("publish_data", "disconnect"):
            message = getattr(event, which)
            if getattr(message, "error", ""):
                raise RuntimeError(message.error)
            callbacks.add(message.async_id)
        elif which == "room_event" and event.room_event.room_handle == rx_room[0]:
            room_event = event.room_event
            kind = room_event.WhichOneof("message")
            if kind == "participant_connected":
                tx_seen[0] |= room_event.participant_connected.info.info.identity == "tx"
            elif kind == "data_packet_received" and room_event.data_packet_received.HasField("user"):
                owned = room_event.data_packet_received.user.data
                payload = bare.copy(owned.data.data_ptr, owned.data.data_len)
                bare.drop(owned.handle.id)
                sent = int.from_bytes(payload[:8], "little")
                lat.append((time.perf_counter_ns() - sent) / 1e3)

    def join(identity: str) -> tuple[int, int]:
        async_id = bare.connect(url, token(key, secret, identity, room_name))
        bare.run_until(lambda: async_id in connected, on_event, spin_ns=0, timeout=30)
        cb = connected[async_id]
        if cb.WhichOneof("message") != "result":
            raise RuntimeError(f"connect failed: {cb.error}")
        room = cb.result.room.handle.id
        if identity == "rx":
            rx_room[0] = room
        bare.ready(room)
        return room, cb.result.local_participant.handle.id

    rx, _ = join("rx")
    tx, tx_participant = join("tx")
    bare.announce(tx_participant)
    bare.run_until(lambda: tx_seen[0], on_event, spin_ns=0, timeout=20)
    payload = bare.ffi.new("uint8_t[]", b"x" * 1024)
    address = int(bare.ffi.cast("uintptr_t", payload))
    t0 = time.perf_counter()
    for _ in range(DATA_MESSAGES):
        bare.ffi.memmove(payload, time.perf_counter_ns().to_bytes(8, "little"), 8)
        req = bare.pb.FfiRequest()
        msg = req.publish_data
        msg.local_participant_handle, msg.data_ptr, msg.data_len = tx_participant, address, 1024
        msg.reliable = True
        async_id = bare.send(req, "publish_data")
        bare.run_until(lambda a=async_id: a in callbacks, on_event, spin_ns=FOREVER)
    bare.run_until(lambda: len(lat) >= DATA_MESSAGES, on_event, spin_ns=FOREVER)
    elapsed = time.perf_counter() - t0
    left = [bare.disconnect(room) for room in (tx, rx)]
    bare.run_until(lambda: all(a in callbacks for a in left), on_event, spin_ns=0, timeout=30)
    return {"msgs_s": len(lat) / elapsed, "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99)}


def scale(url: str, key: str, secret: str) -> dict[str, Any]:
    """K participants, one room each, connected concurrently, then idle."""
    import os

    rss0 = rss_kib()  # before the core is loaded, as on the lkanyio side
    bare = Bare()
    tokens = [token(key, secret, f"p{i}", f"bench-scale-{os.getpid()}-{i}") for i in range(SCALE_K)]
    started: dict[int, float] = {}
    times: list[float] = []
    rooms: list[int] = []
    left: set[int] = set()

    def on_event(event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "connect":
            elapsed = time.perf_counter() - started.pop(event.connect.async_id)
            if event.connect.WhichOneof("message") != "result":
                raise RuntimeError(f"connect failed: {event.connect.error}")
            times.append(elapsed)
            room = event.connect.result.room.handle.id
            rooms.append(room)
            bare.ready(room)
        elif which == "disconnect":
            left.add(event.disconnect.async_id)

    for tok in tokens:
        t = time.perf_counter()
        started[bare.connect(url, tok)] = t
    bare.run_until(lambda: len(times) >= SCALE_K, on_event, spin_ns=0, timeout=120)
    rss1 = rss_kib()

    def idle(seconds: float) -> None:
        end = time.perf_counter() + seconds
        bare.run_until(lambda: time.perf_counter() >= end, on_event, spin_ns=0)

    idle(SCALE_SETTLE_S)
    c0, w0 = cpu(), time.perf_counter()
    idle(5)
    idle_cpu = (cpu() - c0) / (time.perf_counter() - w0)
    waiting = {bare.disconnect(room) for room in rooms}
    bare.run_until(lambda: waiting <= left, on_event, spin_ns=0, timeout=60)
    return {
        "k": SCALE_K,
        "connect_p50_s": pct(times, 0.5),
        "connect_p99_s": pct(times, 0.99),
        "rss_kib_per_participant": (rss1 - rss0) / SCALE_K,
        "idle_cpu_fraction": idle_cpu,
    }


def _i420_info(out: Any, frame: Any, address: int, width: int, height: int) -> None:
    """Describe a tightly packed I420 frame at ``address`` (what an SDK's capture_frame sends)."""
    from lkanyio._native._proto import video_frame_pb2

    out.type, out.width, out.height, out.data_ptr = video_frame_pb2.I420, width, height, address
    cw, ch = (width + 1) // 2, (height + 1) // 2
    offset = 0
    for stride, size in ((width, width * height), (cw, cw * ch), (cw, cw * ch)):
        component = out.components.add()
        component.data_ptr, component.stride, component.size = address + offset, stride, size
        offset += size


def video(url: str, key: str, secret: str, seconds: float) -> dict[str, Any]:
    """Both SDK video workloads by a bare loop: through the server to RGBA, then convert."""
    from lkanyio._native._proto import video_frame_pb2

    bare = Bare()
    out: dict[str, Any] = {}
    for width, height in VIDEO_SIZES:
        out.update(video_size(bare, url, key, secret, width, height, seconds or VIDEO_SECONDS))
    frame = i420_base(1920, 1080)
    paint_counter(frame, 1920, 1080, 1)
    pinned = bare.ffi.from_buffer(frame)
    address = int(bare.ffi.cast("uintptr_t", pinned))
    t0 = time.perf_counter()
    for _ in range(CONVERT_FRAMES):
        req = bare.pb.FfiRequest()
        req.video_convert.dst_type = video_frame_pb2.RGBA
        _i420_info(req.video_convert.buffer, frame, address, 1920, 1080)
        owned = bare.request(req).video_convert.buffer
        bytearray(bare.copy(owned.info.data_ptr, 1920 * 1080 * 4))
        bare.drop(owned.handle.id)
    out["convert_fps_1080"] = CONVERT_FRAMES / (time.perf_counter() - t0)
    return out


def video_size(
    bare: Bare, url: str, key: str, secret: str, width: int, height: int, seconds: float
) -> dict[str, Any]:
    """A paced 30 fps capture loop and an RGBA stream in one plain loop (epoll between frames)."""
    import os

    from lkanyio._native._proto import track_pb2, video_frame_pb2

    room_name = f"bench-video-{os.getpid()}-{height}"
    connected: dict[int, Any] = {}
    callbacks: dict[int, Any] = {}
    rooms: dict[str, int] = {}
    state: dict[str, Any] = {"tx_seen": False, "remote": 0, "stream": 0}
    captured: dict[int, int] = {}
    got: list[tuple[int, int | None]] = []  # (arrival ns, counter)

    def on_event(event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "connect":
            connected[event.connect.async_id] = event.connect
        elif which in ("publish_track", "disconnect"):
            callbacks[getattr(event, which).async_id] = getattr(event, which)
        elif which == "room_event" and event.room_event.room_handle == rooms.get("rx"):
            room_event = event.room_event
            kind = room_event.WhichOneof("message")
            if kind == "participant_connected":
                state["tx_seen"] |= room_event.participant_connected.info.info.identity == "tx"
            elif kind == "track_subscribed":
                state["remote"] = room_event.track_subscribed.track.handle.id
        elif which == "video_stream_event":
            stream_event = event.video_stream_event
            if stream_event.stream_handle != state["stream"]:
                return
            if stream_event.HasField("frame_received"):
                owned = stream_event.frame_received.buffer
                info = owned.info
                rgba = bytearray(bare.copy(info.data_ptr, info.width * info.height * 4))
                bare.drop(owned.handle.id)
                got.append((time.perf_counter_ns(), read_counter(rgba, info.width, info.height)))

    def join(identity: str) -> int:
        async_id = bare.connect(url, token(key, secret, identity, room_name))
        bare.run_until(lambda: async_id in connected, on_event, spin_ns=0, timeout=30)
        cb = connected[async_id]
        if cb.WhichOneof("message") != "result":
            raise RuntimeError(f"connect failed: {cb.error}")
        rooms[identity] = cb.result.room.handle.id
        bare.ready(rooms[identity])
        return int(cb.result.local_participant.handle.id)

    join("rx")
    tx_participant = join("tx")
    bare.announce(tx_participant)
    bare.run_until(lambda: state["tx_seen"], on_event, spin_ns=0, timeout=20)
    req = bare.pb.FfiRequest()
    req.new_video_source.type = video_frame_pb2.VIDEO_SOURCE_NATIVE
    req.new_video_source.resolution.width, req.new_video_source.resolution.height = width, height
    source = bare.request(req).new_video_source.source.handle.id
    req = bare.pb.FfiRequest()
    req.create_video_track.name, req.create_video_track.source_handle = "cam", source
    track = bare.request(req).create_video_track.track.handle.id
    req = bare.pb.FfiRequest()
    msg = req.publish_track
    msg.local_participant_handle, msg.track_handle = tx_participant, track
    msg.options.source = track_pb2.SOURCE_CAMERA
    msg.options.simulcast = False
    msg.options.video_encoding.max_bitrate = 2_500_000 if height <= 720 else 5_000_000
    msg.options.video_encoding.max_framerate = VIDEO_FPS
    published = bare.send(req, "publish_track")
    bare.run_until(lambda: published in callbacks and state["remote"], on_event, spin_ns=0)
    if callbacks[published].error:
        raise RuntimeError(callbacks[published].error)
    req = bare.pb.FfiRequest()
    ns = req.new_video_stream
    ns.track_handle, ns.type = state["remote"], video_frame_pb2.VIDEO_STREAM_NATIVE
    ns.normalize_stride, ns.format = True, video_frame_pb2.RGBA
    state["stream"] = bare.request(req).new_video_stream.stream.handle.id

    frame = i420_base(width, height)
    pinned = bare.ffi.from_buffer(frame)
    address = int(bare.ffi.cast("uintptr_t", pinned))
    lib, ffi, parse = bare.lib, bare.ffi, bare.pb.FfiEvent.FromString
    t_start, sent = time.perf_counter(), [0]

    def pump(until: Callable[[], bool], timeout: float) -> None:
        """Capture at 30 fps; between frames, sleep in epoll and drain what arrives."""
        deadline = time.perf_counter() + timeout
        while not until():
            now = time.perf_counter()
            if now > deadline:
                raise TimeoutError("the floor waited too long for video frames")
            due = t_start + sent[0] / VIDEO_FPS
            if now >= due:
                paint_counter(frame, width, height, sent[0])
                captured[sent[0] % 4096] = time.perf_counter_ns()
                req = bare.pb.FfiRequest()
                req.capture_video_frame.source_handle = source
                req.capture_video_frame.timestamp_us = 0
                req.capture_video_frame.rotation = video_frame_pb2.VIDEO_ROTATION_0
                _i420_info(req.capture_video_frame.buffer, frame, address, width, height)
                bare.request(req)
                sent[0] += 1
                continue
            bare.poller.poll(due - now)
            head = lib.lk_shim_drain(ffi.NULL)
            ev = head
            while ev != ffi.NULL:
                on_event(parse(ffi.buffer(ev.data, ev.len)[:]))
                ev = ev.next
            if head != ffi.NULL:
                lib.lk_shim_free_events(head)

    pump(lambda: any(n is not None for _t, n in got), 30)
    got.clear()
    c0, t0, l0 = cpu(), time.perf_counter_ns(), time.thread_time()
    end = t0 + int(seconds * 1e9)
    pump(lambda: bool(got) and got[-1][0] >= end, seconds + 30)
    elapsed, cpu_s = (time.perf_counter_ns() - t0) / 1e9, cpu() - c0
    lat = [(t - captured[n]) / 1e6 for t, n in got if n is not None and n in captured]
    result = {
        f"loop_ms_per_frame_{height}": (time.thread_time() - l0) / max(len(got), 1) * 1e3,
        f"fps_{height}": len(got) / elapsed,
        f"cpu_ms_per_frame_{height}": cpu_s / max(len(got), 1) * 1e3,
        f"p50_ms_{height}": pct(lat, 0.5) if lat else float("nan"),
        f"p99_ms_{height}": pct(lat, 0.99) if lat else float("nan"),
        f"rss_mib_{height}": rss_kib() / 1024,
        f"undecoded_{height}": len(got) - len(lat),
    }
    for handle in (state["stream"], state["remote"], track, source):
        bare.drop(handle)
    left = [bare.disconnect(room) for room in (rooms["tx"], rooms["rx"])]
    bare.run_until(lambda: all(a in callbacks for a in left), on_event, spin_ns=0, timeout=30)
    return result


def floor_run(
    workload: str, url: str, key: str, secret: str, seconds: float = 0.0, *, quick: bool = False
) -> dict[str, Any]:
    if workload in ("roundtrip", "concurrency"):
        return requests(workload)
    if workload == "audio":
        return audio()
    if workload == "data":
        return data(url, key, secret)
    if workload == "scale":
        return scale(url, key, secret)
    if workload == "video":
        return video(url, key, secret, seconds)
    if workload == "agent":
        return agent(url, key, secret, seconds)
    if workload == "data_stream":
        return data_stream(url, key, secret, quick)
    raise SystemExit(f"unknown workload {workload}")


def agent(url: str, key: str, secret: str, seconds: float) -> dict[str, Any]:
    """The agent workload by a bare loop: K rooms, 16 kHz in from each peer, 48 kHz out."""
    out: dict[str, Any] = {}
    bare = Bare()
    for k in AGENT_K:
        out.update(agent_k(bare, url, key, secret, k, seconds or AGENT_SECONDS))
    return out


class _AgentRoom:
    """One room of the agent floor: its handles and what it heard."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.room = self.participant = self.stream = self.source = self.track = 0
        self.peer = 0  # the remote peer's participant handle
        self.subscribed = False  # the peer subscribed to our reply track
        self.arrivals: list[int] = []
        self.received: list[int] = []  # every frame, silent or not
        self.left = 0  # frames still to capture in the window


def agent_k(bare: Bare, url: str, key: str, secret: str, k: int, seconds: float) -> dict[str, Any]:
    """As bench/media.py's lk_agent_k, every step a native request or event in one loop.

    Each room's capture loop keeps one capture_audio_frame in flight (as an SDK's
    ``await source.capture_frame`` does): its callback sends the next.
    """
    from argparse import Namespace

    from media import DRAIN, JOIN_STAGGER, READY_WAIT, agent_result, start_peer, stop_peer

    from lkanyio._native._proto import audio_frame_pb2, track_pb2

    frames_out = int(seconds * 100)
    prefix = f"bench-agent-{os.getpid()}-{k}"
    peer = start_peer(Namespace(url=url, key=key, secret=secret), prefix, k, frames_out)
    rooms = [_AgentRoom(i) for i in range(k)]
    by_connect: dict[int, _AgentRoom] = {}
    by_room: dict[int, _AgentRoom] = {}
    by_stream: dict[int, _AgentRoom] = {}
    by_capture: dict[int, _AgentRoom] = {}
    callbacks: dict[int, Any] = {}
    pinned = bare.ffi.from_buffer(tone())
    address = int(bare.ffi.cast("uintptr_t", pinned))
    mic = track_pb2.SOURCE_MICROPHONE

    def capture(room: _AgentRoom) -> None:
        req = bare.pb.FfiRequest()
        msg = req.capture_audio_frame
        msg.source_handle = room.source
        msg.buffer.data_ptr, msg.buffer.sample_rate = address, 48_000
        msg.buffer.num_channels, msg.buffer.samples_per_channel = 1, 480
        room.left -= 1
        by_capture[bare.send(req, "capture_audio_frame")] = room

    def start_media(room: _AgentRoom, peer_handle: int) -> None:
        """The peer is in the room: listen to it at 16 kHz, publish the 48 kHz reply."""
        room.peer = peer_handle
        req = bare.pb.FfiRequest()
        msg = req.audio_stream_from_participant
        msg.participant_handle, msg.track_source = peer_handle, mic
        msg.type = audio_frame_pb2.AUDIO_STREAM_NATIVE
        msg.sample_rate, msg.num_channels, msg.frame_size_ms = 16_000, 1, 10
        room.stream = bare.request(req).audio_stream_from_participant.stream.handle.id
        by_stream[room.stream] = room
        req = bare.pb.FfiRequest()
        src = req.new_audio_source
        src.type = audio_frame_pb2.AUDIO_SOURCE_NATIVE
        src.sample_rate, src.num_channels, src.queue_size_ms = 48_000, 1, 1000
        room.source = bare.request(req).new_audio_source.source.handle.id
        req = bare.pb.FfiRequest()
        req.create_audio_track.name, req.create_audio_track.source_handle = "reply", room.source
        room.track = bare.request(req).create_audio_track.track.handle.id
        req = bare.pb.FfiRequest()
        msg = req.publish_track
        msg.local_participant_handle, msg.track_handle = room.participant, room.track
        msg.options.source = mic
        bare.send(req, "publish_track")

    def on_event(event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "audio_stream_event":
            stream_event = event.audio_stream_event
            room = by_stream.get(stream_event.stream_handle)
            if room is not None and stream_event.HasField("frame_received"):
                frame = stream_event.frame_received.frame
                info = frame.info
                data = bare.copy(info.data_ptr, info.samples_per_channel * info.num_channels * 2)
                bare.drop(frame.handle.id)
                now = time.perf_counter_ns()
                room.received.append(now)
                if not silent(data):
                    room.arrivals.append(now)
        elif which == "capture_audio_frame":
            room = by_capture.pop(event.capture_audio_frame.async_id)
            if room.left > 0:  # after the window, a source being dropped may fail a capture
                if event.capture_audio_frame.error:
                    raise RuntimeError(event.capture_audio_frame.error)
                capture(room)
        elif which == "connect":
            room = by_connect.pop(event.connect.async_id)
            if event.connect.WhichOneof("message") != "result":
                return  # never ready: counts so, as on the SDK sides
            result = event.connect.result
            room.room = result.room.handle.id
            room.participant = result.local_participant.handle.id
            by_room[room.room] = room
            bare.ready(room.room)
            for other in result.participants:
                if other.participant.info.identity == "peer":
                    start_media(room, other.participant.handle.id)
        elif which == "room_event":
            room_event = event.room_event
            room = by_room.get(room_event.room_handle)
            kind = room_event.WhichOneof("message")
            if room is None:
                return
            if kind == "participant_connected" and not room.peer:
                joined = room_event.participant_connected.info
                if joined.info.identity == "peer":
                    start_media(room, joined.handle.id)
            elif kind == "local_track_subscribed":
                room.subscribed = True
        elif which in ("publish_track", "disconnect"):
            callbacks[getattr(event, which).async_id] = getattr(event, which)

    try:
        t_join = time.perf_counter()
        for room in rooms:  # joined JOIN_STAGGER apart, as on the SDK sides
            due = t_join + room.index * JOIN_STAGGER
            bare.run_until(lambda d=due: time.perf_counter() >= d, on_event, spin_ns=0)
            by_connect[bare.connect(url, token(key, secret, "agent", f"{prefix}-{room.index}"))] = room
        ready_by = time.perf_counter() + READY_WAIT

        def all_ready() -> bool:
            return all(r.subscribed and r.arrivals for r in rooms)

        bare.run_until(lambda: all_ready() or time.perf_counter() >= ready_by, on_event,
                       spin_ns=0, timeout=READY_WAIT + 10)
        ready = sum(1 for r in rooms if r.subscribed and r.arrivals)
        c0, t0 = cpu(), time.perf_counter_ns()
        for room in rooms:
            if room.source:
                room.left = frames_out
                capture(room)
        end = t0 + int(seconds * 1e9)
        bare.run_until(lambda: time.perf_counter_ns() >= end, on_event, spin_ns=0,
                       timeout=seconds + 10)
        cpu_s, t1 = cpu() - c0, time.perf_counter_ns()
        drained = time.perf_counter() + DRAIN
        bare.run_until(lambda: time.perf_counter() >= drained, on_event, spin_ns=0)
        heard = stop_peer(peer)
        for room in rooms:
            room.left = 0
            for handle in (room.stream, room.track, room.source):
                if handle:
                    bare.drop(handle)
        left = [bare.disconnect(r.room) for r in rooms if r.room]
        bare.run_until(lambda: all(a in callbacks for a in left), on_event, spin_ns=0, timeout=30)
    finally:
        if peer.poll() is None:
            peer.kill()
    arrivals = [r.arrivals for r in rooms]
    received = [r.received for r in rooms]
    return agent_result(k, (t1 - t0) / 1e9, cpu_s, arrivals, (t0, t1), heard, ready, received)


def data_stream(url: str, key: str, secret: str, quick: bool) -> dict[str, Any]:
    """send_file and send_text between two participants of one process, read incrementally.

    The reader takes every chunk as its event arrives (``*_read_incremental``, as both SDKs'
    readers do) and joins them at the end of the stream.
    """
    from media import STREAM_REPS, median_results, stream_payloads, stream_result

    bare = Bare()
    path, text = stream_payloads(quick)
    size = path.stat().st_size
    room_name = f"bench-streams-{os.getpid()}"
    connected: dict[int, Any] = {}
    callbacks: dict[int, Any] = {}
    rooms: dict[str, int] = {}
    state: dict[str, Any] = {"tx_seen": False, "reader": 0, "opened": 0.0, "done": 0.0}
    chunks: list[Any] = []

    def on_event(event: Any) -> None:
        which = event.WhichOneof("message")
        if which == "connect":
            connected[event.connect.async_id] = event.connect
        elif which in ("send_file", "send_text", "disconnect"):
            callbacks[getattr(event, which).async_id] = getattr(event, which)
        elif which == "room_event" and event.room_event.room_handle == rooms.get("rx"):
            room_event = event.room_event
            kind = room_event.WhichOneof("message")
            if kind == "participant_connected":
                state["tx_seen"] |= room_event.participant_connected.info.info.identity == "tx"
            elif kind in ("byte_stream_opened", "text_stream_opened"):
                state["opened"] = time.perf_counter()
                reader = getattr(room_event, kind).reader.handle.id
                state["reader"] = reader
                req = bare.pb.FfiRequest()
                prefix = kind.split("_", 1)[0]
                getattr(req, f"{prefix}_read_incremental").reader_handle = reader
                bare.request(req)  # the reader leaves the handle table: no drop afterwards
        elif which in ("byte_stream_reader_event", "text_stream_reader_event"):
            reader_event = getattr(event, which)
            if reader_event.reader_handle != state["reader"]:
                return
            detail = reader_event.WhichOneof("detail")
            if detail == "chunk_received":
                chunks.append(reader_event.chunk_received.content)
            elif detail == "eos":
                if reader_event.eos.HasField("error") and reader_event.eos.error.description:
                    raise RuntimeError(reader_event.eos.error.description)
                state["done"] = time.perf_counter()

    def join(identity: str) -> int:
        async_id = bare.connect(url, token(key, secret, identity, room_name))
        bare.run_until(lambda: async_id in connected, on_event, spin_ns=0, timeout=30)
        cb = connected[async_id]
        if cb.WhichOneof("message") != "result":
            raise RuntimeError(f"connect failed: {cb.error}")
        rooms[identity] = cb.result.room.handle.id
        bare.ready(rooms[identity])
        return int(cb.result.local_participant.handle.id)

    out: dict[str, Any] = {}
    try:
        join("rx")
        tx_participant = join("tx")
        bare.announce(tx_participant)
        bare.run_until(lambda: state["tx_seen"], on_event, spin_ns=0, timeout=20)
        for kind, length in (("file", size), ("text", len(text))):
            results = []
            for _ in range(STREAM_REPS[kind]):
                chunks.clear()
                state.update(reader=0, done=0.0)
                req = bare.pb.FfiRequest()
                which = "send_file" if kind == "file" else "send_text"
                msg = getattr(req, which)
                msg.local_participant_handle = tx_participant
                msg.options.topic = ""
                if kind == "file":
                    msg.file_path = str(path)
                else:
                    msg.text = text
                t0 = time.perf_counter()
                sent = bare.send(req, which)
                bare.run_until(lambda s=sent: bool(state["done"]) and s in callbacks, on_event,
                               spin_ns=0, timeout=120)
                if callbacks[sent].WhichOneof("result") == "error":
                    raise RuntimeError(f"{which}: {callbacks[sent].error.description}")
                content: bytes | str = b"".join(chunks) if kind == "file" else "".join(chunks)
                if len(content) != length:
                    raise RuntimeError(f"{kind}: {len(content)} of {length}")
                results.append(stream_result(kind, length, t0, state["opened"], state["done"]))
            out.update(median_results(results))
        left = [bare.disconnect(room) for room in (rooms["tx"], rooms["rx"])]
        bare.run_until(lambda: all(a in callbacks for a in left), on_event, spin_ns=0, timeout=30)
    finally:
        path.unlink()
    return out
