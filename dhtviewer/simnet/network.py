"""Simnet: the simulated Mainline network's behaviour, without sockets.

It takes datagrams (``receive(data, src, dst_ip, dst_port, now)``) and the passing of time
(``tick(now)``) and leaves what to send in ``outbox``: each entry says when it is due, from
which simulated address and port, to whom. The server (``simnet/server.py``) does the I/O and
the timing; tests drive this class directly with their own clock.

What a simulated node does with a query: nothing if it is dead, away (churn) or read-only;
otherwise, after the profile's loss draw, it answers after the round-trip time of the
(asker, node) pair: ``ping``, ``find_node`` (the 8 contacts of its derived table closest to
the target, joined clients included), ``get_peers`` (a token bound to the asker and to this
node, ``values`` when it stores the swarm, and nodes), ``announce_peer`` (token checked, peer
stored), ``sample_infohashes`` (when its client supports BEP 51, else error 204), with the
BEP 42 ``ip`` of the asker and the ``v`` of its client. A few nodes answer with errors or
malformed datagrams, scenario Sybils lie (``scenarios.py``). Datagrams that are not KRPC are
counted and dropped; a query whose fields are wrong gets error 203, as from a real node.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import (
    METHOD_UNKNOWN,
    PROTOCOL_ERROR,
    SERVER_ERROR,
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
from dhtviewer.dht.tokens import TokenIssuer
from dhtviewer.sim.latency import LogNormalLatency
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.addresses import DEFAULT_BASE, AddressPlan, ip_text
from dhtviewer.simnet.index import NODE_LEN, ExtraNode, NodeIndex
from dhtviewer.simnet.members import Member, Members
from dhtviewer.simnet.options import Scenarios
from dhtviewer.simnet.profile import CLIENTS, REALISTIC, Profile
from dhtviewer.simnet.replies import response
from dhtviewer.simnet.scenarios import Cluster, spoof_subnet, sybil_nodes
from dhtviewer.simnet.swarms import Swarms, plan_swarms

__all__ = ["Outgoing", "Simnet", "SimnetConfig"]

BEP51_INTERVAL = 21600
"""``interval`` of sample_infohashes replies: what deployed nodes send (BEP 51's maximum)."""
MAX_SAMPLES = 20
"""Samples per BEP 51 reply (libtorrent's figure)."""
OUTSTANDING_TIMEOUT = 10.0
"""A background query unanswered this long is forgotten."""
CHURN_TICK = 0.1
ANSWERS_BADLY = ix.SILENT | ix.ERRORING | ix.MALFORMED
"""Nodes that are not "responsive": silent, or answering with errors or garbage."""
ROUTERS = 4
FAKE_PEERS = 40
"""Fake peers a poisoning Sybil hands out per swarm."""


@dataclass(frozen=True)
class SimnetConfig:
    """What to build. ``member_rate`` None: the profile's."""

    nodes: int = 1_000_000
    seed: int = 0
    profile: Profile = REALISTIC
    scenarios: Scenarios = field(default_factory=Scenarios)
    base: str = DEFAULT_BASE
    member_rate: float | None = None
    routers: int = ROUTERS


class Outgoing(NamedTuple):
    """A datagram to send ``due`` (seconds, the clock of ``receive``/``tick``) from simulated
    address ``src_ip``:``src_port`` to ``dst``. ``reply``: an answer to a query (its delay is
    measured), else a query of the network's own."""

    due: float
    src_ip: int
    src_port: int
    dst: tuple[str, int]
    data: bytes
    reply: bool


@dataclass(slots=True)
class _Pending:
    """A background query the network sent to a member, awaiting its reply."""

    kind: str
    pos: int
    member: Member
    info_hash: bytes
    sent_at: float


@dataclass(slots=True)
class Counters:
    """Everything the network counted, for ``/stats``."""

    received: int = 0
    """Datagrams to simulated addresses (or to none: see ``to_unknown``)."""
    queries: int = 0
    answered: int = 0
    """Queries answered with a response (errors are ``errors_sent``)."""
    errors_sent: int = 0
    malformed: int = 0
    """Datagrams that were not valid KRPC: dropped (a query with a tid gets error 203)."""
    malformed_sent: int = 0
    """Replies deliberately broken by misbehaving nodes."""
    to_silent: int = 0
    """Queries to dead, away or read-only nodes: never answered."""
    lost: int = 0
    """Queries dropped by the loss model."""
    to_unknown: int = 0
    """Datagrams to an address no node has."""
    to_spoofed: int = 0
    """Datagrams to a forged source of the spoof scenario."""
    responses: int = 0
    unmatched_responses: int = 0
    background_sent: int = 0
    background_answered: int = 0
    spoofed_sent: int = 0
    flood_sent: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def _compact(ip: int, port: int) -> bytes:
    return ip.to_bytes(4, "big") + port.to_bytes(2, "big")


def _ip_int(text: str) -> int:
    a, b, c, d = text.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


class Simnet:
    """The simulated network (see the module docstring). Build with ``Simnet(config, ports)``:
    ``ports`` are the UDP ports the nodes are spread over (already bound by the server)."""

    def __init__(self, config: SimnetConfig, ports: list[int], now: float) -> None:
        if config.nodes < 1:
            raise ValueError(f"--nodes must be at least 1, got {config.nodes}")
        if not ports:
            raise ValueError("at least one port is needed")
        t0 = time.perf_counter()
        self.config = config
        self.profile = p = config.profile
        self.started = now
        self.rng = random.Random(config.seed)
        gen = np.random.default_rng(config.seed)
        scen = config.scenarios
        n = config.nodes
        # --- nodes ---
        hashes, sizes = plan_swarms(p.swarms, p.swarm_zipf, p.swarm_max_peers, gen)
        poison_targets = hashes[: scen.poison_swarms]
        self.plan = plan = AddressPlan.for_nodes(n, config.base)
        extras, self.clusters, flooder_ips = sybil_nodes(scen, plan, poison_targets, gen)
        ips = plan.draw(n, gen)
        ids = ix.random_ids(ips, p.bep42_fail, gen)
        flags = ix.flag_shares(
            n,
            [(ix.DEAD, p.dead), (ix.AWAY, p.away), (ix.READ_ONLY, p.read_only),
             (ix.ERRORING, p.erroring), (ix.MALFORMED, p.malformed)],
            gen,
        )
        clients = ix.assign_clients(n, [c.share for c in CLIENTS], gen)
        bep51 = np.array([c.bep51 for c in CLIENTS], dtype=bool)
        flags[bep51[clients]] |= np.uint8(ix.BEP51)
        if extras:
            ids, ips, flags, clients = self._with_extras(extras, ids, ips, flags, clients)
        port_arr = np.array(ports, dtype=np.uint16)[np.arange(len(ips)) % len(ports)]
        self.index = index = NodeIndex(ids, ips, port_arr, flags, clients, plan)
        self.versions: list[bytes | None] = [c.version for c in CLIENTS]
        # --- roles ---
        self.clusters_of: dict[int, tuple[Cluster, list[int]]] = {}
        self._fake_peers: dict[bytes, list[bytes]] = {}
        for cluster in self.clusters:
            members = sorted(index.position_of(i) for i in cluster.node_ids)
            for pos in members:
                self.clusters_of[pos] = (cluster, members)
            if cluster.kind == "poison":
                fake = gen.integers(0, 1 << 32, size=FAKE_PEERS, dtype=np.uint64)
                self._fake_peers[cluster.target] = [
                    b"6:" + _compact(0x7F000000 | (int(f) & 0x00FFFFFF) | 0x00C00000,
                                     1024 + int(f >> np.uint64(40)) % 60000)
                    for f in fake
                ]
        self.flooders = [index.at_ip(ip) for ip in flooder_ips]
        self.routers = self._pick_routers(config.routers, gen)
        # --- behaviour ---
        self.swarms = Swarms(index, hashes, sizes, p.storers, gen)
        # Token secrets from a generator of their own, seeded so that a run is reproducible
        # (a real node's come from the operating system).
        self.tokens = TokenIssuer(random.Random(f"simnet-tokens:{config.seed}"), now)
        self.latency = LogNormalLatency(p.rtt_median, p.rtt_sigma, 0.05, salt=config.seed)
        self.members = Members(
            config.member_rate if config.member_rate is not None else p.member_rate,
            p.member_timeout,
        )
        self._mix_names = [m for m, _ in p.member_mix]
        self._mix_weights = [w for _, w in p.member_mix]
        self._pending: dict[bytes, _Pending] = {}
        self._next_tid = 0
        self._spoof_base = spoof_subnet(plan)
        self._flood_credit: dict[tuple[str, int], float] = {}
        self._last_tick = now
        self._last_prune = now
        self.counters = Counters()
        self.outbox: list[Outgoing] = []
        # --- churn ---
        self.churn_rate = (
            scen.churn_rate if scen.churn_rate is not None
            else p.churn_per_second if p.churn_per_second is not None
            else index.count(ix.AWAY, 0) / p.session_seconds
        )
        away = index.positions_with(ix.AWAY).tolist()
        self.rng.shuffle(away)
        # Away nodes left at evenly spread times over the last session: they come back in turn.
        self._away: deque[tuple[float, int]] = deque(
            (now - p.session_seconds * (1 - i / max(1, len(away))), pos)
            for i, pos in enumerate(away)
        )
        self._churn_credit = 0.0
        self._last_churn = now
        self.left = 0
        self.came_back = 0
        self.build_seconds = time.perf_counter() - t0

    # --- building ---------------------------------------------------------------------------------
    @staticmethod
    def _with_extras(
        extras: list[ExtraNode], ids: np.ndarray, ips: np.ndarray, flags: np.ndarray,
        clients: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        e_ids = np.frombuffer(b"".join(e.node_id for e in extras), dtype=np.uint8).reshape(-1, 20)
        e_ips = np.array([e.ip for e in extras], dtype=np.uint32)
        e_flags = np.array([e.flags for e in extras], dtype=np.uint8)
        e_clients = np.array([e.client for e in extras], dtype=np.uint8)
        return (np.concatenate([ids, e_ids]), np.concatenate([ips, e_ips]),
                np.concatenate([flags, e_flags]), np.concatenate([clients, e_clients]))

    def _pick_routers(self, count: int, gen: np.random.Generator) -> list[int]:
        """Bootstrap nodes: well-behaved, answering nodes that never churn."""
        bad = ix.SILENT | ix.ERRORING | ix.MALFORMED | ix.SYBIL
        pool = self.index.positions_with(0, bad)
        picks = gen.choice(pool, size=min(count, len(pool)), replace=False).tolist()
        for pos in picks:
            self.index.flags[pos] |= ix.PINNED
        return sorted(int(x) for x in picks)

    def router_addrs(self) -> list[tuple[str, int]]:
        return [(ip_text(self.index.ip(p)), self.index.port(p)) for p in self.routers]

    # --- receiving --------------------------------------------------------------------------------
    def receive(self, data: bytes, src: tuple[str, int], dst_ip: int, dst_port: int,
                now: float) -> None:
        """One datagram from ``src`` to simulated address ``dst_ip``:``dst_port`` (both on
        loopback: the server checked), read at ``now``."""
        c = self.counters
        c.received += 1
        index = self.index
        pos = index.at_address(dst_ip, dst_port)
        if pos < 0:
            if dst_ip >> 8 == self._spoof_base >> 8:
                c.to_spoofed += 1  # a client answering a forged query: the victim's traffic
            else:
                c.to_unknown += 1
            return
        try:
            msg = krpc.decode(data)
        except krpc.KrpcError as err:
            c.malformed += 1
            if err.query and err.tid is not None and not index.flags[pos] & ix.SILENT:
                self._error(pos, src, err.tid, PROTOCOL_ERROR, err.reason, now)
            return
        if isinstance(msg, Query):
            self._query(pos, msg, src, now)
        else:
            self._response(pos, msg, src, now)

    def _query(self, pos: int, q: Query, src: tuple[str, int], now: float) -> None:
        c = self.counters
        c.queries += 1
        index = self.index
        src_ip = _ip_int(src[0])
        if not q.read_only and index.at_address(src_ip, src[1]) < 0:
            self.members.heard_query(src, src_ip, q.sender_id, q.version, now)
        flags = index.flags[pos]
        if flags & ix.SILENT:
            c.to_silent += 1
            return
        rng = self.rng
        p = self.profile
        if p.loss and rng.random() < p.loss:
            c.lost += 1
            return
        delay = (
            self.latency.base(src_ip, pos) * (0.95 + 0.1 * rng.random()) if p.rtt_median else 0.0
        )
        version = self.versions[index.clients[pos]]
        if flags & ix.ERRORING:
            self._error(pos, src, q.tid, SERVER_ERROR, "server error", now + delay)
            return
        node_id = index.node_id(pos)
        ext = _compact(src_ip, src[1])
        cluster = self.clusters_of.get(pos) if flags & ix.SYBIL else None
        kind = type(q)
        if kind is FindNodeQuery:
            assert isinstance(q, FindNodeQuery)
            data = response(q.tid, node_id, ext, version,
                            nodes=self._nodes(pos, q.target, cluster))
        elif kind is GetPeersQuery:
            assert isinstance(q, GetPeersQuery)
            ih = q.info_hash
            token = self.tokens.issue(src[0], ih + node_id, now)
            if cluster is not None:
                values = self._fake_peers.get(ih, []) if cluster[0].kind == "poison" else []
            else:
                values = self.swarms.values(pos, ih, now, rng)
            data = response(q.tid, node_id, ext, version, nodes=self._nodes(pos, ih, cluster),
                            token=token, values=values)
        elif kind is PingQuery:
            data = response(q.tid, node_id, ext, version)
        elif kind is AnnouncePeerQuery:
            assert isinstance(q, AnnouncePeerQuery)
            if not self.tokens.verify(q.token, src[0], q.info_hash + node_id, now):
                self._error(pos, src, q.tid, PROTOCOL_ERROR, "bad token", now + delay)
                return
            if cluster is None:  # Sybils swallow announces
                port = src[1] if q.implied_port else q.port
                self.swarms.announce(pos, q.info_hash, (src[0], port), now, q.seed)
            data = response(q.tid, node_id, ext, version)
        elif kind is SampleInfohashesQuery and flags & ix.BEP51:
            assert isinstance(q, SampleInfohashesQuery)
            stored = self.swarms.stored_info_hashes(pos) if cluster is None else []
            samples = rng.sample(stored, min(MAX_SAMPLES, len(stored)))
            data = response(q.tid, node_id, ext, version, interval=BEP51_INTERVAL,
                            nodes=self._nodes(pos, q.target, cluster), num=len(stored),
                            samples=b"".join(samples))
        else:
            self._error(pos, src, q.tid, METHOD_UNKNOWN, "method unknown", now + delay)
            return
        if flags & ix.MALFORMED:
            c.malformed_sent += 1
            data = data[: len(data) // 2]
        c.answered += 1
        self.outbox.append(Outgoing(now + delay, index.ip(pos), index.port(pos), src, data,
                                    True))

    def _nodes(self, pos: int, target: bytes,
               cluster: tuple[Cluster, list[int]] | None) -> bytes:
        """Compact node records of the 8 contacts of node ``pos`` closest to ``target``."""
        index = self.index
        t = int.from_bytes(target, "big")
        keys = index.keys
        if cluster is not None:  # a Sybil knows only its own kind
            mates = sorted((j for j in cluster[1] if j != pos), key=lambda j: keys[j] ^ t)[:8]
            return b"".join(index.record(j) for j in mates)
        found = index.known_closest(pos, t)
        extra = self.members.known_by(index, pos, t) if len(self.members) else []
        records = index.records
        if not extra:
            return b"".join([records[j * NODE_LEN : (j + 1) * NODE_LEN] for j in found])
        ranked = [(keys[j] ^ t, records[j * NODE_LEN : (j + 1) * NODE_LEN]) for j in found]
        ranked += [(m.key ^ t, m.record) for m in extra]
        ranked.sort(key=lambda r: r[0])
        return b"".join(r for _, r in ranked[:8])

    def _error(self, pos: int, dst: tuple[str, int], tid: bytes, code: int, text: str,
               due: float) -> None:
        self.counters.errors_sent += 1
        version = self.versions[self.index.clients[pos]]
        data = krpc.encode(ErrorMessage(tid, code, text), version=version)
        self.outbox.append(Outgoing(due, self.index.ip(pos), self.index.port(pos), dst, data,
                                    True))

    def _response(self, pos: int, msg: Message, src: tuple[str, int], now: float) -> None:
        """A response or error from a client: a reply to one of our background queries."""
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
        if pending.kind == "announce_prep" and isinstance(msg, Response) and msg.token:
            q = AnnouncePeerQuery(self._tid(), self.index.node_id(pos),
                                  info_hash=pending.info_hash,
                                  port=1024 + self.rng.randrange(60000), token=msg.token,
                                  version=self.versions[self.index.clients[pos]])
            self._send_query(pos, m, q, "announce_peer", pending.info_hash, now)

    # --- the network's own traffic ----------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Background queries due by ``now``, flooding, churn, housekeeping."""
        rng = self.rng
        members = self.members
        while True:
            m = members.due(now, rng.random())
            if m is None:
                break
            self._background(m, now)
        if self.flooders and len(members):
            dt = now - self._last_tick
            rate = self.config.scenarios.flood_rate
            for m in list(members.by_addr.values()):
                credit = self._flood_credit.get(m.addr, 0.0) + rate * min(dt, 1.0)
                while credit >= 1.0:
                    credit -= 1.0
                    self._flood(m, now)
                self._flood_credit[m.addr] = credit
        self._last_tick = now
        if now - self._last_churn >= CHURN_TICK:
            self._churn(now)
        if now - self._last_prune >= 1.0:
            self._last_prune = now
            old = now - OUTSTANDING_TIMEOUT
            for tid in [t for t, pend in self._pending.items() if pend.sent_at < old]:
                del self._pending[tid]
            self._flood_credit = {a: v for a, v in self._flood_credit.items()
                                  if a in members.by_addr}

    def next_due(self) -> float | None:
        """When ``tick`` next has something to do (None: only churn, at its own pace)."""
        due = self.members.next_due()
        if self.flooders and len(self.members):
            return now_or(due, self._last_tick + 0.01)
        return due

    def _source(self) -> int:
        """A random simulated node that is up (read-only ones included: they query too)."""
        index = self.index
        flags = index.flags
        rng = self.rng
        for _ in range(32):
            pos = rng.randrange(index.n)
            if not flags[pos] & (ix.DEAD | ix.AWAY | ix.SYBIL):
                return pos
        return self.routers[0] if self.routers else 0

    def _background(self, m: Member, now: float) -> None:
        rng = self.rng
        method = rng.choices(self._mix_names, self._mix_weights)[0]
        pos = self._source()
        index = self.index
        ro = bool(index.flags[pos] & ix.READ_ONLY)
        version = self.versions[index.clients[pos]]
        node_id = index.node_id(pos)
        share = self.config.scenarios.spoof_share
        spoof = share > 0 and rng.random() < share
        target = rng.randbytes(20)
        tid = self._tid()
        if method == "get_peers" or method == "announce_peer":
            swarms = self.swarms.by_size
            if swarms and rng.random() < 0.5:
                # Popular swarms are asked about more often (Zipf again: pick by size).
                target = swarms[min(len(swarms) - 1, int(rng.paretovariate(1.0)) - 1)].info_hash
        q: Query
        if method == "find_node":
            q = FindNodeQuery(tid, node_id, target=target, version=version, read_only=ro)
        elif method == "get_peers":
            q = GetPeersQuery(tid, node_id, info_hash=target, version=version, read_only=ro)
        elif method == "announce_peer":
            # An announce needs the member's token: ask for it first (as a real node does).
            q = GetPeersQuery(tid, node_id, info_hash=target, version=version, read_only=ro)
            method = "announce_prep"
        elif method == "sample_infohashes":
            q = SampleInfohashesQuery(tid, node_id, target=target, version=version,
                                      read_only=ro)
        else:
            q = PingQuery(tid, node_id, version=version, read_only=ro)
        if spoof:
            self._send_spoofed(m, q, now)
            return
        self._send_query(pos, m, q, method, target, now)

    def _tid(self) -> bytes:
        self._next_tid = (self._next_tid + 1) & 0xFFFF
        return self._next_tid.to_bytes(2, "big")

    def _send_query(self, pos: int, m: Member, q: Query, kind: str, info_hash: bytes,
                    now: float) -> None:
        tid = q.tid
        data = krpc.encode(q)
        self._pending[tid] = _Pending(kind, pos, m, info_hash, now)
        m.sent += 1
        self.counters.background_sent += 1
        self.outbox.append(Outgoing(now, self.index.ip(pos), self.index.port(pos), m.addr, data,
                                    False))

    def _send_spoofed(self, m: Member, q: Query, now: float) -> None:
        """``q`` (claiming a real node's id) from an address no node has."""
        src = self._spoof_base + 1 + self.rng.randrange(254)
        data = krpc.encode(q)
        m.sent += 1
        self.counters.spoofed_sent += 1
        self.outbox.append(Outgoing(now, src, self.index.port(self.routers[0] if self.routers
                                                              else 0), m.addr, data, False))

    def _flood(self, m: Member, now: float) -> None:
        rng = self.rng
        pos = self.flooders[rng.randrange(len(self.flooders))]
        index = self.index
        q: Query
        if rng.random() < 0.5:
            q = GetPeersQuery(self._tid(), index.node_id(pos), info_hash=rng.randbytes(20))
        else:
            q = FindNodeQuery(self._tid(), index.node_id(pos), target=rng.randbytes(20))
        data = krpc.encode(q)
        m.sent += 1
        self.counters.flood_sent += 1
        self.outbox.append(Outgoing(now, index.ip(pos), index.port(pos), m.addr, data, False))

    def _churn(self, now: float) -> None:
        dt = min(now - self._last_churn, 1.0)
        self._last_churn = now
        self._churn_credit += self.churn_rate * dt
        count = int(self._churn_credit)
        if not count:
            return
        self._churn_credit -= count
        index = self.index
        flags = index.flags
        rng = self.rng
        away = self._away
        session = self.profile.session_seconds
        # Come back: the nodes that have been away longest, once their time is up.
        back = 0
        while away and back < count and away[0][0] + session <= now:
            _, pos = away.popleft()
            flags[pos] &= ~ix.AWAY & 0xFF
            back += 1
        self.came_back += back
        # Leave: random answering nodes (never routers or Sybils).
        never = ix.SILENT | ix.PINNED | ix.SYBIL
        for _ in range(count):
            for _ in range(8):
                pos = rng.randrange(index.n)
                if not flags[pos] & never:
                    flags[pos] |= ix.AWAY
                    away.append((now, pos))
                    self.left += 1
                    break

    # --- ground truth -----------------------------------------------------------------------------
    def closest(self, target: bytes, k: int) -> list[dict[str, object]]:
        """The true ``k`` closest answering nodes to ``target``, joined clients included."""
        t = int.from_bytes(target, "big")
        index = self.index
        found: list[tuple[int, dict[str, object]]] = []
        for pos in index.true_closest(t, k, ANSWERS_BADLY):
            found.append((index.keys[pos] ^ t, {
                "id": index.node_id(pos).hex(),
                "addr": f"{ip_text(index.ip(pos))}:{index.port(pos)}",
                "sybil": bool(index.flags[pos] & ix.SYBIL),
                "member": False,
            }))
        for m in self.members.closest(t, k):
            found.append((m.key ^ t, {"id": m.node_id.hex(), "addr": f"{m.addr[0]}:{m.addr[1]}",
                                      "sybil": False, "member": True}))
        found.sort(key=lambda f: f[0])
        return [dict(f[1], distance_bits=f[0].bit_length()) for f in found[:k]]

    def responsive(self) -> int:
        """Nodes that answer with valid KRPC (what a lookup can count as answered)."""
        return self.index.count(0, ANSWERS_BADLY)


def now_or(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)
