"""Outbox: counted datagrams, packet events only when wanted, a bounded event queue."""

from __future__ import annotations

from dhtviewer.dht import events as ev
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.outbox import Outbox

A = ("127.0.0.2", 1)


def test_transmit_counts_and_emits_packet_events_only_when_asked() -> None:
    c = Counters()
    box = Outbox(c, 10, traffic_events=False)
    box.transmit(b"abc", A, "q", b"ping", b"t1", 1.0)
    assert box.take_events() == [] and c.packets_out == 1 and c.bytes_out == 3
    box.traffic_events = True
    box.transmit(b"de", A, "r", b"ping", b"t2", 2.0)
    assert box.take_events() == [ev.MessageSent(A, "r", b"ping", b"t2", 2, b"de", 2.0)]
    assert box.take_datagrams() == [(b"abc", A), (b"de", A)] and box.take_datagrams() == []


def test_event_queue_drops_the_oldest_and_counts() -> None:
    c = Counters()
    box = Outbox(c, 3, traffic_events=False)
    for i in range(5):
        box.emit(ev.BucketSplit(4, i, float(i)))
    assert [e.bucket_count for e in box.take_events()] == [2, 3, 4]  # type: ignore[union-attr]
    assert c.events_dropped == 2 and box.queued_events() == 0
