"""One Counters object per node: every part counts on it, ``stats(now)`` shows all of it."""

from __future__ import annotations

import random
from dataclasses import fields

from dhtviewer.dht import krpc
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.messages import AnnouncePeerQuery, PingQuery
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.settings import DhtSettings


def test_as_dict_has_every_field_at_zero() -> None:
    c = Counters()
    assert c.as_dict() == {f.name: 0 for f in fields(Counters)}


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
