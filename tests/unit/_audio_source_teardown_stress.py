"""Child of test_audio_source_teardown: close sources whose native queue is full, many times.

Each round queues 20 s into a 60 s queue (one capture) and closes the source at a random point of
the native core's 10 ms playout tick; with no track on it, the close destroys the native source
right away, while that tick may be moving the whole queue.  ``python FILE ROUNDS``.
"""

import random
import sys

import anyio

from lkanyio import AudioFrame, AudioSource

RATE = 48_000  # a child process: tests/_media.py is not on its path


async def main(rounds: int) -> None:
    samples = RATE * 20
    frame = AudioFrame(b"\x41\x42" * samples, sample_rate=RATE, num_channels=1,
                       samples_per_channel=samples)
    rng = random.Random(1234)
    for _ in range(rounds):
        source = AudioSource(RATE, 1, queue_size_ms=60_000)
        await source.capture_frame(frame)
        await anyio.sleep(rng.uniform(0.0, 0.012))
        source.close()
    print("done", rounds, flush=True)


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))
