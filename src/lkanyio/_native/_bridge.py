"""The async shell around the native core: requests and event routing.

One :class:`Bridge` per process (the native core allows one client per process).  It is created
on first use, so importing lkanyio starts no thread.  Events from the native core arrive through
the C shim's queue; a *driver* in the running event loop wakes up on the shim's wakeup fd, drains
the queue in one call and routes every event through the sans-IO :class:`~lkanyio._core.Correlator`:

* asyncio: a reader callback on the loop (``loop.add_reader``), so routing costs no task switch;
* trio: a system task blocked in ``wait_readable``.

The drivers live in ``_backends`` (one module each), native handles in ``_handles``, memory
copies in ``_memory`` and log forwarding in ``_logs``.  A driver lives as long as its event
loop; the bridge serves one running loop at a time.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Final, TypeVar, final

from .._checkpoints import checkpoint, checkpoint_if_cancelled
from .._core import Action, Correlator, SpinPolicy, classify
from .._errors import LiveKitError, NativeError
from .._streams import live_streams
from ._backends import Driver, install_driver, running_loop
from ._backends._trio import abort_succeeded
from ._logs import forward_logs, native_log, native_log_threshold, redact
from ._proto import carrier_version, ffi_pb2, wheel_root

__all__ = ["Bridge", "BridgeStatistics", "get_bridge", "statistics"]

_log = logging.getLogger("lkanyio")

SDK_NAME: Final = "python"
"""What the native core reports to the server as the client SDK; the wire behaviour is the carrier
wheel's, so its name and installed version are the honest ones to report."""
SDK_VERSION: Final = carrier_version()

Receiver = Callable[[Any], None]
"""Gets an async callback message (the oneof member of ``FfiEvent``)."""
Sink = Callable[[Any], None]
"""Gets every keyed event for one handle (the oneof member of ``FfiEvent``).  A media stream's
sink also has ``frame(data, buffer_id)``: its frame events go there unparsed (the ``FfiEvent``
bytes and the frame's buffer handle, both routing fields read by the shim), and it owns that
buffer from then on; and ``audio(samples, sample_rate, num_channels, samples_per_channel)`` for
an audio frame the shim copied inline."""

T = TypeVar("T")

@final
@dataclass(frozen=True)
class BridgeStatistics:
    """A snapshot of lkanyio's process-wide state, for leak checks and monitoring.

    Attributes:
        started: whether the native core has been loaded in this process.
        pending_requests: async requests waiting for their callback (live waiters).
        late_handlers: abandoned requests whose late callback still has cleanup to run.
        bound_handles: handles whose events are being routed (rooms, streams, readers).
        live_handles: native handles owned by live Python objects.
        delivered: callbacks delivered to waiters since start.
        late_callbacks: callbacks that arrived after their waiter gave up.
        foreign_callbacks: callbacks with an async id lkanyio never issued.
        unrouted_events: keyed events for a handle nobody listens to.
        queued_events: events waiting in the native shim's queue right now.
        events_received: events the native core has delivered to the shim since start.
        events_lost: events the shim could not copy (out of memory); each fails every request
            pending at the time with :class:`~lkanyio.NativeError`, since the lost one may have
            been any request's callback.
        logs_filtered: native log batches dropped in the shim as below the forwarded level.
        live_subscriptions: event, frame and reader streams still subscribed (neither closed
            by you nor ended by lkanyio).
        queued_frames: audio and video frame events in the shim's queue right now, each
            holding a native frame buffer (or, for most audio frames, a copy of its samples:
            the shim releases those buffers as they arrive).  The shim bounds them while the
            event loop is not draining: per stream by its ``max_buffered`` (a ``"fail"``
            stream keeps one more, to see its overflow), and 8 for all other streams together.
        frames_dropped: frame events the shim dropped (and whose buffers it released) under
            those bounds, or when it could not copy them; a ``"drop_oldest"`` stream also
            counts its own in its ``statistics().dropped``.  Callbacks and control events
            (end of stream, room events) are never dropped.
    """

    started: bool
    pending_requests: int
    late_handlers: int
    bound_handles: int
    live_handles: int
    delivered: int
    late_callbacks: int
    foreign_callbacks: int
    unrouted_events: int
    queued_events: int
    events_received: int
    events_lost: int
    logs_filtered: int
    live_subscriptions: int
    queued_frames: int
    frames_dropped: int


