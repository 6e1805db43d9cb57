"""Compact address encodings of BEP 5 and BEP 32.

A compact peer is the raw address followed by the port, both big endian: 6 bytes for IPv4, 18 for
IPv6. A compact node is a 20-byte node id followed by a compact peer: 26 bytes (IPv4, key
``nodes``) or 38 bytes (IPv6, key ``nodes6``). Node lists are such records concatenated.

Addresses are ``(text_ip, port)`` pairs. Decoded text is canonical (dotted quad; the compressed
``ipaddress`` form for IPv6) so that equal addresses compare equal as strings, which the routing
table and the peer store rely on. An address that cannot be encoded, or a value that cannot be
decoded at all (a peer of the wrong length, a ``values`` entry that is not a byte string),
raises ``CompactError`` (a ``ValueError``).

Decoding is as liberal as deployed clients (libtorrent reads whole records and ignores the
rest): a ``nodes``/``nodes6`` string with a trailing partial record gives its complete records,
and a ``values`` entry of a length no peer has is skipped. ``partial_records`` counts such
oddities in a field, so the caller can count them instead of dropping a whole reply. Only a
value of the wrong *type* is an error.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from functools import lru_cache
from operator import attrgetter, itemgetter

from dhtviewer.dht.addresses import pack_ip
from dhtviewer.dht.messages import Addr, NodeInfo

__all__ = [
    "NODE4_LEN",
    "NODE6_LEN",
    "PEER4_LEN",
    "PEER6_LEN",
    "CompactError",
    "decode_nodes",
    "decode_nodes6",
    "decode_peer",
    "decode_values",
    "encode_nodes",
    "encode_nodes6",
    "encode_peer",
    "encode_values",
    "partial_records",
]

PEER4_LEN = 6
PEER6_LEN = 18
NODE4_LEN = 26
NODE6_LEN = 38
_ID_LEN = 20


class CompactError(ValueError):
    """A compact address or node list that cannot be decoded, or an address that cannot be
    encoded."""


@lru_cache(maxsize=8192, typed=True)
def _pack(host: str, port: int) -> bytes:
    """The compact form of one address.

    Cached: we send the same few hundred routing-table contacts over and over, and parsing text
    through ``ipaddress`` costs more than everything else in encoding a node record. ``typed``
    keeps ``True`` from hitting the entry of port 1 (and so skipping the port check).
    """
    if not isinstance(host, str):
        raise CompactError(f"address must be text, got {type(host).__name__}")
    if type(port) is not int or not 0 <= port <= 0xFFFF:
        raise CompactError(f"port must be an int in 0..65535, got {port!r}")
    # A scope ("fe80::1%eth0") has no meaning on the wire and would not survive a round trip.
    try:
        if "%" not in host:
            return pack_ip(host) + port.to_bytes(2, "big")
    except ValueError:
        pass
    raise CompactError(f"not an IP address: {host!r}")


def _pack_addr(addr: Addr) -> bytes:
    try:
        host, port = addr
        return _pack(host, port)
    except (TypeError, ValueError) as err:  # unhashable parts, or not a pair
        if isinstance(err, CompactError):
            raise
        raise CompactError(f"not an (ip, port) pair: {addr!r}") from None


# Decoding runs for every node of every response, so it avoids per-record Python work:
# struct splits the records and a table turns octets into text.
_NODE4 = struct.Struct("!20s4BH")
_NODE6 = struct.Struct("!20s16sH")
_PEER4 = struct.Struct("!4BH")
_PEER6 = struct.Struct("!16sH")
_OCTET = tuple(str(i) for i in range(256))


@lru_cache(maxsize=4096)
def _ip6_text(raw: bytes) -> str:
    """Canonical text of 16 raw bytes (cached: ``ipaddress`` is slow and contacts recur)."""
    return ipaddress.IPv6Address(raw).compressed


def encode_peer(addr: Addr) -> bytes:
    """6 bytes for an IPv4 address, 18 for IPv6."""
    return _pack_addr(addr)


def decode_peer(b: bytes) -> Addr:
    """Decode one compact peer; its length (6 or 18) says the family."""
    o = _OCTET
    if len(b) == PEER4_LEN:
        a, b_, c, d, port = _PEER4.unpack(b)
        return f"{o[a]}.{o[b_]}.{o[c]}.{o[d]}", port
    if len(b) == PEER6_LEN:
        raw, port = _PEER6.unpack(b)
        return _ip6_text(raw), port
    raise CompactError(f"compact peer must be 6 or 18 bytes, got {len(b)}")


def encode_values(peers: Iterable[Addr]) -> list[bytes]:
    """A get_peers ``values`` list: one compact peer per entry, either family."""
    return [_pack_addr(p) for p in peers]


def decode_values(values: Iterable[bytes]) -> tuple[Addr, ...]:
    """Decode a ``values`` list; each entry's length (6 or 18) says its family. An entry of
    another length is skipped (see ``partial_records``); one that is not a byte string raises
    ``CompactError``."""
    out: list[Addr] = []
    o = _OCTET
    for i, v in enumerate(values):
        if type(v) is not bytes:
            raise CompactError(f"values[{i}] must be a byte string, got {type(v).__name__}")
        if len(v) == PEER4_LEN:
            a, b, c, d, port = _PEER4.unpack(v)
            out.append((f"{o[a]}.{o[b]}.{o[c]}.{o[d]}", port))
        elif len(v) == PEER6_LEN:
            raw, port = _PEER6.unpack(v)
            out.append((_ip6_text(raw), port))
    return tuple(out)


_ID = attrgetter("id")
_ADDR = attrgetter("addr")
_HOST = itemgetter(0)
_PORT = itemgetter(1)
_TWO = 2


@lru_cache(maxsize=16384, typed=True)
def _node_record(nid: bytes, host: str, port: int) -> bytes:
    """One compact node (id + compact peer), either family. Cached: a reply hands out the same
    few hundred routing-table contacts over and over. Whether the record has the length its
    list needs is for the caller to check (the cache does not know the list)."""
    if type(nid) is not bytes or len(nid) != _ID_LEN:
        raise CompactError("node id must be 20 bytes")
    return nid + _pack(host, port)


def _encode_node_list(nodes: Iterable[NodeInfo], peer_len: int, key: str) -> bytes:
    # Hot path (every find_node/get_peers reply): cached records, one length check for all.
    # Anything unusual (a record of the other family, a bad id or address, an unhashable
    # part) goes the slow way below, which names the culprit.
    items = nodes if isinstance(nodes, (tuple, list)) else list(nodes)
    try:
        addrs = list(map(_ADDR, items))
        # Only pairs take the fast way (the slow one says what is wrong with the others).
        if all(map(_TWO.__eq__, map(len, addrs))):
            data = b"".join(
                map(_node_record, map(_ID, items), map(_HOST, addrs), map(_PORT, addrs))
            )
            if len(data) == len(items) * (_ID_LEN + peer_len):
                return data
    except (TypeError, ValueError, AttributeError):
        pass
    return _encode_node_list_checked(items, peer_len, key)


def _encode_node_list_checked(nodes: Iterable[NodeInfo], peer_len: int, key: str) -> bytes:
    parts: list[bytes] = []
    try:
        for node in nodes:
            nid = node.id
            host, port = node.addr
            peer = _pack(host, port)
            if len(nid) != _ID_LEN:
                raise CompactError(f"node id must be 20 bytes, got {len(nid)}")
            if len(peer) != peer_len:
                family = "IPv4" if peer_len == PEER4_LEN else "IPv6"
                raise CompactError(f"{host} is not an {family} address; cannot go in '{key}'")
            parts.append(nid + peer)
    except (TypeError, ValueError) as err:
        if isinstance(err, CompactError):
            raise
        raise CompactError(f"not a node with an (ip, port) address: {err}") from None
    return b"".join(parts)


def encode_nodes(nodes: Iterable[NodeInfo]) -> bytes:
    """IPv4 contacts as a ``nodes`` string (26 bytes each); an IPv6 contact is an error."""
    return _encode_node_list(nodes, PEER4_LEN, "nodes")


def encode_nodes6(nodes: Iterable[NodeInfo]) -> bytes:
    """IPv6 contacts as a ``nodes6`` string (38 bytes each); an IPv4 contact is an error."""
    return _encode_node_list(nodes, PEER6_LEN, "nodes6")


def decode_nodes(b: bytes) -> tuple[NodeInfo, ...]:
    """Decode a ``nodes`` string (IPv4, 26 bytes per contact); a trailing partial record is
    ignored."""
    tail = len(b) % NODE4_LEN
    if tail:
        b = b[:-tail]
    o = _OCTET
    return tuple(
        [
            NodeInfo(nid, (f"{o[a]}.{o[b_]}.{o[c]}.{o[d]}", port))
            for nid, a, b_, c, d, port in _NODE4.iter_unpack(b)
        ]
    )


def decode_nodes6(b: bytes) -> tuple[NodeInfo, ...]:
    """Decode a ``nodes6`` string (IPv6, 38 bytes per contact); a trailing partial record is
    ignored."""
    tail = len(b) % NODE6_LEN
    if tail:
        b = b[:-tail]
    return tuple(
        [NodeInfo(nid, (_ip6_text(raw), port)) for nid, raw, port in _NODE6.iter_unpack(b)]
    )


def partial_records(
    nodes: bytes | None = None, nodes6: bytes | None = None, values: Iterable[bytes] = ()
) -> int:
    """How many records the decoders above leave out: a trailing partial record of ``nodes``
    or ``nodes6`` counts one each, and so does every ``values`` entry of neither peer length.
    The other records are used; this says how odd the reply was."""
    count = 0
    if nodes is not None and len(nodes) % NODE4_LEN:
        count += 1
    if nodes6 is not None and len(nodes6) % NODE6_LEN:
        count += 1
    for v in values:
        if type(v) is bytes and len(v) != PEER4_LEN and len(v) != PEER6_LEN:
            count += 1
    return count
