"""Side by side with libtorrent: our get_peers lookup against libtorrent's ``dht_get_peers`` on
the same loopback testnet of libtorrent nodes, in the same run.

Setup: N libtorrent DHT nodes (``tests/support/libtorrent_net.LibtorrentNet``) on 127.0.70.x;
our ``DhtSession`` on 127.0.71.1 bootstraps from three of them. H random info-hashes are each
announced by a random libtorrent node. Then 20% of the libtorrent nodes (never the searcher)
are stopped: they stay in everybody's routing tables and go silent, so lookups meet timeouts.
For every info-hash, our node runs a lookup, then one libtorrent node (the searcher, the same
for every info-hash) runs ``dht_get_peers``, one after the other.

What is measured, per lookup:

- ours: time to first peer (``LookupStarted`` to the first ``PeersFound`` with peers),
  completion (``LookupFinished.elapsed``), queries sent (``LookupFinished.queried``);
- libtorrent: traversal start (the ``NEW target`` line of its DHT log, enabled on the searcher
  only during its lookup) to the first ``dht_get_peers_reply_alert`` with peers, to the
  traversal's ``COMPLETED`` log line (libtorrent's Python API has no completion alert; its own
  log says when the traversal ends), all in libtorrent's alert timestamps; queries sent: the
  session counter ``dht.dht_get_peers_out`` before and after (and, as a cross-check, the
  ``dht_outgoing_get_peers_alert`` count for the info-hash).

Alerts are read right after ``pop_alerts`` returns them (the binding frees them at the session's
next ``pop_alerts``); the harness's own buffer is emptied before each of its announces.
A libtorrent lookup not completed within ``lt_timeout`` counts as not completed (its completion
time is then left out and reported as censored).
"""

from __future__ import annotations

import asyncio
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
_NEW = re.compile(r"\[(\d+)\] NEW target: ([0-9a-f]{40})")


@dataclass(frozen=True)
class _Params:
    nodes: int
    hashes: int
    lt_timeout: float
    our_timeout: float


