"""Checks of the arguments the library API (``Dht``, ``BlockingDht``) takes from its callers.

Each check returns the value in the form the session wants, or raises at once with a message
that names the argument: ``TypeError`` for a value of the wrong type, ``ValueError`` for one of
the right type that cannot be right (an info-hash of 19 bytes, a negative timeout). Nothing
has been sent or started when one of them raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dhtviewer.dht.node_id import ID_BYTES
from dhtviewer.infohash import parse_infohash

__all__ = [
    "HostPortArg",
    "check_addr",
    "check_callable",
    "check_id",
    "check_method",
    "check_port",
    "check_query_args",
    "check_seconds",
    "check_timeout",
]

HostPortArg = str | tuple[str, int]


def check_id(value: object, name: str = "info_hash") -> bytes:
    """A 20-byte info-hash or node id: ``bytes`` (exactly 20) or text (40 hex digits, 32 base32
    characters or a magnet link, as ``dhtviewer.infohash.parse_infohash`` reads them)."""
    if isinstance(value, str):
        try:
            return parse_infohash(value)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) != ID_BYTES:
            raise ValueError(f"{name} must be {ID_BYTES} bytes, got {len(raw)}")
        return raw
    raise TypeError(
        f"{name} must be {ID_BYTES} bytes or a hex/base32/magnet string, "
        f"got {type(value).__name__}"
    )


def check_seconds(value: object, name: str) -> float:
    """A finite, non-negative number of seconds (``bool`` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """None (no limit of our own) or ``check_seconds``."""
    return None if value is None else check_seconds(value, name)


def check_callable(value: object, name: str) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def check_port(value: object, name: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 < value < 65536:
        raise ValueError(f"{name} must be 1..65535, got {value}")
    return value


def check_addr(value: object, name: str = "addr") -> HostPortArg:
    """``"host:port"`` (``"[v6]:port"``) or a ``(host, port)`` pair; the session resolves
    names."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{name} is empty (expected host:port)")
        return value
    if isinstance(value, tuple) and len(value) == 2:
        host, port = value
        if not isinstance(host, str) or not host:
            raise TypeError(f"{name}: the host must be a non-empty str, got {host!r}")
        return (host, check_port(port, f"{name} port"))
    raise TypeError(
        f"{name} must be 'host:port' or a (host, port) pair, got {type(value).__name__}"
    )


def check_method(value: object, name: str = "method") -> bytes:
    """A KRPC method name: non-empty ``bytes`` or ASCII text."""
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"{name} must be ASCII, got {value!r}") from None
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes or str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def check_query_args(value: object, name: str = "args") -> dict[bytes, object]:
    """A query's ``a`` dict without ``id``: keys ``bytes`` or ASCII text, values anything
    bencodable (checked when the query is encoded)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    out: dict[bytes, object] = {}
    for key, item in value.items():
        k = check_method(key, f"{name} key")
        if k == b"id":
            raise ValueError(f"{name} must not hold 'id' (the node puts its own)")
        out[k] = item
    return out

