"""SimNetwork: determinism, latency, loss, dead nodes, timer order, and how networks are formed."""

from __future__ import annotations

import ipaddress
import random
import statistics

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import bep42_valid, random_id
from dhtviewer.sim import ConstantLatency, SimNetwork, SimNode, SimTimeoutError


def _pings(events: list[ev.Event]) -> list[ev.PingFinished]:
    return [e for e in events if isinstance(e, ev.PingFinished)]


def _ping(net: SimNetwork, src: SimNode, dst: SimNode | tuple[str, int]) -> int:
    addr = dst.addr if isinstance(dst, SimNode) else dst
    return net.call(src, lambda d, now: d.ping(addr, now))


def _fingerprint(seed: int) -> tuple[object, ...]:
    net = SimNetwork(seed)
    net.add_nodes(150)
    net.bootstrap_all()
    net.kill_random(0.1)
    rng = random.Random(seed)
    live = net.live_nodes()
    results = [net.lookup(rng.choice(live), random_id(rng)) for _ in range(5)]
    return (
        [sn.addr for sn in net.nodes],
        [(r.closest_ids, r.queries, r.duration) for r in results],
        net.now,
        net.stats,
    )


def test_same_seed_same_results() -> None:
    first = _fingerprint(7)
    assert first == _fingerprint(7)
    assert first != _fingerprint(8)


def test_addresses_are_public_unique_and_ids_bep42_valid() -> None:
    net = SimNetwork(3)
    nodes = net.add_nodes(500)
    assert len({sn.addr[0] for sn in nodes}) == 500
    for sn in nodes:
        assert ipaddress.ip_address(sn.addr[0]).is_global
        assert bep42_valid(sn.node_id, sn.addr[0])
        assert net.node_at(sn.addr) is sn


def test_constant_latency_gives_exact_round_trips() -> None:
    net = SimNetwork(1, ConstantLatency(0.05))
    a, b = net.add_nodes(2)
    log = net.watch(a)
    op = _ping(net, a, b)
    assert net.run_until_idle(10.0)
    (done,) = _pings(log)
    assert (done.op_id, done.node_id) == (op, b.node_id)
    assert done.rtt == pytest.approx(0.1)
    assert done.at == pytest.approx(0.1)
    assert b.events is None  # unwatched nodes keep no events
    # (b also verifies a, the newcomer that queried it: more than two datagrams)
    assert net.stats.datagrams == net.stats.delivered >= 2 and net.stats.dropped == 0
    assert net.stats.bytes > 0


def test_lognormal_round_trip_median_is_twice_80_ms() -> None:
    net = SimNetwork(11)
    nodes = net.add_nodes(200)
    rng = random.Random(5)
    logs = {sn.index: net.watch(sn) for sn in nodes}
    for src in nodes:
        for dst in rng.sample(nodes, 3):
            if dst is not src:
                _ping(net, src, dst)
    assert net.run_until_idle(30.0)
    rtts = [e.rtt for log in logs.values() for e in _pings(log) if e.rtt is not None]
    assert len(rtts) > 550
    assert 0.14 < statistics.median(rtts) < 0.18


def test_loss_drops_the_configured_fraction() -> None:
    net = SimNetwork(5, ConstantLatency(0.02), loss=0.25)
    nodes = net.add_nodes(200)
    rng = random.Random(6)
    logs = [net.watch(sn) for sn in nodes]
    sent = 0
    for src in nodes:
        for dst in rng.sample([n for n in nodes if n is not src], 5):
            _ping(net, src, dst)
            sent += 1
    assert net.run_until_idle(30.0)
    s = net.stats
    assert abs(s.dropped_loss / s.datagrams - 0.25) < 0.03
    assert s.dropped == s.dropped_loss
    answered = sum(1 for log in logs for e in _pings(log) if e.rtt is not None)
    assert abs(answered / sent - 0.75**2) < 0.05  # both the query and the reply must survive


def test_dead_node_drops_traffic_until_revived() -> None:
    net = SimNetwork(2, ConstantLatency(0.05))
    a, b = net.add_nodes(2)
    log = net.watch(a)
    net.kill(b)
    _ping(net, a, b)
    assert net.run_until_idle(60.0)
    (timed_out,) = _pings(log)
    assert timed_out.node_id is None
    assert timed_out.at == pytest.approx(a.dht.settings.hard_timeout)
    assert net.stats.dropped_dead == 1
    assert b.dht.counters.packets_in == 0
    with pytest.raises(ValueError):
        _ping(net, b, a)  # a dead host sends nothing
    net.revive(b)
    _ping(net, a, b)
    assert net.run_until_idle(60.0)
    assert _pings(log)[-1].node_id == b.node_id


def test_unknown_destination_is_dropped() -> None:
    net = SimNetwork(2)
    (a,) = net.add_nodes(1)
    log = net.watch(a)
    _ping(net, a, ("1.2.3.4", 6881))
    net.run_for(10.0)
    assert net.stats.dropped_unknown == 1
    assert _pings(log)[0].node_id is None


