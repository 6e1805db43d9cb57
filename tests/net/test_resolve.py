"""Asynchronous name resolution: literals, names (from the hosts file), families, errors."""

from __future__ import annotations

import asyncio
import socket

from dhtviewer.net.resolve import resolve_addrs


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
