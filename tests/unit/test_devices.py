"""Platform audio (WebRTC's device module) with the real native library on a machine without
sound devices: the options' checks, the clear error, and the microphone-source request.
"""

from __future__ import annotations

import dataclasses

import pytest

import lkanyio
from lkanyio import PlatformAudioOptions, PlatformAudioSource

pytestmark = pytest.mark.anyio


def test_platform_audio_options_default_to_webrtc_processing_on() -> None:
    options = PlatformAudioOptions()
    assert options.echo_cancellation
    assert options.noise_suppression
    assert options.auto_gain_control
    assert not options.prefer_hardware
    off = PlatformAudioOptions(
        echo_cancellation=False, noise_suppression=False, auto_gain_control=False,
        prefer_hardware=True,
    )
    message = off._to_proto()
    assert (message.echo_cancellation, message.noise_suppression,
            message.auto_gain_control, message.prefer_hardware) == (False, False, False, True)


@pytest.mark.parametrize(
    "name", ["echo_cancellation", "noise_suppression", "auto_gain_control", "prefer_hardware"]
)
@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_platform_audio_options_take_only_bools(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"{name} must be a bool"):
        PlatformAudioOptions(**{name: value})  # type: ignore[arg-type]


def test_platform_audio_options_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        PlatformAudioOptions(True)  # type: ignore[misc]
    options = PlatformAudioOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.echo_cancellation = False  # type: ignore[misc]


async def test_a_microphone_source_needs_an_open_platform_audio() -> None:
    # No sound devices here: the native core refuses to start its device module, so there is
    # no PlatformAudio to make a microphone source from.
    with pytest.raises(lkanyio.AudioDeviceError, match="Failed to initialize platform audio"):
        async with lkanyio.PlatformAudio() as audio:
            audio.create_audio_source()
    audio = lkanyio.PlatformAudio()
    with pytest.raises(lkanyio.AudioDeviceError, match="not open"):
        audio.create_audio_source()
    with pytest.raises(lkanyio.AudioDeviceError, match="not open"):
        audio.create_audio_source(PlatformAudioOptions(noise_suppression=False))
    with pytest.raises(TypeError, match="PlatformAudioOptions"):
        audio.create_audio_source({"noise_suppression": False})  # type: ignore[arg-type]
    audio.close()
    assert "closed" in repr(audio)


async def test_the_native_core_accepts_the_microphone_source_request() -> None:
    # Measured: the native core does not check the platform-audio handle of a platform
    # source (none, 0, unknown or another object's all give a source), which is why the public
    # path only passes an open PlatformAudio's.  Handle 0 lets this machine check the request
    # lkanyio builds, and that a track is built on the source.
    options = PlatformAudioOptions(echo_cancellation=False, prefer_hardware=True)
    async with PlatformAudioSource(0, options) as source:
        assert source.options is options
        assert not source.closed
        assert "open" in repr(source)
        async with lkanyio.LocalAudioTrack.create_audio_track("mic", source) as track:
            assert track.source is source
            assert track.kind == lkanyio.TrackKind.AUDIO
    assert source.closed
    source.close()  # idempotent
    assert "closed" in repr(source)
    with pytest.raises(lkanyio.ResourceClosedError):
        lkanyio.LocalAudioTrack.create_audio_track("mic", source)
    with pytest.raises(TypeError, match="AudioSource or a PlatformAudioSource"):
        lkanyio.LocalAudioTrack.create_audio_track("mic", options)  # type: ignore[arg-type]
