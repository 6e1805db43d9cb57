"""The fast path for common queries never disagrees with the general decoder (bencode.py behind
the strictness layer, then KRPC validation): on generated queries, on libtorrent's captured
datagrams and on mutations of both, it either returns exactly what the general path returns, field
for field what bencode.py itself reads from the bytes, or steps aside (None)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import bencodepy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtviewer.dht import krpc
from dhtviewer.dht.common_queries import decode_common_query
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    PingQuery,
    Query,
    method_of,
)

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "krpc-captures" / "libtorrent-2.1.json"


def general(data: bytes) -> Message | krpc.KrpcError:
    try:
        return krpc.decode_general(data)
    except krpc.KrpcError as err:
        return err


def check(data: bytes) -> Query | None:
    """The invariant: fast is None, or the general decoder returns the very same message."""
    fast = decode_common_query(data)
    if fast is not None:
        assert general(data) == fast, data
        assert krpc.decode(data) == fast
        assert bencode_py_fields(data) == fast_fields(fast), data
    return fast


def bencode_py_fields(data: bytes) -> dict[bytes, object]:
    """What the reference library reads from the bytes, with nothing of ours in between."""
    top = bencodepy.decode(data)
    return {b"t": top[b"t"], b"y": top[b"y"], b"q": top[b"q"], b"v": top.get(b"v"),
            **top[b"a"]}


def fast_fields(q: Query) -> dict[bytes, object]:
    out: dict[bytes, object] = {b"t": q.tid, b"y": b"q", b"q": method_of(q),
                                b"v": q.version, b"id": q.sender_id}
    if isinstance(q, FindNodeQuery):
        out[b"target"] = q.target
    elif isinstance(q, GetPeersQuery):
        out[b"info_hash"] = q.info_hash
    return out


ids = st.binary(min_size=20, max_size=20)
tids = st.binary(min_size=0, max_size=6)
versions = st.none() | st.binary(min_size=0, max_size=6)
wants = st.sampled_from([frozenset(), frozenset({b"n4"}), frozenset({b"n4", b"n6"})])
queries = st.one_of(
    st.builds(PingQuery, tids, ids, version=versions, read_only=st.booleans()),
    st.builds(FindNodeQuery, tids, ids, target=ids, want=wants, version=versions,
              read_only=st.booleans()),
    st.builds(GetPeersQuery, tids, ids, info_hash=ids, want=wants, bootstrap=st.booleans(),
              version=versions, read_only=st.booleans()),
    st.builds(AnnouncePeerQuery, tids, ids, info_hash=ids, port=st.integers(1, 65535),
              token=st.binary(max_size=8), version=versions),
)


@settings(max_examples=400, deadline=None)
@given(queries)
def test_generated_queries_decode_the_same_either_way(q: Query) -> None:
    data = krpc.encode(q)
    fast = check(data)
    assert krpc.decode(data) == q
    usual = (
        isinstance(q, (PingQuery, FindNodeQuery, GetPeersQuery))
        and 1 <= len(q.tid) <= 4
        and (q.version is None or len(q.version) == 4)
        and not getattr(q, "want", None)
        and not getattr(q, "bootstrap", False)
    )
    assert (fast is not None) == usual  # the usual layout always takes the fast path


@settings(max_examples=1500, deadline=None)
@given(
    queries,
    st.lists(
        st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]), st.integers(0, 200),
                  st.integers(0, 255)),
        min_size=1,
        max_size=3,
    ),
)
def test_mutated_queries_never_fool_the_fast_path(
    q: Query, edits: list[tuple[str, int, int]]
) -> None:
    data = bytearray(krpc.encode(q))
    for kind, where, byte in edits:
        i = where % (len(data) + 1)
        if kind == "flip" and i < len(data):
            data[i] = byte
        elif kind == "insert":
            data.insert(i, byte)
        elif kind == "delete" and i < len(data):
            del data[i]
        elif kind == "cut":
            del data[i:]
    check(bytes(data))


def test_libtorrent_queries_take_the_fast_path_and_decode_identically() -> None:
    doc = json.loads(CAPTURES.read_text())
    datagrams = [base64.b64decode(r["b64"]) for r in doc["records"]]
    fast = [d for d in datagrams if check(d) is not None]
    # libtorrent's pings, find_nodes and get_peers all have the common layout.
    assert len(fast) >= 3
    methods = {type(decode_common_query(d)).__name__ for d in fast}
    assert methods == {"PingQuery", "FindNodeQuery", "GetPeersQuery"}
    for d in datagrams:  # and every byte cut of every capture is still decided correctly
        for n in range(len(d)):
            check(d[:n])


@pytest.mark.parametrize(
    "data",
    [
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:xy1:y1:qe",
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa6:target20:bbbbbbbbbbbbbbbbbbbbe1:q9:find_node"
        b"1:t4:wxyz1:v4:LT\x02\x111:y1:qe",
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa9:info_hash20:bbbbbbbbbbbbbbbbbbbbe1:q9:get_peers"
        b"1:t1:x1:y1:qe",
        # BEP 43: a read-only node's query (crawlers, mobile clients)
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa6:target20:bbbbbbbbbbbbbbbbbbbbe1:q9:find_node"
        b"2:roi1e1:t2:xy1:v4:LT\x02\x111:y1:qe",
    ],
)
def test_the_usual_layouts(data: bytes) -> None:
    assert check(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        # a ping with a target is still a ping: the general path decides (ignores the key)
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa6:target20:bbbbbbbbbbbbbbbbbbbbe1:q4:ping"
        b"1:t2:xy1:y1:qe",
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:xy1:y1:qee",  # trailing byte
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:xy1:y1:q",  # unterminated
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t02:xy1:y1:qe",  # non-canonical length
        b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:xy1:v3:abc1:y1:qe",  # 3-byte v
    ],
)
def test_anything_else_goes_the_general_way(data: bytes) -> None:
    assert check(data) is None
