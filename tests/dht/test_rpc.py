"""Rpc: our queries reach their owner's callbacks (answer, error, slow, timeout) exactly once,
only from the exact address queried, and every answer or timeout teaches the routing table."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.kinds import OwnerKind
from dhtviewer.dht.messages import ErrorMessage, PingQuery, Response, UnknownQuery
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
        identity=NodeIdentity(OWN, secrets=random.Random(2)), settings=S, table=table,
        outbox=box, counters=c, secrets=random.Random(1), limiter=RateLimiter(counters=c),
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


def test_an_error_reply_ends_the_query_and_proves_the_node_alive() -> None:
    rpc, table, box, _ = make()
    table.heard_from(PEER, A, 0.0, responded=True)
    table.failed(PEER, A, 50.0)
    table.failed(PEER, A, 60.0)  # two failures: one more and it would be bad
    owner = Recorder()
    rpc.send(PingQuery, A, PEER, 1000.0, owner)
    rpc.on_reply(ErrorMessage(sent_tid(box), 202, "busy", version=b"XX\x00\x01"), b"", A, 1000.1)
    assert owner.calls == [("error", "error 202: busy")] and len(rpc) == 0
    e = table.get(PEER)
    assert e is not None and rpc.counters.errors_in == 1
    # It answered our transaction from the address we asked: alive, heard from just now.
    assert e.failures == 0 and e.last_seen == 1000.1 and e.version == b"XX\x00\x01"
    assert e.state(1000.2, S.good_period, S.bad_after_failures) == "good"


def test_a_malformed_reply_naming_a_query_ends_it_at_once_as_a_failure() -> None:
    """Not 5 s later by the hard timeout: as soon as it comes, from the address asked."""
    rpc, table, box, _ = make()
    table.heard_from(PEER, A, 0.0, responded=True)
    owner = Recorder()
    rpc.send(PingQuery, A, PEER, 1.0, owner)
    tid = sent_tid(box)
    assert not rpc.on_malformed_reply(tid, "missing 'id'", ("127.0.0.2", 9999), 1.1)
    assert not rpc.on_malformed_reply(b"zz", "missing 'id'", A, 1.1)
    assert owner.calls == [] and len(rpc) == 1 and rpc.counters.malformed_replies == 0
    assert rpc.on_malformed_reply(tid, "missing 'id'", A, 1.2)
    assert owner.calls == [("error", "malformed reply: missing 'id'")]
    assert len(rpc) == 0 and rpc.counters.malformed_replies == 1
    e = table.get(PEER)
    assert e is not None and e.failures == 1  # it does not speak KRPC: not a working node
    rpc.expire(100.0)
    assert len(owner.calls) == 1  # and no timeout later


def test_slow_queries_are_counted() -> None:
    rpc, _, _, _ = make()
    owner = Recorder()
    rpc.send(PingQuery, A, None, 0.0, owner, short_timeout=0.3, hard_timeout=0.9)
    rpc.expire(0.3)
    assert rpc.counters.slow_queries == 1 and owner.calls == [("slow", 0.3)]
    rpc.expire(0.9)  # the per-query hard timeout, not the setting's
    assert owner.calls[-1] == ("timeout", 0.9) and rpc.counters.timeouts == 1


def test_partial_records_of_a_reply_are_counted() -> None:
    rpc, _, box, _ = make()
    rpc.send(PingQuery, A, None, 0.0, Recorder())
    rpc.on_reply(Response(sent_tid(box), PEER, partial_records=2), b"", A, 0.1)
    rpc.on_reply(Response(b"??", PEER, partial_records=1), b"", A, 0.2)  # unsolicited too
    assert rpc.counters.partial_records == 3


class Raising(Recorder):
    """An owner whose every callback records, then raises."""

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        super().on_response(p, r, now)
        raise RuntimeError("owner bug")

    def on_timeout(self, p: Pending, now: float) -> None:
        super().on_timeout(p, now)
        raise KeyError("owner bug")

    def on_slow(self, p: Pending, now: float) -> None:
        super().on_slow(p, now)
        raise ValueError("owner bug")


def test_an_owner_that_raises_is_counted_reported_and_strands_nobody() -> None:
    rpc, _, box, _ = make()
    bad, good = Raising(), Recorder()
    rpc.send(PingQuery, A, None, 0.0, bad, short_timeout=0.5)
    rpc.send(PingQuery, ("127.0.0.3", 6881), None, 0.0, good, short_timeout=0.5)
    rpc.send(PingQuery, ("127.0.0.4", 6881), None, 0.0, bad, short_timeout=S.hard_timeout)
    box.take_datagrams()
    rpc.expire(0.5)  # both slow: the raising owner first, by send order
    rpc.expire(S.hard_timeout)  # all three time out: the good owner is still told
    assert good.calls == [("slow", 0.5), ("timeout", S.hard_timeout)]
    assert [c for c, _ in bad.calls] == ["slow", "timeout", "timeout"]
    assert rpc.counters.owner_errors == 3 and len(rpc) == 0
    failed = [e for e in box.take_events() if isinstance(e, ev.OwnerFailed)]
    assert [(e.callback, e.owner, e.error) for e in failed] == [
        ("on_slow", OwnerKind.CUSTOM, "ValueError('owner bug')"),
        ("on_timeout", OwnerKind.CUSTOM, "KeyError('owner bug')"),
        ("on_timeout", OwnerKind.CUSTOM, "KeyError('owner bug')"),
    ]


def test_a_query_that_cannot_be_encoded_leaves_no_transaction() -> None:
    rpc, _, box, _ = make()
    with pytest.raises(ValueError):
        rpc.send(UnknownQuery, A, None, 0.0, Recorder(), name=b"x", args={b"k": 1.5})
    assert len(rpc) == 0 and box.take_datagrams() == [] and rpc.counters.queries_out == 0
    assert rpc.next_deadline() is None


def test_tids_come_from_the_secrets_source() -> None:
    """Two Rpcs alike but for their secrets draw different tids; alike secrets, alike tids."""
    def tids(secret_seed: int) -> list[bytes]:
        c = Counters()
        box = Outbox(c, 100, traffic_events=False)
        rpc = Rpc(
            identity=NodeIdentity(OWN, secrets=random.Random(0)), settings=S,
            table=RoutingTable(OWN, S, 4, counters=c), outbox=box, counters=c,
            secrets=random.Random(secret_seed), limiter=RateLimiter(counters=c),
            on_external_ip=lambda voter, ip, now: None,
        )
        return [p.tid for p in (rpc.send(PingQuery, A, None, 0.0, Recorder())
                                for _ in range(8)) if p is not None]

    assert tids(1) == tids(1) and tids(1) != tids(2)


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
