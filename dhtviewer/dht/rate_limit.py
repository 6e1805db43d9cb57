"""Per-IP and global budgets for answering queries (anti-flood, anti-amplification).

Every query the node would answer first asks ``RateLimiter.allow(ip, now)``. Three layers:

1. Per-IP token bucket: ``per_ip_rate`` queries/s on average, bursts up to ``per_ip_burst``.
   A well-behaved node sends a handful of queries a minute to any one other node, so this only
   ever bites on scanners and floods.
2. Blocking: a refused query adds one to the IP's *excess*, which drains at ``per_ip_rate``. An
   IP whose excess reaches ``per_ip_burst`` (it emptied its bucket and then sent another burst's
   worth faster than the rate) is blocked for ``block_seconds``: every packet is refused without
   further bookkeeping. A sender only slightly over the rate is merely trimmed back to the rate,
   because its excess drains as fast as it grows; it takes a real flood to get blocked. The
   block is not extended by packets sent while blocked, so spoofing someone's address cannot
   lock them out for longer than one period.
3. Global token bucket (``global_rate``/s, burst ``global_burst``) over all replies, so that
   many IPs (or one attacker spoofing many) cannot make us send unbounded traffic. A query refused
   here gives its per-IP token back: it was not the IP's fault.

Defaults and deployed practice (protocol-notes.md, "Abuse protections"): libtorrent refuses an
IP past 5 packets/s averaged over 10 s and then blocks it for 5 minutes; another deployed node
allows 10 packets per 2 s and blocks for 100 s. The per-IP rate here is the same 5/s; the burst of
25 is five seconds' worth, so at most 75 queries pass in any 10 s (libtorrent: 50). The block is
shorter (60 s) on purpose: many users share one address behind carrier-grade NAT, and blocking is
a cheap way to shed a flood, not a punishment; a flooder that resumes is blocked again within
``2 * per_ip_burst`` packets. Deployed nodes budget about 100 queries/s globally (burst 400); the
default here (2000/s, burst 4000) matches ``DhtSettings`` and is set for a monitoring node that
wants to keep answering on a busy, well-connected host. On a home uplink, lower it
(``global_reply_rate``): at ~1 KB per reply, 2000/s is ~2 MB/s upstream.

The IP table is bounded by ``max_tracked_ips``: the least recently seen unblocked IP is forgotten
first (it comes back with a full bucket, which is what a quiet IP would have anyway); blocked IPs
are forgotten last, the one whose block ends soonest first. Every operation is O(1) amortised.
"""

from __future__ import annotations

from collections import OrderedDict

from dhtviewer.dht.counters import Counters


