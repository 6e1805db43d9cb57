"""Latency models for the simulated network: how long a datagram takes from one node to another.

A model maps a (source, destination) pair of node indices to a one-way delay in seconds. The
log-normal model gives every link a fixed base delay (a hash of the unordered pair, so both
directions agree and nothing has to be stored per link: a 10,000-node network has 50 million
possible links) plus a small random jitter drawn from the network's generator.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

_MASK64 = (1 << 64) - 1
_TWO_PI = 2.0 * math.pi
_MIN_DELAY = 0.001  # even a neighbour in the same rack is not instantaneous


class LatencyModel(Protocol):
    """What SimNetwork asks for every datagram it schedules."""

    def delay(self, src: int, dst: int, rng: random.Random) -> float:
        """One-way delay in seconds from node ``src`` to node ``dst`` (network indices)."""
        ...


@dataclass(frozen=True, slots=True)
class ConstantLatency:
    """Every datagram takes exactly ``seconds``: the simplest model to reason about in tests."""

    seconds: float = 0.08

    def delay(self, src: int, dst: int, rng: random.Random) -> float:
        return self.seconds


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread 64-bit hash of an integer."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


@dataclass(frozen=True, slots=True)
class LogNormalLatency:
    """Per-link base delay ``median * exp(sigma * z)``, z standard normal fixed per unordered link
    (so the median over links is ``median``), times a uniform jitter factor in
    ``[1 - jitter, 1 + jitter]`` drawn per datagram. ``salt`` selects another set of links."""

    median: float = 0.08
    sigma: float = 0.5
    jitter: float = 0.05
    salt: int = 0

    def base(self, src: int, dst: int) -> float:
        """The link's fixed delay, without jitter (same for both directions)."""
        lo, hi = (src, dst) if src <= dst else (dst, src)
        h = _mix64(((lo << 32) ^ hi ^ (self.salt * 0x9E3779B97F4A7C15)) & _MASK64)
        # Box-Muller from the two 32-bit halves; +0.5 keeps u1 away from 0 (log(0)).
        u1 = ((h >> 32) + 0.5) / 4294967296.0
        u2 = (h & 0xFFFFFFFF) / 4294967296.0
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)
        return max(_MIN_DELAY, self.median * math.exp(self.sigma * z))

    def delay(self, src: int, dst: int, rng: random.Random) -> float:
        d = self.base(src, dst)
        if self.jitter:
            d *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return max(_MIN_DELAY, d)
