"""Resources of a headless node: resident memory with the peer store filled to its caps.

A ``DhtSession`` runs in a fresh (spawned) process on 127.0.72.1, with no bootstrap. Its RSS is
read after start, after a routing table of 400 contacts is added, and after its peer store is
offered, through the node's store API (``node.store.add``), ``max_info_hashes`` info-hashes of
``max_peers_per_info_hash`` distinct IPv4 peers each (the defaults: 3,000 x 500 = 1.5 million
announces), of which it keeps ``max_stored_peers`` (50,000 by default). Every peer address is
its own string object, as it would be when decoded off the wire.
The GUI figures (window start time, GUI RSS after a long run) are in the ``gui`` benchmark.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import random
import time
from typing import Any

from benchmarks.common import BenchResult, Table, check_size, rss_mb
from dhtviewer.dht.settings import DhtSettings

NAME = "resources"
TITLE = "Memory of a headless node with a full peer store"

NODE_IP = "127.0.72.1"

# size -> (info-hashes, peers per info-hash); None = the settings' caps
_PARAMS: dict[str, tuple[int, int] | None] = {"tiny": (30, 50), "medium": (1000, 500),
                                              "full": None}


def _child(conn: multiprocessing.connection.Connection, swarms: int, peers: int) -> None:
    conn.send(asyncio.run(_measure(swarms, peers)))
    conn.close()


async def _measure(swarms: int, peers: int) -> dict[str, Any]:
    from benchmarks.serving import fill_node
    from dhtviewer.net.session import DhtSession

    loop = asyncio.get_running_loop()
    out: dict[str, Any] = {"rss_process_start_mb": rss_mb()}
    settings = DhtSettings()
    session = DhtSession(settings, bind=(NODE_IP, 0), rng=random.Random(1))
    await session.start(bootstrap=[], wait=False)
    node = session.node
    assert node is not None
    out["rss_started_mb"] = rss_mb()
    fill_node(node, random.Random(2), loop.time(), contacts=400, swarms=0)
    out["rss_with_table_mb"] = rss_mb()
    rng = random.Random(3)
    now = loop.time()
    t0 = time.perf_counter()
    add = node.store.add
    for _ in range(swarms):
        ih = rng.randbytes(20)
        for _ in range(peers):
            v = rng.getrandbits(32)
            ip = f"{1 + v % 223}.{(v >> 8) & 255}.{(v >> 16) & 255}.{1 + (v >> 24) % 254}"
            add(ih, (ip, rng.randrange(1024, 65536)), now)
    out["fill_seconds"] = time.perf_counter() - t0
    out["rss_full_store_mb"] = rss_mb()
    out["stored_info_hashes"] = node.store.info_hash_count()
    out["stored_peers"] = node.store.peer_count()
    await session.stop()
    return out


def run(size: str = "full") -> BenchResult:
    check_size(size)
    s = DhtSettings()
    swarms, peers = _PARAMS[size] or (s.max_info_hashes, s.max_peers_per_info_hash)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, swarms, peers), daemon=True)
    proc.start()
    child.close()
    if not parent.poll(600):
        proc.kill()
        raise TimeoutError("the measuring process did not report")
    r: dict[str, Any] = parent.recv()
    proc.join(30)
    grown = r["rss_full_store_mb"] - r["rss_with_table_mb"]
    per_peer = grown * 1024 * 1024 / r["stored_peers"] if r["stored_peers"] else None
    r["bytes_per_stored_peer"] = per_peer
    table = Table(
        f"Headless node RSS (peer store caps {s.max_info_hashes:,} info-hashes x "
        f"{s.max_peers_per_info_hash} peers, {s.max_stored_peers:,} in all; announces offered: "
        f"{swarms:,} x {peers})",
        ["state", "RSS MB"],
    )
    table.add("process with dhtviewer imported", r["rss_process_start_mb"])
    table.add("session started (no contacts)", r["rss_started_mb"])
    table.add("+ 400 routing contacts", r["rss_with_table_mb"])
    table.add(f"+ {r['stored_peers']:,} peers in {r['stored_info_hashes']:,} info-hashes",
              r["rss_full_store_mb"])
    table.notes.append(f"{per_peer:.0f} bytes of RSS per stored peer; filling took "
                       f"{r['fill_seconds']:.1f} s" if per_peer else "no peers stored")
    return BenchResult(NAME, size, [table], r)
