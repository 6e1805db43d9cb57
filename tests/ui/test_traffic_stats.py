"""TrafficStats: per-second rolling counters, RTT histogram and network-size estimates."""

from __future__ import annotations

import heapq
import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import int_to_id, random_id
from dhtviewer.ui.traffic_stats import IN, OUT, TrafficStats, estimate_network_size

PEER = ("1.2.3.4", 6881)


def sent(at: float, method: bytes = b"get_peers", size: int = 100, kind: str = "q") -> ev.Event:
    return ev.MessageSent(PEER, kind, method, b"tt", size, b"", at)


def received(at: float, method: bytes = b"get_peers", size: int = 300, kind: str = "r") -> ev.Event:
    return ev.MessageReceived(PEER, kind, method, b"tt", size, None, b"", at)


def test_messages_counted_per_second_direction_and_method() -> None:
    stats = TrafficStats(window=10)
    stats.add_events([sent(100.2), sent(100.7), sent(100.9, b"ping"), received(101.5)])
    stats.advance(102.0)
    x = stats.seconds_axis()
    assert len(x) == 10 and x[-1] == -1.0 and x[0] == -10.0
    # index -1 is second 101 (the last complete one), -2 is second 100
    assert stats.rate_series(OUT, "get_peers")[-2:].tolist() == [2.0, 0.0]
    assert stats.rate_series(OUT)[-2:].tolist() == [3.0, 0.0]
    assert stats.rate_series(IN)[-2:].tolist() == [0.0, 1.0]
    assert stats.bytes_series(OUT)[-2] == 300.0 and stats.bytes_series(IN)[-1] == 300.0
    assert stats.methods(OUT) == ["get_peers", "ping"] and stats.methods(IN) == ["get_peers"]
    assert stats.totals["messages out"] == 3 and stats.totals["bytes in"] == 300


def test_window_rolls_forward_and_forgets() -> None:
    stats = TrafficStats(window=10)
    stats.add_events([sent(100.5), sent(105.5)])
    stats.advance(111.0)  # second 100 is now 11 s old
    assert stats.rate_series(OUT).sum() == 1.0 and stats.rate_series(OUT)[-6] == 1.0
    stats.advance(200.0)
    assert stats.rate_series(OUT).sum() == 0.0 and stats.methods() == []
    assert stats.totals["messages out"] == 2  # totals are all-time
    stats.advance(150.0)  # time never goes back
    assert stats.now == 200.0


@pytest.mark.parametrize(("now", "seconds"), [(101.0, 5), (103.5, 5), (104.0, 2), (130.0, 5),
                                             (102.0, 50), (102.0, 0)])
def test_recent_rate_is_the_mean_of_the_last_complete_seconds(now: float, seconds: int) -> None:
    stats = TrafficStats(window=10)
    assert stats.recent_rate(OUT) == 0.0  # nothing yet
    rng = random.Random(6)
    stats.add_events(sorted((sent(rng.uniform(95.0, now)) for _ in range(40)),
                            key=lambda e: e.at))
    stats.add_event(received(now - 1.5, b"ping"))
    stats.advance(now)
    for direction in (IN, OUT):
        tail = stats.rate_series(direction)[-max(seconds, 1):]
        assert stats.recent_rate(direction, seconds) == pytest.approx(float(tail.mean()))
    assert stats.recent_rate(OUT, 5) > 0.0 or now == 130.0


