"""Swarms: the info-hashes the simulated network holds peers for, and who stores them.

Two kinds:

- **Seeded swarms**, made when the network is built: ``count`` random info-hashes, most popular
  first, with Zipf-distributed sizes (the r-th has ``max(1, round(max_peers / r**zipf))``
  peers). Each is stored by the ``storers`` answering nodes closest to it (BEP 5: where
  announces land), computed for all of them at once (``NodeIndex.closest_many``). A real node
  holds a handful of info-hashes; so does a simulated one once there are about as many swarms
  as nodes (the default is one per two nodes, see ``profile.py``), which is what a BEP 51 crawl
  meets. Everything is kept in numpy arrays (about 100 bytes per swarm): a million swarms are
  affordable where a million Python objects were not. The peers are simulated hosts (addresses
  of simulated nodes) with made-up TCP ports; a reply's ``values`` are cut from one buffer of
  compact peers.
- **Announced peers**: ``announce_peer`` to a simulated node (with a valid token) stores the peer
  in one bounded, expiring ``dht.peer_store.PeerStore`` and remembers which nodes hold it; a
  get_peers to one of those nodes returns it, so clients find each other. When the network is
  served by several processes, each holds the announces made to its own nodes (a node lives on
  one port, a port in one process), and the control API joins them.
"""

from __future__ import annotations

import random
from bisect import bisect_left

import numpy as np

from dhtviewer.dht import compact
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.peer_store import PeerStore
from dhtviewer.simnet.addresses import ip_text
from dhtviewer.simnet.index import DEAD, ERRORING, MALFORMED, READ_ONLY, SYBIL, UNBORN, NodeIndex

__all__ = ["MAX_VALUES", "Swarms", "draw_info_hashes", "plan_sizes", "seeded_info_hashes"]

MAX_VALUES = 50
"""Peers in one get_peers reply (deployed nodes: 50 to 100, so a reply stays under ~1,400 B)."""
ANNOUNCED_INFO_HASHES = 5000
ANNOUNCED_PEERS_PER_INFO_HASH = 500
ANNOUNCED_PEERS = 100_000
ANNOUNCE_TTL = 30 * 60.0
"""Bounds of the announced-peer store (per serving process): 100,000 peers at most (about
60 MB), kept 30 minutes without a re-announce (BEP 5 deployments keep 30 to 120 minutes)."""
STORER_EXCLUDE = DEAD | READ_ONLY | SYBIL | ERRORING | MALFORMED | UNBORN
"""Nodes that never hold a seeded swarm. An away node does: it comes back with its store. A
node that joins later (``UNBORN`` at the start) has not been announced to yet."""
_PEER_LEN = 6


def plan_sizes(count: int, zipf: float, max_peers: int) -> np.ndarray:
    """Peers of each of ``count`` swarms by popularity rank: ``max(1, round(max_peers /
    r**zipf))`` for r = 1, 2, ..."""
    ranks = np.arange(1, count + 1, dtype=np.float64)
    return np.maximum(1, np.round(max_peers / ranks**zipf)).astype(np.int64)


def draw_info_hashes(count: int, rng: np.random.Generator) -> np.ndarray:
    """(m, 20) uint8: ``count`` random info-hashes, most popular first, distinct (a collision
    of random 160-bit strings would need luck, but is removed: m <= count)."""
    raw = rng.integers(0, 256, size=(count, 20), dtype=np.uint8)
    _, first = np.unique(raw.view("S20").ravel(), return_index=True)
    return raw[np.sort(first)]


def seeded_info_hashes(seed: int, count: int) -> np.ndarray:
    """The info-hashes of the seeded swarms of a network built with ``seed``: their own random
    stream, so they depend on nothing else (not the size, not the scenarios; a script can know
    them before it starts the network, to aim a scenario at one)."""
    return draw_info_hashes(count, np.random.default_rng([seed, 0x5EED]))


