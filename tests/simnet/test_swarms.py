"""Swarms: seeded info-hashes (their own random stream), Zipf sizes, the exact storers, what
each node stores (BEP 51), finding an info-hash, and announced peers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.profile import REALISTIC
from dhtviewer.simnet.swarms import STORER_EXCLUDE, plan_sizes, seeded_info_hashes


@pytest.fixture(scope="module")
def net() -> Simnet:
    return Simnet(SimnetConfig(nodes=8000, seed=9, profile=REALISTIC, swarms=3000), [7000], 0.0)


def test_seeded_info_hashes_depend_on_the_seed_alone(net: Simnet) -> None:
    first = seeded_info_hashes(9, 10)
    assert all(first[r].tobytes() == net.swarms.info_hash(r) for r in range(10))
    assert (seeded_info_hashes(9, 3000)[:10] == first).all()
    assert not (seeded_info_hashes(10, 10) == first).all()


def test_sizes_follow_zipf() -> None:
    sizes = plan_sizes(1000, 1.0, 400)
    assert sizes[0] == 400 and sizes[1] == 200 and sizes[3] == 100 and sizes[-1] == 1
    flatter = plan_sizes(1000, 0.5, 400)
    assert flatter[99] == 40 and (flatter >= sizes).all()


def test_storers_are_the_closest_eligible_nodes_and_match_what_nodes_store(net: Simnet) -> None:
    sw = net.swarms
    index = net.index
    rng = random.Random(2)
    held: dict[int, set[int]] = {}
    for rank in range(sw.count):
        for pos in sw.storers(rank):
            held.setdefault(pos, set()).add(rank)
    for rank in rng.sample(range(sw.count), 200):
        target = int.from_bytes(sw.info_hash(rank), "big")
        assert sw.storers(rank) == index.true_closest(target, 8, STORER_EXCLUDE)
    for pos in rng.sample(sorted(held), 100):
        assert set(sw.stored_ranks(pos)) == held[pos]
    assert sw.stored_ranks(next(p for p in range(index.n) if p not in held)) == []
    # About 3000 * 8 / 8000 / 0.78 of the eligible nodes' share each.
    counts = np.array([len(held.get(p, ())) for p in range(index.n)
                       if not index.flags[p] & STORER_EXCLUDE])
    assert 3.5 < counts.mean() < 4.5


def test_rank_of_finds_every_seeded_hash_and_nothing_else(net: Simnet) -> None:
    sw = net.swarms
    assert all(sw.rank_of(sw.info_hash(r)) == r for r in range(0, sw.count, 7))
    assert sw.rank_of(bytes(20)) == -1
    other = bytearray(sw.info_hash(5))
    other[19] ^= 1  # same first 64 bits, another hash
    assert sw.rank_of(bytes(other)) == -1


def test_announced_peers_join_the_seeded_ones_in_the_ground_truth(net: Simnet) -> None:
    sw = net.swarms
    ih = sw.info_hash(0)
    pos = sw.storers(0)[0]
    sw.announce(pos, ih, ("127.0.137.1", 6881), 10.0, None)
    peers = sw.true_peers(ih, 11.0)
    assert peers is not None and peers[-1] == ("127.0.137.1", 6881)
    assert len(peers) == sw.size(0) + 1
    new = random.Random(3).randbytes(20)
    assert sw.true_peers(new, 11.0) is None
    sw.announce(pos, new, ("127.0.137.2", 6882), 10.0, None)
    assert sw.true_peers(new, 11.0) == [("127.0.137.2", 6882)]
    assert new in sw.stored_info_hashes(pos) and sw.holders(new) == [pos]
    sw.expire(10.0 + 3600)  # announces last 30 minutes
    assert sw.true_peers(new, 10.0 + 3600) is None and sw.holders(new) == []


def test_an_announced_peer_is_handed_out_as_often_as_a_seeded_one(net: Simnet) -> None:
    # A storer of the largest swarm (400 peers) hands out windows of 50: a peer announced to
    # it must come up in about one reply in eight, as any seeded peer does.
    sw = net.swarms
    ih = sw.info_hash(0)
    pos = sw.storers(0)[1]
    sw.announce(pos, ih, ("127.0.137.9", 51413), 10.0, None)
    mine = b"6:" + bytes([127, 0, 137, 9]) + (51413).to_bytes(2, "big")
    rng = random.Random(1)
    replies = [sw.values(pos, ih, 11.0, rng) for _ in range(2000)]
    assert all(len(r) == 50 and len(set(r)) == 50 for r in replies)
    share = sum(mine in r for r in replies) / len(replies)
    assert 50 / 401 * 0.8 < share < 50 / 401 * 1.2
