"""The ``dhtviewer simnet`` command line: its options, limits and ``--scenario`` parsing.

Kept apart from ``command.py`` so that building the CLI parser imports nothing heavy (numpy and
the network load only when the subcommand runs: the desktop application's start time counts).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from dhtviewer.infohash import InfohashError, parse_infohash
from dhtviewer.simnet.profile import PROFILES

__all__ = [
    "BYTES_PER_NODE",
    "BYTES_PER_SWARM",
    "DEFAULT_BASE",
    "DEFAULT_NODES",
    "ScenarioError",
    "Scenarios",
    "add_arguments",
    "parse_scenarios",
]

DEFAULT_BASE = "127.64.0.0"
DEFAULT_NODES = 1_000_000
DEFAULT_PORTS = 4
MAX_PORTS = 64
MAX_MEMBER_RATE = 10_000.0
MAX_SWARMS = 50_000_000
MAX_ZIPF = 5.0
BYTES_PER_NODE = 420
"""Peak memory per simulated node while building, a bound (measured with the default swarms:
3.9 GB at the peak for 10,000,000 nodes, 2.6 GB running, all processes together)."""
BYTES_PER_SWARM = 160
"""Peak memory per seeded swarm while building (its hash, peers, storers and lookups)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, default=DEFAULT_NODES, metavar="N",
                   help=f"simulated nodes (default {DEFAULT_NODES:,}; 10,000,000 need about "
                   "4 GB while building)")
    p.add_argument("--base", default=DEFAULT_BASE, metavar="IP",
                   help=f"start of the loopback block the nodes live in (default {DEFAULT_BASE}, "
                   "a /10; a larger network takes more of 127/8, never 127.0.0.0/16)")
    p.add_argument("--port", type=int, default=0, metavar="P",
                   help="first UDP port (default 0: ephemeral ports)")
    p.add_argument("--ports", type=int, default=None, metavar="N",
                   help=f"spread the nodes over N ports (default {DEFAULT_PORTS}, or one per "
                   "core where there are more: each serving process takes whole ports)")
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
    p.add_argument("--swarms", type=int, default=None, metavar="N",
                   help="seeded info-hashes (default: one per two nodes, as many as a BEP 51 "
                   "crawl of the real network suggests)")
    p.add_argument("--zipf", type=float, default=None, metavar="S",
                   help="exponent of the Zipf law of swarm sizes (default 1.0)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="serving processes (default: one per core, at most --ports; 0: serve "
                   "in one process)")
    p.add_argument("--control", type=int, default=0, metavar="PORT",
                   help="TCP port of the control API on 127.0.0.1 (default 0: any)")
    # The desktop application's pid: the network ends itself when that process is gone.
    p.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)


MAX_CLUSTERS = 48
"""Sybil clusters one network can hold (each takes one of the reserved /24s)."""
ECLIPSE_SYBILS = 16
ECLIPSE_PREFIX_BITS = 48
POISON_SYBILS = 8
POISON_PREFIX_BITS = 40
POISON_SWARMS = 10
SPOOF_SHARE = 0.1
FLOODERS = 4
MAX_FLOOD_RATE = 100_000.0
MAX_CHURN_RATE = 1_000_000.0
NAMES = ("eclipse", "poison", "spoof", "flood", "churn")


class ScenarioError(ValueError):
    """A ``--scenario`` argument that cannot be used (the message says why)."""


@dataclass
class Scenarios:
    """The parsed ``--scenario`` arguments."""

    eclipse: list[bytes] = field(default_factory=list)
    poison_swarms: int = 0
    spoof_share: float = 0.0
    flood_rate: float = 0.0
    churn_rate: float | None = None

    def describe(self) -> list[str]:
        out = [f"eclipse:{ih.hex()}" for ih in self.eclipse]
        if self.poison_swarms:
            out.append(f"poison:{self.poison_swarms}")
        if self.spoof_share:
            out.append(f"spoof:{self.spoof_share:g}")
        if self.flood_rate:
            out.append(f"flood:{self.flood_rate:g}")
        if self.churn_rate is not None:
            out.append(f"churn:{self.churn_rate:g}")
        return out


def _number(name: str, arg: str, lo: float, hi: float) -> float:
    try:
        value = float(arg)
    except ValueError:
        raise ScenarioError(f"{name}: not a number: {arg!r}") from None
    if not lo <= value <= hi:
        raise ScenarioError(f"{name}: must be in {lo:g}..{hi:g}, got {arg}")
    return value


def parse_scenarios(specs: list[str]) -> Scenarios:
    """Parse ``NAME[:ARG]`` strings; raises ``ScenarioError`` with a one-line reason."""
    out = Scenarios()
    for spec in specs:
        name, _, arg = spec.partition(":")
        name = name.strip().lower()
        if name == "eclipse":
            if not arg:
                raise ScenarioError("eclipse needs a target: eclipse:INFOHASH")
            try:
                out.eclipse.append(parse_infohash(arg))
            except InfohashError as err:
                raise ScenarioError(f"eclipse: {err}") from None
        elif name == "poison":
            out.poison_swarms = int(_number("poison", arg, 1, 1000)) if arg else POISON_SWARMS
        elif name == "spoof":
            out.spoof_share = _number("spoof", arg, 0.0, 1.0) if arg else SPOOF_SHARE
        elif name == "flood":
            if not arg:
                raise ScenarioError("flood needs a rate: flood:RATE (queries/s per client)")
            out.flood_rate = _number("flood", arg, 0.001, MAX_FLOOD_RATE)
        elif name == "churn":
            if not arg:
                raise ScenarioError("churn needs a rate: churn:RATE (nodes leaving per second)")
            out.churn_rate = _number("churn", arg, 0.0, MAX_CHURN_RATE)
        else:
            raise ScenarioError(f"unknown scenario {name!r} (known: {', '.join(NAMES)})")
    if len(out.eclipse) + (1 if out.flood_rate else 0) + 1 > MAX_CLUSTERS:
        raise ScenarioError("too many eclipse targets")
    return out
