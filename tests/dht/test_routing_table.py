"""Routing table: who gets in, bucket splits, ping-before-evict, node states over (fake) time,
closest(), bucket refresh and snapshots; plus invariants under random operation sequences."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from dhtviewer.dht.compact import encode_nodes, encode_nodes6
from dhtviewer.dht.events import BucketSplit, Event, NodeAdded, NodeRemoved, NodeStateChanged
from dhtviewer.dht.kinds import NodeState
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node_entry import NodeEntry
from dhtviewer.dht.node_id import (
    ID_BITS,
    bep42_id,
    distance,
    id_to_int,
    int_to_id,
    random_id,
    random_id_with_prefix,
    shared_prefix_bits,
)
from dhtviewer.dht.routing_policy import RoutingPolicy
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings

OWN = bytes.fromhex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401")
# The mechanics tests use ids that are not BEP 42 ids; the rules that care are tested on their own.
DEFAULTS = DhtSettings(prefer_bep42=False)
K = DEFAULTS.k
GOOD_PERIOD = DEFAULTS.good_period
BAD_AFTER = DEFAULTS.bad_after_failures
GOOD, QUESTIONABLE, BAD = NodeState.GOOD, NodeState.QUESTIONABLE, NodeState.BAD


def ip_of(i: int) -> str:
    """A distinct public IPv4 address per ``i``, each in its own /24 (1.0.0.0/8 is ordinary
    unicast space)."""
    return f"1.{(i >> 8) & 255}.{i & 255}.{1 + (i >> 16) % 250}"


def addr_of(i: int, port: int = 6881) -> Addr:
    return (ip_of(i), port)


def id_at(prefix: int, low: int = 0) -> bytes:
    """An id sharing exactly ``prefix`` leading bits with OWN; ``low`` picks the bits after."""
    free = ID_BITS - prefix - 1
    return int_to_id(id_to_int(OWN) ^ ((1 << free) | (low & ((1 << free) - 1))))


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def make_table(**changes: object) -> tuple[RoutingTable, Recorder]:
    rec = Recorder()
    s = replace(DEFAULTS, **changes)  # type: ignore[arg-type]
    return RoutingTable(OWN, s, family=4, emit=rec), rec


def fill(table: RoutingTable, prefix: int, n: int, now: float, start: int = 0) -> list[bytes]:
    """``n`` responding nodes in the bucket of ``prefix`` (addresses start..start+n-1)."""
    ids = []
    for i in range(n):
        node_id = id_at(prefix, low=(start + i) * 7919 + 1)
        table.heard_from(node_id, addr_of(start + i), now, responded=True, rtt=0.1)
        ids.append(node_id)
    return ids


def state(table: RoutingTable, node_id: bytes, now: float) -> str:
    e = table.get(node_id)
    assert e is not None
    return e.state(now, table.settings.good_period, table.settings.bad_after_failures)


# --- admission ------------------------------------------------------------------------------------
def test_responding_node_is_inserted_as_good() -> None:
    table, rec = make_table()
    node_id = id_at(3)
    to_ping = table.heard_from(
        node_id, addr_of(1), 10.0, responded=True, rtt=0.2, version=b"LT\x02\x01"
    )
    assert to_ping == []
    assert node_id in table and len(table) == 1
    e = table.get(node_id)
    assert e is not None
    assert e.addr == addr_of(1) and e.rtt == 0.2 and e.version == b"LT\x02\x01"
    assert e.last_response == 10.0 and e.added_at == 10.0
    assert state(table, node_id, 10.0) == GOOD
    assert rec.of(NodeAdded) == [NodeAdded(node_id, addr_of(1), 0, 4, 10.0)]
    assert table.get_by_addr(addr_of(1)) is e
    assert table.get_by_addr(addr_of(1, port=1)) is None
    assert table.counters.nodes_inserted == 1


def test_querying_node_waits_as_a_candidate_until_it_answers_a_ping() -> None:
    table, rec = make_table()
    node_id = id_at(0)
    to_ping = table.heard_from(node_id, addr_of(1), 0.0, responded=False)
    # a query's source may be spoofed: verified first, never handed out before
    assert to_ping == [NodeInfo(node_id, addr_of(1))]
    assert node_id not in table and len(table) == 0 and rec.of(NodeAdded) == []
    assert table.closest(node_id, K, 0.0) == [] and table.export_nodes() == []
    assert table.replacement_candidates(0) == [NodeInfo(node_id, addr_of(1))]
    # querying again within PING_INTERVAL does not ask for another ping
    assert table.heard_from(node_id, addr_of(1), 5.0, responded=False) == []
    # once it answers the ping it is in, good, and is not handed out again
    assert table.heard_from(node_id, addr_of(1), 6.0, responded=True, rtt=0.05) == []
    assert state(table, node_id, 6.0) == GOOD and table.replacement_candidates(0) == []


def test_querying_node_cannot_push_into_a_full_bucket() -> None:
    table, rec = make_table()
    fill(table, 0, K, 0.0)
    # our own bucket is full: an unverified node may not split it, but is verified
    newcomer = id_at(3)
    to_ping = table.heard_from(newcomer, addr_of(100), 1.0, responded=False)
    assert newcomer not in table and not rec.of(BucketSplit)
    assert table.replacement_candidates(0) == [NodeInfo(newcomer, addr_of(100))]
    assert to_ping == [NodeInfo(newcomer, addr_of(100))]
    # once it answers, it splits the bucket and gets in
    assert table.heard_from(newcomer, addr_of(100), 2.0, responded=True) == []
    assert newcomer in table and rec.of(BucketSplit) == [BucketSplit(4, 2, 2.0)]
    assert table.replacement_candidates(0) == table.replacement_candidates(1) == []
    # bucket 0 is full of good nodes and can no longer split: the next one just waits
    other = id_at(0, low=999_999)
    assert table.heard_from(other, addr_of(101), 3.0, responded=False) == []
    assert other not in table
    assert table.replacement_candidates(0) == [NodeInfo(other, addr_of(101))]


def test_own_id_is_refused() -> None:
    table, _ = make_table()
    assert table.heard_from(OWN, addr_of(1), 0.0, responded=True) == []
    assert OWN not in table and len(table) == 0
    assert table.counters.refused_own_id == 1


def test_read_only_node_is_refused() -> None:
    table, _ = make_table()
    node_id = id_at(1)
    for responded in (True, False):
        table.heard_from(node_id, addr_of(1), 0.0, responded=responded, read_only=True)
    assert node_id not in table
    assert table.counters.refused_read_only == 2


@pytest.mark.parametrize(
    "addr",
    [("1.2.3.4", 0), ("127.0.0.1", 6881), ("10.0.0.1", 6881), ("192.168.0.9", 6881),
     ("224.0.0.1", 6881), ("0.0.0.0", 6881), ("2001:4860::1", 6881), ("bogus", 6881)],
)
def test_unacceptable_addresses_are_refused(addr: Addr) -> None:
    table, _ = make_table()
    table.heard_from(id_at(2), addr, 0.0, responded=True)
    assert len(table) == 0
    assert table.counters.refused_address == 1


def test_allow_local_accepts_loopback_and_private_but_not_port_0_or_multicast() -> None:
    table, _ = make_table(allow_local=True)
    table.heard_from(id_at(1), ("127.0.0.1", 7000), 0.0, responded=True)
    table.heard_from(id_at(2), ("10.0.0.1", 7000), 0.0, responded=True)
    table.heard_from(id_at(3), ("127.0.0.2", 0), 0.0, responded=True)
    table.heard_from(id_at(4), ("224.0.0.1", 7000), 0.0, responded=True)
    assert id_at(1) in table and id_at(2) in table
    assert id_at(3) not in table and id_at(4) not in table


def test_ipv6_table_takes_ipv6_only() -> None:
    rec = Recorder()
    table = RoutingTable(OWN, DEFAULTS, family=6, emit=rec)
    table.heard_from(id_at(1), ("2001:4860::1", 6881), 0.0, responded=True)
    table.heard_from(id_at(2), ("8.8.8.8", 6881), 0.0, responded=True)
    assert id_at(1) in table and id_at(2) not in table
    assert rec.of(NodeAdded)[0].family == 6  # type: ignore[union-attr]
    assert table.snapshot(0.0).family == 6


def test_bep42_is_recorded_and_enforced_when_asked() -> None:
    rng = random.Random(42)
    ip = "124.31.75.21"
    valid = bep42_id(ip, rng)
    invalid = bytes([valid[0] ^ 0xFF]) + valid[1:]
    loose, _ = make_table()
    loose.heard_from(invalid, (ip, 6881), 0.0, responded=True)
    loose.heard_from(valid, ("21.75.31.124", 6881), 0.0, responded=True)  # valid id, other IP
    e = loose.get(invalid)
    assert e is not None and not e.bep42_ok
    strict, _ = make_table(enforce_bep42=True)
    strict.heard_from(invalid, (ip, 6881), 0.0, responded=True)
    assert invalid not in strict and strict.counters.refused_bep42 == 1
    strict.heard_from(valid, (ip, 6881), 0.0, responded=True)
    e = strict.get(valid)
    assert e is not None and e.bep42_ok
    # local addresses are exempt from BEP 42
    local, _ = make_table(enforce_bep42=True, allow_local=True)
    local.heard_from(invalid, ("10.0.0.1", 6881), 0.0, responded=True)
    assert invalid in local


def test_one_entry_per_ip() -> None:
    table, _ = make_table()
    first, second = id_at(1), id_at(2)
    table.heard_from(first, addr_of(1), 0.0, responded=True)
    # another id from the same IP (any port) is ignored
    table.heard_from(second, addr_of(1), 1.0, responded=True)
    table.heard_from(second, addr_of(1, port=7000), 1.0, responded=False)
    assert second not in table and len(table) == 1
    assert table.counters.id_conflicts == 2
    assert table.replacement_candidates(0) == []  # not even as a candidate


def test_same_node_same_address_is_updated() -> None:
    table, _ = make_table()
    node_id = id_at(1)
    table.heard_from(node_id, addr_of(1), 0.0, responded=True, rtt=0.4)
    table.heard_from(node_id, addr_of(1), 5.0, responded=False, version=b"UT\x01\x02")
    table.heard_from(node_id, addr_of(1), 7.0, responded=True, rtt=0.2)
    e = table.get(node_id)
    assert e is not None and len(table) == 1
    assert e.last_query == 5.0 and e.last_response == 7.0 and e.added_at == 0.0
    assert e.version == b"UT\x01\x02"
    assert e.rtt == pytest.approx(0.4 + (0.2 - 0.4) * 0.25)  # smoothed, not replaced


def test_known_id_from_another_address() -> None:
    table, _ = make_table()
    node_id = id_at(1)
    table.heard_from(node_id, addr_of(1), 0.0, responded=True)
    # a query claiming the id from elsewhere proves nothing
    table.heard_from(node_id, addr_of(2), 1.0, responded=True)
    table.heard_from(node_id, addr_of(1, port=7000), 1.0, responded=False)
    e = table.get(node_id)
    assert e is not None and e.addr == addr_of(1)
    assert table.counters.addr_conflicts == 2
    # an answer from the same IP at a new port is a NAT rebinding: follow it
    table.heard_from(node_id, addr_of(1, port=7000), 2.0, responded=True)
    assert e.addr == addr_of(1, port=7000)
    assert table.get_by_addr(addr_of(1, port=7000)) is e
    assert table.closest(node_id, 1, 2.0) == [NodeInfo(node_id, addr_of(1, port=7000))]


def test_malformed_id_is_refused() -> None:
    table, _ = make_table()
    table.heard_from(b"short", addr_of(1), 0.0, responded=True)
    assert len(table) == 0 and table.counters.refused_bad_id == 1


# --- buckets --------------------------------------------------------------------------------------
def test_only_the_bucket_covering_our_id_splits() -> None:
    table, rec = make_table()
    far = fill(table, 0, K, 0.0)  # all differ from us in the first bit
    assert table.snapshot(0.0).depth == 1
    # a ninth responding node: the only bucket covers our id, so it splits...
    extra = id_at(0, low=123_456_789)
    table.heard_from(extra, addr_of(50), 1.0, responded=True)
    assert rec.of(BucketSplit) == [BucketSplit(4, 2, 1.0)]
    # ... but everybody stays in bucket 0, which no longer covers our id: no further split
    snap = table.snapshot(1.0)
    assert snap.depth == 2
    assert {n.id for n in snap.buckets[0].nodes} == set(far)
    assert extra not in table and snap.buckets[0].replacements == 1
    for i in range(5):
        table.heard_from(id_at(0, low=i + 10**9), addr_of(60 + i), 2.0, responded=True)
    assert table.snapshot(2.0).depth == 2
    # nodes near us go to the last bucket and split it again when it overflows
    near = fill(table, 1, K + 1, 3.0, start=100)
    snap = table.snapshot(3.0)
    assert snap.depth == 3
    assert {n.id for n in snap.buckets[1].nodes} == set(near[:K])
    assert all(len(b.nodes) <= K for b in snap.buckets)


def test_split_moves_nodes_to_the_new_last_bucket() -> None:
    table, _ = make_table()
    ids = [id_at(p, low=i) for i, p in enumerate((0, 0, 1, 2, 3, 5, 8, 20))]
    for i, node_id in enumerate(ids):
        table.heard_from(node_id, addr_of(i), 0.0, responded=True)
    table.heard_from(id_at(30), addr_of(99), 0.0, responded=True)  # overflow: splits
    snap = table.snapshot(0.0)
    last = snap.depth - 1
    for b in snap.buckets:
        for n in b.nodes:
            bits = shared_prefix_bits(OWN, n.id)
            assert bits == b.index or (b.index == last and bits >= last)
            assert n.bucket == b.index == table.bucket_index(n.id)
    assert len(table) == 9


def test_k_caps_every_bucket() -> None:
    table, _ = make_table(k=4)
    rng = random.Random(7)
    for i in range(400):
        prefix = min(int(rng.expovariate(0.3)), 40)
        table.heard_from(random_id_with_prefix(rng, OWN, prefix), addr_of(i), 0.0, responded=True)
    snap = table.snapshot(0.0)
    assert all(len(b.nodes) <= 4 for b in snap.buckets)
    assert snap.size == len(table) > 4 * 5


def test_replacement_cache_keeps_the_most_recent_and_is_bounded() -> None:
    table, _ = make_table(replacement_cache_size=3)
    fill(table, 0, K, 0.0)
    table.heard_from(id_at(5), addr_of(500), 0.0, responded=True)  # split; bucket 0 is final
    newcomers = [id_at(0, low=10**6 + i) for i in range(10)]
    for i, node_id in enumerate(newcomers):
        table.heard_from(node_id, addr_of(200 + i), float(i), responded=True)
    assert table.replacement_candidates(0) == [
        NodeInfo(newcomers[i], addr_of(200 + i)) for i in (9, 8, 7)
    ]
    assert table.snapshot(10.0).buckets[0].replacements == 3
    # hearing from a cached candidate again makes it the most recent
    table.heard_from(newcomers[7], addr_of(207), 11.0, responded=True)
    assert table.replacement_candidates(0)[0].id == newcomers[7]
    # one candidate per IP: a new id that answered from a candidate's IP takes its place...
    other = id_at(0, low=5 * 10**6)
    table.heard_from(other, addr_of(208), 12.0, responded=True)
    cands = table.replacement_candidates(0)
    assert [c.id for c in cands] == [other, newcomers[7], newcomers[9]]
    # ...but a mere query from a new id cannot push out a candidate that answered
    table.heard_from(id_at(0, low=6 * 10**6), addr_of(208), 13.0, responded=False)
    assert [c.id for c in table.replacement_candidates(0)] == [c.id for c in cands]


def test_ping_before_evict() -> None:
    table, rec = make_table()
    old = fill(table, 0, K, 0.0)
    table.heard_from(id_at(5), addr_of(500), 0.0, responded=True)  # split off our own bucket
    # old[0] was heard from most recently, the others went silent in insertion order
    table.heard_from(old[0], addr_of(0), 10.0, responded=True)
    t = GOOD_PERIOD + 20.0  # everyone in bucket 0 is questionable now
    newcomer = id_at(0, low=77)
    to_ping = table.heard_from(newcomer, addr_of(300), t, responded=True, rtt=0.1)
    assert newcomer not in table
    assert [n.id for n in to_ping] == [*old[1:], old[0]]  # oldest first
    # a flood of newcomers does not cause a ping storm
    assert table.heard_from(id_at(0, low=78), addr_of(301), t + 1, responded=True) == []
    assert table.heard_from(newcomer, addr_of(300), t + 5, responded=True) == []
    # victims that answer become good again and stay
    for node_id in old[2:]:
        table.heard_from(node_id, table.get(node_id).addr, t + 2, responded=True)  # type: ignore[union-attr]
    # old[1] never answers: after BAD_AFTER failures it is replaced by the freshest candidate
    rec.events.clear()
    for i in range(BAD_AFTER):
        assert old[1] in table
        table.failed(old[1], addr_of(1), t + 3 + i)
    assert old[1] not in table and newcomer in table
    assert state(table, newcomer, t + 3) == GOOD
    removed = rec.of(NodeRemoved)
    assert removed == [NodeRemoved(old[1], addr_of(1), 0, 4, "bad", t + 2 + BAD_AFTER)]
    assert rec.of(NodeAdded) == [NodeAdded(newcomer, addr_of(300), 0, 4, t + 2 + BAD_AFTER)]
    changes = rec.of(NodeStateChanged)
    at = t + 2 + BAD_AFTER
    assert changes[-1] == NodeStateChanged(old[1], addr_of(1), QUESTIONABLE, BAD, 4, at)
    assert table.counters.nodes_replaced == 1 and table.counters.nodes_evicted == 1
    # ten seconds later the still-questionable node may be pinged again
    later = table.heard_from(id_at(0, low=79), addr_of(302), t + 30, responded=True)
    assert [n.id for n in later] == [old[0]]


def test_a_full_bucket_is_searched_for_questionable_nodes_at_most_once_a_second() -> None:
    table, _ = make_table()
    old = fill(table, 0, K, 0.0)
    table.heard_from(id_at(5), addr_of(500), 0.0, responded=True)  # split off our own bucket
    for i, node_id in enumerate(old[1:], start=1):  # all but old[0] stay good a while longer
        table.heard_from(node_id, addr_of(i), 50.0, responded=True)
    t = GOOD_PERIOD + 49.8  # only old[0] is questionable now
    first = table.heard_from(id_at(0, low=77), addr_of(300), t, responded=True)
    assert old[0] in [n.id for n in first]
    t2 = t + 0.5  # the others turned questionable in between
    assert [n.id for n in table.heard_from(id_at(0, low=78), addr_of(301), t2, responded=True)
            if n.id in old] == []  # searched 0.5 s ago: not again (a newcomer flood costs O(1))
    later = table.heard_from(id_at(0, low=79), addr_of(302), t + 1.0, responded=True)
    assert {n.id for n in later} >= set(old[1:])  # a second on, the search finds them
    # a querier that could not get a place anyway is not even pinged
    assert table.heard_from(id_at(0, low=80), addr_of(303), t + 2.0, responded=False) == []


def test_bad_node_without_candidate_stays_until_a_responding_newcomer_replaces_it() -> None:
    table, rec = make_table()
    old = fill(table, 0, K, 0.0)
    table.heard_from(id_at(5), addr_of(500), 0.0, responded=True)
    assert table.replacement_candidates(0) == []  # the split sent nobody to the cache
    newcomer, a = id_at(0, low=10**7), addr_of(300)
    table.failed(None, addr_of(3), 1.0)  # failures are matched by address
    table.failed(old[3], addr_of(3), 2.0)
    table.failed(old[3], addr_of(3), 3.0)
    assert state(table, old[3], 3.0) == BAD and old[3] in table
    # bad nodes are only handed out when nothing else is left
    assert old[3] not in [n.id for n in table.closest(old[3], K - 1, 3.0)]
    assert table.closest(old[3], K + 1, 3.0)[-1].id == old[3]
    # an unverified newcomer cannot replace it, but is handed out to be verified
    assert table.heard_from(newcomer, a, 4.0, responded=False) == [NodeInfo(newcomer, a)]
    assert newcomer not in table and old[3] in table
    # ... and replaces it once it answers
    rec.events.clear()
    assert table.heard_from(newcomer, a, 5.0, responded=True) == []
    assert newcomer in table and old[3] not in table
    assert rec.of(NodeRemoved) == [NodeRemoved(old[3], addr_of(3), 0, 4, "replaced", 5.0)]


def test_failed_candidate_is_dropped_from_the_cache() -> None:
    table, _ = make_table()
    fill(table, 0, K, 0.0)
    table.heard_from(id_at(5), addr_of(500), 0.0, responded=True)
    cand = id_at(0, low=42)
    table.heard_from(cand, addr_of(300), 1.0, responded=False)
    assert table.replacement_candidates(0) == [NodeInfo(cand, addr_of(300))]
    table.failed(cand, addr_of(300), 2.0)
    assert table.replacement_candidates(0) == []


def test_remove() -> None:
    table, rec = make_table()
    node_id = id_at(2)
    table.heard_from(node_id, addr_of(1), 0.0, responded=True)
    assert table.remove(node_id, 1.0, reason="id-changed")
    assert not table.remove(node_id, 1.0)
    assert node_id not in table and table.get_by_addr(addr_of(1)) is None
    assert rec.of(NodeRemoved) == [NodeRemoved(node_id, addr_of(1), 0, 4, "id-changed", 1.0)]
    # the IP is free again
    table.heard_from(id_at(3), addr_of(1), 2.0, responded=True)
    assert id_at(3) in table


# --- node states ----------------------------------------------------------------------------------
def test_good_turns_questionable_after_the_good_period() -> None:
    table, _ = make_table()
    node_id = id_at(1)
    table.heard_from(node_id, addr_of(1), 100.0, responded=True)
    assert state(table, node_id, 100.0 + GOOD_PERIOD - 1) == GOOD
    assert state(table, node_id, 100.0 + GOOD_PERIOD) == QUESTIONABLE
    assert table.snapshot(100.0 + GOOD_PERIOD).buckets[0].nodes[0].state == QUESTIONABLE
    # a node that has answered once stays good while it keeps querying us
    table.heard_from(node_id, addr_of(1), 2000.0, responded=False)
    assert state(table, node_id, 2000.0 + GOOD_PERIOD - 1) == GOOD
    assert state(table, node_id, 2000.0 + GOOD_PERIOD) == QUESTIONABLE


def test_queries_alone_never_let_a_node_in() -> None:
    table, _ = make_table()
    node_id = id_at(1)
    for t in (0.0, 10.0, 20.0, 400.0):
        table.heard_from(node_id, addr_of(1), t, responded=False)
        assert node_id not in table
    # and a live node's queries keep it good only after it has answered once
    ids = fill(table, 2, 1, 0.0)
    table.heard_from(ids[0], addr_of(0), GOOD_PERIOD + 10.0, responded=False)
    assert state(table, ids[0], GOOD_PERIOD + 10.0) == GOOD


def test_bad_after_failures_and_an_answer_heals() -> None:
    table, rec = make_table()
    node_id = id_at(1)
    table.heard_from(node_id, addr_of(1), 0.0, responded=True)
    for i in range(BAD_AFTER - 1):
        table.failed(node_id, addr_of(1), 1.0 + i)
        assert state(table, node_id, 1.0 + i) == GOOD
    table.failed(node_id, addr_of(1), 10.0)
    assert state(table, node_id, 10.0) == BAD
    assert table.get(node_id).failures == BAD_AFTER  # type: ignore[union-attr]
    table.heard_from(node_id, addr_of(1), 11.0, responded=True)
    assert state(table, node_id, 11.0) == GOOD
    assert table.get(node_id).failures == 0  # type: ignore[union-attr]
    assert [(c.old, c.new, c.at) for c in rec.of(NodeStateChanged)] == [  # type: ignore[union-attr]
        (GOOD, BAD, 10.0), (BAD, GOOD, 11.0)
    ]


def test_state_rule_directly() -> None:
    e = NodeEntry(id_at(1), addr_of(1), 0.0)
    assert e.state(0.0, 900.0, 3) == QUESTIONABLE
    e.last_query = 5.0
    assert e.state(6.0, 900.0, 3) == QUESTIONABLE  # never answered
    e.last_response = 1.0
    assert e.state(6.0, 900.0, 3) == GOOD
    assert e.state(904.0, 900.0, 3) == GOOD  # queried us within the period after answering
    assert e.state(905.0, 900.0, 3) == QUESTIONABLE
    e.failures = 3
    assert e.state(6.0, 900.0, 3) == BAD


# --- closest --------------------------------------------------------------------------------------
def brute_closest(table: RoutingTable, target: bytes, count: int) -> list[NodeInfo]:
    entries = sorted(table, key=lambda e: distance(e.id, target))
    ok = [e for e in entries if not table.policy.is_bad(e)]
    bad = [e for e in entries if table.policy.is_bad(e)]
    return [NodeInfo(e.id, e.addr) for e in (ok + bad)[:count]]


node_specs = st.lists(
    st.tuples(st.integers(0, 45), st.integers(0, 2**160 - 1), st.integers(0, 4)),
    min_size=0,
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(
    specs=node_specs,
    target_prefix=st.integers(0, 50),
    target_low=st.integers(0, 2**160 - 1),
    count=st.integers(0, 40),
)
def test_closest_matches_brute_force(
    specs: list[tuple[int, int, int]], target_prefix: int, target_low: int, count: int
) -> None:
    table, _ = make_table()
    for i, (prefix, low, failures) in enumerate(specs):
        node_id = id_at(prefix, low)
        table.heard_from(node_id, addr_of(i), 0.0, responded=True)
        for _ in range(failures):
            table.failed(node_id, addr_of(i), 1.0)
    for target in (id_at(target_prefix, target_low), OWN, int_to_id(target_low)):
        assert table.closest(target, count, 2.0) == brute_closest(table, target, count)


def test_closest_on_an_empty_table() -> None:
    table, _ = make_table()
    assert table.closest(random_id(random.Random(1)), 8, 0.0) == []


# --- refresh --------------------------------------------------------------------------------------
def test_stale_buckets_and_refresh_targets() -> None:
    table, _ = make_table()
    interval = DEFAULTS.bucket_refresh_interval
    assert table.stale_buckets(10 * interval) == []  # empty table: nothing to refresh from
    assert table.next_refresh_deadline() is None
    for prefix in range(6):
        fill(table, prefix, K, 0.0, start=prefix * 100)
    depth = table.snapshot(0.0).depth
    assert depth >= 6
    assert table.stale_buckets(interval - 1) == []
    assert table.next_refresh_deadline() == interval
    assert table.stale_buckets(interval) == list(range(depth))
    # a node answering touches its bucket; a query does not
    table.heard_from(id_at(2, low=2 * 100 * 7919 + 1), addr_of(200), 100.0, responded=True)
    table.heard_from(id_at(3, low=3 * 100 * 7919 + 1), addr_of(300), 100.0, responded=False)
    table.touch_bucket(4, 200.0)
    assert table.stale_buckets(interval) == [i for i in range(depth) if i not in (2, 4)]
    assert table.next_refresh_deadline() == interval
    rng = random.Random(5)
    for index in range(depth):
        for _ in range(20):
            target = table.refresh_target(index, rng)
            assert table.bucket_index(target) == index
            assert target != OWN
    with pytest.raises(IndexError):
        table.refresh_target(depth, rng)


# --- our id changes (BEP 42) ---------------------------------------------------------------------
NEW_ID = int_to_id(id_to_int(OWN) ^ (1 << (ID_BITS - 1)) ^ 0x5A5A)
"""Differs from OWN in the first bit: every bucket is laid out anew."""


def test_update_node_id_rebuilds_around_the_new_id_keeping_what_we_knew() -> None:
    table, rec = make_table()
    for prefix in range(4):
        fill(table, prefix, 3 if prefix == 0 else 2, 0.0, start=prefix * 100)
    waiting = id_at(6, low=77)
    table.heard_from(waiting, addr_of(900), 5.0, responded=False)  # a querier, never verified
    victim = next(iter(table))
    table.failed(victim.id, victim.addr, 6.0)
    before = {e.id: (e.addr, e.added_at, e.last_response, e.failures) for e in table}
    counts = table.counters.as_dict()
    rec.events.clear()
    to_ping = table.update_node_id(NEW_ID, 50.0)
    assert table.own_id == NEW_ID and to_ping == []
    snap = table.snapshot(50.0)
    assert snap.own_id == NEW_ID
    for b in snap.buckets:
        for n in b.nodes:
            assert table.bucket_index(n.id) == b.index
    # Nine answered nodes fit (no bucket overflows), with their history intact.
    assert {e.id: (e.addr, e.added_at, e.last_response, e.failures) for e in table} == before
    # The unverified querier still waits (never promoted for lack of an answer).
    assert waiting not in table
    assert any(c.id == waiting for i in range(len(snap.buckets))
               for c in table.replacement_candidates(i))
    # The same contacts, re-sorted: nothing counted again, no per-node events.
    assert table.counters.as_dict() == counts and rec.events == []


def test_update_node_id_applies_the_subnet_rule_where_nodes_now_meet() -> None:
    """Two nodes of one /24 sat in different buckets; around the new id they share one, and
    only the first (live nodes first, in bucket order) may stay."""
    table, _ = make_table()
    fill(table, 0, K, 0.0)  # full buckets, so that ours splits and the two below sit apart
    fill(table, 5, K, 0.0, start=100)
    far, near = id_at(1, low=5), id_at(9, low=5)
    table.heard_from(far, ("1.2.3.4", 6881), 0.0, responded=True)
    table.heard_from(near, ("1.2.3.5", 6881), 0.0, responded=True)
    assert far in table and near in table  # different buckets: both allowed
    table.update_node_id(NEW_ID, 10.0)
    assert table.bucket_index(far) == table.bucket_index(near)
    assert far in table and near not in table
    assert not any(c.id == near for i in range(table.snapshot(10.0).depth)
                   for c in table.replacement_candidates(i))
    for i in range(table.snapshot(10.0).depth):
        keys = [table.policy.subnet(n.addr[0]) for n in table if table.bucket_index(n.id) == i]
        keys += [table.policy.subnet(c.addr[0]) for c in table.replacement_candidates(i)]
        assert len(keys) == len(set(keys))


def test_update_node_id_hands_back_the_pings_its_full_buckets_need() -> None:
    table, _ = make_table()
    for prefix in range(5):
        fill(table, prefix, 3, 0.0, start=prefix * 100)
    later = GOOD_PERIOD + 10.0  # everyone questionable by now
    to_ping = table.update_node_id(NEW_ID, later)
    # 15 answered nodes around an id where the early buckets overflow: the overflow waits in
    # the replacement cache, and the questionable nodes standing in its way are to be pinged.
    assert len(table) < 15 and to_ping
    live = {e.id for e in table}
    assert all(n.id in live for n in to_ping)


def test_update_node_id_refuses_a_bad_id() -> None:
    table, _ = make_table()
    with pytest.raises(ValueError, match="20 bytes"):
        table.update_node_id(b"short", 0.0)


def test_an_error_reply_heals_a_failing_node_but_proves_no_candidate() -> None:
    table, rec = make_table()
    (node_id,) = fill(table, 0, 1, 0.0)
    for t in range(BAD_AFTER):
        table.failed(node_id, addr_of(0), 10.0 + t)
    assert state(table, node_id, 20.0) == BAD
    table.answered_with_error(addr_of(0), 30.0, b"XX\x00\x01")
    e = table.get(node_id)
    assert e is not None and e.failures == 0 and e.last_seen == 30.0
    assert state(table, node_id, 30.0) == GOOD
    assert rec.of(NodeStateChanged)[-1].new == GOOD
    cand = id_at(3, low=9)
    table.heard_from(cand, addr_of(55), 31.0, responded=False)
    table.answered_with_error(addr_of(55), 32.0)  # an error carries no id: still unproven
    assert cand not in table
    table.answered_with_error(addr_of(77), 33.0)  # nobody there: nothing happens


# --- snapshots and export -------------------------------------------------------------------------
def test_snapshot_counts() -> None:
    table, _ = make_table()
    ids = fill(table, 0, 6, 0.0)
    table.heard_from(id_at(4), addr_of(40), 0.0, responded=True, version=b"LT\x02\x01")
    table.heard_from(id_at(4, 1), addr_of(41), 0.0, responded=False)  # a candidate
    for _ in range(BAD_AFTER):
        table.failed(ids[0], addr_of(0), 1.0)
    table.heard_from(ids[1], addr_of(1), 500.0, responded=True, rtt=0.3)
    now = GOOD_PERIOD + 100.0  # only ids[1] is still good
    snap = table.snapshot(now)
    assert snap.own_id == OWN and snap.family == 4 and snap.k == K and snap.taken_at == now
    assert snap.depth == 1 and snap.size == 7 == len(table)
    b = snap.buckets[0]
    assert (b.good, b.questionable, b.bad) == (1, 5, 1) and b.replacements == 1
    assert snap.good_count == 1
    by_id = {n.id: n for n in b.nodes}
    n1 = by_id[ids[1]]
    assert n1.state == GOOD and n1.last_seen == 500.0 and n1.bucket == 0 and n1.failures == 0
    assert n1.rtt == pytest.approx(0.1 + (0.3 - 0.1) * 0.25)
    assert by_id[ids[0]].state == BAD and by_id[ids[0]].failures == BAD_AFTER
    assert by_id[id_at(4)].version == b"LT\x02\x01" and by_id[id_at(4)].rtt is None
    # a snapshot is a value: later changes do not leak into it
    table.remove(ids[2], now)
    assert ids[2] in by_id and table.snapshot(now).size == 6


def test_export_nodes_lists_verified_nodes_most_recent_first_bad_last() -> None:
    table, _ = make_table()
    unverified = id_at(7)
    table.heard_from(unverified, addr_of(70), 50.0, responded=False)
    old, recent, broken = fill(table, 0, 3, 0.0)
    table.heard_from(recent, addr_of(1), 10.0, responded=True)
    for _ in range(BAD_AFTER):
        table.failed(broken, addr_of(2), 20.0)
    assert [n.id for n in table.export_nodes()] == [recent, old, broken]  # never unverified


def check_invariants(table: RoutingTable, now: float) -> None:
    s = table.settings
    snap = table.snapshot(now)
    assert 1 <= snap.depth <= ID_BITS
    last = snap.depth - 1
    live_ids: set[bytes] = set()
    live_ips: set[str] = set()
    for index, b in enumerate(snap.buckets):
        assert b.index == index
        assert len(b.nodes) <= s.k
        assert b.replacements <= s.replacement_cache_size
        for n in b.nodes:
            bits = shared_prefix_bits(OWN, n.id)
            assert bits == index or (index == last and bits >= last)
            assert n.id not in live_ids and n.addr[0] not in live_ips
            live_ids.add(n.id)
            live_ips.add(n.addr[0])
            e = table.get(n.id)
            assert e is not None and e.addr == n.addr
            assert table.get_by_addr(n.addr) is e
            assert n.state == e.state(now, s.good_period, s.bad_after_failures)
            assert n.failures == e.failures
            assert e.answered, "a node that never answered us is live"
        keys = [table.policy.subnet(n.addr[0]) for n in b.nodes]
        keys += [table.policy.subnet(c.addr[0]) for c in table.replacement_candidates(index)]
        keys = [k for k in keys if k is not None]
        assert len(keys) == len(set(keys)), f"two nodes of one subnet in bucket {index}"
        cands = table.replacement_candidates(index)
        assert len(cands) == b.replacements
        for c in cands:
            assert table.bucket_index(c.id) == index
            assert c.id not in live_ids and c.addr[0] not in live_ips
            live_ids.add(c.id)  # candidates are unique too
            live_ips.add(c.addr[0])
    assert OWN not in live_ids
    assert len(table) == snap.size == sum(1 for _ in table)
    assert {e.id for e in table} == {n.id for b in snap.buckets for n in b.nodes}


class RoutingMachine(RuleBasedStateMachine):
    """Random heard_from / failed / remove / time advances over a small population, so that
    conflicts (shared IPs, moved ports) and churn (small k and caches) happen often."""

    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed: int) -> None:
        rng = random.Random(seed)
        self.table, _ = make_table(k=3, replacement_cache_size=2, bad_after_failures=2)
        self.now = 0.0
        self.ids = [random_id_with_prefix(rng, OWN, min(int(rng.expovariate(0.4)), 30))
                    for _ in range(40)]
        self.ids.append(OWN)

    @rule(
        who=st.integers(0, 40), ip=st.integers(0, 25), port=st.sampled_from([6881, 6882]),
        responded=st.booleans(), ro=st.sampled_from([False, False, False, True]),
    )
    def hear(self, who: int, ip: int, port: int, responded: bool, ro: bool) -> None:
        to_ping = self.table.heard_from(
            self.ids[who], addr_of(ip, port), self.now, responded=responded, rtt=0.1,
            read_only=ro,
        )
        for n in to_ping:  # only live nodes or candidates are handed out
            cands = self.table.replacement_candidates(self.table.bucket_index(n.id))
            assert self.table.get(n.id) is not None or n in cands

    @rule(who=st.integers(0, 40), ip=st.integers(0, 25), port=st.sampled_from([6881, 6882]),
          known=st.booleans())
    def fail(self, who: int, ip: int, port: int, known: bool) -> None:
        self.table.failed(self.ids[who] if known else None, addr_of(ip, port), self.now)

    @precondition(lambda self: len(self.table) > 0)
    @rule(data=st.data())
    def fail_live(self, data: st.DataObject) -> None:
        e = data.draw(st.sampled_from(sorted(self.table, key=lambda e: e.id)))
        self.table.failed(e.id, e.addr, self.now)

    @rule(who=st.integers(0, 40))
    def remove(self, who: int) -> None:
        self.table.remove(self.ids[who], self.now)

    @rule(dt=st.sampled_from([0.5, 11.0, 300.0, GOOD_PERIOD]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def consistent(self) -> None:
        check_invariants(self.table, self.now)

    @invariant()
    def closest_is_exact(self) -> None:
        for target in (OWN, self.ids[0]):
            expected = brute_closest(self.table, target, 5)
            assert self.table.closest(target, 5, self.now) == expected
            # The records packed when nodes entered or moved are never stale.
            assert self.table.closest_packed(target, 5, self.now) == (
                expected, encode_nodes(expected)
            )


TestRoutingMachine = RoutingMachine.TestCase
TestRoutingMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@dataclass(frozen=True)
class _OneStrikePolicy(RoutingPolicy):
    """A policy with its own bad-node rule: the table must ask it (its fast paths inline only
    the default rule)."""

    def is_bad(self, entry: NodeEntry) -> bool:
        return entry.failures >= 1 and entry.last_response is not None


class CustomPolicyMachine(RoutingMachine):
    """The same random operations on a table whose policy judges bad nodes its own way:
    closest() must still equal the brute-force answer under that policy's rule."""

    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed: int) -> None:
        rng = random.Random(seed)
        s = replace(DEFAULTS, k=3, replacement_cache_size=2, bad_after_failures=2)
        policy = _OneStrikePolicy.from_settings(s)
        self.table = RoutingTable(OWN, s, family=4, policy=policy)
        self.now = 0.0
        self.ids = [random_id_with_prefix(rng, OWN, min(int(rng.expovariate(0.4)), 30))
                    for _ in range(40)]
        self.ids.append(OWN)


