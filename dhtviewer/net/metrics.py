"""Prometheus metrics of a running ``DhtSession`` over HTTP (``dhtviewer node --metrics``).

prometheus_client serves ``/metrics`` from its own thread; every scrape asks the event loop's
thread for a snapshot (the node is only ever touched from that thread), built from the node's
counters, gauges and routing snapshots at that moment. Nothing is counted twice: the figures
are the node's own (``dht/counters.py``), read when Prometheus asks. The names (all prefixed
``dhtviewer_``) are listed in ``METRICS`` and in the README.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from dhtviewer import __version__
from dhtviewer.dht.counters import RTT_BUCKETS
from dhtviewer.dht.kinds import NodeState
from dhtviewer.net.session import DhtSession

__all__ = ["METRICS", "MetricsServer", "session_metrics"]

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 5.0
"""Seconds a scrape waits for the event loop before it fails (a stuck loop is worth seeing)."""

# (stats key, metric name without prefix/suffix, help) for plain counters of the node
_COUNTERS = (
    ("malformed", "malformed_datagrams", "Datagrams that did not decode (oversized included)."),
    ("rate_limited", "rate_limited_queries",
     "Queries refused by the per-IP or global reply budget."),
    ("dropped_blocked", "blocked_datagrams", "Datagrams from a blocked IP, dropped unparsed."),
    ("ip_blocks", "ip_blocks", "Blocks imposed on flooding IPs."),
    ("timeouts", "query_timeouts", "Our queries that reached the hard timeout."),
    ("unsolicited", "unsolicited_replies", "Replies that matched none of our queries."),
    ("lookups_started", "lookups_started", "Lookups started (all kinds)."),
    ("lookups_finished", "lookups_finished", "Lookups that ended, cancelled ones included."),
    ("lookups_cancelled", "lookups_cancelled", "Lookups cancelled before they settled."),
    ("announces_stored", "announces_stored", "announce_peer queries stored."),
    ("items_stored", "items_stored", "BEP 44 puts accepted."),
)
# (stats key, metric name, help) for gauges the node reports
_GAUGES = (
    ("blocked_ips", "blocked_ips", "IPs blocked by the rate limiter now."),
    ("tracked_ips", "tracked_ips", "IPs the rate limiter keeps a budget for."),
    ("lookups", "lookups_running", "Lookups running now."),
    ("inflight", "queries_in_flight", "Our queries waiting for an answer."),
    ("stored_info_hashes", "stored_info_hashes", "Info-hashes in the peer store."),
    ("stored_peers", "stored_peers", "Peers in the peer store, over all info-hashes."),
    ("stored_items", "stored_items", "BEP 44 items stored for other nodes."),
    ("uptime", "uptime_seconds", "Seconds since the node started."),
)

METRICS: tuple[tuple[str, str], ...] = (
    ("dhtviewer_info", "gauge 1 with labels version and node_id"),
    ("dhtviewer_routing_nodes", "routing-table entries, labels family (4, 6) and state "
     "(good, questionable, bad)"),
    ("dhtviewer_routing_replacements", "replacement candidates waiting, label family"),
    ("dhtviewer_routing_buckets", "buckets, label family"),
    ("dhtviewer_messages_total", "KRPC messages, labels direction (in, out), type (query, "
     "response, error) and method"),
    ("dhtviewer_packets_total", "datagrams, label direction"),
    ("dhtviewer_bytes_total", "datagram bytes, label direction"),
    *((f"dhtviewer_{name}_total", text) for _k, name, text in _COUNTERS),
    *((f"dhtviewer_{name}", text) for _k, name, text in _GAUGES),
    ("dhtviewer_query_rtt_seconds", "histogram of the round-trip times of our answered "
     "queries"),
)
"""Every metric served, with what it is (the README's table)."""

_STATES = (NodeState.GOOD, NodeState.QUESTIONABLE, NodeState.BAD)


def session_metrics(session: DhtSession) -> list[Metric]:
    """The metrics of ``session`` now (call in the event loop's thread); [] before it starts."""
    node = session.node
    if node is None:
        return []
    stats = session.stats()
    now = session.now()
    out: list[Metric] = []
    info = GaugeMetricFamily("dhtviewer_info", "The node: dhtviewer version and node id.",
                             labels=["version", "node_id"])
    info.add_metric([__version__, session.node_id.hex()], 1)
    out.append(info)

    nodes = GaugeMetricFamily("dhtviewer_routing_nodes", "Routing-table entries by state.",
                              labels=["family", "state"])
    replacements = GaugeMetricFamily("dhtviewer_routing_replacements",
                                     "Replacement candidates waiting.", labels=["family"])
    buckets = GaugeMetricFamily("dhtviewer_routing_buckets", "Buckets of the routing table.",
                                labels=["family"])
    nodes_by_family = session.nodes  # one node per address family (BEP 32)
    for family, fam_node in sorted(nodes_by_family.items()):
        snap = fam_node.routing_snapshot(now)
        fam = str(family)
        for state in _STATES:
            count = sum(1 for b in snap.buckets for n in b.nodes if n.state == state)
            nodes.add_metric([fam, str(state)], count)
        replacements.add_metric([fam], sum(b.replacements for b in snap.buckets))
        buckets.add_metric([fam], snap.depth)
    out += [nodes, replacements, buckets]

    # Counts of every family's node added up (the other figures come summed in ``stats``).
    all_counters = [n.counters for n in nodes_by_family.values()]
    by_message: dict[tuple[Any, Any, str], int] = {}
    for counters in all_counters:
        for message, count in counters.messages.counts.items():
            by_message[message] = by_message.get(message, 0) + count
    messages = CounterMetricFamily("dhtviewer_messages", "KRPC messages.",
                                   labels=["direction", "type", "method"])
    for (direction, kind, method), count in sorted(by_message.items()):
        messages.add_metric([str(direction), str(kind), method], count)
    out.append(messages)
    for key, name in (("packets", "packets"), ("bytes", "bytes")):
        fam_metric = CounterMetricFamily(f"dhtviewer_{name}", f"Datagram {name}.",
                                         labels=["direction"])
        fam_metric.add_metric(["in"], stats.get(f"{key}_in", 0))
        fam_metric.add_metric(["out"], stats.get(f"{key}_out", 0))
        out.append(fam_metric)
    for key, name, text in _COUNTERS:
        out.append(CounterMetricFamily(f"dhtviewer_{name}", text, value=stats.get(key, 0)))
    for key, name, text in _GAUGES:
        out.append(GaugeMetricFamily(f"dhtviewer_{name}", text, value=stats.get(key, 0)))

    rtt_counts = [sum(c.rtt.counts[i] for c in all_counters)
                  for i in range(len(RTT_BUCKETS) + 1)]
    cumulative, running = [], 0
    for bound, count in zip((*map(str, RTT_BUCKETS), "+Inf"), rtt_counts, strict=True):
        running += count
        cumulative.append((bound, running))
    hist = HistogramMetricFamily("dhtviewer_query_rtt_seconds",
                                 "Round-trip times of our answered queries.")
    hist.add_metric([], cumulative, sum_value=sum(c.rtt.total for c in all_counters))
    out.append(hist)
    return out


class _SessionCollector:
    """A prometheus_client collector that takes each snapshot on the event loop's thread."""

    def __init__(self, session: DhtSession, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.loop = loop

    def collect(self) -> Iterable[Metric]:
        async def snapshot() -> list[Metric]:
            return session_metrics(self.session)

        future = asyncio.run_coroutine_threadsafe(snapshot(), self.loop)
        return future.result(SCRAPE_TIMEOUT)

    def describe(self) -> Iterator[Metric]:
        # Registering must not take a snapshot from the loop's own thread (it would wait on
        # itself): nothing to describe up front.
        return iter(())


@dataclass
class MetricsServer:
    """``/metrics`` of ``session`` on ``host:port`` (port 0: any free port) until ``close``."""

    session: DhtSession
    host: str = "127.0.0.1"
    port: int = 0
    _server: Any = None
    _thread: Any = None

    def start(self) -> tuple[str, int]:
        """Bind and serve; the bound (host, port). OSError when the address cannot be bound."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_SessionCollector(self.session, asyncio.get_running_loop()))
        self._server, self._thread = start_http_server(self.port, self.host, registry)
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None
