"""Counters: every event count of one DHT node, in one mutable dataclass shared by its parts.

The node, its routing table, its rate limiter, its peer and item stores and its query
machinery each count what they see on the same ``Counters`` object (a part built on its own
gets a fresh one), so ``DhtNode.stats(now)`` is one flat, typed view and nothing is counted
twice. Counters only grow; gauges (sizes, what is in flight) are not here, ``stats`` reads them
from their owners.

Two counts are not flat integers, for the Prometheus metrics of a headless node
(``net/metrics.py``): ``messages``, KRPC messages by direction, type and method (methods outside
``METHODS`` count as "other", so a peer cannot make up label values), and ``rtt``, the round-trip
times of our answered queries in fixed buckets.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, fields

from dhtviewer.dht.kinds import TextEnum

METHODS = ("ping", "find_node", "get_peers", "announce_peer", "get", "put", "sample_infohashes")
"""The KRPC methods counted by name; anything else is "other"."""
_METHOD_LABELS = {m.encode(): m for m in METHODS}

RTT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds, inclusive) of the RTT histogram's buckets; one more holds the rest."""


class Direction(TextEnum):
    IN = "in"
    OUT = "out"


class MessageType(TextEnum):
    QUERY = "query"
    RESPONSE = "response"
    ERROR = "error"


_TYPES = {"q": MessageType.QUERY, "r": MessageType.RESPONSE, "e": MessageType.ERROR}


def method_label(method: bytes) -> str:
    """``method`` as a bounded label: one of ``METHODS``, or "other"."""
    return _METHOD_LABELS.get(method, "other")


@dataclass(slots=True)
class MessageCounts:
    """Messages by (direction, type, method label)."""

    counts: dict[tuple[Direction, MessageType, str], int] = field(default_factory=dict)

    def add(self, direction: Direction, kind: str, method: bytes) -> None:
        """``kind``: "q", "r" or "e", as in the traffic events."""
        key = (direction, _TYPES[kind], _METHOD_LABELS.get(method, "other"))
        self.counts[key] = self.counts.get(key, 0) + 1


