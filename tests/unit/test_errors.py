"""One error family, and one map from the native core's error fields to it (no server)."""

from __future__ import annotations

import inspect

import pytest

import lkanyio
from lkanyio._errors import check_native, native_error
from lkanyio._native._proto import ffi_pb2

# Every class that reports a request the native core (or the server through it) refused.
NATIVE_FAILURES = [
    lkanyio.ConnectError,
    lkanyio.DataStreamError,
    lkanyio.DataTrackError,
    lkanyio.PublishDTMFError,
    lkanyio.PublishDataError,
    lkanyio.PublishTrackError,
    lkanyio.PublishTranscriptionError,
    lkanyio.UnpublishTrackError,
]


def test_every_public_exception_has_one_root() -> None:
    errors = [
        value
        for name in dir(lkanyio)
        if inspect.isclass(value := getattr(lkanyio, name)) and issubclass(value, BaseException)
    ]
    assert len(errors) >= len(NATIVE_FAILURES) + 5
    for error in errors:
        assert issubclass(error, lkanyio.LiveKitError), error


@pytest.mark.parametrize("kind", NATIVE_FAILURES, ids=lambda k: k.__name__)
def test_native_failures_are_native_errors(kind: type[Exception]) -> None:
    assert issubclass(kind, lkanyio.NativeError)
    assert issubclass(lkanyio.NativeError, lkanyio.LiveKitError)


def test_errors_lkanyio_raises_itself_are_not_native() -> None:
    for kind in (lkanyio.ResourceClosedError, lkanyio.ConnectionLostError,
                 lkanyio.EventStreamOverflowError, lkanyio.RpcError):
        assert not issubclass(kind, lkanyio.NativeError), kind


def test_a_string_error_field_maps_with_its_message() -> None:
    cb = ffi_pb2.FfiEvent().publish_data
    check_native(cb, lkanyio.PublishDataError)  # no error: nothing raised
    cb.error = "engine: data channel closed"
    with pytest.raises(lkanyio.PublishDataError, match=r"^engine: data channel closed$"):
        check_native(cb, lkanyio.PublishDataError)
    with pytest.raises(lkanyio.NativeError, match=r"^publish failed: engine: data channel"):
        check_native(cb, what="publish failed")


def test_message_shaped_errors_map_with_their_text() -> None:
    track = ffi_pb2.FfiEvent().publish_data_track
    check_native(track, lkanyio.DataTrackError)
    track.error.message = "duplicate name"
    with pytest.raises(lkanyio.DataTrackError, match=r"^duplicate name$"):
        check_native(track, lkanyio.DataTrackError)

    text = ffi_pb2.FfiEvent().send_text
    check_native(text, lkanyio.DataStreamError)
    text.error.description = "stream closed"
    error = native_error(text, lkanyio.DataStreamError, what="send_text failed")
    assert type(error) is lkanyio.DataStreamError
    assert str(error) == "send_text failed: stream closed"


def test_a_set_error_without_text_still_fails_and_says_so() -> None:
    track = ffi_pb2.FfiEvent().publish_data_track
    track.error.SetInParent()
    with pytest.raises(lkanyio.DataTrackError, match="gave no reason"):
        check_native(track, lkanyio.DataTrackError)
    cb = ffi_pb2.FfiEvent().publish_track  # neither publication nor error
    error = native_error(cb, lkanyio.PublishTrackError, default="the track was not published")
    assert str(error) == "the track was not published"
