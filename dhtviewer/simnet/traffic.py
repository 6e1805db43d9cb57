"""Traffic: the queries the simulated network sends the clients that joined it.

Every member gets background queries at the members' rate, from random simulated nodes that are
up, with the profile's mix of methods (get_peers about popular swarms more often: the Zipf law
again); an ``announce_peer`` is sent only after a get_peers to the member returned a token, as a
real node does. Scenarios add more: ``spoof`` sends a share of those queries from forged
sources (an address no node has, claiming a real node's id), ``flood`` makes a few nodes of one
/24 send every member RATE queries per second.

Replies of members are matched to the outstanding queries by transaction id, address and the
node that asked; a query unanswered for ``OUTSTANDING_TIMEOUT`` seconds is forgotten.

What this module sends goes to the network's ``outbox`` (due at once). When several processes
serve the network it runs in the coordinator only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
)
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.counters import Counters
from dhtviewer.simnet.index import NodeIndex
from dhtviewer.simnet.members import Member, Members
from dhtviewer.simnet.swarms import Swarms

__all__ = ["OUTSTANDING_TIMEOUT", "Kind", "Traffic"]

OUTSTANDING_TIMEOUT = 10.0
"""A background query unanswered this long is forgotten."""
PRUNE_EVERY = 1.0
FLOOD_TICK = 0.01
"""Flooding runs at least this often while members exist (its rate can be thousands/s)."""


class Kind(Enum):
    """What a background query was for (how its reply is used)."""

    PING = "ping"
    FIND_NODE = "find_node"
    GET_PEERS = "get_peers"
    ANNOUNCE_PREP = "announce_prep"
    """A get_peers whose token is then used for an announce_peer."""
    ANNOUNCE_PEER = "announce_peer"
    SAMPLE_INFOHASHES = "sample_infohashes"


_METHOD_KINDS = {
    "ping": Kind.PING,
    "find_node": Kind.FIND_NODE,
    "get_peers": Kind.GET_PEERS,
    "announce_peer": Kind.ANNOUNCE_PREP,
    "sample_infohashes": Kind.SAMPLE_INFOHASHES,
}


@dataclass(slots=True)
class _Pending:
    """A background query the network sent to a member, awaiting its reply."""

    kind: Kind
    pos: int
    member: Member
    info_hash: bytes
    sent_at: float


class Traffic:
    """Background, spoofed and flood queries to members, and the matching of their replies.

    ``send(src_ip, src_port, dst, data, now)`` queues a datagram (the network's outbox);
    ``counters`` is the network's ``Counters``; ``versions`` the ``v`` of each client index."""

    def __init__(
        self,
        index: NodeIndex,
        members: Members,
        swarms: Swarms,
        mix: tuple[tuple[str, float], ...],
        versions: list[bytes | None],
        rng: random.Random,
        counters: Counters,
        send: Callable[[int, int, tuple[str, int], bytes, float], None],
        now: float,
        *,
        spoof_share: float = 0.0,
        spoof_base: int = 0,
        flooders: list[int] | None = None,
        flood_rate: float = 0.0,
        fallback_source: int = 0,
    ) -> None:
        unknown = [name for name, _ in mix if name not in _METHOD_KINDS]
        if unknown:
            raise ValueError(f"unknown background method {unknown[0]!r}")
        self.index = index
        self.members = members
        self.swarms = swarms
        self._kinds = [_METHOD_KINDS[name] for name, _ in mix]
        self._weights = [w for _, w in mix]
        self.versions = versions
        self.rng = rng
        self.counters = counters
        self._send = send
        self.spoof_share = spoof_share
        self._spoof_base = spoof_base
        self.flooders = flooders or []
        self.flood_rate = flood_rate
        self._fallback = fallback_source
        self._pending: dict[bytes, _Pending] = {}
        self._next_tid = 0
        self._flood_credit: dict[tuple[str, int], float] = {}
        self._last_tick = now
        self._last_prune = now

    # --- schedule -------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Send what is due by ``now``; forget stale outstanding queries."""
        members = self.members
        rng = self.rng
        while True:
            m = members.due(now, rng.random())
            if m is None:
                break
            self._background(m, now)
        if self.flooders and len(members):
            dt = min(max(0.0, now - self._last_tick), 1.0)
            for m in list(members.by_addr.values()):
                credit = self._flood_credit.get(m.addr, 0.0) + self.flood_rate * dt
                while credit >= 1.0:
                    credit -= 1.0
                    self._flood(m, now)
                self._flood_credit[m.addr] = credit
        self._last_tick = now
        if now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            old = now - OUTSTANDING_TIMEOUT
            for tid in [t for t, pend in self._pending.items() if pend.sent_at < old]:
                del self._pending[tid]
            self._flood_credit = {a: v for a, v in self._flood_credit.items()
                                  if a in members.by_addr}

    def next_due(self) -> float | None:
        """When ``tick`` next has something to do."""
        due = self.members.next_due()
        if self.flooders and len(self.members):
            flood = self._last_tick + FLOOD_TICK
            return flood if due is None else min(due, flood)
        return due

    # --- replies ----------------------------------------------------------------------------------
    def reply(self, pos: int, msg: Message, src: tuple[str, int], now: float) -> None:
        """A response or error from a client to simulated node ``pos``."""
        c = self.counters
        c.responses += 1
        pending = self._pending.get(msg.tid)
        if pending is None or pending.member.addr != src or pending.pos != pos:
            c.unmatched_responses += 1
            return
        del self._pending[msg.tid]
        m = pending.member
        self.members.heard_reply(src, now)
        if isinstance(msg, ErrorMessage):
            m.errors += 1
            return
        m.answered += 1
        c.background_answered += 1
        if pending.kind is Kind.ANNOUNCE_PREP and isinstance(msg, Response) and msg.token:
            q = AnnouncePeerQuery(self._tid(), self.index.node_id(pos),
                                  info_hash=pending.info_hash,
                                  port=1024 + self.rng.randrange(60000), token=msg.token,
                                  version=self.versions[self.index.clients[pos]])
            self._query(pos, m, q, Kind.ANNOUNCE_PEER, pending.info_hash, now)

    # --- sending ----------------------------------------------------------------------------------
    def _tid(self) -> bytes:
        self._next_tid = (self._next_tid + 1) & 0xFFFF
        return self._next_tid.to_bytes(2, "big")

    def _source(self) -> int:
        """A random simulated node that is up (read-only ones included: they query too)."""
        index = self.index
        flags = index.flags
        rng = self.rng
        for _ in range(32):
            pos = rng.randrange(index.n)
            if not flags[pos] & (ix.DEAD | ix.AWAY | ix.UNBORN | ix.SYBIL):
                return pos
        return self._fallback

    def _background(self, m: Member, now: float) -> None:
        rng = self.rng
        kind = rng.choices(self._kinds, self._weights)[0]
        pos = self._source()
        index = self.index
        ro = bool(index.flags[pos] & ix.READ_ONLY)
        version = self.versions[index.clients[pos]]
        node_id = index.node_id(pos)
        spoof = self.spoof_share > 0 and rng.random() < self.spoof_share
        target = rng.randbytes(20)
        tid = self._tid()
        if kind is Kind.GET_PEERS or kind is Kind.ANNOUNCE_PREP:
            swarms = self.swarms
            if swarms.count and rng.random() < 0.5:
                # Popular swarms are asked about more often (Zipf again: pick by size).
                target = swarms.info_hash(min(swarms.count, int(rng.paretovariate(1.0))) - 1)
        q: Query
        if kind is Kind.FIND_NODE:
            q = FindNodeQuery(tid, node_id, target=target, version=version, read_only=ro)
        elif kind is Kind.GET_PEERS or kind is Kind.ANNOUNCE_PREP:
            # An announce needs the member's token: ask for it first (as a real node does).
            q = GetPeersQuery(tid, node_id, info_hash=target, version=version, read_only=ro)
        elif kind is Kind.SAMPLE_INFOHASHES:
            q = SampleInfohashesQuery(tid, node_id, target=target, version=version,
                                      read_only=ro)
        else:
            q = PingQuery(tid, node_id, version=version, read_only=ro)
        if spoof:
            self._spoofed(m, q, now)
            return
        self._query(pos, m, q, kind, target, now)

    def _query(self, pos: int, m: Member, q: Query, kind: Kind, info_hash: bytes,
               now: float) -> None:
        self._pending[q.tid] = _Pending(kind, pos, m, info_hash, now)
        m.sent += 1
        self.counters.background_sent += 1
        self._send(self.index.ip(pos), self.index.port(pos), m.addr, krpc.encode(q), now)

    def _spoofed(self, m: Member, q: Query, now: float) -> None:
        """``q`` (claiming a real node's id) from an address no node has."""
        src = self._spoof_base + 1 + self.rng.randrange(254)
        m.sent += 1
        self.counters.spoofed_sent += 1
        self._send(src, self.index.port(self._fallback), m.addr, krpc.encode(q), now)

    def _flood(self, m: Member, now: float) -> None:
        rng = self.rng
        pos = self.flooders[rng.randrange(len(self.flooders))]
        index = self.index
        q: Query
        if rng.random() < 0.5:
            q = GetPeersQuery(self._tid(), index.node_id(pos), info_hash=rng.randbytes(20))
        else:
            q = FindNodeQuery(self._tid(), index.node_id(pos), target=rng.randbytes(20))
        m.sent += 1
        self.counters.flood_sent += 1
        self._send(index.ip(pos), index.port(pos), m.addr, krpc.encode(q), now)
