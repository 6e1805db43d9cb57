"""The ``dhtviewer simnet`` command line: its options and limits.

Kept apart from ``command.py`` so that building the CLI parser imports nothing heavy (numpy and
the network load only when the subcommand runs: the desktop application's start time counts).
"""

from __future__ import annotations

import argparse

from dhtviewer.simnet.profile import PROFILES

__all__ = ["DEFAULT_BASE", "DEFAULT_NODES", "add_arguments"]

DEFAULT_BASE = "127.64.0.0"
DEFAULT_NODES = 1_000_000
DEFAULT_PORTS = 4
MAX_PORTS = 64
MAX_MEMBER_RATE = 10_000.0
BYTES_PER_NODE = 420
"""Peak memory per simulated node while building (measured: ~400 MB for 1,000,000 nodes,
~4.2 GB for 10,000,000); the running network keeps about 190 bytes per node."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, default=DEFAULT_NODES, metavar="N",
                   help=f"simulated nodes (default {DEFAULT_NODES:,}; 10,000,000 needs about "
                   f"{10_000_000 * BYTES_PER_NODE / 1e9:.1f} GB)")
    p.add_argument("--base", default=DEFAULT_BASE, metavar="IP",
                   help=f"start of the loopback block the nodes live in (default {DEFAULT_BASE}, "
                   "a /10; a larger network takes more of 127/8, never 127.0.0.0/16)")
    p.add_argument("--port", type=int, default=0, metavar="P",
                   help="first UDP port (default 0: ephemeral ports)")
    p.add_argument("--ports", type=int, default=DEFAULT_PORTS, metavar="N",
                   help=f"spread the nodes over N ports (default {DEFAULT_PORTS})")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="realistic",
                   help="realistic (latency, loss, dead nodes, churn; default) or friendly "
                   "(none of it, for fast tests)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME[:ARG]",
                   help="eclipse:INFOHASH, poison[:N], spoof[:SHARE], flood:RATE, churn:RATE "
                   "(repeatable)")
    p.add_argument("--member-rate", type=float, default=None, metavar="R",
                   help="background queries per second sent to each joined client "
                   "(default: the profile's, 20)")
    p.add_argument("--control", type=int, default=0, metavar="PORT",
                   help="TCP port of the control API on 127.0.0.1 (default 0: any)")


