"""``check_invariants(node, now)``: what must hold after *any* input, however hostile.

Used after every example of the property tests, every step of the state machine and every
atheris input. It reads the node through its public views where they exist and through its
components' internals where they do not (the point is to catch a broken bound anywhere).
"""

from __future__ import annotations

from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import acceptable_address, ip_family
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import ID_BITS, ID_BYTES, bep42_exempt, bep42_valid

# Bounds the node keeps as module constants rather than settings.
MAX_IP_VOTERS = 64
MAX_TIDS = 60000  # TransactionTable caps max_inflight here (2-byte tids)


def check_invariants(node: DhtNode, now: float) -> None:
    """Assert every structural invariant and bound of ``node`` at time ``now``."""
    _check_identity(node)
    _check_routing(node, now)
    _check_transactions(node)
    _check_store(node, now)
    _check_items(node, now)
    _check_bounds(node)
    _check_counters(node)


def _check_identity(node: DhtNode) -> None:
    # One id everywhere: the table is laid out around the id the node sends.
    assert node.table.own_id == node.node_id, "the table kept an old id"
    # BEP 42: once votes settle on a public address, our id matches it (unless told not to, or
    # the id changed a moment ago and the next change waits for the hold-off).
    ip = node.voter.external_ip
    if (node.settings.derive_node_id and node.voter.confirmed and ip is not None
            and node.id_change_held_until is None):
        assert bep42_exempt(ip) or bep42_valid(node.node_id, ip), "id does not match our address"


def _check_routing(node: DhtNode, now: float) -> None:
    s = node.settings
    hosts: set[object] = set()
    fam, table = node.family, node.table
    snap = table.snapshot(now)
    assert snap.k == s.k and snap.own_id == node.node_id
    assert 1 <= len(snap.buckets) <= ID_BITS
    ids: set[bytes] = set()
    for b in snap.buckets:
        assert len(b.nodes) <= b.capacity == table.policy.bucket_size(b.index), b.index
        assert b.replacements <= max(0, s.replacement_cache_size)
        for n in b.nodes:
            assert n.id != node.node_id, "our own id is in the routing table"
            assert len(n.id) == ID_BYTES
            assert n.id not in ids, "an id is in the table twice"
            host = table.policy.host(n.addr)  # the IP (the address for ::1 on a testnet)
            assert host not in hosts, f"two entries for IP {n.addr[0]}"
            ids.add(n.id)
            hosts.add(host)
            assert table.bucket_index(n.id) == b.index, "entry in the wrong bucket"
            assert ip_family(n.addr[0]) == fam
            assert 0 < n.addr[1] < 65536
            assert acceptable_address(n.addr, allow_local=s.allow_local) is None
            assert n.bep42_ok == bep42_valid(n.id, n.addr[0])
            if s.enforce_bep42:
                assert n.bep42_ok, "a non-BEP 42 id entered while enforcement is on"
            assert table.get(n.id) is not None
            assert table.get_by_addr(n.addr) is not None
            entry = table.get(n.id)
            assert entry is not None and entry.answered, "an unverified node is live"
        keys = [table.policy.subnet(n.addr[0]) for n in b.nodes]
        keys += [table.policy.subnet(c.addr[0]) for c in table.replacement_candidates(b.index)]
        keys = [k for k in keys if k is not None]
        assert len(keys) == len(set(keys)), f"two nodes of one subnet in bucket {b.index}"
    assert len(table) == snap.size == len(ids)


def _check_transactions(node: DhtNode) -> None:
    s = node.settings
    pending = list(node.txns)
    assert len(pending) == len(node.txns) <= min(s.max_inflight_queries, MAX_TIDS)
    assert len({p.tid for p in pending}) == len(pending)
    for p in pending:
        assert p.sent_at <= p.short_deadline <= p.hard_deadline
        # A finished or cancelled lookup (or announce round) leaves no transaction behind.
        assert p.owner.active, f"{p.owner.kind} transaction of an owner that is done"


def _check_store(node: DhtNode, now: float) -> None:
    s = node.settings
    store = node.store
    snap = store.snapshot(now)  # expires lazily first, as every reader of the store does
    assert len(snap) == store.info_hash_count() <= s.max_info_hashes
    for count in snap.values():
        assert 0 < count <= s.max_peers_per_info_hash
    assert sum(snap.values()) == store.peer_count() <= s.max_stored_peers
    nxt = store.next_expiry()
    assert nxt is None or nxt > now, "an expired peer is still stored"


def _check_items(node: DhtNode, now: float) -> None:
    s = node.settings
    items = node.items
    snap = items.snapshot(now)
    assert len(snap) == len(items) <= s.max_items
    for target, entry in snap:
        entry.item.validate()  # only valid items are ever stored (and signatures verified)
        assert entry.item.target == target
        assert entry.refreshed_at + items.ttl > now, "an expired item is still stored"
        assert len(entry.putters) <= 8
    crawl = node.crawl_stats()
    if crawl is not None:
        assert crawl["known"] <= s.crawl_max_known
        assert 0 <= crawl["inflight"] <= s.crawl_max_inflight
        assert crawl["replied"] + crawl["failed"] + crawl["inflight"] <= crawl["queried"]


def _check_bounds(node: DhtNode) -> None:
    s = node.settings
    assert len(node.lookups) <= s.max_lookups
    for lk in node.lookups.values():
        assert len(lk.peers) <= s.max_peers_per_lookup
        assert len(lk.candidates()) <= lk._max_candidates
        assert 0 <= lk.active <= lk.queried
    limiter = node.limiter
    assert limiter.tracked() <= s.max_tracked_ips
    assert limiter.tracked() == len(limiter._active) + len(limiter._blocked)
    assert node.stats(0.0)["queued_events"] <= s.max_queued_events
    assert len(node.voter) <= MAX_IP_VOTERS


def _check_counters(node: DhtNode) -> None:
    c = node.counters
    assert all(v >= 0 for v in c.as_dict().values())
    # Every datagram that came in is accounted for exactly once: nothing is lost silently.
    assert c.packets_in == (
        c.malformed + c.queries_in + c.responses_in + c.errors_in + c.unsolicited
        + c.dropped_blocked
    ), c
    assert c.packets_out == c.queries_out + c.responses_out + c.errors_out, c
    assert c.oversized <= c.malformed
    assert c.malformed_replies <= c.malformed
    assert c.slow_queries + c.timeouts <= 2 * c.queries_out
    # The node's own owners (lookups, announce rounds, pings, crawls...) never raise.
    assert c.owner_errors == 0, "a built-in transaction owner raised"
    assert c.rate_limited + c.read_only_dropped <= c.queries_in


def drain(node: DhtNode) -> list[tuple[bytes, Addr]]:
    """Take the node's outbox and events; assert every datagram is within ``max_reply_bytes``
    and decodes (we never send anything we could not parse ourselves)."""
    out = node.datagrams_to_send()
    node.drain_events()
    limit = node.settings.max_reply_bytes
    for data, _ in out:
        assert len(data) <= limit, f"{len(data)}-byte datagram > {limit}"
        krpc.decode(data)
    return out
