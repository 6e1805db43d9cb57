"""The peers announced to us (``announce_peer``), per info_hash: caps, expiry, sampling.

What it serves: ``get_peers`` replies (a random window of live peers of one address family),
BEP 51 ``sample_infohashes`` replies, and the UI (counts per info_hash).

Bounds. Memory never exceeds ``max_info_hashes`` swarms of ``max_peers_per_info_hash`` peers,
nor ``max_peers`` peers in all. When a swarm is full, a new peer replaces the one that would
expire soonest (the least recently announced); when the whole store is full, it replaces the
least recently announced peer of any swarm. When the number of swarms is at its cap, a new
info_hash *evicts* the swarm whose latest announce is the oldest, rather than being refused.
Refusing would let whoever fills the table first (a flood of random info_hashes) lock every
genuine swarm out for a whole TTL; evicting keeps the store tracking current activity, which is
also what a monitoring tool wants to show. A live swarm is re-announced every few minutes and
so stays at the recent end; it is only pushed out if more than ``max_info_hashes`` new
info_hashes (or ``max_peers`` new peers) arrive between two of its announces, and the rate
limiter in front of the store makes that expensive.

Cost. Every operation the network can trigger is O(1) amortised: two insertion-ordered maps do
the bookkeeping. ``_expiry`` holds every peer in expiry order (an announce moves its peer to the
end; with a fixed TTL and a non-decreasing clock that *is* expiry order), so expiring is popping
from the front. ``_swarms`` holds the info_hashes in order of latest announce, so the eviction
victim is its first entry. Each swarm keeps its IPv4 and IPv6 peers apart, also in announce order,
so its oldest peer is at the front of one of them and a family-filtered sample needs no scan.

Expiry is also lazy: every call that takes ``now`` first drops what expired by then, so a peer
is never returned at or after ``announce time + ttl``, whether or not the node ran its timer.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from itertools import chain

from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.messages import Addr

_Key = tuple[bytes, Addr]


class _Swarm:
    """The peers of one info_hash, per address family, least recently announced first.
    Values are the announced ``seed`` flag."""

    __slots__ = ("filters", "pools", "v4", "v6")

    def __init__(self) -> None:
        self.v4: OrderedDict[Addr, bool | None] = OrderedDict()
        self.v6: OrderedDict[Addr, bool | None] = OrderedDict()
        self.filters: tuple[bytes, bytes] | None = None
        """BEP 33 (seeds, downloaders) filters, cached until the swarm changes."""
        self.pools: dict[int, tuple[list[Addr], list[bytes]]] = {}
        """Per family: its peers in announce order and what ``get_encoded``'s encoder made
        of each, cached until the swarm changes (a busy swarm is asked far more often than it
        changes)."""

    def changed(self) -> None:
        """Its peers changed: drop what was derived from them."""
        self.filters = None
        self.pools = {}

    def of(self, family: int) -> OrderedDict[Addr, bool | None]:
        return self.v6 if family == 6 else self.v4

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)


class PeerStore:
    """Announced peers per info_hash, bounded and expiring. ``now`` is expected not to go
    backwards; if it does, announces are dated at the latest time seen (so expiry order, and
    with it every bound, still holds)."""

    def __init__(
        self,
        *,
        max_info_hashes: int,
        max_peers_per_info_hash: int,
        ttl: float,
        max_peers: int | None = None,
        counters: Counters | None = None,
    ) -> None:
        """``max_peers``: peers over all info_hashes (None: only the other two caps bound it).
        ``counters``: where stores, evictions and expiries are counted (a fresh one if None)."""
        if max_info_hashes < 0 or max_peers_per_info_hash < 0 or (max_peers or 0) < 0:
            raise ValueError("caps must not be negative")
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        self.max_info_hashes = max_info_hashes
        self.max_peers_per_info_hash = max_peers_per_info_hash
        self.max_peers = max_peers
        self.ttl = ttl
        self._swarms: OrderedDict[bytes, _Swarm] = OrderedDict()
        self._expiry: OrderedDict[_Key, float] = OrderedDict()
        self._clock = float("-inf")
        self.counters = counters if counters is not None else Counters()

    # --- writing -----------------------------------------------------------------------------
    def add(self, info_hash: bytes, peer: Addr, now: float, *, seed: bool | None = None) -> bool:
        """Store (or refresh) ``peer`` for ``info_hash`` until ``now + ttl``. True if it is now
        stored; False only when a cap is zero (storage disabled)."""
        if self.max_info_hashes == 0 or self.max_peers_per_info_hash == 0 or self.max_peers == 0:
            return False
        now = max(now, self._clock)
        self._clock = now
        self.expire(now)
        expires = now + self.ttl
        swarm = self._swarms.get(info_hash)
        if swarm is None:
            if len(self._swarms) >= self.max_info_hashes:
                self._evict_swarm()
            swarm = self._swarms[info_hash] = _Swarm()
        else:
            self._swarms.move_to_end(info_hash)
        peers = swarm.of(ip_family(peer[0]))
        key = (info_hash, peer)
        swarm.changed()
        if peer in peers:
            peers[peer] = seed
            peers.move_to_end(peer)
            self._expiry[key] = expires
            self._expiry.move_to_end(key)
            self.counters.peers_refreshed += 1
            return True
        if len(swarm) >= self.max_peers_per_info_hash:
            self._evict_oldest_peer(info_hash, swarm)
        elif self.max_peers is not None and len(self._expiry) >= self.max_peers:
            self._evict_oldest_stored(info_hash)
        peers[peer] = seed
        self._expiry[key] = expires
        self.counters.peers_stored += 1
        return True

    def _evict_swarm(self) -> None:
        info_hash, swarm = self._swarms.popitem(last=False)
        for peer in chain(swarm.v4, swarm.v6):
            del self._expiry[(info_hash, peer)]
        self.counters.swarms_evicted += 1
        self.counters.peers_evicted += len(swarm)

    def _evict_oldest_peer(self, info_hash: bytes, swarm: _Swarm) -> None:
        # The oldest peer of the swarm heads one of its two family maps: take the earlier one.
        peers = swarm.v4
        if swarm.v6:
            first6 = next(iter(swarm.v6))
            if not swarm.v4 or (
                self._expiry[(info_hash, first6)] < self._expiry[(info_hash, next(iter(swarm.v4)))]
            ):
                peers = swarm.v6
        peer, _ = peers.popitem(last=False)
        swarm.changed()
        del self._expiry[(info_hash, peer)]
        self.counters.peers_evicted += 1

    def _evict_oldest_stored(self, keep: bytes) -> None:
        # The front of the expiry order is the least recently announced peer of all. Its swarm
        # goes if that empties it, unless it is ``keep``, the swarm a peer is being added to.
        (info_hash, peer), _ = self._expiry.popitem(last=False)
        swarm = self._swarms[info_hash]
        del swarm.of(ip_family(peer[0]))[peer]
        swarm.changed()
        if not swarm and info_hash != keep:
            del self._swarms[info_hash]
        self.counters.peers_evicted += 1

    def expire(self, now: float) -> int:
        """Drop every peer whose expiry is at or before ``now``, and swarms left empty.
        Returns how many peers were dropped."""
        expiry = self._expiry
        dropped = 0
        while expiry:
            key, expires = next(iter(expiry.items()))
            if expires > now:
                break
            expiry.popitem(last=False)
            info_hash, peer = key
            swarm = self._swarms[info_hash]
            del swarm.of(ip_family(peer[0]))[peer]
            swarm.changed()
            if not swarm:
                del self._swarms[info_hash]
            dropped += 1
        self.counters.peers_expired += dropped
        return dropped

    # --- reading -----------------------------------------------------------------------------
    def get(
        self,
        info_hash: bytes,
        now: float,
        rng: random.Random,
        max_count: int,
        family: int | None = None,
        *,
        noseed: bool = False,
    ) -> list[Addr]:
        """Up to ``max_count`` live peers of ``info_hash``. ``family`` (4 or 6) keeps only that
        address family; ``noseed`` (BEP 33) leaves out the peers that announced ``seed=1``.

        The answer is a window of up to ``max_count`` consecutive peers (in announce order,
        wrapping around) at a random offset: over many replies every peer is handed out equally
        often, and in every position, as with a uniform sample, but it costs one slice instead
        of a random draw per peer. This runs for every get_peers a node serves; ``random.sample``
        of 50 took most of the time of answering one. Rotating matters even when every peer
        fits: a reply that is too large is cut from the end (``Responder._shrink``), which must
        not always drop the same, most recently announced, peers."""
        if family not in (None, 4, 6):
            raise ValueError(f"family must be 4, 6 or None, got {family!r}")
        self.expire(now)
        swarm = self._swarms.get(info_hash)
        if swarm is None or max_count <= 0:
            return []
        if family is None:
            items = [*swarm.v4.items(), *swarm.v6.items()]
            pool = [a for a, seed in items if not seed] if noseed else [a for a, _ in items]
        elif noseed:
            pool = [a for a, seed in swarm.of(family).items() if not seed]
        else:
            pool = list(swarm.of(family))
        n = len(pool)
        if n == 0:
            return pool
        start = rng.randrange(n)
        end = start + min(max_count, n)
        return pool[start:end] if end <= n else pool[start:] + pool[: end - n]

    def get_encoded(
        self,
        info_hash: bytes,
        now: float,
        rng: random.Random,
        max_count: int,
        family: int,
        encoder: Callable[[str, int], bytes],
        *,
        noseed: bool = False,
    ) -> tuple[list[Addr], list[bytes]]:
        """``get`` (the same window, drawn the same way), and ``encoder(host, port)`` of each
        peer in it. Encodings are kept per swarm and family until the swarm changes, so a busy
        swarm's peers are encoded once, not once per reply. ``encoder`` must be pure and always
        the same function (one cache per swarm)."""
        if noseed or family not in (4, 6):
            peers = self.get(info_hash, now, rng, max_count, family, noseed=noseed)
            return peers, [encoder(host, port) for host, port in peers]
        self.expire(now)
        swarm = self._swarms.get(info_hash)
        if swarm is None or max_count <= 0:
            return [], []
        cached = swarm.pools.get(family)
        if cached is None:
            pool = list(swarm.of(family))
            cached = swarm.pools[family] = (pool, [encoder(host, port) for host, port in pool])
        pool, encoded = cached
        n = len(pool)
        if n == 0:
            return [], []
        start = rng.randrange(n)
        end = start + min(max_count, n)
        if end <= n:
            return pool[start:end], encoded[start:end]
        return pool[start:] + pool[: end - n], encoded[start:] + encoded[: end - n]

    def scrape_filters(self, info_hash: bytes, now: float) -> tuple[bytes, bytes] | None:
        """BEP 33 ``(BFsd, BFpe)``: the Bloom filters of the addresses of the live peers of
        ``info_hash`` that announced ``seed=1``, and of the others (None when we store no peer
        of it). Cached per swarm until it changes: a scrape flood costs no hashing."""
        self.expire(now)
        swarm = self._swarms.get(info_hash)
        if swarm is None:
            return None
        if swarm.filters is None:
            seeds, downloaders = BloomFilter(), BloomFilter()
            for (host, _), seed in chain(swarm.v4.items(), swarm.v6.items()):
                (seeds if seed else downloaders).insert(host)
            swarm.filters = (seeds.to_bytes(), downloaders.to_bytes())
        return swarm.filters

    def next_expiry(self) -> float | None:
        """When the next stored peer expires (None when the store is empty)."""
        return next(iter(self._expiry.values()), None)

    def sample_info_hashes(self, rng: random.Random, count: int) -> list[bytes]:
        """BEP 51: up to ``count`` distinct stored info_hashes, uniformly at random."""
        if count <= 0:
            return []
        return rng.sample(list(self._swarms), min(count, len(self._swarms)))

    def info_hash_count(self) -> int:
        return len(self._swarms)

    def peer_count(self) -> int:
        """Peers stored over all info_hashes."""
        return len(self._expiry)

    def seed_count(self, info_hash: bytes, now: float) -> int:
        """Live peers of ``info_hash`` that announced ``seed=1`` (BEP 33 style counts)."""
        self.expire(now)
        swarm = self._swarms.get(info_hash)
        if swarm is None:
            return 0
        return sum(1 for seed in chain(swarm.v4.values(), swarm.v6.values()) if seed)

    def __contains__(self, info_hash: object) -> bool:
        return info_hash in self._swarms

    def __len__(self) -> int:
        """Number of info_hashes (as ``info_hash_count``)."""
        return len(self._swarms)

    def snapshot(self, now: float) -> dict[bytes, int]:
        """info_hash -> live peer count, least recently announced first (for the UI)."""
        self.expire(now)
        return {info_hash: len(swarm) for info_hash, swarm in self._swarms.items()}
