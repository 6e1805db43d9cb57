"""Attack and stress scenarios of the simulated network (``--scenario NAME[:ARG]``).

- ``eclipse:INFOHASH``: a cluster of ``ECLIPSE_SYBILS`` Sybil nodes with ids next to the
  info-hash (sharing ``ECLIPSE_PREFIX_BITS`` bits with it, far closer than any honest node),
  all in one /24. Honest nodes near the target list them (they are the target's nearest
  neighbours); they answer every find_node and get_peers with each other only and never return
  peers, and they swallow announces: a lookup that trusts them ends at them, empty-handed.
- ``poison[:N]``: for each of the N most popular swarms (default 10), ``POISON_SYBILS`` Sybils
  next to the info-hash, sharing one /24, that answer get_peers with fake peers (addresses
  in a reserved /24 where no node lives, so they belong to no swarm) and refer to each other.
- ``spoof[:SHARE]``: a share (default 0.1) of the background queries to joined clients comes
  from forged sources: an address no simulated node has, claiming the id of a real node.
- ``flood:RATE``: ``FLOODERS`` nodes in one /24 send every joined client RATE queries per
  second between them, on top of the background traffic.
- ``churn:RATE``: RATE nodes leave per second (and as many come back), instead of the
  profile's rate.

The arguments are parsed in ``options.py`` (light, for the command line and the application's
network panel); this module places the scenario's nodes. Scenario Sybils are placed in the
reserved /24s of the address plan, one /24 per cluster, so that a subnet-diversity rule has
something to catch; ``/closest`` marks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from dhtviewer.simnet.addresses import RESERVED_SUBNETS, AddressPlan
from dhtviewer.simnet.index import PINNED, SYBIL, ExtraNode
from dhtviewer.simnet.options import (
    ECLIPSE_PREFIX_BITS,
    ECLIPSE_SYBILS,
    FLOODERS,
    POISON_PREFIX_BITS,
    POISON_SYBILS,
    Scenarios,
)

__all__ = ["FAKE_PEERS", "Cluster", "ClusterKind", "fake_peers", "spoof_subnet", "sybil_nodes"]

FAKE_PEERS = 40
"""Fake peers a poisoning Sybil hands out per swarm."""
_FAKE_PEER_SUBNET = RESERVED_SUBNETS - 2
_SPOOF_SUBNET = RESERVED_SUBNETS - 1


class ClusterKind(Enum):
    ECLIPSE = "eclipse"
    POISON = "poison"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Sybils placed around one target."""

    kind: ClusterKind
    target: bytes
    node_ids: tuple[bytes, ...]


def _near(target: bytes, prefix_bits: int, count: int, rng: np.random.Generator) -> list[bytes]:
    """``count`` distinct ids sharing exactly ``prefix_bits`` leading bits or more with
    ``target`` (random below the prefix)."""
    t = int.from_bytes(target, "big")
    low_bits = 160 - prefix_bits
    out: set[bytes] = set()
    while len(out) < count:
        low = int.from_bytes(rng.bytes(20), "big") & ((1 << low_bits) - 1)
        out.add((((t >> low_bits) << low_bits) | low).to_bytes(20, "big"))
    return sorted(out)


def sybil_nodes(
    scenarios: Scenarios,
    plan: AddressPlan,
    poison_targets: list[bytes],
    rng: np.random.Generator,
) -> tuple[list[ExtraNode], list[Cluster], list[int]]:
    """The scenario nodes to add to the index: Sybil clusters (eclipse, poison) and flooders.
    Returns (nodes, clusters, flooder ips). Reserved /24 number 0 is left free; each cluster
    takes the next one (the last two are the fake peers' and the forged sources'). Raises
    ``ValueError`` when the scenarios need more /24s than are reserved."""
    nodes: list[ExtraNode] = []
    clusters: list[Cluster] = []
    subnet = 1

    def next_subnet() -> int:
        nonlocal subnet
        if subnet >= _FAKE_PEER_SUBNET:
            raise ValueError(f"the scenarios need more than {_FAKE_PEER_SUBNET - 1} /24s of "
                             "Sybils: ask for fewer eclipse targets or poisoned swarms")
        subnet += 1
        return plan.reserved_subnet(subnet - 1)

    def place(kind: ClusterKind, target: bytes, ids: list[bytes]) -> None:
        base = next_subnet()
        for i, node_id in enumerate(ids):
            nodes.append(ExtraNode(node_id, base + 1 + i, SYBIL | PINNED))
        clusters.append(Cluster(kind, target, tuple(ids)))

    for target in scenarios.eclipse:
        place(ClusterKind.ECLIPSE, target,
              _near(target, ECLIPSE_PREFIX_BITS, ECLIPSE_SYBILS, rng))
    if poison_targets:
        # All poisoners share one /24: one operator's cluster.
        base = next_subnet()
        host = 1
        for target in poison_targets:
            ids = _near(target, POISON_PREFIX_BITS, POISON_SYBILS, rng)
            for node_id in ids:
                nodes.append(ExtraNode(node_id, base + host, SYBIL | PINNED))
                host += 1
                if host > 254:
                    base = next_subnet()
                    host = 1
            clusters.append(Cluster(ClusterKind.POISON, target, tuple(ids)))
    flooders: list[int] = []
    if scenarios.flood_rate:
        base = next_subnet()
        for i in range(FLOODERS):
            node_id = rng.bytes(20)
            nodes.append(ExtraNode(node_id, base + 1 + i, SYBIL | PINNED))
            flooders.append(base + 1 + i)
    return nodes, clusters, flooders


def spoof_subnet(plan: AddressPlan) -> int:
    """First address of the /24 that forged sources are drawn from (no node lives there)."""
    return plan.reserved_subnet(_SPOOF_SUBNET)


def fake_peers(plan: AddressPlan, rng: np.random.Generator) -> list[bytes]:
    """``FAKE_PEERS`` bencoded ``values`` items (``6:`` + compact peer) of hosts in a reserved
    /24 where no node lives (so no fake peer is ever a real node or a real peer)."""
    base = plan.reserved_subnet(_FAKE_PEER_SUBNET)
    hosts = rng.integers(1, 255, size=FAKE_PEERS)
    ports = rng.integers(1024, 65536, size=FAKE_PEERS)
    return [b"6:" + (base + int(h)).to_bytes(4, "big") + int(p).to_bytes(2, "big")
            for h, p in zip(hosts, ports, strict=True)]
