"""The BEP 51 crawler's schedule: rate bound, interval honoured, revisits, bounds."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.sampler import Sampler


def contact(i: int) -> NodeInfo:
    return NodeInfo(i.to_bytes(20, "big"), (f"127.0.{i // 250}.{i % 250 + 1}", 6881))


def make(rate: float = 10.0, **kw: object) -> Sampler:
    return Sampler(random.Random(1), 0.0, rate=rate, **kw)  # type: ignore[arg-type]


def test_rate_and_burst() -> None:
    s = make(rate=10.0, burst=5.0, max_inflight=1000)
    s.add_contacts(contact(i) for i in range(100))
    assert len(s.due(0.0)) == 5  # the burst
    assert s.due(0.0) == []
    assert s.next_deadline(0.0) == 0.1
    assert len(s.due(1.0)) == 5  # refilled, capped at the burst
    assert len(s.due(1.55)) == 5


def test_inflight_cap() -> None:
    s = make(rate=100.0, max_inflight=3)
    s.add_contacts(contact(i) for i in range(10))
    first = s.due(1.0)
    assert len(first) == 3 and s.next_deadline(1.0) is None
    s.on_failure(first[0][0].addr)
    assert len(s.due(1.0)) == 1


def test_a_slow_query_gives_its_slot_away_and_its_late_answer_still_counts() -> None:
    s = make(rate=100.0, max_inflight=2)
    s.add_contacts(contact(i) for i in range(10))
    first = s.due(1.0)
    assert len(first) == 2 and s.due(1.0) == []
    slow = first[0][0]
    s.on_slow(slow.addr)
    s.on_slow(slow.addr)  # once only
    assert s.inflight == 1 and s.counts.slow == 1
    assert len(s.due(1.0)) == 1  # its slot went to the next node
    s.on_reply(slow.addr, slow.id, 3.0, supported=True, returned=1, num=1)
    assert s.inflight == 2 and s.counts.replied == 1  # not released twice
    other = first[1][0]
    s.on_slow(other.addr)
    s.on_failure(other.addr)  # the hard timeout after the short one
    assert s.inflight == 1 and s.counts.failed == 1


def test_random_targets_and_no_repeat_without_reason() -> None:
    s = make(rate=1000.0, burst=1000.0, max_inflight=1000)
    s.add_contacts(contact(i) for i in range(50))
    batch = s.due(0.0)
    assert len({n.addr for n, _ in batch}) == 50
    assert len({t for _, t in batch}) == 50  # a fresh target each
    for n, _ in batch:
        s.on_reply(n.addr, n.id, 1.0, supported=True, returned=3, num=3, interval=0)
    assert s.due(10_000.0) == []  # everything returned all it stores: nothing to ask again
    assert s.counts.replied == 50 and s.counts.supported == 50


def test_interval_is_honoured_before_asking_again() -> None:
    s = make(rate=100.0, max_visits=3)
    s.add_contacts([contact(1)])
    [(n, _)] = s.due(0.0)
    s.on_reply(n.addr, n.id, 0.5, supported=True, returned=20, num=500, interval=300)
    assert s.due(100.0) == []
    assert s.next_deadline(100.0) == 300.5
    assert len(s.due(300.5)) == 1
    s.on_reply(n.addr, n.id, 301.0, supported=True, returned=20, num=500, interval=0)
    # interval 0 is floored at min_interval (60 s): a node cannot ask to be hammered.
    assert s.due(330.0) == [] and len(s.due(361.0)) == 1
    s.on_reply(n.addr, n.id, 362.0, supported=True, returned=20, num=500, interval=0)
    assert s.due(10_000.0) == []  # max_visits reached
    t = s.target(n.addr)
    assert t is not None and t.visits == 3


def test_unsupported_nodes_still_feed_the_walk() -> None:
    s = make(rate=100.0)
    s.add_contacts([contact(1)])
    [(n, _)] = s.due(0.0)
    s.on_reply(n.addr, n.id, 0.1, supported=False, contacts=[contact(2), contact(3)])
    assert s.counts.unsupported == 1 and s.known() == 3
    assert {m.addr for m, _ in s.due(1.0)} == {contact(2).addr, contact(3).addr}


def test_known_nodes_are_bounded() -> None:
    s = make(max_known=10)
    assert s.add_contacts(contact(i) for i in range(25)) == 10
    assert s.known() == 10 and s.counts.dropped_contacts == 15
    assert s.add_contacts([contact(3)]) == 0  # already known


def test_replies_we_did_not_ask_for_change_nothing() -> None:
    s = make()
    s.add_contacts([contact(1)])
    s.on_reply(contact(1).addr, contact(1).id, 0.0, supported=True, num=100)
    s.on_failure(contact(9).addr)
    assert s.inflight == 0 and s.counts.replied == 0 and s.counts.failed == 0


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.5, 50.0),
    burst=st.floats(1.0, 20.0),
    steps=st.lists(
        st.tuples(st.floats(0.0, 3.0), st.sampled_from(["reply", "fail", "add"])), max_size=60
    ),
)
def test_never_faster_than_the_rate(
    rate: float, burst: float, steps: list[tuple[float, str]]
) -> None:
    """Whatever happens, queries sent up to any time t never exceed burst + rate * t."""
    s = Sampler(random.Random(3), 0.0, rate=rate, burst=burst, max_inflight=8)
    s.add_contacts(contact(i) for i in range(30))
    now, sent, inflight = 0.0, 0, []
    serial = 100
    for dt, action in steps:
        now += dt
        batch = s.due(now)
        sent += len(batch)
        inflight += [n for n, _ in batch]
        assert sent <= burst + rate * now + 1e-9
        assert s.inflight <= 8
        if inflight and action in ("reply", "fail"):
            n = inflight.pop(0)
            if action == "reply":
                s.on_reply(n.addr, n.id, now, supported=True, returned=1, num=50, interval=0,
                           contacts=[contact(serial)])
                serial += 1
            else:
                s.on_failure(n.addr)
        elif action == "add":
            s.add_contacts([contact(serial)])
            serial += 1
        deadline = s.next_deadline(now)
        assert deadline is None or deadline >= now
