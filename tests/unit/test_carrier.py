"""The livekit carrier wheel: any 1.2.x whose protocol is the one lkanyio was built for."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import lkanyio
from lkanyio._native import _proto
from lkanyio._native._proto import ffi_pb2


def test_the_installed_carrier_is_in_the_supported_range_and_reported_to_the_server() -> None:
    version = metadata.version("livekit")
    _proto.check_version(version)
    assert version == lkanyio._native._bridge.SDK_VERSION


@pytest.mark.parametrize("version", ["1.2.0", "1.2.1", "1.2.17", "1.2.1rc1"])
def test_every_1_2_release_is_accepted(version: str) -> None:
    _proto.check_version(version)


@pytest.mark.parametrize("version", ["1.1.21", "1.3.0", "2.0.0", "0.22.0", "1.2", "garbage"])
def test_a_version_outside_the_range_is_refused_with_the_range(version: str) -> None:
    expected = r"livekit>=1\.2\.0,<1\.3.*" + version.replace(".", r"\.")
    with pytest.raises(ImportError, match=expected):
        _proto.check_version(version)


def test_the_loaded_protocol_has_the_fingerprint_lkanyio_was_built_for() -> None:
    assert _proto.protocol_fingerprint(_proto._loaded_files()) == _proto.PROTOCOL_FINGERPRINT


def test_any_change_to_a_message_changes_the_fingerprint_and_is_refused() -> None:
    files = _proto._loaded_files()
    changed = descriptor_pb2.FileDescriptorProto.FromString(ffi_pb2.DESCRIPTOR.serialized_pb)
    request = next(m for m in changed.message_type if m.name == "FfiRequest")
    request.field[0].number += 1000  # a renumbered field: the wire format no longer matches
    altered = [
        (name, changed.SerializeToString() if name == ffi_pb2.DESCRIPTOR.name else data)
        for name, data in files
    ]
    fingerprint = _proto.protocol_fingerprint(altered)
    assert fingerprint != _proto.PROTOCOL_FINGERPRINT
    with pytest.raises(ImportError, match="protocol differs from the one lkanyio was built for"):
        _proto.check_protocol(fingerprint)
    # The order the files are given in does not matter; their names do.
    assert _proto.protocol_fingerprint(reversed(files)) == _proto.PROTOCOL_FINGERPRINT
    renamed = [(name + "x", data) for name, data in files]
    assert _proto.protocol_fingerprint(renamed) != _proto.PROTOCOL_FINGERPRINT


def test_importing_lkanyio_with_an_unsupported_carrier_fails_with_a_clear_error(
    tmp_path: Path,
) -> None:
    # A child process sees a livekit 1.3.0 distribution first on its path (metadata only).
    dist = tmp_path / "livekit-1.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: livekit\nVersion: 1.3.0\n")
    child = subprocess.run(
        [sys.executable, "-c", "import lkanyio"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert child.returncode == 1
    assert "ImportError: lkanyio runs on livekit>=1.2.0,<1.3" in child.stderr
    assert "livekit 1.3.0 is installed" in child.stderr
