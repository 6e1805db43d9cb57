"""Refresher: bootstrap, filling the buckets after it, and refreshing stale buckets on time."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.kinds import LookupKind
from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node import DhtNode
from tests.support.wire import LOCAL, Wire, build_network


def test_bootstrap_with_nobody_to_ask_does_not_count() -> None:
    node = DhtNode(rng=random.Random(1), now=0.0, settings=LOCAL)
    node.bootstrap([], 0.0)
    fin = [e for e in node.drain_events() if isinstance(e, ev.LookupFinished)]
    assert fin and fin[0].kind == LookupKind.BOOTSTRAP and not node.bootstrapped
    assert node.next_deadline() is None  # no refresh timer for an empty table


def test_bootstrap_fills_buckets_then_stale_buckets_are_refreshed() -> None:
    wire = Wire()
    addrs = build_network(wire, 30)
    node = wire.nodes[addrs[-1]]
    assert node.bootstrapped
    kinds = [e.kind for e in wire.events[addrs[-1]] if isinstance(e, ev.LookupStarted)]
    assert kinds[0] == LookupKind.BOOTSTRAP and LookupKind.REFRESH in kinds[1:]
    deadline = node.next_deadline()
    assert deadline is not None and deadline <= wire.now + LOCAL.bucket_refresh_interval
    before = len(wire.events[addrs[-1]])
    wire.run(wire.now + LOCAL.bucket_refresh_interval + 5)
    later = [e for e in wire.events[addrs[-1]][before:] if isinstance(e, ev.LookupStarted)]
    assert later and all(e.kind == LookupKind.REFRESH for e in later)
    # never more than max_refresh_lookups refreshes at once
    running = 0
    for e in wire.events[addrs[-1]][before:]:
        if isinstance(e, ev.LookupStarted):
            running += 1
            assert running <= LOCAL.max_refresh_lookups
        elif isinstance(e, ev.LookupFinished):
            running -= 1


def test_preloaded_tables_count_as_bootstrapped() -> None:
    wire = Wire()
    addrs = build_network(wire, 10)
    fresh = DhtNode(rng=random.Random(5), now=wire.now, settings=replace(LOCAL))
    fresh.preload_contacts([NodeInfo(wire.nodes[a].node_id, a) for a in addrs], wire.now)
    assert fresh.bootstrapped and fresh.routing_size() == len(addrs)


def max_running_refreshes(events: list[ev.Event]) -> tuple[int, int]:
    """(most refresh lookups running at once, how many started)."""
    running = peak = started = 0
    refreshes: set[int] = set()
    for e in events:
        if isinstance(e, ev.LookupStarted) and e.kind == LookupKind.REFRESH:
            refreshes.add(e.lookup_id)
            running += 1
            started += 1
            peak = max(peak, running)
        elif isinstance(e, ev.LookupFinished) and e.lookup_id in refreshes:
            running -= 1
    return peak, started


@pytest.mark.parametrize("cap", [1, 3])
def test_refresh_lookups_at_once_are_a_setting(cap: int) -> None:
    wire = Wire()
    # 60 nodes: enough buckets that more than three are stale at once (each refresh lookup's
    # neighbourhood probe also refreshes the buckets next to its target's).
    addrs = build_network(wire, 60)
    me = ("127.0.50.1", 6881)
    node = wire.add(me, 77, replace(LOCAL, max_refresh_lookups=cap))
    node.preload_contacts([NodeInfo(wire.nodes[a].node_id, a) for a in addrs], wire.now)
    wire.run(wire.now + LOCAL.bucket_refresh_interval + 30)
    peak, started = max_running_refreshes(wire.events[me])
    assert started > cap and peak == cap  # many stale buckets, never more than the cap