@dataclass(slots=True)
class RttHistogram:
    """Round-trip times in the buckets of ``RTT_BUCKETS`` (not cumulative; the last count is
    above the largest bound) and their sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, rtt: float) -> None:
        self.counts[bisect_left(RTT_BUCKETS, rtt)] += 1
        self.total += rtt

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(slots=True)
class Counters:
    # --- traffic -------------------------------------------------------------------------------
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    queries_in: int = 0
    responses_in: int = 0
    errors_in: int = 0
    """KRPC error replies to our queries."""
    queries_out: int = 0
    responses_out: int = 0
    errors_out: int = 0

    # --- input that was refused or odd ---------------------------------------------------------
    malformed: int = 0
    """Datagrams that did not decode (oversized ones included)."""
    oversized: int = 0
    rate_limited: int = 0
    """Queries refused by the per-IP or global budget."""
    unsolicited: int = 0
    """Replies matching none of our queries (unknown tid, or from another address)."""
    id_mismatch: int = 0
    """Replies from a known address carrying another id than the one we knew."""
    timeouts: int = 0
    """Our queries that reached the hard timeout."""
    slow_queries: int = 0
    """Our queries that passed the short timeout (many answer later)."""
    malformed_replies: int = 0
    """Undecodable replies that still named one of our transactions (ended as errors)."""
    partial_records: int = 0
    """``nodes``/``nodes6``/``values`` fields ending in a partial record (the rest was used)."""
    announces_stored: int = 0
    bad_tokens: int = 0
    txn_overflow: int = 0
    """Queries not sent because ``max_inflight_queries`` were outstanding."""
    read_only_dropped: int = 0
    dropped_blocked: int = 0
    """Datagrams from a blocked IP, dropped unparsed."""
    events_dropped: int = 0
    """Oldest events lost because nobody drained the queue."""
    handler_errors: int = 0
    """Queries whose registered handler raised (answered with error 202)."""
    task_errors: int = 0
    """Scheduled tasks (``DhtNode.call_at``/``call_every``) that raised."""
    owner_errors: int = 0
    """Callbacks of a query's owner (``TransactionOwner``) that raised (``OwnerFailed``)."""
    node_id_changes: int = 0
    """Times our id changed to match a newly voted external address (BEP 42)."""

    # --- routing table -------------------------------------------------------------------------
    nodes_inserted: int = 0
    """Nodes that entered a live bucket (promoted candidates included)."""
    nodes_evicted: int = 0
    """Bad nodes dropped to make room for another node."""
    nodes_replaced: int = 0
    """Candidates promoted from a replacement cache."""
    bucket_splits: int = 0
    candidates_cached: int = 0
    """Newcomers put in (or refreshed in) a replacement cache."""
    ping_requests: int = 0
    """Nodes handed out by the table to be pinged."""
    node_failures: int = 0
    """Failures reported for a live node."""
    nodes_removed: int = 0
    """Explicit removals of a live node (an id that changed, say)."""
    id_conflicts: int = 0
    """Another id from an IP that is already in the table."""
    addr_conflicts: int = 0
    """A known id heard from another address."""
    refused_address: int = 0
    refused_own_id: int = 0
    refused_read_only: int = 0
    refused_bep42: int = 0
    refused_bad_id: int = 0
    refused_subnet: int = 0
    """Another node of the same /24 (/64) is already in that bucket (the subnet rule)."""
    verify_pings: int = 0
    """Verification pings sent to nodes that never answered us."""
    verify_pings_skipped: int = 0
    """Verification pings not sent: that address was pinged recently, or the rate was spent."""

    # --- rate limiter --------------------------------------------------------------------------
    limiter_allowed: int = 0
    limiter_refused: int = 0
    """Refused by the IP's own budget, including while blocked."""
    limiter_refused_blocked: int = 0
    """The part of ``limiter_refused`` refused because the IP was blocked."""
    dropped_global: int = 0
    """The IP was within its budget but the global reply budget was spent."""
    ip_blocks: int = 0
    """Blocks imposed on flooding IPs."""

    # --- peer store ----------------------------------------------------------------------------
    peers_stored: int = 0
    """New (info_hash, peer) entries."""
    peers_refreshed: int = 0
    """Re-announces of a stored peer."""
    peers_evicted: int = 0
    """Peers dropped before their expiry, to make room."""
    swarms_evicted: int = 0
    """Whole swarms dropped to make room."""
    peers_expired: int = 0

    # --- BEP 44 item store ---------------------------------------------------------------------
    items_stored: int = 0
    """Puts accepted (new items, newer seqs and refreshes)."""
    puts_refused: int = 0
    """Puts answered with an error (size, salt, token, signature, cas, seq)."""
    item_gets_served: int = 0
    """get queries answered with a stored item."""
    items_new: int = 0
    """Items stored that were not stored before."""
    items_updated: int = 0
    """Mutable items replaced by a put with a higher seq."""
    items_refreshed: int = 0
    """Puts of an item already stored (its expiry starts over)."""
    items_refused: int = 0
    """Puts the item store refused (invalid item, cas mismatch, old seq): part of
    ``puts_refused``."""
    items_evicted: int = 0
    """Items dropped before their expiry, to make room."""
    items_expired: int = 0

    # --- lookups -------------------------------------------------------------------------------
    lookups_started: int = 0
    lookups_finished: int = 0
    """Lookups that ended, cancelled ones included."""
    lookups_cancelled: int = 0

    # --- structured (metrics) ------------------------------------------------------------------
    messages: MessageCounts = field(default_factory=MessageCounts)
    rtt: RttHistogram = field(default_factory=RttHistogram)

    def as_dict(self) -> dict[str, int]:
        """Every integer counter by name (``messages`` and ``rtt`` have their own shapes)."""
        return {f.name: v for f in fields(self) if type(v := getattr(self, f.name)) is int}
