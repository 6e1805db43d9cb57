"""LatenessHistogram: percentiles within a bucket's width of the exact ones, and histograms that
add up and subtract (the control API sums processes; a benchmark point is a difference)."""

from __future__ import annotations

import random

import pytest

from dhtviewer.simnet.lateness import LatenessHistogram


def test_percentiles_are_within_a_bucket_of_the_exact_ones() -> None:
    rng = random.Random(4)
    values = [rng.lognormvariate(-7.0, 1.5) for _ in range(20_000)]  # around a millisecond
    h = LatenessHistogram()
    for v in values:
        h.add(v)
    for q in (0.5, 0.9, 0.99, 0.999):
        got = h.percentile(q)
        assert got is not None
        want = sorted(values)[int(q * len(values)) - 1]
        # The bucket's upper edge: never below the true value, at most 12.3% above it.
        assert want <= got * 1.0001 and got <= want * 1.123 + 1e-6
    assert h.over_5ms == sum(1 for v in values if v > 0.005)
    assert h.total == len(values)
    assert h.max is not None and max(values) <= h.max <= max(values) * 1.123


def test_merge_since_and_json_round_trip() -> None:
    a, b = LatenessHistogram(), LatenessHistogram()
    for v in (0.0001, 0.002, 0.007):
        a.add(v)
    snapshot = LatenessHistogram.from_json(a.to_json())
    for v in (0.5, 0.0003):
        a.add(v)
        b.add(v)
    point = a.since(snapshot)  # what was added after the snapshot: b's values
    assert point.counts == b.counts and point.over_5ms == 1 and point.total == 2
    both = snapshot.merge(b)
    assert both.counts == a.counts and both.over_5ms == a.over_5ms == 2
    s = point.summary_ms()
    assert s["n"] == 2 and s["p50"] == pytest.approx(0.3, rel=0.13) and s["max"] > 500


def test_empty_and_extreme_values() -> None:
    h = LatenessHistogram()
    assert h.percentile(0.99) is None and h.max is None
    assert h.summary_ms()["p99"] is None
    h.add(-0.001)  # sent early: counts in the first bucket
    h.add(1e6)  # absurdly late: the last bucket
    assert h.total == 2 and h.counts[0] == 1 and h.counts[-1] == 1
    with pytest.raises(ValueError, match="buckets"):
        LatenessHistogram([1, 2, 3])
