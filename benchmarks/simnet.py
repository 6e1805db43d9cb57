"""The simulated Mainline (``dhtviewer simnet``) at 1,000,000 nodes, realistic profile, over
real UDP: what it costs to build, how fast and how accurately it serves, and lookups by our node
and by libtorrent side by side on the same network.

Setup: ``dhtviewer simnet`` runs as a child process (tests/support/simnet_proc.py); the figures
of the build come from its JSON line and ``/stats``.

- **Serving**: this process sends find_node and get_peers queries (8 templates per source, 64
  source IPs on 127.0.140.x) to random *answering* simulated nodes (addresses from
  ``/closest``), paced at a fixed rate for a few seconds per point. Answered/s is counted by
  this client (a reply arrives after the node's simulated round trip, median 80 ms); the
  server's figures per point come from ``/stats``: queries it handled per second, and the
  lateness of its replies (when a reply left, minus when it was due: kernel arrival time of the
  query plus the pair's simulated RTT), p50/p99/max of the replies sent during that point alone
  (the difference of the lateness histograms before and after it; bucket upper edges, 12%
  wide). CPU: the simnet's processes' user+system time over the point (/proc: the coordinator
  and its serving processes), and this client's; and the machine's load average.
- **Lookups**: our ``DhtSession`` (127.0.141.1) and one libtorrent node (127.0.142.1) join the
  same simnet through its routers; for each of H seeded swarms (the most popular first), ours
  looks it up, then libtorrent does. Per lookup: time to first peer, completion, queries sent,
  peers found, recall@8 (share of the true 8 closest answering nodes, ``/closest``, among the
  8 closest the lookup ended with). libtorrent's figures: as in ``benchmarks/side_by_side.py``
  (its DHT log for the traversal's start, end and the nodes that responded, its session
  counter for queries). libtorrent's recall uses the 8 closest nodes that responded to its
  traversal (where it would announce).
- **Size estimate**: our per-lookup estimate (``ui.traffic_stats.estimate_network_size`` over
  the closest nodes) against ``/size``: the estimator counts nodes that answer.
- **Eclipse**: a second network of the same size with the ``eclipse`` scenario on E seeded
  swarms (16 Sybils of one /24 around each); our node looks each up twice, with the subnet
  rule applied to loopback (``restrict_local_subnets``, as a client joined to the simulated
  Mainline runs) and without it: Sybils among the 8 closest it ends with, how many of the 8
  closest honest nodes (``/closest``) it reached, and whether it found the swarm's peers.
"""

from __future__ import annotations

import asyncio
import os
import random
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    BenchResult,
    Table,
    check_size,
    cpu_seconds,
    cpu_ticks,
    load_average,
    ms,
    percentile,
    raise_fd_limit,
    ratio,
    steal_percent,
    summary,
)
from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.messages import Addr, FindNodeQuery, GetPeersQuery
from dhtviewer.simnet.lateness import LatenessHistogram
from tests.support.simnet_proc import SimnetProcess

NAME = "simnet"
TITLE = "Simulated Mainline: build, serving rate and reply accuracy, lookups side by side"

CLIENT_BASE = "127.0.140"
OUR_IP = "127.0.141.1"
LT_IP = "127.0.142.1"
_TID_MARK = b"1:t2:"
LOST_AFTER = 2.0


@dataclass(frozen=True)
class _Params:
    nodes: int
    rates: tuple[float, ...]
    seconds: float
    targets: int
    lookups: int
    lt_timeout: float


    eclipsed: int


_PARAMS = {
    "tiny": _Params(20_000, (1000.0,), 1.0, 2000, 2, 10.0, 1),
    "medium": _Params(200_000, (5000.0, 10000.0), 3.0, 10_000, 8, 20.0, 3),
    "full": _Params(1_000_000, (2500.0, 5000.0, 10000.0, 15000.0, 20000.0, 25000.0), 6.0,
                    20_000, 20, 30.0, 5),
}
ECLIPSE_IP = {True: "127.0.143.1", False: "127.0.143.2"}


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children, the serving processes
    (Linux /proc)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# --- serving --------------------------------------------------------------------------------------
def answering_nodes(sn: SimnetProcess, count: int, rng: random.Random) -> list[Addr]:
    """``count`` addresses of nodes that answer, from ``/closest`` around random targets."""
    out: dict[Addr, None] = {}
    while len(out) < count:
        target = rng.randbytes(20).hex()
        for node in sn.get(f"/closest?target={target}&k=1000")["nodes"]:
            if not node["sybil"] and not node["member"]:
                host, port = node["addr"].rsplit(":", 1)
                out[(host, int(port))] = None
    return list(out)[:count]


