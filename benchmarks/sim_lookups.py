"""Lookups in simulation: accuracy (recall of the K closest live nodes, peers found) and speed
(time to first peer, to the K closest answering, to completion), queries and rounds per
lookup, for several lookup settings, next to the lower bound the network allows.

The network (``SimNetwork``, virtual clock): 10,000 nodes (full size) whose routing tables are
*seeded from global knowledge* (``bootstrap_all(mode="seed")``: every table is filled directly
with what a long-running node would hold, picked from the list of all nodes; no datagram is
exchanged to build them, which real nodes cannot do), then 20% of them killed (they stay in
everybody's tables, as departed nodes do), 1% random packet loss, and a round-trip time between
two nodes drawn from a log-normal distribution with median 80 ms (one-way median 40 ms, sigma
0.5, fixed per link, +-5% jitter per datagram). A few info-hashes are announced by live nodes
(two each). Then 200 get_peers lookups, each from a distinct random live node toward one of the
announced info-hashes, start 0.1 s apart (they overlap, as independent users' lookups do).
Before them, each of those nodes does what a node does when it starts, a find_node lookup of its
own id (so it has RTT samples for its adaptive short timeout, and has met some dead contacts);
the "cold start" row skips that.

Every configuration runs the same lookups from the same network state: the network is built
once and each configuration runs in a forked child process (copy-on-write), or the network is
rebuilt from the same seed where fork is unavailable. Only the querying nodes' settings change
(alpha and the short timeout are the querier's business).

Accuracy, per lookup: *recall@K*, how many of the true K closest live nodes to the target (at the
lookup's start, the seeker excluded) are among the K closest nodes the lookup reports as having
answered; *peers*, whether it found every peer announced for the info-hash (two announcers
each).

Lower bound, per lookup, computed on the network state at its start (after the warm-up, right
before the lookup is started, so each configuration's lookups get their own): the cheapest chain of
round trips any lookup strategy needs, when every query is answered at once and with unbounded
parallelism. A lookup learns of a node only from its routing table (the 2K closest entries it
starts with) or from a reply, and every query goes from the seeker itself, so a chain
``seeker -> n1 -> n2 -> ... -> h`` costs the sum of the seeker's round-trip times to n1, n2, ...
(a Dijkstra search where a node's neighbours are the K contacts it would return for the target,
dead nodes never answer, and each RTT is taken at its lowest jitter). *First peer bound*: the
cheapest chain to any live node that stores peers for the info-hash. *Completion bound*: the
time by which the K closest live nodes (those of them reachable by referrals) can all have
answered. The gap is the measured time divided by the bound. Two measured times compare with
the completion bound: *K closest answered*, when the last of the true K closest live nodes
answered the lookup (like for like with the bound; a lookup that missed one of them has none),
and *completion*, ``LookupFinished`` (when the lookup also knows it is done: a dead contact
closer than the K-th live node must have passed its short timeout first, which the bound
does not count).
"""

from __future__ import annotations

import gc
import heapq
import math
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    BenchResult,
    Table,
    check_size,
    ms,
    percentile,
    rss_mb,
    summary,
)
from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import random_id
from dhtviewer.sim import LogNormalLatency, LookupResult, SimNetwork, SimNode

NAME = "sim_lookups"
TITLE = "get_peers lookups in simulation (RTT log-normal median 80 ms, 20% dead, 1% loss)"

DEAD = 0.20
LOSS = 0.01
ONE_WAY_MEDIAN = 0.040  # RTT median 80 ms
SPACING = 0.1  # virtual seconds between lookup starts


@dataclass(frozen=True)
class Config:
    """Lookup settings of the querying nodes. ``short_timeout`` None keeps the core's default
    short-timeout behaviour (adaptive, if the core has it); a number fixes it (adaptation off);
    equal to the hard timeout it disables the short timeout."""

    label: str
    alpha: int
    short_timeout: float | None = None
    cold: bool = False
    """Skip the warm-up: the querying nodes have sent nothing yet (no RTT history)."""


CONFIGS = (
    Config("alpha 3", 3),
    Config("alpha 4", 4),
    Config("alpha 5 (default)", 5),
    Config("alpha 8", 8),
    Config("alpha 5, no short timeout", 5, 5.0),
    Config("alpha 8, no short timeout", 8, 5.0),
    Config("alpha 5, fixed 1 s short timeout", 5, 1.0),
    Config("alpha 5, cold start (first lookup ever)", 5, cold=True),
)
DEFAULT = CONFIGS[2]


@dataclass(frozen=True)
class SizeParams:
    nodes: int
    lookups: int
    hashes: int
    configs: tuple[Config, ...]


