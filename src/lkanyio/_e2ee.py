"""End-to-end encryption: options for joining, and the key manager of a joined room."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

from ._bridge import get_bridge
from ._proto import e2ee_pb2, ffi_pb2

if TYPE_CHECKING:
    from ._room import Room

__all__ = ["E2EEManager", "E2EEOptions", "FrameCryptor", "KeyDerivationFunction"]


class KeyDerivationFunction(enum.IntEnum):
    """How frame keys are derived from the key material."""

    PBKDF2 = e2ee_pb2.PBKDF2
    HKDF = e2ee_pb2.HKDF


def _check_key(key: object, what: str = "key") -> bytes:
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"the {what} must be bytes")
    if not key:
        raise ValueError(f"the {what} must not be empty")
    return bytes(key)


@final
@dataclass(frozen=True, kw_only=True)
class E2EEOptions:
    """End-to-end encryption for a room (AES-GCM frame encryption, as the other SDKs).

    Give every participant the same ``shared_key``, or leave it out and set per-participant
    keys through ``room.e2ee`` after joining.  Keys never appear in reprs or logs.

    Attributes:
        shared_key: one key for every participant.
        ratchet_salt: salt of the key ratchet (the LiveKit default interoperates).
        ratchet_window_size: how many ratchet steps a receiver tries on a decryption failure.
        failure_tolerance: decryption failures tolerated before giving up (-1: no limit).
        key_ring_size: how many key indexes are kept.
        key_derivation_function: PBKDF2 (LiveKit default) or HKDF.
    """

    shared_key: bytes | None = field(default=None, repr=False)
    ratchet_salt: bytes = field(default=b"LKFrameEncryptionKey", repr=False)
    ratchet_window_size: int = 16
    failure_tolerance: int = -1
    key_ring_size: int = 16
    key_derivation_function: KeyDerivationFunction = KeyDerivationFunction.PBKDF2

    def _to_proto(self, out: e2ee_pb2.E2eeOptions) -> None:
        out.encryption_type = e2ee_pb2.GCM
        keys = out.key_provider_options
        if self.shared_key is not None:
            keys.shared_key = _check_key(self.shared_key, "shared key")
        keys.ratchet_salt = _check_key(self.ratchet_salt, "ratchet salt")
        if self.ratchet_window_size < 0 or self.key_ring_size < 1:
            raise ValueError("ratchet_window_size must be >= 0 and key_ring_size >= 1")
        keys.ratchet_window_size = self.ratchet_window_size
        keys.failure_tolerance = self.failure_tolerance
        keys.key_ring_size = self.key_ring_size
        keys.key_derivation_function = int(self.key_derivation_function)  # type: ignore[assignment]


@final
@dataclass(frozen=True)
class FrameCryptor:
    """The encryptor or decryptor of one participant's track."""

    participant_identity: str
    track_sid: str
    key_index: int
    enabled: bool


@final
class E2EEManager:
    """Keys and cryptors of a joined room with end-to-end encryption (``room.e2ee``)."""

    def __init__(self, room: Room) -> None:
        self._room = room

    def _request(self) -> tuple[ffi_pb2.FfiRequest, e2ee_pb2.E2eeRequest]:
        req = ffi_pb2.FfiRequest()
        req.e2ee.room_handle = self._room._require_connected_handle()
        return req, req.e2ee

    def _send(self, req: ffi_pb2.FfiRequest) -> Any:
        return get_bridge().request(req).e2ee

    def set_enabled(self, enabled: bool) -> None:
        """Turn encryption on or off for this client."""
        req, msg = self._request()
        msg.manager_set_enabled.enabled = enabled
        self._send(req)

    def frame_cryptors(self) -> list[FrameCryptor]:
        """The cryptors of every encrypted track (this client's and the others')."""
        req, msg = self._request()
        msg.manager_get_frame_cryptors.SetInParent()
        return [
            FrameCryptor(c.participant_identity, c.track_sid, c.key_index, c.enabled)
            for c in self._send(req).manager_get_frame_cryptors.frame_cryptors
        ]

    def set_shared_key(self, key: bytes, *, key_index: int = 0) -> None:
        """Set the key every participant shares."""
        req, msg = self._request()
        msg.set_shared_key.shared_key = _check_key(key)
        msg.set_shared_key.key_index = key_index
        self._send(req)

    def ratchet_shared_key(self, *, key_index: int = 0) -> bytes:
        """Ratchet the shared key forward and return the new key."""
        req, msg = self._request()
        msg.ratchet_shared_key.key_index = key_index
        return bytes(self._send(req).ratchet_shared_key.new_key)

    def get_shared_key(self, *, key_index: int = 0) -> bytes | None:
        """The shared key at ``key_index``, if set."""
        req, msg = self._request()
        msg.get_shared_key.key_index = key_index
        resp = self._send(req).get_shared_key
        return bytes(resp.key) if resp.HasField("key") else None

    def set_key(self, participant_identity: str, key: bytes, *, key_index: int = 0) -> None:
        """Set the key of one participant (per-participant keys)."""
        req, msg = self._request()
        msg.set_key.participant_identity = participant_identity
        msg.set_key.key = _check_key(key)
        msg.set_key.key_index = key_index
        self._send(req)

    def ratchet_key(self, participant_identity: str, *, key_index: int = 0) -> bytes:
        """Ratchet one participant's key forward and return the new key."""
        req, msg = self._request()
        msg.ratchet_key.participant_identity = participant_identity
        msg.ratchet_key.key_index = key_index
        return bytes(self._send(req).ratchet_key.new_key)

    def get_key(self, participant_identity: str, *, key_index: int = 0) -> bytes | None:
        """One participant's key at ``key_index``, if set."""
        req, msg = self._request()
        msg.get_key.participant_identity = participant_identity
        msg.get_key.key_index = key_index
        resp = self._send(req).get_key
        return bytes(resp.key) if resp.HasField("key") else None

    def __repr__(self) -> str:
        return f"<E2EEManager room={self._room.name!r}>"
