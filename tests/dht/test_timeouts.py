"""Adaptive short timeout: twice the 90th percentile of recent RTTs, within its bounds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.timeouts import MIN_SAMPLES, RECOMPUTE_EVERY, SAMPLES, AdaptiveTimeout

S = DhtSettings()


def test_starts_at_the_ceiling_and_adapts_after_a_few_samples() -> None:
    t = AdaptiveTimeout(S)
    assert t.value == S.short_timeout
    for _ in range(MIN_SAMPLES - 1):
        t.record(0.2)
    assert t.value == S.short_timeout
    t.record(0.2)
    assert t.value == pytest.approx(0.4)


def test_bounds_and_switch() -> None:
    fast, slow = AdaptiveTimeout(S), AdaptiveTimeout(S)
    for _ in range(SAMPLES):
        fast.record(0.01)
        slow.record(3.0)
    assert fast.value == S.min_short_timeout and slow.value == S.short_timeout
    off = AdaptiveTimeout(replace(S, adaptive_timeout=False))
    for _ in range(SAMPLES):
        off.record(0.01)
    assert off.value == S.short_timeout


def test_full_window_follows_a_change_within_a_recompute_period() -> None:
    t = AdaptiveTimeout(S)
    for _ in range(SAMPLES):
        t.record(0.1)
    for _ in range(SAMPLES + RECOMPUTE_EVERY):
        t.record(0.3)
    assert t.value == pytest.approx(0.6)
