"""Members: the real clients that joined the simulated network, and the traffic they receive.

A client that sends a query (and is not BEP 43 read-only) becomes a member: the network learns
its id and address, simulated nodes that would know it list it in their find_node and get_peers
answers (by the same rule as every other node: whole in the neighbourhood of their own id,
a stable pseudo-random pick farther away), and simulated nodes start sending it background
queries at ``rate`` per second with the profile's mix of methods, from random simulated nodes,
so that its traffic views look like the real network's. A member that sends nothing and answers
nothing for ``timeout`` seconds is forgotten.

The schedule of each member's background queries is a heap entry; inter-arrival times are
``1 / rate`` times a uniform factor in [0.5, 1.5]: the mean is exact and the count over a few
seconds is close to ``rate * seconds`` (a Poisson process would make short measurements noisy).

When several processes serve the network, the coordinator holds the real ``Members`` (with
``track=True``: every join and departure is queued in ``changes`` for the serving processes),
and each serving process a mirror with rate 0 that it updates with ``add`` and ``remove``, for
its nodes' answers.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass

from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node_id import ID_BITS
from dhtviewer.simnet.index import FULL_BUCKET, K, NodeIndex, mix64

__all__ = ["MAX_MEMBERS", "Member", "Members"]

MAX_MEMBERS = 10_000
"""Members tracked at once; past it the least recently heard one is forgotten."""
MAX_BACKLOG = 1.0
"""A member's schedule never runs more than this many seconds behind (after a stall the
missed queries are skipped, not sent in a burst)."""


@dataclass(slots=True, eq=False)
class Member:
    """One joined client. ``sent``: background queries sent to it; ``answered``: its replies
    to them; ``queries``: queries it sent to simulated nodes."""

    addr: Addr
    ip: int
    node_id: bytes
    key: int
    record: bytes
    version: bytes | None
    first_seen: float
    last_heard: float
    next_query: float
    sent: int = 0
    answered: int = 0
    queries: int = 0
    errors: int = 0

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "addr": f"{self.addr[0]}:{self.addr[1]}",
            "id": self.node_id.hex(),
            "version": self.version.hex() if self.version is not None else None,
            "joined_s_ago": round(now - self.first_seen, 3),
            "last_heard_s_ago": round(now - self.last_heard, 3),
            "queries_from": self.queries,
            "background_sent": self.sent,
            "background_answered": self.answered,
            "errors_from": self.errors,
        }


class Members:
    """Joined clients, by address and sorted by id."""

    def __init__(self, rate: float, timeout: float, track: bool = False) -> None:
        self.rate = rate
        self.timeout = timeout
        self.track = track
        self.changes: list[tuple[Addr, Member | None]] = []
        """With ``track``: (address, member) for a join, (address, None) for a departure."""
        self.by_addr: dict[Addr, Member] = {}
        self._keys: list[int] = []
        self._sorted: list[Member] = []
        self._heap: list[tuple[float, int, Member]] = []
        self._seq = 0
        self.joined = 0
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self.by_addr)

    # --- joining ---------------------------------------------------------------------------------
    def heard_query(self, addr: Addr, ip: int, node_id: bytes, version: bytes | None,
                    now: float, queries: int = 1) -> Member:
        """``queries`` queries from ``addr`` (the last at ``now``): the member (new or known),
        its last-heard time updated."""
        m = self.by_addr.get(addr)
        if m is not None:
            m.last_heard = max(m.last_heard, now)
            m.queries += queries
            if m.node_id != node_id:  # a client that changed its id (BEP 42 restart)
                self._remove(m)
                m = None
        if m is None:
            if len(self.by_addr) >= MAX_MEMBERS:
                self._remove(min(self.by_addr.values(), key=lambda x: x.last_heard))
            m = self.add(addr, ip, node_id, version, now)
            m.queries = queries
        return m

    def add(self, addr: Addr, ip: int, node_id: bytes, version: bytes | None,
            now: float) -> Member:
        """A new member (a mirror's copy of the coordinator's); replaces one at ``addr``."""
        old = self.by_addr.get(addr)
        if old is not None:
            self._remove(old)
        record = node_id + ip.to_bytes(4, "big") + addr[1].to_bytes(2, "big")
        m = Member(addr, ip, node_id, int.from_bytes(node_id, "big"), record, version,
                   now, now, now + self._interval(0.5))
        self.by_addr[addr] = m
        at = bisect_left(self._keys, m.key)
        self._keys.insert(at, m.key)
        self._sorted.insert(at, m)
        self._push(m)
        self.joined += 1
        if self.track:
            self.changes.append((addr, m))
        return m

    def remove(self, addr: Addr) -> None:
        """Forget the member at ``addr`` (if any)."""
        m = self.by_addr.get(addr)
        if m is not None:
            self._remove(m)

    def _remove(self, m: Member) -> None:
        if self.by_addr.get(m.addr) is m:
            del self.by_addr[m.addr]
            if self.track:
                self.changes.append((m.addr, None))
        at = bisect_left(self._keys, m.key)
        while at < len(self._sorted) and self._keys[at] == m.key:
            if self._sorted[at] is m:
                del self._keys[at]
                del self._sorted[at]
                break
            at += 1
        self.forgotten += 1

    def heard_reply(self, addr: Addr, now: float) -> Member | None:
        m = self.by_addr.get(addr)
        if m is not None:
            m.last_heard = now
        return m

    # --- background schedule ---------------------------------------------------------------------
    def _interval(self, factor: float) -> float:
        return factor / self.rate if self.rate > 0 else float("inf")

    def _push(self, m: Member) -> None:
        if m.next_query != float("inf"):
            self._seq += 1
            heapq.heappush(self._heap, (m.next_query, self._seq, m))

    def set_rate(self, rate: float, now: float) -> None:
        self.rate = rate
        self._heap = []
        for m in self.by_addr.values():
            m.next_query = now + self._interval(0.5)
            self._push(m)

    def due(self, now: float, jitter: float) -> Member | None:
        """The next member whose background query is due by ``now`` (scheduling its next
        one, ``jitter`` in [0, 1) drawn by the caller), or None. Forgets silent members."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, m = heapq.heappop(heap)
            if self.by_addr.get(m.addr) is not m:
                continue  # forgotten, or rescheduled by set_rate
            if now - m.last_heard > self.timeout:
                self._remove(m)
                continue
            m.next_query = max(m.next_query, now - MAX_BACKLOG) + self._interval(0.5 + jitter)
            self._push(m)
            return m
        return None

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    # --- routing ---------------------------------------------------------------------------------
    def known_by(self, index: NodeIndex, pos: int, target: int) -> list[Member]:
        """Members that node ``pos`` lists among its contacts at levels where the target's
        closest contacts come from (sharing at least as many bits with the target as the node
        does), by the derived tables' rule."""
        if not self._keys:
            return []
        x = index.keys[pos]
        p = ID_BITS - (x ^ target).bit_length()
        if p >= ID_BITS:
            p = ID_BITS - 1
        shift = ID_BITS - p
        lo = (x >> shift) << shift
        a = bisect_left(self._keys, lo)
        b = bisect_left(self._keys, lo + (1 << shift), a)
        out: list[Member] = []
        for m in self._sorted[a:b]:
            d = x ^ m.key
            if d == 0:
                continue
            level = ID_BITS - d.bit_length()
            sh = ID_BITS - 1 - level
            start, end = index.id_range(((x >> sh) ^ 1) << sh, 1 << sh)
            size = end - start
            if size <= FULL_BUCKET or mix64((pos << 20) ^ (m.key & 0xFFFFFFFFFFFF)) % size < K:
                out.append(m)
        return out

    def closest(self, target: int, k: int) -> list[Member]:
        """The ``k`` members closest to ``target`` (ground truth)."""
        return sorted(self.by_addr.values(), key=lambda m: m.key ^ target)[:k]
