"""Intake: every datagram that reaches the node, from the socket to whoever handles it.

Admission comes first and costs least: a datagram from a blocked IP is dropped unparsed (unless
it may be a reply: a flood spoofing a node's address must not cut us off from it), an oversized
one is dropped unparsed. Then it is decoded: a reply or error goes to ``Rpc``; a query is
answered (read-only mode and the rate limits permitting) by the ``Responder``, and only then is
its sender learnt about (a routing candidate, verified by a ping before it may enter a bucket).
A datagram that does not decode is counted and, if it was a recognisable query, answered with
a KRPC error within the rate budget; if it was a reply naming one of our transactions, from the
address that query went to, that query ends at once as an error (``Rpc.on_malformed_reply``).
Every datagram is counted exactly once (see ``Counters``).
"""

from __future__ import annotations

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.counters import Counters, Direction
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.messages import (
    PROTOCOL_ERROR,
    SERVER_ERROR,
    Addr,
    ErrorMessage,
    Message,
    Query,
    method_of,
)
from dhtviewer.dht.outbox import Outbox
from dhtviewer.dht.rate_limit import RateLimiter
from dhtviewer.dht.responder import Responder
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.rpc import Rpc
from dhtviewer.dht.settings import DhtSettings


class Intake:
    def __init__(
        self,
        *,
        identity: NodeIdentity,
        settings: DhtSettings,
        table: RoutingTable,
        rpc: Rpc,
        responder: Responder,
        limiter: RateLimiter,
        outbox: Outbox,
        counters: Counters,
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.table = table
        self.rpc = rpc
        self.responder = responder
        self.limiter = limiter
        self.outbox = outbox
        self.counters = counters

    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle one incoming datagram. Never raises on any input."""
        c = self.counters
        s = self.settings
        c.packets_in += 1
        c.bytes_in += len(data)
        if (
            s.rate_limit
            and self.limiter.is_blocked(addr[0], now)
            and b"1:y1:r" not in data
            and b"1:y1:e" not in data
        ):
            # A flood is shed before parsing. Whatever could be a reply (valid ones always hold
            # one of those two byte runs) still goes through: it is matched to our queries, and
            # a flood spoofing a node's address must not make that node look dead to us.
            c.dropped_blocked += 1
            return
        if len(data) > s.max_datagram_size:
            c.oversized += 1
            c.malformed += 1
            self.outbox.emit(
                ev.MalformedReceived(
                    addr, len(data), PROTOCOL_ERROR, "datagram too large", False, now,
                    data[: ev.MALFORMED_PREFIX],
                )
            )
            return
        try:
            msg = krpc.decode(data, max_depth=s.max_bencode_depth)
        except krpc.KrpcError as err:
            self._on_malformed(err, data, addr, now)
            return
        if isinstance(msg, Query):
            self._on_query(msg, data, addr, now)
        else:
            self.rpc.on_reply(msg, data, addr, now)

    def _on_query(self, q: Query, data: bytes, addr: Addr, now: float) -> None:
        c = self.counters
        s = self.settings
        c.queries_in += 1
        method = method_of(q)
        c.messages.add(Direction.IN, "q", method)
        if self.outbox.traffic_events:
            self.outbox.emit(
                ev.MessageReceived(addr, "q", method, q.tid, len(data), q.sender_id, data, now)
            )
        if s.read_only:
            c.read_only_dropped += 1  # BEP 43: a read-only node does not answer
            return
        if s.rate_limit and not self.limiter.allow(addr[0], now):
            c.rate_limited += 1
            return
        try:
            # find_node and get_peers (most of what a node serves) are written straight to
            # bytes; the same reply ``answer`` + ``encode`` would give.
            wire = self.responder.answer_wire(q, addr, now)
            reply = None if wire is not None else self.responder.answer(q, addr, now)
        except Exception:
            # Only a registered custom handler can get here; it must not take the node down.
            c.handler_errors += 1
            wire = None
            reply = ErrorMessage(q.tid, SERVER_ERROR, "server error")
        if wire is not None:
            c.responses_out += 1
            self.outbox.transmit(wire, addr, "r", method, q.tid, now)
        else:
            assert reply is not None
            self._send_reply(reply, addr, method, now)
        # Only after answering: the querier becomes a routing candidate (verified by a ping).
        if q.sender_id != self.identity.node_id and ip_family(addr[0]) == self.table.family:
            to_ping = self.table.heard_from(
                q.sender_id,
                addr,
                now,
                responded=False,
                version=q.version,
                read_only=q.read_only,
            )
            self.rpc.verify(to_ping, now)

    def _send_reply(self, reply: Message, addr: Addr, method: bytes, now: float) -> None:
        data = self.responder.encode(reply)
        if isinstance(reply, ErrorMessage):
            self.counters.errors_out += 1
            kind = "e"
        else:
            self.counters.responses_out += 1
            kind = "r"
        self.outbox.transmit(data, addr, kind, method, reply.tid, now)

    def _on_malformed(self, err: krpc.KrpcError, data: bytes, addr: Addr, now: float) -> None:
        self.counters.malformed += 1
        replied = False
        s = self.settings
        if not err.query and err.tid is not None:
            # Perhaps a broken answer to one of our queries: it ends that query now rather
            # than by its hard timeout (only from the address the query went to).
            self.rpc.on_malformed_reply(err.tid, err.reason, addr, now)
        # Only a recognisable query gets an error reply, and only within the rate budget, so
        # garbage cannot be used to make us send traffic to a spoofed address. Any garbage is
        # charged to its sender, so a garbage flood gets the IP blocked like a query flood.
        answerable = err.query and err.tid is not None and not s.read_only
        allowed = not s.rate_limit or self.limiter.allow(addr[0], now, reply=answerable)
        if answerable and allowed and err.tid is not None:
            self._send_reply(ErrorMessage(err.tid, err.code, err.reason), addr, b"", now)
            replied = True
        self.outbox.emit(
            ev.MalformedReceived(
                addr, len(data), err.code, err.reason, replied, now, data[: ev.MALFORMED_PREFIX]
            )
        )
