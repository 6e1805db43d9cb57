"""BEP 33 scrape on the requesting side: merge what the closest nodes answered into one
estimate of a swarm's seeds and downloaders.

Each of the K nodes closest to the info-hash that answered ``get_peers`` with ``scrape=1`` adds
its ``BFsd`` (seeds) and ``BFpe`` (downloaders) filters; the union (OR) of each kind estimates
the distinct addresses over all of them, which is the point of using filters: an announce
reaches several of the nodes, and summing their counts would count it several times.

A node that answers with ``values`` but no filters (a "legacy" response) has its peers turned
into a local downloader filter, leaving out addresses already in some node's seed filter so a
seed is not counted twice (BEP 33, "Handling legacy responses").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.messages import Addr

__all__ = ["ScrapeEstimate", "ScrapeMerge"]


@dataclass(frozen=True, slots=True)
class ScrapeEstimate:
    """``seeds``/``downloaders``: estimated distinct addresses (BEP 33 formula on the merged
    filters). ``nodes``: how many answers were merged, ``legacy`` of them without filters.
    ``saturated``: a merged filter is too full for its estimate to be trusted (then it is a
    lower bound)."""

    seeds: float
    downloaders: float
    nodes: int
    legacy: int
    saturated: bool

    @property
    def total(self) -> float:
        return self.seeds + self.downloaders


class ScrapeMerge:
    """Accumulates the answers of one scrape."""

    def __init__(self) -> None:
        self._seeds = BloomFilter()
        self._peers = BloomFilter()
        self._legacy: list[Addr] = []
        self.nodes = 0
        self.legacy = 0

    def add(
        self, bf_seeds: bytes | None, bf_peers: bytes | None, values: Iterable[Addr] = ()
    ) -> bool:
        """One node's answer; returns False if it carried neither filters nor peers."""
        if bf_seeds is None and bf_peers is None:
            peers = list(values)
            if not peers:
                return False
            self._legacy.extend(peers)
            self.legacy += 1
        else:
            if bf_seeds is not None:
                self._seeds |= BloomFilter(bf_seeds)
            if bf_peers is not None:
                self._peers |= BloomFilter(bf_peers)
        self.nodes += 1
        return True

    def result(self) -> ScrapeEstimate:
        peers = BloomFilter(self._peers.to_bytes())
        for host, _ in self._legacy:
            if host not in self._seeds:
                peers.insert(host)
        return ScrapeEstimate(
            seeds=self._seeds.estimate(),
            downloaders=peers.estimate(),
            nodes=self.nodes,
            legacy=self.legacy,
            saturated=self._seeds.saturated() or peers.saturated(),
        )
