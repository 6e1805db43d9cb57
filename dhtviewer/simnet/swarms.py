"""Swarms of the simulated network: seeded info-hashes and the peers announced by joined clients.

Seeded swarms are what a lookup can find from the start: ``count`` random info-hashes whose
sizes follow a Zipf law (the r-th largest has about ``max_peers / r**s`` peers), each stored by
the ``storers`` nodes closest to it, which is where announces land on a settled network. Their
peers carry addresses of simulated nodes (a BitTorrent peer usually runs a DHT node on the same
host) and made-up TCP ports. Their encoded ``values`` entries are built once, so a get_peers
reply is a slice and a join.

Announces from joined clients are real: ``announce_peer`` to a simulated node (with a valid
token) stores the peer in one bounded, expiring ``dht.peer_store.PeerStore`` and remembers which
nodes hold it; a get_peers to one of those nodes returns it, so clients find each other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from dhtviewer.dht import compact
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.peer_store import PeerStore
from dhtviewer.simnet.addresses import ip_text
from dhtviewer.simnet.index import DEAD, ERRORING, MALFORMED, READ_ONLY, SYBIL, NodeIndex

__all__ = ["MAX_VALUES", "Swarm", "Swarms", "plan_swarms"]

MAX_VALUES = 50
"""Peers in one get_peers reply (deployed nodes: 50 to 100, so a reply stays under ~1,400 B)."""
ANNOUNCED_INFO_HASHES = 5000
ANNOUNCED_PEERS_PER_INFO_HASH = 500
ANNOUNCED_PEERS = 100_000
ANNOUNCE_TTL = 30 * 60.0
"""Bounds of the announced-peer store: 100,000 peers at most (about 60 MB), kept 30 minutes
without a re-announce (BEP 5 deployments keep 30 to 120 minutes)."""
_STORER_EXCLUDE = DEAD | READ_ONLY | SYBIL | ERRORING | MALFORMED
"""Nodes that never hold a swarm. An away node does: it comes back with its store."""


def _value_entry(ip: int, port: int) -> bytes:
    return b"6:" + ip.to_bytes(4, "big") + port.to_bytes(2, "big")


@dataclass(slots=True)
class Swarm:
    """One seeded info-hash: its peers (as announced) and the nodes that store them."""

    info_hash: bytes
    peers: list[Addr]
    storers: list[int]
    entries: list[bytes]
    """Each peer as a bencoded ``values`` item (``6:`` + compact peer)."""


def plan_swarms(
    count: int, zipf: float, max_peers: int, rng: np.random.Generator
) -> tuple[list[bytes], list[int]]:
    """``count`` distinct random info-hashes, most popular first, and their Zipf sizes (the
    r-th has ``max(1, round(max_peers / r**zipf))`` peers)."""
    raw = rng.integers(0, 256, size=(count, 20), dtype=np.uint8)
    hashes = list(dict.fromkeys(raw[r].tobytes() for r in range(count)))
    ranks = np.arange(1, len(hashes) + 1, dtype=np.float64)
    sizes = np.maximum(1, np.round(max_peers / ranks**zipf)).astype(np.int64)
    return hashes, [int(x) for x in sizes]


class Swarms:
    """Seeded swarms and announced peers, and what a node answers about an info-hash."""

    def __init__(
        self,
        index: NodeIndex,
        hashes: list[bytes],
        sizes: list[int],
        storers: int,
        rng: np.random.Generator,
    ) -> None:
        """``hashes``/``sizes``: from ``plan_swarms``."""
        self.index = index
        self.seeded: dict[bytes, Swarm] = {}
        self._stored_at: dict[int, list[bytes]] = {}
        """Node position -> the seeded info-hashes it stores."""
        total = sum(sizes)
        hosts = rng.integers(0, index.n, size=total)
        ports = rng.integers(1024, 65536, size=total)
        at = 0
        for info_hash, size in zip(hashes, sizes, strict=True):
            ips = [index.ip(int(h)) for h in hosts[at : at + size]]
            tcp = [int(p) for p in ports[at : at + size]]
            at += size
            held = index.true_closest(int.from_bytes(info_hash, "big"), storers, _STORER_EXCLUDE)
            self.seeded[info_hash] = Swarm(
                info_hash,
                [(ip_text(ip), port) for ip, port in zip(ips, tcp, strict=True)],
                held,
                [_value_entry(ip, port) for ip, port in zip(ips, tcp, strict=True)],
            )
            for pos in held:
                self._stored_at.setdefault(pos, []).append(info_hash)
        self.by_size = sorted(self.seeded.values(), key=lambda s: -len(s.peers))
        self.announced = PeerStore(
            max_info_hashes=ANNOUNCED_INFO_HASHES,
            max_peers_per_info_hash=ANNOUNCED_PEERS_PER_INFO_HASH,
            ttl=ANNOUNCE_TTL,
            max_peers=ANNOUNCED_PEERS,
        )
        self._announced_at: dict[bytes, set[int]] = {}
        """Announced info-hash -> nodes that received an announce for it."""
        self.announces = 0

    # --- serving --------------------------------------------------------------------------------
    def values(self, pos: int, info_hash: bytes, now: float, rng: random.Random) -> list[bytes]:
        """The bencoded ``values`` items node ``pos`` returns for ``info_hash`` (possibly
        none): a window of its seeded peers and the peers announced to it."""
        out: list[bytes] = []
        swarm = self.seeded.get(info_hash)
        if swarm is not None and pos in swarm.storers:
            entries = swarm.entries
            n = len(entries)
            if n <= MAX_VALUES:
                out = list(entries)
            else:
                start = rng.randrange(n)
                end = start + MAX_VALUES
                out = entries[start:end] if end <= n else entries[start:] + entries[: end - n]
        holders = self._announced_at.get(info_hash)
        if holders is not None and pos in holders and len(out) < MAX_VALUES:
            for host, port in self.announced.get(info_hash, now, rng, MAX_VALUES - len(out), 4):
                out.append(b"6:" + compact.encode_peer((host, port)))
        return out

    def stored_info_hashes(self, pos: int) -> list[bytes]:
        """Info-hashes node ``pos`` stores (for BEP 51 samples)."""
        seeded = self._stored_at.get(pos, [])
        announced = [ih for ih, holders in self._announced_at.items() if pos in holders]
        return seeded + announced if announced else seeded

    def announce(self, pos: int, info_hash: bytes, peer: Addr, now: float,
                 seed: bool | None) -> None:
        """Node ``pos`` accepted an announce (token already checked)."""
        self.announces += 1
        self.announced.add(info_hash, peer, now, seed=seed)
        holders = self._announced_at.setdefault(info_hash, set())
        holders.add(pos)
        if len(self._announced_at) > 2 * ANNOUNCED_INFO_HASHES:
            # The store evicted swarms; forget their holders too (bounded memory).
            for ih in [ih for ih in self._announced_at if ih not in self.announced]:
                del self._announced_at[ih]

    # --- ground truth -----------------------------------------------------------------------------
    def true_peers(self, info_hash: bytes, now: float) -> list[Addr] | None:
        """Every peer of ``info_hash`` (seeded and announced), or None if nobody has it."""
        swarm = self.seeded.get(info_hash)
        announced = self.announced.get(info_hash, now, random.Random(0), 1 << 30)
        if swarm is None and not announced:
            return None
        return (list(swarm.peers) if swarm else []) + [p for p in announced
                                                      if not swarm or p not in swarm.peers]

    def holders(self, info_hash: bytes) -> list[int]:
        swarm = self.seeded.get(info_hash)
        held = list(swarm.storers) if swarm else []
        return held + sorted(self._announced_at.get(info_hash, set()) - set(held))
