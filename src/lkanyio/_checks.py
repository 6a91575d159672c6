"""Input checks shared by the public API: bad input is a clear TypeError/ValueError here.

Protobuf's setters raise ``OverflowError`` (a bool from an int beyond 64 bits) or
``UnicodeEncodeError`` (a lone surrogate), and some inputs abort the native core, so every
public entry point checks its arguments with these before building a request.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TypeVar

__all__ = [
    "check_bool",
    "check_enum",
    "check_identities",
    "check_positive",
    "check_str",
    "check_uint",
]

E = TypeVar("E", bound=enum.IntEnum)


def check_str(name: str, value: object) -> str:
    """Return ``value`` if it is a ``str`` that UTF-8 can encode (no lone surrogates).

    Raises:
        TypeError: ``value`` is not a ``str``.
        ValueError: ``value`` holds a lone surrogate (the wire format is UTF-8).
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{name} is not valid Unicode text: a lone surrogate at index {exc.start}"
            ) from None
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a ``bool`` (an int is refused: ``2**64`` is not a flag).

    Raises:
        TypeError: ``value`` is not a ``bool``.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def check_enum(name: str, value: object, kind: type[E]) -> E:
    """Return ``value`` as a member of the int enum ``kind``.

    Raises:
        TypeError: ``value`` is neither a member nor an ``int``.
        ValueError: an ``int`` that is not one of ``kind``'s values.
    """
    if isinstance(value, kind):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{value} is not a {kind.__name__}") from None


def check_uint(
    name: str, value: object, *, bits: int = 32, minimum: int = 0, maximum: int | None = None
) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) from ``minimum`` to ``maximum``.

    ``maximum`` defaults to the largest value ``bits`` bits hold (``2**bits - 1``).

    Raises:
        TypeError: ``value`` is not an ``int``.
        ValueError: it is out of that range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    top = (1 << bits) - 1 if maximum is None else maximum
    if not minimum <= value <= top:
        raise ValueError(f"{name} must be from {minimum} to {top}, got {value}")
    return value


def check_positive(name: str, value: object, *, maximum: int | None = None) -> int:
    """Return ``value`` if it is a positive ``int`` (not a ``bool``), at most ``maximum``.

    The one check for counts, sizes, rates and buffer bounds: 0 channels or a 0x0 frame abort
    the native core, and a ``bool`` is refused (``True`` is not a count).

    Raises:
        TypeError: ``value`` is not an ``int``.
        ValueError: it is below 1 or above ``maximum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if maximum is None:
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    elif not 1 <= value <= maximum:
        raise ValueError(f"{name} must be between 1 and {maximum}, got {value}")
    return value


def check_identities(identities: object) -> list[str]:
    """Return a list of participant identities (a sequence of ``str``, but not one ``str``).

    Raises:
        TypeError: not an iterable of ``str``, or a single ``str``/``bytes``.
        ValueError: an identity with a lone surrogate.
    """
    if isinstance(identities, (str, bytes)):
        raise TypeError("destination_identities must be a sequence of identities, not one string")
    if not isinstance(identities, Iterable):
        raise TypeError(
            "destination_identities must be a sequence of identities, "
            f"not {type(identities).__name__}"
        )
    return [check_str("a destination identity", identity) for identity in identities]