def _top64(raw: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each 20-byte row, as uint64 (numeric order = id order)."""
    return np.frombuffer(np.ascontiguousarray(raw[:, :8]).tobytes(), dtype=">u8").astype(
        np.uint64
    )


class Swarms:
    """Seeded swarms and announced peers, and what a node answers about an info-hash."""

    def __init__(
        self,
        index: NodeIndex,
        hashes: np.ndarray,
        zipf: float,
        max_peers: int,
        storers: int,
        rng: np.random.Generator,
    ) -> None:
        """``hashes``: from ``draw_info_hashes``."""
        self.index = index
        raw = hashes
        self.count = len(raw)
        self._hashes = raw.tobytes()
        sizes = plan_sizes(self.count, zipf, max_peers)
        self._offsets = np.zeros(self.count + 1, dtype=np.int64)
        np.cumsum(sizes, out=self._offsets[1:])
        total = int(self._offsets[-1])
        hosts = index.ips[rng.integers(0, index.n, size=total)]
        ports = rng.integers(1024, 65536, size=total).astype(np.uint16)
        recs = np.empty((total, _PEER_LEN), dtype=np.uint8)
        recs[:, :4] = hosts.astype(">u4").view(np.uint8).reshape(total, 4)
        recs[:, 4:] = ports.astype(">u2").view(np.uint8).reshape(total, 2)
        self._peers = recs.tobytes()
        """Every seeded peer, compact (BEP 5: IPv4 and port), swarm after swarm."""
        k = min(storers, index.count(0, STORER_EXCLUDE))
        self._storers = (
            index.closest_many(raw, k, STORER_EXCLUDE) if k else np.zeros((self.count, 0),
                                                                           dtype=np.int32)
        )
        """(count, k) positions of the nodes that store each swarm."""
        # Finding an info-hash: bisection over the first 64 bits, then the whole hash compared.
        top = _top64(raw)
        order = np.argsort(top, kind="stable")
        self._sorted_top: list[int] = top[order].tolist()
        self._order = order.astype(np.int32)
        # What each node stores (BEP 51 samples): ranks grouped by storer.
        flat = self._storers.ravel()
        by_node = np.argsort(flat, kind="stable")
        self._stored_ranks = (by_node // max(1, k)).astype(np.int32)
        self._stored_start = np.searchsorted(flat[by_node], np.arange(index.n + 1)).astype(
            np.int64
        )
        self.announced = PeerStore(
            max_info_hashes=ANNOUNCED_INFO_HASHES,
            max_peers_per_info_hash=ANNOUNCED_PEERS_PER_INFO_HASH,
            ttl=ANNOUNCE_TTL,
            max_peers=ANNOUNCED_PEERS,
        )
        self._announced_at: dict[bytes, set[int]] = {}
        """Announced info-hash -> nodes that received an announce for it."""
        self.announces = 0

    # --- seeded swarms ---------------------------------------------------------------------------
    def info_hash(self, rank: int) -> bytes:
        """The info-hash of the ``rank``-th most popular seeded swarm (0: the largest)."""
        return self._hashes[rank * 20 : rank * 20 + 20]

    def size(self, rank: int) -> int:
        return int(self._offsets[rank + 1] - self._offsets[rank])

    def rank_of(self, info_hash: bytes) -> int:
        """The rank of a seeded swarm, or -1."""
        top = int.from_bytes(info_hash[:8], "big")
        sorted_top = self._sorted_top
        i = bisect_left(sorted_top, top)
        while i < len(sorted_top) and sorted_top[i] == top:
            rank = int(self._order[i])
            if self.info_hash(rank) == info_hash:
                return rank
            i += 1
        return -1

    def storers(self, rank: int) -> list[int]:
        return [int(x) for x in self._storers[rank]]

    def peers(self, rank: int) -> list[Addr]:
        a, b = int(self._offsets[rank]), int(self._offsets[rank + 1])
        recs = self._peers
        return [(ip_text(int.from_bytes(recs[i * 6 : i * 6 + 4], "big")),
                 int.from_bytes(recs[i * 6 + 4 : i * 6 + 6], "big")) for i in range(a, b)]

    def stored_ranks(self, pos: int) -> list[int]:
        """Ranks of the seeded swarms node ``pos`` stores."""
        start = self._stored_start
        return [int(r) for r in self._stored_ranks[start[pos] : start[pos + 1]]]

    # --- serving --------------------------------------------------------------------------------
    def values(self, pos: int, info_hash: bytes, now: float, rng: random.Random) -> list[bytes]:
        """The bencoded ``values`` items node ``pos`` returns for ``info_hash`` (possibly
        none): all the peers it stores (announced to it, then seeded), or a window of
        ``MAX_VALUES`` of them at a random offset when there are more, so that every peer, an
        announced one as much as a seeded one, is handed out as often."""
        rank = self.rank_of(info_hash)
        first = seeded = 0
        if rank >= 0 and pos in self.storers(rank):
            first = int(self._offsets[rank])
            seeded = int(self._offsets[rank + 1]) - first
        holders = self._announced_at.get(info_hash)
        announced: list[bytes] = []
        if holders is not None and pos in holders:
            announced = [b"6:" + compact.encode_peer(peer) for peer in self.announced.get(
                info_hash, now, rng, ANNOUNCED_PEERS_PER_INFO_HASH, 4)]
        total = len(announced) + seeded
        if not total:
            return []
        start, count = (0, total) if total <= MAX_VALUES else (rng.randrange(total), MAX_VALUES)
        recs = self._peers
        out: list[bytes] = []
        for i in range(start, start + count):
            j = i % total
            if j < len(announced):
                out.append(announced[j])
            else:
                k = (first + j - len(announced)) * _PEER_LEN
                out.append(b"6:" + recs[k : k + _PEER_LEN])
        return out

    def stored_info_hashes(self, pos: int) -> list[bytes]:
        """Info-hashes node ``pos`` stores (for BEP 51 samples and ``num``)."""
        seeded = [self.info_hash(r) for r in self.stored_ranks(pos)]
        if self._announced_at:
            seeded += [ih for ih, holders in self._announced_at.items() if pos in holders]
        return seeded

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
    def announced_peers(self, info_hash: bytes, now: float) -> tuple[list[Addr], list[int]]:
        """The peers announced to this process's nodes for ``info_hash``, and those nodes."""
        peers = self.announced.get(info_hash, now, random.Random(0), 1 << 30)
        return peers, sorted(self._announced_at.get(info_hash, ()))

    def true_peers(self, info_hash: bytes, now: float) -> list[Addr] | None:
        """Every peer of ``info_hash`` (seeded and announced), or None if nobody has it."""
        rank = self.rank_of(info_hash)
        announced, _ = self.announced_peers(info_hash, now)
        if rank < 0 and not announced:
            return None
        seeded = self.peers(rank) if rank >= 0 else []
        known = set(seeded)
        return seeded + [p for p in announced if p not in known]

    def holders(self, info_hash: bytes) -> list[int]:
        """Nodes that store ``info_hash``: its seeded storers, then those announced to."""
        rank = self.rank_of(info_hash)
        held = self.storers(rank) if rank >= 0 else []
        return held + sorted(self._announced_at.get(info_hash, set()) - set(held))

    def expire(self, now: float) -> None:
        """Drop expired announces (housekeeping on the serving loop, never from another
        thread: the store is the serving loop's)."""
        self.announced.expire(now)
        for ih in [ih for ih in self._announced_at if ih not in self.announced]:
            del self._announced_at[ih]
