"""An official-SDK (``livekit.rtc``) participant for the video interop tests.

Run in a child process (one FFI server per process): ``python rtc_video_peer.py URL TOKEN``.
It publishes a VP9 camera track (left half red, right half blue, 640x360) and reads every
video track it subscribes to.  JSON lines on stdout: ``{"ready": identity}`` once connected
and publishing; ``{"video": {"sid", "mime", "width", "height", "left", "right"}}`` for the
first frame of each subscribed track that has the full size (``left``/``right``: mean RGB of
each half's middle); ``{"error": "..."}`` on a failure.  EOF on stdin leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from livekit import rtc

from _rtc_peer_exit import run_and_exit

W, H = 640, 360
LEFT, RIGHT = (220, 30, 30), (40, 40, 220)


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def halves(frame: rtc.VideoFrame) -> tuple[list[float], list[float]]:
    rgba = frame.convert(rtc.VideoBufferType.RGBA)
    data, stride = bytes(rgba.data), rgba.width * 4
    means = []
    for x0 in (0.1, 0.6):
        left, right = int(rgba.width * x0), int(rgba.width * (x0 + 0.3))
        sums, n = [0, 0, 0], 0
        for y in range(int(rgba.height * 0.2), int(rgba.height * 0.8), 8):
            row = data[y * stride + left * 4 : y * stride + right * 4]
            for c in range(3):
                sums[c] += sum(row[c::4])
            n += right - left
        means.append([s / n for s in sums])
    return means[0], means[1]


async def main(url: str, token: str) -> None:
    room = rtc.Room()
    tasks: set[asyncio.Task[None]] = set()

    async def read(track: rtc.RemoteVideoTrack, publication: rtc.RemoteTrackPublication) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for event in stream:
                frame = event.frame
                if (frame.width, frame.height) == (W, H):
                    left, right = halves(frame)
                    emit({"video": {"sid": publication.sid, "mime": publication.mime_type,
                                    "width": frame.width, "height": frame.height,
                                    "left": left, "right": right}})
                    break
        finally:
            await stream.aclose()

    @room.on("track_subscribed")
    def on_track(track: rtc.Track, publication: rtc.RemoteTrackPublication, _p: Any) -> None:
        if isinstance(track, rtc.RemoteVideoTrack):
            task = asyncio.get_running_loop().create_task(read(track, publication))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    await room.connect(url, token)
    source = rtc.VideoSource(W, H)
    track = rtc.LocalVideoTrack.create_video_track("rtc-cam", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.VP9, simulcast=False
    )
    await room.local_participant.publish_track(track, options)
    row = bytes([*LEFT, 255]) * (W // 2) + bytes([*RIGHT, 255]) * (W // 2)
    picture = rtc.VideoFrame(W, H, rtc.VideoBufferType.RGBA, row * H)

    async def feed() -> None:
        while True:
            source.capture_frame(picture)
            await asyncio.sleep(1 / 30)

    feeder = asyncio.get_running_loop().create_task(feed())
    emit({"ready": room.local_participant.identity})
    loop = asyncio.get_running_loop()
    try:
        while await loop.run_in_executor(None, sys.stdin.readline):
            pass
    finally:
        feeder.cancel()
        await room.disconnect()


if __name__ == "__main__":
    run_and_exit(main(*sys.argv[1:3]))