_PARAMS = {
    "tiny": SizeParams(200, 6, 2, (DEFAULT, CONFIGS[4])),
    "medium": SizeParams(3_000, 100, 10, CONFIGS),
    "full": SizeParams(10_000, 200, 20, CONFIGS),
}


# --- the scenario ---------------------------------------------------------------------------------
@dataclass
class Scenario:
    net: SimNetwork
    latency: LogNormalLatency
    plan: list[tuple[int, bytes]]  # (seeker index, info-hash)
    holders: dict[bytes, set[int]]  # info-hash -> live nodes storing its peers
    announced: dict[bytes, frozenset[Addr]]  # info-hash -> the peers announced for it
    build_seconds: float
    rss_mb: float


def build_network(nodes: int, seed: int) -> tuple[SimNetwork, LogNormalLatency]:
    """The benchmark network: ``nodes`` seeded nodes, 20% then killed, 1% loss."""
    latency = LogNormalLatency(median=ONE_WAY_MEDIAN)
    net = SimNetwork(seed, latency, loss=LOSS)
    net.add_nodes(nodes)
    net.bootstrap_all("seed")
    net.kill_random(DEAD)
    return net, latency


def build_scenario(nodes: int, lookups: int, hashes: int, seed: int = 1) -> Scenario:
    t0 = time.perf_counter()
    net, latency = build_network(nodes, seed)
    rng = random.Random(seed + 1)
    live = net.live_nodes()
    info_hashes = [random_id(rng) for _ in range(hashes)]
    announcers: set[int] = set()
    announced: dict[bytes, frozenset[Addr]] = {}
    for j, ih in enumerate(info_hashes):
        peers = []
        for a in rng.sample(live, 2):
            net.announce(a, ih, 6000 + j)
            announcers.add(a.index)
            peers.append((a.addr[0], 6000 + j))
        announced[ih] = frozenset(peers)
    pool = [sn for sn in live if sn.index not in announcers]
    seekers = rng.sample(pool, min(lookups, len(pool)))
    plan = [(sn.index, info_hashes[n % hashes]) for n, sn in enumerate(seekers)]
    holders = {ih: {sn.index for sn in live if ih in sn.dht.store} for ih in info_hashes}
    return Scenario(net, latency, plan, holders, announced, time.perf_counter() - t0, rss_mb())


def chain_bounds(net: SimNetwork, latency: LogNormalLatency, seeker: SimNode, target: bytes,
                 holders: set[int], max_pops: int = 20_000) -> dict[str, Any]:
    """Lower bounds for one lookup (see the module docstring), and the truth it is judged by:
    ``truth``, the ids of the K closest live nodes to ``target`` (the seeker excluded)."""
    k = seeker.dht.settings.k
    now = net.now
    s = seeker.index
    factor = 2.0 * (1.0 - latency.jitter)

    def rtt(j: int) -> float:
        return factor * latency.base(s, j)

    truth_nodes = net.closest_live(target, k, exclude=[seeker])
    truth = {sn.index for sn in truth_nodes}
    dist: dict[int, float] = {}
    heap: list[tuple[float, int, int]] = []
    for info in seeker.dht.table.closest(target, 2 * k, now):
        sn = net.node_at(info.addr)
        if sn is not None and sn.alive:
            heapq.heappush(heap, (rtt(sn.index), 1, sn.index))
    first: tuple[float, int] | None = None
    settled_truth: list[float] = []
    pops = 0
    while heap and pops < max_pops:
        d, hops, u = heapq.heappop(heap)
        if u in dist:
            continue
        dist[u] = d
        pops += 1
        if first is None and u in holders:
            first = (d, hops)
        if u in truth:
            settled_truth.append(d)
            if len(settled_truth) == len(truth) and first is not None:
                break
        for info in net.nodes[u].dht.table.closest(target, k, now):
            sn = net.node_at(info.addr)
            if sn is not None and sn.alive and sn.index not in dist and sn.index != s:
                heapq.heappush(heap, (d + rtt(sn.index), hops + 1, sn.index))
    return {
        "first_peer": first[0] if first else None,
        "first_peer_hops": first[1] if first else None,
        "completion": max(settled_truth) if settled_truth else None,
        "closest_reachable": len(settled_truth),
        "explored": pops,
        "truth": frozenset(sn.node_id for sn in truth_nodes),
    }


