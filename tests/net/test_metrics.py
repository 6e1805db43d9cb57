"""Prometheus metrics of a real session: a node bootstrapped from a 16-node LocalTestnet on
127.0.12.x (real UDP), serving /metrics on loopback; a scrape is parsed with prometheus_client's
own text parser and its figures checked against the node's."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.metrics import METRICS, MetricsServer, session_metrics
from dhtviewer.net.session import DhtSession
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet

SETTINGS = DhtSettings(short_timeout=0.2, hard_timeout=1.0)


@pytest.fixture(scope="module")
def testnet() -> Iterator[LocalTestnet]:
    with BackgroundTestnet(LocalTestnet(16, "127.0.12.1", port=0, seed=12)) as net:
        yield net


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] of every sample served at ``url``."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
        **labels: str) -> float:
    return sum(v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items()))


def test_a_scrape_shows_the_node_as_it_is(testnet: LocalTestnet) -> None:
    info_hash = next(iter(testnet.announced))

    async def go() -> None:
        session = DhtSession(SETTINGS, bind=("127.0.12.200", 0))
        await session.start(list(testnet.bootstrap_addrs), timeout=15)
        server = MetricsServer(session)
        host, port = server.start()
        try:
            assert host == "127.0.0.1" and port > 0  # loopback by default, any free port
            await session.find_peers(info_hash, timeout=10)
            url = f"http://{host}:{port}/metrics"
            # The HTTP server's thread asks the loop for the snapshot: scrape from another
            # thread. Replies may still arrive around it: figures read before and after bound
            # what the scrape may show.
            def figures() -> tuple[int, int, float, float, float]:
                stats, snap = session.stats(), session.routing_snapshot()
                return (snap.good_count, snap.size, stats["malformed"], stats["blocked_ips"],
                        stats["stored_peers"])

            before = figures()
            samples = await asyncio.to_thread(scrape, url)
            after = figures()
            scraped = (one(samples, "dhtviewer_routing_nodes", family="4", state="good"),
                       one(samples, "dhtviewer_routing_nodes", family="4"),
                       one(samples, "dhtviewer_malformed_datagrams_total"),
                       one(samples, "dhtviewer_blocked_ips"),
                       one(samples, "dhtviewer_stored_peers"))
            for got, low, high in zip(scraped, before, after, strict=True):
                assert min(low, high) <= got <= max(low, high), (scraped, before, after)
            assert scraped[1] >= 8
            assert one(samples, "dhtviewer_messages_total", direction="out", type="query",
                       method="get_peers") >= 1
            assert one(samples, "dhtviewer_messages_total", direction="in", type="response",
                       method="find_node") >= 1
            assert one(samples, "dhtviewer_packets_total", direction="out") >= 8
            assert one(samples, "dhtviewer_lookups_started_total") >= 2  # bootstrap + ours
            assert one(samples, "dhtviewer_lookups_finished_total") >= 1
            responses = one(samples, "dhtviewer_messages_total", direction="in",
                            type="response")
            assert one(samples, "dhtviewer_query_rtt_seconds_count") == responses
            le = dict((lab["le"], v) for lab, v in samples["dhtviewer_query_rtt_seconds_bucket"])
            assert le["+Inf"] == responses and le["0.005"] <= le["1.0"] <= le["+Inf"]
            (labels, value), = samples["dhtviewer_info"]
            assert labels["node_id"] == session.node_id.hex() and value == 1
            # every documented name is served (a histogram and counters under their suffixes)
            served = set(samples)
            for name, _what in METRICS:
                assert {name, f"{name}_total", f"{name}_count"} & served, name
        finally:
            server.close()
            await session.stop()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_no_metrics_before_the_node_exists() -> None:
    assert session_metrics(DhtSession(SETTINGS)) == []


def test_a_busy_port_is_an_os_error() -> None:
    async def go() -> None:
        session = DhtSession(SETTINGS)
        first = MetricsServer(session)
        _host, port = first.start()
        try:
            with pytest.raises(OSError):
                MetricsServer(session, port=port).start()
        finally:
            first.close()

    asyncio.run(go())


def test_the_readme_documents_every_metric() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Metrics", 1)[1].split("\n## ", 1)[0]
    for name, _what in METRICS:
        assert f"| `{name}` |" in section, name
