"""Lookup: the state of one iterative Kademlia traversal toward a target (find_node, get_peers,
announce, and the node's own bootstrap and refresh lookups).

The lookup only decides *whom to ask next*, *what to do about a silent node* and *when it is
done*; ``LookupManager`` (``lookups.py``) sends the queries and feeds the answers back. It also
keeps, for every node it asked, who referred it, its hop depth, when it was asked, its RTT and
its outcome: the raw material of the lookup path graph.

Subnet rule (``subnet_of``, from the routing policy): a candidate that shares a /24 (/64) with a
nearer candidate is skipped, as libtorrent's ``dht_restrict_search_ips``: one host answering
with many made-up ids on its own addresses cannot fill the K closest (or our announce targets).
A candidate that failed or is slow frees its subnet for the next one.

*The window* is the K + ``MARGIN`` nearest candidates that have not failed and are not slow (one
per subnet). Whom to ask: the nearest not-yet-asked candidates of the window, while fewer than
``alpha`` queries are in flight *to the K nearest of them*. A query overtaken by nearer
candidates stops counting against ``alpha`` (libtorrent's "aggressive lookups"): when a reply
brings nodes nearer than everything in flight, they are asked at once instead of after the
stale queries come back. The margin asks one node past the K nearest: replies list K contacts
and some of them no longer answer, so a live node close behind them is listed by nobody near
the target; nodes a little farther out do list it.

A silent node: its query passes a *checkpoint* at half the short timeout. If it is among the K
nearest while the lookup is settling (at least K - 2 of them have answered), the query is sent
once more: a lost datagram (1-5% on real networks) would otherwise cost the lookup one of the K
closest nodes, while resending costs one datagram to a node that is dead anyway. Either way the
node becomes *slow* at the full short timeout: it stops holding a slot and stops holding the
lookup open, but a late answer is still used while the lookup runs.

The neighbourhood probe: once the lookup is settling and nothing in its K nearest is left to
ask, it asks one answered node near the edge of that set (``find_node``) for the other half of
the subtree the edge shares with the target. Its neighbours there are the nodes a lookup most
often misses (listed by nobody nearer, since every reply stops at K contacts).

Termination rule: the lookup is done when the K nearest candidates, leaving out those that
failed, the slow ones and subnet duplicates, have all answered. Slow nodes thus never hold a
lookup hostage for the hard timeout; they are overtaken by nodes that did answer. With one
exception, the case libtorrent's traversal covers by waiting up to its 15 s timeout for every
slow node among the K closest: a get_peers lookup that has found *no peer yet* waits for its
slow nodes among the K nearest until they answer or fail, because the one holding the peers
may be just slow (a loaded host, a queue); an empty answer is final only when nobody nearer
could still give one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dhtviewer.dht.kinds import CandidateState, LookupKind
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node_id import ID_BITS, ID_BYTES, distance

MARGIN = 1
"""Candidates past the K nearest that are asked too (see the module docstring)."""
CHECKPOINT = 0.5
"""Fraction of the short timeout after which a silent query may be sent once more."""

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
    slow_at: float | None = None
    """When it becomes slow if still silent (its first query's time plus the short timeout)."""
    waiting: int = 0
    """Its queries in flight that have not passed ``slow_at`` (two after a resend)."""
    checked: bool = False
    """Its first query passed the checkpoint."""
    resent: bool = False

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
        self.active = 0  # candidates in flight, not slow yet
        self.queried = 0  # distinct nodes asked
        self.sent = 0  # queries sent, resends and the probe included
        self.responded = 0
        self.probed = False
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

    def candidate_by_id(self, node_id: bytes) -> Candidate | None:
        return next((c for _, c in self._sorted if c.id == node_id), None)

    def candidates(self) -> list[Candidate]:
        return [c for _, c in self._sorted]

    # --- scheduling ------------------------------------------------------------------------------
    def _window(self, size: int) -> Iterator[Candidate]:
        """The ``size`` nearest candidates that have not failed and are not slow, one per
        subnet, nearest first."""
        counted = 0
        taken: set[bytes] = set()
        for _, c in self._sorted:
            if counted >= size:
                return
            if c.state in (FAILED, SLOW):
                continue
            if c.subnet is not None:
                if c.subnet in taken:
                    continue  # a nearer node of its subnet stands for it
                taken.add(c.subnet)
            counted += 1
            yield c

    def next_queries(self) -> list[Candidate]:
        """Candidates to ask now (marked in flight by the caller via ``mark_sent``)."""
        if self.finished:
            return []
        out: list[Candidate] = []
        in_flight = 0
        for n, c in enumerate(self._window(self.k + MARGIN)):
            if c.state == NEW:
                out.append(c)
            elif c.state == INFLIGHT and n < self.k:
                in_flight += 1
        return out[: max(0, self.alpha - in_flight)]

    def mark_sent(self, cand: Candidate, now: float, short_timeout: float | None = None) -> None:
        """``cand`` was asked at ``now``; it becomes slow ``short_timeout`` later if silent
        (None: when the caller says so, ``on_slow``)."""
        cand.state = INFLIGHT
        cand.sent_at = now
        cand.slow_at = None if short_timeout is None else now + short_timeout
        cand.waiting = 1
        self.active += 1
        self.queried += 1
        self.sent += 1

    def at_checkpoint(self, addr: Addr) -> Candidate | None:
        """The silence of ``addr``'s query is its first (the checkpoint, half the short timeout):
        the candidate, to be kept waiting until its ``slow_at``; None if this is not the
        checkpoint (then it is ``on_slow``)."""
        cand = self._by_addr.get(addr)
        if cand is None or cand.state != INFLIGHT or cand.checked:
            return None
        cand.checked = True
        return cand

    def should_resend(self, cand: Candidate) -> bool:
        """Whether the silent ``cand`` gets its query once more: it is among the K nearest, and
        the lookup is settling (K - 2 of those have answered)."""
        if cand.resent or cand.state != INFLIGHT:
            return False
        near = list(self._window(self.k))
        if cand not in near:
            return False
        return sum(1 for c in near if c.state == ANSWERED) >= self.k - 2

    def mark_resent(self, cand: Candidate) -> None:
        cand.resent = True
        cand.waiting += 1
        self.sent += 1

    def probe(self) -> tuple[Candidate, bytes] | None:
        """The neighbourhood probe to send now, once per lookup: (whom to ask, the target to ask
        for), or None. See the module docstring."""
        if self.probed or self.finished:
            return None
        near = list(self._window(self.k))
        if len(near) < self.k or any(c.state == NEW for c in near):
            return None
        answered = [c for c in near if c.state == ANSWERED and c.id is not None]
        if len(answered) < max(1, self.k - 2):
            return None
        edge = near[-1]
        if edge.dist < 0:
            return None
        shared = ID_BITS - edge.dist.bit_length()  # leading bits the edge shares with the target
        if shared >= ID_BITS:
            return None
        # The edge's side of the subtree: the target with the first bit the edge differs in
        # flipped. A node on that side knows its own neighbourhood best.
        flipped = int.from_bytes(self.target, "big") ^ (1 << (ID_BITS - 1 - shared))
        same_side = [c for c in answered if c.dist.bit_length() == edge.dist.bit_length()]
        self.probed = True
        self.sent += 1
        return (same_side or answered)[0], flipped.to_bytes(ID_BYTES, "big")

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
        """One of ``addr``'s queries passed ``slow_at``: when none is left waiting, the candidate
        is slow (it frees its slot). Returns the candidate if it just became slow."""
        cand = self._by_addr.get(addr)
        if cand is None or cand.state != INFLIGHT:
            return None
        cand.waiting -= 1
        if cand.waiting > 0:
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
        """True when the K nearest candidates that did not fail and are not slow have all
        answered (a get_peers lookup without peers also waits for its slow ones among them:
        see the module docstring)."""
        patient = self.kind == LookupKind.GET_PEERS and not self.peers
        counted = 0
        taken: set[bytes] = set()
        for _, c in self._sorted:
            if c.state == FAILED:
                continue
            if c.state == SLOW:
                if patient:
                    return False
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
