"""NodeIndex: derived routing tables (bucket-shaped, whole neighbourhood, stable picks), the
closest contacts a node answers with, the true closest nodes, BEP 42 ids, address lookup."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dhtviewer.dht.node_id import _bep42_crc
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.addresses import AddressPlan, ip_text

N = 5000


def build(n: int = N, seed: int = 3, ro: float = 0.0, dead: float = 0.0) -> ix.NodeIndex:
    gen = np.random.default_rng(seed)
    plan = AddressPlan.for_nodes(n)
    ips = plan.draw(n, gen)
    ids = ix.random_ids(ips, 0.1, gen)
    flags = ix.flag_shares(n, [(ix.READ_ONLY, ro), (ix.DEAD, dead)], gen)
    clients = ix.assign_clients(n, [1.0], gen)
    ports = np.full(n, 7000, dtype=np.uint16)
    return ix.NodeIndex(ids, ips, ports, flags, clients, plan)


@pytest.fixture(scope="module")
def index() -> ix.NodeIndex:
    return build(ro=0.05, dead=0.2)


def test_ids_are_sorted_and_records_hold_id_address_port(index: ix.NodeIndex) -> None:
    assert index.keys == sorted(index.keys)
    pos = 1234
    rec = index.record(pos)
    assert rec[:20] == index.node_id(pos) and int.from_bytes(rec[:20], "big") == index.keys[pos]
    assert int.from_bytes(rec[20:24], "big") == index.ip(pos)
    assert int.from_bytes(rec[24:26], "big") == 7000
    assert index.at_address(index.ip(pos), 7000) == pos
    assert index.at_address(index.ip(pos), 7001) == -1
    assert index.position_of(index.node_id(pos)) == pos


def test_bep42_prefixes_match_the_core_crc() -> None:
    rng = random.Random(5)
    ips = [(127 << 24) | rng.getrandbits(24) for _ in range(200)]
    rands = [rng.getrandbits(8) for _ in ips]
    got = ix.bep42_prefixes(np.array(ips, dtype=np.uint32), np.array(rands, dtype=np.uint32))
    assert [int(x) for x in got] == [_bep42_crc(ip_text(ip), r) for ip, r in zip(ips, rands,
                                                                                  strict=True)]


def test_about_ninety_percent_of_ids_follow_bep42(index: ix.NodeIndex) -> None:
    ok = 0
    for pos in range(0, index.n, 5):
        node_id = index.node_id(pos)
        crc = _bep42_crc(ip_text(index.ip(pos)), node_id[19])
        ok += node_id[:2] == (crc >> 16).to_bytes(2, "big") and (node_id[2] & 0xF8) == (
            (crc >> 8) & 0xF8
        )
    assert 0.85 < ok / (index.n / 5) < 0.95


def test_the_table_is_bucket_shaped_with_the_whole_neighbourhood(index: ix.NodeIndex) -> None:
    for pos in (0, 77, 2500, index.n - 1):
        table = index.table(pos)
        x = index.keys[pos]
        for level, bucket in table:
            assert len(bucket) <= ix.FULL_BUCKET
            for j in bucket:
                assert 160 - (x ^ index.keys[j]).bit_length() == level
                assert not index.flags[j] & ix.READ_ONLY  # BEP 43 nodes are in no table
        # A big range gives exactly K picks; the deepest levels are known whole.
        assert len(table[0][1]) == ix.K
        levels = [lvl for lvl, _ in table]
        assert levels == sorted(levels) and levels[0] == 0
        near = sorted(range(index.n), key=lambda j: index.keys[j] ^ x)[1:6]
        known = {j for _, b in table for j in b}
        assert all(j in known or index.flags[j] & ix.READ_ONLY for j in near)
    # Stable: asking again gives the same table.
    assert index.table(77) == index.table(77)


def test_known_closest_is_the_k_closest_of_the_derived_table(index: ix.NodeIndex) -> None:
    rng = random.Random(9)
    for _ in range(200):
        pos = rng.randrange(index.n)
        target = rng.getrandbits(160)
        if rng.random() < 0.5:  # a target near the node, as late in a lookup
            target = index.keys[pos] ^ rng.getrandbits(rng.randrange(1, 150))
        table = [j for _, b in index.table(pos) for j in b]
        expect = sorted(table, key=lambda j: index.keys[j] ^ target)[:8]
        assert index.known_closest(pos, target) == expect
    # Asked for its own id, a node answers with its nearest neighbours.
    pos = 10
    own = index.known_closest(pos, index.keys[pos])
    table = [j for _, b in index.table(pos) for j in b]
    assert own == sorted(table, key=lambda j: index.keys[j] ^ index.keys[pos])[:8]


def test_true_closest_is_brute_force_over_eligible_nodes(index: ix.NodeIndex) -> None:
    rng = random.Random(11)
    for _ in range(50):
        target = rng.getrandbits(160)
        k = rng.choice([1, 8, 20])
        expect = sorted((j for j in range(index.n) if not index.flags[j] & ix.SILENT),
                        key=lambda j: index.keys[j] ^ target)[:k]
        assert index.true_closest(target, k) == expect


def test_following_referrals_from_anywhere_reaches_the_true_closest() -> None:
    # Greedy iterative lookup over derived tables (no dead nodes): the tables are consistent
    # enough that the K closest are found from a random start.
    index = build(20_000, seed=4)
    rng = random.Random(2)
    for _ in range(30):
        target = rng.getrandbits(160)
        start = rng.randrange(index.n)
        seen = {start}
        frontier = [start]
        queried: set[int] = set()
        while frontier:
            frontier.sort(key=lambda j: index.keys[j] ^ target)
            best = sorted(seen, key=lambda j: index.keys[j] ^ target)[:8]
            todo = [j for j in best if j not in queried]
            if not todo:
                break
            for j in todo[:4]:
                queried.add(j)
                for c in index.known_closest(j, target):
                    seen.add(c)
            frontier = todo
        best = sorted(seen, key=lambda j: index.keys[j] ^ target)[:8]
        assert best == index.true_closest(target, 8)


def test_closest_many_is_true_closest_for_every_target(index: ix.NodeIndex) -> None:
    gen = np.random.default_rng(8)
    targets = gen.integers(0, 256, size=(2000, 20), dtype=np.uint8)
    got = index.closest_many(targets, 8, ix.SILENT)
    for row in range(0, 2000, 7):
        t = int.from_bytes(targets[row].tobytes(), "big")
        assert got[row].tolist() == index.true_closest(t, 8, ix.SILENT)
    with pytest.raises(ValueError, match="eligible"):
        index.closest_many(targets[:1], index.n + 1, ix.SILENT)


def test_valid_bep42_ids_cover_half_the_prefixes_and_ids_stay_even() -> None:
    reachable = ix.loopback_bep42_prefixes()
    assert reachable.sum() == len(reachable) // 2
    gen = np.random.default_rng(5)
    plan = AddressPlan.for_nodes(100_000)
    ips = plan.draw(100_000, gen)
    ids = ix.random_ids(ips, 0.5, gen)
    prefix = ((ids[:, 0].astype(np.int64) << 13) | (ids[:, 1].astype(np.int64) << 5)
              | (ids[:, 2].astype(np.int64) >> 3))
    # The valid half in the reachable prefixes, the failing half in the others: even density.
    assert 0.49 < reachable[prefix].mean() < 0.51
    per_top_byte = np.bincount(ids[:, 0], minlength=256)
    assert per_top_byte.min() > 0.8 * 100_000 / 256 and per_top_byte.max() < 1.2 * 100_000 / 256
    valid = sum(1 for i in range(0, 100_000, 50)
                if ids[i, :2].tobytes() == (int(ix.bep42_prefixes(ips[i:i + 1], ids[i:i + 1, 19]
                                                                  .astype(np.uint32))[0]) >> 16)
                .to_bytes(2, "big"))
    assert 0.45 < valid / 2000 < 0.55
