"""EventBatcher with made-up events and times: the queue keeps order and is bounded under a
flood, routing snapshots follow the families that changed (and every family once a second),
stats come twice a second, and external addresses are delivered once per change."""

from __future__ import annotations

from dhtviewer.dht import events as ev
from dhtviewer.net.session import StateChanged
from dhtviewer.ui.event_batcher import SNAPSHOT_EVERY, STATS_EVERY, EventBatcher

PEER = ("10.0.0.1", 6881)


def received(i: int, kind: str = "r") -> ev.MessageReceived:
    return ev.MessageReceived(PEER, kind, b"ping", bytes([i % 256]) * 2, 40, b"\x01" * 20,
                              b"", float(i))


def added(family: int) -> ev.NodeAdded:
    addr = ("10.0.0.2", 1) if family == 4 else ("fd00::2", 1)
    return ev.NodeAdded(b"\x01" * 20, addr, 3, family, 1.0)


def test_events_come_out_in_order_once() -> None:
    b = EventBatcher()
    events = [received(1), StateChanged("idle", "bootstrapping", "", 0.5), received(2, "q")]
    for e in events:
        b.add(e)
    assert b.pending == 3
    assert b.take_events() == events
    assert b.take_events() == [] and b.pending == 0


def test_a_traffic_flood_is_capped_and_counted_but_other_events_still_pass() -> None:
    b = EventBatcher(max_pending=10)
    for i in range(25):
        b.add(received(i))
    assert b.pending == 10 and b.dropped == 15
    # only the first ten responses were seen (the dropped ones never reached the UI)
    assert b.responses == 10
    state = StateChanged("bootstrapping", "ready", "", 2.0)
    b.add(state)  # a state change is never dropped: the UI must see every transition
    batch = b.take_events()
    assert batch[-1] is state and len(batch) == 11
    b.add(received(99))
    assert b.pending == 1 and b.dropped == 15


def test_only_responses_count_toward_a_live_bootstrap() -> None:
    b = EventBatcher()
    b.add(received(1, "q"))
    b.add(received(2, "e"))
    assert b.responses == 0
    b.add(received(3, "r"))
    assert b.responses == 1


def test_routing_snapshots_follow_the_changed_family_and_tick_every_second() -> None:
    b = EventBatcher()
    assert b.routing_due(10.0, [4, 6]) == [4, 6]  # the first round: every family
    assert b.routing_due(10.1, [4, 6]) == []  # nothing changed, a second not over
    b.add(added(6))
    assert b.routing_due(10.2, [4, 6]) == [6]
    assert b.routing_due(10.3, [4, 6]) == []
    b.add(ev.NodeIdChanged(b"\x01" * 20, b"\x02" * 20, "81.4.19.7", 4, 10.35))
    assert b.routing_due(10.4, [4, 6]) == [4]  # a new id re-sorts every bucket
    assert b.routing_due(10.0 + SNAPSHOT_EVERY, [4, 6]) == [4, 6]  # ages tick
    assert b.routing_due(10.5 + SNAPSHOT_EVERY, [4]) == []


def test_stats_are_due_twice_a_second() -> None:
    b = EventBatcher()
    times = [round(0.1 * i, 1) for i in range(21)]
    due = [t for t in times if b.stats_due(t)]
    assert due == [0.0, STATS_EVERY, 2 * STATS_EVERY, 3 * STATS_EVERY, 4 * STATS_EVERY]


def test_each_familys_external_address_is_delivered_once_per_change() -> None:
    b = EventBatcher()
    assert b.external_address() is None and b.take_external() == []
    b.add(ev.ExternalAddressChanged("2001:db8::7", 3, 1.0))
    b.add(ev.ExternalAddressChanged("203.0.113.9", 2, 1.1))
    b.add(ev.ExternalAddressChanged("203.0.113.9", 4, 1.2))
    # per family, the newest, IPv4 first
    assert b.take_external() == [("203.0.113.9", 4), ("2001:db8::7", 3)]
    assert b.take_external() == []
    assert b.external_address() == ("2001:db8::7", 3)  # the family that spoke first
    b.forget_external()
    assert b.external_address() is None and b.take_external() == []
