"""RoutingPolicy: the table's rules come from its policy; a subclass changes one rule (larger
buckets far from our id, another eviction order) and the table follows it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import pack_ip
from dhtviewer.dht.messages import NodeInfo, Response
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_entry import NodeEntry
from dhtviewer.dht.node_id import ID_BITS, bep42_id, bep42_valid, id_to_int, int_to_id
from dhtviewer.dht.routing_policy import RoutingPolicy
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings

OWN = bytes.fromhex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401")
S = DhtSettings(prefer_bep42=False)  # made-up ids below: splitting must not depend on BEP 42


def id_at(prefix: int, low: int) -> bytes:
    free = ID_BITS - prefix - 1
    return int_to_id(id_to_int(OWN) ^ ((1 << free) | (low & ((1 << free) - 1))))


def fill_bucket0(table: RoutingTable, n: int) -> None:
    for i in range(n):
        table.heard_from(id_at(0, i * 7919), (f"1.{i // 250}.{i % 250}.1", 6881), 1.0,
                         responded=True)


@dataclass(frozen=True)
class WideFar(RoutingPolicy):
    """libtorrent's extended routing table: 16, 8, 4 and 2 times K in the four far buckets."""

    def bucket_size(self, index: int) -> int:
        return self.k * (16, 8, 4, 2)[index] if index < 4 else self.k


def test_default_policy_is_the_settings() -> None:
    p = RoutingPolicy.from_settings(DhtSettings(k=12, allow_local=True, enforce_bep42=True))
    assert (p.k, p.allow_local, p.enforce_bep42) == (12, True, True)
    assert p.bucket_size(0) == 12 and p.bucket_size(159) == 12
    assert p.accepts_address(("127.0.0.1", 1)) and not p.accepts_address(("0.0.0.0", 1))
    strict = RoutingPolicy.from_settings(S)
    assert not strict.accepts_address(("127.0.0.1", 1))


def test_a_policy_with_larger_far_buckets_is_followed() -> None:
    # Our own bucket has to split off first, or bucket 0 is the last bucket (and splits).
    plain = RoutingTable(OWN, S)
    wide = RoutingTable(OWN, S, policy=WideFar.from_settings(S))
    for t in (plain, wide):
        t.heard_from(id_at(5, 1), ("2.0.0.1", 6881), 0.0, responded=True)
        for i in range(8):
            t.heard_from(id_at(1, i * 31), (f"3.0.{i}.1", 6881), 0.0, responded=True)
        fill_bucket0(t, 200)
    assert len(plain.snapshot(2.0).buckets[0].nodes) == S.k
    snap = wide.snapshot(2.0)
    assert len(snap.buckets[0].nodes) == 16 * S.k and snap.buckets[0].capacity == 16 * S.k


@dataclass(frozen=True)
class NewestFirst(RoutingPolicy):
    """Evict the bad node seen most recently (the default takes the one failing most)."""

    def eviction_victim(self, nodes: Sequence[NodeEntry]) -> NodeEntry | None:
        bad = [e for e in nodes if self.is_bad(e)]
        return max(bad, key=lambda e: e.last_seen) if bad else None


def test_eviction_follows_the_policy() -> None:
    table = RoutingTable(OWN, S, policy=NewestFirst.from_settings(S))
    table.heard_from(id_at(5, 1), ("2.0.0.1", 6881), 0.0, responded=True)
    fill_bucket0(table, S.k)
    ids = [n.id for n in table.snapshot(1.0).buckets[0].nodes]
    for _ in range(S.bad_after_failures + 1):
        table.failed(ids[0], ("1.0.0.1", 6881), 2.0)  # fails most, but seen longest ago
    table.heard_from(ids[3], ("1.0.3.1", 6881), 3.0, responded=True)
    for _ in range(S.bad_after_failures):
        table.failed(ids[3], ("1.0.3.1", 6881), 4.0)
    table.heard_from(id_at(0, 999_999), ("4.0.0.1", 6881), 5.0, responded=True)
    assert ids[3] not in table and ids[0] in table


