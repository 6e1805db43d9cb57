"""Oracle routing contacts: what a long-running node's routing table would hold, by brute force.

Forming a 10,000-node network by real bootstrap lookups costs millions of datagrams. A node that
has been up for a while, though, simply holds up to K nodes for every shared-prefix length with its
own id, down to the depth where nobody shares its prefix any more. Over sorted integer ids the
nodes sharing exactly ``i`` leading bits with ``x`` form one contiguous range, so each table costs
a few dozen bisections instead of a network-wide traversal.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence

from dhtviewer.dht.node_id import ID_BITS


class IdIndex:
    """Node ids sorted as integers, for range queries by shared prefix."""

    def __init__(self, ids: Sequence[bytes]) -> None:
        pairs = sorted((int.from_bytes(x, "big"), j) for j, x in enumerate(ids))
        self._keys = [key for key, _ in pairs]
        self._positions = [j for _, j in pairs]

    def __len__(self) -> int:
        return len(self._keys)

    def _count(self, lo: int, hi: int) -> tuple[int, int]:
        keys = self._keys
        return bisect_left(keys, lo), bisect_left(keys, hi)

    def routing_contacts(self, own: bytes, per_bucket: int, rng: random.Random) -> list[int]:
        """Positions (in the ``ids`` given at construction) of up to ``per_bucket`` random nodes
        for every shared-prefix length with ``own``, farthest bucket first: the order in which
        a splitting routing table accepts them without refusing any it would keep."""
        x = int.from_bytes(own, "big")
        keys = self._keys
        positions = self._positions
        at = bisect_left(keys, x)
        self_present = at < len(keys) and keys[at] == x
        out: list[int] = []
        for level in range(ID_BITS):
            shift = ID_BITS - 1 - level
            width = 1 << shift
            prefix = (x >> (shift + 1)) << (shift + 1)  # our first `level` bits, then zeros
            own_bit = x & width
            sibling_lo = prefix | (width ^ own_bit)  # the ids that differ first at bit `level`
            lo, hi = self._count(sibling_lo, sibling_lo + width)
            if hi - lo <= per_bucket:
                out.extend(positions[lo:hi])
            else:
                out.extend(positions[p] for p in rng.sample(range(lo, hi), per_bucket))
            own_lo = prefix | own_bit
            lo, hi = self._count(own_lo, own_lo + width)
            if hi - lo <= (1 if self_present else 0):
                break  # nobody else shares our first level + 1 bits: the table ends here
        return out
