"""LookupManager: what each kind of lookup asks, per-lookup alpha and short timeout, exactly one
LookupFinished per lookup (cancelled or not), and the limit on running lookups."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.kinds import LookupKind
from dhtviewer.dht.lookups import QUERY_OF_KIND
from dhtviewer.dht.messages import FindNodeQuery, GetPeersQuery
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import random_id
from tests.support.wire import LOCAL, Wire, build_network

SEEDS = [(f"127.0.9.{i}", 6881) for i in range(1, 21)]


def make() -> DhtNode:
    return DhtNode(rng=random.Random(1), now=0.0, settings=LOCAL)


def test_every_kind_has_its_query() -> None:
    assert set(QUERY_OF_KIND) == set(LookupKind)
    node = make()
    node.start_lookup(b"\x01" * 20, 0.0, kind="find_node", seeds=SEEDS[:1])
    node.start_lookup(b"\x02" * 20, 0.0, kind=LookupKind.GET_PEERS, seeds=SEEDS[:1])
    node.announce(b"\x03" * 20, 7000, 0.0, seeds=SEEDS[:1])
    sent = [krpc.decode(d) for d, _ in node.datagrams_to_send()]
    assert [type(q) for q in sent] == [FindNodeQuery, GetPeersQuery, GetPeersQuery]
    started = [e for e in node.drain_events() if isinstance(e, ev.LookupStarted)]
    assert [e.kind for e in started] == ["find_node", "get_peers", "announce"]
    with pytest.raises(ValueError, match="kind"):
        node.start_lookup(b"\x01" * 20, 0.0, kind=LookupKind.REFRESH)  # the node's own


def test_alpha_and_short_timeout_per_lookup() -> None:
    node = make()
    node.start_lookup(b"\x01" * 20, 0.0, seeds=SEEDS, alpha=2, short_timeout=0.3)
    assert len(node.datagrams_to_send()) == 2
    node.start_lookup(b"\x02" * 20, 0.0, seeds=SEEDS)
    assert len(node.datagrams_to_send()) == LOCAL.alpha
    # the first lookup's queries pass their (own) short timeout at 0.3: two more go out
    node.handle_timer(0.3)
    out = [krpc.decode(d) for d, _ in node.datagrams_to_send()]
    assert len(out) == 2 and all(getattr(q, "info_hash", None) == b"\x01" * 20 for q in out)
    with pytest.raises(ValueError, match="alpha"):
        node.start_lookup(b"\x03" * 20, 0.0, seeds=SEEDS, alpha=0)


def test_one_finished_event_per_lookup_even_when_cancelled_twice() -> None:
    node = make()
    lid = node.start_lookup(b"\x01" * 20, 0.0, seeds=SEEDS)
    node.cancel_lookup(lid, 0.1)
    node.cancel_lookup(lid, 0.2)
    node.handle_timer(10.0)
    fin = [e for e in node.drain_events() if isinstance(e, ev.LookupFinished)]
    assert len(fin) == 1 and fin[0].cancelled and not node.lookups and len(node.txns) == 0


def test_a_lookup_reaches_the_closest_nodes_of_a_small_network() -> None:
    wire = Wire()
    addrs = build_network(wire, 24)
    target = random_id(random.Random(9))
    seeker = wire.nodes[addrs[20]]
    lid = seeker.start_lookup(target, wire.now, kind="find_node")
    wire.run(wire.now + 10)
    (done,) = [e for e in wire.events[addrs[20]]
               if isinstance(e, ev.LookupFinished) and e.lookup_id == lid]
    others = [n.node_id for a, n in wire.nodes.items() if a != addrs[20]]
    truth = sorted(others, key=lambda x: int.from_bytes(x, "big") ^ int.from_bytes(target, "big"))
    assert [c[0] for c in done.closest] == truth[: LOCAL.k]
