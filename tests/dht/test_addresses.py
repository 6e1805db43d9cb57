"""The routing-table address filter: what may enter, what never may, what only a testnet takes."""

from __future__ import annotations

import pytest

from dhtviewer.dht.addresses import acceptable_address, address_family

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
def test_address_family(ip: str, family: int) -> None:
    assert address_family(ip) == family


@pytest.mark.parametrize("ip", ["localhost", "1.2.3.4.5", "", "[::1]", "01.2.3.4"])
def test_address_family_rejects_non_literals(ip: str) -> None:
    with pytest.raises(ValueError):
        address_family(ip)
