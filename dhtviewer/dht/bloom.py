"""BEP 33 scrape filters: the 256-byte Bloom filters of a swarm's seeds (``BFsd``) and
downloaders (``BFpe``), their union, and the population estimate.

Written by hand because the BEP fixes every parameter (m = 2048 bits, k = 2, SHA-1 of the raw
IP address, index bytes little-endian, bit ``i % 8`` of byte ``i // 8``): a general Bloom filter
library would have to be bent into exactly this layout, and a filter that differs by one bit
order distorts every scrape of every node that merges it.

Only IP addresses go in (4 bytes for IPv4, 16 for IPv6), never ports: a peer is counted once
per address. The estimate is the BEP's ``log(c / m) / (k * log(1 - 1/m))`` with ``c`` the number
of zero bits, and the same formula on the OR of several filters estimates the size of the union.
It breaks down near 8,000 inserted addresses (every bit set); ``saturated`` says so.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from dhtviewer.dht.addresses import pack_ip_unmapped

__all__ = ["FILTER_BITS", "FILTER_BYTES", "HASHES", "SATURATION", "BloomFilter"]

FILTER_BYTES = 256
FILTER_BITS = FILTER_BYTES * 8
HASHES = 2
SATURATION = 6000
"""Above this estimate the filter is too full to count on (the BEP's limit for a store)."""

_LOG_KEEP = math.log1p(-1.0 / FILTER_BITS)  # log(1 - 1/m)


def packed_ip(ip: str | bytes) -> bytes:
    """The raw address bytes a filter hashes: 4 for IPv4, 16 for IPv6 (IPv4-mapped IPv6
    addresses count as the IPv4 address, as the peer would on an IPv4 socket:
    ``addresses.pack_ip_unmapped``). ValueError for anything else."""
    if isinstance(ip, bytes):
        if len(ip) not in (4, 16):
            raise ValueError(f"a packed IP address is 4 or 16 bytes, got {len(ip)}")
        return ip
    return pack_ip_unmapped(ip)


class BloomFilter:
    """One BEP 33 filter (mutable: insert, OR in place)."""

    __slots__ = ("_bits",)

    def __init__(self, data: bytes | bytearray | None = None) -> None:
        """An empty filter, or the one whose 256 bytes are ``data`` (ValueError otherwise)."""
        if data is None:
            self._bits = bytearray(FILTER_BYTES)
            return
        if len(data) != FILTER_BYTES:
            raise ValueError(f"a BEP 33 filter is {FILTER_BYTES} bytes, got {len(data)}")
        self._bits = bytearray(data)

    @classmethod
    def of(cls, ips: Iterable[str | bytes]) -> BloomFilter:
        """A filter holding every address of ``ips`` (text or packed)."""
        f = cls()
        for ip in ips:
            f.insert(ip)
        return f

    @staticmethod
    def _indexes(ip: str | bytes) -> tuple[int, int]:
        h = hashlib.sha1(packed_ip(ip)).digest()
        return (h[0] | h[1] << 8) % FILTER_BITS, (h[2] | h[3] << 8) % FILTER_BITS

    def insert(self, ip: str | bytes) -> None:
        for i in self._indexes(ip):
            self._bits[i >> 3] |= 1 << (i & 7)

    def __contains__(self, ip: object) -> bool:
        """Whether ``ip`` may have been inserted (false positives possible, no false
        negatives)."""
        if not isinstance(ip, (str, bytes)):
            return False
        return all(self._bits[i >> 3] & (1 << (i & 7)) for i in self._indexes(ip))

    def __ior__(self, other: BloomFilter) -> BloomFilter:
        bits = self._bits
        for i, b in enumerate(other._bits):
            bits[i] |= b
        return self

    def __or__(self, other: BloomFilter) -> BloomFilter:
        out = BloomFilter(self._bits)
        out |= other
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BloomFilter) and self._bits == other._bits

    def __hash__(self) -> int:
        return hash(bytes(self._bits))

    def __repr__(self) -> str:
        return f"BloomFilter(~{self.estimate():.0f} addresses)"

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def zero_bits(self) -> int:
        return FILTER_BITS - sum(b.bit_count() for b in self._bits)

    def is_empty(self) -> bool:
        return not any(self._bits)

    def estimate(self) -> float:
        """How many distinct addresses the filter holds (the BEP's formula).

        Two edges the BEP's pseudocode leaves to the caller: an empty filter is 0 (the formula,
        with ``c`` capped at m - 1, would say 0.5), and a full filter is the estimate for a
        single zero bit (about 7,800): the most the filter can tell, a lower bound, flagged by
        ``saturated``."""
        zeros = self.zero_bits()
        if zeros == FILTER_BITS:
            return 0.0
        c = min(FILTER_BITS - 1, max(1, zeros))
        return math.log(c / FILTER_BITS) / (HASHES * _LOG_KEEP)

    def saturated(self) -> bool:
        """Too full for the estimate to be trusted (BEP 33: nodes keep swarms below 6,000)."""
        return self.estimate() > SATURATION

    @staticmethod
    def union(filters: Iterable[BloomFilter]) -> BloomFilter:
        """The OR of ``filters`` (an empty filter for none)."""
        out = BloomFilter()
        for f in filters:
            out |= f
        return out
