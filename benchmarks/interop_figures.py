"""Lookup figures on a local libtorrent testnet: our get_peers lookups next to libtorrent's own.

Starts N libtorrent DHT nodes on loopback (127.0.90.x) and our ``DhtSession`` on 127.0.91.1,
bootstrapped from three of them. Announces L random info_hashes, each from a random libtorrent
node, then for each one runs our ``find_peers`` and a ``dht_get_peers`` from another libtorrent
node, and prints one row per lookup and the medians. Not a test; run it from the repository
root with the test extra installed::

    .venv/bin/python -m benchmarks.interop_figures [--nodes 30] [--lookups 10] [--dead 0.0]

Ours: time to first peer (``LookupStarted`` to the first ``PeersFound``), completion
(``LookupFinished.elapsed``), distinct nodes queried and responded (``LookupResult``).
libtorrent: time to first peer (traversal start to the first ``dht_get_peers_reply_alert``),
completion (the traversal's COMPLETED line in libtorrent's DHT log), get_peers queries sent
(``dht_outgoing_get_peers_alert``) and responses (RESPONSE lines), all from libtorrent's own
alert timestamps. Every alert is read right after ``pop_alerts`` returned it: the binding's
alerts are freed by the next ``pop_alerts`` of that session.

``--dead F`` silences a fraction F of the libtorrent nodes (neither announcers nor searchers)
after the announces, so lookups meet unanswered queries as on the real network.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

# Run as a script from anywhere: the repository root holds dhtviewer/ and tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import side_by_side
from dhtviewer.dht import events as ev
from dhtviewer.net.session import DhtSession
from tests.support.libtorrent_net import LibtorrentNet

LT_BASE = "127.0.90.1"
OUR_IP = "127.0.91.1"
LOOKUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Figures:
    """One lookup. Times in seconds; None when it did not happen (no peer, no log line)."""

    peers: int
    first_peer: float | None
    done: float | None
    queried: int
    responded: int


def libtorrent_lookup(net: LibtorrentNet, i: int, info_hash: bytes, timeout: float) -> Figures:
    """Node ``i`` runs ``dht_get_peers(info_hash)``; figures from its alerts (blocking)."""
    f = side_by_side.libtorrent_lookup(net, i, info_hash, timeout)
    return Figures(
        f["peers"], f["first_peer"], f["completion"], f["queries"], f["responded"]
    )


async def our_lookup(session: DhtSession, info_hash: bytes) -> Figures:
    handle = session.start_find_peers(info_hash)
    result = await handle.result(LOOKUP_TIMEOUT)
    started = next(e.at for e in handle.events if isinstance(e, ev.LookupStarted))
    first = next((e.at for e in handle.events if isinstance(e, ev.PeersFound) and e.peers), None)
    return Figures(
        len(result.peers),
        None if first is None else first - started,
        result.elapsed,
        result.queried,
        result.responded,
    )


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_count(values: list[int]) -> str:
    return f"{statistics.median(values):g}"


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    net = LibtorrentNet(n=args.nodes, base=LT_BASE, seed=args.seed)
    await asyncio.to_thread(net.start, 30.0)
    session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(args.seed))
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await session.start(bootstrap=net.addrs[:3], timeout=30)
        bootstrap_s = loop.time() - t0

        # (info_hash, announcer, searcher); the searcher is another libtorrent node.
        plan: list[tuple[bytes, int, int]] = []
        for k in range(args.lookups):
            info_hash = rng.randbytes(20)
            announcer, searcher = rng.sample(range(args.nodes), 2)
            await asyncio.to_thread(side_by_side.forget_alerts, net)
            stored = await asyncio.to_thread(net.announce, announcer, info_hash, 6881 + k)
            if stored == 0:
                raise RuntimeError(f"announce {k} was stored by no libtorrent node")
            plan.append((info_hash, announcer, searcher))
        busy = {i for _ih, a, s in plan for i in (a, s)}
        dead = rng.sample(
            [i for i in range(args.nodes) if i not in busy], int(args.dead * args.nodes)
        )
        if dead:
            await asyncio.to_thread(net.stop, dead)

        print(
            f"libtorrent {lt.__version__}: {args.nodes} nodes on {LT_BASE}+, "
            f"{len(dead)} silenced; ours on {OUR_IP}, routing table "
            f"{session.routing_snapshot().size} nodes after a {bootstrap_s * 1000:.0f} ms "
            f"bootstrap; setup of the libtorrent net {net.setup_seconds or 0:.2f} s"
        )
        header = (
            f"{'#':>2} {'info_hash':<10} | {'ours: peers':>11} {'1st peer ms':>11} "
            f"{'done ms':>8} {'queried':>7} {'resp':>4} | {'lt: peers':>9} {'1st peer ms':>11} "
            f"{'done ms':>8} {'queried':>7} {'resp':>4}"
        )
        print(header)
        print("-" * len(header))
        mine: list[Figures] = []
        theirs: list[Figures] = []
        for k, (info_hash, _announcer, searcher) in enumerate(plan):
            o = await our_lookup(session, info_hash)
            t = await asyncio.to_thread(
                libtorrent_lookup, net, searcher, info_hash, args.lt_timeout
            )
            mine.append(o)
            theirs.append(t)
            print(
                f"{k:>2} {info_hash.hex()[:10]} | {o.peers:>11} {ms(o.first_peer):>11} "
                f"{ms(o.done):>8} {o.queried:>7} {o.responded:>4} | {t.peers:>9} "
                f"{ms(t.first_peer):>11} {ms(t.done):>8} {t.queried:>7} {t.responded:>4}"
            )
        print("-" * len(header))
        print(
            f"{'median':<13} | {median_count([f.peers for f in mine]):>11} "
            f"{ms(median([f.first_peer for f in mine])):>11} "
            f"{ms(median([f.done for f in mine])):>8} "
            f"{median_count([f.queried for f in mine]):>7} "
            f"{median_count([f.responded for f in mine]):>4} | "
            f"{median_count([f.peers for f in theirs]):>9} "
            f"{ms(median([f.first_peer for f in theirs])):>11} "
            f"{ms(median([f.done for f in theirs])):>8} "
            f"{median_count([f.queried for f in theirs]):>7} "
            f"{median_count([f.responded for f in theirs]):>4}"
        )
        found = sum(f.peers >= 1 for f in mine)
        print(
            f"ours found the announced peer in {found}/{len(mine)} lookups; "
            f"libtorrent in {sum(f.peers >= 1 for f in theirs)}/{len(theirs)}"
        )
    finally:
        await session.stop()
        net.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=30, help="libtorrent nodes (default 30)")
    parser.add_argument("--lookups", type=int, default=10, help="info_hashes (default 10)")
    parser.add_argument(
        "--dead",
        type=float,
        default=0.0,
        help="fraction of libtorrent nodes silenced after announcing (default 0)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--lt-timeout",
        type=float,
        default=None,
        help="seconds to wait for a libtorrent lookup to complete (default 10, or 40 with --dead)",
    )
    args = parser.parse_args()
    if args.lt_timeout is None:
        args.lt_timeout = 40.0 if args.dead else 10.0
    if args.nodes < 3 or args.lookups < 1 or not 0 <= args.dead < 1:
        parser.error("need --nodes >= 3, --lookups >= 1 and 0 <= --dead < 1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
