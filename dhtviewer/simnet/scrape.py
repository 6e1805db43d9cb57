"""BEP 33 on the simulated Mainline: which peers of a swarm are seeds, the scrape filters a
simulated node returns, and the true counts to check a scrape against.

Seeds. A seeded swarm (``swarms.py``) has no announces to carry ``seed=1``, so each of its peers
is a seed or a downloader by a stable draw: the swarm's seed share is uniform in 0.1..0.9 (a
working figure: seed-to-leecher ratios vary that widely between torrents, popular new ones
leecher-heavy, old ones seed-heavy) and each peer is a seed with that probability, both derived
from SHA-1 of the info-hash (no memory, the same answer at every storer and in ``truth``).
Peers announced by joined clients carry the ``seed`` flag they announced.

Filters. A node that supports BEP 33 and stores peers of the swarm answers a ``get_peers`` with
``scrape=1`` with ``BFsd``/``BFpe`` over *all* the peers it stores (a seeded storer holds the
whole seeded swarm; the holders of announced peers share one store), as our own peer store does
(``dht/peer_store.py``: same ``dht/bloom.py`` filters). Other clients ignore ``scrape`` and
answer as before; the requesting side counts them as legacy nodes.

Support: libtorrent (its documentation lists BEP 33 among the BEPs it implements) and mldht
(written by BEP 33's author). uTorrent, Transmission's jech/dht and the rest are treated as not
supporting it: jech/dht does not; for uTorrent no documentation was at hand (a working figure).
"""

from __future__ import annotations

import hashlib
import random

from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.messages import Addr
from dhtviewer.simnet.profile import CLIENTS
from dhtviewer.simnet.swarms import Swarms

__all__ = ["SCRAPE_CLIENTS", "SwarmScrape", "is_seed", "seed_share"]

SCRAPE_CLIENTS = frozenset({"libtorrent 2.0", "libtorrent 1.2", "mldht"})
"""Client families (``profile.CLIENTS`` names) whose nodes answer ``scrape=1``."""
SEED_SHARE_RANGE = (0.1, 0.9)
_ALL = 1 << 30
MAX_CACHED = 10_000
"""Seeded swarms whose filters are kept (two 256-byte filters each: 5 MB at most)."""


def seed_share(info_hash: bytes) -> float:
    """The share of seeds among the seeded peers of ``info_hash`` (module docstring)."""
    h = hashlib.sha1(b"seed-share" + info_hash).digest()
    lo, hi = SEED_SHARE_RANGE
    return lo + (hi - lo) * int.from_bytes(h[:8], "big") / 2**64


def is_seed(info_hash: bytes, peer_index: int, share: float) -> bool:
    """Whether the ``peer_index``-th seeded peer of ``info_hash`` is a seed."""
    h = hashlib.sha1(info_hash + peer_index.to_bytes(4, "big")).digest()
    return int.from_bytes(h[:8], "big") < share * 2**64


class SwarmScrape:
    """Scrape answers and ground truth over ``swarms``; ``clients``: the client family of each
    node position (``NodeIndex.clients``)."""

    def __init__(self, swarms: Swarms, clients: bytes) -> None:
        self.swarms = swarms
        self._clients = clients
        self._supported = tuple(c.name in SCRAPE_CLIENTS for c in CLIENTS)
        self._filters: dict[bytes, tuple[bytes, bytes]] = {}
        """Seeded info-hash -> its (BFsd, BFpe), built at its first scrape (bounded: the
        oldest are dropped past ``MAX_CACHED``)."""
        self.scrapes = 0
        """Scrape answers with filters given out."""

    def supports(self, pos: int) -> bool:
        return self._supported[self._clients[pos]]

    def _seeded(self, info_hash: bytes) -> tuple[list[Addr], list[int]] | None:
        """The seeded swarm's (peers, storers); None when ``info_hash`` is not seeded. The one
        place that knows how ``swarms.py`` keeps them."""
        rank = self.swarms.rank_of(info_hash)
        return None if rank < 0 else (self.swarms.peers(rank), self.swarms.storers(rank))

    def filters(self, pos: int, info_hash: bytes, now: float) -> tuple[bytes, bytes] | None:
        """``(BFsd, BFpe)`` node ``pos`` answers a scrape of ``info_hash`` with; None when it
        stores no peer of it (then the reply carries no filters, as from our own node)."""
        swarms = self.swarms
        seeded = self._seeded(info_hash)
        held = seeded is not None and pos in seeded[1]
        announced = None
        if info_hash in swarms.announced and pos in swarms.announced_peers(info_hash, now)[1]:
            announced = swarms.announced.scrape_filters(info_hash, now)
        if not held and announced is None:
            return None
        self.scrapes += 1
        if not held:
            return announced
        assert seeded is not None
        pair = self._filters.get(info_hash)
        if pair is None:
            seeds, downloaders = self.seeded_ips(info_hash, seeded[0])
            pair = (BloomFilter.of(seeds).to_bytes(), BloomFilter.of(downloaders).to_bytes())
            if len(self._filters) >= MAX_CACHED:
                del self._filters[next(iter(self._filters))]
            self._filters[info_hash] = pair
        if announced is None:
            return pair
        return (_union(pair[0], announced[0]), _union(pair[1], announced[1]))

    # --- ground truth -----------------------------------------------------------------------------
    def seeded_ips(self, info_hash: bytes, peers: list[Addr] | None = None
                   ) -> tuple[set[str], set[str]]:
        """The addresses of the seeds and of the downloaders among the seeded peers of
        ``info_hash`` (empty sets when it is not seeded)."""
        if peers is None:
            seeded = self._seeded(info_hash)
            peers = seeded[0] if seeded is not None else []
        share = seed_share(info_hash)
        seeds: set[str] = set()
        downloaders: set[str] = set()
        for i, (host, _) in enumerate(peers):
            (seeds if is_seed(info_hash, i, share) else downloaders).add(host)
        return seeds, downloaders

    def announced_ips(self, info_hash: bytes, now: float) -> tuple[set[str], set[str]]:
        """The addresses of the peers announced (to this process's nodes) as seeds and as
        downloaders."""
        store = self.swarms.announced
        seeds: set[str] = set()
        downloaders: set[str] = set()
        if info_hash in store:
            rng = random.Random(0)
            every = store.get(info_hash, now, rng, _ALL)
            leeching = set(store.get(info_hash, now, rng, _ALL, noseed=True))
            for peer in every:
                (downloaders if peer in leeching else seeds).add(peer[0])
        return seeds, downloaders

    def truth(self, info_hash: bytes, now: float) -> tuple[int, int] | None:
        """The true ``(seeds, downloaders)`` of ``info_hash`` as far as this process knows:
        distinct IP addresses, as BEP 33 counts them (a host with a seeding and a downloading
        peer is in both); None when no swarm has it. With several serving processes the
        control API joins every process's ``announced_ips`` instead."""
        seeds, downloaders = self.seeded_ips(info_hash)
        more_seeds, more_downloaders = self.announced_ips(info_hash, now)
        seeds |= more_seeds
        downloaders |= more_downloaders
        if not seeds and not downloaders and self.swarms.rank_of(info_hash) < 0:
            return None
        return len(seeds), len(downloaders)


def _union(a: bytes, b: bytes) -> bytes:
    return (BloomFilter(a) | BloomFilter(b)).to_bytes()
