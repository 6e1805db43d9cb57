"""Lookup: the state of one iterative Kademlia traversal toward a target (find_node, get_peers,
announce, and the node's own bootstrap and refresh lookups).

The lookup only decides *whom to ask next* and *when it is done*; ``LookupManager``
(``lookups.py``) sends the queries and feeds the answers back. It also keeps, for every node it
asked, who referred it, its hop depth, when it was asked, its RTT and its outcome: the raw
material of the lookup path graph.

Subnet rule (``subnet_of``, from the routing policy): a candidate that shares a /24 (/64) with a
nearer candidate is skipped, as libtorrent's ``dht_restrict_search_ips``: one host answering
with many made-up ids on its own addresses cannot fill the K closest (or our announce targets).
A candidate that failed or is slow frees its subnet for the next one.

Termination rule: the lookup is done when the K closest candidates it knows of, leaving out those
that failed, those that are *slow* (past the short timeout) and subnet duplicates, have all
answered. Slow nodes thus
never hold a lookup hostage for the hard timeout; they are just overtaken by closer or equally
close nodes that did answer. A late answer from a slow node is still used while the lookup runs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dhtviewer.dht.kinds import CandidateState, LookupKind
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node_id import distance

NEW = CandidateState.NEW
INFLIGHT = CandidateState.INFLIGHT
SLOW = CandidateState.SLOW
ANSWERED = CandidateState.ANSWERED
FAILED = CandidateState.FAILED


@dataclass(slots=True)
class Candidate:
    """A node the lookup knows about. ``id`` is None for a bootstrap address whose id we do not
    know yet (sorted first: distance -1, so it is asked before anything else)."""

    id: bytes | None
    addr: Addr
    dist: int
    referrer: bytes | None
    depth: int
    state: CandidateState = NEW
    sent_at: float | None = None
    rtt: float | None = None
    token: bytes | None = None
    peers: int = 0
    error: str | None = None
    subnet: bytes | None = None
    """Its network under the subnet rule (None: exempt)."""

    def sort_key(self) -> tuple[int, str, int]:
        return (self.dist, self.addr[0], self.addr[1])


class Lookup:
    """State of one lookup of ``kind``. ``short_timeout``: this lookup's own short timeout
    (None: the node's, adaptive by default)."""

    def __init__(
        self,
        lookup_id: int,
        target: bytes,
        kind: LookupKind,
        now: float,
        *,
        k: int,
        alpha: int,
        max_candidates: int = 1000,
        short_timeout: float | None = None,
        subnet_of: Callable[[str], bytes | None] | None = None,
    ) -> None:
        self.id = lookup_id
        self.target = target
        self.kind = kind
        self.started_at = now
        self.k = k
        self.alpha = alpha
        self.short_timeout = short_timeout
        self._subnet_of = subnet_of
        self._max_candidates = max_candidates
        self._sorted: list[tuple[tuple[int, str, int], Candidate]] = []
        self._by_addr: dict[Addr, Candidate] = {}
        self._seen_ids: set[bytes] = set()
        self.peers: dict[Addr, int] = {}  # peer -> how many nodes returned it (insertion ordered)
        self.first_peer_at: float | None = None
        self.active = 0  # queries in flight that still hold a slot (not slow)
        self.queried = 0
        self.responded = 0
        self.finished = False
        self.finished_at: float | None = None

    # --- candidates ------------------------------------------------------------------------------
    def add_seed(self, addr: Addr) -> bool:
        """A contact with an unknown id (bootstrap router)."""
        if addr in self._by_addr:
            return False
        self._insert(Candidate(None, addr, -1, None, 0))
        return True

    def add_nodes(self, nodes: Iterable[NodeInfo], referrer: bytes | None, depth: int) -> int:
        """Add contacts returned by ``referrer`` (None: from our table); returns the new count."""
        new = 0
        for n in nodes:
            if n.id in self._seen_ids or n.addr in self._by_addr:
                continue
            cand = Candidate(n.id, n.addr, distance(n.id, self.target), referrer, depth)
            if self._subnet_of is not None:
                cand.subnet = self._subnet_of(n.addr[0])
            self._insert(cand)
            new += 1
        return new

    def _insert(self, cand: Candidate) -> None:
        if cand.id is not None:
            self._seen_ids.add(cand.id)
        self._by_addr[cand.addr] = cand
        key = cand.sort_key()
        bisect.insort(self._sorted, (key, cand))
        # Bounded: drop the farthest never-asked candidates; they could not matter anyway.
        if len(self._sorted) > self._max_candidates:
            for i in range(len(self._sorted) - 1, -1, -1):
                victim = self._sorted[i][1]
                if victim.state == NEW:
                    del self._sorted[i]
                    del self._by_addr[victim.addr]
                    break

    def candidate(self, addr: Addr) -> Candidate | None:
        return self._by_addr.get(addr)

    def candidates(self) -> list[Candidate]:
        return [c for _, c in self._sorted]

    # --- scheduling ------------------------------------------------------------------------------
    def next_queries(self) -> list[Candidate]:
        """Candidates to ask now (marked in flight by the caller via ``mark_sent``)."""
        if self.finished:
            return []
        out: list[Candidate] = []
        slots = self.alpha - self.active
        if slots <= 0:
            return out
        counted = 0  # non-failed, non-slow candidates seen so far, nearest first
        taken: set[bytes] = set()
        for _, c in self._sorted:
            if c.state in (FAILED, SLOW):
                continue
            if c.subnet is not None:
                if c.subnet in taken:
                    continue  # a nearer node of its subnet stands for it
                taken.add(c.subnet)
            if counted >= self.k:
                break
            counted += 1
            if c.state == NEW:
                out.append(c)
                if len(out) >= slots:
                    break
        return out

    def mark_sent(self, cand: Candidate, now: float) -> None:
        cand.state = INFLIGHT
        cand.sent_at = now
        self.active += 1
        self.queried += 1

    def on_response(
        self, addr: Addr, node_id: bytes, now: float, token: bytes | None
    ) -> Candidate | None:
        cand = self._by_addr.get(addr)
        if cand is None or cand.state not in (INFLIGHT, SLOW):
            return None
        if cand.state == INFLIGHT:
            self.active -= 1
        if cand.id is None or cand.id != node_id:
            # A seed told us its id (or a node changed id): re-sort it at its real distance.
            self._sorted.remove((cand.sort_key(), cand))
            cand.id = node_id
            cand.dist = distance(node_id, self.target)
            self._seen_ids.add(node_id)
            bisect.insort(self._sorted, (cand.sort_key(), cand))
        cand.state = ANSWERED
        cand.rtt = now - (cand.sent_at or now)
        cand.token = token
        self.responded += 1
        return cand

    def on_slow(self, addr: Addr) -> Candidate | None:
        """The query to ``addr`` passed its short timeout: it frees its slot. Returns the
        candidate if that changed anything."""
        cand = self._by_addr.get(addr)
        if cand is None or cand.state != INFLIGHT:
            return None
        cand.state = SLOW
        self.active -= 1
        return cand

    def on_failure(self, addr: Addr, error: str | None = None) -> Candidate | None:
        cand = self._by_addr.get(addr)
        if cand is None or cand.state not in (INFLIGHT, SLOW):
            return None
        if cand.state == INFLIGHT:
            self.active -= 1
        cand.state = FAILED
        cand.error = error
        return cand

    def add_peers(self, peers: Iterable[Addr], now: float) -> list[Addr]:
        new: list[Addr] = []
        for p in peers:
            if p in self.peers:
                self.peers[p] += 1
            else:
                self.peers[p] = 1
                new.append(p)
        if new and self.first_peer_at is None:
            self.first_peer_at = now
        return new

    def is_done(self) -> bool:
        """True when the K nearest live, non-slow candidates have all answered, and nothing
        is in flight that could still be nearer (in flight queries hold the lookup open)."""
        counted = 0
        taken: set[bytes] = set()
        for _, c in self._sorted:
            if c.state in (FAILED, SLOW):
                continue
            if c.subnet is not None:
                if c.subnet in taken:
                    continue
                taken.add(c.subnet)
            if c.state != ANSWERED:
                return False
            counted += 1
            if counted >= self.k:
                return True
        # Fewer than K candidates answered: done when nobody is left to ask or waiting.
        return self.active == 0 and not any(c.state == SLOW for _, c in self._sorted)

    def closest(self, count: int | None = None) -> list[Candidate]:
        """The nearest candidates that answered, nearest first, at most one per subnet."""
        limit = self.k if count is None else count
        out: list[Candidate] = []
        taken: set[bytes] = set()
        for _, c in self._sorted:
            if c.state != ANSWERED or c.id is None:
                continue
            if c.subnet is not None:
                if c.subnet in taken:
                    continue
                taken.add(c.subnet)
            out.append(c)
            if len(out) >= limit:
                break
        return out
