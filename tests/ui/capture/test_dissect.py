"""What the packet log says about a packet: summaries, the decoded tree, hex and ASCII."""

from __future__ import annotations

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import GetPeersQuery, NodeInfo, Response
from dhtviewer.ui.capture.dissect import detail, hexdump, pair_text, summary
from dhtviewer.ui.capture.records import Direction, Kind, Packet

TARGET = bytes.fromhex("ab" * 20)
OWN, OTHER = b"\x01" * 20, b"\x02" * 20


def packet(kind: Kind, data: bytes, **kw: object) -> Packet:
    return Packet(7, 12.5, Direction.IN, "1.2.3.4", 6881, kind, "get_peers", b"\x00\x01",
                  len(data), OTHER, data, **kw)  # type: ignore[arg-type]


def test_summary_and_decoded_tree_of_a_reply() -> None:
    nodes = tuple(NodeInfo(bytes([n]) * 20, (f"10.0.0.{n}", 6881)) for n in range(1, 4))
    data = krpc.encode(Response(b"\x00\x01", OTHER, nodes=nodes, token=b"\x00\xfftok"))
    p = packet(Kind.RESPONSE, data, peer=3, rtt=0.0123)
    assert "nodes=3" in summary(p) and summary(p) is p.summary
    text = detail(p, time_origin=2.5)
    first = text.splitlines()[0]
    assert first.startswith("No. 7  response get_peers from 1.2.3.4:6881") and "10.000 s" in first
    assert "token: 00ff746f6b (5 bytes)" in text
    assert "10.0.0.1:6881" in text  # compact nodes unpacked
    assert 'y: "r"' in text
    assert "Reply to the query No. 3 (12.30 ms)" in text
    assert f"Bytes ({len(data):,}):" in text and "0000  64 31 3a 72" in text


def test_query_summary_and_pairing_line() -> None:
    data = krpc.encode(GetPeersQuery(b"aa", OWN, info_hash=TARGET))
    p = packet(Kind.QUERY, data)
    assert summary(p).startswith("get_peers info_hash=")
    assert pair_text(p) == "No reply (yet)"
    p.peer, p.rtt = 9, 0.5
    assert pair_text(p) == "Reply: No. 9 after 500.00 ms"
    assert detail(p).count(TARGET.hex()) == 1


def test_our_answer_to_an_incoming_query_is_paired_without_a_time() -> None:
    """A query that came in is answered in the same step: no round trip to show, and no "?"."""
    query = packet(Kind.QUERY, krpc.encode(GetPeersQuery(b"aa", OWN, info_hash=TARGET)))
    query.peer = 12
    assert pair_text(query) == "Reply: No. 12"
    reply = packet(Kind.RESPONSE, krpc.encode(GetPeersQuery(b"aa", OWN, info_hash=TARGET)))
    reply.peer = 11
    assert pair_text(reply) == "Reply to the query No. 11"


def test_malformed_shows_its_reason_and_bytes() -> None:
    p = packet(Kind.MALFORMED, b"d1:ad2:id", note="invalid bencode (error 203)")
    p.size = 3000
    text = detail(p)
    assert "invalid bencode (error 203)" in text
    assert "Bytes (the first 9 of 3,000 bytes):" in text
    assert "0000  64 31 3a 61 64 32 3a 69 64" in text and "d1:ad2:id" in text


def test_hexdump_layout_and_bound() -> None:
    lines = hexdump(bytes(range(20)) + b"AB")
    assert lines[0] == "0000  " + " ".join(f"{b:02x}" for b in range(16)) + "  " + "." * 16
    assert lines[1].startswith("0010  10 11 12 13 41 42") and lines[1].endswith("  ....AB")
    big = hexdump(b"x" * 100, limit=32)
    assert len(big) == 3 and big[-1] == "… 68 more bytes"
