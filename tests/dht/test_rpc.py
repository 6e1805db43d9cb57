"""Rpc: our queries reach their owner's callbacks (answer, error, slow, timeout) exactly once,
only from the exact address queried, and every answer or timeout teaches the routing table."""

from __future__ import annotations

import random

from dhtviewer.dht import krpc
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.messages import ErrorMessage, PingQuery, Response
from dhtviewer.dht.outbox import Outbox
from dhtviewer.dht.rate_limit import RateLimiter
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.rpc import Rpc
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.transactions import Pending, TransactionOwner

S = DhtSettings(allow_local=True, adaptive_timeout=False)
OWN = b"\x01" * 20
PEER = b"\x7f" * 20
A = ("127.0.0.2", 6881)


class Recorder(TransactionOwner):
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        self.calls.append(("response", r.sender_id))

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self.calls.append(("error", reason))

    def on_slow(self, p: Pending, now: float) -> None:
        self.calls.append(("slow", now))

    def on_timeout(self, p: Pending, now: float) -> None:
        self.calls.append(("timeout", now))


def make() -> tuple[Rpc, RoutingTable, Outbox, list[tuple[str, str, float]]]:
    c = Counters()
    box = Outbox(c, 100, traffic_events=False)
    table = RoutingTable(OWN, S, 4, counters=c)
    votes: list[tuple[str, str, float]] = []
    rpc = Rpc(
        node_id=OWN, settings=S, table=table, outbox=box, counters=c,
        rng=random.Random(1), limiter=RateLimiter(counters=c),
        on_external_ip=lambda voter, ip, now: votes.append((voter, ip, now)),
    )
    return rpc, table, box, votes


def sent_tid(box: Outbox) -> bytes:
    ((data, addr),) = box.take_datagrams()
    q = krpc.decode(data)
    assert isinstance(q, PingQuery) and q.sender_id == OWN and addr == A
    return q.tid


def test_answer_goes_to_the_owner_and_into_the_table() -> None:
    rpc, table, box, votes = make()
    owner = Recorder()
    assert rpc.send(PingQuery, A, None, 0.0, owner) is not None
    tid = sent_tid(box)
    reply = Response(tid, PEER, external_ip=("9.9.9.9", 1))
    rpc.on_reply(reply, b"", ("127.0.0.2", 6882), 0.1)  # wrong port: not ours
    assert owner.calls == [] and rpc.counters.unsolicited == 1
    rpc.on_reply(reply, b"", A, 0.2)
    rpc.on_reply(reply, b"", A, 0.3)  # a duplicate is unsolicited
    assert owner.calls == [("response", PEER)] and rpc.counters.unsolicited == 2
    entry = table.get(PEER)
    assert entry is not None and entry.answered and entry.rtt == 0.2
    assert votes == [("127.0.0.2", "9.9.9.9", 0.2)] and len(rpc) == 0


def test_slow_then_timeout_and_the_table_hears_of_it() -> None:
    rpc, table, _, _ = make()
    table.heard_from(PEER, A, 0.0, responded=True)
    owner = Recorder()
    rpc.send(PingQuery, A, PEER, 1.0, owner, short_timeout=0.5)
    assert rpc.next_deadline() == 1.5
    rpc.expire(1.5)
    rpc.expire(S.hard_timeout + 1.0)
    assert owner.calls == [("slow", 1.5), ("timeout", S.hard_timeout + 1.0)]
    e = table.get(PEER)
    assert e is not None and e.failures == 1 and rpc.counters.timeouts == 1


def test_an_error_reply_ends_the_query_without_failing_the_node() -> None:
    rpc, table, box, _ = make()
    table.heard_from(PEER, A, 0.0, responded=True)
    owner = Recorder()
    rpc.send(PingQuery, A, PEER, 1.0, owner)
    rpc.on_reply(ErrorMessage(sent_tid(box), 202, "busy"), b"", A, 1.1)
    assert owner.calls == [("error", "error 202: busy")]
    e = table.get(PEER)
    assert e is not None and e.failures == 0 and rpc.counters.errors_in == 1


def test_cancelled_owner_hears_nothing_more() -> None:
    rpc, _, box, _ = make()
    owner = Recorder()
    rpc.send(PingQuery, A, None, 0.0, owner)
    tid = sent_tid(box)
    rpc.cancel(owner)
    rpc.on_reply(Response(tid, PEER), b"", A, 0.1)
    rpc.expire(100.0)
    assert owner.calls == [] and len(rpc) == 0


def test_full_transaction_table_refuses_and_counts() -> None:
    rpc, _, _, _ = make()
    owner = Recorder()
    sent = [rpc.send(PingQuery, A, None, 0.0, owner) for _ in range(S.max_inflight_queries + 3)]
    assert sum(p is None for p in sent) == 3 and rpc.counters.txn_overflow == 3
