"""Compact peer and node codecs (BEP 5 IPv4, BEP 32 IPv6)."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhtviewer.dht.compact import (
    CompactError,
    decode_nodes,
    decode_nodes6,
    decode_peer,
    decode_values,
    encode_nodes,
    encode_nodes6,
    encode_peer,
    encode_values,
    partial_records,
)
from dhtviewer.dht.messages import NodeInfo

ports = st.integers(0, 65535)
node_ids = st.binary(min_size=20, max_size=20)
# Canonical text forms, as the decoder must produce them.
v4_hosts = st.ip_addresses(v=4).map(lambda ip: ip.compressed)
v6_hosts = st.ip_addresses(v=6).map(lambda ip: ip.compressed)
v4_peers = st.tuples(v4_hosts, ports)
v6_peers = st.tuples(v6_hosts, ports)
v4_nodes = st.builds(NodeInfo, node_ids, v4_peers)
v6_nodes = st.builds(NodeInfo, node_ids, v6_peers)


def test_ipv4_peer_layout() -> None:
    assert encode_peer(("1.2.3.4", 6881)) == b"\x01\x02\x03\x04\x1a\xe1"
    assert decode_peer(b"\xc0\xa8\x00\xff\x00\x50") == ("192.168.0.255", 80)


def test_ipv6_peer_layout() -> None:
    raw = bytes.fromhex("20010db8000000000000000000000001") + b"\xc3\x50"
    assert encode_peer(("2001:db8::1", 50000)) == raw
    assert decode_peer(raw) == ("2001:db8::1", 50000)


def test_ipv4_node_layout() -> None:
    node = NodeInfo(bytes(range(20)), ("10.0.0.1", 1))
    assert encode_nodes([node]) == bytes(range(20)) + b"\x0a\x00\x00\x01\x00\x01"


def test_decoded_ipv6_text_is_canonical() -> None:
    # Non-canonical input text still encodes; what comes back is the compressed lower-case form.
    raw = encode_peer(("2001:0DB8:0000:0000:0000:0000:0000:0001", 1))
    assert decode_peer(raw) == ("2001:db8::1", 1)
    node = NodeInfo(b"\x01" * 20, ("FE80:0:0:0:0:0:0:2", 9))
    (back,) = decode_nodes6(encode_nodes6([node]))
    assert back.addr == ("fe80::2", 9)


@given(st.one_of(v4_peers, v6_peers))
def test_peer_round_trip(addr: tuple[str, int]) -> None:
    raw = encode_peer(addr)
    assert len(raw) == (6 if "." in addr[0] and ":" not in addr[0] else 18)
    assert decode_peer(raw) == addr


@given(st.lists(st.one_of(v4_peers, v6_peers), max_size=20))
def test_values_round_trip_with_mixed_families(peers: list[tuple[str, int]]) -> None:
    encoded = encode_values(peers)
    assert all(len(v) in (6, 18) for v in encoded)
    assert decode_values(encoded) == tuple(peers)


@given(st.lists(v4_nodes, max_size=16))
def test_nodes_round_trip(nodes: list[NodeInfo]) -> None:
    raw = encode_nodes(nodes)
    assert len(raw) == 26 * len(nodes)
    assert decode_nodes(raw) == tuple(nodes)


@given(st.lists(v6_nodes, max_size=16))
def test_nodes6_round_trip(nodes: list[NodeInfo]) -> None:
    raw = encode_nodes6(nodes)
    assert len(raw) == 38 * len(nodes)
    assert decode_nodes6(raw) == tuple(nodes)


def test_empty_lists() -> None:
    assert decode_nodes(b"") == ()
    assert decode_nodes6(b"") == ()
    assert decode_values([]) == ()
    assert encode_nodes([]) == b""
    assert encode_values([]) == []


def test_ipv4_mapped_ipv6_stays_ipv6() -> None:
    host = ipaddress.IPv6Address("::ffff:1.2.3.4").compressed
    raw = encode_peer((host, 7))
    assert len(raw) == 18
    assert decode_peer(raw) == (host, 7)


# --- decoding errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [1, 25])
def test_nodes_with_a_trailing_partial_record_give_the_complete_ones(extra: int) -> None:
    nodes = [NodeInfo(bytes([i]) * 20, (f"1.2.3.{i}", 1000 + i)) for i in range(1, 4)]
    raw = encode_nodes(nodes)
    assert decode_nodes(raw + b"\x07" * extra) == tuple(nodes)
    assert partial_records(nodes=raw + b"\x07" * extra) == 1
    assert partial_records(nodes=raw) == 0
    assert decode_nodes(b"\x07" * extra) == ()  # only a fragment: nothing usable


@pytest.mark.parametrize("extra", [1, 37])
def test_nodes6_with_a_trailing_partial_record_give_the_complete_ones(extra: int) -> None:
    nodes = [NodeInfo(bytes([i]) * 20, (f"2001:db8::{i}", 2000 + i)) for i in range(1, 3)]
    raw = encode_nodes6(nodes)
    assert decode_nodes6(raw + b"\x07" * extra) == tuple(nodes)
    assert partial_records(nodes6=raw + b"\x07" * extra) == 1
    assert partial_records(nodes=raw[:26], nodes6=raw) == 0


@pytest.mark.parametrize("length", [0, 4, 5, 7, 16, 17, 19, 26])
def test_peer_must_be_6_or_18_bytes(length: int) -> None:
    with pytest.raises(CompactError, match=f"6 or 18 bytes, got {length}"):
        decode_peer(b"\x01" * length)


def test_value_entries_of_no_peer_length_are_skipped_and_counted() -> None:
    values = [b"\x01" * 6, b"\x01" * 7, b"\x02" * 18, b"", b"\x03" * 6]
    assert decode_values(values) == (
        ("1.1.1.1", 257), ("202:202:202:202:202:202:202:202", 514), ("3.3.3.3", 771)
    )
    assert partial_records(values=values) == 2


def test_a_value_entry_of_the_wrong_type_is_an_error() -> None:
    with pytest.raises(CompactError, match=r"values\[0\] must be a byte string, got int"):
        decode_values([5])  # type: ignore[list-item]


def test_compact_error_is_a_value_error() -> None:
    assert issubclass(CompactError, ValueError)


# --- encoding errors -----------------------------------------------------------------------------


def test_ipv6_contact_cannot_go_in_nodes() -> None:
    with pytest.raises(CompactError, match="not an IPv4 address"):
        encode_nodes([NodeInfo(b"\x00" * 20, ("::1", 1))])


def test_ipv4_contact_cannot_go_in_nodes6() -> None:
    with pytest.raises(CompactError, match="not an IPv6 address"):
        encode_nodes6([NodeInfo(b"\x00" * 20, ("127.0.0.1", 1))])


def test_node_id_must_be_20_bytes() -> None:
    with pytest.raises(CompactError, match="node id must be 20 bytes, got 19"):
        encode_nodes([NodeInfo(b"\x00" * 19, ("127.0.0.1", 1))])


@pytest.mark.parametrize(
    ("addr", "reason"),
    [
        (("1.2.3.4", -1), "port must be an int in 0..65535"),
        (("1.2.3.4", 65536), "port must be an int in 0..65535"),
        (("1.2.3.4", True), "port must be an int"),
        (("1.2.3.4", "80"), "port must be an int"),
        (("example.com", 80), "not an IP address"),
        (("1.2.3", 80), "not an IP address"),
        (("01.2.3.4", 80), "not an IP address"),
        (("fe80::1%eth0", 80), "not an IP address"),
        ((b"1.2.3.4", 80), "address must be text"),
        ((["1.2.3.4"], 80), "not an (ip, port) pair"),
        (("1.2.3.4",), "not an (ip, port) pair"),
    ],
)
def test_unencodable_addresses(addr: tuple[str, int], reason: str) -> None:
    with pytest.raises(CompactError, match=re.escape(reason)):
        encode_peer(addr)


def test_port_true_is_rejected_even_after_port_1_was_encoded() -> None:
    # The encoder caches addresses; True == 1 must not reuse the cached entry for port 1.
    assert encode_peer(("9.9.9.9", 1)) == b"\x09\x09\x09\x09\x00\x01"
    with pytest.raises(CompactError, match="port must be an int"):
        encode_peer(("9.9.9.9", True))


def _reference_nodes(nodes: list[NodeInfo]) -> bytes:
    """The layout of BEP 5/32 spelled out, without the encoder's record cache."""
    return b"".join(
        n.id + ipaddress.ip_address(n.addr[0]).packed + n.addr[1].to_bytes(2, "big")
        for n in nodes
    )


