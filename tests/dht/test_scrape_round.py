"""BEP 33 through the core: a get_peers lookup with scrape asks the K closest for their filters
and estimates the swarm; peers are still found."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.sim import SimNetwork


def test_scrape_estimates_seeds_and_downloaders() -> None:
    net = SimNetwork(33)
    nodes = net.add_nodes(120)
    net.bootstrap_all()
    info_hash = random.Random(1).randbytes(20)
    # 12 seeds and 30 downloaders announce, each from its own address.
    for i, sn in enumerate(nodes[:42]):
        net.call(sn, lambda d, now, i=i: d.announce(info_hash, 6000 + i, now, seed=i < 12))
    net.run_until_idle()
    asker = nodes[100]
    events = net.watch(asker)
    lid = net.call(asker, lambda d, now: d.start_lookup(info_hash, now, scrape=True))
    assert net.run_until(
        lambda: any(isinstance(e, ev.ScrapeFinished) and e.lookup_id == lid for e in events), 60
    )
    done = next(e for e in events if isinstance(e, ev.ScrapeFinished))
    finished = next(e for e in events if isinstance(e, ev.LookupFinished))
    assert len(finished.peers) >= 40  # the lookup still found the announced peers
    assert done.nodes == 8 and done.legacy == 0 and not done.saturated and not done.cancelled
    # Each announcer is counted once, although it is stored on up to 8 of the nodes merged.
    assert round(done.seeds) == 12
    assert done.downloaders == pytest.approx(30, abs=1.5)


def test_scrape_only_for_get_peers() -> None:
    net = SimNetwork(1)
    [sn] = net.add_nodes(1)
    with pytest.raises(ValueError):
        net.call(sn, lambda d, now: d.start_lookup(b"\x00" * 20, now, kind="find_node",
                                                   scrape=True))