# --- prefer_bep42 (libtorrent's dht_prefer_verified_node_ids) -------------------------------------
VERIFIED = DhtSettings(prefer_bep42=True)


def entry(node_id: bytes, ip: str, last_seen: float) -> NodeEntry:
    e = NodeEntry(node_id, (ip, 6881), 0.0, last_response=last_seen)
    e.bep42_ok = bep42_valid(node_id, ip)
    return e


def bep42_entry(i: int, last_seen: float = 1.0) -> NodeEntry:
    ip = f"21.{i}.0.1"
    return entry(bep42_id(ip, random.Random(i)), ip, last_seen)


def made_up_entry(i: int, last_seen: float = 1.0) -> NodeEntry:
    ip = f"22.{i}.0.1"
    made_up = bytes([i + 1]) * 20
    assert not bep42_valid(made_up, ip)
    return entry(made_up, ip, last_seen)


def test_only_a_verified_id_may_split_a_mostly_verified_bucket() -> None:
    policy = RoutingPolicy.from_settings(VERIFIED)
    mostly = [bep42_entry(i) for i in range(6)] + [made_up_entry(i) for i in range(2)]
    half = [bep42_entry(i) for i in range(4)] + [made_up_entry(i) for i in range(4)]
    assert policy.may_split(bep42_entry(50), mostly)
    assert not policy.may_split(made_up_entry(50), mostly)  # made-up ids cannot drive splits
    assert not policy.may_split(bep42_entry(50), half)  # under 2/3 verified: no split
    lax = RoutingPolicy.from_settings(S)
    assert lax.may_split(made_up_entry(50), half)


def test_promotion_prefers_a_verified_id_over_a_fresher_made_up_one() -> None:
    policy = RoutingPolicy.from_settings(VERIFIED)
    old_verified, fresh_made_up = bep42_entry(1, last_seen=1.0), made_up_entry(2, last_seen=9.0)
    assert policy.promotion_choice([fresh_made_up, old_verified]) is old_verified
    newer_verified = bep42_entry(3, last_seen=5.0)
    assert policy.promotion_choice([old_verified, newer_verified, fresh_made_up]) is newer_verified
    lax = RoutingPolicy.from_settings(S)
    assert lax.promotion_choice([fresh_made_up, old_verified]) is fresh_made_up


def test_with_prefer_bep42_made_up_ids_wait_while_verified_ones_split_our_bucket() -> None:
    table = RoutingTable(OWN, VERIFIED)
    for i in range(VERIFIED.k):
        e = bep42_entry(i)
        table.heard_from(e.id, e.addr, 1.0, responded=True)
    assert len(table.snapshot(1.0).buckets) == 1 and len(table) == VERIFIED.k
    liar = made_up_entry(40)
    table.heard_from(liar.id, liar.addr, 2.0, responded=True)
    assert liar.id not in table and len(table.snapshot(2.0).buckets) == 1  # waits, no split
    honest = bep42_entry(41)
    table.heard_from(honest.id, honest.addr, 3.0, responded=True)
    assert honest.id in table and len(table.snapshot(3.0).buckets) > 1


