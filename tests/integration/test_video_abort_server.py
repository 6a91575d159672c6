"""Tiny video sources publish through the server without aborting (see unit/test_video_abort)."""

from __future__ import annotations

import json
from typing import Any

from _children import _COMMON, run_child
from _util import EVENT_WAIT, TokenFactory

_PUBLISH_CHILD = (
    _COMMON
    + r"""
import anyio

async def main():
    url, alice_token, bob_token = sys.argv[1:4]
    cases = json.loads(sys.argv[4])
    async with (
        lkanyio.connect(url, alice_token) as alice,
        lkanyio.connect(url, bob_token) as bob,
        bob.events() as events,
        anyio.create_task_group() as tg,
    ):
        received = {}
        async def publish(index, t, w, h):
            async with (
                lkanyio.VideoSource(w, h) as source,
                lkanyio.LocalVideoTrack.create_video_track(f"t{index}", source) as track,
            ):
                await alice.local_participant.publish_track(track)
                frame = solid(V[t], w, h, (30, 200, 40))
                while True:
                    source.capture_frame(frame)
                    await anyio.sleep(1 / 15)

        async def receive(track):
            async with lkanyio.VideoStream(track) as stream:
                async for event in stream:
                    index = int(track.name[1:])
                    received[index] = [event.frame.width, event.frame.height]
                    return

        for index, (t, w, h) in enumerate(cases):
            tg.start_soon(publish, index, t, w, h)
        with anyio.fail_after(float(sys.argv[5])):
            subscribed = 0
            async for event in events:
                if isinstance(event, lkanyio.TrackSubscribed):
                    tg.start_soon(receive, event.track)
                    subscribed += 1
                    if subscribed == len(cases):
                        break
            while len(received) < len(cases):
                await anyio.sleep(0.05)
        for index, case in enumerate(cases):
            emit(case=case, got=received[index])
        tg.cancel_scope.cancel()
    emit(done=True)

anyio.run(main)
"""
)


def test_tiny_sources_publish_through_the_server(
    server_info: Any, token_factory: TokenFactory, room_name: str
) -> None:
    # Simulcast layers scale the source down: none of them may reach zero pixels.
    cases = [
        ["RGBA", 4, 4],
        ["RGBA", 5, 7],
        ["I420", 4, 64],
        ["NV12", 64, 4],
        ["I010", 7, 5],
        ["I444", 8, 8],
        ["ABGR", 4, 4],
    ]
    results = run_child(
        _PUBLISH_CHILD,
        server_info.url,
        token_factory("alice", room_name),
        token_factory("bob", room_name),
        json.dumps(cases),
        str(EVENT_WAIT),
    )
    assert [r["case"] for r in results] == cases
    for r in results:
        _t, w, h = r["case"]
        got_w, got_h = r["got"]
        assert 0 < got_w <= w, r
        assert 0 < got_h <= h, r
