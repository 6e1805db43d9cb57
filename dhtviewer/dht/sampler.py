"""Sampler: the BEP 51 crawler's schedule: which node to ask for ``sample_infohashes`` next,
and when, at a bounded rate.

The walk. Every query carries a fresh random ``target``, so the ``nodes`` of each reply are
contacts near a random point of the id space; the sampler asks the contacts it learns in random
order. This spreads the crawl over the whole id space instead of circling one region, and
reaches every part of it with one query per node (the traversal BEP 51 designed ``target`` for).
Nodes that do not speak BEP 51 still return contacts (libtorrent answers any query carrying a
``target`` like a ``find_node``), so they keep the walk going; they are just not asked again.

Honouring the BEP. A node is never asked again before its ``interval`` has passed (BEP 51: the
sample it returns does not change within it). It is asked again after it only if it said it
stores more info-hashes (``num``) than it returned, and at most ``max_visits`` times in all.

Bounds. At most ``rate`` queries per second on average (token bucket, bursts up to ``burst``),
at most ``max_inflight`` at once, and at most ``max_known`` nodes remembered (contacts beyond
that are counted and dropped), so a crawl has a fixed cost whatever the network returns. A query
past its short timeout (``on_slow``) stops counting against ``max_inflight``, as in a lookup: a
fifth of the contacts a real network hands out never answer, and each would otherwise hold a
slot for the whole hard timeout, capping the crawl far below its rate (measured on the
simulated Mainline: 14 answers/s at a rate of 50 with 16 slots). The queries still outstanding
are bounded by the rate times the hard timeout.

Sans-IO like the rest of the core: the node sends what ``due`` returns, and feeds back replies
and failures; ``next_deadline`` says when to call ``due`` again.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node_id import random_id

__all__ = ["SampleTarget", "Sampler"]

_MAX_INTERVAL = 21600  # BEP 51: the permissible range of ``interval`` is 0..21600 s


@dataclass(slots=True)
class SampleTarget:
    """What the sampler knows of one node."""

    node: NodeInfo
    visits: int = 0
    inflight: bool = False
    slow: bool = False
    """In flight past its short timeout: no longer holds one of the ``max_inflight`` slots."""
    supported: bool | None = None
    """None until it answered: True if it returned ``samples``, False if it did not."""
    next_at: float | None = None
    """Earliest time it may be asked again (None: not to be asked again)."""


@dataclass(slots=True)
class SamplerCounts:
    """What one crawl did (counts only grow)."""

    queried: int = 0
    replied: int = 0
    failed: int = 0
    """No answer, or an error reply."""
    slow: int = 0
    """Queries past their short timeout (their slot given to the next node)."""
    supported: int = 0
    """Replies with ``samples`` (BEP 51 spoken)."""
    unsupported: int = 0
    dropped_contacts: int = 0
    """Contacts not remembered: ``max_known`` were already."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Sampler:
    def __init__(
        self,
        rng: random.Random,
        now: float,
        *,
        rate: float,
        burst: float | None = None,
        max_inflight: int = 16,
        max_known: int = 100_000,
        max_visits: int = 4,
        min_interval: float = 60.0,
    ) -> None:
        """``min_interval``: floor of the wait before asking a node again, whatever ``interval``
        it announced (0 would let a node that says "0" be hammered)."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rng = rng
        self.rate = rate
        self.burst = max(1.0, rate if burst is None else burst)
        self.max_inflight = max(1, max_inflight)
        self.max_known = max_known
        self.max_visits = max(1, max_visits)
        self.min_interval = min_interval
        self._tokens = self.burst
        self._updated = now
        self._known: dict[Addr, SampleTarget] = {}
        self._frontier: list[Addr] = []  # never asked, in no order (picked at random)
        self._revisits: list[tuple[float, Addr]] = []  # (due time, addr) heap
        self.inflight = 0
        self.counts = SamplerCounts()

    # --- input -------------------------------------------------------------------------------
    def add_contacts(self, nodes: Iterable[NodeInfo]) -> int:
        """Contacts to crawl (from the routing table, a bootstrap, or a reply). Returns how many
        were new."""
        new = 0
        for n in nodes:
            if n.addr in self._known:
                continue
            if len(self._known) >= self.max_known:
                self.counts.dropped_contacts += 1
                continue
            self._known[n.addr] = SampleTarget(n)
            self._frontier.append(n.addr)
            new += 1
        return new

    def on_reply(
        self,
        addr: Addr,
        node_id: bytes,
        now: float,
        *,
        supported: bool,
        returned: int = 0,
        num: int | None = None,
        interval: int | None = None,
        contacts: Iterable[NodeInfo] = (),
    ) -> None:
        """``addr`` answered: ``supported`` if the reply had ``samples`` (``returned`` of them,
        ``num`` stored, ``interval``), and ``contacts`` to crawl next."""
        t = self._known.get(addr)
        if t is not None and t.inflight:
            self._done(t)
            self.counts.replied += 1
            t.node = NodeInfo(node_id, addr)
            t.supported = supported
            if supported:
                self.counts.supported += 1
            else:
                self.counts.unsupported += 1
            if supported and num is not None and num > returned and t.visits < self.max_visits:
                wait = max(self.min_interval, float(min(max(interval or 0, 0), _MAX_INTERVAL)))
                t.next_at = now + wait
                heapq.heappush(self._revisits, (t.next_at, addr))
        self.add_contacts(contacts)

    def on_failure(self, addr: Addr) -> None:
        """No answer (timeout) or an error reply: not asked again."""
        t = self._known.get(addr)
        if t is not None and t.inflight:
            self._done(t)
            self.counts.failed += 1

    def on_slow(self, addr: Addr) -> None:
        """``addr`` is past its short timeout: its slot goes to the next node (its answer, if
        it comes, still counts)."""
        t = self._known.get(addr)
        if t is not None and t.inflight and not t.slow:
            t.slow = True
            self.inflight -= 1
            self.counts.slow += 1

    def _done(self, t: SampleTarget) -> None:
        if not t.slow:
            self.inflight -= 1
        t.inflight = False
        t.slow = False

    # --- output ------------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def due(self, now: float) -> list[tuple[NodeInfo, bytes]]:
        """The (node, target) pairs to query now; each is counted as in flight until
        ``on_reply``/``on_failure``."""
        self._refill(now)
        out: list[tuple[NodeInfo, bytes]] = []
        while self._tokens >= 1.0 and self.inflight < self.max_inflight:
            t = self._pick(now)
            if t is None:
                break
            self._tokens -= 1.0
            t.visits += 1
            t.inflight = True
            t.next_at = None
            self.inflight += 1
            self.counts.queried += 1
            out.append((t.node, random_id(self.rng)))
        return out

    def _pick(self, now: float) -> SampleTarget | None:
        while self._revisits and self._revisits[0][0] <= now:
            _, addr = heapq.heappop(self._revisits)
            t = self._known.get(addr)
            if t is not None and not t.inflight and t.next_at is not None and t.next_at <= now:
                return t
        frontier = self._frontier
        while frontier:
            i = self.rng.randrange(len(frontier))
            frontier[i], frontier[-1] = frontier[-1], frontier[i]
            t = self._known.get(frontier.pop())
            if t is not None and t.visits == 0 and not t.inflight:
                return t
        return None

    def next_deadline(self, now: float) -> float | None:
        """When ``due`` may have something again (None: nothing to do until a reply or new
        contacts arrive)."""
        if self.inflight >= self.max_inflight:
            return None
        work = float("inf")
        if self._frontier:
            work = now
        if self._revisits:
            work = min(work, self._revisits[0][0])
        if work == float("inf"):
            return None
        token_at = self._updated + max(0.0, 1.0 - self._tokens) / self.rate
        return max(work, token_at, now)

    # --- read-only ---------------------------------------------------------------------------
    def known(self) -> int:
        return len(self._known)

    def pending(self) -> int:
        """Nodes known but never asked yet."""
        return len(self._frontier)

    def target(self, addr: Addr) -> SampleTarget | None:
        return self._known.get(addr)