_PARAMS = {
    "tiny": _Params(15, 2, 2.0, 10.0),
    "medium": _Params(50, 10, 30.0, 30.0),
    "full": _Params(100, 20, 30.0, 30.0),
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
    """Session ``i`` runs ``dht_get_peers(info_hash)``; figures from its alerts. With
    ``responders``, the result also lists the ids (hex) of the nodes that responded to the
    traversal (``responder_ids``, from its DHT log)."""
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
    outgoing = responded = 0
    responder_ids: list[str] = []
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
                        responded += 1
                        if responders:
                            responder_ids.append(text.split(" id: ", 1)[1][:40])
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
    extra = {"responder_ids": responder_ids} if responders else {}
    return {
        **extra,
        "first_peer": None if first is None or started is None else first - started,
        "completion": None if done is None or started is None else done - started,
        "completed": done is not None,
        "queries": after.get("dht.dht_get_peers_out", 0) - before.get("dht.dht_get_peers_out", 0),
        "queries_alerts": outgoing,
        "responded": responded,
        "messages_out": after.get("dht.dht_messages_out", 0)
        - before.get("dht.dht_messages_out", 0),
        "peers": len(peers),
        "wall": time.monotonic() - issued,
    }


def forget_alerts(net: Any) -> None:
    """Drop every alert the harness buffered, so that the next harness call does not take
    alerts left over from an earlier announce or lookup as its own."""
    for i in range(len(net.sessions)):
        net.alerts(i)


# --- our side -------------------------------------------------------------------------------------
async def our_lookup(session: Any, info_hash: bytes, timeout: float) -> dict[str, Any]:
    handle = session.start_find_peers(info_hash)
    result = await handle.result(timeout)
    started = next(e.at for e in handle.events if isinstance(e, ev.LookupStarted))
    first = next((e.at for e in handle.events if isinstance(e, ev.PeersFound) and e.peers), None)
    timeouts = sum(1 for e in handle.events if isinstance(e, ev.LookupTimeout))
    return {
        "first_peer": None if first is None else first - started,
        "completion": None if result.cancelled else result.elapsed,
        "completed": not result.cancelled,
        "queries": result.queried,
        "responded": result.responded,
        "timeouts": timeouts,
        "peers": len(result.peers),
    }


async def _run(p: _Params, seed: int) -> dict[str, Any]:
    from dhtviewer.net.session import DhtSession
    from tests.support.libtorrent_net import LibtorrentNet

    rng = random.Random(seed)
    net = LibtorrentNet(n=p.nodes, base=LT_BASE, seed=seed)
    await asyncio.to_thread(net.start, 60.0)
    session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(seed))
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await session.start(bootstrap=rng.sample(net.addrs, 3), timeout=30)
        bootstrap_s = loop.time() - t0
        searcher = rng.randrange(p.nodes)
        plan: list[tuple[bytes, int]] = []
        for k in range(p.hashes):
            info_hash = rng.randbytes(20)
            announcer = rng.choice([i for i in range(p.nodes) if i != searcher])
            await asyncio.to_thread(forget_alerts, net)
            stored = await asyncio.to_thread(net.announce, announcer, info_hash, 7000 + k)
            plan.append((info_hash, stored))
        # Let our node's bucket refreshes after the bootstrap settle, then take the snapshot.
        await asyncio.sleep(1.0 if p.nodes > 20 else 0.2)
        our_table = session.routing_snapshot().size
        others = [i for i in range(p.nodes) if i != searcher]
        dead = rng.sample(others, round(DEAD * p.nodes))
        await asyncio.to_thread(net.stop, dead)
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for info_hash, _stored in plan:
            ours.append(await our_lookup(session, info_hash, p.our_timeout))
            await asyncio.to_thread(forget_alerts, net)
            theirs.append(
                await asyncio.to_thread(libtorrent_lookup, net, searcher, info_hash, p.lt_timeout)
            )
        return {
            "nodes": p.nodes,
            "stopped": len(dead),
            "info_hashes": len(plan),
            "announce_stored_on": [s for _, s in plan],
            "our_bootstrap_seconds": bootstrap_s,
            "our_table_size": our_table,
            "libtorrent_setup_seconds": net.setup_seconds,
            "lt_timeout": p.lt_timeout,
            "ours": ours,
            "libtorrent": theirs,
        }
    finally:
        await session.stop()
        await asyncio.to_thread(net.close)


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    res = asyncio.run(_run(p, seed=3))
    ours, theirs = res["ours"], res["libtorrent"]

    def s(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
        return summary([r[key] for r in rows if r[key] is not None])

    table = Table(
        f"{res['info_hashes']} get_peers lookups on {res['nodes']} libtorrent nodes "
        f"({res['stopped']} stopped after the network formed), one after the other",
        ["measure", "ours p50", "ours p95", "libtorrent p50", "libtorrent p95",
         "ours / libtorrent (p50)"],
    )
    rows = [
        ("time to first peer, ms", "first_peer", True),
        ("time to completion, ms", "completion", True),
        ("queries sent per lookup", "queries", False),
    ]
    agg: dict[str, Any] = {}
    cap = res["lt_timeout"]
    for label, key, is_time in rows:
        a, b = s(ours, key), s(theirs, key)
        censored = False
        if key == "completion":
            # A libtorrent lookup still running at the cap took at least the cap.
            b = summary([r[key] if r["completed"] else cap for r in theirs])
            censored = b["median"] >= cap
        r50 = ratio(a["median"], b["median"])
        agg[key] = {"ours": a, "libtorrent": b, "ratio_p50": r50, "censored": censored}
        if is_time:
            lt50: Any = ms(b["median"])
            lt95: Any = ms(b["p95"])
            if key == "completion":
                lt50 = f">= {lt50:,.0f}" if censored else lt50
                lt95 = f">= {lt95:,.0f}" if b["p95"] >= cap else lt95
            table.add(label, ms(a["median"]), ms(a["p95"]), lt50, lt95,
                      f"<= {r50:.3f}" if censored and r50 is not None else r50)
        else:
            table.add(label, a["median"], a["p95"], b["median"], b["p95"], r50)
    found_ours = sum(1 for r in ours if r["peers"])
    found_lt = sum(1 for r in theirs if r["peers"])
    done_lt = sum(1 for r in theirs if r["completed"])
    table.add("lookups that found the peer", f"{found_ours}/{len(ours)}", None,
              f"{found_lt}/{len(theirs)}", None, None)
    table.notes.append(
        f"libtorrent lookups completed within {cap:g} s: {done_lt}/{len(theirs)} "
        "(the others count as taking the cap: '>=')"
    )
    table.notes.append(
        "libtorrent queries: session counter dht.dht_get_peers_out; its outgoing get_peers "
        f"alerts for the same lookups: median {s(theirs, 'queries_alerts')['median']:g}"
    )
    targets = Table("Targets", ["target", "ours", "libtorrent", "met"])
    c, q = agg["completion"], agg["queries"]
    targets.add("median time to completion <= libtorrent's (ms)", ms(c["ours"]["median"]),
                (">= " if c["censored"] else "") + f"{ms(c['libtorrent']['median']):,.0f}",
                c["ratio_p50"] is not None and c["ratio_p50"] <= 1.0)
    targets.add("median queries per lookup <= libtorrent's", q["ours"]["median"],
                q["libtorrent"]["median"], q["ratio_p50"] is not None and q["ratio_p50"] <= 1.0)
    res["aggregate"] = agg
    notes = [
        f"our node: routing table {res['our_table_size']} nodes after a "
        f"{res['our_bootstrap_seconds'] * 1000:.0f} ms bootstrap; libtorrent network formed in "
        f"{res['libtorrent_setup_seconds'] or 0:.1f} s; announces stored on "
        f"{summary(res['announce_stored_on'])['median']:g} nodes (median)",
    ]
    return BenchResult(NAME, size, [table, targets], res, notes)
