"""Merging BEP 33 answers: unions, not sums; legacy answers; saturation."""

from __future__ import annotations

import pytest

from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.scrape import ScrapeMerge


def ips(start: int, count: int) -> list[str]:
    return [f"10.1.{i // 256}.{i % 256}" for i in range(start, start + count)]


def test_overlapping_nodes_count_each_peer_once() -> None:
    m = ScrapeMerge()
    # Three nodes each hold most of a swarm of 40 seeds and 200 downloaders.
    for skip in range(3):
        seeds = [ip for i, ip in enumerate(ips(0, 40)) if i % 3 != skip]
        peers = [ip for i, ip in enumerate(ips(1000, 200)) if i % 3 != skip]
        assert m.add(BloomFilter.of(seeds).to_bytes(), BloomFilter.of(peers).to_bytes())
    est = m.result()
    assert est.nodes == 3 and est.legacy == 0 and not est.saturated
    assert est.seeds == pytest.approx(40, rel=0.1)
    assert est.downloaders == pytest.approx(200, rel=0.1)
    assert est.total == est.seeds + est.downloaders


def test_legacy_values_count_as_downloaders_unless_seeds() -> None:
    m = ScrapeMerge()
    m.add(BloomFilter.of(ips(0, 10)).to_bytes(), BloomFilter().to_bytes())
    legacy = [(ip, 6881) for ip in ips(5, 10)]  # 5 known seeds, 5 new peers
    assert m.add(None, None, legacy)
    assert not m.add(None, None, [])
    est = m.result()
    assert est.legacy == 1 and est.nodes == 2
    assert round(est.seeds) == 10 and round(est.downloaders) == 5


def test_saturation_is_flagged() -> None:
    m = ScrapeMerge()
    m.add(b"\xff" * 256, None)
    assert m.result().saturated