class _Waiter:
    """One awaiting request: the callback message, once delivered, and how to wake its task.

    Deliberately lean, since every request in flight keeps one alive: no ``anyio.Event``
    (its wrappers cost several GC-tracked objects per request and made throughput sag with
    thousands in flight), and the waiter itself is the receiver the correlator calls.  The
    task parks on ``future`` (asyncio) or as ``task`` (trio); calling the waiter (in the
    dispatcher) wakes it.  A trio task woken by cancellation clears ``task`` first, and a
    cancelled asyncio future is done, so a callback arriving afterwards is recorded but
    never wakes anything.
    """

    __slots__ = ("done", "error", "future", "message", "on_deliver", "result", "task", "wake")

    def __init__(self, on_deliver: Callable[[Any], Any] | None) -> None:
        self.on_deliver = on_deliver
        self.done = False
        self.message: Any = None
        self.result: Any = None
        self.error: Exception | None = None
        self.future: Any = None  # asyncio: the future the task awaits
        self.task: Any = None  # trio: the parked task, and ``wake`` reschedules it
        self.wake: Callable[[Any], object] = _ignore

    def __call__(self, message: Any) -> None:
        self.message = message
        if self.on_deliver is None:
            self.result = message
        else:
            try:
                self.result = self.on_deliver(message)
            except Exception as exc:  # handed to the waiting task, never to the dispatcher
                self.error = exc
        self.done = True
        future = self.future
        if future is not None:
            if not future.done():
                future.set_result(None)
            return
        task = self.task
        if task is not None:
            self.task = None
            self.wake(task)

    def fail(self, error: Exception) -> None:
        """Wake the waiting task with ``error`` instead of a callback."""
        self.on_deliver = None
        self.error = error
        self(None)

    def abort(self, _: Any) -> Any:
        """Trio's abort callback: the parked task is being cancelled."""
        self.task = None
        return abort_succeeded()


def _ignore(_: Any) -> None:
    """A ``wake`` for a waiter nobody parked on."""


_OWNED_HANDLE: Final = "livekit.proto.FfiOwnedHandle"


def _owned_handle_ids(message: Any) -> list[int]:
    """The ids of every ``FfiOwnedHandle`` inside a protocol message (any depth)."""
    found: list[int] = []
    pending = [message]
    while pending:
        current = pending.pop()
        for field, value in current.ListFields():
            kind = field.message_type
            if kind is None or kind.GetOptions().map_entry:
                continue
            if kind.full_name == _OWNED_HANDLE:
                if value.id:
                    found.append(value.id)
            elif _is_repeated(field):
                pending.extend(value)
            else:
                pending.append(value)
    return found


def _is_repeated(field: Any) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return bool(field.label == field.LABEL_REPEATED)  # pragma: no cover - older protobuf


_SPIN_NS: Final = 50_000
"""How long a lone request drains the shim's queue before sleeping in the event loop."""

_yield_cpu: Callable[[], None] = getattr(os, "sched_yield", lambda: None)
"""Between a spin's empty drains the loop's thread offers its CPU to the native core's threads,
as the bench's floor does: on two cores, round trip p99 fell by 9-20% in six paired runs (p50
unchanged); the GIL is free during it, as it is in each drain."""


def _drop(message: Any) -> None:
    """A late handler that needs to do nothing but consume the callback."""


def _library_path() -> Path:
    override = os.environ.get("LIVEKIT_LIB_PATH", "").strip()
    if override:
        return Path(override)
    if sys.platform.startswith("linux"):
        name = "liblivekit_ffi.so"
    elif sys.platform == "darwin":
        name = "liblivekit_ffi.dylib"
    else:  # pragma: no cover - Linux is the supported platform
        name = "livekit_ffi.dll"
    return wheel_root() / "resources" / name


