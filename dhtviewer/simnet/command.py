"""``dhtviewer simnet``: build the simulated Mainline, print one JSON line, serve until a signal.

The JSON line (stdout, flushed) is what scripts and the desktop application wait for::

    {"routers": ["127.64.12.34:40123", ...], "control": "127.0.0.1:PORT", "nodes": N,
     "build_s": 4.2, "rss_mb": 380.5, "ports": [...], "profile": "realistic", ...}

Bad arguments (a base address outside 127/8, a busy port, more nodes than the address space or
the memory holds, an unknown scenario) get one line on stderr and exit status 2.
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

from dhtviewer.simnet.addresses import AddressPlan
from dhtviewer.simnet.control import ControlApi, rss_mb
from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.options import (
    BYTES_PER_NODE,
    MAX_MEMBER_RATE,
    MAX_PORTS,
    ScenarioError,
    parse_scenarios,
)
from dhtviewer.simnet.profile import PROFILES
from dhtviewer.simnet.server import SimnetServer, open_sockets

__all__ = ["run"]

log = logging.getLogger(__name__)
_BASE_MB = 60
PARENT_CHECK = 1.0
"""Seconds between two checks that the ``--parent`` process is still there."""


class _Usage(Exception):
    pass


def _check(args: argparse.Namespace) -> SimnetConfig:
    if args.nodes < 1:
        raise _Usage(f"--nodes must be at least 1, got {args.nodes}")
    if not 1 <= args.ports <= MAX_PORTS:
        raise _Usage(f"--ports must be 1..{MAX_PORTS}, got {args.ports}")
    if not 0 <= args.port <= 65535 - args.ports + 1:
        raise _Usage(f"--port must be 0..{65536 - args.ports}, got {args.port}")
    if not 0 <= args.control <= 65535:
        raise _Usage(f"--control must be 0..65535, got {args.control}")
    if args.member_rate is not None and not 0 <= args.member_rate <= MAX_MEMBER_RATE:
        raise _Usage(f"--member-rate must be 0..{MAX_MEMBER_RATE:g}, got {args.member_rate:g}")
    try:
        AddressPlan.for_nodes(args.nodes, args.base)
    except ValueError as err:
        raise _Usage(str(err)) from None
    need_mb = _BASE_MB + args.nodes * BYTES_PER_NODE / 2**20
    avail = _available_mb()
    if avail is not None and need_mb > avail:
        raise _Usage(f"{args.nodes:,} nodes need about {need_mb / 1024:.1f} GB of memory; "
                     f"{avail / 1024:.1f} GB available")
    try:
        scenarios = parse_scenarios(args.scenario)
    except ScenarioError as err:
        raise _Usage(f"--scenario {err}") from None
    return SimnetConfig(nodes=args.nodes, seed=args.seed, profile=PROFILES[args.profile],
                        scenarios=scenarios, base=args.base, member_rate=args.member_rate)


def _available_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def run(args: argparse.Namespace) -> int:
    """The subcommand: 0 after a signal, 2 for bad arguments."""
    started = time.perf_counter()
    try:
        config = _check(args)
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
    server = SimnetServer(net, sockets)
    api = ControlApi(net, server)
    try:
        httpd = api.serve(args.control)
    except OSError as err:
        print(f"dhtviewer: error: cannot open control port {args.control}: "
              f"{err.strerror or err}", file=sys.stderr)
        return 2
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    doc = {
        "routers": [f"{h}:{p}" for h, p in net.router_addrs()],
        "control": f"127.0.0.1:{httpd.server_address[1]}",
        "nodes": net.index.n,
        "build_s": round(time.perf_counter() - started, 3),
        "rss_mb": round(rss_mb(), 1),
        "ports": [s.getsockname()[1] for s in sockets],
        "profile": net.profile.name,
        "scenarios": config.scenarios.describe(),
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

    try:
        server.run(should_stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        httpd.shutdown()
        httpd.server_close()
        for s in sockets:
            s.close()
    return 0