# --- running one configuration --------------------------------------------------------------------
def run_config(sc: Scenario, cfg: Config) -> list[dict[str, Any]]:
    """Give the seekers ``cfg``, warm them up (unless ``cfg.cold``), then start the planned
    lookups SPACING apart, each with its lower bound computed right before it starts;
    per-lookup figures."""
    net = sc.net
    seekers = [net.nodes[i] for i, _ in sc.plan]
    if not cfg.cold:
        # What a node has done before a user's lookup: its bootstrap lookup (find_node of its
        # own id), which gives it RTT samples and a first taste of which contacts are dead.
        warm = [
            net.start_lookup(sn, sn.node_id, "find_node", **lookup_options(sn.dht, cfg))
            for sn in seekers
        ]
        for h in warm:
            net.wait(h, max_time=300.0)
    handles = []
    bounds = []
    t0 = net.now
    for n, (i, ih) in enumerate(sc.plan):
        net.run_until(t0 + n * SPACING)
        sn = net.nodes[i]
        bounds.append(chain_bounds(net, sc.latency, sn, ih, sc.holders[ih]))
        handles.append(net.start_lookup(sn, ih, **lookup_options(sn.dht, cfg)))
    rows = []
    for h, b, (_, ih) in zip(handles, bounds, sc.plan, strict=True):
        row = lookup_figures(net.wait(h, max_time=300.0), b["truth"], sc.announced[ih])
        row["bound"] = {k: v for k, v in b.items() if k != "truth"}
        rows.append(row)
    return rows


def lookup_options(dht: DhtNode, cfg: Config) -> dict[str, Any]:
    """``cfg``'s lookup settings as per-lookup options of the core (``alpha``, and a fixed
    short timeout instead of the adaptive one); the nodes' own settings stay as built."""
    hard = dht.settings.hard_timeout
    fixed = None if cfg.short_timeout is None else min(cfg.short_timeout, hard)
    return {"alpha": cfg.alpha, "short_timeout": fixed}


def lookup_figures(r: LookupResult, truth: frozenset[bytes],
                   announced: frozenset[Addr]) -> dict[str, Any]:
    """One lookup's figures; ``truth``: the ids of the K closest live nodes at its start."""
    start = r.finished.at - r.duration
    depth_of: dict[bytes | None, int] = {}
    max_depth = 0
    answered = 0
    first: ev.PeersFound | None = None
    truth_answered: dict[bytes, float] = {}
    for e in r.events:
        if isinstance(e, ev.LookupQuerySent):
            depth_of[e.node_id] = e.depth
            max_depth = max(max_depth, e.depth)
        elif isinstance(e, ev.LookupResponse):
            answered += 1
            if e.node_id in truth:
                truth_answered.setdefault(e.node_id, e.at)
        elif isinstance(e, ev.PeersFound) and first is None and e.peers:
            first = e
    all_answered = len(truth_answered) == len(truth)
    return {
        "first_peer": first.at - start if first else None,
        "first_peer_hops": depth_of.get(first.node_id, 0) + 1 if first else None,
        "k_closest": max(truth_answered.values()) - start if all_answered else None,
        "completion": r.duration,
        "queries": r.queries,
        "rounds": max_depth + 1,
        "unanswered": r.queries - answered,
        "peers": len(r.peers),
        "all_peers": announced <= set(r.peers),
        "recall": len(truth & set(r.closest_ids)),
        "truth_answered": len(truth_answered),
    }


_SCENARIO: Scenario | None = None  # inherited by forked children


def _child(conn: Any, cfg: Config) -> None:
    assert _SCENARIO is not None
    t0 = time.perf_counter()
    try:
        res = run_config(_SCENARIO, cfg)
        conn.send(("ok", res, time.perf_counter() - t0, rss_mb()))
    except BaseException as err:  # report, the parent raises
        conn.send(("error", repr(err), 0.0, 0.0))
    finally:
        conn.close()


def run_configs(scenario: Scenario, configs: Sequence[Config], fork: bool,
                rebuild: Any = None) -> dict[str, dict[str, Any]]:
    """Per config: {"lookups": [...], "wall": s}. Forked children run two at a time; without
    fork, ``rebuild()`` makes a fresh identical scenario for every config but the first."""
    out: dict[str, dict[str, Any]] = {}
    if not fork:
        for n, cfg in enumerate(configs):
            sc = scenario if n == 0 else rebuild()
            t0 = time.perf_counter()
            out[cfg.label] = {"lookups": run_config(sc, cfg),
                              "wall": time.perf_counter() - t0}
        return out
    global _SCENARIO
    _SCENARIO = scenario
    gc.collect()
    gc.freeze()  # children's garbage collections must not touch (and copy) the parent's pages
    ctx = multiprocessing.get_context("fork")
    parallel = max(1, min(2, os.cpu_count() or 1))
    pending = list(configs)
    running: list[tuple[Config, Any, Any]] = []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                cfg = pending.pop(0)
                parent, child = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_child, args=(child, cfg))
                p.start()
                child.close()
                running.append((cfg, p, parent))
            cfg, p, conn = running.pop(0)
            status, res, wall, child_rss = conn.recv()
            p.join()
            if status != "ok":
                raise RuntimeError(f"{cfg.label}: {res}")
            out[cfg.label] = {"lookups": res, "wall": wall, "child_rss_mb": child_rss}
    finally:
        for _, p, _ in running:
            p.kill()
        gc.unfreeze()
        _SCENARIO = None
    return out


