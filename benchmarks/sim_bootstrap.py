"""Bootstrap in simulation: how fast a newcomer fills its routing table.

The network is the lookup benchmark's (``sim_lookups.build_network``): 3,000 nodes at full size
with converged tables, 20% of them then killed, 1% loss, RTT log-normal with median 80 ms. A new
node is added and bootstraps through 3 random live nodes (``SimNetwork.join``), exactly as a
node does on start: a find_node lookup of its own id, then refreshes of the buckets that are
not full. Virtual time is measured from the join until the bootstrap lookup finished, until the
node has 8 good nodes (what the session calls "ready"), 40 good nodes, and a table of at least 8
buckets. Several newcomers join one after another, each given up to ``MAX_TIME`` virtual
seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import BenchResult, Table, check_size, ms, summary
from benchmarks.sim_lookups import build_network
from dhtviewer.dht import events as ev

NAME = "sim_bootstrap"
TITLE = "Bootstrap of a newcomer in simulation (virtual time to 40 good nodes, depth 8)"

GOOD_TARGET = 40
READY_GOOD = 8
DEPTH_TARGET = 8
MAX_TIME = 60.0


@dataclass(frozen=True)
class _Params:
    nodes: int
    trials: int


_PARAMS = {"tiny": _Params(300, 3), "medium": _Params(3000, 10), "full": _Params(3000, 20)}


def one_join(net: Any, seed_contacts: int = 3) -> dict[str, Any]:
    """Add a node, bootstrap it, run until it has GOOD_TARGET good nodes and DEPTH_TARGET
    buckets (or MAX_TIME). Times in virtual seconds from the join; None if not reached."""
    node = net.add_node()
    events = net.watch(node)
    t0 = net.now
    net.join(node, seed_contacts)
    dht = node.dht
    marks: dict[str, float | None] = {"bootstrap_done": None, "ready": None,
                                      "good_40": None, "depth_8": None}
    queries_at_40: list[int] = []
    seen = [0]

    def check() -> bool:
        now = net.now
        if marks["bootstrap_done"] is None:
            for e in events[seen[0]:]:
                if isinstance(e, ev.LookupFinished) and e.kind == "bootstrap":
                    marks["bootstrap_done"] = now - t0
            seen[0] = len(events)
        good = dht.good_node_count(now)
        if marks["ready"] is None and good >= READY_GOOD:
            marks["ready"] = now - t0
        if marks["good_40"] is None and good >= GOOD_TARGET:
            marks["good_40"] = now - t0
            queries_at_40.append(dht.counters.queries_out)
        if marks["depth_8"] is None and dht.routing_snapshot(now).depth >= DEPTH_TARGET:
            marks["depth_8"] = now - t0
        return all(v is not None for v in marks.values())

    net.run_until(check, max_time=MAX_TIME)
    now = net.now
    snap = dht.routing_snapshot(now)
    net.unwatch(node)
    return {
        **marks,
        "queries_to_40": queries_at_40[0] if queries_at_40 else None,
        "queries_total": dht.counters.queries_out,
        "good_at_end": dht.good_node_count(now),
        "depth_at_end": snap.depth,
        "table_size_at_end": snap.size,
        "virtual_seconds": now - t0,
    }


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    t0 = time.perf_counter()
    net, _ = build_network(p.nodes, seed=11)
    build_s = time.perf_counter() - t0
    trials = [one_join(net) for _ in range(p.trials)]
    table = Table(
        f"{p.trials} newcomers joining a {p.nodes:,}-node network (20% dead, 1% loss, "
        "RTT median 80 ms); virtual ms from the join",
        ["milestone", "reached", "p50 ms", "p95 ms", "max ms"],
    )
    labels = [
        ("bootstrap_done", "bootstrap lookup finished"),
        ("ready", f">= {READY_GOOD} good nodes (session ready)"),
        ("good_40", f">= {GOOD_TARGET} good nodes"),
        ("depth_8", f"table depth >= {DEPTH_TARGET} buckets"),
    ]
    agg: dict[str, Any] = {}
    for key, label in labels:
        values = [t[key] for t in trials if t[key] is not None]
        s = summary(values)
        agg[key] = s
        table.add(label, f"{len(values)}/{len(trials)}", ms(s["median"]), ms(s["p95"]),
                  ms(s["max"]))
    q40 = summary([t["queries_to_40"] for t in trials if t["queries_to_40"] is not None])
    table.notes.append(f"queries sent until {GOOD_TARGET} good nodes: median {q40['median']:g}; "
                       f"good nodes at the end (<= {MAX_TIME:g} s): median "
                       f"{summary([t['good_at_end'] for t in trials])['median']:g}")
    g40 = agg["good_40"]
    met = len([t for t in trials if t["good_40"] is not None and t["good_40"] <= 5.0])
    table.notes.append(f"target: >= {GOOD_TARGET} good nodes within 5 s: {met}/{len(trials)} "
                       f"newcomers (p95 {ms(g40['p95']) or 0:.0f} ms)")
    data = {"nodes": p.nodes, "trials": trials, "aggregate": agg, "build_seconds": build_s}
    return BenchResult(NAME, size, [table], data,
                       notes=[f"network built in {build_s:.0f} s"])
