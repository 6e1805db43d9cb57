"""BEP 33 on simulated nodes: seed shares, filters over a storer's peers (seeded and
announced), legacy answers from other clients, and the true counts the control API reports."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    GetPeersQuery,
    Message,
    Query,
    Response,
)
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.control import ControlApi
from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.profile import FRIENDLY
from dhtviewer.simnet.scrape import SEED_SHARE_RANGE, is_seed, seed_share

PORT = 7000
CLIENT = ("127.0.130.1", 5555)
CLIENT_ID = bytes(range(20))
T0 = 1000.0


@pytest.fixture(scope="module")
def net() -> Simnet:
    config = SimnetConfig(nodes=3000, seed=2, profile=replace(FRIENDLY, swarms=30))
    return Simnet(config, [PORT], T0)


def ask(net: Simnet, pos: int, q: Query, src: tuple[str, int] = CLIENT) -> Message:
    net.outbox = []
    net.receive(krpc.encode(q), src, net.index.ip(pos), PORT, T0)
    out, net.outbox = net.outbox, []
    assert len(out) == 1
    return krpc.decode(out[0].data)


def test_seed_shares_vary_between_swarms_and_are_stable() -> None:
    shares = [seed_share(bytes([i]) * 20) for i in range(200)]
    lo, hi = SEED_SHARE_RANGE
    assert all(lo <= s <= hi for s in shares)
    assert max(shares) - min(shares) > 0.5
    assert seed_share(b"x" * 20) == seed_share(b"x" * 20)
    flags = [is_seed(b"y" * 20, i, 0.3) for i in range(2000)]
    assert 0.25 < sum(flags) / len(flags) < 0.35


def test_a_supporting_storer_returns_filters_of_its_swarm(net: Simnet) -> None:
    sw = net.swarms
    info_hash, peers = sw.info_hash(0), sw.peers(0)
    storer = next(p for p in sw.storers(0) if net.scrape.supports(p))
    r = ask(net, storer, GetPeersQuery(b"s1", CLIENT_ID, info_hash=info_hash, scrape=True))
    assert isinstance(r, Response) and r.bf_seeds is not None and r.bf_peers is not None
    share = seed_share(info_hash)
    flags = [is_seed(info_hash, i, share) for i in range(len(peers))]
    seeds = {h for (h, _), s in zip(peers, flags, strict=True) if s}
    downloaders = {h for (h, _), s in zip(peers, flags, strict=True) if not s}
    assert BloomFilter(r.bf_seeds) == BloomFilter.of(seeds)
    assert BloomFilter(r.bf_peers) == BloomFilter.of(downloaders)
    assert net.scrape.truth(info_hash, T0) == (len(seeds), len(downloaders))
    assert 0 < len(seeds) < len(peers)
    # values are still there (a scrape is a get_peers)
    assert r.values and r.token


def test_other_clients_and_non_storers_answer_without_filters(net: Simnet) -> None:
    sw = net.swarms
    info_hash, storers = sw.info_hash(0), sw.storers(0)
    legacy = [p for p in storers if not net.scrape.supports(p)]
    assert legacy, "the fixture's largest swarm has a storer that does not speak BEP 33"
    r = ask(net, legacy[0], GetPeersQuery(b"s2", CLIENT_ID, info_hash=info_hash, scrape=True))
    assert isinstance(r, Response) and r.bf_seeds is None and r.values
    other = next(p for p in range(net.index.n) if p not in storers and net.scrape.supports(p)
                 and not net.index.flags[p] & (ix.SILENT | ix.ERRORING | ix.MALFORMED))
    r = ask(net, other, GetPeersQuery(b"s3", CLIENT_ID, info_hash=info_hash, scrape=True))
    assert isinstance(r, Response) and r.bf_seeds is None and not r.values


def test_announced_seeds_join_the_filters_and_the_truth(net: Simnet) -> None:
    sw = net.swarms
    info_hash = sw.info_hash(1)
    storer = next(p for p in sw.storers(1) if net.scrape.supports(p))
    before = net.scrape.truth(info_hash, T0)
    assert before is not None
    for i, seed in enumerate((True, True, False)):
        src = (f"127.0.131.{i + 1}", 6881)
        r = ask(net, storer, GetPeersQuery(b"s4", CLIENT_ID, info_hash=info_hash), src)
        assert isinstance(r, Response) and r.token
        ok = ask(net, storer, AnnouncePeerQuery(b"a1", CLIENT_ID, info_hash=info_hash,
                                                port=7000, token=r.token, seed=seed), src)
        assert isinstance(ok, Response)
    after = net.scrape.truth(info_hash, T0)
    assert after == (before[0] + 2, before[1] + 1)
    r = ask(net, storer, GetPeersQuery(b"s5", CLIENT_ID, info_hash=info_hash, scrape=True))
    assert isinstance(r, Response) and r.bf_seeds is not None and r.bf_peers is not None
    for i in (1, 2):
        assert f"127.0.131.{i}" in BloomFilter(r.bf_seeds)
    assert "127.0.131.3" in BloomFilter(r.bf_peers)
    # the control API joins what every serving process knows (here: one)
    api = ControlApi(net, None, clock=lambda: T0)
    status, doc = api.handle("GET", f"/swarm?info_hash={info_hash.hex()}")
    assert status == 200, doc
    assert (doc["seeds"], doc["downloaders"]) == after
