"""Media: tracks, sources and streams of audio and video frames, and what works on frames.

* ``_track`` — local and remote tracks (views over native track handles);
* ``_audio_frame`` — :class:`~lkanyio.AudioFrame`; ``_audio`` — audio sources, streams,
  resampler; ``_video`` — video frames, sources, streams;
* ``_frame_stream`` — the stream base both audio and video streams are built on;
* ``_encoded_video`` — pre-encoded video sources and streams;
* ``_devices`` — the platform's audio devices; ``_apm`` — the audio processing module
  (echo cancellation, noise suppression, gain control); ``_frame_processors`` — user frame
  processors and noise cancellation; ``_mixer`` — the audio mixer;
* ``_av_sync`` — the audio/video synchronizer.

Media sits above the native layer and the sans-IO core and below the room: nothing here
imports the room shell or its features at run time.
"""
