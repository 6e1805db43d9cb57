"""One Counters object per node: every part counts on it, ``stats(now)`` shows all of it."""

from __future__ import annotations

import random
from dataclasses import fields

from dhtviewer.dht import krpc
from dhtviewer.dht.counters import (
    RTT_BUCKETS,
    Counters,
    Direction,
    MessageCounts,
    MessageType,
    RttHistogram,
    method_label,
)
from dhtviewer.dht.messages import AnnouncePeerQuery, PingQuery, Response
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.settings import DhtSettings


def test_as_dict_has_every_integer_field_at_zero() -> None:
    c = Counters()
    assert c.as_dict() == {f.name: 0 for f in fields(Counters)
                           if f.name not in ("messages", "rtt")}


def test_messages_by_direction_type_and_bounded_method() -> None:
    m = MessageCounts()
    m.add(Direction.IN, "q", b"get_peers")
    m.add(Direction.IN, "q", b"get_peers")
    m.add(Direction.OUT, "r", b"get_peers")
    m.add(Direction.IN, "q", b"made_up_by_a_peer")
    m.add(Direction.OUT, "e", b"")
    assert m.counts == {
        (Direction.IN, MessageType.QUERY, "get_peers"): 2,
        (Direction.OUT, MessageType.RESPONSE, "get_peers"): 1,
        (Direction.IN, MessageType.QUERY, "other"): 1,
        (Direction.OUT, MessageType.ERROR, "other"): 1,
    }
    assert method_label(b"sample_infohashes") == "sample_infohashes"


def test_rtt_histogram_buckets_are_inclusive_upper_bounds() -> None:
    h = RttHistogram()
    for rtt in (0.005, 0.0051, 0.3, 7.0):
        h.observe(rtt)
    assert h.counts[0] == 1 and h.counts[1] == 1
    assert h.counts[RTT_BUCKETS.index(0.5)] == 1 and h.counts[-1] == 1
    assert h.count == 4 and abs(h.total - 7.3101) < 1e-9


def test_a_node_counts_messages_rtts_and_lookups() -> None:
    now = 1.0
    node = DhtNode(rng=random.Random(1), now=0.0, settings=DhtSettings(allow_local=True))
    peer = ("127.0.0.2", 5000)
    node.receive(krpc.encode(PingQuery(b"aa", b"\x11" * 20)), peer, now)
    out = node.datagrams_to_send()  # our reply and our verification ping
    ping = next(krpc.decode(d) for d, _ in out if krpc.decode(d).tid != b"aa")
    node.receive(krpc.encode(Response(ping.tid, b"\x11" * 20)), peer, now + 0.02)
    c = node.counters
    assert c.messages.counts == {
        (Direction.IN, MessageType.QUERY, "ping"): 1,
        (Direction.OUT, MessageType.RESPONSE, "ping"): 1,
        (Direction.OUT, MessageType.QUERY, "ping"): 1,
        (Direction.IN, MessageType.RESPONSE, "ping"): 1,
    }
    assert c.rtt.count == 1 and c.rtt.counts[RTT_BUCKETS.index(0.025)] == 1
    node.start_lookup(b"\x22" * 20, now + 0.1)
    assert c.lookups_started == 1 and c.lookups_finished == 0
    node.cancel_lookup(next(iter(node.lookups)), now + 0.2)
    assert (c.lookups_finished, c.lookups_cancelled) == (1, 1)


def test_node_parts_count_on_the_same_object() -> None:
    node = DhtNode(rng=random.Random(1), now=0.0, settings=DhtSettings(allow_local=True))
    assert node.table.counters is node.counters
    assert node.limiter.counters is node.counters and node.store.counters is node.counters
    node.receive(krpc.encode(PingQuery(b"aa", b"\x11" * 20)), ("127.0.0.2", 5000), 1.0)
    bad = AnnouncePeerQuery(b"ab", b"\x11" * 20, info_hash=b"i" * 20, port=1, token=b"x" * 8)
    node.receive(krpc.encode(bad), ("127.0.0.2", 5000), 1.0)
    stats = node.stats(1.0)
    # node, routing table, rate limiter and responder counts, side by side
    assert stats["queries_in"] == 2 and stats["candidates_cached"] == 1
    assert stats["verify_pings"] == 1 and stats["queries_out"] == 1
    assert stats["limiter_allowed"] == 2 and stats["bad_tokens"] == 1
    assert stats["routing_nodes"] == 0 and stats["tracked_ips"] == 1
