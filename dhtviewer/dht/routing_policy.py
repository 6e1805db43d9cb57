"""RoutingPolicy: the rules a routing table applies, separate from the mechanics of buckets.

A ``RoutingTable`` keeps buckets, replacement caches, node states and indexes; *which* node may
enter, how many a bucket holds, which node leaves for a better one and which candidate gets
promoted are decisions of its policy. The default policy is built from ``DhtSettings``
(``RoutingPolicy.from_settings``) and is what a Mainline node should run. Researchers who want
another rule (larger buckets far from our id, as libtorrent's ``dht_extended_routing_table``,
or another eviction order) subclass it and override the method concerned, then hand the
instance to ``DhtNode(routing_policy=...)``; the table asks the policy and never second-guesses
it, except for the invariants that keep it a table (one entry per id and per IP, our own id
never in it).

Every method must be cheap and pure: the table calls them on hot paths (every query from an
unknown address reaches ``accepts_address``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from dhtviewer.dht.addresses import acceptable_address, is_local, subnet_key
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node_entry import NodeEntry
from dhtviewer.dht.node_id import bep42_valid
from dhtviewer.dht.settings import DhtSettings


@lru_cache(maxsize=8192)
def _subnet(ip: str, restrict_local: bool) -> bytes | None:
    """``RoutingPolicy.subnet`` with the rule on. Cached: every query from an address not yet
    in the table asks, and the answer depends on the text alone."""
    if not restrict_local and is_local(ip):
        return None
    return subnet_key(ip)


@dataclass(frozen=True)
class RoutingPolicy:
    """The default Mainline rules. Fields come from ``DhtSettings`` of the same names."""

    k: int = 8
    """Bucket size (see ``bucket_size``)."""
    replacement_cache_size: int = 8
    bad_after_failures: int = 3
    allow_local: bool = False
    enforce_bep42: bool = False
    prefer_bep42: bool = True
    restrict_subnets: bool = True
    restrict_local_subnets: bool = False
    bucket_refresh_interval: float = 15 * 60

    @classmethod
    def from_settings(cls, settings: DhtSettings) -> RoutingPolicy:
        return cls(
            k=settings.k,
            replacement_cache_size=settings.replacement_cache_size,
            bad_after_failures=settings.bad_after_failures,
            allow_local=settings.allow_local,
            enforce_bep42=settings.enforce_bep42,
            prefer_bep42=settings.prefer_bep42,
            restrict_subnets=settings.restrict_subnets,
            restrict_local_subnets=settings.restrict_local_subnets,
            bucket_refresh_interval=settings.bucket_refresh_interval,
        )

    # --- sizes ---------------------------------------------------------------------------------
    def bucket_size(self, index: int) -> int:
        """Live nodes bucket ``index`` (bits shared with our id) may hold. At least 1. A policy
        may give far buckets (small ``index``) more room: they cover most of the id space."""
        return self.k

    def refresh_interval(self, index: int) -> float:
        """Seconds bucket ``index`` may go unchanged before a refresh lookup (BEP 5: 15
        minutes for all). A policy may refresh some buckets more often (those near our id,
        whose few nodes matter most to lookups of our neighbourhood) or less."""
        return self.bucket_refresh_interval

    # --- admission -----------------------------------------------------------------------------
    def accepts_address(self, addr: Addr) -> bool:
        """Whether a node at ``addr`` may be stored at all (and handed to others)."""
        return acceptable_address(addr, allow_local=self.allow_local) is None

    def host(self, addr: Addr) -> object:
        """What counts as one host for the table's one-entry-per-IP rule: the IP, except the
        IPv6 loopback address while local networks are exempt from the subnet rule: a loopback
        testnet gives each IPv4 node an address of its own in 127/8, but every IPv6 node shares
        ::1, and only the port tells them apart (libtorrent needs ``dht_restrict_routing_ips``
        off there for the same reason)."""
        ip = addr[0]
        if ip == "::1" and not self.restrict_local_subnets:
            return addr
        return ip

    def accepts_id(self, node_id: bytes, ip: str) -> bool:
        """Whether ``node_id`` may enter from ``ip`` (BEP 42 when enforced)."""
        return not self.enforce_bep42 or bep42_valid(node_id, ip)

    def subnet(self, ip: str) -> bytes | None:
        """The network ``ip`` counts in for the subnet-diversity rule (one node per /24 or /64
        in a bucket, and among a lookup's K closest), or None when the rule does not apply to
        it: switched off, or a loopback/private address (a local testnet puts many nodes in
        127.0.x.0/24) unless ``restrict_local_subnets`` forces the rule there too."""
        if not self.restrict_subnets:
            return None
        return _subnet(ip, self.restrict_local_subnets)

    def may_split(self, newcomer: NodeEntry, nodes: Sequence[NodeEntry]) -> bool:
        """Whether a verified ``newcomer`` may split our own (last, full) bucket of ``nodes``.
        With ``prefer_bep42``, as libtorrent: only a newcomer whose id matches its address, into
        a bucket that is mostly (2/3) made of such nodes. Splitting is what lets nodes claim ids
        ever nearer ours; made-up ids must not be able to drive it."""
        if not self.prefer_bep42:
            return True
        if not bep42_valid(newcomer.id, newcomer.addr[0]):
            return False
        verified = sum(1 for e in nodes if e.bep42_ok)
        return verified * 3 >= len(nodes) * 2

    # --- eviction and promotion ----------------------------------------------------------------
    def is_bad(self, entry: NodeEntry) -> bool:
        return entry.failures >= self.bad_after_failures

    def eviction_victim(self, nodes: Sequence[NodeEntry]) -> NodeEntry | None:
        """The live node of a full bucket that a verified newcomer replaces at once: the bad
        node that failed most often; None when every node may stay (the newcomer then waits
        in the replacement cache while questionable nodes are pinged)."""
        worst: NodeEntry | None = None
        for e in nodes:
            if self.is_bad(e) and (worst is None or e.failures > worst.failures):
                worst = e
        return worst

    def promotion_choice(self, candidates: Sequence[NodeEntry]) -> NodeEntry:
        """The replacement candidate to promote when a live slot frees up, among ``candidates``
        (not empty; all answered us): with ``prefer_bep42`` one whose id matches its address
        first, then the most recently heard."""
        if self.prefer_bep42:
            return max(candidates, key=lambda e: (bep42_valid(e.id, e.addr[0]), e.last_seen))
        return max(candidates, key=lambda e: e.last_seen)
