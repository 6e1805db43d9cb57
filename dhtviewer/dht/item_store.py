"""The BEP 44 items other nodes ``put`` to us: validation rules, caps, expiry.

Rules (BEP 44): an item is validated before it is stored (sizes, salt, seq range, signature:
``Item.validate``); a mutable item only replaces one with a lower ``seq`` (302 otherwise; an
equal ``seq`` with the same value just refreshes it, an equal ``seq`` with another value is
refused as not newer); a ``cas`` that differs from the stored ``seq`` is refused with 301 (and is
ignored when nothing is stored). Items expire ``ttl`` after their last put (the BEP allows 2 h;
publishers re-put hourly).

Bounds. At most ``max_items`` items (each at most ~1.2 KB: a 1000-byte value, a 64-byte
signature, a 32-byte key, a 64-byte salt), so memory is bounded whatever arrives. When the store
is full a new item evicts one, chosen so that a put flood from a few addresses cannot push out
what many nodes keep alive: each item remembers up to ``MAX_PUTTERS`` distinct addresses that
put it, and the victim is the least recently refreshed item among those with the fewest
putters. A flooder's items all have one putter and churn among themselves; an item several
nodes republish survives it. Every operation is O(1) amortised (one insertion-ordered map per
putter count, plus one in expiry order), as in ``peer_store``.

Expiry is lazy too: every call that takes ``now`` first drops what expired by then.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from dhtviewer.dht.counters import Counters
from dhtviewer.dht.items import CAS_MISMATCH, SEQ_TOO_LOW, Item, ItemError

__all__ = ["DEFAULT_TTL", "MAX_PUTTERS", "ItemStore", "StoredItem"]

DEFAULT_TTL = 2 * 3600.0
MAX_PUTTERS = 8
"""Distinct putter addresses remembered per item (only their count matters, for eviction)."""


@dataclass(slots=True)
class StoredItem:
    """An item in the store. ``stored_at``: first put; ``refreshed_at``: last put (it expires
    ``ttl`` after it); ``puts``: accepted puts (including refreshes); ``putters``: distinct
    addresses that put it (at most ``MAX_PUTTERS`` remembered)."""

    item: Item
    stored_at: float
    refreshed_at: float
    puts: int = 1
    putters: set[str] = field(default_factory=set)


class ItemStore:
    """Items by target (immutable and mutable share one table, as their targets are both
    SHA-1 values and a ``get`` does not say which it wants)."""

    def __init__(
        self, *, max_items: int, ttl: float = DEFAULT_TTL, counters: Counters | None = None
    ) -> None:
        """``counters``: where puts, refusals, evictions and expiries are counted (the node's
        ``Counters``; a fresh one if None)."""
        if max_items < 0:
            raise ValueError("max_items must not be negative")
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        self.max_items = max_items
        self.ttl = ttl
        self._items: dict[bytes, StoredItem] = {}
        self._expiry: OrderedDict[bytes, None] = OrderedDict()  # refresh order = expiry order
        self._levels: dict[int, OrderedDict[bytes, None]] = {}  # putter count -> targets (LRU)
        self._clock = float("-inf")
        self.counters = counters if counters is not None else Counters()

    # --- writing -----------------------------------------------------------------------------
    def put(
        self, item: Item, now: float, *, cas: int | None = None, putter: str | None = None
    ) -> StoredItem | None:
        """Validate and store ``item`` (BEP 44 rules above). Returns the stored entry, or None
        when storage is disabled (``max_items`` 0). Raises ``ItemError`` (205, 206, 207, 203,
        301, 302) when the put must be refused; the store is then unchanged."""
        try:
            item.validate()
            return self._put(item, now, cas, putter)
        except ItemError:
            self.counters.items_refused += 1
            raise

    def _put(
        self, item: Item, now: float, cas: int | None, putter: str | None
    ) -> StoredItem | None:
        if self.max_items == 0:
            return None
        now = max(now, self._clock)
        self._clock = now
        self.expire(now)
        target = item.target
        entry = self._items.get(target)
        if entry is None:
            if len(self._items) >= self.max_items:
                self._evict()
            entry = StoredItem(item, now, now)
            self._items[target] = entry
            self._expiry[target] = None
            self._add_putter(target, entry, putter)
            self.counters.items_new += 1
            return entry
        old = entry.item
        if item.mutable:
            if cas is not None and cas != old.seq:
                raise ItemError(CAS_MISMATCH, f"cas {cas} does not match the stored seq {old.seq}")
            if item.seq < old.seq:
                raise ItemError(
                    SEQ_TOO_LOW, f"seq {item.seq} is lower than the stored seq {old.seq}"
                )
            if item.seq == old.seq and item.value != old.value:
                raise ItemError(
                    SEQ_TOO_LOW, f"seq {item.seq} is not newer than the stored seq {old.seq}"
                )
            if item.seq > old.seq:
                entry.item = item
                self.counters.items_updated += 1
            else:
                self.counters.items_refreshed += 1
        else:
            self.counters.items_refreshed += 1
        entry.refreshed_at = now
        entry.puts += 1
        self._expiry.move_to_end(target)
        self._add_putter(target, entry, putter)
        return entry

    def _add_putter(self, target: bytes, entry: StoredItem, putter: str | None) -> None:
        level = max(1, len(entry.putters))
        if putter is not None and putter not in entry.putters and len(entry.putters) < MAX_PUTTERS:
            entry.putters.add(putter)
        new_level = max(1, len(entry.putters))
        old = self._levels.get(level)
        if old is not None:
            old.pop(target, None)
            if not old:
                del self._levels[level]
        self._levels.setdefault(new_level, OrderedDict())[target] = None

    def _remove(self, target: bytes) -> None:
        entry = self._items.pop(target)
        self._expiry.pop(target, None)
        level = max(1, len(entry.putters))
        targets = self._levels[level]
        del targets[target]
        if not targets:
            del self._levels[level]

    def _evict(self) -> None:
        victim = next(iter(self._levels[min(self._levels)]))
        self._remove(victim)
        self.counters.items_evicted += 1

    def expire(self, now: float) -> int:
        """Drop every item whose last put is ``ttl`` or more before ``now``."""
        dropped = 0
        cutoff = now - self.ttl
        while self._expiry:
            target = next(iter(self._expiry))
            if self._items[target].refreshed_at > cutoff:
                break
            self._remove(target)
            dropped += 1
        self.counters.items_expired += dropped
        return dropped

    # --- reading -----------------------------------------------------------------------------
    def get(self, target: bytes, now: float) -> Item | None:
        self.expire(now)
        entry = self._items.get(target)
        return entry.item if entry is not None else None

    def entry(self, target: bytes, now: float) -> StoredItem | None:
        self.expire(now)
        return self._items.get(target)

    def next_expiry(self) -> float | None:
        """When the next item expires (None when the store is empty)."""
        for target in self._expiry:
            return self._items[target].refreshed_at + self.ttl
        return None

    def snapshot(self, now: float) -> list[tuple[bytes, StoredItem]]:
        """(target, entry) for every live item, least recently put first (for the UI)."""
        self.expire(now)
        return [(t, self._items[t]) for t in self._expiry]

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, target: object) -> bool:
        return target in self._items
