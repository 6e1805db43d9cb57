"""The display filter: what each term selects (evaluated by SQLite, as the capture does), and a
clear message for every kind of mistake."""

from __future__ import annotations

import sqlite3

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import GetPeersQuery, PingQuery
from dhtviewer.ui.capture.filter import FilterError, compile_filter, help_text
from dhtviewer.ui.capture.records import Direction, Kind, Packet
from dhtviewer.ui.capture.store import as_row
from dhtviewer.ui.capture.writer import INSERT, connect

IH = bytes.fromhex("aa" * 20)
NODE = bytes.fromhex("5d1f" + "00" * 18)


def sample() -> list[Packet]:
    gp = krpc.encode(GetPeersQuery(b"t1", NODE, info_hash=IH))
    ping = krpc.encode(PingQuery(b"t2", NODE))
    return [
        Packet(1, 100.0, Direction.OUT, "127.0.0.1", 6881, Kind.QUERY, "get_peers", b"t1",
               len(gp), None, gp, peer=2, rtt=0.250),
        Packet(2, 100.25, Direction.IN, "127.0.0.1", 6881, Kind.RESPONSE, "get_peers", b"t1",
               300, NODE, b"d1:rd2:id20:" + NODE + b"ee", peer=1, rtt=0.250),
        Packet(3, 101.0, Direction.IN, "::1", 7000, Kind.QUERY, "ping", b"t2", len(ping), NODE,
               ping),
        Packet(4, 102.0, Direction.IN, "10.1.2.3", 1, Kind.MALFORMED, "", b"", 5000, None,
               b"garbage \xff", "invalid bencode (error 203)"),
        Packet(5, 103.0, Direction.OUT, "127.0.0.2", 6881, Kind.QUERY, "find_node", b"\x00\xab",
               90, None, b"d1:q9:find_node"),
    ]


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = connect(":memory:")
    conn.executemany(INSERT, [as_row(p) for p in sample()])
    return conn


def matches(db: sqlite3.Connection, text: str) -> list[int]:
    f = compile_filter(text, lambda: 100.0)
    if f is None:
        return [p.seq for p in sample()]
    return [r[0] for r in db.execute(f"SELECT seq FROM packets WHERE {f.sql} ORDER BY seq",
                                     f.params)]


@pytest.mark.parametrize(("text", "seqs"), [
    ("", [1, 2, 3, 4, 5]),
    ("method == get_peers", [1, 2]),
    ("method = PING", [3]),
    ("dir == in", [2, 3, 4]),
    ("type == malformed", [4]),
    ("addr == 127.0.0.1:6881", [1, 2]),
    ("addr == 127.0.0.1", [1, 2]),
    ("addr == [::1]:7000", [3]),
    ("addr != 127.0.0.1", [3, 4, 5]),
    ("addr ~ 127.0.0", [1, 2, 5]),
    ("port > 6881", [3]),
    ("size >= 300", [2, 4]),
    ("rtt > 200", [1, 2]),
    ("rtt > 0.3s", []),
    ("time < 1.5", [1, 2, 3]),
    ("no <= 2", [1, 2]),
    ("tid == 00ab", [5]),
    ("tid ~ ab", [5]),
    ("id == 5d1f", [2, 3]),
    ("id != 5d1f", [1, 4, 5]),
    ("reason ~ bencode", [4]),
    ("data ~ find_node", [5]),
    ("unanswered", [3, 5]),
    ("answered", [1, 2]),
    ("not dir == out", [2, 3, 4]),
    ("! answered", [3, 4, 5]),
    ("method == ping or type == malformed", [3, 4]),
    ("(method == ping or method == find_node) and dir == out", [5]),
    ("dir == in && size > 100", [2, 4]),
    ("get_peers", [1, 2]),  # a word: the method, or the bytes
    ("GARBAGE", [4]),  # the bytes, whatever the case
    ("aa" * 20, [1]),  # an info-hash, as hex bytes in the datagram
    ("5d1f", [1, 2, 3]),  # node id (2, 3), and hex bytes in datagram 1 (its sender id)
    ('"invalid bencode"', [4]),
    ("[::1]", [3]),
    ("10.1.2.3:1", [4]),
    ("100%", []),  # LIKE wildcards are literal
])
def test_terms_select_the_right_packets(db: sqlite3.Connection, text: str,
                                        seqs: list[int]) -> None:
    assert matches(db, text) == seqs


@pytest.mark.parametrize(("text", "message"), [
    ("size >> 3", "'size >' needs a value"),
    ("size > big", "'size' needs a whole number"),
    ("sizes > 3", "unknown field 'sizes'"),
    ("dir == sideways", "'dir' is one of in, out"),
    ("method > ping", "'method' is compared with ==, != or ~"),
    ("tid == xyz", "'tid' is hexadecimal"),
    ("tid == abc", "whole bytes"),
    ("(dir == in", "a '(' is not closed"),
    ("()", "empty parentheses"),
    ("dir == in )", "unexpected ')'"),
    ("dir == in and", "the filter ends where a term should follow"),
    ("rtt ~ 3", "'rtt' is a number"),
    ("data == x", "'data' is searched with ~"),
    ("addr == a:b:c]", "address"),
])
def test_mistakes_are_named(text: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        compile_filter(text)
    assert message in str(err.value)


def test_help_lists_every_field() -> None:
    text = help_text()
    for name in ("method", "addr", "rtt", "tid", "id", "unanswered"):
        assert name in text