class _Bucket:
    """One IP's budget: tokens available, excess refused, and when both were last updated."""

    __slots__ = ("excess", "tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.excess = 0.0
        self.updated = now


class RateLimiter:
    """Decides, packet by packet, whether a query from ``ip`` gets answered. ``now`` should not
    go backwards; if it does, no budget refills until it catches up."""

    def __init__(
        self,
        *,
        per_ip_rate: float = 5.0,
        per_ip_burst: float = 25.0,
        block_seconds: float = 60.0,
        max_tracked_ips: int = 10000,
        global_rate: float = 2000.0,
        global_burst: float = 4000.0,
        counters: Counters | None = None,
    ) -> None:
        """``counters``: where refusals and blocks are counted (the node's; a fresh one if
        None)."""
        if per_ip_rate < 0 or global_rate < 0 or block_seconds < 0:
            raise ValueError("rates and block_seconds must not be negative")
        if per_ip_burst < 1 or global_burst < 1:
            raise ValueError("bursts must be at least 1 (else nothing is ever allowed)")
        if max_tracked_ips < 1:
            raise ValueError("max_tracked_ips must be at least 1")
        self.per_ip_rate = per_ip_rate
        self.per_ip_burst = per_ip_burst
        self.block_seconds = block_seconds
        self.max_tracked_ips = max_tracked_ips
        self.global_rate = global_rate
        self.global_burst = global_burst
        # Unblocked IPs, least recently seen first.
        self._active: OrderedDict[str, _Bucket] = OrderedDict()
        # Blocked IPs -> end of block. block_seconds is fixed and now does not go backwards, so
        # insertion order is also the order in which blocks end.
        self._blocked: OrderedDict[str, float] = OrderedDict()
        self._global_tokens = global_burst
        self._global_updated: float | None = None
        self.counters = counters if counters is not None else Counters()

    def allow(self, ip: str, now: float, *, reply: bool = True) -> bool:
        """True if a query from ``ip`` arriving at ``now`` may be answered; spends its budget.

        ``reply=False`` charges a datagram that will not be answered (garbage, an unsolicited
        reply): it spends the IP's own budget, so such a flood gets the IP blocked like a query
        flood, but not the global reply budget, which only paces what we send."""
        self._release(now)
        end = self._blocked.get(ip)
        if end is not None:
            if end > now:
                self.counters.limiter_refused += 1
                self.counters.limiter_refused_blocked += 1
                return False
            del self._blocked[ip]  # ended, but behind a later one (the clock went backwards)
        bucket = self._active.get(ip)
        if bucket is None:
            bucket = self._active[ip] = _Bucket(self.per_ip_burst, now)
            self._evict_if_full()
        else:
            self._active.move_to_end(ip)
            self._refill(bucket, now)
        if bucket.tokens >= 1.0:
            if reply and not self._take_global(now):
                self.counters.dropped_global += 1
                return False
            bucket.tokens -= 1.0
            self.counters.limiter_allowed += 1
            return True
        self.counters.limiter_refused += 1
        bucket.excess += 1.0
        if bucket.excess >= self.per_ip_burst:
            self._block(ip, now)
        return False

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = now - bucket.updated
        if elapsed > 0:
            gained = elapsed * self.per_ip_rate
            bucket.tokens = min(self.per_ip_burst, bucket.tokens + gained)
            bucket.excess = max(0.0, bucket.excess - gained)
            bucket.updated = now

    def _take_global(self, now: float) -> bool:
        if self._global_updated is None:
            self._global_updated = now
        elapsed = now - self._global_updated
        if elapsed > 0:
            self._global_tokens = min(
                self.global_burst, self._global_tokens + elapsed * self.global_rate
            )
            self._global_updated = now
        if self._global_tokens >= 1.0:
            self._global_tokens -= 1.0
            return True
        return False

    def _block(self, ip: str, now: float) -> None:
        del self._active[ip]
        self._blocked[ip] = now + self.block_seconds
        self.counters.ip_blocks += 1

    def _release(self, now: float) -> None:
        """Forget blocks that have ended. The IP starts afresh (full bucket), as it would have
        had its bucket refill during the block anyway."""
        blocked = self._blocked
        while blocked and next(iter(blocked.values())) <= now:
            blocked.popitem(last=False)

    def _evict_if_full(self) -> None:
        if len(self._active) + len(self._blocked) > self.max_tracked_ips:
            # The IP just added is at the end of _active, so it is never its own victim unless
            # the table has room for one IP only.
            if len(self._active) > 1 or not self._blocked:
                self._active.popitem(last=False)
            else:
                self._blocked.popitem(last=False)

    def tracked(self) -> int:
        """IPs currently in the table, blocked or not (bounded by ``max_tracked_ips``)."""
        return len(self._active) + len(self._blocked)

    def is_blocked(self, ip: str, now: float) -> bool:
        end = self._blocked.get(ip)
        return end is not None and end > now

    def blocked_ips(self, now: float) -> list[str]:
        """IPs blocked at ``now``, the one whose block ends soonest first."""
        self._release(now)
        return [ip for ip, end in self._blocked.items() if end > now]

    def block_ends(self, ip: str) -> float | None:
        """When the block on ``ip`` ends (None if it is not blocked)."""
        return self._blocked.get(ip)
