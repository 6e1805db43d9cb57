"""RoutingPolicy: the table's rules come from its policy; a subclass changes one rule (larger
buckets far from our id, another eviction order) and the table follows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dhtviewer.dht.node_entry import NodeEntry
from dhtviewer.dht.node_id import ID_BITS, id_to_int, int_to_id
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