TestCustomPolicyMachine = CustomPolicyMachine.TestCase
TestCustomPolicyMachine.settings = settings(
    max_examples=30, stateful_step_count=40, deadline=None
)


def test_invariants_under_a_long_random_sequence() -> None:
    """Many more steps than the state machine takes, over a larger population (splits deep)."""
    rng = random.Random(2024)
    table, rec = make_table(k=4, replacement_cache_size=3)
    ids = [random_id_with_prefix(rng, OWN, min(int(rng.expovariate(0.25)), 60)) for _ in range(300)]
    now = 0.0
    for step in range(20000):
        who = rng.randrange(len(ids))
        ip = rng.randrange(260)
        roll = rng.random()
        if roll < 0.6:
            table.heard_from(ids[who], addr_of(ip), now, responded=rng.random() < 0.7, rtt=0.05)
        elif roll < 0.85:
            e = table.get(ids[who])
            table.failed(ids[who], e.addr if e is not None else addr_of(ip), now)
        elif roll < 0.88:
            table.remove(ids[who], now)
        else:
            now += rng.choice([1.0, 15.0, 120.0])
        if step % 250 == 0:
            check_invariants(table, now)
    check_invariants(table, now)
    assert table.snapshot(now).depth > 5 and len(table) > 50
    # the event stream replays to the table's contents (a port change is not an event)
    live: set[bytes] = set()
    for ev in rec.events:
        if isinstance(ev, NodeAdded):
            assert ev.node_id not in live
            live.add(ev.node_id)
        elif isinstance(ev, NodeRemoved):
            live.remove(ev.node_id)
    assert live == {e.id for e in table}


def test_closest_packed_in_an_ipv6_table_follows_a_moved_node() -> None:
    table = RoutingTable(OWN, DEFAULTS, family=6)
    rng = random.Random(4)
    ids = [random_id(rng) for _ in range(12)]
    for i, node_id in enumerate(ids):
        table.heard_from(node_id, (f"2a01:4f8:{i:x}::1", 6881), 0.0, responded=True)
    e = table.get(ids[0])
    assert e is not None
    table.heard_from(ids[0], (e.addr[0], 7000), 1.0, responded=True)  # NAT rebinding: moved
    for target in (ids[0], OWN, random_id(rng)):
        infos, packed = table.closest_packed(target, 8, 2.0)
        assert infos == table.closest(target, 8, 2.0)
        assert packed == encode_nodes6(infos)
    assert (e.addr[0], 7000) in [n.addr for n in table.closest(ids[0], 8, 2.0)]
