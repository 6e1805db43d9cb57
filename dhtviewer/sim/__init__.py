"""Discrete-event simulation of many DhtNodes on a virtual clock (tests and benchmarks)."""

from dhtviewer.sim.latency import ConstantLatency, LatencyModel, LogNormalLatency
from dhtviewer.sim.network import (
    LookupHandle,
    LookupResult,
    SimNetwork,
    SimNode,
    SimStats,
    SimTimeoutError,
)

__all__ = [
    "ConstantLatency",
    "LatencyModel",
    "LogNormalLatency",
    "LookupHandle",
    "LookupResult",
    "SimNetwork",
    "SimNode",
    "SimStats",
    "SimTimeoutError",
]