@final
class Bridge:
    """The process-wide connection to the native core.  Use :func:`get_bridge`."""

    def __init__(self) -> None:
        from ._ffi import ffi, lib

        self._ffi = ffi
        self._lib = lib
        self._pid = os.getpid()
        self._forked = False  # set in a child of fork(): read on the hot path instead of getpid()
        path = _library_path()
        err = ffi.new("char[]", 512)
        if lib.lk_shim_open(str(path).encode(), err, 512) != 0:
            reason = ffi.string(err).decode(errors="replace")
            raise NativeError(f"cannot load the LiveKit native library: {reason}")
        self.library_path = path
        self._core: Correlator[Receiver, Sink] = Correlator()
        self._spin = SpinPolicy()  # which kinds of lone request spin for their callback
        self._live_handles = 0
        self._driver: Driver | None = None
        self._driver_lock = threading.Lock()
        self._disposed = False
        self._lost_seen = 0  # the shim's lost-event count the pending waiters were failed for
        self._lost_out = ffi.new("uint64_t *")  # where each drain (loop thread) writes it
        self._wakeup_fd: int = lib.lk_shim_wakeup_fd()
        # ``livekit_ffi_request`` writes its response pointer and length through out-parameters,
        # and cffi releases the GIL during the call: threads sharing one pair read each other's
        # responses (measured: a quarter of concurrent converts got another thread's frame, and
        # thousands of responses failed to parse).  So each thread has its own pair.
        self._out = threading.local()
        self._count_lock = threading.Lock()  # guards _live_handles (adopted/dropped anywhere)
        lib.lk_shim_set_log_threshold(native_log_threshold())
        lib.lk_shim_initialize(True, SDK_NAME.encode(), SDK_VERSION.encode())
        atexit.register(self.dispose)
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        """A thread of the parent may have held these locks at fork(): nobody here releases them.

        The shim protects its own queue lock and stops using the wakeup fd in the child; the
        child's requests fail in :meth:`_check_usable` with a clear error.
        """
        self._forked = True
        self._driver_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._out = threading.local()

    # -- requests ----------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._forked:  # set in a child of fork(): a flag, not a getpid() per request
            raise LiveKitError(
                "lkanyio was used before fork(); the native core cannot cross fork(). "
                "Use lkanyio only in the process that forks, or only in the children."
            )
        if self._disposed:
            raise LiveKitError("the native core has been disposed (the process is exiting)")

    def _out_params(self) -> tuple[Any, Any]:
        """This thread's response pointer and length (allocated on its first request)."""
        out = self._out
        try:
            return out.res, out.res_len
        except AttributeError:
            out.res = self._ffi.new("const uint8_t **")
            out.res_len = self._ffi.new("size_t *")
            return out.res, out.res_len

    def request(self, request: ffi_pb2.FfiRequest) -> ffi_pb2.FfiResponse:
        """Send a request and return its (synchronous) response.

        Safe from any thread: each thread has its own response buffer, and the native core
        serializes what it must.

        Raises:
            NativeError: if the native core rejects the request (handle 0: unknown or wrong-kind
                handle, malformed request).
        """
        self._check_usable()
        data = request.SerializeToString()
        res, res_len = self._out_params()
        handle = self._lib.lk_shim_request(data, len(data), res, res_len)
        if handle == 0:
            which = request.WhichOneof("message")
            raise NativeError(
                f"the native core rejected the '{which}' request (an unknown, closed or "
                "wrong-kind handle, or a malformed request)"
            )
        try:
            return ffi_pb2.FfiResponse.FromString(self._ffi.buffer(res[0], res_len[0])[:])
        finally:
            self._lib.lk_shim_drop_handle(handle)

    def _send(self, request: ffi_pb2.FfiRequest, which: str) -> None:
        """Send a request whose response carries nothing but the async id we chose."""
        self._check_usable()
        data = request.SerializeToString()
        handle = self._lib.lk_shim_request(data, len(data), *self._out_params())
        if handle == 0:
            raise NativeError(
                f"the native core rejected the '{which}' request (an unknown, closed or "
                "wrong-kind handle, or a malformed request)"
            )
        self._lib.lk_shim_drop_handle(handle)

    async def request_async(
        self,
        request: ffi_pb2.FfiRequest,
        *,
        on_deliver: Callable[[Any], T] | None = None,
        on_late: Receiver | None = None,
        on_abandon: Callable[[T], object] | None = None,
        cancel_checked: bool = False,
    ) -> Any:
        """Send an async request and wait for its callback.

        In a scope already cancelled nothing is sent: the cancellation is raised at once.
        Otherwise the waiter is registered before the request is sent.  If the caller is
        cancelled (or anything fails) the waiter is withdrawn; a callback that still arrives
        goes to ``on_late`` (to free what it owns), or is counted and dropped.

        A cancelled request never swallows its cancellation, not even when its callback was
        already delivered and the caller only had not resumed yet: returning the result and
        re-arming the cancel instead is unsafe with anyio's cancel scopes on asyncio (the
        re-armed cancellation can escape the scope that asked for it).  So a request cancelled
        after delivery gives its result back: ``on_abandon`` undoes what ``on_deliver``
        adopted (it is called once, with what ``on_deliver`` returned), and without
        ``on_deliver``, ``on_late`` gets the message.  Exactly one of "the caller got the
        result" and "the undo ran" happens.  (On trio a task already woken with its result
        returns it; a cancel requested after that is delivered at the caller's next
        checkpoint, as trio always does.)

        Args:
            request: an ``FfiRequest`` with its oneof set; its ``request_async_id`` is filled in.
            on_deliver: runs synchronously in the dispatcher the moment the callback arrives,
                before any later event is routed (so state it records is visible to the events
                that follow); its return value is the result, its exception is raised here.
            on_late: cleanup for a callback nobody will read.
            on_abandon: undoes an adoption the caller will never see (the caller was cancelled
                after ``on_deliver`` succeeded); runs synchronously in the cancelled task and
                must not block.  Its errors are logged: the cancellation is what propagates.
            cancel_checked: the caller has just checked for a pending cancellation itself,
                with no await since, so this does not check again.

        Returns:
            The callback message (the ``FfiEvent`` oneof member of the same name), or what
            ``on_deliver`` returned.
        """
        which = request.WhichOneof("message")
        if which is None:
            raise ValueError("empty FfiRequest")
        self._check_usable()
        driver = self.ensure_driver()
        # A request made where a cancellation is already pending raises it before anything is
        # sent (trio would only raise it after the send, at the wait).  Without this, anyio on
        # asyncio could let one through: it skips a task whose awaited future is already done,
        # so a callback answered in the loop iteration that delivers a ``move_on_after(0)``
        # returned its result and the scope ended without a cancellation.
        if not cancel_checked:
            await checkpoint_if_cancelled()
        waiter = _Waiter(on_deliver)
        core = self._core
        async_id = core.register(waiter)
        getattr(request, which).request_async_id = async_id
        try:
            self._send(request, which)
        except BaseException:
            core.forget(async_id)
            raise
        may_spin = core.waiting_count() == 1 and driver.idle() and self._spin.should_spin(which)
        try:
            if may_spin:
                # Latency path: this is the only request in flight and no other task is ready
                # to run.  Many callbacks come back within microseconds, and the shim needs no
                # GIL, so draining its queue for a bounded moment saves the sleep in the
                # selector and the thread wakeup that would follow.  The request's schedule
                # point comes first, while the native core works on it (a loop iteration is
                # shorter than the core's answer), so it costs no wall time.  With runnable
                # tasks (say, a batch of requests being started, or a task an event drained
                # by the spin woke) spinning would delay them, so the request parks instead.
                # Kinds whose callbacks keep coming after the spin (a capture into a full
                # audio queue) back off: the spin policy learns that per kind.
                await checkpoint()
                if waiter.done:  # answered while the loop ran
                    self._spin.record(which, True)
                elif core.waiting_count() == 1:
                    self._spin_for(waiter, driver.idle, which)
                if waiter.done:
                    # A cancellation requested while it was delivered (say by what routing
                    # the other events drained with it did) still reaches this caller.
                    await checkpoint_if_cancelled()
            # Only the loop's drain delivers, so a request that did not take the checkpoint
            # above is unanswered here and parks: every request has a schedule point.
            if not waiter.done:
                if driver.create_future is not None:
                    waiter.future = future = driver.create_future()
                    await future
                else:
                    waiter.task = driver.current_task()
                    waiter.wake = driver.reschedule
                    await driver.wait_task_rescheduled(waiter.abort)
        except BaseException:
            if not core.abandon(async_id, on_late) and waiter.done:
                # Delivered, but the caller is cancelled before it resumed: nobody will see
                # the result, so undo what was adopted (the cancellation still propagates).
                self._undo_delivered(waiter, on_deliver, on_late, on_abandon)
            raise
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _spin_for(self, waiter: _Waiter, idle: Callable[[], bool], which: str) -> None:
        """Drain the shim's queue for a lone request's answer (see :meth:`request_async`).

        Stops when ``waiter`` is answered, another task is ready to run, or ``_SPIN_NS`` has
        passed, and tells the spin policy how it went unless it was cut short for a task.
        """
        deadline = perf_counter_ns() + _SPIN_NS
        pump = self._pump
        while not waiter.done and idle() and perf_counter_ns() < deadline:
            pump()
            if not waiter.done:
                _yield_cpu()  # the core's threads answer sooner (p99, 2 cores)
        if waiter.done or idle():  # not cut short for another task
            self._spin.record(which, waiter.done)

    @staticmethod
    def _undo_delivered(
        waiter: _Waiter,
        on_deliver: Callable[[Any], T] | None,
        on_late: Receiver | None,
        on_abandon: Callable[[T], object] | None,
    ) -> None:
        """Hand a delivered result its caller will never see to the undo that fits it."""
        if waiter.error is not None:
            return  # ``on_deliver`` refused the callback: nothing was adopted
        try:
            if on_deliver is not None:
                if on_abandon is not None:
                    on_abandon(waiter.result)
            elif on_late is not None:
                on_late(waiter.message)
        except Exception:
            _log.exception("lkanyio: undoing a cancelled request's result failed")

    def request_detached(self, request: ffi_pb2.FfiRequest, on_done: Receiver | None) -> bool:
        """Send an async request nobody waits for; ``on_done`` gets its callback (sync).

        Used for cleanup that must happen even though its caller is gone (for example
        disconnecting a room whose connect was cancelled).  Errors are logged, not raised.

        Returns:
            Whether the request was sent (if not, ``on_done`` will never run).
        """
        which = request.WhichOneof("message")
        if which is None or self._disposed or self._pid != os.getpid():
            return False
        core = self._core
        async_id = core.register(_drop)
        core.abandon(async_id, on_done if on_done is not None else _drop)
        getattr(request, which).request_async_id = async_id
        try:
            self.request(request)
        except Exception:
            core.forget(async_id)
            _log.exception("lkanyio: background %s request failed", which)
            return False
        return True

    # -- handles -----------------------------------------------------------------------------

    def adopted(self) -> None:
        """Count one more native handle owned by a live Python object (any thread)."""
        with self._count_lock:
            self._live_handles += 1

    def disowned(self) -> None:
        """Count one handle fewer: dropped, or handed over to the native core (any thread)."""
        with self._count_lock:
            self._live_handles -= 1

    def drop_handle(self, handle: int) -> None:
        """Release a native handle (no-op after dispose or in a forked child)."""
        self.disowned()
        if self._disposed or self._forked:
            return
        self._lib.lk_shim_drop_handle(handle)

    def drop_native(self, handle: int) -> None:
        """Release a native handle no :class:`OwnedHandle` owns (e.g. from a late callback)."""
        if handle and not self._disposed and not self._forked:
            self._lib.lk_shim_drop_handle(handle)

    # -- keyed events ------------------------------------------------------------------------

    def bind(self, handle: int, sink: Sink) -> None:
        """Route every event keyed by ``handle`` to ``sink`` (called in the event loop thread)."""
        self._check_usable()
        self.ensure_driver()
        self._core.bind(handle, sink)

    def unbind(self, handle: int) -> None:
        """Stop routing ``handle`` (any thread: a finalizer may call it)."""
        self._core.unbind(handle)

    # -- the driver --------------------------------------------------------------------------

    def ensure_driver(self) -> Driver:
        """Make sure the running event loop wakes up for native events; return its driver.

        The loop is found without sniffio: this also runs inside the dispatcher (an asyncio
        reader callback runs outside any task, where sniffio cannot name the library, and only
        ``anyio.run`` sets its context variable), so it asks the loops themselves.

        Raises:
            RuntimeError: if no asyncio or trio loop runs in this thread, or another event
                loop is serving the bridge right now (lkanyio serves one running loop per
                process at a time).
        """
        driver = self._driver
        if driver is not None and driver.alive and driver.is_current():
            return driver
        library, loop = running_loop()
        with self._driver_lock:  # two threads' loops must not both install a driver
            driver = self._driver
            if driver is not None and driver.alive:
                if driver.loop is loop:
                    return driver
                if driver.running():
                    raise RuntimeError(
                        "lkanyio serves one running event loop per process at a time, and "
                        "another one (in thread "
                        f"{driver.thread}) is using it now; run lkanyio in that loop (from "
                        "other threads use anyio.from_thread or a blocking portal into it), "
                        "or start this loop after that one has finished"
                    )
                driver.stop()
            driver = install_driver(library, loop, self._wakeup_fd, self._pump)
            self._driver = driver
        # Events may have queued while no loop was listening.
        self._pump()
        return driver

    def _pump(self) -> None:
        """Take every queued event from the shim and route it (synchronous, in the loop).

        In a child of fork() that kept running its parent's loop, the reader still fires (the
        epoll set is shared with the parent, so it must not be unregistered either): it returns
        at once and leaves the wakeup fd to the parent.
        """
        if self._disposed or self._forked:  # a flag, not a getpid() syscall per wakeup
            return
        lib = self._lib
        lost = self._lost_out
        head = lib.lk_shim_drain(lost)
        if lost[0] != self._lost_seen:
            self._fail_waiters(int(lost[0]))
        if head == self._ffi.NULL:
            return
        buffer = self._ffi.buffer
        dispatch = self._dispatch
        route = self._core.route
        null = self._ffi.NULL
        try:
            ev = head
            while ev != null:
                try:
                    # A media frame event: the shim read its stream and buffer handles, so it
                    # is routed (or, unrouted, its buffer released) without a Python parse; the
                    # consumer parses what it receives.  An audio frame usually comes with its
                    # samples copied behind the event (its buffer already released): no parse.
                    stream = ev.stream
                    sink = route(stream) if stream else None
                    frame = getattr(sink, "frame", None)
                    if frame is not None:
                        samples = ev.samples_len
                        if samples:
                            media: Any = sink  # a media stream's sink (see Sink)
                            media.audio(
                                bytearray(buffer(ev.data + ev.len, samples)),
                                ev.sample_rate,
                                ev.num_channels,
                                ev.samples_per_channel,
                            )
                        else:
                            frame(buffer(ev.data, ev.len)[:], ev.buffer)
                    elif stream and sink is None:
                        self.drop_native(ev.buffer)  # unrouted (counted): release, no parse
                    else:
                        dispatch(buffer(ev.data, ev.len)[:])
                except Exception:  # a bug in a sink must not stop the routing of others
                    _log.exception("lkanyio: error while routing a native event")
                ev = ev.next
        finally:
            lib.lk_shim_free_events(head)

    def _fail_waiters(self, lost: int) -> None:
        """The shim lost events (malloc failed): fail every pending request loudly.

        The shim cannot tell whose callback it lost, so every request waiting now may never
        get one; failing them all beats a waiter that hangs forever.
        """
        count = lost - self._lost_seen
        self._lost_seen = lost
        _log.error("lkanyio: the native shim ran out of memory and lost %d event(s)", count)
        for receiver in self._core.take_waiting():
            if isinstance(receiver, _Waiter):
                receiver.fail(
                    NativeError(
                        f"out of memory: the native shim lost {count} event(s), possibly this "
                        "request's result; its outcome is unknown"
                    )
                )

    # -- media frame bounds (the shim's queue) -----------------------------------------------

    def bound_stream(self, handle: int, max_buffered: int, *, drop_oldest: bool) -> None:
        """Bound the frames of media stream ``handle`` the shim may queue (its Python policy).

        Raises:
            MemoryError: the shim could not grow its stream table.
        """
        if self._disposed or self._pid != os.getpid():
            return
        bound = max_buffered if drop_oldest else max_buffered + 1
        if self._lib.lk_shim_bound_stream(handle, min(bound, 2**32 - 1), drop_oldest) != 0:
            raise MemoryError("the native shim could not bound a media stream")

    def unbound_stream(self, handle: int) -> int:
        """Forget the bound of ``handle``; return how many of its frames the shim dropped."""
        if self._disposed or self._pid != os.getpid():
            return 0
        return int(self._lib.lk_shim_unbound_stream(handle))

    def stream_dropped(self, handle: int) -> int:
        """How many frames of bounded stream ``handle`` the shim has dropped."""
        if self._disposed or self._pid != os.getpid():
            return 0
        return int(self._lib.lk_shim_stream_dropped(handle))

    def stream_queued(self, handle: int) -> int:
        """How many frame events of bounded stream ``handle`` the shim holds now."""
        if self._disposed or self._pid != os.getpid():
            return 0
        return int(self._lib.lk_shim_stream_queued(handle))

    def _dispatch(self, data: Any) -> None:
        # What kind of event this is is decided in the sans-IO core; only the I/O is here.
        action, message, key = classify(ffi_pb2.FfiEvent.FromString(data))
        if action is Action.ROUTE:
            sink = self._core.route(key)
            if sink is not None:
                sink(message)
            else:
                self._drop_owned(message)
        elif action is Action.RESOLVE:
            receiver = self._core.resolve(key)
            if receiver is not None:
                receiver(message)
            else:
                self._drop_owned(message)
        elif action is Action.LOGS:
            forward_logs(message)
        elif action is Action.PANIC:
            native_log.critical("native core panic: %s", redact(getattr(message, "message", "")))

    def _drop_owned(self, message: Any) -> None:
        """Release every native handle an event carries when nobody will take it.

        Unrouted stream events still own their frame buffers, and a late callback nobody
        claimed may own a room, a publication or a reader: without this they would leak.
        """
        for handle in _owned_handle_ids(message):
            self.drop_native(handle)

    # -- lifecycle ---------------------------------------------------------------------------

    def dispose(self) -> None:
        """Shut the native core down (at process exit; idempotent, no-op in a forked child)."""
        if self._disposed or self._pid != os.getpid():
            return
        self._disposed = True
        driver = self._driver
        if driver is not None:
            driver.alive = False
        self._lib.lk_shim_dispose()
        self._lib.lk_shim_free_events(self._lib.lk_shim_drain(self._ffi.NULL))

    @property
    def disposed(self) -> bool:
        """Whether the native core has been shut down (at process exit)."""
        return self._disposed

    def statistics(self) -> BridgeStatistics:
        """Return a snapshot of the counters (see :class:`BridgeStatistics`)."""
        core = self._core.statistics()
        queued = self._ffi.new("uint64_t *")
        total = self._ffi.new("uint64_t *")
        lost = self._ffi.new("uint64_t *")
        filtered = self._ffi.new("uint64_t *")
        self._lib.lk_shim_stats(queued, total, lost, filtered)
        frames = self._ffi.new("uint64_t *")
        frames_dropped = self._ffi.new("uint64_t *")
        self._lib.lk_shim_frame_stats(frames, frames_dropped)
        waiting = self._core.waiting_count()
        return BridgeStatistics(
            started=True,
            pending_requests=waiting,
            late_handlers=core.pending - waiting,
            bound_handles=core.bound_handles,
            live_handles=self._live_handles,
            delivered=core.delivered,
            late_callbacks=core.late,
            foreign_callbacks=core.foreign,
            unrouted_events=core.unrouted,
            queued_events=int(queued[0]),
            events_received=int(total[0]),
            events_lost=int(lost[0]),
            logs_filtered=int(filtered[0]),
            live_subscriptions=live_streams(),
            queued_frames=int(frames[0]),
            frames_dropped=int(frames_dropped[0]),
        )


_bridge: Bridge | None = None
_bridge_lock = threading.Lock()


def _reset_bridge_lock() -> None:
    global _bridge_lock
    _bridge_lock = threading.Lock()  # another thread of the parent may have held it at fork()


os.register_at_fork(after_in_child=_reset_bridge_lock)


def get_bridge() -> Bridge:
    """Return the process-wide bridge, loading the native core on first use."""
    global _bridge
    bridge = _bridge
    if bridge is not None:
        return bridge
    with _bridge_lock:
        if _bridge is None:
            _bridge = Bridge()
        return _bridge


def statistics() -> BridgeStatistics:
    """Return lkanyio's process-wide counters: pending requests, routed handles, live handles.

    After every ``async with`` block has ended, ``pending_requests``, ``bound_handles``,
    ``live_handles`` and ``live_subscriptions`` are zero: that is the leak check lkanyio's own
    tests run.  Calling this
    does not load the native core.
    """
    if _bridge is None:
        return BridgeStatistics(False, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, live_streams(), 0, 0)
    return _bridge.statistics()
