"""The lookup benchmark of ``sim_lookups`` on 100,000 nodes, when memory allows.

Same network conditions, lookups and lower bound as ``sim_lookups``; only the configurations
that keep the core's default short-timeout behaviour run (alpha 3, 4 and 8), since the network
alone takes minutes to build. Kept apart so that each benchmark stays within about 15 minutes.
Skipped (with a note) when the machine has not enough memory available: a seeded node takes
about 63 KB, and each forked configuration copies part of the network. Building the network
(``bootstrap_all(mode="seed")``) takes most of the time: 7 minutes on a quiet 2-core machine
(6.3 GB RSS), three times that with other jobs running.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from benchmarks import sim_lookups
from benchmarks.common import BenchResult, Table, available_memory_mb, check_size

NAME = "sim_lookups_100k"
TITLE = "get_peers lookups in simulation on 100,000 nodes (same conditions as sim_lookups)"

SEED = 3
MB_PER_NODE = 0.070  # measured RSS per seeded node, with some margin
# size -> (nodes, lookups, info-hashes)
_PARAMS = {"tiny": (300, 6, 2), "medium": (30_000, 100, 10), "full": (100_000, 200, 20)}


def run(size: str = "full") -> BenchResult:
    check_size(size)
    nodes, lookups, hashes = _PARAMS[size]
    need = nodes * MB_PER_NODE * 2.0  # the parent plus the forked children's copies
    avail = available_memory_mb()
    if avail is not None and avail < need:
        t = Table(f"{nodes:,} nodes: skipped", ["reason"])
        t.add(f"{avail:,.0f} MB available, about {need:,.0f} MB needed")
        return BenchResult(NAME, size, [t], {"skipped": True, "available_mb": avail})
    configs = [c for c in sim_lookups.CONFIGS if c.short_timeout is None and not c.cold]
    if size == "tiny":
        configs = [sim_lookups.DEFAULT]
    fork = sim_lookups.can_fork(size)
    if fork:
        # Built in a child, so that the gigabytes go back to the system when it exits.
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child, nodes, lookups, hashes, configs))
        proc.start()
        child.close()
        status, res = parent.recv()
        proc.join()
        if status != "ok":
            raise RuntimeError(f"the {nodes:,}-node run failed: {res}")
    else:
        res = sim_lookups.measure(nodes, lookups, hashes, configs, False, seed=SEED)
    return sim_lookups.report(res, size, NAME, targets=nodes >= 10_000)


def _child(conn: Any, nodes: int, lookups: int, hashes: int,
           configs: list[sim_lookups.Config]) -> None:
    try:
        res = sim_lookups.measure(nodes, lookups, hashes, configs, True, seed=SEED)
        conn.send(("ok", res))
    except BaseException as err:  # the parent raises it
        conn.send(("error", repr(err)))
    finally:
        conn.close()
