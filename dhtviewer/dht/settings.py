"""Every tunable limit of the DHT core, in one frozen dataclass with documented defaults.

The UI's preferences show these fields; tests and benchmarks build variants with
``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Our client code and version for the KRPC ``v`` key: 2 letters + 2 version bytes.
CLIENT_VERSION = b"DV\x00\x01"


@dataclass(frozen=True, slots=True)
class DhtSettings:
    # --- routing table -------------------------------------------------------------------------
    k: int = 8
    """Bucket size, and how many closest nodes a lookup must settle."""
    replacement_cache_size: int = 8
    """Candidates kept per bucket to replace nodes that go bad."""
    good_period: float = 15 * 60
    """A node that answered within this many seconds is good; after it, questionable."""
    bad_after_failures: int = 3
    """Consecutive failed queries after which a node is bad (evicted first)."""
    bucket_refresh_interval: float = 15 * 60
    """A bucket unchanged for this long is refreshed with a lookup of a random id in its range."""
    max_refresh_lookups: int = 2
    """Bucket refresh lookups running at once (more stale buckets wait their turn)."""
    allow_local: bool = False
    """Accept loopback/private/reserved addresses in the routing table (local testnets need it)."""
    enforce_bep42: bool = False
    """Refuse routing entries whose id does not match their IP (BEP 42); always recorded anyway."""
    derive_node_id: bool = True
    """BEP 42: once responders in several networks agree on our external address, and whenever
    it changes, take a node id derived from it if ours does not match (loopback and private
    addresses are exempt). Off: keep the id we were given, whatever our address."""
    prefer_bep42: bool = True
    """Prefer nodes whose id matches their IP (BEP 42) when promoting a replacement candidate,
    and let only such nodes split our own bucket (libtorrent's dht_prefer_verified_node_ids)."""
    restrict_subnets: bool = True
    """At most one node per /24 (IPv4) or /64 (IPv6) in each bucket and among a lookup's K
    closest (libtorrent's dht_restrict_routing_ips and dht_restrict_search_ips): one host
    cannot surround a target with made-up ids."""
    restrict_local_subnets: bool = False
    """Apply the subnet rule to loopback and private addresses too. Off, the rule relaxes by
    itself on local testnets (where many nodes share 127.0.x.0/24); the simulated Mainline,
    which spreads its nodes over many /24s, turns it on."""
    verify_interval: float = 5 * 60
    """A node that never answered us is sent at most one verification ping per this many
    seconds (only an answer lets a node into a bucket)."""
    verify_rate: float = 10.0
    """Verification pings per second, over all addresses (bursts of up to this many): a flood
    of spoofed queries cannot make us send more."""

    # --- queries and lookups -------------------------------------------------------------------
    alpha: int = 4
    """Queries a lookup keeps in flight (not counting those past the short timeout)."""
    short_timeout: float = 1.0
    """After this, a silent query stops holding one of the alpha slots but may still answer.
    With ``adaptive_timeout`` this is the ceiling of the adaptive value."""
    adaptive_timeout: bool = True
    """Derive the short timeout from recently observed RTTs (twice their 90th percentile), so a
    dead node costs about one slow round trip instead of a fixed second."""
    min_short_timeout: float = 0.25
    """Floor of the adaptive short timeout (protects against a burst of very fast replies)."""
    hard_timeout: float = 5.0
    """After this, a silent query has failed."""
    max_inflight_queries: int = 512
    """Transactions outstanding at once over the whole node; more are refused."""
    max_lookups: int = 64
    """Concurrent lookups; starting more raises an error."""
    max_peers_per_lookup: int = 5000
    """Distinct peers one lookup collects; hostile nodes returning endless fake peers cannot
    grow a lookup (and its events) past this. Peers already known are still counted."""

    # --- server side ---------------------------------------------------------------------------
    read_only: bool = False
    """BEP 43: send ``ro=1``, do not answer queries."""
    token_rotation: float = 5 * 60
    """Token secrets rotate this often; the previous secret is still accepted."""
    peer_ttl: float = 30 * 60
    """Announced peers expire after this long without a re-announce."""
    max_info_hashes: int = 3000
    """Distinct info_hashes the peer store keeps."""
    max_peers_per_info_hash: int = 500
    """Peers kept per info_hash."""
    max_stored_peers: int = 50_000
    """Peers kept over all info_hashes; past it, a new peer replaces the least recently
    announced one. A stored peer costs 460 to 680 bytes of memory, so the two caps above alone
    would let whoever announces from enough addresses grow the store to 1.5 million peers
    (about 700 MB). A node typically stores a few thousand."""
    max_peers_per_reply: int = 50
    """Peers returned in one get_peers reply (keeps the datagram small)."""
    max_samples: int = 20
    """BEP 51: info_hashes returned in one sample_infohashes reply (libtorrent's figure). More
    would fit in a datagram, but would make a 100-byte query draw a 1,400-byte reply."""
    max_reply_bytes: int = 1400
    """No reply datagram may exceed this (no amplification)."""
    sample_interval: int = 300
    """BEP 51 ``interval`` we announce (seconds, 0..21600): when we store more info_hashes than
    one reply holds, the sample we return is drawn anew only this often (and a crawler should
    not ask again sooner). Deployed nodes say 21600; a monitoring node on a small network wants
    fresh samples sooner."""
    max_items: int = 2000
    """BEP 44 items other nodes may store on us (each up to ~1.2 KB: 2.4 MB at this cap); past
    it a new item replaces the least-put, least recently put one."""
    item_ttl: float = 2 * 3600
    """A stored BEP 44 item expires this long after its last put (the BEP allows 2 hours;
    publishers re-put hourly)."""

    # --- BEP 51 crawler -------------------------------------------------------------------------
    crawl_rate: float = 20.0
    """sample_infohashes queries per second a crawl sends at most (average; bursts of one
    second's worth)."""
    crawl_max_inflight: int = 16
    """sample_infohashes queries a crawl keeps outstanding at once."""
    crawl_max_known: int = 100_000
    """Nodes a crawl remembers (contacts beyond are dropped): bounds its memory (~200 B each)."""
    crawl_max_visits: int = 4
    """Times a crawl asks one node (again only after its ``interval``, and only while it holds
    more info_hashes than it returned)."""

    # --- abuse protection ---------------------------------------------------------------------
    rate_limit: bool = True
    """Apply the per-IP and global budgets below to incoming queries. Malformed datagrams and
    unsolicited replies are charged to the sender's budget too (never answered, so not to the
    global one); while an IP is blocked its datagrams are dropped unparsed, except those that
    look like replies (a spoofed flood must not cut us off from a node we are querying)."""
    per_ip_rate: float = 5.0
    """Queries per second an IP may send, averaged (token bucket refill rate)."""
    per_ip_burst: float = 25.0
    """Queries an IP may send in a burst before the rate applies."""
    block_seconds: float = 60.0
    """An IP that keeps flooding past its budget is ignored this long."""
    max_tracked_ips: int = 10000
    """Bound on the rate limiter's per-IP table (least recently seen evicted)."""
    global_reply_rate: float = 2000.0
    """Replies per second over all IPs (token bucket refill rate)."""
    global_reply_burst: float = 4000.0
    """Replies that may go out in a burst over all IPs before the global rate applies."""
    max_queued_events: int = 200_000
    """Events the node holds for a consumer that stops draining; the oldest are dropped (and
    counted in ``stats()["events_dropped"]``) past this."""

    # --- input ---------------------------------------------------------------------------------
    max_datagram_size: int = 8192
    """Larger incoming datagrams are dropped unparsed and counted as malformed."""
    max_bencode_depth: int = 8
    """Deeper nesting is a protocol error (KRPC needs at most 3)."""

    client_version: bytes = CLIENT_VERSION