def test_timers_fire_in_order_on_the_virtual_clock() -> None:
    net = SimNetwork(4, ConstantLatency(0.05))
    a, *dead = net.add_nodes(4)
    for sn in dead:
        net.kill(sn)
    log = net.watch(a)
    hard = a.dht.settings.hard_timeout
    ops = []
    for sn, at in zip(dead, (0.0, 1.5, 3.0), strict=True):
        net.run_until(at)
        assert net.now == at
        ops.append(_ping(net, a, sn))
    net.run_until(hard + 2.0)
    assert net.now == hard + 2.0
    assert [e.op_id for e in _pings(log)] == ops[:2]  # the third is not due yet
    net.run_until(hard + 3.0)
    done = _pings(log)
    assert [e.op_id for e in done] == ops
    assert [e.at for e in done] == pytest.approx([hard, hard + 1.5, hard + 3.0])
    assert net.stats.timer_stalls == 0


def test_run_until_predicate_respects_max_time() -> None:
    net = SimNetwork(9, ConstantLatency(0.05))
    a, b = net.add_nodes(2)
    log = net.watch(a)
    _ping(net, a, b)
    assert net.run_until(lambda: bool(_pings(log)), max_time=1.0)
    assert net.now == pytest.approx(0.1)
    assert not net.run_until(lambda: False, max_time=1.0)
    assert net.now == pytest.approx(1.1)


def test_run_until_idle_waits_for_outstanding_queries() -> None:
    net = SimNetwork(9, ConstantLatency(0.05))
    a, b = net.add_nodes(2)
    net.kill(b)
    _ping(net, a, b)
    assert not net.run_until_idle(max_time=1.0)  # the ping is still waiting for its timeout
    assert net.now == pytest.approx(1.0)
    assert net.run_until_idle()
    assert net.now == pytest.approx(a.dht.settings.hard_timeout)


def test_lookup_that_finishes_inside_the_call_is_reported() -> None:
    net = SimNetwork(9)
    (a,) = net.add_nodes(1)
    handle = net.start_lookup(a, random_id(random.Random(1)))  # empty table: done at once
    assert handle.done
    result = net.wait(handle, max_time=0.0)
    assert result.finished.closest == () and result.queries == 0 and result.duration == 0.0


@pytest.fixture(scope="module")
def organic() -> SimNetwork:
    """A network formed the slow, real way: one bootstrap lookup per joining node."""
    net = SimNetwork(21)
    net.add_nodes(100)
    net.bootstrap_all("lookup")
    return net


def test_seeded_tables_resemble_tables_built_by_bootstrap_lookups(organic: SimNetwork) -> None:
    seeded = SimNetwork(21)
    seeded.add_nodes(100)
    seeded.bootstrap_all("seed")
    assert seeded.stats.datagrams == 0  # seeding sends nothing
    assert organic.stats.datagrams > 0
    assert all(sn.dht.bootstrapped for sn in seeded.nodes + organic.nodes)
    seeded_sizes = [sn.dht.routing_size() for sn in seeded.nodes]
    organic_sizes = [sn.dht.routing_size() for sn in organic.nodes]
    assert min(seeded_sizes) >= 8 and min(organic_sizes) >= 8
    ratio = statistics.median(seeded_sizes) / statistics.median(organic_sizes)
    assert 0.75 < ratio < 1.33
    rng = random.Random(3)
    for _ in range(10):
        src = rng.choice(seeded.nodes)
        target = random_id(rng)
        result = seeded.lookup(src, target)
        truth = [sn.node_id for sn in seeded.closest_live(target, 8, exclude=[src])]
        assert result.closest_ids == truth


def test_network_formed_by_bootstrap_lookups_converges(organic: SimNetwork) -> None:
    rng = random.Random(3)
    for _ in range(10):
        src = rng.choice(organic.nodes)
        target = random_id(rng)
        result = organic.lookup(src, target)
        truth = {sn.node_id for sn in organic.closest_live(target, 8, exclude=[src])}
        assert len(truth & set(result.closest_ids)) >= 7


def test_newcomer_joins_a_formed_network() -> None:
    net = SimNetwork(14)
    net.add_nodes(300)
    net.bootstrap_all()
    newcomer = net.add_node()
    assert newcomer.dht.routing_size() == 0
    net.join(newcomer)
    assert net.run_until_idle(60.0)
    assert newcomer.dht.bootstrapped and newcomer.dht.routing_size() >= 16
    target = random_id(random.Random(4))
    result = net.lookup(newcomer, target)
    truth = [sn.node_id for sn in net.closest_live(target, 8, exclude=[newcomer])]
    assert result.closest_ids == truth


def test_wait_raises_when_lookup_cannot_finish_in_time() -> None:
    net = SimNetwork(12, ConstantLatency(0.05))
    nodes = net.add_nodes(40)
    net.bootstrap_all()
    handle = net.start_lookup(nodes[0], random_id(random.Random(2)))
    with pytest.raises(SimTimeoutError):
        net.wait(handle, max_time=0.01)
    result = net.wait(handle)
    assert result.queries >= 8 and result.duration > 0.01


def test_bucket_refresh_never_leaves_an_overdue_deadline() -> None:
    net = SimNetwork(13)
    net.add_nodes(60)
    net.bootstrap_all()
    net.run_until(net.settings.bucket_refresh_interval + 60.0)
    assert net.stats.datagrams > 0  # the refresh wave happened
    assert net.stats.timer_stalls == 0
