"""End-to-end encryption: options for joining, and the key manager of a joined room."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

from ._checks import check_bool, check_enum, check_str, check_uint
from ._errors import LiveKitError, NativeError
from ._native._bridge import get_bridge
from ._native._proto import e2ee_pb2, ffi_pb2
from ._native._requests import wire_enum
from ._types import EncryptionType

if TYPE_CHECKING:
    from ._port import RoomPort

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
    """End-to-end encryption for a room (AES-GCM frame encryption by default, as the other SDKs).

    Give every participant the same ``shared_key``, or leave it out and set per-participant
    keys through ``room.e2ee`` after joining (``set_key``: every participant sets the same key
    for a given identity).  A room joined without ``shared_key`` uses per-participant keys only.
    Keys never appear in reprs or logs.

    Attributes:
        shared_key: one key for every participant.
        ratchet_salt: salt of the key ratchet (the LiveKit default interoperates).
        ratchet_window_size: how many ratchet steps a receiver tries on a decryption failure
            (0: only the exact key it holds).
        failure_tolerance: decryption failures tolerated before a track's state becomes
            ``EncryptionState.DECRYPTION_FAILED``.  With the default -1 (no limit) that state is
            never reported: a wrong key yields no usable audio and no ``E2EEStateChanged``.  Set
            it to 0 or more to be told.
        key_ring_size: how many key indexes are kept.
        key_derivation_function: PBKDF2 (LiveKit default) or HKDF.
        encryption_type: how this client's own tracks are sent.  Measured with livekit-ffi
            0.13.2: ``GCM`` (the default) and ``CUSTOM`` both encrypt with the frame cryptor's
            AES-GCM (a ``CUSTOM`` track decrypts at a ``GCM`` peer holding the key) and differ
            only in what the track announces (``RemoteTrackPublication.encryption_type``);
            ``NONE`` creates no cryptor for this client's tracks, which go out in the clear
            (a participant without E2EE hears them) announced as ``NONE``, while the key
            manager still works.
    """

    shared_key: bytes | None = field(default=None, repr=False)
    ratchet_salt: bytes = field(default=b"LKFrameEncryptionKey", repr=False)
    ratchet_window_size: int = 16
    failure_tolerance: int = -1
    key_ring_size: int = 16
    key_derivation_function: KeyDerivationFunction = KeyDerivationFunction.PBKDF2
    encryption_type: EncryptionType = EncryptionType.GCM

    def __post_init__(self) -> None:
        if self.shared_key is not None:
            _check_key(self.shared_key, "shared key")
        _check_key(self.ratchet_salt, "ratchet salt")
        check_uint("ratchet_window_size", self.ratchet_window_size, bits=31)
        check_uint("failure_tolerance", self.failure_tolerance, bits=31, minimum=-1)
        check_uint("key_ring_size", self.key_ring_size, bits=31, minimum=1)
        check_enum("key_derivation_function", self.key_derivation_function, KeyDerivationFunction)
        check_enum("encryption_type", self.encryption_type, EncryptionType)

    def _to_proto(self, out: e2ee_pb2.E2eeOptions) -> None:
        out.encryption_type = wire_enum(e2ee_pb2.EncryptionType, self.encryption_type)
        keys = out.key_provider_options
        if self.shared_key is not None:
            keys.shared_key = bytes(self.shared_key)
        keys.ratchet_salt = bytes(self.ratchet_salt)
        keys.ratchet_window_size = self.ratchet_window_size
        keys.failure_tolerance = self.failure_tolerance
        keys.key_ring_size = self.key_ring_size
        keys.key_derivation_function = wire_enum(
            e2ee_pb2.KeyDerivationFunction, self.key_derivation_function
        )


@final
@dataclass(frozen=True)
class FrameCryptor:
    """The encryptor or decryptor of one participant's track (from ``room.e2ee.frame_cryptors()``).

    ``key_index`` and ``enabled`` are what the native core reported when the list was taken;
    ``set_enabled`` and ``set_key_index`` change the cryptor itself, so read the list again to
    see the new values.

    Attributes:
        participant_identity: whose track it is (this client's own for an encryptor).
        track_sid: the track's sid.
        key_index: the key ring slot the cryptor uses.
        enabled: whether it encrypts (or decrypts) frames.
    """

    participant_identity: str
    track_sid: str
    key_index: int
    enabled: bool
    _manager: E2EEManager | None = field(default=None, repr=False, compare=False)

    def _send(self) -> tuple[ffi_pb2.FfiRequest, e2ee_pb2.E2eeRequest, E2EEManager]:
        if self._manager is None:
            raise LiveKitError("this FrameCryptor does not belong to a room")
        req, msg = self._manager._request()
        return req, msg, self._manager

    def set_enabled(self, enabled: bool) -> None:
        """Turn this cryptor on or off.

        Only a decryptor (another participant's track) can be turned off; it then passes
        frames through undecrypted.  Measured with livekit-ffi 0.13.2: when this client turned
        off its own *encryptor*, a peer still decrypting the track aborted its whole process
        (libc++ "span index out of range" in the frame decryptor, 3 runs of 3), so that is
        refused here.

        Raises:
            TypeError: ``enabled`` is not a bool.
            ValueError: turning off this client's own encryptor.
            LiveKitError: the room is no longer connected.
        """
        value = check_bool("enabled", enabled)
        req, msg, manager = self._send()
        if not value and self.participant_identity == manager._port.session.local.info.identity:
            raise ValueError(
                "turning off this client's own encryptor aborts peers that decrypt the track "
                "(measured with livekit-ffi 0.13.2); unpublish the track instead"
            )
        msg.cryptor_set_enabled.participant_identity = self.participant_identity
        msg.cryptor_set_enabled.track_sid = self.track_sid
        msg.cryptor_set_enabled.enabled = value
        manager._send(req)

    def set_key_index(self, key_index: int) -> None:
        """Make this cryptor use the key at ``key_index`` of the key ring.

        Raises:
            ValueError: ``key_index`` outside ``0 .. key_ring_size - 1``, or no key there.
            LiveKitError: the room is no longer connected.
        """
        req, msg, manager = self._send()
        index = manager._index(key_index)
        # Measured: an encryptor pointed at an empty slot sends frames nobody can decrypt
        # (silence at every peer), and one run of disable + move to an empty slot aborted the
        # process (libc++ "span index out of range").  So the slot must hold a key.
        if manager._shared:
            held = manager.get_shared_key(key_index=index)
        else:
            held = manager.get_key(self.participant_identity, key_index=index)
        if held is None:
            raise ValueError(f"no key is set at key_index {index}")
        msg.cryptor_set_key_index.participant_identity = self.participant_identity
        msg.cryptor_set_key_index.track_sid = self.track_sid
        msg.cryptor_set_key_index.key_index = index
        manager._send(req)


@final
class E2EEManager:
    """Keys and cryptors of a joined room with end-to-end encryption (``room.e2ee``)."""

    def __init__(self, port: RoomPort, options: E2EEOptions | None) -> None:
        self._port = port
        self._ring_size = options.key_ring_size if options is not None else 0
        self._shared = options is not None and options.shared_key is not None
        # The native core has no request that reads the manager's switch back, so it is
        # tracked here: on from joining with E2EEOptions, then whatever set_enabled last sent.
        self._enabled = options is not None

    @property
    def enabled(self) -> bool:
        """Whether this client encrypts and decrypts (``True`` after joining with E2EE)."""
        return self._enabled

    def _require_shared(self) -> None:
        # Without a shared key at join the native core keeps per-participant keys only, and
        # silently ignores set_shared_key (get_shared_key then answers None).
        if not self._shared:
            raise LiveKitError(
                "this room was joined with per-participant keys (no E2EEOptions.shared_key): "
                "use set_key/ratchet_key"
            )

    def _index(self, key_index: object) -> int:
        # The native core quietly maps an index outside the ring onto another slot (16 and -1
        # both land on 0 with the default ring of 16), so a key would overwrite another.
        return check_uint("key_index (below key_ring_size)", key_index, maximum=self._ring_size - 1)

    @staticmethod
    def _identity(participant_identity: object) -> str:
        return check_str("participant_identity", participant_identity)

    def _request(self) -> tuple[ffi_pb2.FfiRequest, e2ee_pb2.E2eeRequest]:
        req = ffi_pb2.FfiRequest()
        req.e2ee.room_handle = self._port.room_handle()
        return req, req.e2ee

    def _send(self, req: ffi_pb2.FfiRequest) -> Any:
        return get_bridge().request(req).e2ee

    def set_enabled(self, enabled: bool) -> None:
        """Turn encryption on or off for this client (every cryptor at once).

        Raises:
            TypeError: ``enabled`` is not a bool.
            LiveKitError: the room is no longer connected.
        """
        req, msg = self._request()
        msg.manager_set_enabled.enabled = value = check_bool("enabled", enabled)
        self._send(req)
        self._enabled = value

    def frame_cryptors(self) -> list[FrameCryptor]:
        """The cryptors of every encrypted track (this client's and the others')."""
        req, msg = self._request()
        msg.manager_get_frame_cryptors.SetInParent()
        return [
            FrameCryptor(c.participant_identity, c.track_sid, c.key_index, c.enabled, self)
            for c in self._send(req).manager_get_frame_cryptors.frame_cryptors
        ]

    def set_shared_key(self, key: bytes, *, key_index: int = 0) -> None:
        """Set the key every participant shares.

        Raises:
            LiveKitError: the room was joined without a shared key.
            ValueError: an empty key, or ``key_index`` outside ``0 .. key_ring_size - 1``.
            TypeError: a key that is not bytes.
        """
        self._require_shared()
        req, msg = self._request()
        msg.set_shared_key.shared_key = _check_key(key)
        msg.set_shared_key.key_index = self._index(key_index)
        self._send(req)

    def ratchet_shared_key(self, *, key_index: int = 0) -> bytes:
        """Ratchet the shared key forward and return the new key.

        Raises:
            LiveKitError: the room was joined without a shared key.
            NativeError: no shared key is set at ``key_index``.
            ValueError: ``key_index`` outside ``0 .. key_ring_size - 1``.
        """
        self._require_shared()
        req, msg = self._request()
        msg.ratchet_shared_key.key_index = self._index(key_index)
        new_key = bytes(self._send(req).ratchet_shared_key.new_key)
        if not new_key:  # the native core answers an empty key when there is nothing to ratchet
            raise NativeError(f"no shared key to ratchet at key_index {key_index}")
        return new_key

    def get_shared_key(self, *, key_index: int = 0) -> bytes | None:
        """The shared key at ``key_index``, if set."""
        req, msg = self._request()
        msg.get_shared_key.key_index = self._index(key_index)
        resp = self._send(req).get_shared_key
        return bytes(resp.key) if resp.HasField("key") else None

    def set_key(self, participant_identity: str, key: bytes, *, key_index: int = 0) -> None:
        """Set the key of one participant (per-participant keys).

        Every participant sets the same key for a given identity: the sender encrypts its
        tracks with its own key, receivers decrypt with the key they hold for the sender.

        Raises:
            ValueError: an empty key, or ``key_index`` outside ``0 .. key_ring_size - 1``.
            TypeError: a key that is not bytes, or an identity that is not a str.
        """
        req, msg = self._request()
        msg.set_key.participant_identity = self._identity(participant_identity)
        msg.set_key.key = _check_key(key)
        msg.set_key.key_index = self._index(key_index)
        self._send(req)

    def ratchet_key(self, participant_identity: str, *, key_index: int = 0) -> bytes:
        """Ratchet one participant's key forward and return the new key.

        Raises:
            NativeError: no key is set for that participant at ``key_index``.
            ValueError: ``key_index`` outside ``0 .. key_ring_size - 1``.
        """
        req, msg = self._request()
        msg.ratchet_key.participant_identity = self._identity(participant_identity)
        msg.ratchet_key.key_index = self._index(key_index)
        new_key = bytes(self._send(req).ratchet_key.new_key)
        if not new_key:  # the native core answers an empty key when there is nothing to ratchet
            raise NativeError(
                f"no key of {participant_identity!r} to ratchet at key_index {key_index}"
            )
        return new_key

    def get_key(self, participant_identity: str, *, key_index: int = 0) -> bytes | None:
        """One participant's key at ``key_index``, if set."""
        req, msg = self._request()
        msg.get_key.participant_identity = self._identity(participant_identity)
        msg.get_key.key_index = self._index(key_index)
        resp = self._send(req).get_key
        return bytes(resp.key) if resp.HasField("key") else None

    def __repr__(self) -> str:
        return f"<E2EEManager room={self._port.session.info.name!r}>"
