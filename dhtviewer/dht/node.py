"""DhtNode: the sans-IO Mainline DHT node (BEP 5, with BEP 32, 42, 43 and BEP 51 answers).

It owns the routing tables, the transaction table, the lookups, the token issuer, the peer store,
the rate limiter and the responder (what each query gets as an answer), and wires them
together: admission of queries, counters, events, lookups and what it learns from every
message. It never touches a socket or a clock.

Driving contract (the asyncio transport and the simulator follow exactly this)::

    node = DhtNode(rng=random.Random(), now=clock(), settings=DhtSettings(...))
    node.receive(data, addr, now)         # every datagram that arrives
    node.handle_timer(now)                # whenever now >= node.next_deadline()
    node.start_lookup(...), node.announce(...), node.ping(...), node.bootstrap(...)   # API calls
    # after EACH of the calls above:
    for data, addr in node.datagrams_to_send(): sendto(data, addr)
    for event in node.drain_events(): dispatch(event)
    deadline = node.next_deadline()       # absolute time (same clock as `now`) or None
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Sequence

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import acceptable_address, addr_family, address_family
from dhtviewer.dht.lookup import Lookup
from dhtviewer.dht.messages import (
    PROTOCOL_ERROR,
    Addr,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    NodeInfo,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
    method_of,
)
from dhtviewer.dht.node_id import ID_BYTES, bep42_id, bep42_valid, random_id
from dhtviewer.dht.peer_store import PeerStore
from dhtviewer.dht.rate_limit import RateLimiter
from dhtviewer.dht.responder import Responder
from dhtviewer.dht.routing_table import RoutingSnapshot, RoutingTable
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.tokens import TokenIssuer
from dhtviewer.dht.transactions import Pending, TransactionTable

LOOKUP_KINDS = ("get_peers", "find_node", "announce", "bootstrap", "refresh")
_INTERNAL_KINDS = ("bootstrap", "refresh")
_EXTERNAL_IP_VOTERS = 64  # recent distinct responders whose `ip` votes count
_EXTERNAL_IP_MIN_VOTES = 3
_MAX_CONCURRENT_REFRESH = 2
_RTT_SAMPLES = 128  # recent RTTs the adaptive short timeout is computed from
_RTT_MIN_SAMPLES = 4  # a fresh node adapts within its first lookup
_RTT_RECOMPUTE_EVERY = 16  # once the window is full; cheaper than sorting on every reply


class LookupLimitError(RuntimeError):
    """Raised when a lookup cannot start: too many are running."""


class DhtNode:
    def __init__(
        self,
        *,
        rng: random.Random,
        now: float,
        node_id: bytes | None = None,
        settings: DhtSettings | None = None,
        families: tuple[int, ...] = (4,),
        traffic_events: bool = True,
    ) -> None:
        """``families``: address families this node speaks (4, 6 or both); one routing table each.
        ``traffic_events``: emit MessageSent/MessageReceived (the simulator turns them off)."""
        if node_id is not None and len(node_id) != ID_BYTES:
            raise ValueError("node_id must be 20 bytes")
        self.settings = settings or DhtSettings()
        self.rng = rng
        self.node_id = node_id if node_id is not None else random_id(rng)
        self.families = tuple(sorted(set(families)))
        self.traffic_events = traffic_events
        self.external_ip: str | None = None
        self.started_at = now
        s = self.settings
        self._events: deque[ev.Event] = deque(maxlen=max(1, s.max_queued_events))
        self._out: list[tuple[bytes, Addr]] = []
        self.tables = {
            fam: RoutingTable(self.node_id, s, fam, emit=self._emit) for fam in self.families
        }
        self.txns = TransactionTable(rng, s.max_inflight_queries)
        self.tokens = TokenIssuer(rng, now, s.token_rotation)
        self.store = PeerStore(
            max_info_hashes=s.max_info_hashes,
            max_peers_per_info_hash=s.max_peers_per_info_hash,
            max_peers=s.max_stored_peers,
            ttl=s.peer_ttl,
        )
        self.limiter = RateLimiter(
            per_ip_rate=s.per_ip_rate,
            per_ip_burst=s.per_ip_burst,
            block_seconds=s.block_seconds,
            max_tracked_ips=s.max_tracked_ips,
            global_rate=s.global_reply_rate,
            global_burst=s.global_reply_burst,
        )
        self.lookups: dict[int, Lookup] = {}
        self._next_op = 1
        self._bootstrap_lookup: int | None = None
        self.bootstrapped = False
        self._refreshing: dict[int, tuple[int, int]] = {}  # lookup id -> (family, bucket)
        self._ip_votes: OrderedDict[str, str] = OrderedDict()
        self._rtts: deque[float] = deque(maxlen=_RTT_SAMPLES)
        self._rtt_new = 0
        self.short_timeout = self.settings.short_timeout
        """The short timeout in force now (adaptive unless disabled in settings)."""
        self.counters: dict[str, int] = {
            "packets_in": 0,
            "packets_out": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "queries_in": 0,
            "responses_in": 0,
            "errors_in": 0,
            "queries_out": 0,
            "responses_out": 0,
            "errors_out": 0,
            "malformed": 0,
            "oversized": 0,
            "rate_limited": 0,
            "unsolicited": 0,
            "id_mismatch": 0,
            "timeouts": 0,
            "announces_stored": 0,
            "bad_tokens": 0,
            "txn_overflow": 0,
            "read_only_dropped": 0,
            "dropped_blocked": 0,  # datagrams from a blocked IP, dropped unparsed
            "events_dropped": 0,  # oldest events lost because nobody drained the queue
        }
        self.responder = Responder(
            node_id=self.node_id,
            settings=s,
            tables=self.tables,
            store=self.store,
            tokens=self.tokens,
            rng=rng,
            counters=self.counters,
            emit=self._emit,
        )

    # ============================================================================== driving ==
    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle one incoming datagram. Never raises on any input."""
        c = self.counters
        c["packets_in"] += 1
        c["bytes_in"] += len(data)
        if (
            self.settings.rate_limit
            and self.limiter.is_blocked(addr[0], now)
            and b"1:y1:r" not in data
            and b"1:y1:e" not in data
        ):
            # A flood is shed before parsing. Whatever could be a reply (valid ones always hold
            # one of those two byte runs) still goes through: it is matched to our queries, and
            # a flood spoofing a node's address must not make that node look dead to us.
            c["dropped_blocked"] += 1
            return
        if len(data) > self.settings.max_datagram_size:
            c["oversized"] += 1
            c["malformed"] += 1
            self._emit(
                ev.MalformedReceived(
                    addr, len(data), PROTOCOL_ERROR, "datagram too large", False, now,
                    data[: ev.MALFORMED_PREFIX],
                )
            )
            return
        try:
            msg = krpc.decode(data, max_depth=self.settings.max_bencode_depth)
        except krpc.KrpcError as err:
            self._on_malformed(err, data, addr, now)
            return
        if isinstance(msg, Query):
            self._on_query(msg, data, addr, now)
        else:
            self._on_reply(msg, data, addr, now)

    def handle_timer(self, now: float) -> None:
        slow, failed = self.txns.expire(now)
        for p in slow:
            self._on_slow(p, now)
        for p in failed:
            self._on_query_failed(p, now, None)
        nxt = self.store.next_expiry()
        if nxt is not None and nxt <= now:
            self.store.expire(now)
        if self.bootstrapped:
            self._refresh_buckets(now)
        # Lookups blocked by a full transaction table get another chance here.
        for lk in list(self.lookups.values()):
            self._step(lk, now)

    def next_deadline(self) -> float | None:
        candidates = [self.txns.next_deadline(), self.store.next_expiry()]
        if self.bootstrapped and len(self._refreshing) < _MAX_CONCURRENT_REFRESH:
            # With refreshes at their cap, the next one starts when one finishes, not by timer.
            candidates.extend(t.next_refresh_deadline() for t in self.tables.values() if len(t))
        times = [t for t in candidates if t is not None]
        return min(times) if times else None

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def drain_events(self) -> list[ev.Event]:
        out = list(self._events)
        self._events.clear()
        return out

    # =========================================================================== operations ==
    def bootstrap(self, addrs: Sequence[Addr], now: float) -> int:
        """find_node lookup of our own id seeded with ``addrs`` (ids unknown) and the routing
        table. When it finishes, the node counts as bootstrapped and refreshes its buckets."""
        lid = self._start(self.node_id, "bootstrap", now, seeds=addrs)
        self._bootstrap_lookup = lid
        return lid

    def start_lookup(
        self, target: bytes, now: float, *, kind: str = "get_peers", seeds: Sequence[Addr] = ()
    ) -> int:
        """kind: "get_peers" or "find_node". Emits LookupStarted ... LookupFinished."""
        if kind not in ("get_peers", "find_node"):
            raise ValueError(f"unknown lookup kind {kind!r}")
        return self._start(target, kind, now, seeds=seeds)

    def announce(
        self,
        info_hash: bytes,
        port: int,
        now: float,
        *,
        implied_port: bool = False,
        seeds: Sequence[Addr] = (),
    ) -> int:
        """get_peers lookup, then announce_peer to the K closest token holders; ends with
        LookupFinished (kind "announce") then AnnounceFinished."""
        if not (implied_port or 0 < port < 65536):
            raise ValueError(f"port must be 1..65535, got {port}")
        lid = self._start(info_hash, "announce", now, seeds=seeds, defer_step=True)
        lk = self.lookups[lid]
        lk.announce_port = port
        lk.implied_port = implied_port
        self._step(lk, now)
        return lid

    def cancel_lookup(self, lookup_id: int, now: float) -> None:
        lk = self.lookups.get(lookup_id)
        if lk is None:
            return
        self.txns.cancel_owner(("lookup", lookup_id))
        self.txns.cancel_owner(("announce", lookup_id))
        self._finish(lk, now, cancelled=True)

    def ping(self, addr: Addr, now: float) -> int:
        """Direct ping; ends with PingFinished(op_id=returned id)."""
        op = self._new_op()
        if not self._send_query(PingQuery, addr, None, now, ("ping", op)):
            self._emit(ev.PingFinished(op, addr, None, None, None, now))
        return op

    def add_contacts(self, nodes: Sequence[NodeInfo], now: float) -> None:
        """Known contacts (restored state): pinged, and entered into the table when they answer."""
        for n in nodes:
            if self._addr_ok(n.addr) and n.id != self.node_id:
                self._send_query(PingQuery, n.addr, n.id, now, ("verify", 0))

    # ====================================================================== read-only views ==
    def routing_snapshot(self, now: float, family: int = 4) -> RoutingSnapshot:
        return self.tables[family].snapshot(now)

    def routing_size(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def good_node_count(self, now: float) -> int:
        s = self.settings
        return sum(
            1
            for t in self.tables.values()
            for e in t
            if e.state(now, s.good_period, s.bad_after_failures) == "good"
        )

    def stats(self) -> dict[str, int]:
        out = dict(self.counters)
        out["routing_nodes"] = self.routing_size()
        out["inflight"] = len(self.txns)
        out["lookups"] = len(self.lookups)
        out["stored_info_hashes"] = self.store.info_hash_count()
        out["stored_peers"] = self.store.peer_count()
        out["blocked_ips"] = len(self.limiter.blocked_ips(self._last_now))
        out["ip_blocks"] = self.limiter.stats["blocks"]
        out["tracked_ips"] = self.limiter.stats["tracked"]
        out["dropped_global"] = self.limiter.stats["dropped_global"]
        # Every datagram a protection discarded (refused queries included).
        out["dropped_packets"] = out["rate_limited"] + out["dropped_blocked"] + out["oversized"]
        return out

    def export_state(self) -> dict[str, object]:
        """JSON-able: {"node_id": hex, "external_ip": str|None, "nodes": [[hex, ip, port], ...]}."""
        nodes = [
            [n.id.hex(), n.addr[0], n.addr[1]]
            for t in self.tables.values()
            for n in t.export_nodes()
        ]
        return {"node_id": self.node_id.hex(), "external_ip": self.external_ip, "nodes": nodes}

    def bep42_ok(self) -> bool | None:
        """Whether our id is valid for our external address (None while it is unknown)."""
        if self.external_ip is None:
            return None
        return bep42_valid(self.node_id, self.external_ip)

    @staticmethod
    def id_for_ip(ip: str, rng: random.Random) -> bytes:
        """A BEP 42 compliant id for a node whose external address is ``ip``."""
        return bep42_id(ip, rng)

    # ============================================================================ internals ==
    _last_now = 0.0

    def _emit(self, event: ev.Event) -> None:
        events = self._events
        if len(events) == events.maxlen:
            self.counters["events_dropped"] += 1
        events.append(event)

    def _new_op(self) -> int:
        op = self._next_op
        self._next_op += 1
        return op

    def _addr_ok(self, addr: Addr) -> bool:
        try:
            fam = address_family(addr[0])
        except ValueError:
            return False
        if fam not in self.tables:
            return False
        return acceptable_address(addr, allow_local=self.settings.allow_local) is None

    def _transmit(
        self, data: bytes, addr: Addr, kind: str, method: bytes, tid: bytes, now: float
    ) -> None:
        self._out.append((data, addr))
        c = self.counters
        c["packets_out"] += 1
        c["bytes_out"] += len(data)
        if self.traffic_events:
            self._emit(ev.MessageSent(addr, kind, method, tid, len(data), data, now))

    # --- outgoing queries ------------------------------------------------------------------------
    def _send_query(
        self,
        qtype: type[Query],
        addr: Addr,
        node_id: bytes | None,
        now: float,
        owner: tuple[str, int],
        **args: object,
    ) -> Pending | None:
        s = self.settings
        try:
            p = self.txns.new(
                addr,
                node_id,
                qtype.method,
                now,
                self.short_timeout,
                s.hard_timeout,
                owner,
            )
        except OverflowError:
            self.counters["txn_overflow"] += 1
            return None
        want = frozenset({b"n4", b"n6"}) if len(self.families) > 1 else frozenset()
        if qtype in (FindNodeQuery, GetPeersQuery, SampleInfohashesQuery) and want:
            args["want"] = want
        msg = qtype(p.tid, self.node_id, version=s.client_version, read_only=s.read_only, **args)
        data = krpc.encode(msg)
        self.counters["queries_out"] += 1
        self._transmit(data, addr, "q", qtype.method, p.tid, now)
        return p

    # --- incoming queries ------------------------------------------------------------------------
    def _on_query(self, q: Query, data: bytes, addr: Addr, now: float) -> None:
        c = self.counters
        s = self.settings
        self._last_now = now
        c["queries_in"] += 1
        method = method_of(q)
        if self.traffic_events:
            self._emit(
                ev.MessageReceived(addr, "q", method, q.tid, len(data), q.sender_id, data, now)
            )
        if s.read_only:
            c["read_only_dropped"] += 1  # BEP 43: a read-only node does not answer
            return
        if s.rate_limit and not self.limiter.allow(addr[0], now):
            c["rate_limited"] += 1
            return
        reply = self.responder.answer(q, addr, now)
        self._send_reply(reply, addr, method, now)
        # Only after answering: the querier becomes a routing candidate (verified by a ping).
        table = self.tables.get(addr_family(addr))
        if table is not None and q.sender_id != self.node_id:
            to_ping = table.heard_from(
                q.sender_id,
                addr,
                now,
                responded=False,
                version=q.version,
                read_only=q.read_only,
            )
            self._verify(to_ping, now)

    def _send_reply(self, reply: Message, addr: Addr, method: bytes, now: float) -> None:
        data = self.responder.encode(reply)
        if isinstance(reply, ErrorMessage):
            self.counters["errors_out"] += 1
            kind = "e"
        else:
            self.counters["responses_out"] += 1
            kind = "r"
        self._transmit(data, addr, kind, method, reply.tid, now)

    # --- incoming replies ------------------------------------------------------------------------
    def _on_reply(self, msg: Response | ErrorMessage, data: bytes, addr: Addr, now: float) -> None:
        self._last_now = now
        c = self.counters
        p, why = self.txns.match(msg.tid, addr)
        if p is None:
            c["unsolicited"] += 1
            if self.settings.rate_limit:
                self.limiter.allow(addr[0], now, reply=False)  # a reply flood gets blocked too
            self._emit(ev.ResponseDropped(addr, msg.tid, why, now))
            return
        if isinstance(msg, ErrorMessage):
            c["errors_in"] += 1
            if self.traffic_events:
                self._emit(
                    ev.MessageReceived(
                        addr, "e", p.method, msg.tid, len(data), p.node_id, data, now
                    )
                )
            self._on_query_failed(p, now, f"error {msg.code}: {msg.message}")
            return
        c["responses_in"] += 1
        if self.traffic_events:
            self._emit(
                ev.MessageReceived(
                    addr, "r", p.method, msg.tid, len(data), msg.sender_id, data, now
                )
            )
        if p.node_id is not None and p.node_id != msg.sender_id:
            c["id_mismatch"] += 1  # the node at that address changed its id between contacts
            table = self.tables.get(addr_family(addr))
            if table is not None and table.get(p.node_id) is not None:
                table.remove(p.node_id, now, reason="id-changed")
        rtt = now - p.sent_at
        self._record_rtt(rtt)
        table = self.tables.get(addr_family(addr))
        if table is not None and msg.sender_id != self.node_id:
            to_ping = table.heard_from(
                msg.sender_id,
                addr,
                now,
                responded=True,
                rtt=rtt,
                version=msg.version,
                read_only=msg.read_only,
            )
            self._verify(to_ping, now)
        if msg.external_ip is not None:
            self._vote_external_ip(addr[0], msg.external_ip[0], now)
        kind, op = p.owner
        if kind == "lookup":
            lk = self.lookups.get(op)
            if lk is not None:
                self._lookup_response(lk, p, msg, now)
        elif kind == "announce":
            lk = self.lookups.get(op)
            if lk is not None:
                self._announce_done(lk, addr, True, now)
        elif kind == "ping":
            self._emit(ev.PingFinished(op, addr, msg.sender_id, rtt, msg.version, now))

    def _on_malformed(self, err: krpc.KrpcError, data: bytes, addr: Addr, now: float) -> None:
        self.counters["malformed"] += 1
        replied = False
        s = self.settings
        # Only a recognisable query gets an error reply, and only within the rate budget, so
        # garbage cannot be used to make us send traffic to a spoofed address. Any garbage is
        # charged to its sender, so a garbage flood gets the IP blocked like a query flood.
        answerable = err.query and err.tid is not None and not s.read_only
        allowed = not s.rate_limit or self.limiter.allow(addr[0], now, reply=answerable)
        if answerable and allowed and err.tid is not None:
            self._send_reply(ErrorMessage(err.tid, err.code, err.reason), addr, b"", now)
            replied = True
        self._emit(
            ev.MalformedReceived(
                addr, len(data), err.code, err.reason, replied, now, data[: ev.MALFORMED_PREFIX]
            )
        )

    def _on_slow(self, p: Pending, now: float) -> None:
        kind, op = p.owner
        if kind == "lookup":
            lk = self.lookups.get(op)
            if lk is not None:
                lk.on_slow(p.addr)
                self._step(lk, now)

    def _on_query_failed(self, p: Pending, now: float, error: str | None) -> None:
        if error is None:
            self.counters["timeouts"] += 1
        table = self.tables.get(addr_family(p.addr))
        if table is not None and error is None:
            table.failed(p.node_id, p.addr, now)
        kind, op = p.owner
        if kind == "lookup":
            lk = self.lookups.get(op)
            if lk is not None and lk.on_failure(p.addr, error) is not None:
                self._emit(ev.LookupTimeout(op, p.node_id, p.addr, error, now))
                self._step(lk, now)
        elif kind == "announce":
            lk = self.lookups.get(op)
            if lk is not None:
                self._announce_done(lk, p.addr, False, now)
        elif kind == "ping":
            self._emit(ev.PingFinished(op, p.addr, None, None, None, now))

    def _record_rtt(self, rtt: float) -> None:
        s = self.settings
        if not s.adaptive_timeout:
            return
        self._rtts.append(rtt)
        self._rtt_new += 1
        if len(self._rtts) < _RTT_MIN_SAMPLES or (
            len(self._rtts) >= _RTT_RECOMPUTE_EVERY and self._rtt_new < _RTT_RECOMPUTE_EVERY
        ):
            return
        self._rtt_new = 0
        ordered = sorted(self._rtts)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        self.short_timeout = min(s.short_timeout, max(s.min_short_timeout, 2.0 * p90))

    def _verify(self, nodes: list[NodeInfo], now: float) -> None:
        for n in nodes:
            self._send_query(PingQuery, n.addr, n.id, now, ("verify", 0))

    def _vote_external_ip(self, voter: str, ip: str, now: float) -> None:
        votes = self._ip_votes
        votes[voter] = ip
        votes.move_to_end(voter)
        while len(votes) > _EXTERNAL_IP_VOTERS:
            votes.popitem(last=False)
        tally: dict[str, int] = {}
        for v in votes.values():
            tally[v] = tally.get(v, 0) + 1
        best, count = max(tally.items(), key=lambda kv: kv[1])
        if best != self.external_ip and count >= _EXTERNAL_IP_MIN_VOTES:
            self.external_ip = best
            self._emit(ev.ExternalAddressChanged(best, count, now))

    # --- lookups ---------------------------------------------------------------------------------
    def _start(
        self,
        target: bytes,
        kind: str,
        now: float,
        *,
        seeds: Sequence[Addr] = (),
        defer_step: bool = False,
    ) -> int:
        if len(target) != ID_BYTES:
            raise ValueError("lookup target must be 20 bytes")
        if len(self.lookups) >= self.settings.max_lookups:
            raise LookupLimitError(f"{len(self.lookups)} lookups already running")
        s = self.settings
        lid = self._new_op()
        lk = Lookup(lid, target, kind, now, k=s.k, alpha=s.alpha)
        self.lookups[lid] = lk
        for table in self.tables.values():
            lk.add_nodes(table.closest(target, s.k * 2, now), None, 0)
        for a in seeds:
            if self._addr_ok(a):
                lk.add_seed(a)
        self._emit(ev.LookupStarted(lid, target, kind, now))
        if not defer_step:
            self._step(lk, now)
        return lid

    def _step(self, lk: Lookup, now: float) -> None:
        if lk.finished:
            return
        qtype: type[Query]
        args: dict[str, object]
        if lk.kind in ("get_peers", "announce"):
            qtype, args = GetPeersQuery, {"info_hash": lk.target}
        else:
            qtype, args = FindNodeQuery, {"target": lk.target}
        while True:
            batch = lk.next_queries()
            if not batch:
                break
            sent_any = False
            for cand in batch:
                p = self._send_query(qtype, cand.addr, cand.id, now, ("lookup", lk.id), **args)
                if p is None:
                    break
                lk.mark_sent(cand, now)
                sent_any = True
                self._emit(
                    ev.LookupQuerySent(lk.id, cand.id, cand.addr, cand.referrer, cand.depth, now)
                )
            if not sent_any:
                break
        if lk.is_done():
            self._finish(lk, now)

    def _lookup_response(self, lk: Lookup, p: Pending, r: Response, now: float) -> None:
        cand = lk.on_response(p.addr, r.sender_id, now, r.token)
        if cand is None:
            return
        contacts = [
            n for n in (*r.nodes, *r.nodes6) if n.id != self.node_id and self._addr_ok(n.addr)
        ]
        new_nodes = lk.add_nodes(contacts, r.sender_id, cand.depth + 1)
        peers = [a for a in r.values if a[1] != 0]
        room = self.settings.max_peers_per_lookup - len(lk.peers)
        if len(peers) > room:
            # Bounded: peers already known still count, new ones only while there is room.
            fresh = dict.fromkeys(a for a in peers if a not in lk.peers)
            keep = set(list(fresh)[: max(0, room)])
            peers = [a for a in peers if a in lk.peers or a in keep]
        new_peers = lk.add_peers(peers, now) if lk.kind in ("get_peers", "announce") else []
        cand.peers = len(peers)
        self._emit(
            ev.LookupResponse(
                lk.id, r.sender_id, p.addr, cand.rtt or 0.0, new_nodes, len(peers), now
            )
        )
        if peers:
            self._emit(ev.PeersFound(lk.id, r.sender_id, tuple(new_peers), now, tuple(peers)))
        self._step(lk, now)

    def _finish(self, lk: Lookup, now: float, cancelled: bool = False) -> None:
        lk.finished = True
        lk.finished_at = now
        self.txns.cancel_owner(("lookup", lk.id))
        closest = tuple((c.id, c.addr) for c in lk.closest() if c.id is not None)
        self._emit(
            ev.LookupFinished(
                lk.id,
                lk.target,
                lk.kind,
                tuple(lk.peers),
                closest,
                lk.queried,
                lk.responded,
                now - lk.started_at,
                cancelled,
                now,
            )
        )
        if lk.kind == "announce" and not cancelled:
            self._announce_phase(lk, now)
            return
        self.lookups.pop(lk.id, None)
        if lk.id in self._refreshing:
            fam, idx = self._refreshing.pop(lk.id)
            self.tables[fam].touch_bucket(idx, now)
        if lk.id == self._bootstrap_lookup and not cancelled:
            self._bootstrap_lookup = None
            self.bootstrapped = self.routing_size() > 0
            if self.bootstrapped:
                self._fill_buckets(now)

    def _announce_phase(self, lk: Lookup, now: float) -> None:
        holders = [c for c in lk.closest() if c.token is not None][: self.settings.k]
        for c in holders:
            p = self._send_query(
                AnnouncePeerQuery,
                c.addr,
                c.id,
                now,
                ("announce", lk.id),
                info_hash=lk.target,
                port=lk.announce_port if not lk.implied_port else max(lk.announce_port, 1),
                token=c.token,
                implied_port=lk.implied_port,
            )
            if p is not None:
                lk.announce_pending[c.addr] = True
            else:
                lk.announce_failed.append(c.addr)
        if not lk.announce_pending:
            self._announce_finished(lk, now)

    def _announce_done(self, lk: Lookup, addr: Addr, ok: bool, now: float) -> None:
        if lk.announce_pending.pop(addr, None) is None:
            return
        (lk.stored_at if ok else lk.announce_failed).append(addr)
        if not lk.announce_pending:
            self._announce_finished(lk, now)

    def _announce_finished(self, lk: Lookup, now: float) -> None:
        self.lookups.pop(lk.id, None)
        self._emit(
            ev.AnnounceFinished(
                lk.id,
                lk.target,
                lk.announce_port,
                tuple(lk.stored_at),
                tuple(lk.announce_failed),
                now,
            )
        )

    # --- table maintenance -----------------------------------------------------------------------
    def _fill_buckets(self, now: float) -> None:
        """After bootstrap: refresh every bucket that is not full, so the table covers the whole
        id space and not only our neighbourhood."""
        for fam, table in self.tables.items():
            snap = table.snapshot(now)
            for b in snap.buckets[:-1]:
                if len(b.nodes) < self.settings.k:
                    self._start_refresh(fam, b.index, now)

    def _refresh_buckets(self, now: float) -> None:
        for fam, table in self.tables.items():
            if not len(table):
                continue
            for idx in table.stale_buckets(now):
                if len(self._refreshing) >= _MAX_CONCURRENT_REFRESH:
                    return
                self._start_refresh(fam, idx, now)

    def _start_refresh(self, fam: int, idx: int, now: float) -> None:
        table = self.tables[fam]
        # Touched even when no refresh can start now (all lookup slots taken): the bucket is
        # then simply due again one refresh interval later, instead of spinning the timer.
        table.touch_bucket(idx, now)
        if (fam, idx) in self._refreshing.values() or len(
            self.lookups
        ) >= self.settings.max_lookups:
            return
        lid = self._start(table.refresh_target(idx, self.rng), "refresh", now, defer_step=True)
        self._refreshing[lid] = (fam, idx)
        self._step(self.lookups[lid], now)

