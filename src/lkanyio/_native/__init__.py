"""The native layer: the only place that knows cffi, the C shim and the protobuf plumbing.

* ``_ffi`` — the cffi extension built from ``native/`` (the shim; ``typings/`` has its stub);
* ``_proto`` — the pinned ``livekit`` wheel's protocol modules, loaded under a private name;
* ``_bridge`` — the process-wide :class:`~lkanyio._native._bridge.Bridge`: requests, event
  routing through the sans-IO correlator, the shim's queue;
* ``_backends`` — one driver per event loop library (asyncio, trio) behind one interface;
* ``_handles`` — native handles owned by Python objects; ``_memory`` — copies of native memory;
* ``_logs`` — the native core's log records forwarded into :mod:`logging`;
* ``_requests`` — typed request builders, so no feature writes protobuf enum fields by hand.

Nothing is imported here: ``_proto`` must load without the bridge (the sans-IO core and the
enumerations use its message types).
"""