@pytest.mark.parametrize("prefer", [True, False])
def test_with_prefer_bep42_a_verified_candidate_replaces_a_bad_node(prefer: bool) -> None:
    # Local addresses are exempt from BEP 42, so any id there counts as verified: that lets
    # the ids (and so the buckets) be chosen here.
    settings = replace(S, prefer_bep42=prefer, allow_local=True)
    table = RoutingTable(OWN, settings)
    live = [id_at(0, i * 7919 + 1) for i in range(settings.k)]
    for i, node_id in enumerate(live):
        table.heard_from(node_id, (f"10.0.{i}.1", 6881), 1.0, responded=True)
    table.heard_from(id_at(5, 3), ("10.5.0.1", 6881), 1.0, responded=True)  # our bucket splits
    assert table.bucket_index(live[0]) == 0 and len(table.snapshot(1.0).buckets) > 1
    honest, liar = id_at(0, 424242), id_at(0, 777777)
    table.heard_from(honest, ("10.9.9.9", 6881), 2.0, responded=True)  # exempt: verified
    table.heard_from(liar, ("22.1.0.1", 6881), 3.0, responded=True)  # public, made-up id
    assert not bep42_valid(liar, "22.1.0.1")
    assert honest not in table and liar not in table  # both wait: bucket 0 is full
    for t in range(settings.bad_after_failures):
        table.failed(live[0], ("10.0.0.1", 6881), 10.0 + t)
    assert live[0] not in table
    # The verified candidate, though heard longer ago, unless BEP 42 is not preferred.
    assert (honest in table, liar in table) == ((True, False) if prefer else (False, True))


# --- refresh interval and the subnet rule of lookups ----------------------------------------------
@dataclass(frozen=True)
class BusyNear(RoutingPolicy):
    """Buckets near our id (index >= 2) are refreshed every minute, the far ones as usual."""

    def refresh_interval(self, index: int) -> float:
        return 60.0 if index >= 2 else self.bucket_refresh_interval


def test_refresh_intervals_follow_the_policy() -> None:
    plain = RoutingTable(OWN, S)
    busy = RoutingTable(OWN, S, policy=BusyNear.from_settings(S))
    for t in (plain, busy):
        for prefix in range(4):
            for i in range(S.k):
                t.heard_from(id_at(prefix, i * 7919 + 1), (f"1.{prefix}.{i}.1", 6881), 0.0,
                             responded=True)
    depth = busy.snapshot(0.0).depth
    assert depth >= 4
    assert plain.stale_buckets(61.0) == [] and plain.next_refresh_deadline() == 900.0
    assert busy.stale_buckets(61.0) == list(range(2, depth))
    assert busy.next_refresh_deadline() == 60.0


@dataclass(frozen=True)
class By16(RoutingPolicy):
    """A coarser subnet rule: one node per /16, even with the settings' rule switched off."""

    def subnet(self, ip: str) -> bytes | None:
        return pack_ip(ip)[:2]


def test_a_policy_subnet_rule_governs_lookups_as_it_governs_the_table() -> None:
    """The node hands the policy's ``subnet`` to its lookups whatever the settings say, so a
    policy's own rule applies to a lookup's candidates as it does to the table."""
    settings = replace(S, restrict_subnets=False, alpha=16)
    node = DhtNode(rng=random.Random(1), secrets=random.Random(2), now=0.0, node_id=OWN,
                   settings=settings, routing_policy=By16.from_settings(settings))
    target = id_at(3, 1)
    seed = ("50.0.0.1", 6881)
    node.start_lookup(target, 0.0, kind="find_node", seeds=[seed])
    ((data, _),) = node.datagrams_to_send()
    # Three contacts in one /16 (distinct /24s), nearest to the target first; four others.
    same16 = [NodeInfo(id_at(3, 5), ("31.7.0.1", 6881)), NodeInfo(id_at(4, 5), ("31.7.1.1", 6881)),
              NodeInfo(id_at(0, 5), ("31.7.2.1", 6881))]
    others = [NodeInfo(id_at(2, 9 + i), (f"4{i}.0.0.1", 6881)) for i in range(4)]
    reply = Response(krpc.decode(data).tid, b"\x99" * 20, nodes=tuple(same16 + others))
    node.receive(krpc.encode(reply), seed, 0.1)
    asked = {dst for _, dst in node.datagrams_to_send()}
    assert asked & {n.addr for n in same16} == {same16[0].addr}  # the nearer one stands for all
    assert {n.addr for n in others} <= asked
