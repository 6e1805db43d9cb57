"""Refresher: the node's own lookups that keep its routing table whole: the bootstrap, filling the
buckets after it, and refreshing buckets that went stale.

* ``bootstrap(addrs)``: a find_node lookup of our own id seeded with ``addrs``. When it finishes
  with a non-empty table the node counts as bootstrapped and every bucket that is not full gets
  a refresh lookup, so the table covers the whole id space and not only our neighbourhood.
* Afterwards, a bucket unchanged for its ``RoutingPolicy.refresh_interval`` (by default
  ``bucket_refresh_interval``) gets a find_node lookup of a random id in its range (BEP 5), at
  most ``max_refresh_lookups`` at a time.
* When our id changes (BEP 42), a find_node lookup of the new id lets our new neighbours learn
  of us and fills the buckets around it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from dhtviewer.dht.kinds import LookupKind
from dhtviewer.dht.lookup import Lookup
from dhtviewer.dht.lookups import LookupManager
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings


class Refresher:
    def __init__(
        self,
        *,
        settings: DhtSettings,
        table: RoutingTable,
        lookups: LookupManager,
        rng: random.Random,
    ) -> None:
        """``rng``: draws the refresh targets (they are visible on the wire: not a secret)."""
        self.settings = settings
        self.table = table
        self.lookups = lookups
        self.rng = rng
        self.bootstrapped = False
        """A bootstrap lookup finished with a non-empty routing table (or ``mark_bootstrapped``
        was called)."""
        self._bootstrap: int | None = None
        self._refreshing: dict[int, int | None] = {}
        """Running refresh lookups: lookup id -> bucket, or None once our id changed (the
        buckets were laid out anew: that index means nothing any more)."""

    def bootstrap(self, node_id: bytes, addrs: Sequence[Addr], now: float) -> int:
        """Start the bootstrap lookup (find_node of ``node_id``); returns its id. Only the latest
        bootstrap decides ``bootstrapped``."""
        lk = self.lookups.start(
            node_id, LookupKind.BOOTSTRAP, now, seeds=addrs, on_finished=self._bootstrap_done
        )
        if not lk.finished:
            self._bootstrap = lk.id
        else:  # nobody to ask: finished inside start(), before its id was known here
            self._bootstrap_done(lk, now, False, latest=True)
        return lk.id

    def node_id_changed(self, node_id: bytes, now: float) -> None:
        """Our id is now ``node_id``: look it up (once bootstrapped, if a lookup slot is free)
        so that the nodes nearest to it, our new neighbourhood, hear of us."""
        for lookup_id in self._refreshing:
            self._refreshing[lookup_id] = None  # they still run (and count), their bucket is gone
        if not self.bootstrapped or len(self.lookups) >= self.settings.max_lookups:
            return
        self.lookups.start(node_id, LookupKind.REFRESH, now)

    def mark_bootstrapped(self) -> None:
        """The table was filled by other means (a simulation seeding it from global knowledge):
        maintenance starts now."""
        self.bootstrapped = True

    def tick(self, now: float) -> None:
        """Start refreshes of stale buckets (from the node's timer)."""
        table = self.table
        if not self.bootstrapped or not len(table):
            return
        for idx in table.stale_buckets(now):
            if len(self._refreshing) >= self.settings.max_refresh_lookups:
                return
            self._start(idx, now)

    def next_deadline(self) -> float | None:
        if not self.bootstrapped or len(self._refreshing) >= self.settings.max_refresh_lookups:
            # With refreshes at their cap, the next one starts when one finishes, not by timer.
            return None
        return self.table.next_refresh_deadline() if len(self.table) else None

    # --- internals -----------------------------------------------------------------------------
    def _bootstrap_done(
        self, lk: Lookup, now: float, cancelled: bool, *, latest: bool = False
    ) -> None:
        if cancelled or not (latest or lk.id == self._bootstrap):
            return
        self._bootstrap = None
        self.bootstrapped = len(self.table) > 0
        if self.bootstrapped:
            self._fill(now)

    def _fill(self, now: float) -> None:
        for b in self.table.snapshot(now).buckets[:-1]:
            if len(b.nodes) < b.capacity:
                self._start(b.index, now)

    def _start(self, idx: int, now: float) -> None:
        table = self.table
        # Touched even when no refresh can start now (all lookup slots taken): the bucket is
        # then simply due again one refresh interval later, instead of spinning the timer.
        table.touch_bucket(idx, now)
        if idx in self._refreshing.values():
            return
        if len(self.lookups) >= self.settings.max_lookups:
            return
        target = table.refresh_target(idx, self.rng)
        lk = self.lookups.start(target, LookupKind.REFRESH, now, on_finished=self._refresh_done)
        if not lk.finished:
            self._refreshing[lk.id] = idx
        else:
            table.touch_bucket(idx, now)

    def _refresh_done(self, lk: Lookup, now: float, cancelled: bool) -> None:
        idx = self._refreshing.pop(lk.id, None)
        if idx is not None:
            self.table.touch_bucket(idx, now)
