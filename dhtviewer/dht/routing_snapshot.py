"""Read-only snapshots of a routing table: immutable values the UI (or another thread) can keep,
frozen at the time they were taken."""

from __future__ import annotations

from dataclasses import dataclass

from dhtviewer.dht.kinds import NodeState
from dhtviewer.dht.messages import Addr


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """One routing entry as the UI sees it, frozen at ``RoutingSnapshot.taken_at``."""

    id: bytes
    addr: Addr
    state: NodeState
    rtt: float | None
    last_seen: float
    """Latest of its last answer, its last query and the time it was added."""
    version: bytes | None
    bep42_ok: bool
    failures: int
    bucket: int


@dataclass(frozen=True, slots=True)
class BucketSnapshot:
    """One bucket: its live nodes (in insertion order) and the size of its replacement cache."""

    index: int
    """Bits its nodes share with our id (the last bucket: at least this many)."""
    nodes: tuple[NodeSnapshot, ...]
    replacements: int
    """Candidates waiting in its replacement cache."""
    last_changed: float
    capacity: int = 8
    """Live nodes the bucket may hold (the routing policy's size for this bucket)."""

    @property
    def good(self) -> int:
        return sum(1 for n in self.nodes if n.state == NodeState.GOOD)

    @property
    def questionable(self) -> int:
        return sum(1 for n in self.nodes if n.state == NodeState.QUESTIONABLE)

    @property
    def bad(self) -> int:
        return sum(1 for n in self.nodes if n.state == NodeState.BAD)


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    """The whole table at ``taken_at``: an immutable value, safe to hand to another thread."""

    own_id: bytes
    family: int
    k: int
    buckets: tuple[BucketSnapshot, ...]
    taken_at: float

    @property
    def size(self) -> int:
        """Live nodes (replacement candidates not included)."""
        return sum(len(b.nodes) for b in self.buckets)

    @property
    def good_count(self) -> int:
        return sum(b.good for b in self.buckets)

    @property
    def depth(self) -> int:
        """Number of buckets."""
        return len(self.buckets)
