"""Simnet: the simulated Mainline network's behaviour, without sockets.

It takes datagrams (``receive(data, src, dst_ip, dst_port, now)``) and the passing of time
(``tick(now)``) and leaves what to send in ``outbox``: each entry says when it is due, from
which simulated address and port, to whom. The server (``simnet/server.py``) does the I/O and
the timing; tests drive this class directly with their own clock.

What a simulated node does with a query: nothing if it is dead, away or not joined yet (churn),
or read-only; otherwise, after the profile's loss draw, it answers after the round-trip time of
the (asker, node) pair, with the handler of the query's type (``HANDLERS``): ``ping``,
``find_node`` (the 8 contacts of its derived table closest to the target, joined clients
included), ``get_peers`` (a token bound to the asker and to this node, ``values`` when it
stores the swarm, and nodes), ``announce_peer`` (token checked, peer stored),
``sample_infohashes`` (when its client supports BEP 51, else error 204), BEP 44 ``get`` and
``put`` (``items.py``) and BEP 33 ``scrape=1`` (``scrape.py``) where its client supports them,
with the BEP 42 ``ip`` of the asker and the ``v`` of its client. A few nodes answer with errors
or malformed datagrams, scenario Sybils lie (``scenarios.py``). Datagrams that are not KRPC are
counted and dropped; a query whose fields are wrong gets error 203, as from a real node.

A network runs in one of three roles (``Role``): ``WHOLE`` does everything in one process;
when several processes serve it (``workers.py``), each ``SERVER`` answers the queries to its
own nodes and reports joined clients and their replies in ``uplink``, and the
``COORDINATOR`` runs members, their background traffic (``traffic.py``) and churn
(``churn.py``). Every process builds the same network from the same seed (they are forked
from one), and the node flags, which churn changes, are shared memory.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import numpy as np

from dhtviewer.dht import krpc
from dhtviewer.dht.items import ItemError
from dhtviewer.dht.messages import (
    METHOD_UNKNOWN,
    PROTOCOL_ERROR,
    SERVER_ERROR,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    GetQuery,
    PingQuery,
    PutQuery,
    Query,
    SampleInfohashesQuery,
)
from dhtviewer.dht.tokens import TokenIssuer
from dhtviewer.sim.latency import LogNormalLatency
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.addresses import DEFAULT_BASE, AddressPlan, ip_text
from dhtviewer.simnet.churn import Churn
from dhtviewer.simnet.counters import Counters
from dhtviewer.simnet.index import NODE_LEN, ExtraNode, NodeIndex
from dhtviewer.simnet.items import NodeItems
from dhtviewer.simnet.links import Heard, MemberJoined, MemberLeft, Reply
from dhtviewer.simnet.members import MAX_MEMBERS, Members
from dhtviewer.simnet.options import Scenarios
from dhtviewer.simnet.profile import CLIENTS, REALISTIC, Profile
from dhtviewer.simnet.replies import response
from dhtviewer.simnet.scenarios import (
    Cluster,
    ClusterKind,
    fake_peers,
    spoof_subnet,
    sybil_nodes,
)
from dhtviewer.simnet.scrape import SwarmScrape
from dhtviewer.simnet.swarms import Swarms, seeded_info_hashes
from dhtviewer.simnet.traffic import Traffic

__all__ = ["HANDLERS", "Asked", "Outgoing", "Refusal", "Role", "Simnet", "SimnetConfig"]

BEP51_INTERVAL = 21600
"""``interval`` of sample_infohashes replies: what deployed nodes send (BEP 51's maximum)."""
MAX_SAMPLES = 20
"""Samples per BEP 51 reply (libtorrent's figure)."""
CHURN_TICK = 0.1
HOUSEKEEPING = 5.0
"""Seconds between two clean-ups of expired announces and stale reports."""
REPORT_EVERY = 1.0
"""A serving process reports a client it keeps hearing from at most this often."""
MAX_REPORTED = 4 * MAX_MEMBERS
"""Clients a serving process remembers having reported (bounded memory under a flood)."""
ANSWERS_BADLY = ix.SILENT | ix.ERRORING | ix.MALFORMED
"""Nodes that are not "responsive": silent, or answering with errors or garbage."""
ROUTERS = 4
UNBORN_POOL_SHARE = 0.1
"""At most this share of extra nodes is made for churn to bring in as new ids."""


class Role(Enum):
    """What a ``Simnet`` instance does (see the module docstring)."""

    WHOLE = "whole"
    SERVER = "server"
    COORDINATOR = "coordinator"


@dataclass(frozen=True)
class SimnetConfig:
    """What to build. ``member_rate``, ``swarms``, ``zipf`` None: the profile's."""

    nodes: int = 1_000_000
    seed: int = 0
    profile: Profile = REALISTIC
    scenarios: Scenarios = field(default_factory=Scenarios)
    base: str = DEFAULT_BASE
    member_rate: float | None = None
    routers: int = ROUTERS
    swarms: int | None = None
    zipf: float | None = None


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


class Asked(NamedTuple):
    """A query to answer, as a handler sees it: node ``pos`` (its ``node_id``, the ``v`` of its
    client, its Sybil ``cluster`` if any) was asked ``q`` by ``src`` (``src_ip`` as an int,
    ``ext``: its compact address, for BEP 42's ``ip``) at ``now``."""

    pos: int
    q: Query
    src: tuple[str, int]
    src_ip: int
    ext: bytes
    node_id: bytes
    version: bytes | None
    cluster: tuple[Cluster, list[int]] | None
    now: float


class Refusal(NamedTuple):
    """A handler's KRPC error instead of a response."""

    code: int
    message: str


Handler = Callable[["Simnet", Asked], "bytes | Refusal"]
"""Answers one query type: the response datagram, or a ``Refusal``."""


def _ip_int(text: str) -> int:
    a, b, c, d = text.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def _compact(ip: int, port: int) -> bytes:
    return ip.to_bytes(4, "big") + port.to_bytes(2, "big")


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
        self.role = Role.WHOLE
        self.started = now
        self.rng = random.Random(config.seed)
        gen = np.random.default_rng(config.seed)
        scen = config.scenarios
        n = config.nodes
        # --- churn's pool: nodes that join later, with ids nobody knew ---
        churn_rate = (
            scen.churn_rate if scen.churn_rate is not None
            else p.churn_per_second if p.churn_per_second is not None
            else n * p.away / p.session_seconds
        )
        pool = min(int(n * UNBORN_POOL_SHARE),
                   round(p.churn_new_ids * churn_rate * p.session_seconds))
        total = n + pool
        # --- nodes ---
        self.plan = plan = AddressPlan.for_nodes(total, config.base)
        ips = plan.draw(total, gen)
        ids = ix.random_ids(ips, p.bep42_fail, gen)
        flags = ix.flag_shares(
            n,
            [(ix.DEAD, p.dead), (ix.AWAY, p.away), (ix.READ_ONLY, p.read_only),
             (ix.ERRORING, p.erroring), (ix.MALFORMED, p.malformed)],
            gen,
        )
        # The pool's nodes behave as the others once they join (but are never dead: a dead
        # node that joins is no join at all).
        pool_flags = ix.flag_shares(
            pool, [(ix.READ_ONLY, p.read_only), (ix.ERRORING, p.erroring),
                   (ix.MALFORMED, p.malformed)], gen)
        flags = np.concatenate([flags, pool_flags | np.uint8(ix.UNBORN)])
        clients = ix.assign_clients(total, [c.share for c in CLIENTS], gen)
        swarm_count = config.swarms if config.swarms is not None else (
            p.swarms if p.swarms is not None else max(1, n // 2))
        zipf = config.zipf if config.zipf is not None else p.swarm_zipf
        hashes = seeded_info_hashes(config.seed, swarm_count)
        poison_targets = [hashes[r].tobytes() for r in range(min(scen.poison_swarms,
                                                                   len(hashes)))]
        extras, self.clusters, flooder_ips = sybil_nodes(scen, plan, poison_targets, gen)
        if extras:
            ids, ips, flags, clients = self._with_extras(extras, ids, ips, flags, clients)
        port_arr = np.array(ports, dtype=np.uint16)[np.arange(len(ips)) % len(ports)]
        self.index = index = NodeIndex(ids, ips, port_arr, flags, clients, plan)
        self.versions: list[bytes | None] = [c.version for c in CLIENTS]
        self._bep51 = bytes(1 if c.bep51 else 0 for c in CLIENTS)
        # --- roles ---
        self.clusters_of: dict[int, tuple[Cluster, list[int]]] = {}
        self._fake_peers: dict[bytes, list[bytes]] = {}
        for cluster in self.clusters:
            members = sorted(index.position_of(i) for i in cluster.node_ids)
            for pos in members:
                self.clusters_of[pos] = (cluster, members)
            if cluster.kind is ClusterKind.POISON:
                self._fake_peers[cluster.target] = fake_peers(plan, gen)
        self.flooders = [index.at_ip(ip) for ip in flooder_ips]
        self.routers = self._pick_routers(config.routers, gen)
        self.swarms = Swarms(index, hashes, zipf, p.swarm_max_peers, p.storers, gen)
        self.items = NodeItems(index.clients)  # BEP 44 (items.py)
        self.scrape = SwarmScrape(self.swarms, index.clients)  # BEP 33 (scrape.py)
        # --- behaviour ---
        # Token secrets from a generator of their own, seeded so that a run is reproducible
        # (a real node's come from the operating system).
        self.tokens = TokenIssuer(random.Random(f"simnet-tokens:{config.seed}"), now)
        self.latency = LogNormalLatency(p.rtt_median, p.rtt_sigma, 0.05, salt=config.seed)
        self.members = Members(
            config.member_rate if config.member_rate is not None else p.member_rate,
            p.member_timeout,
        )
        self.counters = Counters()
        self.outbox: list[Outgoing] = []
        self.uplink: list[Heard | Reply] = []
        """SERVER role: what to tell the coordinator (see ``links.py``)."""
        self._reported: dict[tuple[str, int], _Report] = {}
        self.handlers: dict[type[Query], Handler] = dict(HANDLERS)
        """How each query type is answered (a copy of ``HANDLERS``); a type without a
        handler gets error 204."""
        self.traffic = Traffic(
            index, self.members, self.swarms, p.member_mix, self.versions, self.rng,
            self.counters, self._send_now, now,
            spoof_share=scen.spoof_share, spoof_base=spoof_subnet(plan),
            flooders=self.flooders, flood_rate=scen.flood_rate,
            fallback_source=self.routers[0] if self.routers else 0,
        )
        self.churn = Churn(index, churn_rate, p.churn_new_ids, self.rng, now)
        self._last_churn = now
        self._last_housekeeping = now
        self._ip_cache: dict[str, int] = {}
        self._spoof_base = spoof_subnet(plan)
        self.build_seconds = time.perf_counter() - t0

    # --- roles ------------------------------------------------------------------------------------
    def become_server(self, worker: int) -> None:
        """This copy (in a forked serving process number ``worker``) answers queries and reports
        members and their replies in ``uplink``; members come from ``from_coordinator``."""
        self.role = Role.SERVER
        # Each process draws its own losses and delays, and issues its own tokens (a node's
        # get_peers and the announce that follows reach the same process: the node's port's).
        self.rng = random.Random(f"{self.config.seed}/{worker}")
        self.tokens = TokenIssuer(
            random.Random(f"simnet-tokens:{self.config.seed}/{worker}"), self.started
        )
        self.members = Members(0.0, self.profile.member_timeout)

    def become_coordinator(self) -> None:
        """This copy runs members, background traffic and churn; it serves nothing."""
        self.role = Role.COORDINATOR
        self.members.track = True

    def from_coordinator(self, msg: MemberJoined | MemberLeft) -> None:
        """SERVER role: apply a change of the members (for the nodes' answers)."""
        if isinstance(msg, MemberJoined):
            self.members.add(msg.addr, msg.ip, msg.node_id, msg.version, msg.now)
        else:
            self.members.remove(msg.addr)

    def from_server(self, msg: Heard | Reply) -> None:
        """COORDINATOR role: what a serving process reported."""
        if isinstance(msg, Heard):
            self.members.heard_query(msg.addr, msg.ip, msg.node_id, msg.version, msg.now,
                                     msg.queries)
            return
        pos = self.index.at_address(msg.dst_ip, msg.dst_port)
        try:
            reply = krpc.decode(msg.data)
        except krpc.KrpcError:
            return  # the serving process decoded it already: never happens
        if pos >= 0:
            self.traffic.reply(pos, reply, msg.src, msg.now)

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
        elif self.role is Role.SERVER:
            self.uplink.append(Reply(data, src, dst_ip, dst_port, now))
        else:
            self.traffic.reply(pos, msg, src, now)

    def _src_ip(self, host: str) -> int:
        cache = self._ip_cache
        ip = cache.get(host)
        if ip is None:
            if len(cache) > 65536:
                cache.clear()
            ip = cache[host] = _ip_int(host)
        return ip

    def _query(self, pos: int, q: Query, src: tuple[str, int], now: float) -> None:
        c = self.counters
        c.queries += 1
        index = self.index
        src_ip = self._src_ip(src[0])
        if not q.read_only and index.at_address(src_ip, src[1]) < 0:
            self._heard(src, src_ip, q, now)
        flags = index.flags[pos]
        if flags & ix.SILENT:
            c.to_silent += 1
            return
        rng = self.rng
        p = self.profile
        if p.loss and rng.random() < p.loss:
            c.lost += 1
            return
        due = now + (
            self.latency.base(src_ip, pos) * (0.95 + 0.1 * rng.random()) if p.rtt_median else 0.0
        )
        if flags & ix.ERRORING:
            self._error(pos, src, q.tid, SERVER_ERROR, "server error", due)
            return
        handler = self.handlers.get(type(q))
        if handler is None:
            self._error(pos, src, q.tid, METHOD_UNKNOWN, "method unknown", due)
            return
        cluster = self.clusters_of.get(pos) if flags & ix.SYBIL else None
        out = handler(self, Asked(pos, q, src, src_ip, _compact(src_ip, src[1]),
                                  index.node_id(pos), self.versions[index.clients[pos]],
                                  cluster, now))
        if isinstance(out, Refusal):
            self._error(pos, src, q.tid, out.code, out.message, due)
            return
        if flags & ix.MALFORMED:
            c.malformed_sent += 1
            out = out[: len(out) // 2]
        c.answered += 1
        self.outbox.append(Outgoing(due, index.ip(pos), index.port(pos), src, out, True))

    def _heard(self, src: tuple[str, int], src_ip: int, q: Query, now: float) -> None:
        """A query from a client (not a simulated node, not read-only): a member."""
        if self.role is not Role.SERVER:
            self.members.heard_query(src, src_ip, q.sender_id, q.version, now)
            return
        # Tell the coordinator about a new client (or id) at once, then once in a while.
        r = self._reported.get(src)
        if r is not None and r.node_id == q.sender_id and now - r.at < REPORT_EVERY:
            r.queries += 1
            return
        queries = 1 if r is None or r.node_id != q.sender_id else r.queries + 1
        self.uplink.append(Heard(src, src_ip, q.sender_id, q.version, queries, now))
        reported = self._reported
        if r is None and len(reported) >= MAX_REPORTED:
            # Many sources (a flood from forged addresses): keep the most recent half.
            keep = sorted(reported.items(), key=lambda kv: kv[1].at)[len(reported) // 2:]
            self._reported = reported = dict(keep)
        reported[src] = _Report(q.sender_id, now)

    def nodes_for(self, pos: int, target: bytes,
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

    def supports_bep51(self, pos: int) -> bool:
        return bool(self._bep51[self.index.clients[pos]])

    def fake_peers(self, info_hash: bytes) -> list[bytes]:
        """The fake peers poisoners hand out for ``info_hash`` (none for other swarms)."""
        return self._fake_peers.get(info_hash, [])

    def _error(self, pos: int, dst: tuple[str, int], tid: bytes, code: int, text: str,
               due: float) -> None:
        self.counters.errors_sent += 1
        version = self.versions[self.index.clients[pos]]
        data = krpc.encode(ErrorMessage(tid, code, text), version=version)
        self.outbox.append(Outgoing(due, self.index.ip(pos), self.index.port(pos), dst, data,
                                    True))

    def _send_now(self, src_ip: int, src_port: int, dst: tuple[str, int], data: bytes,
                  now: float) -> None:
        self.outbox.append(Outgoing(now, src_ip, src_port, dst, data, False))

    # --- the passing of time ----------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Background queries and flooding due by ``now``, churn, housekeeping."""
        if self.role is not Role.SERVER:
            self.traffic.tick(now)
            if now - self._last_churn >= CHURN_TICK:
                self._last_churn = now
                self.churn.step(now)
        if now - self._last_housekeeping >= HOUSEKEEPING:
            self._last_housekeeping = now
            self.swarms.expire(now)
            old = now - self.profile.member_timeout
            self._reported = {a: r for a, r in self._reported.items() if r.at >= old}

    def next_due(self) -> float | None:
        """When ``tick`` next has something to do (None: only churn and housekeeping, at their
        own pace)."""
        return None if self.role is Role.SERVER else self.traffic.next_due()

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
                "bep42": index.bep42_ok(pos),
            }))
        for m in self.members.closest(t, k):
            found.append((m.key ^ t, {"id": m.node_id.hex(), "addr": f"{m.addr[0]}:{m.addr[1]}",
                                      "sybil": False, "member": True, "bep42": None}))
        found.sort(key=lambda f: f[0])
        return [dict(f[1], distance_bits=f[0].bit_length()) for f in found[:k]]

    def size(self) -> dict[str, int]:
        """How many nodes there are: ``nodes`` ever joined (those that left included: others
        still list them), ``online`` (not away or dead), ``responsive`` (answering with valid
        KRPC: what a lookup can count), and the joined clients."""
        index = self.index
        return {"nodes": index.count(0, ix.UNBORN),
                "online": index.count(0, ix.DEAD | ix.AWAY | ix.UNBORN),
                "responsive": index.count(0, ANSWERS_BADLY),
                "members": len(self.members)}


@dataclass(slots=True)
class _Report:
    """A client a serving process told the coordinator about, and the queries since."""

    node_id: bytes
    at: float
    queries: int = 0


# --- the handlers ---------------------------------------------------------------------------------
def answer_ping(net: Simnet, a: Asked) -> bytes | Refusal:
    return response(a.q.tid, a.node_id, a.ext, a.version)


def answer_find_node(net: Simnet, a: Asked) -> bytes | Refusal:
    q = a.q
    assert isinstance(q, FindNodeQuery)
    return response(q.tid, a.node_id, a.ext, a.version,
                    nodes=net.nodes_for(a.pos, q.target, a.cluster))


def answer_get_peers(net: Simnet, a: Asked) -> bytes | Refusal:
    q = a.q
    assert isinstance(q, GetPeersQuery)
    ih = q.info_hash
    token = net.tokens.issue(a.src[0], ih + a.node_id, a.now)
    if a.cluster is not None:
        values = net.fake_peers(ih) if a.cluster[0].kind is ClusterKind.POISON else []
    else:
        values = net.swarms.values(a.pos, ih, a.now, net.rng)
    scrape = (net.scrape.filters(a.pos, ih, a.now)
              if q.scrape and a.cluster is None and net.scrape.supports(a.pos) else None)
    return response(q.tid, a.node_id, a.ext, a.version, nodes=net.nodes_for(a.pos, ih, a.cluster),
                    token=token, values=values, scrape=scrape)


def answer_announce_peer(net: Simnet, a: Asked) -> bytes | Refusal:
    q = a.q
    assert isinstance(q, AnnouncePeerQuery)
    if not net.tokens.verify(q.token, a.src[0], q.info_hash + a.node_id, a.now):
        return Refusal(PROTOCOL_ERROR, "bad token")
    if a.cluster is None:  # Sybils swallow announces
        port = a.src[1] if q.implied_port else q.port
        net.swarms.announce(a.pos, q.info_hash, (a.src[0], port), a.now, q.seed)
    return response(q.tid, a.node_id, a.ext, a.version)


def answer_sample_infohashes(net: Simnet, a: Asked) -> bytes | Refusal:
    q = a.q
    assert isinstance(q, SampleInfohashesQuery)
    if not net.supports_bep51(a.pos):
        return Refusal(METHOD_UNKNOWN, "method unknown")
    stored = net.swarms.stored_info_hashes(a.pos) if a.cluster is None else []
    samples = net.rng.sample(stored, min(MAX_SAMPLES, len(stored)))
    return response(q.tid, a.node_id, a.ext, a.version, interval=BEP51_INTERVAL,
                    nodes=net.nodes_for(a.pos, q.target, a.cluster), num=len(stored),
                    samples=b"".join(samples))


def answer_get(net: Simnet, a: Asked) -> bytes | Refusal:
    q = a.q
    assert isinstance(q, GetQuery)
    if not net.items.supports(a.pos):
        return Refusal(METHOD_UNKNOWN, "method unknown")
    found = net.items.get(a.pos, q.target, q.seq, a.now) if a.cluster is None else {}
    return response(q.tid, a.node_id, a.ext, a.version,
                    nodes=net.nodes_for(a.pos, q.target, a.cluster),
                    token=net.items.token(net.tokens, a.src[0], q.target, a.node_id, a.now),
                    **found)


def answer_put(net: Simnet, a: Asked) -> bytes | Refusal:
    q = a.q
    assert isinstance(q, PutQuery)
    if not net.items.supports(a.pos):
        return Refusal(METHOD_UNKNOWN, "method unknown")
    if a.cluster is None:  # Sybils swallow puts
        try:
            net.items.put(a.pos, a.node_id, q, a.src[0], a.now, net.tokens)
        except ItemError as err:
            return Refusal(err.code, err.reason)
    return response(q.tid, a.node_id, a.ext, a.version)


HANDLERS: dict[type[Query], Handler] = {
    PingQuery: answer_ping,
    FindNodeQuery: answer_find_node,
    GetPeersQuery: answer_get_peers,
    AnnouncePeerQuery: answer_announce_peer,
    SampleInfohashesQuery: answer_sample_infohashes,
    GetQuery: answer_get,
    PutQuery: answer_put,
}
"""What simulated nodes answer, by query type. To teach them another query, add its handler
here (a function of the network and the ``Asked`` query, returning the response datagram or a
``Refusal``; ``replies.response`` builds responses)."""
