"""The Kademlia routing table of one address family: k-buckets of live nodes, each with a bounded
replacement cache, node states (good / questionable / bad), and read-only snapshots for the UI.

Buckets are indexed by the number of leading bits their nodes share with our own id: bucket ``i``
holds the nodes sharing exactly ``i`` bits, except the last bucket, which also holds every deeper
node and is the only one covering our own id, hence the only one that may split (BEP 5).

Who gets in is the main defence against a poisoned table:

* only nodes that answered one of our queries enter a bucket: a query's source address may be
  spoofed, an answer to our transaction id from the address we queried may not. A querier waits
  in the replacement cache and is handed back to be pinged (verified) when an answer could get
  it a place; a candidate that never answered is never promoted;
* one entry per IP (a second id from a known IP is ignored; the policy's ``host`` says what
  counts as one IP: on a loopback testnet every IPv6 node shares ::1), at most one per /24
  (IPv4) or /64 (IPv6) in a bucket (the policy's subnet rule), never our own id, never a
  read-only node (BEP 43), never an address
  :func:`~dhtviewer.dht.addresses.acceptable_address` refuses, and, when ``enforce_bep42`` is
  set, never an id that does not match its IP (BEP 42);
* a node that answered replaces a bad node, or splits our own bucket (with ``prefer_bep42``
  only a BEP 42 id, into a mostly BEP 42 bucket); otherwise it waits in the replacement cache
  while the bucket's questionable nodes are handed back for pinging ("ping before evict").
  Those that fail enough pings go bad and are replaced by the best candidate that answered.

The table is sans-IO: the caller sends the pings it is asked for and reports answers
(:meth:`RoutingTable.heard_from`) and timeouts (:meth:`RoutingTable.failed`). The rules (bucket
sizes, admission, eviction, promotion) are its ``RoutingPolicy``'s (``routing_policy.py``); the
entries are ``NodeEntry`` values (``node_entry.py``); what leaves the table are snapshots
(``routing_snapshot.py``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from operator import attrgetter, itemgetter

from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.compact import encode_nodes, encode_nodes6
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.events import BucketSplit, Event, NodeAdded, NodeRemoved, NodeStateChanged
from dhtviewer.dht.kinds import NodeState
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node_entry import NodeEntry, record
from dhtviewer.dht.node_id import ID_BITS, ID_BYTES, bep42_valid, random_id_with_prefix
from dhtviewer.dht.routing_policy import RoutingPolicy
from dhtviewer.dht.routing_snapshot import BucketSnapshot, NodeSnapshot, RoutingSnapshot
from dhtviewer.dht.settings import DhtSettings

__all__ = [
    "MAX_BUCKETS",
    "BucketSnapshot",
    "NodeEntry",
    "NodeSnapshot",
    "RoutingPolicy",
    "RoutingSnapshot",
    "RoutingTable",
]

PING_INTERVAL = 10.0
"""A node is handed out for pinging at most once per this many seconds, so a flood of newcomers
into a full bucket does not turn into a ping storm."""

QUESTIONABLE_SCAN_INTERVAL = 1.0
"""A full bucket is searched for questionable nodes to ping at most once per this many seconds.
Each node found is handed out at most once per PING_INTERVAL anyway; without this bound every
query from a would-be newcomer rescanned its bucket (a serving node's hot path)."""

_ID_INT = attrgetter("id_int")
_INFO = attrgetter("info")
_FAILURES = attrgetter("failures")
_SUBNET = attrgetter("subnet")
_PACKED = attrgetter("packed")
_ENTRY = itemgetter(1)

MAX_BUCKETS = ID_BITS
"""Bucket 159 holds the single id that differs from ours in the last bit only: no deeper split."""

# --- the table ------------------------------------------------------------------------------------
class _Bucket:
    __slots__ = ("last_changed", "nodes", "replacements", "scanned_at")

    def __init__(self, last_changed: float) -> None:
        self.nodes: list[NodeEntry] = []
        self.replacements: list[NodeEntry] = []
        """Oldest first: the last one is the most recently heard candidate."""
        self.last_changed = last_changed
        self.scanned_at = -math.inf
        """Last search for questionable nodes to ping (see QUESTIONABLE_SCAN_INTERVAL)."""


class RoutingTable:
    """K-buckets for ``own_id`` in address family ``family`` (4 or 6). ``emit`` receives
    NodeAdded / NodeRemoved / NodeStateChanged / BucketSplit events.

    State changes that happen by the mere passing of time (good -> questionable) are visible in
    :meth:`snapshot` and :meth:`NodeEntry.state`; events are only emitted for changes caused by
    something the table was told (an answer, a query, a failure).
    """

    def __init__(
        self,
        own_id: bytes,
        settings: DhtSettings,
        family: int = 4,
        emit: Callable[[Event], None] | None = None,
        *,
        policy: RoutingPolicy | None = None,
        counters: Counters | None = None,
    ) -> None:
        """``policy``: the rules (default: ``RoutingPolicy.from_settings(settings)``);
        ``counters``: where admissions, refusals and evictions are counted (a fresh one if
        None)."""
        if len(own_id) != ID_BYTES:
            raise ValueError("own_id must be 20 bytes")
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, got {family}")
        self.own_id = own_id
        self.family = family
        self.settings = settings
        self.policy = policy if policy is not None else RoutingPolicy.from_settings(settings)
        self._emit = emit
        self._own_int = int.from_bytes(own_id, "big")
        self._buckets: list[_Bucket] = [_Bucket(0.0)]
        self._by_id: dict[bytes, NodeEntry] = {}
        # Both keyed by ``policy.host(addr)``: the IP, or the whole address where it stands for
        # one host (::1 on a loopback testnet).
        self._by_ip: dict[object, NodeEntry] = {}
        self._cand_by_id: dict[bytes, NodeEntry] = {}
        self._cand_by_ip: dict[object, NodeEntry] = {}
        self._host = self.policy.host
        policy_type = type(self.policy)
        self._default_is_bad = (
            policy_type.is_bad is RoutingPolicy.is_bad
            and policy_type.eviction_victim is RoutingPolicy.eviction_victim
        )
        """The policy judges bad nodes by the default rule, which the hot paths inline."""
        self.counters = counters if counters is not None else Counters()
        self._rebuilding = False
        """Inside ``update_node_id``: entries keep their history, and nothing is counted."""

    # --- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[NodeEntry]:
        for b in self._buckets:
            yield from b.nodes

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def get(self, node_id: bytes) -> NodeEntry | None:
        return self._by_id.get(node_id)

    def get_by_addr(self, addr: Addr) -> NodeEntry | None:
        e = self._by_ip.get(self._host(addr))
        return e if e is not None and e.addr[1] == addr[1] else None

    def bucket_index(self, node_id: bytes) -> int:
        """The bucket ``node_id`` belongs in (whether or not it is in the table)."""
        return self._index_of(int.from_bytes(node_id, "big"))

    def _index_of(self, id_int: int) -> int:
        prefix = ID_BITS - (id_int ^ self._own_int).bit_length()
        last = len(self._buckets) - 1
        return prefix if prefix < last else last

    # --- what the node reports ----------------------------------------------------------------
    def heard_from(
        self,
        node_id: bytes,
        addr: Addr,
        now: float,
        *,
        responded: bool,
        rtt: float | None = None,
        version: bytes | None = None,
        read_only: bool = False,
    ) -> list[NodeInfo]:
        """A valid message came from ``node_id`` at ``addr``: an answer to our query
        (``responded``, with the measured ``rtt``) or a query of its own. Returns the nodes the
        caller must ping: newcomers worth verifying, and questionable nodes standing in the way
        of a verified candidate (ping before evict).

        Only an answer (to a query of ours, from the address we queried) proves that a node is
        really at ``addr``: a query's source address may be spoofed. So a node enters a bucket
        only when it answers; a querier waits in the replacement cache and is handed back for
        a verification ping when it could take a place."""
        c = self.counters
        if read_only:
            c.refused_read_only += 1  # BEP 43: read-only nodes never enter routing tables
            return []
        known = self._by_id.get(node_id)
        if known is not None:
            return self._update_known(known, addr, now, responded, rtt, version)
        cand = self._cand_by_id.get(node_id)
        host = self._host(addr)
        if cand is not None and cand.addr == addr and host not in self._by_ip:
            # A waiting candidate heard again from the same address passed the checks below
            # when it was cached; a querier that keeps querying takes this path every time.
            record(cand, now, responded, rtt, version)
            if responded:
                self._drop_candidate(cand)
                return self._place(cand, now)
            return self._verify_if_useful(cand, now)
        if node_id == self.own_id:
            c.refused_own_id += 1
            return []
        if len(node_id) != ID_BYTES:
            c.refused_bad_id += 1
            return []
        ip = addr[0]
        policy = self.policy
        if not policy.accepts_address(addr) or ip_family(ip) != self.family:
            c.refused_address += 1
            return []
        if host in self._by_ip:
            # First come keeps the IP: one machine cannot fill buckets with made-up ids.
            c.id_conflicts += 1
            return []
        if cand is not None:
            self._drop_candidate(cand)  # a candidate's new address: the newest one wins
        # The BEP 42 check costs ~15 µs, so it is done here only when it decides entry;
        # otherwise once, when the node enters the live table (see _add_live).
        if not policy.accepts_id(node_id, ip):
            c.refused_bep42 += 1
            return []
        other = self._cand_by_ip.get(host)
        if other is not None:
            if other.answered and not responded:
                c.id_conflicts += 1  # an unproven id cannot push out one that answered
                return []
            self._drop_candidate(other)  # the newest id of an IP wins a candidate slot
        entry = NodeEntry(node_id, addr, now, subnet=policy.subnet(ip))
        idx = self._index_of(entry.id_int)
        bucket = self._buckets[idx]
        if entry.subnet is not None and not self._subnet_free(entry, responded, bucket):
            c.refused_subnet += 1
            return []
        record(entry, now, responded, rtt, version)
        if responded:
            return self._place(entry, now)
        self._add_candidate(entry, bucket, host)
        return self._verify_if_useful(entry, now, idx, bucket)

    def failed(self, node_id: bytes | None, addr: Addr, now: float) -> list[NodeInfo]:
        """A query to ``addr`` (expected to be ``node_id``, None if unknown) timed out. Matched
        by address: whatever node sits at that address is not answering. A node failing
        ``bad_after_failures`` times in a row is bad: it is replaced at once by a candidate of
        its bucket that answered us, if any; otherwise the freshest unverified candidates are
        handed back for pinging (returned), and the first to answer takes the place."""
        e = self.get_by_addr(addr)
        if e is None:
            cand = self._cand_by_ip.get(self._host(addr))
            if cand is not None and cand.addr == addr:
                self._drop_candidate(cand)  # a candidate that does not answer is worthless
            elif node_id is not None:
                cand = self._cand_by_id.get(node_id)
                if cand is not None and cand.addr == addr:
                    self._drop_candidate(cand)
            return []
        self.counters.node_failures += 1
        old = self._state(e, now)
        e.failures += 1
        new = self._state(e, now)
        if new != old:
            self._state_changed(e, old, new, now)
        if new != NodeState.BAD:
            return []
        idx = self._index_of(e.id_int)
        bucket = self._buckets[idx]
        answered = [r for r in bucket.replacements if r.answered]
        if answered:
            cand = self.policy.promotion_choice(answered)
            self._drop_candidate(cand, bucket)
            self._remove_live(e, bucket, idx, "bad", now)
            self._add_live(cand, bucket, idx, now)
            self.counters.nodes_replaced += 1
            return []
        to_ping: list[NodeInfo] = []
        self._ping_unverified(bucket, 1, now, to_ping)
        return to_ping

    def update_node_id(self, own_id: bytes, now: float) -> list[NodeInfo]:
        """Our id changed (BEP 42: our external address changed): rebuild the buckets around
        ``own_id``, keeping the contacts, as libtorrent's ``update_node_id`` does: the live
        nodes first, then the waiting candidates, each placed by the usual rules (the subnet
        rule included: two nodes of one /24 that sat in different buckets may now meet in one,
        and the second then goes). Nodes keep what we knew of them (first seen, answers,
        failures). Returns the nodes to ping, as ``heard_from`` does. No per-node events and
        no counts (the same contacts, re-sorted): the caller announces the new id and views
        take a new snapshot."""
        if len(own_id) != ID_BYTES:
            raise ValueError("own_id must be 20 bytes")
        live = list(self)
        waiting = [e for b in self._buckets for e in b.replacements]
        to_ping: list[NodeInfo] = []
        emit, self._emit = self._emit, None
        self._rebuilding = True
        try:
            self.own_id = own_id
            self._own_int = int.from_bytes(own_id, "big")
            self._buckets = [_Bucket(now)]
            self._by_id.clear()
            self._by_ip.clear()
            self._cand_by_id.clear()
            self._cand_by_ip.clear()
            for e in live + waiting:
                if e.id == own_id:
                    continue
                if e.subnet is not None and not self._subnet_free(e, e.answered):
                    continue
                if e.answered:
                    to_ping.extend(self._place(e, now))
                else:
                    self._add_candidate(e, self._buckets[self._index_of(e.id_int)])
        finally:
            self._emit = emit
            self._rebuilding = False
        return to_ping

    def answered_with_error(self, addr: Addr, now: float, version: bytes | None = None) -> None:
        """The live node at ``addr`` answered one of our queries with a KRPC error. It is there
        (an answer to our transaction from the address we asked is not spoofed), so its
        failures reset and it counts as heard from now. An error carries no id, so a candidate
        at that address learns nothing: it stays unverified."""
        e = self.get_by_addr(addr)
        if e is not None:
            self._update_known(e, addr, now, True, None, version)

    def remove(self, node_id: bytes, now: float, reason: str = "cleared") -> bool:
        """Drop ``node_id`` from the table (and from the replacement caches). True if it was a
        live node. The freed slot is left for the next newcomer (no candidate is promoted), so a
        caller replacing an id that changed can insert the new id right after."""
        cand = self._cand_by_id.get(node_id)
        if cand is not None:
            self._drop_candidate(cand)
        e = self._by_id.get(node_id)
        if e is None:
            return False
        idx = self._index_of(e.id_int)
        self._remove_live(e, self._buckets[idx], idx, reason, now)
        self.counters.nodes_removed += 1
        return True

    # --- queries ------------------------------------------------------------------------------
    def closest(self, target: bytes, count: int, now: float) -> list[NodeInfo]:
        """The ``count`` nodes nearest to ``target`` by XOR, nearest first; bad nodes only fill up
        what good and questionable ones cannot. Buckets are visited nearest first (see
        :func:`_visit_order`), so only the few buckets needed are sorted."""
        return list(map(_INFO, self._closest_entries(target, count)))

    def closest_packed(self, target: bytes, count: int, now: float) -> tuple[list[NodeInfo], bytes]:
        """:meth:`closest`, and the same contacts as a compact node string (``nodes`` for an
        IPv4 table, ``nodes6`` for IPv6), joined from records packed when each node entered
        the table or moved: a reply need not encode them again."""
        entries = self._closest_entries(target, count)
        return list(map(_INFO, entries)), b"".join(map(_PACKED, entries))

    def _closest_entries(self, target: bytes, count: int) -> list[NodeEntry]:
        if count <= 0:
            return []
        t = int.from_bytes(target, "big")
        buckets = self._buckets
        out: list[NodeEntry] = []
        bad: list[NodeEntry] = []
        group: list[NodeEntry] = []
        # Consecutive buckets are pooled until they can fill the answer, then sorted together
        # (one sort of a few buckets beats several small ones); nodes of later buckets are all
        # farther, so nothing after the pool can overtake it.
        for index in _visit_order(t ^ self._own_int, len(buckets) - 1):
            nodes = buckets[index].nodes
            if not nodes:
                continue
            group += nodes
            if len(out) + len(group) < count:
                continue
            if self._take_nearest(group, t, count, out, bad):
                return out
            group = []
        if group:
            self._take_nearest(group, t, count, out, bad)
        # Bad nodes were collected nearest first too.
        out += bad[: count - len(out)]
        return out

    def _take_nearest(
        self, group: list[NodeEntry], t: int, count: int, out: list[NodeEntry],
        bad: list[NodeEntry],
    ) -> bool:
        """Append the nodes of ``group`` to ``out`` nearest to ``t`` first, bad ones to ``bad``
        instead, until ``out`` holds ``count``; True once it does. Ids are unique in the table,
        so the (distance, entry) pairs never compare their entries."""
        # Built and sorted without a Python-level step per node: this runs for every reply.
        ranked = sorted(zip(map(t.__xor__, map(_ID_INT, group)), group, strict=True))
        need = count - len(out)
        if self._default_is_bad:
            ba = self.policy.bad_after_failures
            if max(map(_FAILURES, group)) < ba:
                # No bad node (the usual case): the nearest ones, as they come.
                out += map(_ENTRY, ranked[:need])
                return len(out) == count
            for _, e in ranked:
                if e.failures >= ba:
                    bad.append(e)
                else:
                    out.append(e)
                    need -= 1
                    if not need:
                        return True
            return False
        is_bad = self.policy.is_bad
        for _, e in ranked:
            if is_bad(e):
                bad.append(e)
            else:
                out.append(e)
                need -= 1
                if not need:
                    return True
        return False

    # --- bucket refresh -----------------------------------------------------------------------
    def stale_buckets(self, now: float) -> list[int]:
        """Buckets unchanged for their ``policy.refresh_interval`` (none while the table is
        empty: a refresh lookup would have nobody to ask)."""
        if not self._by_id:
            return []
        interval = self.policy.refresh_interval
        return [i for i, b in enumerate(self._buckets) if now - b.last_changed >= interval(i)]

    def refresh_target(self, index: int, rng: random.Random) -> bytes:
        """A random id that falls in bucket ``index``."""
        if not 0 <= index < len(self._buckets):
            raise IndexError(f"no bucket {index} (table has {len(self._buckets)})")
        return random_id_with_prefix(rng, self.own_id, index)

    def touch_bucket(self, index: int, now: float) -> None:
        """Mark bucket ``index`` as refreshed (a lookup into it was done or started)."""
        self._buckets[index].last_changed = now

    def next_refresh_deadline(self) -> float | None:
        """When the first bucket becomes stale; None while the table is empty."""
        if not self._by_id:
            return None
        interval = self.policy.refresh_interval
        return min(b.last_changed + interval(i) for i, b in enumerate(self._buckets))

    # --- read-only views ----------------------------------------------------------------------
    def snapshot(self, now: float) -> RoutingSnapshot:
        gp, ba = self.settings.good_period, self.policy.bad_after_failures
        size = self.policy.bucket_size
        buckets = tuple(
            BucketSnapshot(
                index=i,
                nodes=tuple(
                    NodeSnapshot(
                        id=e.id,
                        addr=e.addr,
                        state=e.state(now, gp, ba),
                        rtt=e.rtt,
                        last_seen=e.last_seen,
                        version=e.version,
                        bep42_ok=e.bep42_ok,
                        failures=e.failures,
                        bucket=i,
                    )
                    for e in b.nodes
                ),
                replacements=len(b.replacements),
                last_changed=b.last_changed,
                capacity=size(i),
            )
            for i, b in enumerate(self._buckets)
        )
        return RoutingSnapshot(self.own_id, self.family, self.policy.k, buckets, now)

    def export_nodes(self) -> list[NodeInfo]:
        """Live nodes for persistence: those that answered us, most recently first, then those
        that never did, bad ones last."""
        is_bad = self.policy.is_bad

        def key(e: NodeEntry) -> tuple[bool, bool, float]:
            return (is_bad(e), not e.answered, -e.last_seen)

        return [e.info for e in sorted(self, key=key)]

    def replacement_candidates(self, index: int) -> list[NodeInfo]:
        """The replacement cache of bucket ``index``, most recently heard first."""
        return [e.info for e in reversed(self._buckets[index].replacements)]

    # --- internals ----------------------------------------------------------------------------
    def _update_known(
        self,
        e: NodeEntry,
        addr: Addr,
        now: float,
        responded: bool,
        rtt: float | None,
        version: bytes | None,
    ) -> list[NodeInfo]:
        if e.addr != addr:
            if (
                responded
                and e.addr[0] == addr[0]
                and self.policy.accepts_address(addr)
            ):
                # It answered our query at the new port: a NAT rebinding, the address is proven.
                old_host, new_host = self._host(e.addr), self._host(addr)
                if old_host != new_host:  # one host per address (::1): re-key, if free
                    if new_host in self._by_ip:
                        self.counters.addr_conflicts += 1
                        return []
                    del self._by_ip[old_host]
                    self._by_ip[new_host] = e
                e.move(addr)
                self._pack(e)
            else:
                # A query from elsewhere proves nothing and may be spoofed: keep what we know.
                self.counters.addr_conflicts += 1
                return []
        old = self._state(e, now)
        record(e, now, responded, rtt, version)
        if responded:
            self._buckets[self._index_of(e.id_int)].last_changed = now
        new = self._state(e, now)
        if new != old:
            self._state_changed(e, old, new, now)
        return []

    def _place(self, entry: NodeEntry, now: float) -> list[NodeInfo]:
        """Insert a newcomer that just answered us (not in the table, not in any cache), or
        cache it while questionable nodes of its full bucket are checked."""
        size = self.policy.bucket_size
        to_ping: list[NodeInfo] = []
        split_from: int | None = None
        while True:
            idx = self._index_of(entry.id_int)
            bucket = self._buckets[idx]
            if len(bucket.nodes) < size(idx):
                self._add_live(entry, bucket, idx, now)
                break
            victim = self.policy.eviction_victim(bucket.nodes)
            if victim is not None:
                self._remove_live(victim, bucket, idx, "replaced", now)
                self._add_live(entry, bucket, idx, now)
                break
            if self._can_split(idx) and self.policy.may_split(entry, bucket.nodes):
                self._split(now)
                if split_from is None:
                    split_from = idx
                continue
            self._add_candidate(entry, bucket)
            self._ping_questionable(bucket, now, to_ping)
            break
        if split_from is not None:
            # Splitting freed room: candidates that were waiting may now take it (after the
            # newcomer, who proved itself just now).
            for i in range(split_from, len(self._buckets)):
                self._fill_from_cache(i, now, to_ping)
        return to_ping

    def _can_split(self, idx: int) -> bool:
        return idx == len(self._buckets) - 1 and idx + 1 < MAX_BUCKETS

    def _verify_if_useful(
        self, entry: NodeEntry, now: float, idx: int | None = None, bucket: _Bucket | None = None
    ) -> list[NodeInfo]:
        """A candidate that never answered: worth a verification ping only if an answer could
        get it a place (room in its bucket, a bad node to replace, our bucket to split).
        Otherwise it waits; it is pinged when a place frees up (``failed``). ``idx`` and
        ``bucket``: its bucket, when the caller knows it already."""
        if idx is None or bucket is None:
            idx = self._index_of(entry.id_int)
            bucket = self._buckets[idx]
        # The cheap tests first (the policy's are pure, so the order changes nothing).
        if (
            len(bucket.nodes) < self.policy.bucket_size(idx)
            or self._can_split(idx)
            or self._has_victim(bucket.nodes)
        ):
            to_ping: list[NodeInfo] = []
            self._ask_ping(entry, now, to_ping)
            return to_ping
        return []

    def _has_victim(self, nodes: list[NodeEntry]) -> bool:
        """Whether the policy would evict one of ``nodes`` for a verified newcomer."""
        if self._default_is_bad:
            return max(map(_FAILURES, nodes), default=0) >= self.policy.bad_after_failures
        return self.policy.eviction_victim(nodes) is not None

    def _subnet_free(
        self, entry: NodeEntry, responded: bool, bucket: _Bucket | None = None
    ) -> bool:
        """The subnet rule for a newcomer to its bucket: no other node of its /24 (/64) among
        the bucket's live nodes or candidates. A newcomer that answered us does replace a
        same-subnet candidate that never did (a spoofed query must not lock a real node out);
        otherwise the first one keeps the subnet."""
        if bucket is None:
            bucket = self._buckets[self._index_of(entry.id_int)]
        key = entry.subnet
        # Membership tests first (no Python-level step per node); the loop below only runs
        # when a candidate of that subnet is there.
        if key in map(_SUBNET, bucket.nodes):
            return False
        if key not in map(_SUBNET, bucket.replacements):
            return True
        for e in bucket.replacements:
            if e.subnet == key:
                if responded and not e.answered:
                    self._drop_candidate(e, bucket)
                    return True
                return False
        return True

    def _ask_ping(self, e: NodeEntry, now: float, to_ping: list[NodeInfo]) -> None:
        if e.pinged_at is None or now - e.pinged_at >= PING_INTERVAL:
            e.pinged_at = now
            to_ping.append(e.info)
            self.counters.ping_requests += 1

    def _ping_unverified(
        self, bucket: _Bucket, count: int, now: float, to_ping: list[NodeInfo]
    ) -> None:
        """Hand back up to ``count`` of the freshest candidates that never answered."""
        for e in reversed(bucket.replacements):
            if count <= 0:
                return
            if not e.answered:
                before = len(to_ping)
                self._ask_ping(e, now, to_ping)
                count -= len(to_ping) - before

    def _ping_questionable(self, bucket: _Bucket, now: float, to_ping: list[NodeInfo]) -> None:
        if now - bucket.scanned_at < QUESTIONABLE_SCAN_INTERVAL:
            return
        bucket.scanned_at = now
        gp, ba = self.settings.good_period, self.policy.bad_after_failures
        stale = [e for e in bucket.nodes if e.state(now, gp, ba) == NodeState.QUESTIONABLE]
        stale.sort(key=lambda e: e.last_seen)
        for e in stale:
            self._ask_ping(e, now, to_ping)

    def _split(self, now: float) -> None:
        """Split the last bucket ``i``: nodes sharing more than ``i`` bits with us move to a new
        last bucket ``i + 1``; so do their replacement candidates."""
        index = len(self._buckets) - 1
        old = self._buckets[index]
        new = _Bucket(now)
        self._buckets.append(new)
        # Sharing more than `index` bits means an XOR distance below 2**(160 - index - 1).
        limit = 1 << (ID_BITS - index - 1)
        own = self._own_int
        old.nodes, new.nodes = _partition(old.nodes, own, limit)
        old.replacements, new.replacements = _partition(old.replacements, own, limit)
        old.last_changed = now
        if not self._rebuilding:
            self.counters.bucket_splits += 1
        if self._emit is not None:
            self._emit(BucketSplit(self.family, len(self._buckets), now))

    def _fill_from_cache(self, idx: int, now: float, to_ping: list[NodeInfo]) -> None:
        """Free places in bucket ``idx`` go to candidates that answered us; for the places
        left, the freshest unverified candidates are handed back for pinging."""
        bucket = self._buckets[idx]
        size = self.policy.bucket_size(idx)
        while len(bucket.nodes) < size:
            answered = [r for r in bucket.replacements if r.answered]
            if not answered:
                self._ping_unverified(bucket, size - len(bucket.nodes), now, to_ping)
                return
            cand = self.policy.promotion_choice(answered)
            self._drop_candidate(cand, bucket)
            self._add_live(cand, bucket, idx, now)
            if not self._rebuilding:
                self.counters.nodes_replaced += 1

    def _add_live(self, e: NodeEntry, bucket: _Bucket, idx: int, now: float) -> None:
        bucket.nodes.append(e)
        bucket.last_changed = now
        self._by_id[e.id] = e
        self._by_ip[self._host(e.addr)] = e
        e.bep42_ok = bep42_valid(e.id, e.addr[0])
        self._pack(e)
        if self._rebuilding:
            return
        e.added_at = now
        self.counters.nodes_inserted += 1
        if self._emit is not None:
            self._emit(NodeAdded(e.id, e.addr, idx, self.family, now))

    def _pack(self, e: NodeEntry) -> None:
        """``e.packed``: its compact record, for :meth:`closest_packed`."""
        encode = encode_nodes if self.family == 4 else encode_nodes6
        e.packed = encode((e.info,))

    def _remove_live(
        self, e: NodeEntry, bucket: _Bucket, idx: int, reason: str, now: float
    ) -> None:
        bucket.nodes.remove(e)
        del self._by_id[e.id]
        del self._by_ip[self._host(e.addr)]
        if reason in ("bad", "replaced"):
            bucket.last_changed = now
            if not self._rebuilding:
                self.counters.nodes_evicted += 1
        if self._emit is not None:
            self._emit(NodeRemoved(e.id, e.addr, idx, self.family, reason, now))

    def _add_candidate(self, e: NodeEntry, bucket: _Bucket, host: object = None) -> None:
        """``host``: ``policy.host(e.addr)``, when the caller has it already."""
        size = self.policy.replacement_cache_size
        if not self._rebuilding:
            self.counters.candidates_cached += 1
        if size <= 0:
            return
        bucket.replacements.append(e)
        self._cand_by_id[e.id] = e
        self._cand_by_ip[self._host(e.addr) if host is None else host] = e
        while len(bucket.replacements) > size:
            self._drop_candidate(bucket.replacements[0], bucket)

    def _drop_candidate(self, e: NodeEntry, bucket: _Bucket | None = None) -> None:
        if bucket is None:
            bucket = self._buckets[self._index_of(e.id_int)]
        bucket.replacements.remove(e)
        del self._cand_by_id[e.id]
        del self._cand_by_ip[self._host(e.addr)]

    def _state(self, e: NodeEntry, now: float) -> NodeState:
        return e.state(now, self.settings.good_period, self.policy.bad_after_failures)

    def _state_changed(self, e: NodeEntry, old: NodeState, new: NodeState, now: float) -> None:
        if self._emit is not None:
            self._emit(NodeStateChanged(e.id, e.addr, old, new, self.family, now))


def _visit_order(d: int, last: int) -> Iterator[int]:
    """Bucket indexes in increasing XOR distance from a target at distance ``d`` from our id,
    for a table whose last bucket is ``last``. Every node of a bucket is nearer to the target than
    every node of the buckets after it, so each bucket only needs sorting on its own.

    With ``p`` the bits the target shares with us (``p < last``): bucket ``p`` agrees with the
    target up to and including bit ``p``, so it comes first. Every deeper bucket differs from the
    target first at bit ``p``; among them a node of bucket ``i`` (differing from us first at bit
    ``i``) beats all deeper ones exactly when bit ``i`` of ``d`` is set. So: deeper buckets with
    their bit of ``d`` set, shallowest first, then the last bucket, then the other deeper
    buckets, deepest first. Then buckets ``p - 1`` down to 0, whose nodes differ from the target
    at an ever higher bit."""
    p = ID_BITS - d.bit_length()
    if p >= last:
        yield from range(last, -1, -1)
        return
    yield p
    top = ID_BITS - 1
    clear: list[int] = []
    for i in range(p + 1, last):
        if (d >> (top - i)) & 1:
            yield i
        else:
            clear.append(i)
    yield last
    yield from reversed(clear)
    yield from range(p - 1, -1, -1)


def _partition(
    entries: list[NodeEntry], own: int, limit: int
) -> tuple[list[NodeEntry], list[NodeEntry]]:
    """(entries at XOR distance >= limit from ``own``, the others), order kept."""
    far = [e for e in entries if e.id_int ^ own >= limit]
    near = [e for e in entries if e.id_int ^ own < limit]
    return far, near
