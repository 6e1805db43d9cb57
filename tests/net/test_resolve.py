"""Asynchronous name resolution: literals, names (from the hosts file), families, errors."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dhtviewer.net.resolve import resolve_addrs, resolve_families


def test_resolve_literals_dedups_and_reports_each_failure() -> None:
    async def go() -> tuple[list[tuple[str, int]], list[str]]:
        return await resolve_addrs(
            ["127.0.0.1:1", ("127.0.0.2", 2), "127.0.0.1:1", "[::1]:3", "bad:port"],
            socket.AF_INET,
        )

    addrs, errors = asyncio.run(asyncio.wait_for(go(), 10))
    assert addrs == [("127.0.0.1", 1), ("127.0.0.2", 2)]
    assert len(errors) == 2
    assert any("[::1]:3" in e and "IPv6" in e for e in errors)
    assert any("invalid port 'port'" in e for e in errors)


def test_resolve_any_family_and_default_port() -> None:
    async def go() -> tuple[list[tuple[str, int]], list[str]]:
        return await resolve_addrs(["127.0.0.1", "[::1]:7"], socket.AF_UNSPEC)

    addrs, errors = asyncio.run(asyncio.wait_for(go(), 10))
    assert addrs == [("127.0.0.1", 6881), ("::1", 7)]
    assert errors == []


def test_resolve_a_name_without_blocking() -> None:
    # "localhost" comes from the hosts file: no network needed.
    async def go() -> tuple[list[tuple[str, int]], list[str]]:
        return await resolve_addrs(["localhost:6881"], socket.AF_INET)

    addrs, errors = asyncio.run(asyncio.wait_for(go(), 10))
    assert ("127.0.0.1", 6881) in addrs
    assert errors == []


def test_resolve_families_feeds_each_family_from_a_name_of_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BEP 32: a bootstrap name with addresses of both families feeds both DHTs; a literal
    feeds its own; an item is an error only when no family could use it."""

    async def fake_getaddrinfo(host: str, port: int, *, family: int, **_: Any) -> list[Any]:
        assert host == "router.test"
        v4 = (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.5", port))
        v6 = (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", port, 0, 0))
        return [v4] if family == socket.AF_INET else [v6]

    async def go() -> tuple[dict[int, list[tuple[str, int]]], list[str]]:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
        return await resolve_families(
            ["router.test:6881", "127.0.0.9:1", "[::1]:2", "bad:port"], [4, 6]
        )

    by_family, errors = asyncio.run(asyncio.wait_for(go(), 10))
    assert by_family == {4: [("127.0.0.5", 6881), ("127.0.0.9", 1)],
                         6: [("::1", 6881), ("::1", 2)]}
    assert len(errors) == 1 and "invalid port 'port'" in errors[0]
