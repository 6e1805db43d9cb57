"""BEP 51 through the core: a crawl over a simulated network finds the info-hashes its nodes
store, at the configured rate, asking no node twice within its interval; a direct query."""

from __future__ import annotations

import random
from dataclasses import replace

from dhtviewer.dht import events as ev
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.sim import SimNetwork


def test_crawl_finds_what_the_network_stores_at_a_bounded_rate() -> None:
    settings = replace(DhtSettings(), sample_interval=600)
    net = SimNetwork(51, settings=settings)
    nodes = net.add_nodes(150)
    net.bootstrap_all()
    rng = random.Random(3)
    hashes = [rng.randbytes(20) for _ in range(40)]
    for i, h in enumerate(hashes):
        net.call(nodes[i], lambda d, now, h=h: d.announce(h, 6881, now))
    net.run_until_idle()
    crawler = nodes[149]
    events = net.watch(crawler)
    start = net.now
    op = net.call(crawler, lambda d, now: d.start_crawl(now, rate=10.0))
    net.run_for(30.0)
    net.call(crawler, lambda d, now: d.stop_crawl(now))
    got = [e for e in events if isinstance(e, ev.SamplesReceived) and e.op_id == op]
    stats = crawler.dht.crawl_stats()
    assert stats is not None
    # Rate: at most the burst (10) plus 10/s over the 30 s.
    assert stats["queried"] <= 10 + 10 * 30
    assert len(got) >= 140  # and it did crawl (every node of the network, about)
    # Every reply in the first second came within the burst; none faster than the rate after.
    times = sorted(e.at - start for e in got)
    assert all(n <= 10 + 10 * t + 1 for n, t in enumerate(times, 1))
    asked = [e.addr for e in got]
    assert len(asked) == len(set(asked))  # 30 s < the 600 s interval: nobody asked twice
    seen = {h for e in got for h in e.samples}
    assert set(hashes) <= seen
    assert all(e.error is None and e.interval == 600 for e in got)
    [finished] = [e for e in events if isinstance(e, ev.CrawlFinished)]
    assert finished.op_id == op and finished.stats["supported"] == len(got)
    assert net.now - start >= 30.0


def test_direct_sample_and_a_second_crawl() -> None:
    net = SimNetwork(52)
    a, b = net.add_nodes(2)
    net.bootstrap_all()
    net.call(b, lambda d, now: d.store.add(b"\x07" * 20, ("10.0.0.1", 1), now) and None)
    events = net.watch(a)
    op = net.call(a, lambda d, now: d.sample(b.addr, now))
    assert net.run_until(lambda: any(isinstance(e, ev.SamplesReceived) for e in events), 10)
    [reply] = [e for e in events if isinstance(e, ev.SamplesReceived)]
    assert reply.op_id == op and reply.samples == (b"\x07" * 20,) and reply.num == 1
    assert reply.node_id == b.node_id and reply.error is None
    net.call(a, lambda d, now: d.start_crawl(now))
    try:
        net.call(a, lambda d, now: d.start_crawl(now))
    except RuntimeError:
        pass
    else:
        raise AssertionError("two crawls at once")
    net.call(a, lambda d, now: d.stop_crawl(now))
    stats = a.dht.crawl_stats()
    assert stats is not None and stats["running"] == 0


def test_silent_nodes_do_not_hold_the_crawls_slots() -> None:
    """A fifth of the network silent: slots freed at the short timeout keep the crawl near its
    rate (with slots held for the whole hard timeout, 2 slots would allow under 1 query/s)."""
    settings = replace(DhtSettings(), crawl_max_inflight=2, short_timeout=0.5,
                       adaptive_timeout=False)
    net = SimNetwork(52, settings=settings)
    nodes = net.add_nodes(120)
    net.bootstrap_all()
    crawler = nodes[0]
    for n in nodes[1::5]:
        net.kill(n)
    events = net.watch(crawler)
    op = net.call(crawler, lambda d, now: d.start_crawl(now, rate=3.0))
    net.run_for(20.0)
    net.call(crawler, lambda d, now: d.stop_crawl(now))
    got = [e for e in events if isinstance(e, ev.SamplesReceived) and e.op_id == op]
    stats = crawler.dht.crawl_stats()
    assert stats is not None and stats["slow"] >= 5
    assert stats["queried"] >= 45  # 3/s for 20 s (less the silent ones' waits)
    assert len([e for e in got if e.error == "timeout"]) >= 5
    assert len([e for e in got if e.error is None]) >= 35