# --- reporting ------------------------------------------------------------------------------------
def _values(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in rows if r[key] is not None]


def _bounds(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [r["bound"][key] for r in rows if r["bound"][key] is not None]


def _gap(rows: list[dict[str, Any]], key: str, bound_key: str | None = None) -> float | None:
    """Median over lookups of measured / bound."""
    bk = bound_key or key
    ratios = [r[key] / r["bound"][bk] for r in rows if r[key] is not None and r["bound"][bk]]
    return statistics.median(ratios) if ratios else None


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    recall = [float(r["recall"]) for r in rows]
    return {
        "lookups": len(rows),
        "found": sum(1 for r in rows if r["peers"]),
        "all_peers": sum(1 for r in rows if r["all_peers"]),
        "recall_p50": percentile(recall, 50),
        "recall_p5": percentile(recall, 5),
        "recall_min": min(recall) if recall else math.nan,
        "first_peer": summary(_values(rows, "first_peer")),
        "k_closest": summary(_values(rows, "k_closest")),
        "completion": summary(_values(rows, "completion")),
        "queries": summary(_values(rows, "queries")),
        "rounds": summary(_values(rows, "rounds")),
        "unanswered": summary(_values(rows, "unanswered")),
        "first_peer_hops": summary(_values(rows, "first_peer_hops")),
        "gap_first_peer": _gap(rows, "first_peer"),
        "gap_k_closest": _gap(rows, "k_closest", "completion"),
        "gap_completion": _gap(rows, "completion"),
        "bound_first_peer": summary(_bounds(rows, "first_peer")),
        "bound_first_peer_hops": summary(_bounds(rows, "first_peer_hops")),
        "bound_completion": summary(_bounds(rows, "completion")),
    }


def accuracy_table(title: str, agg: dict[str, dict[str, Any]]) -> Table:
    t = Table(title, ["config", "recall@K p50", "p5", "min", "found a peer", "found all peers",
                      "K closest answered ms p50", "p95", "x bound"])
    for label, a in agg.items():
        kc = a["k_closest"]
        t.add(label, a["recall_p50"], a["recall_p5"], a["recall_min"],
              f"{a['found']}/{a['lookups']}", f"{a['all_peers']}/{a['lookups']}",
              ms(kc["median"]), ms(kc["p95"]), a["gap_k_closest"])
    t.notes.append("recall@K: of the true K closest live nodes at the lookup's start, how many "
                   "are among the K closest the lookup reports as answered; found all peers: "
                   "both announced peers of the info-hash; K closest answered: when the last of "
                   "the true K closest live nodes answered (lookups that missed one are left "
                   "out); x bound: median of that time over the completion bound")
    return t


def results_table(title: str, agg: dict[str, dict[str, Any]]) -> Table:
    t = Table(title, ["config", "found", "1st peer ms p50", "p95", "p99", "done ms p50", "p95",
                      "p99", "queries p50", "p95", "unanswered p50", "rounds p50", "max",
                      "x bound 1st", "x bound done"])
    for label, a in agg.items():
        fp, c, q, rd = a["first_peer"], a["completion"], a["queries"], a["rounds"]
        t.add(label, f"{a['found']}/{a['lookups']}", ms(fp["median"]), ms(fp["p95"]),
              ms(fp["p99"]), ms(c["median"]), ms(c["p95"]), ms(c["p99"]), q["median"], q["p95"],
              a["unanswered"]["median"], rd["median"], rd["max"], a["gap_first_peer"],
              a["gap_completion"])
    t.notes.append("done: LookupFinished; x bound: median over lookups of (measured time / that "
                   "lookup's lower bound); unanswered: queries with no reply before the lookup "
                   "ended (dead or lost)")
    return t


def bounds_table(title: str, a: dict[str, Any]) -> Table:
    t = Table(title, ["lower bound", "p50", "p95", "p99", "chain hops p50", "max"])
    fp, hops, done = a["bound_first_peer"], a["bound_first_peer_hops"], a["bound_completion"]
    t.add("first peer, ms", ms(fp["median"]), ms(fp["p95"]), ms(fp["p99"]), hops["median"],
          hops["max"])
    t.add("completion, ms", ms(done["median"]), ms(done["p95"]), ms(done["p99"]), None, None)
    t.notes.append("computed per lookup right before it starts, after the warm-up, on the "
                   "network state of that moment")
    return t


def targets_table(a: dict[str, Any], nodes: int) -> Table:
    t = Table(f"Targets (default settings, {nodes:,} nodes)", ["target", "measured", "met"])
    fp, q = a["first_peer"], a["queries"]
    checks: list[tuple[str, Any, bool]] = [
        ("median recall@K = K (8/8)", a["recall_p50"], a["recall_p50"] >= 8),
        ("recall@K p5 >= 7/8", a["recall_p5"], a["recall_p5"] >= 7),
        ("every lookup finds the peers", f"{a['all_peers']}/{a['lookups']}",
         a["all_peers"] == a["lookups"]),
        ("time to first peer <= 1.3x its lower bound (median)", a["gap_first_peer"],
         _le(a["gap_first_peer"], 1.3)),
        ("completion <= 2.0x its lower bound (median)", a["gap_completion"],
         _le(a["gap_completion"], 2.0)),
        ("median queries per lookup <= 25", q["median"], _le(q["median"], 25.0)),
        ("time to first peer median <= 250 ms (issue 5)", ms(fp["median"]),
         _le(ms(fp["median"]), 250.0)),
        ("completion p95 <= 1,500 ms (issue 5)", ms(a["completion"]["p95"]),
         _le(ms(a["completion"]["p95"]), 1500.0)),
    ]
    for label, value, met in checks:
        t.add(label, value, met)
    return t


def _le(value: float | None, limit: float) -> bool:
    return value is not None and not math.isnan(value) and value <= limit


def measure(nodes: int, lookups: int, hashes: int, configs: Sequence[Config], fork: bool,
            seed: int) -> dict[str, Any]:
    """Build the scenario and run every config on it; figures per config and the bounds."""
    scenario = build_scenario(nodes, lookups, hashes, seed)

    def rebuild() -> Scenario:
        return build_scenario(nodes, lookups, hashes, seed)

    t0 = time.perf_counter()
    results = run_configs(scenario, configs, fork, rebuild)
    agg = {label: aggregate(r["lookups"]) for label, r in results.items()}
    return {
        "nodes": nodes,
        "lookups": lookups,
        "info_hashes": hashes,
        "build_seconds": scenario.build_seconds,
        "rss_mb_after_build": scenario.rss_mb,
        "lookup_wall_seconds": time.perf_counter() - t0,
        "configs": {label: {**agg[label], "wall": results[label]["wall"],
                            "per_lookup": results[label]["lookups"]} for label in agg},
        "aggregate": agg,
    }


def report(res: dict[str, Any], size: str, name: str, targets: bool) -> BenchResult:
    n, lookups = res["nodes"], res["lookups"]
    agg = res["aggregate"]
    tables = [
        accuracy_table(f"Accuracy: {n:,} nodes, {lookups} get_peers lookups", agg),
        results_table(f"Speed: {n:,} nodes, {lookups} get_peers lookups", agg),
    ]
    if DEFAULT.label in agg:
        tables.append(bounds_table(f"Lower bound for the same {lookups} lookups ({n:,} nodes, "
                                   f"{DEFAULT.label})", agg[DEFAULT.label]))
    if targets and DEFAULT.label in res["aggregate"]:
        tables.append(targets_table(res["aggregate"][DEFAULT.label], n))
    notes = [
        "routing tables seeded from global knowledge (bootstrap_all(mode='seed')): each node's "
        "table is filled from the list of all nodes, as a long-running node's would be; no "
        "datagram built them",
        f"{n:,} nodes: network built in {res['build_seconds']:.0f} s, "
        f"{res['rss_mb_after_build']:.0f} MB RSS",
        "no short timeout = short timeout equal to the hard timeout (5 s), adaptation off; "
        "fixed 1 s = the short timeout before it became adaptive; cold start = no bootstrap "
        "lookup before (no RTT samples yet)",
    ]
    data = {k: v for k, v in res.items() if k != "aggregate"}
    return BenchResult(name, size, tables, data, notes)


def can_fork(size: str) -> bool:
    # tiny runs inside the test suite, whose process may hold threads: rebuild instead.
    return size != "tiny" and "fork" in multiprocessing.get_all_start_methods()


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    res = measure(p.nodes, p.lookups, p.hashes, p.configs, can_fork(size), seed=1)
    return report(res, size, NAME, targets=p.nodes >= 10_000)
