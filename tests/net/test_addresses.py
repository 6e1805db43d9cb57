"""HOST:PORT parsing and printing, local-address classification and async name resolution."""

from __future__ import annotations

import asyncio
import socket

import pytest

from dhtviewer.net.addresses import (
    format_addr,
    ip_family,
    is_local,
    is_loopback,
    parse_hostport,
    resolve_addrs,
    sockaddr_to_addr,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:6881", ("127.0.0.1", 6881)),
        (" router.bittorrent.com:6881 ", ("router.bittorrent.com", 6881)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:6881", ("::1", 6881)),
        ("[2001:db8::1]:65535", ("2001:db8::1", 65535)),
        ("example.org.:80", ("example.org.", 80)),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


def test_default_port_fills_a_missing_port() -> None:
    assert parse_hostport("dht.example", 6881) == ("dht.example", 6881)
    assert parse_hostport("[::1]", 6881) == ("::1", 6881)
    assert parse_hostport("::1", 6881) == ("::1", 6881)  # bare IPv6 is unambiguous without port


def test_port_zero_only_for_binding() -> None:
    assert parse_hostport("0.0.0.0:0", allow_port_zero=True) == ("0.0.0.0", 0)
    with pytest.raises(ValueError, match="port 0 out of range 1-65535"):
        parse_hostport("0.0.0.0:0")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty address"),
        ("127.0.0.1", "missing port in '127.0.0.1' (expected 127.0.0.1:PORT)"),
        ("[::1]", "missing port in '[::1]' (expected [::1]:PORT)"),
        ("host:abc", "invalid port 'abc'"),
        ("host:", "invalid port ''"),
        ("host:-1", "invalid port '-1'"),
        ("host:70000", "port 70000 out of range"),
        (":6881", "missing host"),
        ("[::1:6881", "missing ']'"),
        ("[::1]6881", "unexpected '6881' after ']'"),
        ("[1.2.3.4]:80", "invalid IPv6 address '1.2.3.4'"),
        ("1:2:3", "write IPv6 as [ADDRESS]:PORT"),
        ("bad host:80", "invalid host name 'bad host'"),
        ("-x.example:80", "invalid host name"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hostport(text)
    assert message in str(info.value)


def test_format_addr_brackets_ipv6() -> None:
    assert format_addr(("1.2.3.4", 6881)) == "1.2.3.4:6881"
    assert format_addr(("::1", 6881)) == "[::1]:6881"
    assert parse_hostport(format_addr(("2001:db8::7", 9))) == ("2001:db8::7", 9)


def test_sockaddr_of_either_family_becomes_ip_port() -> None:
    assert sockaddr_to_addr(("10.0.0.1", 5)) == ("10.0.0.1", 5)
    assert sockaddr_to_addr(("fe80::1", 5, 0, 2)) == ("fe80::1", 5)


@pytest.mark.parametrize(
    ("ip", "local", "loopback"),
    [
        ("127.0.20.3", True, True),
        ("::1", True, True),
        ("10.1.2.3", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),  # carrier-grade NAT
        ("fe80::1", True, False),
        ("0.0.0.0", True, False),
        ("8.8.8.8", False, False),
        ("2001:4860::8888", False, False),
        ("router.bittorrent.com", False, False),
    ],
)
def test_local_and_loopback(ip: str, local: bool, loopback: bool) -> None:
    assert is_local(ip) is local
    assert is_loopback(ip) is loopback


def test_ip_family() -> None:
    assert ip_family("1.2.3.4") == 4
    assert ip_family("::1") == 6
    with pytest.raises(ValueError):
        ip_family("localhost")


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
