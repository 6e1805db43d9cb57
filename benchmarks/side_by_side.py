"""Side by side with libtorrent: our get_peers lookup against libtorrent's ``dht_get_peers`` on
the same loopback testnet of libtorrent nodes, in the same run.

Setup: N libtorrent DHT nodes (``tests/support/libtorrent_net.LibtorrentNet``) on 127.0.70.x;
our ``DhtSession`` on 127.0.71.1 bootstraps from three of them. H random info-hashes are each
announced by a random libtorrent node. Then 20% of the libtorrent nodes (never the searcher)
are stopped: they stay in everybody's routing tables and go silent, so lookups meet timeouts.
For every info-hash, our node runs a lookup, then one libtorrent node (the searcher, the same
for every info-hash) runs ``dht_get_peers``, one after the other.

The reference both sides are judged by, per info-hash: *the K closest reachable live nodes*,
the K nodes nearest the info-hash among the running libtorrent nodes that are in at least one
running node's routing table (``dht_live_nodes``), the searching node itself excluded (the
libtorrent searcher does not query itself; for our node, outside the testnet, the libtorrent
searcher is a node like any other). A node no running node knows cannot be found by any lookup
(the testnet is formed by introductions, and a few nodes end up known to nobody), so it is left
out for both sides alike.

What is measured, per lookup, the same way on both sides:

- *K closest answered*: from the lookup's start until the last of the reference nodes has
  answered it; none when the lookup missed one of them (then *recall* says how many it got).
  Ours: ``LookupStarted`` to the ``LookupResponse`` events; libtorrent: its traversal's ``NEW``
  line to its ``RESPONSE`` lines in its DHT log (enabled on the searcher only during its
  lookup), in libtorrent's alert timestamps.
- *completion*: when the lookup itself ends. Ours: ``LookupFinished.elapsed``; libtorrent: the
  traversal's ``COMPLETED`` log line (its Python API has no completion alert). libtorrent's
  traversal ends only when every node among its K closest has answered or reached libtorrent's
  15 s timeout, so with a stopped node among them its completion includes those 15 s.
- *time to first peer*: to the first reply carrying peers (ours ``PeersFound``, libtorrent's
  ``dht_get_peers_reply_alert``).
- *queries*: every get_peers the lookup sent. Ours: its ``LookupQuerySent`` events (resends and
  the neighbourhood probe included); libtorrent: its ``dht_outgoing_get_peers_alert`` for the
  info-hash (the session counter ``dht.dht_get_peers_out`` over the same span is kept as a
  cross-check).
- *peers*: the distinct peers found for the info-hash, compared per info-hash.

Alerts are read right after ``pop_alerts`` returns them (the binding frees them at the session's
next ``pop_alerts``); the harness's own buffer is emptied before each of its announces.
A libtorrent lookup not completed within ``lt_timeout`` counts as not completed (its completion
time is then left out and reported as censored).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.common import BenchResult, Table, check_size, ms, ratio, summary
from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr

NAME = "libtorrent"
TITLE = "Side by side with libtorrent on a loopback testnet (20% of nodes stopped)"

LT_BASE = "127.0.70.1"
OUR_IP = "127.0.71.1"
DEAD = 0.20
K = 8
_NEW = re.compile(r"\[(\d+)\] NEW target: ([0-9a-f]{40})")


@dataclass(frozen=True)
class Params:
    """One comparison: ``nodes`` libtorrent nodes, ``hashes`` info-hashes; a libtorrent lookup
    is followed for at most ``lt_timeout`` s, ours for ``our_timeout`` s; ``dead``: the share
    of nodes stopped after the announces (the realistic case; 0 is the best case)."""

    nodes: int
    hashes: int
    lt_timeout: float
    our_timeout: float
    dead: float = DEAD
    warmup: int = 16
    lt_base: str = LT_BASE
    our_ip: str = OUR_IP


_PARAMS = {
    "tiny": Params(15, 2, 2.0, 10.0),
    "medium": Params(50, 10, 30.0, 30.0),
    "full": Params(100, 20, 30.0, 30.0),
}


# --- libtorrent side (blocking; runs in a worker thread) ------------------------------------------
def _counters(session: Any, timeout: float = 5.0) -> dict[str, int]:
    import libtorrent as lt

    session.post_session_stats()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.wait_for_alert(50)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.session_stats_alert):
                return {k: int(v) for k, v in alert.values.items() if k.startswith("dht.")}
    raise TimeoutError("libtorrent session stats did not arrive")


def libtorrent_lookup(net: Any, i: int, info_hash: bytes, timeout: float,
                      responders: bool = False) -> dict[str, Any]:
    """Session ``i`` runs ``dht_get_peers(info_hash)``; figures from its alerts. ``responses``:
    (responder id, seconds from the traversal's start) of every node that answered it, from its
    DHT log. With ``responders``, also ``responder_ids`` (hex), as before."""
    import libtorrent as lt

    session = net.sessions[i]
    before = _counters(session)
    base_mask = int(session.get_settings()["alert_mask"])
    session.apply_settings(
        {"alert_mask": base_mask | int(lt.alert.category_t.dht_log_notification)}
    )
    while session.pop_alerts():
        pass
    target = lt.sha1_hash(info_hash)
    hexhash = info_hash.hex()
    traversal: str | None = None
    started = first = done = None
    outgoing = 0
    answered: list[tuple[str, float]] = []
    peers: set[Addr] = set()
    session.dht_get_peers(target)
    issued = time.monotonic()
    deadline = issued + timeout
    try:
        while done is None and time.monotonic() < deadline:
            session.wait_for_alert(20)
            for alert in session.pop_alerts():
                if isinstance(alert, lt.dht_log_alert):
                    text = alert.message()
                    if traversal is None:
                        new = _NEW.search(text)
                        if new and new.group(2) == hexhash:
                            traversal = new.group(1)
                            started = alert.timestamp().timestamp()
                    elif f"[{traversal}] COMPLETED" in text:
                        done = alert.timestamp().timestamp()
                    elif f"[{traversal}] RESPONSE " in text:
                        answered.append(
                            (text.split(" id: ", 1)[1][:40], alert.timestamp().timestamp())
                        )
                elif isinstance(alert, lt.dht_outgoing_get_peers_alert):
                    if alert.info_hash == target:
                        outgoing += 1
                        if started is None:
                            started = alert.timestamp().timestamp()
                elif (
                    isinstance(alert, lt.dht_get_peers_reply_alert)
                    and alert.info_hash == target
                    and alert.num_peers()
                ):
                    if first is None:
                        first = alert.timestamp().timestamp()
                    peers.update((str(ip), int(port)) for ip, port in alert.peers())
    finally:
        session.apply_settings({"alert_mask": base_mask})
    after = _counters(session)
    t0 = started if started is not None else 0.0
    extra = {"responder_ids": [r for r, _ in answered]} if responders else {}
    return {
        **extra,
        "first_peer": None if first is None or started is None else first - started,
        "completion": None if done is None or started is None else done - started,
        "completed": done is not None,
        "queries": outgoing,
        "queries_counter": after.get("dht.dht_get_peers_out", 0)
        - before.get("dht.dht_get_peers_out", 0),
        "responded": len(answered),
        "responses": [(r, at - t0) for r, at in answered],
        "messages_out": after.get("dht.dht_messages_out", 0)
        - before.get("dht.dht_messages_out", 0),
        "peers": len(peers),
        "peer_set": sorted(peers),
        "wall": time.monotonic() - issued,
    }


def forget_alerts(net: Any) -> None:
    """Drop every alert the harness buffered, so that the next harness call does not take
    alerts left over from an earlier announce or lookup as its own."""
    for i in range(len(net.sessions)):
        net.alerts(i)


def reachable_live(net: Any) -> dict[bytes, Addr]:
    """Id -> address of every running node that is in some running node's routing table."""
    running = [i for i in range(len(net.sessions)) if i not in net.stopped]
    live_addrs = {net.addrs[i] for i in running}
    known: dict[bytes, Addr] = {}
    for i in running:
        try:
            entries = net.live_nodes(i)
        except TimeoutError:
            continue
        for node_id, addr in entries:
            if addr in live_addrs:
                known[node_id] = addr
    return known


def reference(known: dict[bytes, Addr], info_hash: bytes, exclude: set[bytes]) -> list[bytes]:
    """The K nearest ``known`` ids to ``info_hash`` (``exclude`` left out)."""
    target = int.from_bytes(info_hash, "big")
    ids = [i for i in known if i not in exclude]
    return sorted(ids, key=lambda i: int.from_bytes(i, "big") ^ target)[:K]


def k_closest_answered(responses: list[tuple[bytes, float]],
                       ref: list[bytes]) -> tuple[float | None, int]:
    """(when the last of ``ref`` answered, or None if one never did; how many of ``ref``
    answered) from (responder id, seconds since the start) pairs."""
    first_answer: dict[bytes, float] = {}
    for node_id, at in responses:
        if node_id in ref:
            first_answer.setdefault(node_id, at)
    got = len(first_answer)
    return (max(first_answer.values()) if got == len(ref) and ref else None), got


# --- our side -------------------------------------------------------------------------------------
async def our_lookup(session: Any, info_hash: bytes, timeout: float) -> dict[str, Any]:
    handle = session.start_find_peers(info_hash)
    result = await handle.result(timeout)
    started = next(e.at for e in handle.events if isinstance(e, ev.LookupStarted))
    first = next((e.at for e in handle.events if isinstance(e, ev.PeersFound) and e.peers), None)
    return {
        "first_peer": None if first is None else first - started,
        "completion": None if result.cancelled else result.elapsed,
        "completed": not result.cancelled,
        "queries": sum(1 for e in handle.events if isinstance(e, ev.LookupQuerySent)),
        "nodes_queried": result.queried,
        "responded": result.responded,
        "responses": [(e.node_id, e.at - started) for e in handle.events
                      if isinstance(e, ev.LookupResponse)],
        "asked": {e.node_id for e in handle.events if isinstance(e, ev.LookupQuerySent)},
        "closest": [node_id.hex() for node_id, _ in result.closest],
        "slow": [e.addr for e in handle.events if isinstance(e, ev.LookupQuerySlow)],
        "timeouts": sum(1 for e in handle.events if isinstance(e, ev.LookupTimeout)),
        "peers": len(result.peers),
        "peer_set": sorted(result.peers),
    }


def start_net(p: Params, seed: int, attempts: int = 3) -> Any:
    """A formed libtorrent testnet; forming one is retried (a fresh network each time) when it
    is not ready in time, which a loaded machine can cause."""
    from tests.support.libtorrent_net import LibtorrentNet

    for attempt in range(attempts):
        net = LibtorrentNet(n=p.nodes, base=p.lt_base, seed=seed + attempt)
        try:
            net.start(60.0)
            return net
        except TimeoutError:
            net.close()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _settled_ip(our_ip: str) -> str:
    head, last = our_ip.rsplit(".", 1)
    return f"{head}.{int(last) + 1}"


async def _measure_ours(session: Any, info_hash: bytes, known: dict[bytes, Addr],
                        running: set[Addr], timeout: float) -> dict[str, Any]:
    """Our lookup of ``info_hash`` with its recall against the K closest of ``known``."""
    mine = await our_lookup(session, info_hash, timeout)
    our_ref = reference(known, info_hash, set())
    responses = mine.pop("responses")
    answered = {node_id for node_id, _ in responses}
    mine["k_closest"], mine["recall"] = k_closest_answered(responses, our_ref)
    asked = mine.pop("asked")
    mine["missed_never_asked"] = sum(1 for node_id in our_ref if node_id not in asked)
    mine["slow_live"] = sum(1 for a in mine.pop("slow") if a in running)
    # For reading a miss afterwards: the reference (nearest first), who was asked, who answered.
    mine["reference"] = [node_id.hex() for node_id in our_ref]
    mine["asked_reference"] = [r.hex() for r in our_ref if r in asked]
    mine["answered_reference"] = [r.hex() for r in our_ref if r in answered]
    mine["_responses"] = responses
    mine["_asked"] = asked
    return mine


def pooled_recall(rows: list[dict[str, Any]], pool: set[bytes], info_hash: bytes,
                  exclude: set[bytes]) -> None:
    """Set ``pooled_recall`` and ``pooled_k_closest`` in each row (one per lookup of
    ``info_hash``; ``_responses``: (id, seconds) of the nodes that answered it): how many of
    the K closest of ``pool`` (every node that answered any of the lookups, ``exclude`` left
    out) answered that lookup, and when the last of them did (None if one never did)."""
    ref = reference(dict.fromkeys(pool - exclude, ("", 0)), info_hash, set())
    for row in rows:
        row["pooled_k_closest"], row["pooled_recall"] = k_closest_answered(row["_responses"],
                                                                           ref)
        row["pooled_size"] = len(ref)
        if "_asked" in row:
            row["pooled_never_asked"] = sum(1 for r in ref if r not in row["_asked"])


async def compare(p: Params, seed: int) -> dict[str, Any]:
    """Run the comparison; per info-hash, the figures of both our nodes (``ours``: just
    joined; ``settled``: after ``p.warmup`` find_node lookups of random targets) and of
    libtorrent (``libtorrent``), and the peer that announced it (``announced``)."""
    from dhtviewer.net.session import DhtSession

    rng = random.Random(seed)
    net = await asyncio.to_thread(start_net, p, seed)
    session = DhtSession(bind=(p.our_ip, 0), rng=random.Random(seed))
    settled = DhtSession(bind=(_settled_ip(p.our_ip), 0), rng=random.Random(seed + 1))
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await session.start(bootstrap=rng.sample(net.addrs, 3), timeout=30)
        bootstrap_s = loop.time() - t0
        await settled.start(bootstrap=rng.sample(net.addrs, 3), timeout=30)
        searcher = rng.randrange(p.nodes)
        # The settled node starts from at least the libtorrent searcher's knowledge: it pings
        # every contact in the searcher's routing table (each answer enters its table), then
        # does what a node does in its first minutes (lookups, here of random targets). Lookup
        # accuracy is then compared from the same starting contacts.
        for _node_id, addr in await asyncio.to_thread(net.live_nodes, searcher):
            with contextlib.suppress(TimeoutError):
                await settled.ping(addr, timeout=2.0)
        for _ in range(p.warmup):
            await settled.find_node(rng.randbytes(20), timeout=p.our_timeout)
        plan: list[tuple[bytes, int]] = []
        announced: list[Addr] = []
        for k in range(p.hashes):
            info_hash = rng.randbytes(20)
            announcer = rng.choice([i for i in range(p.nodes) if i != searcher])
            await asyncio.to_thread(forget_alerts, net)
            stored = await asyncio.to_thread(net.announce, announcer, info_hash, 7000 + k)
            plan.append((info_hash, stored))
            announced.append((net.addrs[announcer][0], 7000 + k))
        # Let our node's bucket refreshes after the bootstrap settle, then take the snapshot.
        await asyncio.sleep(1.0 if p.nodes > 20 else 0.2)
        our_table = session.routing_snapshot().size
        settled_table = settled.routing_snapshot().size
        searcher_table = (await asyncio.to_thread(net.routing_table_sizes, [searcher]))[0]
        others = [i for i in range(p.nodes) if i != searcher]
        dead = rng.sample(others, round(p.dead * p.nodes))
        await asyncio.to_thread(net.stop, dead)
        known = await asyncio.to_thread(reachable_live, net)
        searcher_id = await asyncio.to_thread(net.node_id, searcher)
        our_ids = {session.node_id, settled.node_id}
        running = {net.addrs[i] for i in range(p.nodes) if i not in net.stopped}
        ours: list[dict[str, Any]] = []
        ours_settled: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for info_hash, _stored in plan:
            ours.append(await _measure_ours(session, info_hash, known, running, p.our_timeout))
            ours_settled.append(
                await _measure_ours(settled, info_hash, known, running, p.our_timeout)
            )
            await asyncio.to_thread(forget_alerts, net)
            lt_res = await asyncio.to_thread(
                libtorrent_lookup, net, searcher, info_hash, p.lt_timeout
            )
            ref = reference(known, info_hash, {searcher_id})
            answered = [(bytes.fromhex(r), at) for r, at in lt_res.pop("responses")]
            lt_res["_responses"] = answered
            lt_res["k_closest"], lt_res["recall"] = k_closest_answered(answered, ref)
            lt_res["reference"] = [node_id.hex() for node_id in ref]
            lt_res["answered_reference"] = [r.hex() for r in ref if r in dict(answered)]
            # Libtorrent nodes only: libtorrent's lookup may also reach our two nodes.
            pool = {node_id for row in (ours[-1], ours_settled[-1], lt_res)
                    for node_id, _ in row["_responses"]} - our_ids
            pooled_recall([ours[-1], ours_settled[-1]], pool, info_hash, set())
            pooled_recall([lt_res], pool, info_hash, {searcher_id})
            for row in (ours[-1], ours_settled[-1], lt_res):
                del row["_responses"]
                row.pop("_asked", None)
            theirs.append(lt_res)
        return {
            "nodes": p.nodes,
            "stopped": len(dead),
            "reachable_live": len(known),
            "info_hashes": len(plan),
            "announce_stored_on": [s for _, s in plan],
            "announced": announced,
            "our_bootstrap_seconds": bootstrap_s,
            "our_table_size": our_table,
            "settled_table_size": settled_table,
            "searcher_table_size": searcher_table,
            "warmup_lookups": p.warmup,
            "libtorrent_setup_seconds": net.setup_seconds,
            "lt_timeout": p.lt_timeout,
            "ours": ours,
            "settled": ours_settled,
            "libtorrent": theirs,
        }
    finally:
        await session.stop()
        await settled.stop()
        await asyncio.to_thread(net.close)


def _fmt_ms(value: float | None, censored: bool = False) -> Any:
    v = ms(value)
    return f">= {v:,.0f}" if censored and v is not None else v


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    res = asyncio.run(compare(p, seed=3))
    ours, theirs = res["ours"], res["libtorrent"]
    n = len(ours)

    def s(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
        return summary([r[key] for r in rows if r[key] is not None])

    table = Table(
        f"{res['info_hashes']} get_peers lookups on {res['nodes']} libtorrent nodes "
        f"({res['stopped']} stopped after the network formed), one after the other",
        ["measure", "ours p50", "ours p95", "libtorrent p50", "libtorrent p95",
         "ours / libtorrent (p50)"],
    )
    agg: dict[str, Any] = {}
    cap = res["lt_timeout"]
    for label, key in (("time to first peer, ms", "first_peer"),
                       ("K closest answered, ms", "pooled_k_closest"),
                       ("completion (lookup ends), ms", "completion")):
        a, b = s(ours, key), s(theirs, key)
        censored = False
        if key == "completion":
            # A libtorrent lookup still running at the cap took at least the cap.
            b = summary([r[key] if r["completed"] else cap for r in theirs])
            censored = b["median"] >= cap
        r50 = ratio(a["median"], b["median"])
        agg[key] = {"ours": a, "libtorrent": b, "ratio_p50": r50, "censored": censored,
                    "ours_n": a["n"], "libtorrent_n": b["n"]}
        table.add(label, ms(a["median"]), ms(a["p95"]), _fmt_ms(b["median"], censored),
                  _fmt_ms(b["p95"], b["p95"] >= cap and key == "completion"),
                  f"<= {r50:.3f}" if censored and r50 is not None else r50)
    qa, qb = s(ours, "queries"), s(theirs, "queries")
    agg["queries"] = {"ours": qa, "libtorrent": qb, "ratio_p50": ratio(qa["median"],
                                                                        qb["median"])}
    table.add("get_peers queries per lookup", qa["median"], qa["p95"], qb["median"], qb["p95"],
              agg["queries"]["ratio_p50"])

    def reached_all(rows: list[dict[str, Any]]) -> int:
        return sum(1 for r in rows if r["pooled_recall"] == r["pooled_size"])

    pa, pb = s(ours, "pooled_recall"), s(theirs, "pooled_recall")
    table.add(f"recall: of the K={K} closest found by any lookup, answered", pa["median"],
              pa["min"], pb["median"], pb["min"], None)
    table.add("lookups that reached all of those K", f"{reached_all(ours)}/{n}", None,
              f"{reached_all(theirs)}/{n}", None, None)
    ra, rb = s(ours, "recall"), s(theirs, "recall")
    table.add(f"recall: of the K={K} closest reachable live nodes, answered", ra["median"],
              ra["min"], rb["median"], rb["min"], None)
    found_ours = sum(1 for r in ours if r["peers"])
    found_lt = sum(1 for r in theirs if r["peers"])
    table.add("lookups that found a peer", f"{found_ours}/{n}", None, f"{found_lt}/{n}", None,
              None)
    agg["reached_all_k_closest"] = {"ours": reached_all(ours), "libtorrent": reached_all(theirs),
                                    "settled": reached_all(res["settled"])}
    agg["pooled_recall_total"] = {k: sum(r["pooled_recall"] for r in res[k])
                                  for k in ("ours", "settled", "libtorrent")}
    table.notes.append(
        "recall rows: median and minimum (not p95). 'Found by any lookup': the K nodes nearest "
        "the info-hash among the libtorrent nodes that answered our lookup, our settled node's "
        "or libtorrent's (the searcher left out for libtorrent); 'reachable live': among the "
        "running nodes some running node has in its routing table (on this sparse testnet "
        "several of them are returned by nobody for the info-hash, so no lookup reaches all; "
        f"of those our lookups missed, {sum(r['missed_never_asked'] for r in ours)} were never "
        "asked)"
    )
    table.notes.append(
        "K closest answered: until the last of the K closest found by any lookup answered it; "
        "lookups that missed one are left out: "
        f"ours {agg['pooled_k_closest']['ours_n']}/{n}, libtorrent "
        f"{agg['pooled_k_closest']['libtorrent_n']}/{n} counted"
    )
    table.notes.append(
        "completion: ours LookupFinished; libtorrent its traversal's COMPLETED log line, which "
        "comes only once every node among its K closest has answered or reached libtorrent's "
        "15 s timeout: with a stopped node there, its completion includes those 15 s. "
        f"libtorrent lookups completed within {cap:g} s: "
        f"{sum(1 for r in theirs if r['completed'])}/{n} (the others count as the cap: '>=')"
    )
    table.notes.append(
        "queries: ours, every LookupQuerySent (resends and the probe included); libtorrent, its "
        "dht_outgoing_get_peers_alert for the info-hash (session counter dht.dht_get_peers_out "
        f"over the same spans: median {s(theirs, 'queries_counter')['median']:g})"
    )

    settled = res["settled"]
    st = Table(
        "A second node of ours, settled: it pinged every contact of the libtorrent searcher's "
        f"routing table, then ran {res['warmup_lookups']} find_node lookups of random targets; "
        "same info-hashes",
        ["measure", "settled p50", "settled p95", "just joined p50", "libtorrent p50"],
    )
    for label, key, as_ms in (("K closest answered, ms", "pooled_k_closest", True),
                              ("completion, ms", "completion", True),
                              ("get_peers queries per lookup", "queries", False)):
        c, a, b = s(settled, key), s(ours, key), s(theirs, key)
        conv = ms if as_ms else (lambda v: v)
        st.add(label, conv(c["median"]), conv(c["p95"]), conv(a["median"]),
               _fmt_ms(agg["completion"]["libtorrent"]["median"], agg["completion"]["censored"])
               if key == "completion" else conv(b["median"]))
    st.add("lookups that reached all K closest found by any lookup",
           f"{reached_all(settled)}/{n}", None, f"{reached_all(ours)}/{n}",
           f"{reached_all(theirs)}/{n}")
    st.add("recall (K closest found by any lookup), sum over lookups",
           agg["pooled_recall_total"]["settled"], None, agg["pooled_recall_total"]["ours"],
           agg["pooled_recall_total"]["libtorrent"])
    st.add("lookups that found every peer libtorrent found",
           sum(1 for r_s, r_l in zip(settled, theirs, strict=True)
               if set(map(tuple, r_l["peer_set"])) <= set(map(tuple, r_s["peer_set"]))),
           None, None, None)

    per_hash = Table("Peers found per info-hash", ["info-hash", "announce stored on", "ours",
                                                   "libtorrent", "ours >= libtorrent",
                                                   "ours found the announcer"])
    at_least = found_announcer = 0
    for r_o, r_l, stored, peer in zip(ours, theirs, res["announce_stored_on"], res["announced"],
                                      strict=True):
        ok = r_o["peers"] >= r_l["peers"] and set(map(tuple, r_l["peer_set"])) <= set(
            map(tuple, r_o["peer_set"]))
        got = tuple(peer) in set(map(tuple, r_o["peer_set"]))
        at_least += ok
        found_announcer += got
        per_hash.add(len(per_hash.rows) + 1, stored, r_o["peers"], r_l["peers"], ok, got)
    slow_live = sum(r["slow_live"] for r in ours)
    per_hash.notes.append(
        f"ours found every peer libtorrent found on {at_least}/{n} info-hashes; our queries to "
        f"running nodes that passed the short timeout (slow, not dead): {slow_live} in all"
    )
    agg["peers_at_least_libtorrent"] = at_least
    agg["found_announcer"] = found_announcer

    targets = Table("Targets", ["target", "ours", "libtorrent", "met"])
    targets.add("every peer libtorrent finds, on every info-hash", f"{at_least}/{n}", None,
                at_least == n)
    all_o, all_l = reached_all(ours), reached_all(theirs)
    targets.add("lookups that reached all K closest found by any lookup, >= libtorrent's",
                f"{all_o}/{n}", f"{all_l}/{n}", all_o >= all_l)
    kc = agg["pooled_k_closest"]
    targets.add("median time until the K closest answered <= libtorrent's (ms)",
                ms(kc["ours"]["median"]), ms(kc["libtorrent"]["median"]),
                kc["ratio_p50"] is not None and kc["ratio_p50"] <= 1.0)
    q = agg["queries"]
    targets.add("median queries per lookup <= libtorrent's", q["ours"]["median"],
                q["libtorrent"]["median"], q["ratio_p50"] is not None and q["ratio_p50"] <= 1.0)
    res["aggregate"] = agg
    notes = [
        f"our node: routing table {res['our_table_size']} nodes after a "
        f"{res['our_bootstrap_seconds'] * 1000:.0f} ms bootstrap (settled node: "
        f"{res['settled_table_size']}; the libtorrent searcher: {res['searcher_table_size']} "
        "confirmed nodes, dht.dht_nodes); libtorrent network formed in "
        f"{res['libtorrent_setup_seconds'] or 0:.1f} s; announces stored on "
        f"{summary(res['announce_stored_on'])['median']:g} nodes (median); "
        f"{res['reachable_live']} of the {res['nodes'] - res['stopped']} running nodes are in "
        "some running node's routing table (the others cannot be found by any lookup)",
    ]
    return BenchResult(NAME, size, [table, st, per_hash, targets], res, notes)
