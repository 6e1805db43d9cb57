"""Rpc: our side of every exchange: sending queries, matching replies to them, timeouts, and
what every answer teaches the node.

A query is registered in the ``TransactionTable`` under a fresh transaction id, encoded and
handed to the ``Outbox``. A reply is accepted only from the exact address queried with that id
(``TransactionTable.match``); it then updates the routing table (the node answered: it is real),
the adaptive short timeout (its RTT) and the external-address vote (its BEP 42 ``ip``), and goes
to the query's owner (``TransactionOwner``). A KRPC error ends the query as an error and proves
the node alive; an undecodable reply naming the transaction ends it as an error too, and counts
as a failure. Timeouts go to the owner too, and to the routing table (a node that does not
answer is failing). Owners' callbacks are guarded: one that raises is counted and reported
(``OwnerFailed``) and nothing else stops. Nothing here decides *what* to ask: lookups,
announces, pings and custom exchanges (``DhtNode.send_query``) are owners.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.counters import Counters, Direction
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.kinds import OwnerKind
from dhtviewer.dht.messages import (
    Addr,
    ErrorMessage,
    NodeInfo,
    PingQuery,
    Query,
    Response,
    method_of,
)
from dhtviewer.dht.outbox import Outbox
from dhtviewer.dht.rate_limit import RateLimiter
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.timeouts import AdaptiveTimeout
from dhtviewer.dht.transactions import Pending, TransactionOwner, TransactionTable


class Verification(TransactionOwner):
    """The routing table's pings (a newcomer to verify, a questionable node to check). What an
    answer or a timeout teaches the table, ``Rpc`` applies to every query alike, so nothing is
    left to do here."""

    kind = OwnerKind.VERIFY


class DirectPing(TransactionOwner):
    """A ping asked for through ``DhtNode.ping``: ends with one ``PingFinished``."""

    kind = OwnerKind.PING
    __slots__ = ("emit", "op")

    def __init__(self, op: int, emit: Callable[[ev.Event], None]) -> None:
        self.op = op
        self.emit = emit

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        self.emit(ev.PingFinished(self.op, p.addr, r.sender_id, now - p.sent_at, r.version, now))

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self.emit(ev.PingFinished(self.op, p.addr, None, None, None, now))

    def on_timeout(self, p: Pending, now: float) -> None:
        self.emit(ev.PingFinished(self.op, p.addr, None, None, None, now))


class VerificationBudget:
    """Bounds the pings we send to addresses that never answered us: at most one per address per
    ``interval`` seconds, and ``rate`` per second over all of them (bursts of ``rate``). Such
    pings go to whatever address a query claimed to come from, so without a bound a flood of
    spoofed queries would make us flood its victims. Memory is bounded too: an address pinged
    longer than ``interval`` ago need not be remembered, and at most ``rate * interval + rate``
    addresses can have been pinged within that time."""

    def __init__(self, interval: float, rate: float) -> None:
        self.interval = interval
        self.rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._updated: float | None = None
        self._recent: OrderedDict[Addr, float] = OrderedDict()
        self._max_recent = int(rate * interval + self._burst) + 1

    def allow(self, addr: Addr, now: float) -> bool:
        recent = self._recent
        while recent:
            at = next(iter(recent.values()))
            if now - at < self.interval and len(recent) <= self._max_recent:
                break
            recent.popitem(last=False)
        last = recent.get(addr)
        if last is not None and now - last < self.interval:
            return False
        if self._updated is not None and now > self._updated:
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now if self._updated is None else max(self._updated, now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        recent[addr] = now
        recent.move_to_end(addr)
        return True

    def __len__(self) -> int:
        return len(self._recent)


class Rpc:
    def __init__(
        self,
        *,
        identity: NodeIdentity,
        settings: DhtSettings,
        table: RoutingTable,
        outbox: Outbox,
        counters: Counters,
        secrets: random.Random,
        limiter: RateLimiter,
        on_external_ip: Callable[[str, str, float], None],
    ) -> None:
        """``identity``: whose id our queries carry. ``secrets``: draws the transaction ids (a
        reply is only accepted with the tid we chose, so nobody may predict them).
        ``on_external_ip(voter_ip, claimed_ip, now)``: a responder reported the address our
        query came from."""
        self.identity = identity
        self.settings = settings
        self.table = table
        self.outbox = outbox
        self.counters = counters
        self.limiter = limiter
        self.txns = TransactionTable(secrets, settings.max_inflight_queries)
        self.timeout = AdaptiveTimeout(settings)
        self.verification = Verification()
        self.budget = VerificationBudget(settings.verify_interval, settings.verify_rate)
        self._on_external_ip = on_external_ip

    @property
    def node_id(self) -> bytes:
        return self.identity.node_id

    # --- sending ---------------------------------------------------------------------------------
    def send(
        self,
        qtype: type[Query],
        addr: Addr,
        node_id: bytes | None,
        now: float,
        owner: TransactionOwner,
        *,
        short_timeout: float | None = None,
        hard_timeout: float | None = None,
        **args: object,
    ) -> Pending | None:
        """Send a ``qtype`` query with ``args`` to ``addr`` (expected to be ``node_id``, None if
        unknown) for ``owner``. None (nothing sent, counted) when ``max_inflight_queries`` are
        outstanding. ``short_timeout``/``hard_timeout``: instead of the adaptive short timeout
        and the ``hard_timeout`` setting. Raises ValueError (nothing registered, nothing sent)
        when the query cannot be encoded."""
        s = self.settings
        try:
            tid = self.txns.fresh_tid()
        except OverflowError:
            self.counters.txn_overflow += 1
            return None
        msg = qtype(tid, self.node_id, version=s.client_version, read_only=s.read_only, **args)
        # Encoded before anything is registered: a query that cannot go on the wire must not
        # leave a transaction behind.
        data = krpc.encode(msg)
        method = method_of(msg)
        p = self.txns.new(
            addr,
            node_id,
            method,
            now,
            self.timeout.value if short_timeout is None else short_timeout,
            s.hard_timeout if hard_timeout is None else hard_timeout,
            owner,
            tid=tid,
        )
        self.counters.queries_out += 1
        self.outbox.transmit(data, addr, "q", method, tid, now)
        return p

    def verify(self, nodes: list[NodeInfo], now: float) -> None:
        """Ping the nodes the routing table asked to hear from: live ones (questionable, to be
        checked before anyone replaces them) always, the others (never answered us) within the
        verification budget."""
        c = self.counters
        table = self.table
        for n in nodes:
            if ip_family(n.addr[0]) != table.family:
                continue
            if table.get_by_addr(n.addr) is None:
                if not self.budget.allow(n.addr, now):
                    c.verify_pings_skipped += 1
                    continue
                c.verify_pings += 1
            self.send(PingQuery, n.addr, n.id, now, self.verification)

    def rearm_short(self, p: Pending, deadline: float) -> bool:
        """Tell ``p``'s owner of its silence again at ``deadline`` (``TransactionTable``)."""
        return self.txns.rearm_short(p, deadline)

    def cancel(self, owner: TransactionOwner) -> int:
        """Forget ``owner``'s queries (how many); their late replies will be dropped as
        unsolicited."""
        return len(self.txns.cancel_owner(owner))

    # --- receiving -------------------------------------------------------------------------------
    def on_reply(self, msg: Response | ErrorMessage, data: bytes, addr: Addr, now: float) -> None:
        c = self.counters
        if isinstance(msg, Response) and msg.partial_records:
            c.partial_records += msg.partial_records
        p, why = self.txns.match(msg.tid, addr)
        if p is None:
            c.unsolicited += 1
            if self.settings.rate_limit:
                self.limiter.allow(addr[0], now, reply=False)  # a reply flood gets blocked too
            self.outbox.emit(ev.ResponseDropped(addr, msg.tid, why, now))
            return
        traffic = self.outbox.traffic_events
        table = self.table if ip_family(addr[0]) == self.table.family else None
        if isinstance(msg, ErrorMessage):
            c.errors_in += 1
            c.messages.add(Direction.IN, "e", p.method)
            if traffic:
                self.outbox.emit(
                    ev.MessageReceived(
                        addr, "e", p.method, msg.tid, len(data), p.node_id, data, now
                    )
                )
            if table is not None:
                # It answered our transaction from the address we asked: it is there, even if
                # it would not (or could not) do what we asked.
                table.answered_with_error(addr, now, msg.version)
            self._notify(p, now, p.owner.on_error, f"error {msg.code}: {msg.message}")
            return
        c.responses_in += 1
        c.messages.add(Direction.IN, "r", p.method)
        if traffic:
            self.outbox.emit(
                ev.MessageReceived(
                    addr, "r", p.method, msg.tid, len(data), msg.sender_id, data, now
                )
            )
        if p.node_id is not None and p.node_id != msg.sender_id:
            c.id_mismatch += 1  # the node at that address changed its id between contacts
            if table is not None and table.get(p.node_id) is not None:
                table.remove(p.node_id, now, reason="id-changed")
        rtt = now - p.sent_at
        self.timeout.record(rtt)
        c.rtt.observe(rtt)
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
            self.verify(to_ping, now)
        if msg.external_ip is not None:
            self._on_external_ip(addr[0], msg.external_ip[0], now)
        self._notify(p, now, p.owner.on_response, msg)

    def on_malformed_reply(self, tid: bytes, reason: str, addr: Addr, now: float) -> bool:
        """A datagram that did not decode and was no query named transaction ``tid``. From the
        address that query went to, it ends the query at once as an error (rather than by the
        hard timeout, seconds later) and counts as a failure of that node, as libtorrent
        treats it: whatever sits there does not speak KRPC well enough to be of use. Returns
        whether it matched (otherwise nothing changes: anyone can send garbage)."""
        p = self.txns.get(tid)
        if p is None or p.addr != addr:
            return False
        self.txns.match(tid, addr)
        self.counters.malformed_replies += 1
        if ip_family(addr[0]) == self.table.family:
            self.verify(self.table.failed(p.node_id, addr, now), now)
        self._notify(p, now, p.owner.on_error, f"malformed reply: {reason}")
        return True

    # --- time ------------------------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Tell owners about queries that just passed their short or hard timeout."""
        slow, failed = self.txns.expire(now)
        for p in slow:
            self._notify(p, now, p.owner.on_slow)
            # A lookup's checkpoint (half the short timeout) moves the short deadline on: that
            # query is not slow yet, and is counted when it really is.
            if p.slow:
                self.counters.slow_queries += 1
        for p in failed:
            self.counters.timeouts += 1
            if ip_family(p.addr[0]) == self.table.family:
                self.verify(self.table.failed(p.node_id, p.addr, now), now)
            self._notify(p, now, p.owner.on_timeout)

    def next_deadline(self) -> float | None:
        return self.txns.next_deadline()

    def __len__(self) -> int:
        """Queries in flight."""
        return len(self.txns)

    # --- internals -------------------------------------------------------------------------------
    def _notify(self, p: Pending, now: float, callback: Callable[..., None], *args: object) -> None:
        """Call ``callback(p, *args, now)``, one of ``p.owner``'s. An owner is code of its own
        (a custom exchange's, say): if it raises, that is counted and reported, and the node
        goes on with the next query, timer or datagram (other owners must not be stranded)."""
        try:
            callback(p, *args, now)
        except Exception as err:
            self.counters.owner_errors += 1
            self.outbox.emit(
                ev.OwnerFailed(p.owner.kind, callback.__name__, p.addr, repr(err), now)
            )