class PacedClient:
    """Source sockets on 127.0.140.x sending pre-built queries to random targets at a fixed
    rate; counts answers and the round trips it saw. The queries are BEP 43 read-only, so the
    sources do not join the network as members (which would draw background queries)."""

    def __init__(self, targets: list[Addr], sources: int = 64, seed: int = 5) -> None:
        raise_fd_limit(sources + 256)
        rng = random.Random(seed)
        self.rng = rng
        self.targets = targets
        self.socks: list[socket.socket] = []
        self.templates: list[list[tuple[bytes, bytes]]] = []
        for i in range(sources):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            s.bind((f"{CLIENT_BASE}.{1 + i}", 0))
            s.setblocking(False)
            self.socks.append(s)
            sid = rng.randbytes(20)
            variants = []
            for v in range(8):
                q: Any
                if v % 2:
                    q = FindNodeQuery(b"\0\0", sid, target=rng.randbytes(20),
                                      version=b"BN\0\1", read_only=True)
                else:
                    q = GetPeersQuery(b"\0\0", sid, info_hash=rng.randbytes(20),
                                      version=b"BN\0\1", read_only=True)
                wire = krpc.encode(q)
                cut = wire.index(_TID_MARK + b"\0\0") + len(_TID_MARK)
                variants.append((wire[:cut], wire[cut + 2:]))
            self.templates.append(variants)
        self.sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            self.sel.register(s, selectors.EVENT_READ, i)

    def close(self) -> None:
        self.sel.close()
        for s in self.socks:
            s.close()

    def run(self, rate: float, duration: float) -> dict[str, Any]:
        """Send at ``rate`` queries/s for ``duration`` s (bounded: at most rate * duration
        queries), then wait up to ``LOST_AFTER`` for the last replies."""
        socks, templates, targets = self.socks, self.templates, self.targets
        m, nt = len(socks), len(targets)
        rng = self.rng
        seq = [0] * m
        inflight: dict[tuple[int, bytes], float] = {}
        rtts: list[float] = []
        sent = send_fail = errors = 0
        clock = time.perf_counter
        start = clock()
        end = start + duration
        budget = int(rate * duration)
        interval = 1.0 / rate
        next_send = start
        rr = 0
        while True:
            now = clock()
            if now >= end + LOST_AFTER or (now >= end and not inflight):
                break
            burst = 0
            while sent + send_fail < budget and next_send <= now and burst < 64:
                burst += 1
                i = rr
                rr = rr + 1 if rr + 1 < m else 0
                n = seq[i] = (seq[i] + 1) & 0xFFFF
                tid = n.to_bytes(2, "big")
                prefix, suffix = templates[i][n & 7]
                try:
                    socks[i].sendto(prefix + tid + suffix, targets[rng.randrange(nt)])
                    inflight[(i, tid)] = clock()
                    sent += 1
                except OSError:
                    send_fail += 1
                next_send += interval
            wait = max(0.0, min(0.01, next_send - clock())) if now < end else 0.01
            for key, _ in self.sel.select(wait):
                s, i = key.fileobj, key.data
                while True:
                    try:
                        data = s.recv(4096)  # type: ignore[union-attr]
                    except OSError:
                        break
                    p = data.rfind(_TID_MARK)
                    t0 = inflight.pop((i, data[p + 5:p + 7]), None)
                    if t0 is None:
                        continue
                    if data[-4:] == b"1:re":
                        rtts.append(clock() - t0)
                    else:
                        errors += 1
        elapsed = min(clock(), end) - start
        return {"seconds": elapsed, "sent": sent, "answered": len(rtts), "errors": errors,
                "unanswered": len(inflight), "send_failures": send_fail,
                "offered_per_s": sent / elapsed if elapsed > 0 else 0.0,
                "answered_per_s": len(rtts) / elapsed if elapsed > 0 else 0.0,
                "rtt": summary(rtts)}


