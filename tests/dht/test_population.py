"""Chao2: the estimate of how many info-hashes exist, checked against simulated crawls."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht.population import chao2


def test_no_singletons_means_nothing_unseen() -> None:
    e = chao2(100, 0, 40, 50)
    assert e.estimate == e.low == e.high == 100


def test_formula() -> None:
    e = chao2(observed=150, q1=60, q2=30, nodes=40)
    assert e.estimate == pytest.approx(150 + 39 / 40 * 60 * 59 / (2 * 31))
    assert e.low < e.estimate < e.high
    assert e.reliable


def test_too_few_nodes_is_flagged() -> None:
    assert not chao2(10, 10, 0, 5).reliable
    assert chao2(3, 3, 0, 1).estimate == 3  # one unit cannot tell


def test_inconsistent_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        chao2(5, 4, 3, 10)


def test_simulated_crawl_estimate_is_close() -> None:
    """N info-hashes each stored on 8 of 2,000 nodes; the crawl samples 300 nodes, each
    returning up to 20 of its store (a third of the info-hashes are never seen). The estimate
    must beat the observed count and land within 20 % of the truth."""
    rng = random.Random(7)
    n_nodes, truth = 2000, 5000
    stores: list[list[int]] = [[] for _ in range(n_nodes)]
    for h in range(truth):
        for node in rng.sample(range(n_nodes), 8):
            stores[node].append(h)
    incidence: dict[int, int] = {}
    crawled = rng.sample(range(n_nodes), 300)
    for node in crawled:
        store = stores[node]
        for h in rng.sample(store, min(20, len(store))):
            incidence[h] = incidence.get(h, 0) + 1
    counts = list(incidence.values())
    e = chao2(len(counts), counts.count(1), counts.count(2), len(crawled))
    assert e.observed < e.estimate
    assert abs(e.estimate - truth) / truth < 0.2
    assert e.low <= truth * 1.05
