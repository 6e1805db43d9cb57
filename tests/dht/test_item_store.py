"""The BEP 44 item store: seq/cas rules and their error codes, expiry, caps under a flood."""

from __future__ import annotations

import pytest

from dhtviewer.dht.item_store import MAX_PUTTERS, ItemStore
from dhtviewer.dht.items import (
    BAD_SIGNATURE,
    CAS_MISMATCH,
    SEQ_TOO_LOW,
    VALUE_TOO_BIG,
    Item,
    ItemError,
)

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))


def store(max_items: int = 100, ttl: float = 7200.0) -> ItemStore:
    return ItemStore(max_items=max_items, ttl=ttl)


def refused(s: ItemStore, item: Item, now: float = 0.0, **kw: object) -> int:
    with pytest.raises(ItemError) as err:
        s.put(item, now, **kw)  # type: ignore[arg-type]
    return err.value.code


def test_immutable_put_and_get() -> None:
    s = store()
    item = Item.immutable(b"Hello World!")
    entry = s.put(item, 10.0)
    assert entry is not None and entry.stored_at == 10.0
    assert s.get(item.target, 11.0) == item
    assert s.put(item, 20.0) is entry and entry.puts == 2  # a re-put refreshes
    assert s.counters.items_new == 1 and s.counters.items_refreshed == 1


def test_mutable_seq_must_grow() -> None:
    s = store()
    v1 = Item.signed(SEED, b"one", 1)
    s.put(v1, 0.0)
    v2 = Item.signed(SEED, b"two", 2)
    s.put(v2, 1.0)
    assert s.get(v2.target, 1.0) == v2
    assert refused(s, v1, 2.0) == SEQ_TOO_LOW
    # Same seq, other value: not newer, refused; same seq and value: a refresh.
    assert refused(s, Item.signed(SEED, b"other", 2), 2.0) == SEQ_TOO_LOW
    entry = s.put(v2, 3.0)
    assert entry is not None and entry.refreshed_at == 3.0 and entry.item == v2
    assert s.counters.items_updated == 1 and s.counters.items_refused == 2


def test_cas() -> None:
    s = store()
    # Nothing stored: cas is ignored.
    s.put(Item.signed(SEED, b"one", 1), 0.0, cas=99)
    assert refused(s, Item.signed(SEED, b"two", 2), cas=5) == CAS_MISMATCH
    s.put(Item.signed(SEED, b"two", 2), 0.0, cas=1)
    item = s.get(Item.signed(SEED, b"x", 1).target, 0.0)
    assert item is not None and item.seq == 2


def test_salt_separates_items_of_one_key() -> None:
    s = store()
    a = Item.signed(SEED, b"a", 5, b"first")
    b = Item.signed(SEED, b"b", 1, b"second")
    s.put(a, 0.0)
    s.put(b, 0.0)  # a lower seq is fine: another target
    assert len(s) == 2 and s.get(a.target, 0.0) == a and s.get(b.target, 0.0) == b


def test_invalid_items_leave_the_store_unchanged() -> None:
    s = store()
    good = Item.signed(SEED, b"one", 1)
    s.put(good, 0.0)
    forged = Item(Item.signed(OTHER_SEED, b"evil", 9).value, good.public_key, 9, bytes(64))
    assert refused(s, forged) == BAD_SIGNATURE
    assert refused(s, Item(b"%d:" % 1000 + b"x" * 1000)) == VALUE_TOO_BIG
    assert s.get(good.target, 0.0) == good and len(s) == 1


def test_expiry_two_hours_after_the_last_put() -> None:
    s = store(ttl=7200.0)
    item = Item.immutable(b"x")
    s.put(item, 0.0)
    s.put(item, 3600.0)
    assert s.next_expiry() == 3600.0 + 7200.0
    assert s.get(item.target, 10799.0) == item
    assert s.get(item.target, 10800.0) is None
    assert len(s) == 0 and s.counters.items_expired == 1 and s.next_expiry() is None


def test_cap_evicts_least_recently_put_among_fewest_putters() -> None:
    s = store(max_items=3)
    popular = Item.immutable(b"popular")
    for i in range(3):
        s.put(popular, 0.0, putter=f"10.0.0.{i}")
    lonely = Item.immutable(b"lonely")
    s.put(lonely, 1.0, putter="10.0.1.1")
    s.put(Item.immutable(b"third"), 2.0, putter="10.0.1.2")
    # A flood of one-putter items churns among themselves; the popular item survives.
    for i in range(50):
        s.put(Item.immutable(b"flood %d" % i), 3.0 + i, putter="192.0.2.66")
        assert len(s) == 3
    assert popular.target in s
    assert lonely.target not in s
    assert s.counters.items_evicted == 50


def test_putters_are_bounded() -> None:
    s = store()
    item = Item.immutable(b"x")
    for i in range(MAX_PUTTERS + 5):
        entry = s.put(item, 0.0, putter=f"10.0.0.{i}")
    assert entry is not None and len(entry.putters) == MAX_PUTTERS


def test_zero_cap_stores_nothing() -> None:
    s = store(max_items=0)
    assert s.put(Item.immutable(b"x"), 0.0) is None and len(s) == 0
    with pytest.raises(ValueError):
        ItemStore(max_items=-1)
    with pytest.raises(ValueError):
        ItemStore(max_items=1, ttl=0)


def test_snapshot_in_put_order() -> None:
    s = store()
    a, b = Item.immutable(b"a"), Item.immutable(b"b")
    s.put(a, 0.0)
    s.put(b, 1.0)
    s.put(a, 2.0)
    assert [t for t, _ in s.snapshot(2.0)] == [b.target, a.target]
