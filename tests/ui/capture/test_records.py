"""Packets from the core's events, and the pairing of each query with its reply."""

from __future__ import annotations

from dhtviewer.dht import events as ev
from dhtviewer.ui.capture.records import ROW_OVERHEAD, Direction, Kind, Packet, Pairer, packet_of

A = ("127.0.0.5", 6881)


def pkt(seq: int, kind: Kind, direction: Direction, tid: bytes, at: float,
        addr: tuple[str, int] = A) -> Packet:
    return Packet(seq, at, direction, addr[0], addr[1], kind, "ping", tid, 20, None, b"x" * 20)


def test_packet_of_each_packet_event() -> None:
    sent = packet_of(ev.MessageSent(A, "q", b"ping", b"aa", 3, b"abc", 1.0), 1)
    assert sent is not None and sent.direction is Direction.OUT and sent.kind is Kind.QUERY
    got = packet_of(ev.MessageReceived(A, "e", b"get_peers", b"aa", 3, b"\x02" * 20, b"abc",
                                       2.0), 2)
    assert got is not None and got.kind is Kind.ERROR and got.node_id == b"\x02" * 20
    assert got.method == "get_peers" and got.addr == A
    bad = packet_of(ev.MalformedReceived(A, 900, 203, "invalid bencode", True, 3.0, b"zz"), 3)
    assert bad is not None and bad.kind is Kind.MALFORMED and bad.data == b"zz"
    assert bad.size == 900 and bad.note == "invalid bencode (error 203, replied)"
    stray = packet_of(ev.ResponseDropped(A, b"tt", "unknown transaction", 4.0), 4)
    assert stray is not None and stray.kind is Kind.UNSOLICITED and stray.tid == b"tt"
    assert packet_of(ev.BucketSplit(4, 2, 1.0), 5) is None
    assert sent.cost() == ROW_OVERHEAD + 3 + len("127.0.0.5") + 4 + 2


def test_pairs_both_ways_by_address_and_tid() -> None:
    pairer = Pairer()
    ours = pkt(1, Kind.QUERY, Direction.OUT, b"01", 1.0)
    theirs = pkt(2, Kind.QUERY, Direction.IN, b"01", 1.1)  # same tid, the other way
    assert pairer.add(ours) is None and pairer.add(theirs) is None
    other_addr = pkt(3, Kind.RESPONSE, Direction.IN, b"01", 1.2, ("127.0.0.6", 6881))
    assert pairer.add(other_addr) is None and other_addr.peer is None
    reply = pkt(4, Kind.RESPONSE, Direction.OUT, b"01", 1.15)  # our reply to their query
    assert pairer.add(reply) == 2 and reply.peer == 2
    assert reply.rtt is None  # our own reply: no round trip to time
    answer = pkt(5, Kind.ERROR, Direction.IN, b"01", 1.5)  # their error to our query
    assert pairer.add(answer) == 1 and answer.peer == 1
    assert answer.rtt is not None and abs(answer.rtt - 0.5) < 1e-9
    again = pkt(6, Kind.RESPONSE, Direction.IN, b"01", 1.6)  # a duplicate reply: no query left
    assert pairer.add(again) is None and len(pairer) == 0


def test_open_queries_are_bounded_in_number_and_age() -> None:
    pairer = Pairer(max_open=3, max_age=10.0)
    for i in range(5):
        pairer.add(pkt(i + 1, Kind.QUERY, Direction.OUT, bytes([i]), float(i)))
    assert len(pairer) == 3
    assert pairer.add(pkt(9, Kind.RESPONSE, Direction.IN, b"\x00", 5.0)) is None  # forgotten
    pairer.add(pkt(10, Kind.QUERY, Direction.OUT, b"zz", 100.0))
    assert len(pairer) == 1  # the old ones aged out
