"""BEP 44, 51 and 33 on the simulated Mainline (``dhtviewer simnet``, realistic profile, over
real UDP): put/get latency, the crawler's rate and yield, the scrape estimate's error, and what
the Activity view's database reads cost.

- **Put/get**: our ``DhtSession`` (127.0.143.1) joins the simnet through its routers and puts P
  immutable items (distinct values) and P mutable ones (one key, a salt per item), each followed
  by a get of it. Per operation: wall time from the call to its result (lookup plus, for a put,
  the put round), the nodes that stored it (of the K = 8 closest that gave a token), whether
  the get returned exactly the value put. Simulated nodes of libtorrent and mldht speak BEP 44
  (the others answer 204), with our server's rules (``simnet/items.py``).
- **Crawl**: a BEP 51 crawl at R queries/s for D seconds on a smaller simnet (20,000 to 50,000
  nodes, one seeded swarm per two nodes, each stored by its 8 closest: a crawl of a few minutes
  then meets the same info-hashes again, which the estimate needs; on a million nodes it would
  see each once), samples kept in SQLite as the GUI does.
  Figures: queries answered per second (any outcome), samples and new info-hashes per minute,
  distinct info-hashes seen, and the Chao2 estimate of how many exist against the true count of
  seeded swarms (``/swarms``).
- **Scrape**: S seeded swarms, the most popular first, each scraped (get_peers lookup, then
  BEP 33 filters from the 8 closest); estimated seeds and downloaders against the simnet's true
  counts (``/swarm``: distinct IP addresses, as the filters count them).
- **Database reads**: ``ui.crawl_control.read_snapshot`` (totals, Chao2, top 100, 200 nodes,
  per-minute rates: what the Activity view reads every 3 s, in a worker thread) on a synthetic
  sample database of H info-hashes seen at 4 nodes each.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchResult, Table, check_size, ms, percentile, summary
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.items import encode_value
from dhtviewer.net.sample_store import SampleStore
from dhtviewer.net.session import DhtSession
from dhtviewer.ui.crawl_control import read_snapshot
from tests.support.simnet_proc import SimnetProcess

NAME = "dht_extensions"
TITLE = "BEP 44 put/get latency, BEP 51 crawl rate, BEP 33 scrape error on the simulated Mainline"

OUR_IP = "127.0.143.1"
CRAWL_IP = "127.0.143.2"
OP_TIMEOUT = 30.0
SEED = bytes(range(32))


@dataclass(frozen=True)
class _Params:
    nodes: int
    puts: int
    crawl_nodes: int
    crawl_seconds: float
    crawl_rate: float
    scrapes: int
    db_info_hashes: int


_PARAMS = {
    "tiny": _Params(20_000, 2, 20_000, 8.0, 50.0, 2, 2_000),
    "medium": _Params(200_000, 10, 20_000, 90.0, 50.0, 10, 50_000),
    "full": _Params(1_000_000, 30, 50_000, 300.0, 50.0, 30, 200_000),
}


# --- put / get ------------------------------------------------------------------------------------
async def put_get(sn: SimnetProcess, count: int) -> dict[str, Any]:
    session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(3))
    t0 = time.perf_counter()
    await session.start(bootstrap=sn.routers, timeout=60)
    boot = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    try:
        for i in range(count):
            for kind in ("immutable", "mutable"):
                value = f"dhtviewer bench {kind} {i} {time.time_ns()}".encode()
                salt = f"item-{i}".encode() if kind == "mutable" else b""
                req = (PutRequest(value) if kind == "immutable"
                       else PutRequest(value, seed=SEED, salt=salt))
                t = time.perf_counter()
                put = await session.put_item(req, timeout=OP_TIMEOUT)
                put_s = time.perf_counter() - t
                t = time.perf_counter()
                got = await session.get_item(put.target, salt, timeout=OP_TIMEOUT)
                get_s = time.perf_counter() - t
                rows.append({
                    "kind": kind, "put_s": put_s, "get_s": get_s,
                    "stored_at": len(put.stored_at), "failed": len(put.failed),
                    "timeouts": sum(1 for _, why in put.failed if why == "timeout"),
                    "found": got.value == encode_value(value), "holders": len(got.holders),
                    "put_queried": put.lookup.queried, "get_queried": got.lookup.queried,
                })
    finally:
        await session.stop()
    return {"bootstrap_s": boot, "rows": rows}


# --- crawl ----------------------------------------------------------------------------------------
async def crawl(sn: SimnetProcess, seconds: float, rate: float, db: Path) -> dict[str, Any]:
    session = DhtSession(bind=(CRAWL_IP, 0), rng=random.Random(4))
    await session.start(bootstrap=sn.routers, timeout=60)
    store = SampleStore(db)
    try:
        started = time.time()
        recorder = session.start_crawl(store, rate=rate)
        await asyncio.sleep(seconds)
        session.stop_crawl()
    finally:
        await session.stop()
    f = recorder.figures()
    estimate = store.estimate(since=started)
    store.close()
    answers = f.replies + f.without + f.failed
    return {
        "elapsed_s": f.elapsed, "rate": f.rate, "replies": f.replies, "without": f.without,
        "timeouts": f.failed, "answers_per_s": answers / f.elapsed if f.elapsed else 0.0,
        "samples": f.samples, "samples_per_minute": f.samples_per_minute,
        "distinct": f.distinct, "new_per_minute": f.distinct / (f.elapsed / 60.0)
        if f.elapsed else 0.0,
        "supporting": f.supporting,
        "estimate": estimate.estimate, "low": estimate.low, "high": estimate.high,
        "q1": estimate.q1, "q2": estimate.q2, "reliable": estimate.reliable,
        "per_minute": list(f.per_minute),
    }


# --- scrape ---------------------------------------------------------------------------------------
async def scrapes(sn: SimnetProcess, count: int) -> list[dict[str, Any]]:
    swarms = sn.get(f"/swarms?limit={count}")["swarms"]
    session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(5))
    await session.start(bootstrap=sn.routers, timeout=60)
    out = []
    try:
        for s in swarms:
            truth = sn.get(f"/swarm?info_hash={s['info_hash']}")
            t = time.perf_counter()
            r = await session.scrape(bytes.fromhex(s["info_hash"]), timeout=OP_TIMEOUT)
            out.append({
                "peers": s["peers"], "seeds": truth["seeds"], "downloaders": truth["downloaders"],
                "est_seeds": r.seeds, "est_downloaders": r.downloaders, "nodes": r.nodes,
                "legacy": r.legacy, "found_peers": len(r.lookup.peers),
                "seconds": time.perf_counter() - t, "cancelled": r.cancelled,
            })
    finally:
        await session.stop()
    return out


def _error(est: float, true: int) -> float:
    """Relative error, % (absolute error when the truth is 0)."""
    return abs(est - true) / true * 100.0 if true else abs(est)


# --- database reads -------------------------------------------------------------------------------
def db_reads(path: Path, info_hashes: int) -> dict[str, Any]:
    """Fill a sample database like a long crawl would (each info-hash seen at 4 of many nodes,
    20 samples a reply) and time the Activity view's read of it."""
    rng = random.Random(6)
    hashes = [rng.randbytes(20) for _ in range(info_hashes)]
    nodes = max(50, info_hashes // 5)
    now = time.time()
    t = time.perf_counter()
    with SampleStore(path) as store:
        for n in range(nodes):
            node = rng.randbytes(20)
            picks = [hashes[rng.randrange(info_hashes)] for _ in range(20)]
            store.record(node, ("127.1.0.1", 1 + n % 60000), picks, 100, 21600,
                         now - 3600 + 3600 * n / nodes)
            if n % 1000 == 999:
                store.commit()
    fill_s = time.perf_counter() - t
    reads = []
    for _ in range(5):
        snap = read_snapshot(path, None, now)
        reads.append(snap.read_seconds)
    return {"info_hashes": snap.totals.info_hashes, "nodes": nodes,
            "sightings": nodes * 20, "fill_s": fill_s, "read": summary(reads),
            "db_mb": path.stat().st_size / 1e6}


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    data: dict[str, Any] = {"params": p.__dict__}
    with tempfile.TemporaryDirectory(prefix="dhtviewer-bench-") as tmp:
        with SimnetProcess(["--nodes", str(p.nodes), "--seed", "17"]) as sn:
            pg = asyncio.run(put_get(sn, p.puts))
            sc = asyncio.run(scrapes(sn, p.scrapes))
            items_stats = sn.get("/stats")["items"]
        with SimnetProcess(["--nodes", str(p.crawl_nodes), "--seed", "19"]) as sn:
            cr = asyncio.run(crawl(sn, p.crawl_seconds, p.crawl_rate, Path(tmp) / "crawl.db"))
            true_swarms = sn.get("/swarms?limit=1")["count"]
        reads = db_reads(Path(tmp) / "reads.db", p.db_info_hashes)
    data.update({"put_get": pg, "simnet_items": items_stats, "scrapes": sc, "crawl": cr,
                 "true_swarms": true_swarms, "db_reads": reads})

    rows = pg["rows"]
    items = Table(
        f"BEP 44 on {p.nodes:,} simulated nodes (realistic): {p.puts} puts and gets of each "
        "kind",
        ["operation", "ms p50", "ms p95", "stored at p50", "stored at min", "found / gets"],
    )
    for kind in ("immutable", "mutable"):
        mine = [r for r in rows if r["kind"] == kind]
        put_s = summary(r["put_s"] for r in mine)
        get_s = summary(r["get_s"] for r in mine)
        stored = [r["stored_at"] for r in mine]
        items.add(f"{kind} put", ms(put_s["median"]), ms(put_s["p95"]),
                  percentile(stored, 50), min(stored) if stored else None, None)
        items.add(f"{kind} get", ms(get_s["median"]), ms(get_s["p95"]), None, None,
                  f"{sum(r['found'] for r in mine)}/{len(mine)}")
    items.notes.append(
        "put: the get lookup (tokens, newest seq) and the put round to the K closest that gave "
        "a token; a node that drops the put (1 % loss) costs the hard timeout; get: an "
        "immutable one ends at the first valid copy, a mutable one runs the whole lookup "
        "for the newest seq")
    items.notes.append(f"our node bootstrapped in {pg['bootstrap_s'] * 1000:.0f} ms; simnet "
                       f"item counters: {items_stats}")

    crawl_t = Table(
        f"BEP 51 crawl of {p.crawl_nodes:,} simulated nodes at up to {p.crawl_rate:g} "
        f"queries/s for {p.crawl_seconds:g} s",
        ["measure", "value"],
    )
    crawl_t.add("answers per second (samples, errors, timeouts)", cr["answers_per_s"])
    crawl_t.add("replies with samples (BEP 51 nodes)", cr["replies"])
    crawl_t.add("nodes without BEP 51 / timeouts", f"{cr['without']} / {cr['timeouts']}")
    crawl_t.add("samples per minute", cr["samples_per_minute"])
    crawl_t.add("new info-hashes per minute", cr["new_per_minute"])
    crawl_t.add("distinct info-hashes seen", cr["distinct"])
    crawl_t.add("Chao2 estimate (95 % interval)",
                f"{cr['estimate']:,.0f} ({cr['low']:,.0f}-{cr['high']:,.0f})")
    crawl_t.add("true seeded swarms (/swarms)", true_swarms)
    crawl_t.add("estimate error, %", _error(cr["estimate"], true_swarms))
    crawl_t.notes.append("each seeded swarm is stored by its 8 closest nodes, 44 % of which "
                         "speak BEP 51 (libtorrent, mldht); the truth leaves out the few "
                         "info-hashes clients announced meanwhile")

    scrape_t = Table(
        f"BEP 33 scrape of the {len(sc)} most popular seeded swarms ({p.nodes:,} nodes)",
        ["measure", "p50", "p95", "max"],
    )
    for label, est, true in (("seeds, error %", "est_seeds", "seeds"),
                             ("downloaders, error %", "est_downloaders", "downloaders")):
        errs = [_error(r[est], r[true]) for r in sc if not r["cancelled"]]
        scrape_t.add(label, percentile(errs, 50), percentile(errs, 95), max(errs, default=None))
    totals = [_error(r["est_seeds"] + r["est_downloaders"], r["seeds"] + r["downloaders"])
              for r in sc if not r["cancelled"]]
    scrape_t.add("seeds + downloaders, error %", percentile(totals, 50), percentile(totals, 95),
                 max(totals, default=None))
    scrape_t.add("filters merged (nodes)", percentile([r["nodes"] for r in sc], 50), None, None)
    scrape_t.add("time, ms", ms(percentile([r["seconds"] for r in sc], 50)),
                 ms(percentile([r["seconds"] for r in sc], 95)), None)
    if sc:
        scrape_t.notes.append(
            f"swarm sizes {min(r['peers'] for r in sc)}-{max(r['peers'] for r in sc)} peers; "
            "the filters count distinct IPs (2,048 bits, k = 2: a few % of error below 1,000)")

    reads_t = Table("Activity view: one database read (worker thread)", ["measure", "value"])
    reads_t.add("info-hashes / sightings", f"{reads['info_hashes']:,} / {reads['sightings']:,}")
    reads_t.add("database size, MB", reads["db_mb"])
    reads_t.add("read, ms p50", ms(reads["read"]["median"]))
    reads_t.add("read, ms max of 5", ms(reads["read"]["max"]))
    reads_t.notes.append("totals, Chao2 over all sightings, top 100, 200 nodes, per-minute rates "
                         "of the last hour; the GUI asks every 3 s while the view is visible, "
                         "off the GUI thread")
    return BenchResult(NAME, size, [items, crawl_t, scrape_t, reads_t], data)
