"""``dhtviewer simnet``: build the simulated Mainline, print one JSON line, serve until a signal.

The JSON line (stdout, flushed) is what scripts and the desktop application wait for::

    {"routers": ["127.64.12.34:40123", ...], "control": "127.0.0.1:PORT", "nodes": N,
     "build_s": 9.2, "network_s": 7.9, "rss_mb": 380.5, "pss_mb": 395.1, "workers": 2,
     "ports": [...], "profile": "realistic", ...}

``build_s`` counts from the start of the process (the interpreter and its imports included) to
the line; ``network_s`` is the building of the network alone. ``rss_mb`` is the parent's
resident memory and ``peak_rss_mb`` its peak (while building: the most the network ever
needs); ``pss_mb`` is the sum over the parent and the serving processes of their proportional
set sizes (pages shared copy-on-write counted once): what the network costs.

Bad arguments (a base address outside 127/8, a busy port, more nodes than the address space or
the memory holds, an unknown scenario) get one line on stderr and exit status 2. A serving
process that dies ends the network with status 1 and a line saying which.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from dhtviewer.simnet.addresses import AddressPlan
from dhtviewer.simnet.control import ControlApi, LoopBackend, LoopCalls
from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.options import (
    BYTES_PER_NODE,
    BYTES_PER_SWARM,
    DEFAULT_PORTS,
    MAX_MEMBER_RATE,
    MAX_PORTS,
    MAX_SWARMS,
    MAX_ZIPF,
    ScenarioError,
    parse_scenarios,
)
from dhtviewer.simnet.profile import PROFILES
from dhtviewer.simnet.questions import memory_mb
from dhtviewer.simnet.server import Sender, SimnetServer, open_sockets
from dhtviewer.simnet.workers import (
    Coordinator,
    WorkerError,
    WorkerPool,
    default_workers,
    usable_cores,
)

__all__ = ["run"]

log = logging.getLogger(__name__)
_BASE_MB = 60
PARENT_CHECK = 1.0
"""Seconds between two checks that the ``--parent`` process is still there."""


class _Usage(Exception):
    pass


def _check(args: argparse.Namespace) -> tuple[SimnetConfig, int]:
    """The configuration and the number of serving processes."""
    if args.nodes < 1:
        raise _Usage(f"--nodes must be at least 1, got {args.nodes}")
    if args.ports is None:
        args.ports = min(MAX_PORTS, max(DEFAULT_PORTS, usable_cores()))
    if not 1 <= args.ports <= MAX_PORTS:
        raise _Usage(f"--ports must be 1..{MAX_PORTS}, got {args.ports}")
    if not 0 <= args.port <= 65535 - args.ports + 1:
        raise _Usage(f"--port must be 0..{65536 - args.ports}, got {args.port}")
    if not 0 <= args.control <= 65535:
        raise _Usage(f"--control must be 0..65535, got {args.control}")
    if args.member_rate is not None and not 0 <= args.member_rate <= MAX_MEMBER_RATE:
        raise _Usage(f"--member-rate must be 0..{MAX_MEMBER_RATE:g}, got {args.member_rate:g}")
    if args.swarms is not None and not 1 <= args.swarms <= MAX_SWARMS:
        raise _Usage(f"--swarms must be 1..{MAX_SWARMS:,}, got {args.swarms}")
    if args.zipf is not None and not 0.0 <= args.zipf <= MAX_ZIPF:
        raise _Usage(f"--zipf must be 0..{MAX_ZIPF:g}, got {args.zipf:g}")
    workers = args.workers if args.workers is not None else default_workers(args.ports)
    if not 0 <= workers <= args.ports:
        raise _Usage(f"--workers must be 0..{args.ports} (at most one per port; 0: serve in "
                     f"one process), got {workers}")
    if workers and not hasattr(os, "fork"):
        workers = 0  # no fork here: one process serves everything
    try:
        AddressPlan.for_nodes(args.nodes, args.base)
    except ValueError as err:
        raise _Usage(str(err)) from None
    swarms = args.swarms if args.swarms is not None else args.nodes // 2
    need_mb = _BASE_MB + args.nodes * BYTES_PER_NODE / 2**20 + swarms * BYTES_PER_SWARM / 2**20
    avail = _available_mb()
    if avail is not None and need_mb > avail:
        raise _Usage(f"{args.nodes:,} nodes need about {need_mb / 1024:.1f} GB of memory; "
                     f"{avail / 1024:.1f} GB available")
    try:
        scenarios = parse_scenarios(args.scenario)
    except ScenarioError as err:
        raise _Usage(f"--scenario {err}") from None
    config = SimnetConfig(nodes=args.nodes, seed=args.seed, profile=PROFILES[args.profile],
                          scenarios=scenarios, base=args.base, member_rate=args.member_rate,
                          swarms=args.swarms, zipf=args.zipf)
    return config, workers


def _available_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def process_age() -> float | None:
    """Seconds since this process started (Linux, to 10 ms), or None where unknown: the
    interpreter's start-up and imports count in the build time a user waits for."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    # Both count from boot (the start in clock ticks, the uptime to 10 ms).
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace) -> int:
    """The subcommand: 0 after a signal, 2 for bad arguments, 1 if a serving process died."""
    started = time.perf_counter()
    age = process_age()  # the interpreter's start-up and imports, so far
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    try:
        config, workers = _check(args)
        try:
            sockets = open_sockets(args.port, args.ports)
        except OSError as err:
            raise _Usage(
                f"cannot open UDP port {args.port or 'any'}: {err.strerror or err}"
            ) from None
        try:
            net = Simnet(config, [s.getsockname()[1] for s in sockets], time.time())
        except ValueError as err:
            for s in sockets:
                s.close()
            raise _Usage(str(err)) from None
    except _Usage as err:
        print(f"dhtviewer: error: {err}", file=sys.stderr)
        return 2
    network_s = time.perf_counter() - started
    # Installed before the serving processes are forked: they inherit them (and a Ctrl+C in a
    # terminal reaches every process of the group).
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    pool = WorkerPool(net, sockets, workers) if workers else None
    calls = LoopCalls()
    loop: Sender
    if pool is not None:
        loop = Coordinator(net, sockets, pool, calls)
    else:
        loop = SimnetServer(net, sockets, calls=calls)
    build: dict[str, Any] = {}
    api = ControlApi(net, LoopBackend(calls, loop), build=build)
    try:
        httpd = api.serve(args.control)
    except OSError as err:
        print(f"dhtviewer: error: cannot open control port {args.control}: "
              f"{err.strerror or err}", file=sys.stderr)
        if pool is not None:
            pool.stop()
        return 2
    pss = memory_mb()["pss_mb"] + sum(memory_mb(w.pid)["pss_mb"]
                                      for w in (pool.workers if pool else []))
    build.update({
        "build_s": round((age or 0.0) + time.perf_counter() - started, 3),
        "network_s": round(network_s, 3),
    })
    doc = {
        "routers": [f"{h}:{p}" for h, p in net.router_addrs()],
        "control": f"127.0.0.1:{httpd.server_address[1]}",
        "nodes": net.size()["nodes"],
        **build,
        "rss_mb": round(memory_mb()["rss_mb"], 1),
        "peak_rss_mb": round(memory_mb()["peak_rss_mb"], 1),
        "pss_mb": round(pss, 1),
        "workers": workers,
        "ports": [s.getsockname()[1] for s in sockets],
        "profile": net.profile.name,
        "scenarios": config.scenarios.describe(),
        "swarms": net.swarms.count,
        "addresses": net.plan.cidr(),
        "seed": config.seed,
    }
    print(json.dumps(doc), flush=True)
    parent = args.parent
    checked = [time.monotonic()]

    def should_stop() -> bool:
        if parent is not None and time.monotonic() - checked[0] >= PARENT_CHECK:
            checked[0] = time.monotonic()
            if os.getppid() != parent:
                log.warning("the parent process %d is gone: stopping", parent)
                return True
        return stop

    status = 0
    try:
        loop.run(should_stop)
    except WorkerError as err:
        print(f"dhtviewer: error: {err}", file=sys.stderr, flush=True)
        status = 1
    finally:
        if pool is not None:
            pool.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        httpd.shutdown()
        httpd.server_close()
        calls.close()
        for s in sockets:
            s.close()
    return status
