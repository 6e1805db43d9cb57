"""RateLimiter: steady senders pass, floods are blocked then released, global budget, bounds."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtviewer.dht.rate_limit import RateLimiter

IP = "198.51.100.1"
OTHER = "198.51.100.2"


def send(rl: RateLimiter, ip: str, n: int, start: float, interval: float) -> int:
    """Send n packets from ip, one every interval seconds; how many were allowed."""
    return sum(rl.allow(ip, start + i * interval) for i in range(n))


def test_steady_five_per_second_always_allowed() -> None:
    rl = RateLimiter()
    assert send(rl, IP, 5 * 600, 0.0, 0.2) == 3000  # ten minutes at exactly the rate
    assert rl.counters.limiter_refused == 0 and rl.counters.ip_blocks == 0


def test_burst_allowed_then_refused() -> None:
    rl = RateLimiter(per_ip_rate=5.0, per_ip_burst=25.0)
    assert send(rl, IP, 25, 0.0, 0.0) == 25
    assert not rl.allow(IP, 0.0)
    assert rl.counters.limiter_refused == 1
    assert not rl.is_blocked(IP, 0.0)
    assert rl.allow(IP, 0.2)  # one token back after 1/rate seconds


def test_slightly_too_fast_is_trimmed_not_blocked() -> None:
    """A node sending 6/s gets the 5/s it is owed, forever, without being blocked."""
    rl = RateLimiter(per_ip_rate=5.0, per_ip_burst=25.0)
    allowed = send(rl, IP, 6 * 300, 0.0, 1 / 6)
    assert rl.counters.ip_blocks == 0
    assert 5 * 300 <= allowed <= 5 * 300 + 25


def test_flood_gets_blocked_then_released_after_block_seconds() -> None:
    rl = RateLimiter(per_ip_rate=5.0, per_ip_burst=25.0, block_seconds=60.0)
    # burst of 25 passes, the next 25 are refused, the 25th refusal blocks
    assert send(rl, IP, 50, 0.0, 0.0) == 25
    assert rl.is_blocked(IP, 0.0)
    assert rl.blocked_ips(0.0) == [IP]
    assert rl.counters.ip_blocks == 1
    assert rl.block_ends(IP) == 60.0
    # while blocked every packet is refused and counted, even after the bucket would refill
    assert send(rl, IP, 100, 1.0, 0.5) == 0
    assert rl.counters.limiter_refused_blocked == 100
    assert rl.counters.limiter_refused == 125
    assert rl.is_blocked(IP, 59.999)
    # others are not affected
    assert rl.allow(OTHER, 10.0)
    # the block ends on time and is not extended by what was sent during it
    assert not rl.is_blocked(IP, 60.0)
    assert rl.blocked_ips(60.0) == []
    assert send(rl, IP, 25, 60.0, 0.0) == 25  # back with a full bucket


def test_flood_that_resumes_is_blocked_again() -> None:
    rl = RateLimiter(per_ip_rate=5.0, per_ip_burst=25.0, block_seconds=60.0)
    send(rl, IP, 50, 0.0, 0.0)
    send(rl, IP, 50, 60.0, 0.0)
    assert rl.counters.ip_blocks == 2
    assert rl.is_blocked(IP, 60.0)


def test_excess_drains_so_separate_bursts_do_not_block() -> None:
    rl = RateLimiter(per_ip_rate=5.0, per_ip_burst=25.0)
    t = 0.0
    for _ in range(20):
        send(rl, IP, 40, t, 0.0)  # 25 allowed, 15 refused: under the block threshold
        t += 10.0  # long enough to refill 25 tokens and drain 15 of excess
    assert rl.counters.ip_blocks == 0
    assert rl.counters.limiter_allowed == 20 * 25


def test_global_budget() -> None:
    rl = RateLimiter(global_rate=100.0, global_burst=200.0, per_ip_burst=25.0)
    ips = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(20)]
    allowed = sum(rl.allow(ip, 0.0) for ip in ips for _ in range(20))
    assert allowed == 200  # the global burst, though each IP was within its own budget
    assert rl.counters.dropped_global == 200
    assert rl.counters.limiter_refused == 0 and rl.counters.ip_blocks == 0
    # one second later the global bucket holds 100 more
    assert sum(rl.allow(ip, 1.0) for ip in ips for _ in range(10)) == 100


def test_global_refusal_does_not_spend_the_ip_budget() -> None:
    rl = RateLimiter(global_rate=1.0, global_burst=1.0, per_ip_rate=0.0, per_ip_burst=3.0)
    assert rl.allow(IP, 0.0)
    assert send(rl, IP, 10, 0.0, 0.0) == 0  # global budget spent
    assert rl.counters.dropped_global == 10 and rl.counters.limiter_refused == 0
    # the IP kept its 2 remaining tokens (it never refills: rate 0) for when the global
    # budget comes back, one per second
    assert rl.allow(IP, 1.0)
    assert rl.allow(IP, 2.0)
    assert not rl.allow(IP, 3.0)
    assert rl.counters.limiter_refused == 1


def test_tracked_table_bounded_under_many_distinct_ips() -> None:
    rl = RateLimiter(max_tracked_ips=10_000, global_burst=1e9, global_rate=1e9)
    started = time.perf_counter()
    for i in range(100_000):
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        assert rl.allow(ip, i * 0.0001)
        assert rl.tracked() <= 10_000
    assert rl.tracked() == 10_000
    assert time.perf_counter() - started < 10.0  # about a quarter of a second


def test_least_recently_seen_is_evicted_first() -> None:
    rl = RateLimiter(max_tracked_ips=2, per_ip_rate=0.0, per_ip_burst=3.0)
    assert send(rl, "a", 2, 0.0, 0.0) == 2
    assert rl.allow("b", 1.0)
    assert rl.allow("a", 2.0)  # a seen again (its last token): b is now the least recently seen
    assert rl.allow("c", 3.0)  # evicts b, not a
    assert rl.tracked() == 2 and not rl.blocked_ips(3.0)
    assert not rl.allow("a", 4.0)  # a was remembered: still empty (rate 0: no refill)
    assert rl.allow("b", 5.0)  # b was forgotten: comes back with a fresh bucket


def test_blocked_ips_are_evicted_last() -> None:
    rl = RateLimiter(max_tracked_ips=3, per_ip_burst=2.0, block_seconds=60.0)
    send(rl, "x", 4, 0.0, 0.0)  # blocked
    assert rl.is_blocked("x", 0.0)
    for i in range(50):  # a stream of new IPs churns the table
        rl.allow(f"n{i}", 1.0 + i)
    assert rl.is_blocked("x", 51.0)
    assert rl.tracked() == 3


def test_blocked_evicted_when_table_is_all_blocked() -> None:
    rl = RateLimiter(max_tracked_ips=2, per_ip_burst=1.0, block_seconds=60.0)
    send(rl, "x", 2, 0.0, 0.0)
    send(rl, "y", 2, 1.0, 0.0)
    assert rl.blocked_ips(1.0) == ["x", "y"]
    assert rl.allow("z", 2.0)
    assert rl.blocked_ips(2.0) == ["y"]  # x's block ended soonest: it went first
    assert rl.tracked() == 2


def test_invalid_arguments_rejected() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_ip_burst=0.5)
    with pytest.raises(ValueError):
        RateLimiter(per_ip_rate=-1.0)
    with pytest.raises(ValueError):
        RateLimiter(max_tracked_ips=0)


@settings(max_examples=100, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 3), st.floats(0.0, 2.0)),  # (ip, time step)
        max_size=300,
    )
)
def test_property_no_ip_exceeds_burst_plus_rate(events: list[tuple[int, float]]) -> None:
    """Over any interval [t0, t1], an IP gets at most burst + rate * (t1 - t0) answers,
    and at most max_tracked_ips are tracked (here the table never overflows)."""
    rate, burst = 5.0, 25.0
    rl = RateLimiter(per_ip_rate=rate, per_ip_burst=burst, block_seconds=3.0)
    now = 0.0
    allowed_at: dict[int, list[float]] = {}
    for ip, step in events:
        now += step
        if rl.allow(f"192.0.2.{ip}", now):
            allowed_at.setdefault(ip, []).append(now)
        assert rl.tracked() <= 4
    for times in allowed_at.values():
        for i in range(len(times)):
            for j in range(i, len(times)):
                assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 1e-6
