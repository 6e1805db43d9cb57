"""Where the simulated nodes live: their loopback addresses and ports.

Linux delivers every address of 127.0.0.0/8 to the loopback interface, so a network of a
million nodes needs no configuration, only a plan of which node has which address. The plan
here draws the nodes' addresses at random from a block of 127/8 (127.64.0.0/10 by default,
about four million addresses), so that the few dozen nodes one lookup meets rarely share a
/24, as on the Internet, where a subnet-diversity rule is meant to keep a Sybil cluster (whose
members do share one) from filling a routing table. A network too large for the block takes
more of 127/8; 127.0.0.0/16, where the testnets and the tests live, is never used.

Host bytes 0 and 255 are skipped (some code treats them as network or broadcast addresses), and
the first ``RESERVED_SUBNETS`` /24s of the block are kept out of the random draw: attack
scenarios put their Sybil clusters there, one /24 each.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from dhtviewer.simnet.options import DEFAULT_BASE

__all__ = [
    "DEFAULT_BASE",
    "RESERVED_SUBNETS",
    "AddressPlan",
    "ip_text",
]

DEFAULT_PREFIX = 10
"""127.64.0.0/10: 4,194,304 addresses, 4,128,768 of them usable by nodes."""
RESERVED_SUBNETS = 64
"""/24s at the start of the block that the random draw never uses (scenario Sybil clusters)."""
_HOSTS_PER_SUBNET = 254  # host bytes 1..254
_LOOPBACK_LO = 127 << 24
_LOOPBACK_HI = 128 << 24  # exclusive
_TESTNETS_HI = _LOOPBACK_LO + (1 << 16)  # 127.0.0.0/16 is the testnets' and the tests'
MAX_FILL = 0.75
"""Largest share of a block's usable addresses a network may take before the plan widens the
block: beyond it, most /24s would be crowded and "rarely share a /24" would no longer hold."""


def ip_text(ip: int) -> str:
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


@dataclass(frozen=True, slots=True)
class AddressPlan:
    """A block of 127/8 (``first`` .. ``last`` inclusive, as integers) for ``nodes`` nodes.

    ``for_nodes`` picks the block: ``base``/10, then wider (down to /8) while the nodes would
    take more than ``MAX_FILL`` of its usable addresses. Raises ``ValueError`` for a base
    outside 127/8 or inside 127.0.0.0/16, or for more nodes than 127/8 can hold."""

    first: int
    last: int

    @classmethod
    def for_nodes(cls, nodes: int, base: str = DEFAULT_BASE) -> AddressPlan:
        try:
            start = int(ipaddress.IPv4Address(base))
        except ValueError:
            raise ValueError(f"--base must be an IPv4 address, got {base!r}") from None
        if not _LOOPBACK_LO <= start < _LOOPBACK_HI:
            raise ValueError(f"--base must be in 127.0.0.0/8, got {base}")
        if start < _TESTNETS_HI:
            raise ValueError(f"--base must not be in 127.0.0.0/16 (testnets and tests), got {base}")
        for prefix in range(DEFAULT_PREFIX, 7, -1):
            size = 1 << (32 - prefix)
            first = max(start & ~(size - 1), _TESTNETS_HI)
            plan = cls(first, (start & ~(size - 1)) + size - 1)
            if nodes <= MAX_FILL * plan.usable:
                return plan
        raise ValueError(
            f"{nodes:,} nodes do not fit in 127.0.0.0/8 (at most "
            f"{int(MAX_FILL * cls(_TESTNETS_HI, _LOOPBACK_HI - 1).usable):,})"
        )

    @property
    def subnets(self) -> int:
        return (self.last - self.first + 1) >> 8

    @property
    def usable(self) -> int:
        """Addresses the random draw may hand out."""
        return max(0, self.subnets - RESERVED_SUBNETS) * _HOSTS_PER_SUBNET

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def cidr(self) -> str:
        return f"{ip_text(self.first)}-{ip_text(self.last)}"

    def reserved_subnet(self, i: int) -> int:
        """The first address (host byte 0) of reserved /24 number ``i``."""
        if not 0 <= i < RESERVED_SUBNETS:
            raise ValueError(f"reserved subnet {i} out of range")
        return self.first + (i << 8)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` distinct addresses (uint32) at random from the usable ones, in random order."""
        if n > self.usable:
            raise ValueError(f"{n:,} addresses wanted, {self.usable:,} usable")
        picks = rng.choice(self.usable, size=n, replace=False).astype(np.uint32)
        subnet = picks // _HOSTS_PER_SUBNET + RESERVED_SUBNETS
        host = picks % _HOSTS_PER_SUBNET + 1
        return (np.uint32(self.first) + (subnet << np.uint32(8)) + host).astype(np.uint32)

    def contains(self, ip: int) -> bool:
        return self.first <= ip <= self.last