def test_errors_malformed_and_dropped_are_counted() -> None:
    stats = TrafficStats(window=60)
    stats.add_events([
        received(10.0, b"", kind="e"),
        sent(10.1, b"get_peers", kind="e"),
        ev.MalformedReceived(PEER, 40, 203, "not bencoded", True, 10.2),
        ev.MalformedReceived(PEER, 30, 203, "not bencoded", False, 11.2),
        ev.ResponseDropped(PEER, b"zz", "unknown tid", 11.3),
    ])
    stats.advance(12.0)
    assert stats.totals["errors in"] == 1 and stats.totals["errors out"] == 1
    assert stats.totals["malformed"] == 2 and stats.window_total("malformed") == 2
    assert stats.counter_series("malformed")[-2:].tolist() == [1.0, 1.0]
    assert stats.totals["dropped responses"] == 1
    assert stats.totals["bytes in"] == 40 + 30 + 300  # malformed bytes count as traffic in
    assert "unknown" in stats.methods(IN)  # a response whose query we could not name


def test_rtt_histogram_bins_and_overflow() -> None:
    stats = TrafficStats(window=60)
    stats.add_events([
        ev.LookupResponse(1, b"\0" * 20, PEER, 0.010, 0, 0, 5.0),
        ev.LookupResponse(1, b"\0" * 20, PEER, 0.030, 0, 0, 5.0),
        ev.PingFinished(2, PEER, b"\0" * 20, 2.5, None, 6.0),
        ev.PingFinished(3, PEER, None, None, None, 6.0),  # a timeout has no RTT
    ])
    edges, counts = stats.rtt_histogram(bin_ms=25.0, max_ms=1000.0)
    assert edges[0] == 0.0 and edges[-1] == 1000.0 and len(counts) == 40
    assert counts[0] == 1 and counts[1] == 1 and counts[-1] == 1 and counts.sum() == 3
    stats.advance(70.0)
    assert stats.rtt_samples().size == 0


def test_estimate_formula_on_exact_distances() -> None:
    target = int_to_id(0)
    # i-th closest at distance i * 2**150 -> i * 2**160 / d_i == 1024 for every i
    closest = [int_to_id(i << 150) for i in range(1, 9)]
    assert estimate_network_size(target, closest) == pytest.approx(1024.0)
    assert estimate_network_size(target, [target]) is None  # distance 0 carries no information


def test_size_estimate_on_uniform_ids_is_right_order_of_magnitude() -> None:
    rng = random.Random(2024)
    n = 10_000
    ids = [rng.getrandbits(160) for _ in range(n)]
    stats = TrafficStats(size_smoothing=16)
    for lookup in range(20):
        target = rng.getrandbits(160)
        nearest = heapq.nsmallest(8, ids, key=lambda i: i ^ target)
        closest = tuple((int_to_id(i), PEER) for i in nearest)
        stats.add_event(ev.LookupFinished(
            lookup, int_to_id(target), "find_node", (), closest, 20, 20, 1.0, False, lookup * 10.0
        ))
    latest = stats.latest_size()
    assert latest is not None
    median, low, high = latest
    assert n / 2 <= median <= n * 2
    assert low <= median <= high
    series = stats.size_series()
    assert len(series.at) == 20 and all(series.low <= series.high)


def test_cancelled_lookups_do_not_estimate() -> None:
    stats = TrafficStats()
    closest = ((random_id(random.Random(1)), PEER),)
    fin = ev.LookupFinished(1, b"\0" * 20, "get_peers", (), closest, 1, 1, 1.0, True, 1.0)
    stats.add_event(fin)
    assert stats.latest_size() is None and stats.size_estimates() == []


def test_the_plots_show_the_span_with_traffic_not_five_empty_minutes() -> None:
    stats = TrafficStats(window=300)
    assert stats.shown_seconds() == 60  # nothing yet: one minute
    stats.add_event(sent(1000.0))
    stats.advance(1040.0)
    assert stats.shown_seconds() == 60  # 40 s of traffic: still the one-minute minimum
    stats.advance(1095.0)
    assert stats.shown_seconds() == 120  # 95 s, rounded up to 30 s steps
    stats.add_event(sent(1290.0))
    assert stats.shown_seconds() == 300  # the whole window, never more
    stats.advance(1500.0)  # the first second fell out of the window: the later one counts
    assert stats.shown_seconds() == 210
