"""The library's argument checks: the right form comes out, the wrong one raises TypeError or
ValueError with the argument's name in the message."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dhtviewer.arguments import (
    check_addr,
    check_callable,
    check_id,
    check_method,
    check_port,
    check_query_args,
    check_seconds,
    check_timeout,
)

IH = bytes(range(20))


def test_ids_from_bytes_or_text() -> None:
    assert check_id(IH) == IH
    assert check_id(bytearray(IH)) == IH
    assert check_id(IH.hex()) == IH
    assert check_id(f" magnet:?xt=urn:btih:{IH.hex()}&dn=x ") == IH
    with pytest.raises(ValueError, match=r"^info_hash must be 20 bytes, got 19$"):
        check_id(IH[:19])
    with pytest.raises(ValueError, match=r"^target: expected 40 hex characters, got 39$"):
        check_id(IH.hex()[:39], "target")
    with pytest.raises(TypeError, match=r"^node_id must be 20 bytes or .* got int$"):
        check_id(7, "node_id")


@pytest.mark.parametrize("value", [0, 0.5, 3])
def test_good_seconds(value: float) -> None:
    assert check_seconds(value, "t") == value
    assert check_timeout(value) == value


def test_bad_seconds() -> None:
    assert check_timeout(None) is None
    for bad in (-0.1, math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match=r"^timeout must be a finite number of seconds"):
            check_timeout(bad)
    for wrong in ("1", True, [1]):
        with pytest.raises(TypeError, match=r"^delay must be a number of seconds"):
            check_seconds(wrong, "delay")


def test_addresses_and_ports() -> None:
    assert check_addr("router.example:6881") == "router.example:6881"
    assert check_addr(("127.0.0.1", 6881)) == ("127.0.0.1", 6881)
    with pytest.raises(ValueError, match=r"addr is empty"):
        check_addr("  ")
    with pytest.raises(ValueError, match=r"addr port must be 1\.\.65535, got 70000"):
        check_addr(("127.0.0.1", 70000))
    with pytest.raises(TypeError, match=r"the host must be a non-empty str"):
        check_addr((b"127.0.0.1", 1))
    with pytest.raises(TypeError, match=r"addr must be 'host:port' or a \(host, port\) pair"):
        check_addr(["127.0.0.1", 1])
    with pytest.raises(TypeError, match=r"port must be an int, got bool"):
        check_port(True)


def test_methods_and_query_args() -> None:
    assert check_method("echo") == b"echo" and check_method(b"echo") == b"echo"
    with pytest.raises(ValueError, match="method must be ASCII"):
        check_method("écho")
    with pytest.raises(TypeError, match="method must be bytes or str, got int"):
        check_method(1)
    assert check_query_args(None) == {}
    assert check_query_args({"say": b"hi", b"n": 1}) == {b"say": b"hi", b"n": 1}
    with pytest.raises(ValueError, match="args must not hold 'id'"):
        check_query_args({b"id": b"x"})
    with pytest.raises(TypeError, match="args must be a mapping, got list"):
        check_query_args([(b"a", 1)])


def test_callables() -> None:
    check_callable(print, "handler")
    bad: Any = "print"
    with pytest.raises(TypeError, match=r"^handler must be callable, got str$"):
        check_callable(bad, "handler")
