"""Addresses: the routing-table filter (what may enter, what never may, what only a testnet
takes), families, local and loopback addresses, HOST:PORT text and socket addresses."""

from __future__ import annotations

import random
import socket

import pytest

from dhtviewer.dht.addresses import (
    acceptable_address,
    format_addr,
    format_host,
    host_family,
    ip_family,
    is_local,
    is_loopback,
    pack_ip_unmapped,
    parse_hostport,
    sockaddr_to_addr,
    socket_family,
)
from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.tokens import TokenIssuer

PUBLIC = ["8.8.8.8", "1.2.3.4", "93.184.216.34", "2001:4860:4860::8888", "2a00:1450:4001::1"]

# (ip, reason): refused on the public DHT, accepted with allow_local.
LOCAL = [
    ("127.0.0.1", "loopback address"),
    ("127.255.0.9", "loopback address"),
    ("::1", "loopback address"),
    ("10.1.2.3", "private address"),
    ("172.16.0.1", "private address"),
    ("172.31.255.254", "private address"),
    ("192.168.1.1", "private address"),
    ("fd12:3456::1", "private address"),
    ("169.254.10.20", "link-local address"),
    ("fe80::1", "link-local address"),
    ("fe80::1%eth0", "link-local address"),
    ("100.64.0.1", "shared address"),
    ("192.0.2.7", "reserved address"),
    ("198.51.100.7", "reserved address"),
    ("203.0.113.7", "reserved address"),
    ("198.18.0.1", "reserved address"),
    ("240.0.0.1", "reserved address"),
    ("2001:db8::1", "reserved address"),
    ("::1.2.3.4", "reserved address"),
]

# (ip, reason): refused even with allow_local.
NEVER = [
    ("0.0.0.0", "unspecified address"),
    ("::", "unspecified address"),
    ("0.1.2.3", "this-network address"),
    ("224.0.0.1", "multicast address"),
    ("239.255.255.250", "multicast address"),
    ("ff02::1", "multicast address"),
    ("255.255.255.255", "broadcast address"),
    ("::ffff:8.8.8.8", "IPv4-mapped address"),
    ("example.com", "not an IP address"),
    ("1.2.3", "not an IP address"),
    ("", "not an IP address"),
    ("[::1]", "not an IP address"),
]


@pytest.mark.parametrize("ip", PUBLIC)
@pytest.mark.parametrize("allow_local", [False, True])
def test_public_addresses_are_accepted(ip: str, allow_local: bool) -> None:
    assert acceptable_address((ip, 6881), allow_local=allow_local) is None


@pytest.mark.parametrize(("ip", "reason"), LOCAL)
def test_local_addresses_need_allow_local(ip: str, reason: str) -> None:
    assert acceptable_address((ip, 6881), allow_local=False) == reason
    assert acceptable_address((ip, 6881), allow_local=True) is None


@pytest.mark.parametrize(("ip", "reason"), NEVER)
@pytest.mark.parametrize("allow_local", [False, True])
def test_unusable_addresses_are_always_refused(ip: str, reason: str, allow_local: bool) -> None:
    assert acceptable_address((ip, 6881), allow_local=allow_local) == reason


@pytest.mark.parametrize("allow_local", [False, True])
def test_port_must_be_in_range(allow_local: bool) -> None:
    assert acceptable_address(("8.8.8.8", 0), allow_local=allow_local) == "port 0"
    assert acceptable_address(("127.0.0.1", 0), allow_local=allow_local) == "port 0"
    assert acceptable_address(("8.8.8.8", 65536), allow_local=allow_local) == "bad port"
    assert acceptable_address(("8.8.8.8", -1), allow_local=allow_local) == "bad port"
    assert acceptable_address(("8.8.8.8", True), allow_local=allow_local) == "bad port"
    assert acceptable_address(("8.8.8.8", 1), allow_local=allow_local) is None
    assert acceptable_address(("8.8.8.8", 65535), allow_local=allow_local) is None


def test_teredo_and_nat64_are_reachable() -> None:
    assert acceptable_address(("2001:0:4136:e378::1", 6881), allow_local=False) is None
    assert acceptable_address(("64:ff9b::808:808", 6881), allow_local=False) is None


def test_unassigned_ipv6_space_is_reserved() -> None:
    assert acceptable_address(("4000::1", 6881), allow_local=False) == "reserved address"
    assert acceptable_address(("2001:100::1", 6881), allow_local=False) == "reserved address"


def test_non_string_ip_is_refused() -> None:
    assert acceptable_address((12345, 6881), allow_local=True) == "not an IP address"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ip", "family"),
    [("8.8.8.8", 4), ("127.0.0.1", 4), ("0.0.0.0", 4), ("::1", 6), ("2001:db8::1", 6),
     ("fe80::1%eth0", 6), ("::ffff:1.2.3.4", 6)],
)
def test_ip_family(ip: str, family: int) -> None:
    assert ip_family(ip) == family


@pytest.mark.parametrize("ip", ["localhost", "1.2.3.4.5", "", "[::1]", "01.2.3.4"])
def test_ip_family_rejects_non_literals(ip: str) -> None:
    with pytest.raises(ValueError):
        ip_family(ip)


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
        ("::ffff:127.0.0.1", True, True),
        ("::ffff:10.0.0.1", True, False),
        ("::ffff:8.8.8.8", False, False),
        ("::ffff:7f00:1", True, True),  # the same mapped address written in hex
        ("0:0:0:0:0:ffff:a00:1", True, False),
        ("0.1.2.3", True, False),
        ("fec0::1", True, False),
        ("", False, False),
    ],
)
def test_local_and_loopback(ip: str, local: bool, loopback: bool) -> None:
    assert is_local(ip) is local
    assert is_loopback(ip) is loopback


@pytest.mark.parametrize("mapped", ["::ffff:1.2.3.4", "::FFFF:1.2.3.4", "::ffff:102:304",
                                    "0:0:0:0:0:ffff:102:304"])
def test_an_ipv4_mapped_address_is_its_ipv4_address_everywhere(mapped: str) -> None:
    """One rule for tokens, scrape filters and the local/loopback checks, however the mapped
    address is written."""
    assert pack_ip_unmapped(mapped) == pack_ip_unmapped("1.2.3.4") == bytes([1, 2, 3, 4])
    assert BloomFilter.of([mapped]) == BloomFilter.of(["1.2.3.4"])
    tokens = TokenIssuer(random.Random(1), 0.0)
    assert tokens.verify(tokens.issue(mapped, b"\x01" * 20, 0.0), "1.2.3.4", b"\x01" * 20, 0.0)
    assert pack_ip_unmapped("::1") == bytes(15) + b"\x01"  # a real IPv6 address stays one
    with pytest.raises(ValueError):
        pack_ip_unmapped("example.org")


def test_families_of_hosts_as_given() -> None:
    assert [host_family(h) for h in ("1.2.3.4", "::1", "fe80::1%eth0", "localhost", "x.org")] == [
        4, 6, 6, 4, 4]
    assert socket_family("::") == socket.AF_INET6 and socket_family("0.0.0.0") == socket.AF_INET
    assert socket_family("router.bittorrent.com") == socket.AF_INET
    assert (format_host("::1"), format_host("1.2.3.4"), format_host("x.org")) == (
        "[::1]", "1.2.3.4", "x.org")
