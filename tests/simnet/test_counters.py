"""Counters: what each process counted adds up for /stats."""

from __future__ import annotations

from dhtviewer.simnet.counters import Counters


def test_totals_add_every_field_and_tolerate_missing_ones() -> None:
    a, b = Counters(queries=3, malformed=1), Counters(queries=4, flood_sent=9)
    total = Counters.total([a.to_json(), b.to_json(), {"queries": 1}])
    assert total["queries"] == 8 and total["malformed"] == 1 and total["flood_sent"] == 9
    assert set(total) == set(Counters().to_json()) and total["answered"] == 0