def serve_point(sn: SimnetProcess, client: PacedClient, rate: float,
                seconds: float) -> dict[str, Any]:
    assert sn.proc is not None
    pid = sn.proc.pid
    s0 = sn.get("/stats")
    cpu0, mine0, ticks0, t0 = proc_cpu_seconds(pid), cpu_seconds(), cpu_ticks(), time.time()
    r = client.run(rate, seconds)
    wall = time.time() - t0
    cpu1, mine1, ticks1 = proc_cpu_seconds(pid), cpu_seconds(), cpu_ticks()
    s1 = sn.get("/stats")
    c0, c1 = s0["counters"], s1["counters"]
    # This point's replies only: the histogram now minus the histogram before it.
    late = LatenessHistogram.from_json(s1["lateness"]).since(
        LatenessHistogram.from_json(s0["lateness"])).summary_ms()
    r.update({
        "rate": rate,
        "server_queries_per_s": (c1["queries"] - c0["queries"]) / r["seconds"],
        "server_answered_per_s": (c1["answered"] - c0["answered"]) / r["seconds"],
        "late_p50_ms": late["p50"], "late_p99_ms": late["p99"], "late_max_ms": late["max"],
        "late_over_5ms": late["over_5ms_total"],
        "replies_measured": late["measured_total"],
        "simnet_cpu_percent": 100.0 * (cpu1 - cpu0) / wall,
        "client_cpu_percent": 100.0 * (mine1 - mine0) / wall,
        "steal_percent": steal_percent(ticks0, ticks1),
        "load_average": load_average(),
    })
    return r


# --- lookups --------------------------------------------------------------------------------------
def recall(found: list[bytes], truth: list[bytes]) -> float:
    return len(set(found[:8]) & set(truth[:8])) / max(1, min(8, len(truth)))


async def our_lookups(sn: SimnetProcess, hashes: list[bytes], timeout: float,
                      truth: dict[bytes, list[bytes]]) -> tuple[list[dict[str, Any]], float]:
    from dhtviewer.net.session import DhtSession
    from dhtviewer.ui.traffic_stats import estimate_network_size

    session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(3))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await session.start(bootstrap=sn.routers, timeout=30)
    boot = loop.time() - t0
    out = []
    try:
        await asyncio.sleep(1.0)  # let the bucket refreshes after the bootstrap settle
        for ih in hashes:
            handle = session.start_find_peers(ih)
            result = await handle.result(timeout)
            started = next(e.at for e in handle.events if isinstance(e, ev.LookupStarted))
            first = next((e.at for e in handle.events
                          if isinstance(e, ev.PeersFound) and e.peers), None)
            closest = [i for i, _ in result.closest]
            out.append({
                "first_peer": None if first is None else first - started,
                "completion": None if result.cancelled else result.elapsed,
                "queries": result.queried,
                "peers": len(result.peers),
                "recall": recall(closest, truth[ih]),
                "size_estimate": estimate_network_size(ih, closest),
            })
    finally:
        await session.stop()
    return out, boot


def libtorrent_lookups(sn: SimnetProcess, hashes: list[bytes], timeout: float,
                       truth: dict[bytes, list[bytes]]) -> list[dict[str, Any]]:
    from benchmarks.side_by_side import forget_alerts, libtorrent_lookup
    from tests.support.libtorrent_net import LibtorrentNet

    out = []
    with LibtorrentNet(n=1, base=LT_IP, seed=4) as net:
        for router in sn.routers:
            net.add_node(0, router)
        deadline = time.monotonic() + 20
        while net.routing_table_sizes()[0] < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # its own bootstrap traversal
        for ih in hashes:
            forget_alerts(net)
            r = libtorrent_lookup(net, 0, ih, timeout, responders=True)
            ids = sorted(r.pop("responder_ids"), key=lambda x: int(x, 16) ^ int.from_bytes(ih,
                                                                                        "big"))
            r["recall"] = recall([bytes.fromhex(x) for x in ids], truth[ih])
            out.append(r)
    return out


async def eclipse_lookups(sn: SimnetProcess, hashes: list[bytes], restricted: bool,
                          timeout: float) -> list[dict[str, Any]]:
    from dhtviewer.dht.settings import DhtSettings
    from dhtviewer.net.session import DhtSession

    session = DhtSession(DhtSettings(restrict_local_subnets=restricted),
                         bind=(ECLIPSE_IP[restricted], 0), rng=random.Random(6))
    await session.start(bootstrap=sn.routers, timeout=30)
    out = []
    try:
        await asyncio.sleep(1.0)
        for ih in hashes:
            truth = sn.get(f"/closest?target={ih.hex()}&k=40")["nodes"]
            sybils = {n["id"] for n in truth if n["sybil"]}
            honest = [n["id"] for n in truth if not n["sybil"]][:8]
            true_peers = set(sn.get(f"/swarm?info_hash={ih.hex()}")["peers"])
            result = await session.find_peers(ih, timeout=timeout)
            closest = [i.hex() for i, _ in result.closest]
            peers = {f"{h}:{p}" for h, p in result.peers}
            out.append({"sybils": sum(1 for i in closest if i in sybils),
                        "honest": len(set(closest) & set(honest)),
                        "peers": len(peers & true_peers), "fake": len(peers - true_peers)})
    finally:
        await session.stop()
    return out


