"""Latency models: the log-normal model's median and spread, link symmetry, bounded jitter."""

from __future__ import annotations

import math
import random
import statistics

from dhtviewer.sim.latency import ConstantLatency, LogNormalLatency


def test_lognormal_median_is_80_ms_over_links() -> None:
    model = LogNormalLatency()
    bases = [model.base(a, b) for a in range(200) for b in range(a + 1, 200)]
    assert abs(statistics.median(bases) - 0.080) < 0.004
    # sigma 0.5: the 84th percentile sits near median * e**0.5
    q84 = sorted(bases)[int(0.8413 * len(bases))]
    assert abs(math.log(q84 / 0.080) - 0.5) < 0.05


def test_link_delay_is_fixed_per_unordered_pair() -> None:
    model = LogNormalLatency(jitter=0.0)
    rng = random.Random(1)
    assert model.delay(3, 9, rng) == model.delay(9, 3, rng) == model.base(3, 9)
    assert model.base(3, 9) != model.base(3, 10)
    assert LogNormalLatency(salt=1).base(3, 9) != model.base(3, 9)


def test_jitter_stays_within_its_fraction() -> None:
    model = LogNormalLatency(jitter=0.05)
    rng = random.Random(2)
    base = model.base(4, 7)
    delays = [model.delay(4, 7, rng) for _ in range(1000)]
    assert all(base * 0.95 <= d <= base * 1.05 for d in delays)
    assert len(set(delays)) > 900


def test_sigma_zero_and_constant_models() -> None:
    flat = LogNormalLatency(median=0.05, sigma=0.0, jitter=0.0)
    rng = random.Random(3)
    assert {round(flat.delay(a, a + 1, rng), 12) for a in range(50)} == {0.05}
    assert ConstantLatency(0.02).delay(0, 1, rng) == 0.02
