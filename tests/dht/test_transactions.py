"""Transactions: exact-address matching, unique ids, short and hard deadlines, bounds."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht.transactions import TransactionOwner, TransactionTable

A = ("127.0.0.2", 6881)
B = ("127.0.0.3", 6881)
OWNER = TransactionOwner()


def make(max_inflight: int = 100) -> TransactionTable:
    return TransactionTable(random.Random(1), max_inflight)


def test_reply_matches_only_exact_address_and_tid() -> None:
    t = make()
    p = t.new(A, None, b"ping", 0.0, 1.0, 5.0, OWNER)
    assert t.match(p.tid, B) == (None, "reply from another address than the one queried")
    assert t.match(p.tid, ("127.0.0.2", 6882))[0] is None
    got, why = t.match(p.tid, A)
    assert got is p and why == ""
    # a second reply with the same tid is unsolicited
    assert t.match(p.tid, A) == (None, "unknown transaction id")


def test_tids_are_unique_while_pending() -> None:
    t = make(5000)
    tids = {t.new(A, None, b"ping", 0.0, 1.0, 5.0, OWNER).tid for i in range(5000)}
    assert len(tids) == 5000
    assert all(len(tid) == 2 for tid in tids)


def test_short_then_hard_deadline() -> None:
    t = make()
    p = t.new(A, None, b"find_node", 10.0, 1.0, 5.0, OWNER)
    assert t.next_deadline() == 11.0
    assert t.expire(10.5) == ([], [])
    slow, failed = t.expire(11.0)
    assert slow == [p] and p.slow and failed == []
    assert t.next_deadline() == 15.0
    slow, failed = t.expire(15.0)
    assert slow == [] and failed == [p]
    assert len(t) == 0 and t.next_deadline() is None


def test_a_short_deadline_can_be_moved_once_passed() -> None:
    """A lookup hears of a silent query at its checkpoint and asks to hear again later: the
    query is reported slow a second time then, and still fails at its hard deadline."""
    t = make()
    p = t.new(A, None, b"get_peers", 10.0, 0.5, 5.0, OWNER)
    assert t.expire(10.5) == ([p], [])
    assert t.rearm_short(p, 11.0)
    assert not p.slow and t.next_deadline() == 11.0
    assert t.expire(10.9) == ([], [])
    assert t.expire(11.0) == ([p], [])
    assert not t.rearm_short(p, 15.0)  # not before the hard deadline: refused
    assert t.expire(15.0) == ([], [p])
    assert not t.rearm_short(p, 12.0)  # no longer in flight


def test_answered_query_never_expires() -> None:
    t = make()
    p = t.new(A, None, b"ping", 0.0, 1.0, 5.0, OWNER)
    t.match(p.tid, A)
    assert t.expire(100.0) == ([], [])


def test_overflow_is_refused() -> None:
    t = make(3)
    for _ in range(3):
        t.new(A, None, b"ping", 0.0, 1.0, 5.0, OWNER)
    assert t.full
    with pytest.raises(OverflowError):
        t.new(A, None, b"ping", 0.0, 1.0, 5.0, OWNER)


def test_cancel_owner_forgets_only_its_queries() -> None:
    t = make()
    lookup = TransactionOwner()
    mine = [t.new(A, None, b"get_peers", 0.0, 1.0, 5.0, lookup) for _ in range(3)]
    other = t.new(B, None, b"ping", 0.0, 1.0, 5.0, OWNER)
    assert sorted(p.tid for p in t.cancel_owner(lookup)) == sorted(p.tid for p in mine)
    assert len(t) == 1
    assert t.match(mine[0].tid, A)[0] is None
    assert t.match(other.tid, B)[0] is other