def eclipse(p: _Params) -> tuple[Table, dict[str, Any]]:
    """Our lookups with and without the subnet rule on loopback, on eclipsed swarms."""
    from dhtviewer.simnet.swarms import seeded_info_hashes

    seed = 17
    hashes = [h.tobytes() for h in seeded_info_hashes(seed, p.eclipsed)]
    args = ["--nodes", str(p.nodes), "--seed", str(seed)]
    for ih in hashes:
        args += ["--scenario", f"eclipse:{ih.hex()}"]
    with SimnetProcess(args) as sn:
        runs = {r: asyncio.run(eclipse_lookups(sn, hashes, r, p.lt_timeout))
                for r in (True, False)}
    table = Table(
        f"Eclipse: {p.eclipsed} seeded swarms each surrounded by 16 Sybils of one /24 "
        f"({p.nodes:,} nodes, realistic); our lookup with the subnet rule on loopback and "
        "without it",
        ["our node", "Sybils among its 8 closest (mean)", "of the 8 closest honest reached "
         "(mean)", "lookups that found the swarm's peers", "fake peers"],
    )
    for restricted, rows in runs.items():
        n = max(1, len(rows))
        table.add("restrict_local_subnets on" if restricted else "off (loopback exempt)",
                  sum(r["sybils"] for r in rows) / n, sum(r["honest"] for r in rows) / n,
                  f"{sum(1 for r in rows if r['peers'])}/{len(rows)}",
                  sum(r["fake"] for r in rows))
    table.notes.append("the Sybils answer every get_peers with each other and no peers; honest "
                       "nodes near the target list them (they are its nearest neighbours), so "
                       "some honest nodes hide behind them in every answer")
    return table, {"restricted": runs[True], "unrestricted": runs[False]}


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    data: dict[str, Any] = {"params": p.__dict__}
    with SimnetProcess(["--nodes", str(p.nodes), "--seed", "13"]) as sn:
        doc = sn.doc
        stats = sn.get("/stats")
        build = Table(
            f"Building {p.nodes:,} simulated nodes (realistic profile)",
            ["measure", "value"],
        )
        build.add("build time, s (process start to the JSON line)", doc["build_s"])
        build.add("of which building the network, s", doc["network_s"])
        build.add("RSS of the coordinator at the JSON line, MB", doc["rss_mb"])
        build.add("its peak while building, MB", doc.get("peak_rss_mb"))
        build.add("memory of all its processes (PSS), MB", doc["pss_mb"])
        build.add("serving processes", doc["workers"])
        build.add("answering nodes", stats["responsive"])
        build.add("seeded swarms", doc["swarms"])
        build.add("addresses", doc["addresses"])
        data["build"] = {"json_line": doc, "stats": stats}
        # --- serving ---
        rng = random.Random(9)
        targets = answering_nodes(sn, p.targets, rng)
        serving = Table(
            f"Serving, paced queries to {len(targets):,} random answering nodes "
            f"(64 source IPs, find_node/get_peers, {p.seconds:g} s per point)",
            ["offered/s", "served/s", "answered/s (client)", "RTT p50 ms", "late p50 ms",
             "late p99 ms", "late > 5 ms %", "late max ms", "unanswered %", "simnet CPU %",
             "client CPU %", "steal %", "load"],
        )
        client = PacedClient(targets)
        try:
            client.run(min(p.rates), 0.5)  # warm-up
            points = [serve_point(sn, client, rate, p.seconds) for rate in p.rates]
        finally:
            client.close()
        for r in points:
            serving.add(r["offered_per_s"], r["server_queries_per_s"], r["answered_per_s"],
                        ms(r["rtt"]["median"]), r["late_p50_ms"], r["late_p99_ms"],
                        100.0 * r["late_over_5ms"] / max(1, r["replies_measured"]),
                        r["late_max_ms"], 100.0 * r["unanswered"] / max(1, r["sent"]),
                        r["simnet_cpu_percent"], r["client_cpu_percent"], r["steal_percent"],
                        r["load_average"])
        # The target holds where at most 1% of the replies left more than 5 ms off (exact,
        # unlike the p99 column, which is a histogram bucket's upper edge).
        ok = [r for r in points
              if r["replies_measured"] and r["late_over_5ms"] <= 0.01 * r["replies_measured"]]
        best = max(ok, key=lambda r: r["server_queries_per_s"]) if ok else None
        serving.notes.append(
            "target: >= 10,000 queries/s served with replies leaving within 5 ms (p99) of "
            "their scheduled time; best here: "
            + (f"{best['server_queries_per_s']:,.0f}/s with "
               f"{100.0 * best['late_over_5ms'] / best['replies_measured']:.2f}% over 5 ms"
               if best else "none within 5 ms")
        )
        serving.notes.append(
            "late: how far from its due time (query arrival + the pair's RTT) each reply left; "
            "p50/p99/max are histogram bucket upper edges (12% wide), > 5 ms % is exact. The "
            "load is the machine's 1-minute average: other jobs take CPU time from the simnet")
        serving.notes.append(
            "served/s: queries the simnet handled (answered, or silent: dead/away nodes are "
            "never targeted here, so the gap to answered/s is the 1% loss and misbehaving nodes)"
        )
        data["serving"] = points
        # --- lookups ---
        hashes = [bytes.fromhex(s["info_hash"])
                  for s in sn.get(f"/swarms?limit={p.lookups}")["swarms"]]
        truth = {ih: [bytes.fromhex(n["id"]) for n in
                      sn.get(f"/closest?target={ih.hex()}&k=8")["nodes"]] for ih in hashes}
        ours, boot = asyncio.run(our_lookups(sn, hashes, p.lt_timeout, truth))
        lts = libtorrent_lookups(sn, hashes, p.lt_timeout, truth)
        size_doc = sn.get("/size")
        final = sn.get("/stats")
    data.update({"ours": ours, "libtorrent": lts, "our_bootstrap_s": boot, "size": size_doc,
                 "final_stats": final})

    def s(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
        return summary([r[key] for r in rows if r.get(key) is not None])

    side = Table(
        f"{len(hashes)} get_peers lookups of seeded swarms, ours then libtorrent's, "
        f"same network ({p.nodes:,} nodes, realistic)",
        ["measure", "ours p50", "ours p95", "libtorrent p50", "libtorrent p95",
         "ours / libtorrent (p50)"],
    )
    for label, key, is_time in [("time to first peer, ms", "first_peer", True),
                                ("time to completion, ms", "completion", True),
                                ("queries sent per lookup", "queries", False),
                                ("peers found", "peers", False),
                                ("recall@8 (true 8 closest reached)", "recall", False)]:
        a, b = s(ours, key), s(lts, key)
        conv = ms if is_time else (lambda x: x)
        side.add(label, conv(a["median"]), conv(a["p95"]), conv(b["median"]), conv(b["p95"]),
                 ratio(a["median"], b["median"]))
    side.add("lookups that found peers", f"{sum(1 for r in ours if r['peers'])}/{len(ours)}",
             None, f"{sum(1 for r in lts if r['peers'])}/{len(lts)}", None, None)
    side.add("lookups that completed", f"{sum(1 for r in ours if r['completion'])}/{len(ours)}",
             None, f"{sum(1 for r in lts if r['completed'])}/{len(lts)}", None, None)
    side.notes.append(
        "recall@8: mean share is shown as p50/p95 of per-lookup shares; libtorrent's from the "
        "8 closest nodes that responded to its traversal (its DHT log)"
    )
    estimates = [r["size_estimate"] for r in ours if r["size_estimate"]]
    size_t = Table("Network size: our estimate against the ground truth (/size)",
                   ["measure", "value"])
    size_t.add("nodes (all)", size_doc["nodes"])
    size_t.add("answering nodes (what lookups can see)", size_doc["responsive"])
    size_t.add("our estimate, median over lookups", percentile(estimates, 50))
    size_t.add("our estimate, quartiles",
               f"{percentile(estimates, 25):,.0f} - {percentile(estimates, 75):,.0f}")
    size_t.add("median estimate / answering nodes", ratio(percentile(estimates, 50),
                                                          size_doc["responsive"]))
    size_t.notes.append("estimate per lookup: mean of i * 2^160 / d_i over its K closest "
                        "(ui/traffic_stats.py), which overestimates (see protocol notes)")
    notes = [f"our node bootstrapped in {boot * 1000:.0f} ms; simnet counters at the end: "
             f"{final['counters']['queries']:,} queries, {final['counters']['malformed']} "
             f"malformed, {final['server']['non_loopback']} non-loopback dropped; "
             f"members {final['members']}"]
    eclipse_t, data["eclipse"] = eclipse(p)
    return BenchResult(NAME, size, [build, serving, side, size_t, eclipse_t], data, notes)
