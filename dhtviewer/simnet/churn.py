"""Churn: simulated nodes leave and join while the network runs; its size stays steady.

Every ``step`` takes the nodes due since the last one (``rate`` per second) and, for each,

- one answering node leaves (``AWAY``): it stops answering, but the nodes that knew it keep it
  in their tables, as the stale contacts of a real network;
- one node joins: with probability ``new_share`` a node nobody has seen (``UNBORN`` until now:
  from then on it answers and appears in the tables of the nodes near it), otherwise the node
  that has been away longest comes back with its old id.

So as many nodes join as leave, whatever the rate, and the share of new ids is the profile's.
When the pool of unborn nodes (made when the network is built, sized for a session of churn)
runs out, every join is a return. Routers and scenario nodes never leave.

The flags live in the index (shared memory when several processes serve: churn runs in one of
them, the coordinator, and the others see its changes at once).
"""

from __future__ import annotations

import random
from collections import deque

from dhtviewer.simnet import index as ix
from dhtviewer.simnet.index import NodeIndex

__all__ = ["Churn"]

MAX_STEP = 1.0
"""A step never makes up for more than this many seconds (after a stall, churn does not burst)."""
_NEVER_LEAVES = ix.SILENT | ix.PINNED | ix.SYBIL


class Churn:
    """Leaves and joins at ``rate`` per second (see the module docstring)."""

    def __init__(self, index: NodeIndex, rate: float, new_share: float, rng: random.Random,
                 now: float) -> None:
        self.index = index
        self.rate = rate
        self.new_share = new_share
        self.rng = rng
        away = index.positions_with(ix.AWAY).tolist()
        rng.shuffle(away)
        self.away: deque[int] = deque(away)
        """Nodes away, the longest gone first."""
        unborn = index.positions_with(ix.UNBORN).tolist()
        rng.shuffle(unborn)
        self.unborn = unborn
        self._credit = 0.0
        self._last = now
        self.left = 0
        self.came_back = 0
        self.joined = 0
        """Nodes that joined with a new id."""

    def step(self, now: float) -> None:
        dt = min(max(0.0, now - self._last), MAX_STEP)
        self._last = now
        self._credit += self.rate * dt
        count = int(self._credit)
        if not count:
            return
        self._credit -= count
        flags = self.index.flags
        rng = self.rng
        # Joins first: a node that leaves in this step is not the one that has been away longest.
        for _ in range(count):
            if self.unborn and (not self.away or rng.random() < self.new_share):
                pos = self.unborn.pop()
                flags[pos] &= ~ix.UNBORN & 0xFF
                self.joined += 1
            elif self.away:
                pos = self.away.popleft()
                if flags[pos] & ix.AWAY:
                    flags[pos] &= ~ix.AWAY & 0xFF
                    self.came_back += 1
        n = self.index.n
        for _ in range(count):
            for _ in range(16):  # a random answering node (a few draws find one)
                pos = rng.randrange(n)
                if not flags[pos] & _NEVER_LEAVES:
                    flags[pos] |= ix.AWAY
                    self.away.append(pos)
                    self.left += 1
                    break

    def to_json(self) -> dict[str, float | int]:
        return {"rate_per_s": self.rate, "new_id_share": self.new_share, "left": self.left,
                "came_back": self.came_back, "joined_new": self.joined,
                "away": len(self.away), "unborn_left": len(self.unborn)}