@given(
    pool=st.lists(v4_nodes, min_size=1, max_size=6),
    picks=st.lists(st.integers(0, 5), max_size=30),
    ports_after=st.lists(ports, max_size=6),
)
def test_cached_node_records_follow_every_change(
    pool: list[NodeInfo], picks: list[int], ports_after: list[int]
) -> None:
    """Records are cached per (id, ip, port): the same contacts sent again, or a contact whose
    port changed (a NAT rebinding), must give exactly the bytes of the layout, never a stale
    record."""
    nodes = [pool[i % len(pool)] for i in picks]
    assert encode_nodes(nodes) == _reference_nodes(nodes)
    moved = [NodeInfo(n.id, (n.addr[0], p)) for n, p in zip(pool, ports_after, strict=False)]
    again = moved + nodes
    assert encode_nodes(again) == _reference_nodes(again)
    assert encode_nodes(iter(again)) == _reference_nodes(again)  # any iterable


def test_cached_node_records_keep_the_checks() -> None:
    """A record cached for port 1 is not reused for port True, and a contact of the other
    family or with a bad id is refused even after good ones were cached."""
    ok = NodeInfo(b"\x01" * 20, ("9.9.9.8", 1))
    assert encode_nodes([ok]) == _reference_nodes([ok])
    with pytest.raises(CompactError, match="port must be an int"):
        encode_nodes([ok, NodeInfo(b"\x01" * 20, ("9.9.9.8", True))])  # type: ignore[arg-type]
    with pytest.raises(CompactError, match="not an IPv4 address"):
        encode_nodes([ok, NodeInfo(b"\x02" * 20, ("2001:db8::1", 1))])
    with pytest.raises(CompactError, match="node id must be 20 bytes"):
        encode_nodes([ok, NodeInfo(b"\x03" * 19, ("9.9.9.7", 1))])
    with pytest.raises(CompactError, match="not an IPv6 address"):
        encode_nodes6([NodeInfo(b"\x02" * 20, ("2001:db8::1", 1)), ok])
