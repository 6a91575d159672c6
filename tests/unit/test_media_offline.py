"""Media parity with livekit.rtc, offline: publish options, frame metadata, planes, audio helpers.

Everything here runs against the real native core without a server (the round trips through
the server are in tests/integration/test_media_parity.py).
"""

from __future__ import annotations

import array
import io
import sys
import wave

import pytest

import lkanyio
from _media import tone_frame
from _util import seeded_frame
from lkanyio import VideoBufferType as VBT

pytestmark = pytest.mark.usefixtures("no_leaks_after")

PALETTE = [(220, 30, 30), (30, 200, 40), (40, 40, 220), (230, 220, 40)]


def quadrants(width: int, height: int) -> lkanyio.VideoFrame:
    tl, tr, bl, br = (bytes([*c, 255]) for c in PALETTE)
    top = (tl * (width // 2) + tr * (width // 2)) * (height // 2)
    bottom = (bl * (width // 2) + br * (width // 2)) * (height // 2)
    return lkanyio.VideoFrame(width, height, VBT.RGBA, top + bottom)


# --- publish options --------------------------------------------------------------------------


def test_publish_options_check_their_fields() -> None:
    options = lkanyio.TrackPublishOptions(
        video_codec=lkanyio.VideoCodec.AV1,
        video_encoder=lkanyio.VideoEncoderBackend.SOFTWARE,
        scalability_mode="L1T3",
        degradation_preference=lkanyio.DegradationPreference.MAINTAIN_RESOLUTION,
        preconnect_buffer=False,
        frame_metadata_features=[lkanyio.FrameMetadataFeature.FRAME_ID],  # type: ignore[arg-type]
    )
    assert options.frame_metadata_features == (lkanyio.FrameMetadataFeature.FRAME_ID,)
    with pytest.raises(ValueError, match="VideoCodec"):
        lkanyio.TrackPublishOptions(video_codec=9)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="VideoEncoderBackend"):
        lkanyio.TrackPublishOptions(video_encoder="nvenc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DegradationPreference"):
        lkanyio.TrackPublishOptions(degradation_preference=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="preconnect_buffer"):
        lkanyio.TrackPublishOptions(preconnect_buffer=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scalability_mode"):
        lkanyio.TrackPublishOptions(scalability_mode=3)  # type: ignore[arg-type]
    # An unknown name failed the publish natively and broke the track's next publish.
    with pytest.raises(ValueError, match="unknown scalability mode 'L4T4'; one of: L1T1"):
        lkanyio.TrackPublishOptions(scalability_mode="L4T4")
    for mode in ("L1T1", "L3T3_KEY", "L2T2_KEY_SHIFT", "S3T3h"):
        assert lkanyio.TrackPublishOptions(scalability_mode=mode).scalability_mode == mode
    with pytest.raises(TypeError, match="tuple of FrameMetadataFeature"):
        lkanyio.TrackPublishOptions(frame_metadata_features="FRAME_ID")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="FrameMetadataFeature"):
        lkanyio.TrackPublishOptions(frame_metadata_features=(7,))  # type: ignore[arg-type]


def test_frame_metadata_checks_its_fields() -> None:
    assert lkanyio.FrameMetadata().frame_id is None
    with pytest.raises(ValueError, match="frame_id"):
        lkanyio.FrameMetadata(frame_id=1 << 32)
    with pytest.raises(ValueError, match="user_timestamp"):
        lkanyio.FrameMetadata(user_timestamp=-1)
    with pytest.raises(TypeError, match="user_data"):
        lkanyio.FrameMetadata(user_data="text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="frame_id"):
        lkanyio.FrameMetadata(frame_id=True)


@pytest.mark.anyio
async def test_capture_frame_refuses_other_metadata() -> None:
    async with lkanyio.VideoSource(16, 16) as source:
        with pytest.raises(TypeError, match="FrameMetadata"):
            source.capture_frame(
                lkanyio.VideoFrame.create(16, 16, VBT.RGBA),
                metadata={"frame_id": 1},  # type: ignore[arg-type]
            )


# --- planes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(VBT), ids=lambda t: t.name)
def test_get_plane_views_each_plane_of_the_frame(layout: VBT) -> None:
    from lkanyio._media._video import planes

    width, height = 7, 5  # odd: chroma planes round up
    frame = seeded_frame(layout, width, height)
    layout_planes = planes(layout, width, height)
    assert frame.plane_count == len(layout_planes)
    offset = 0
    for index, (_stride, size) in enumerate(layout_planes):
        plane = frame.get_plane(index)
        assert plane.nbytes == size
        assert bytes(plane) == bytes(frame.data[offset : offset + size])
        offset += size
    assert offset == frame.data.nbytes
    # Zero-copy and writable: a write through a plane is a write to the frame.
    last = frame.get_plane(frame.plane_count - 1)
    last[0] ^= 0xFF
    assert frame.data[offset - layout_planes[-1][1]] == last[0]
    with pytest.raises(IndexError, match="planes 0 to"):
        frame.get_plane(frame.plane_count)
    with pytest.raises(IndexError):
        frame.get_plane(-1)
    with pytest.raises(TypeError):
        frame.get_plane(1.0)  # type: ignore[arg-type]


def test_i420_planes_are_y_u_v() -> None:
    frame = quadrants(64, 32).convert(VBT.I420)
    y, u, v = (frame.get_plane(i) for i in range(3))
    assert (y.nbytes, u.nbytes, v.nbytes) == (64 * 32, 32 * 16, 32 * 16)
    # The top-left quadrant is red: high V (Cr), below-mid U (Cb).
    assert v[0] > 200
    assert u[0] < 128


# --- audio helpers ----------------------------------------------------------------------------



@pytest.mark.parametrize(("rate", "channels"), [(48000, 1), (16000, 2), (8000, 6)])
def test_to_wav_bytes_reads_back_as_the_frame(rate: int, channels: int) -> None:
    frame = tone_frame(440, rate=rate, channels=channels, ms=30)
    with wave.open(io.BytesIO(frame.to_wav_bytes()), "rb") as wav:
        assert wav.getnchannels() == channels
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == rate
        assert wav.getnframes() == frame.samples_per_channel
        read = wav.readframes(wav.getnframes())
    samples = array.array("h", read)
    if sys.byteorder != "little":
        samples.byteswap()
    back = lkanyio.AudioFrame(
        samples,
        sample_rate=rate,
        num_channels=channels,
        samples_per_channel=frame.samples_per_channel,
    )
    assert back == frame


def test_userdata_is_a_dict_of_the_frame_alone() -> None:
    frame = tone_frame(440)
    assert frame.userdata == {}
    frame.userdata["speaker"] = "alice"
    assert frame.userdata == {"speaker": "alice"}
    other = lkanyio.AudioFrame(
        frame.data, sample_rate=48000, num_channels=1, samples_per_channel=480
    )
    assert other.userdata == {}
    assert other == frame  # userdata is not audio: equality ignores it
    assert lkanyio.combine_audio_frames([frame]).userdata == {}


def test_combine_audio_frames_joins_them_in_order() -> None:
    a, b = tone_frame(440, channels=2), tone_frame(660, channels=2, ms=20)
    c = tone_frame(880, channels=2)
    combined = lkanyio.combine_audio_frames([a, b, c])
    assert (combined.sample_rate, combined.num_channels) == (48000, 2)
    assert combined.samples_per_channel == 480 + 960 + 480
    assert bytes(combined.data) == bytes(a.data) + bytes(b.data) + bytes(c.data)
    assert lkanyio.combine_audio_frames(iter([a])) == a
    assert lkanyio.combine_audio_frames(a) == a
    assert lkanyio.combine_audio_frames([a]) is not a  # a new frame, never an alias
    before = bytes(combined.data)
    a.data[0] = 123
    assert bytes(combined.data) == before  # the samples were copied


def test_combine_audio_frames_rejects_mismatches_clearly() -> None:
    mono48, mono16 = tone_frame(440), tone_frame(440, rate=16000)
    stereo48 = tone_frame(440, channels=2)
    with pytest.raises(
        ValueError, match=r"frame 1 has a sample rate of 16000 Hz, frame 0 of 48000"
    ):
        lkanyio.combine_audio_frames([mono48, mono16])
    with pytest.raises(ValueError, match=r"frame 2 has 2 channels, frame 0 has 1"):
        lkanyio.combine_audio_frames([mono48, mono48, stereo48])
    with pytest.raises(ValueError, match="at least one frame"):
        lkanyio.combine_audio_frames([])
    with pytest.raises(TypeError, match="frame 1 is a bytes"):
        lkanyio.combine_audio_frames([mono48, b"\0\0"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not bytes"):
        lkanyio.combine_audio_frames(b"\0\0")  # type: ignore[arg-type]
