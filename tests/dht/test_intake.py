"""Intake: every datagram into the node: a broken reply naming one of our queries ends it at
once, cut-short records are used and counted, and every datagram is counted exactly once."""

from __future__ import annotations

import random

from dhtviewer.dht import bencoding, krpc
from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr, NodeInfo, Response
from dhtviewer.dht.node import DhtNode
from tests.support.wire import LOCAL

SEED: Addr = ("127.0.8.1", 6881)
TARGET = b"\x07" * 20


def looking() -> tuple[DhtNode, int, bytes]:
    """A node with a get_peers lookup whose one query (to SEED) is in flight."""
    node = DhtNode(rng=random.Random(1), secrets=random.Random(2), now=0.0, settings=LOCAL)
    lid = node.start_lookup(TARGET, 0.0, seeds=[SEED])
    ((data, _),) = node.datagrams_to_send()
    node.drain_events()
    return node, lid, krpc.decode(data).tid


def accounted(node: DhtNode) -> bool:
    c = node.counters
    return c.packets_in == (
        c.malformed + c.queries_in + c.responses_in + c.errors_in + c.unsolicited
        + c.dropped_blocked
    )


def test_a_broken_reply_naming_our_query_ends_it_at_once() -> None:
    node, lid, tid = looking()
    broken = bencoding.encode({b"t": tid, b"y": b"r", b"r": {b"id": b"short"}})
    node.receive(broken, ("127.0.8.2", 6881), 0.1)  # not from the address asked: ignored
    assert len(node.txns) == 1 and node.counters.malformed_replies == 0
    node.receive(broken, SEED, 0.2)
    events = node.drain_events()
    (err,) = [e for e in events if isinstance(e, ev.LookupQueryError)]
    assert err.addr == SEED and err.error == "malformed reply: 'id' must be 20 bytes, got 5"
    assert any(isinstance(e, ev.LookupFinished) and e.lookup_id == lid for e in events)
    assert not any(isinstance(e, ev.LookupTimeout) for e in events)
    c = node.counters
    assert (c.malformed, c.malformed_replies, c.errors_out) == (2, 1, 0)  # never answered
    assert len(node.txns) == 0 and node.datagrams_to_send() == [] and accounted(node)


def test_garbage_without_our_tid_changes_nothing() -> None:
    node, _, tid = looking()
    for data in (b"garbage", bencoding.encode({b"t": b"zz", b"y": b"r"}),
                 bencoding.encode({b"t": tid, b"y": b"q", b"q": b"ping"})):  # a query: not a reply
        node.receive(data, SEED, 0.1)
    assert len(node.txns) == 1 and node.counters.malformed_replies == 0 and accounted(node)


def test_cut_short_records_are_used_and_counted() -> None:
    node, lid, tid = looking()
    contacts = tuple(
        NodeInfo(bytes([0x20 + i]) * 20, (f"127.0.8.{10 + i}", 6881)) for i in range(3)
    )
    reply = bencoding.decode(krpc.encode(Response(tid, b"\x55" * 20, nodes=contacts,
                                                  values=(("127.0.9.1", 51413),), token=b"tk")))
    assert isinstance(reply, dict)
    r = reply[b"r"]
    r[b"nodes"] += b"\x00" * 11  # a trailing partial record
    r[b"values"].append(b"\x01" * 5)  # an entry of no peer's length
    node.receive(bencoding.encode(reply), SEED, 0.1)
    events = node.drain_events()
    (resp,) = [e for e in events if isinstance(e, ev.LookupResponse) and e.lookup_id == lid]
    assert resp.nodes == 3 and resp.peers == 1
    (found,) = [e for e in events if isinstance(e, ev.PeersFound)]
    assert found.peers == (("127.0.9.1", 51413),)
    c = node.counters
    assert (c.partial_records, c.responses_in, c.malformed) == (2, 1, 0) and accounted(node)
