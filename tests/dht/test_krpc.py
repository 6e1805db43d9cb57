"""KRPC codec: typed messages <-> datagrams, validation of untrusted input, packet-log lines."""

from __future__ import annotations

import re
from typing import Any

import bencodepy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtviewer.dht import bencoding, compact, krpc
from dhtviewer.dht.compact import CompactError
from dhtviewer.dht.krpc import KrpcError, decode, describe, encode
from dhtviewer.dht.messages import (
    PROTOCOL_ERROR,
    Addr,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    GetQuery,
    Message,
    NodeInfo,
    PingQuery,
    PutQuery,
    Response,
    SampleInfohashesQuery,
    UnknownQuery,
)

ID = bytes(range(1, 21))
HASH = bytes(range(100, 120))
KNOWN = {
    b"ping",
    b"find_node",
    b"get_peers",
    b"announce_peer",
    b"sample_infohashes",
    b"get",
    b"put",
}

# --- strategies ----------------------------------------------------------------------------------

tids = st.binary(max_size=krpc.MAX_TID_LEN)
ids = st.binary(min_size=20, max_size=20)
versions = st.none() | st.binary(max_size=8)
wants = st.frozensets(st.sampled_from([b"n4", b"n6"]) | st.binary(max_size=4), max_size=3)
ports = st.integers(0, 65535)
v4_peers = st.tuples(st.ip_addresses(v=4).map(lambda ip: ip.compressed), ports)
v6_peers = st.tuples(st.ip_addresses(v=6).map(lambda ip: ip.compressed), ports)
ints = st.integers(-(2**40), 2**40)
bencodable = st.recursive(
    st.binary(max_size=40) | st.integers(-(2**70), 2**70),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.binary(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
item_values = st.recursive(
    st.binary(max_size=40) | ints,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.binary(max_size=6), children, max_size=3),
    max_leaves=6,
).map(bencoding.encode)
"""Bencoded BEP 44 values, nested at most two deep (what fits the default decoding depth)."""


@st.composite
def announce_queries(draw: st.DrawFn) -> AnnouncePeerQuery:
    implied = draw(st.booleans())
    return AnnouncePeerQuery(
        draw(tids),
        draw(ids),
        info_hash=draw(ids),
        port=draw(ports if implied else st.integers(1, 65535)),
        token=draw(st.binary(max_size=20)),
        implied_port=implied,
        seed=draw(st.none() | st.booleans()),
        version=draw(versions),
        read_only=draw(st.booleans()),
    )


def _query(cls: Any, **args: Any) -> st.SearchStrategy[Any]:
    return st.builds(cls, tids, ids, version=versions, read_only=st.booleans(), **args)


queries = st.one_of(
    _query(PingQuery),
    _query(FindNodeQuery, target=ids, want=wants),
    _query(GetPeersQuery, info_hash=ids, want=wants, bootstrap=st.booleans()),
    announce_queries(),
    _query(SampleInfohashesQuery, target=ids, want=wants),
    _query(
        GetPeersQuery, info_hash=ids, want=wants, scrape=st.booleans(), noseed=st.booleans()
    ),
    _query(GetQuery, target=ids, seq=st.none() | ints, want=wants),
    _query(PutQuery, token=st.binary(max_size=20), v=item_values),
    _query(
        PutQuery,
        token=st.binary(max_size=20),
        v=item_values,
        k=st.binary(min_size=32, max_size=32),
        seq=ints,
        sig=st.binary(min_size=64, max_size=64),
        salt=st.binary(max_size=70),
        cas=st.none() | ints,
    ),
    _query(UnknownQuery, name=st.binary(max_size=20).filter(lambda n: n not in KNOWN)),
)
responses = st.builds(
    Response,
    tids,
    ids,
    nodes=st.lists(st.builds(NodeInfo, ids, v4_peers), max_size=8).map(tuple),
    nodes6=st.lists(st.builds(NodeInfo, ids, v6_peers), max_size=4).map(tuple),
    values=st.lists(v4_peers | v6_peers, max_size=10).map(tuple),
    token=st.none() | st.binary(max_size=20),
    external_ip=st.none() | v4_peers | v6_peers,
    version=versions,
    read_only=st.booleans(),
    port=st.none() | ports,
    interval=st.none() | ints,
    num=st.none() | ints,
    samples=st.lists(ids, max_size=5).map(tuple),
    v=st.none() | item_values,
    k=st.none() | st.binary(min_size=32, max_size=32),
    seq=st.none() | ints,
    sig=st.none() | st.binary(min_size=64, max_size=64),
    bf_seeds=st.none() | st.binary(min_size=256, max_size=256),
    bf_peers=st.none() | st.binary(min_size=256, max_size=256),
)
errors = st.builds(
    ErrorMessage,
    tids,
    ints,
    st.text(st.characters(codec="utf-8"), max_size=40),
    version=versions,
)
messages = st.one_of(queries, responses, errors)


# --- helpers -------------------------------------------------------------------------------------


def query(method: bytes, args: dict[bytes, object] | None = None, **top: object) -> bytes:
    """A query datagram with tid b"tt"; ``args`` go into ``a`` next to a valid ``id``."""
    msg: dict[bytes | str, object] = {
        b"t": b"tt",
        b"y": b"q",
        b"q": method,
        b"a": {b"id": ID, **(args or {})},
    }
    msg.update(top)
    return bencoding.encode(msg)


def response(body: dict[bytes, object] | None = None, **top: object) -> bytes:
    msg: dict[bytes | str, object] = {b"t": b"tt", b"y": b"r", b"r": {b"id": ID, **(body or {})}}
    msg.update(top)
    return bencoding.encode(msg)


def raw(msg: dict[Any, Any]) -> bytes:
    return bencoding.encode(msg)


def wire(msg: Message, **kwargs: Any) -> Any:
    """The bencoded structure ``encode`` produced, to check where each field went."""
    return bencoding.decode(encode(msg, **kwargs))


def decode_error(data: bytes, **kwargs: Any) -> KrpcError:
    with pytest.raises(KrpcError) as info:
        decode(data, **kwargs)
    return info.value


# --- round trips ---------------------------------------------------------------------------------


@settings(max_examples=200)
@given(messages)
def test_every_message_type_round_trips(msg: Message) -> None:
    assert decode(encode(msg)) == msg


@given(messages)
def test_encoding_is_canonical_bencode(msg: Message) -> None:
    data = encode(msg)
    assert bencoding.encode(bencoding.decode(data)) == data


def test_exact_bytes_of_a_ping() -> None:
    data = encode(PingQuery(b"aa", ID))
    assert data == b"d1:ad2:id20:" + ID + b"e1:q4:ping1:t2:aa1:y1:qe"


def test_version_comes_from_the_message_else_the_argument() -> None:
    assert b"1:v" not in encode(PingQuery(b"aa", ID))
    assert wire(PingQuery(b"aa", ID), version=b"DV\x00\x01")[b"v"] == b"DV\x00\x01"
    own = PingQuery(b"aa", ID, version=b"LT\x02\x11")
    assert decode(encode(own, version=b"DV\x00\x01")).version == b"LT\x02\x11"
    err = decode(encode(ErrorMessage(b"aa", 201, "x"), version=b"DV\x00\x01"))
    assert err.version == b"DV\x00\x01"


def test_optional_query_arguments_are_written_only_when_meaningful() -> None:
    plain = wire(GetPeersQuery(b"aa", ID, info_hash=HASH))
    assert plain == {
        b"t": b"aa",
        b"y": b"q",
        b"q": b"get_peers",
        b"a": {b"id": ID, b"info_hash": HASH},
    }
    want = frozenset({b"n6", b"n4"})
    full = wire(GetPeersQuery(b"aa", ID, info_hash=HASH, want=want, bootstrap=True, read_only=True))
    assert full[b"a"] == {b"id": ID, b"info_hash": HASH, b"want": [b"n4", b"n6"], b"bs": 1}
    assert full[b"ro"] == 1  # BEP 43: at the top level, not inside "a"


def test_announce_arguments() -> None:
    explicit = wire(AnnouncePeerQuery(b"aa", ID, info_hash=HASH, port=6881, token=b"tk"))
    assert explicit[b"a"] == {b"id": ID, b"info_hash": HASH, b"port": 6881, b"token": b"tk"}
    implied = wire(
        AnnouncePeerQuery(
            b"aa", ID, info_hash=HASH, port=0, token=b"tk", implied_port=True, seed=False
        )
    )
    assert implied[b"a"] == {
        b"id": ID,
        b"info_hash": HASH,
        b"port": 0,
        b"token": b"tk",
        b"implied_port": 1,
        b"seed": 0,
    }


def test_response_fields_are_placed_where_bep_5_32_42_51_put_them() -> None:
    r = Response(
        b"aa",
        ID,
        nodes=(NodeInfo(HASH, ("1.2.3.4", 5)),),
        nodes6=(NodeInfo(HASH, ("::1", 6)),),
        values=(("5.6.7.8", 9), ("::2", 10)),
        token=b"tok",
        external_ip=("9.8.7.6", 5432),
        port=6881,
        interval=60,
        num=3,
        samples=(HASH,),
    )
    top = wire(r)
    assert top[b"ip"] == b"\x09\x08\x07\x06\x15\x38"
    body = top[b"r"]
    assert body[b"nodes"] == HASH + b"\x01\x02\x03\x04\x00\x05"
    assert len(body[b"nodes6"]) == 38
    assert body[b"values"] == [b"\x05\x06\x07\x08\x00\x09", b"\x00" * 15 + b"\x02\x00\x0a"]
    assert (body[b"token"], body[b"p"], body[b"interval"], body[b"num"]) == (b"tok", 6881, 60, 3)
    assert body[b"samples"] == HASH


def test_empty_optional_response_fields_are_left_out() -> None:
    assert wire(Response(b"aa", ID)) == {b"t": b"aa", b"y": b"r", b"r": {b"id": ID}}


def test_sample_reply_always_carries_samples() -> None:
    assert wire(Response(b"aa", ID, num=0, interval=10))[b"r"][b"samples"] == b""


def test_error_encoding() -> None:
    data = encode(ErrorMessage(b"aa", 203, "invalid token"))
    assert data == b"d1:eli203e13:invalid tokene1:t2:aa1:y1:ee"


def test_error_text_from_anywhere_can_be_encoded() -> None:
    # A lone surrogate cannot be UTF-8; it must not stop us from sending the error.
    data = encode(ErrorMessage(b"aa", 202, "bad \udc80"))
    assert decode(data) == ErrorMessage(b"aa", 202, "bad ?")


def test_unencodable_values_raise_value_error() -> None:
    with pytest.raises(CompactError, match="not an IPv4 address"):
        encode(Response(b"aa", ID, nodes=(NodeInfo(HASH, ("::1", 1)),)))
    with pytest.raises(CompactError, match="sample must be 20 bytes"):
        encode(Response(b"aa", ID, samples=(b"short",)))
    with pytest.raises(ValueError, match="not an IP address"):
        encode(Response(b"aa", ID, external_ip=("nowhere", 1)))
    # peers in `values`: a bad address, a pair that is not a pair, an unhashable part
    for bad in (("nowhere", 1), ("1.2.3.4", 1, 2), (["1.2.3.4"], 1), ("1.2.3.4", True)):
        with pytest.raises(CompactError):
            encode(Response(b"aa", ID, values=(("1.2.3.4", 1), bad)))  # type: ignore[arg-type]


# --- liberal decoding ----------------------------------------------------------------------------


def test_unknown_keys_are_ignored_everywhere() -> None:
    q = decode(query(b"get_peers", {b"info_hash": HASH, b"name": 1, b"zz": [b"x"]}, extra={}))
    assert q == GetPeersQuery(b"tt", ID, info_hash=HASH)
    r = decode(response({b"future": {b"a": 1}}, zzz=b"?"))
    assert r == Response(b"tt", ID)


@given(st.sampled_from(["top", "inner"]), st.binary(max_size=12), bencodable)
def test_any_unknown_key_with_any_value_is_ignored(where: str, key: bytes, value: object) -> None:
    # every key get_peers (or any message) gives a meaning to
    known = {b"t", b"y", b"q", b"a", b"r", b"e", b"v", b"ro", b"ip", b"id", b"info_hash"}
    known |= {b"want", b"bs", b"scrape", b"noseed", b"target", b"port", b"token", b"seed"}
    if key in known:
        return
    msg: dict[bytes, Any] = {
        b"t": b"tt",
        b"y": b"q",
        b"q": b"get_peers",
        b"a": {b"id": ID, b"info_hash": HASH},
    }
    (msg if where == "top" else msg[b"a"])[key] = value
    assert decode(raw(msg), max_depth=100) == GetPeersQuery(b"tt", ID, info_hash=HASH)


@pytest.mark.parametrize("method", [b"vote", b"announce", b"frobnicate", b"", b"\xff\x00"])
def test_unknown_method_is_an_unknown_query_not_an_error(method: bytes) -> None:
    msg = decode(query(method, {b"target": HASH}, v=b"XX\x00\x01"))
    assert msg == UnknownQuery(b"tt", ID, name=method, version=b"XX\x00\x01")
    assert msg.method_name == method


def test_implied_port_is_true_for_any_non_zero_value() -> None:
    base = {b"info_hash": HASH, b"port": 7000, b"token": b"t"}
    for value, expected in [(0, False), (1, True), (5, True), (-1, True)]:
        msg = decode(query(b"announce_peer", {**base, b"implied_port": value}))
        assert isinstance(msg, AnnouncePeerQuery)
        assert msg.implied_port is expected


def test_port_zero_or_missing_is_fine_with_implied_port() -> None:
    for args in ({b"port": 0}, {}):
        msg = decode(
            query(
                b"announce_peer", {b"info_hash": HASH, b"token": b"t", b"implied_port": 1, **args}
            )
        )
        assert isinstance(msg, AnnouncePeerQuery)
        assert (msg.port, msg.implied_port) == (0, True)


def test_seed_and_bootstrap_flags() -> None:
    base = {b"info_hash": HASH, b"port": 1, b"token": b"t"}
    seeds = [
        decode(query(b"announce_peer", {**base, **extra}))
        for extra in ({}, {b"seed": 0}, {b"seed": 1})
    ]
    assert seeds == [
        AnnouncePeerQuery(b"tt", ID, info_hash=HASH, port=1, token=b"t", seed=seed)
        for seed in (None, False, True)
    ]
    msg = decode(query(b"get_peers", {b"info_hash": HASH, b"bs": 1}))
    assert isinstance(msg, GetPeersQuery) and msg.bootstrap


def test_read_only_flag_at_top_level_or_inside_a() -> None:
    assert decode(query(b"ping", ro=1)) == PingQuery(b"tt", ID, read_only=True)
    assert decode(query(b"ping", {b"ro": 1})) == PingQuery(b"tt", ID, read_only=True)
    assert decode(query(b"ping", ro=0)) == PingQuery(b"tt", ID, read_only=False)
    assert decode(response(ro=1)) == Response(b"tt", ID, read_only=True)


def test_want_keeps_every_entry() -> None:
    msg = decode(query(b"find_node", {b"target": HASH, b"want": [b"n4", b"n6", b"n9"]}))
    assert isinstance(msg, FindNodeQuery)
    assert msg.want == frozenset({b"n4", b"n6", b"n9"})


def test_transaction_id_lengths() -> None:
    assert decode(raw({b"t": b"", b"y": b"r", b"r": {b"id": ID}})).tid == b""
    t32 = b"x" * 32
    assert decode(raw({b"t": t32, b"y": b"r", b"r": {b"id": ID}})).tid == t32


def test_version_of_any_length_is_kept_and_a_non_string_one_ignored() -> None:
    assert decode(query(b"ping", v=b"L" * 100)).version == b"L" * 100
    assert decode(query(b"ping", v=b"")).version == b""
    assert decode(query(b"ping", v=5)).version is None


@pytest.mark.parametrize(
    ("e", "code", "message"),
    [
        ([201, b"A Generic Error Ocurred"], 201, "A Generic Error Ocurred"),
        ([204], 204, ""),
        ([202, 17], 202, ""),
        ([203, b"bad \xff byte"], 203, "bad \ufffd byte"),
        ([203, b"x", b"extra", 1], 203, "x"),
    ],
)
def test_error_messages_are_decoded_liberally(e: list[object], code: int, message: str) -> None:
    msg = decode(raw({b"t": b"tt", b"y": b"e", b"e": e}))
    assert msg == ErrorMessage(b"tt", code, message)


def test_error_with_an_extra_r_dict_like_libtorrent_sends() -> None:
    data = raw({b"t": b"tt", b"y": b"e", b"e": [203, b"invalid token"], b"r": {b"id": ID, b"p": 1}})
    assert decode(data) == ErrorMessage(b"tt", 203, "invalid token")


def test_response_ip_and_port() -> None:
    msg = decode(response({b"p": 6881}, ip=b"\x7f\x00\x14\x01\x1a\xe1"))
    assert isinstance(msg, Response)
    assert (msg.external_ip, msg.port) == (("127.0.20.1", 6881), 6881)
    six = decode(response(ip=b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01\x00\x50"))
    assert six == Response(b"tt", ID, external_ip=("2001:db8::1", 80))


def test_response_samples_are_split_into_hashes() -> None:
    msg = decode(response({b"samples": HASH + ID, b"num": 2, b"interval": 0}))
    assert isinstance(msg, Response)
    assert (msg.samples, msg.num, msg.interval) == ((HASH, ID), 2, 0)


# --- malformations -------------------------------------------------------------------------------

ANNOUNCE = {b"info_hash": HASH, b"port": 6881, b"token": b"tk"}

# Datagrams whose tid or type cannot be relied on: (datagram, reason regex, tid, is_query).
UNREADABLE: list[tuple[bytes, str, bytes | None, bool]] = [
    (b"hello", r"invalid bencode: unexpected byte 'h'", None, False),
    (b"", r"invalid bencode: empty input", None, False),
    (query(b"ping")[:-1], r"invalid bencode: truncated dict", None, False),
    (query(b"ping") + b"x", r"invalid bencode: 1 trailing byte", None, False),
    (b"le", r"message must be a dict, got a list", None, False),
    (b"i1e", r"message must be a dict, got an integer", None, False),
    (raw({b"y": b"q", b"q": b"ping", b"a": {b"id": ID}}), r"missing 't'", None, True),
    (
        raw({b"t": 1, b"y": b"q", b"q": b"ping"}),
        r"'t' must be a byte string, got an int",
        None,
        True,
    ),
    (raw({b"t": b"x" * 33, b"y": b"q", b"q": b"ping"}), r"'t' longer than 32 bytes", None, True),
    (raw({b"t": b"tt", b"q": b"ping", b"a": {b"id": ID}}), r"missing 'y'", b"tt", False),
    (raw({b"t": b"tt", b"y": b"x"}), r"unknown message type 'y'=b'x'", b"tt", False),
    (raw({b"t": b"tt", b"y": 1}), r"'y' must be a byte string, got an integer", b"tt", False),
]

# Queries with a usable tid (b"tt"): the node answers these with error 203 and this reason.
BAD_QUERIES: list[tuple[bytes, str]] = [
    (raw({b"t": b"tt", b"y": b"q", b"a": {b"id": ID}}), r"missing 'q'"),
    (raw({b"t": b"tt", b"y": b"q", b"q": 7, b"a": {b"id": ID}}), r"'q' must be a byte string"),
    (raw({b"t": b"tt", b"y": b"q", b"q": b"ping"}), r"missing 'a'"),
    (raw({b"t": b"tt", b"y": b"q", b"q": b"ping", b"a": []}), r"'a' must be a dict, got a list"),
    (raw({b"t": b"tt", b"y": b"q", b"q": b"ping", b"a": {}}), r"missing 'id'"),
    (raw({b"t": b"tt", b"y": b"q", b"q": b"get", b"a": {}}), r"missing 'id'"),
    (query(b"ping", {b"id": b"short"}), r"'id' must be 20 bytes, got 5"),
    (query(b"ping", {b"id": 5}), r"'id' must be a byte string, got an integer"),
    (query(b"find_node"), r"missing 'target'"),
    (query(b"find_node", {b"target": HASH[:19]}), r"'target' must be 20 bytes, got 19"),
    (query(b"find_node", {b"target": HASH, b"want": b"n4"}), r"'want' must be a list, got a byte"),
    (query(b"get_peers", {b"info_hash": HASH, b"want": [b"n4", 6]}), r"'want' entries must be"),
    (query(b"get_peers"), r"missing 'info_hash'"),
    (query(b"get_peers", {b"info_hash": HASH + b"x"}), r"'info_hash' must be 20 bytes, got 21"),
    (query(b"get_peers", {b"info_hash": HASH, b"bs": b"1"}), r"'bs' must be an integer"),
    (query(b"announce_peer", {b"port": 1, b"token": b"t"}), r"missing 'info_hash'"),
    (query(b"announce_peer", {b"info_hash": HASH, b"token": b"t"}), r"missing 'port'"),
    (query(b"announce_peer", {**ANNOUNCE, b"port": 0}), r"'port' must be in 1..65535 unless"),
    (
        query(b"announce_peer", {**ANNOUNCE, b"port": 65536}),
        r"'port' must be in 0..65535, got 65536",
    ),
    (
        query(b"announce_peer", {**ANNOUNCE, b"port": -1, b"implied_port": 1}),
        r"'port' must be in 0..65535, got -1",
    ),
    (
        query(b"announce_peer", {**ANNOUNCE, b"port": b"80"}),
        r"'port' must be an integer, got a byte",
    ),
    (query(b"announce_peer", {b"info_hash": HASH, b"port": 1}), r"missing 'token'"),
    (query(b"announce_peer", {**ANNOUNCE, b"token": 5}), r"'token' must be a byte string"),
    (
        query(b"announce_peer", {**ANNOUNCE, b"implied_port": b"1"}),
        r"'implied_port' must be an int",
    ),
    (query(b"announce_peer", {**ANNOUNCE, b"seed": []}), r"'seed' must be an integer, got a list"),
    (query(b"sample_infohashes"), r"missing 'target'"),
    (query(b"ping", ro=b"1"), r"'ro' must be an integer"),
    (query(b"ping", {b"ro": {}}), r"'ro' must be an integer, got a dict"),
]

# Responses and errors with a usable tid: dropped without an answer.
BAD_REPLIES: list[tuple[bytes, str]] = [
    (raw({b"t": b"tt", b"y": b"r"}), r"missing 'r'"),
    (raw({b"t": b"tt", b"y": b"r", b"r": [ID]}), r"'r' must be a dict, got a list"),
    (raw({b"t": b"tt", b"y": b"r", b"r": {}}), r"missing 'id'"),
    (response({b"id": ID + b"!"}), r"'id' must be 20 bytes, got 21"),
    (response({b"nodes": 26}), r"'nodes' must be a byte string"),
    (response({b"values": b"\x01" * 6}), r"'values' must be a list, got a byte string"),
    (response({b"values": [6]}), r"values\[0\] must be a byte string"),
    (response({b"token": 1}), r"'token' must be a byte string, got an integer"),
    (response(ip=b"\x01" * 5), r"'ip' must be 6 or 18 bytes, got 5"),
    (response(ip=1), r"'ip' must be a byte string, got an integer"),
    (response({b"p": 70000}), r"'p' must be in 0..65535, got 70000"),
    (response({b"interval": b"60"}), r"'interval' must be an integer"),
    (response({b"num": []}), r"'num' must be an integer, got a list"),
    (response({b"samples": b"s" * 21}), r"'samples' length must be a multiple of 20, got 21"),
    (response({b"samples": 20}), r"'samples' must be a byte string"),
    (raw({b"t": b"tt", b"y": b"e"}), r"missing 'e'"),
    (raw({b"t": b"tt", b"y": b"e", b"e": b"203"}), r"'e' must be a list, got a byte string"),
    (raw({b"t": b"tt", b"y": b"e", b"e": []}), r"'e' must start with an integer error code"),
    (raw({b"t": b"tt", b"y": b"e", b"e": [b"203", b"x"]}), r"'e' must start with an integer"),
]

def test_cut_short_node_and_peer_records_are_left_out_and_counted() -> None:
    """As deployed clients read them: the complete records are used, the rest counted."""
    node4 = ID + bytes([1, 2, 3, 4]) + (6881).to_bytes(2, "big")
    node6 = ID + bytes(15) + b"\x01" + (6882).to_bytes(2, "big")
    msg = decode(
        response({
            b"nodes": node4 + b"\x00" * 11,
            b"nodes6": node6 + b"\x00" * 3,
            b"values": [b"\x05" * 6, b"\x05" * 5],
        })
    )
    assert isinstance(msg, Response)
    assert msg.nodes == (NodeInfo(ID, ("1.2.3.4", 6881)),)
    assert msg.nodes6 == (NodeInfo(ID, ("::1", 6882)),)
    assert msg.values == (("5.5.5.5", 1285),)
    assert msg.partial_records == 3
    whole = decode(response({b"nodes": node4, b"values": [b"\x05" * 6]}))
    assert isinstance(whole, Response) and whole.partial_records == 0


MALFORMED = (
    UNREADABLE
    + [(data, reason, b"tt", True) for data, reason in BAD_QUERIES]
    + [(data, reason, b"tt", False) for data, reason in BAD_REPLIES]
)


@pytest.mark.parametrize(
    ("data", "reason", "tid", "is_query"), MALFORMED, ids=[case[1] for case in MALFORMED]
)
def test_malformed_messages(data: bytes, reason: str, tid: bytes | None, is_query: bool) -> None:
    err = decode_error(data)
    assert re.search(reason, err.reason), err.reason
    assert err.code == PROTOCOL_ERROR
    assert err.tid == tid
    assert err.query is is_query
    assert str(err) == err.reason
    assert err.reason.isascii() and err.reason.isprintable() and len(err.reason) < 120


def test_nesting_beyond_max_depth_is_a_protocol_error() -> None:
    data = query(b"ping", {b"x": [[[]]]})  # 5 levels: the message, "a", and three lists
    assert decode(data) == PingQuery(b"tt", ID)
    err = decode_error(data, max_depth=4)
    assert err.reason.startswith("invalid bencode: nesting deeper than 4")
    assert (err.code, err.tid, err.query) == (PROTOCOL_ERROR, None, False)


# --- robustness properties -----------------------------------------------------------------------


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_krpc_error(data: bytes) -> None:
    try:
        decode(data)
    except KrpcError as err:
        assert err.code == PROTOCOL_ERROR


@settings(max_examples=200)
@given(messages, st.data())
def test_byte_mutations_of_valid_messages_only_ever_raise_krpc_error(
    msg: Message, data: st.DataObject
) -> None:
    buf = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set":
            buf[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del buf[at]
    try:
        decoded = decode(bytes(buf))
    except KrpcError:
        return
    assert decode(encode(decoded)) == decoded


FIELDS = [b"t", b"y", b"q", b"a", b"r", b"e", b"v", b"ro", b"ip", b"id", b"target", b"info_hash",
          b"port", b"token", b"implied_port", b"seed", b"want", b"bs", b"nodes", b"nodes6",
          b"values", b"p", b"interval", b"num", b"samples"]  # fmt: skip


@settings(max_examples=250)
@given(messages, st.sampled_from(FIELDS), st.none() | bencodable, st.booleans())
def test_field_mutations_only_ever_raise_krpc_error_with_a_correct_tid(
    msg: Message, field: bytes, value: object, inner: bool
) -> None:
    top = bencoding.decode(encode(msg))
    assert isinstance(top, dict)
    target = top
    if inner:
        nested = top.get(b"a", top.get(b"r"))
        if isinstance(nested, dict):
            target = nested
    if value is None:
        target.pop(field, None)
    else:
        target[field] = value
    try:
        decoded = decode(bencoding.encode(top), max_depth=100)
    except KrpcError as err:
        t = top.get(b"t")
        assert err.tid == (t if isinstance(t, bytes) and len(t) <= 32 else None)
        assert err.query is (top.get(b"y") == b"q")
        # Changing these changes which other fields are expected; any other field is named.
        if field not in (b"y", b"q", b"a", b"r", b"implied_port"):
            name = field.decode()
            assert f"'{name}'" in err.reason or f"{name}[" in err.reason, err.reason
        return
    assert decode(encode(decoded)) == decoded


# --- describe ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "line"),
    [
        (PingQuery(b"t", ID), "ping"),
        (PingQuery(b"t", ID, read_only=True), "ping ro"),
        (
            GetPeersQuery(
                b"t", ID, info_hash=bytes.fromhex("ab12cd34") + HASH[4:], want=frozenset({b"n4"})
            ),
            "get_peers info_hash=ab12cd34… want=n4",
        ),
        (
            GetPeersQuery(b"t", ID, info_hash=HASH, bootstrap=True),
            "get_peers info_hash=64656667… bs",
        ),
        (
            FindNodeQuery(b"t", ID, target=HASH, want=frozenset({b"n6", b"n4"})),
            "find_node target=64656667… want=n4,n6",
        ),
        (SampleInfohashesQuery(b"t", ID, target=HASH), "sample_infohashes target=64656667…"),
        (
            AnnouncePeerQuery(b"t", ID, info_hash=HASH, port=6881, token=b"x", seed=False),
            "announce_peer info_hash=64656667… port=6881 seed=0",
        ),
        (
            AnnouncePeerQuery(b"t", ID, info_hash=HASH, token=b"x", implied_port=True),
            "announce_peer info_hash=64656667… implied_port",
        ),
        (UnknownQuery(b"t", ID, name=b"frobnicate"), "unknown query 'frobnicate'"),
        (UnknownQuery(b"t", ID, name=b"a\nb"), "unknown query 'a�b'"),
        (
            Response(
                b"t",
                ID,
                nodes=(NodeInfo(HASH, ("1.2.3.4", 1)),) * 8,
                values=(("1.1.1.1", 1),) * 3,
                token=b"k",
            ),
            "response id=01020304… nodes=8 values=3 token",
        ),
        (
            Response(b"t", ID, nodes6=(NodeInfo(HASH, ("::1", 1)),), external_ip=("::1", 7)),
            "response id=01020304… nodes6=1 ip=[::1]:7",
        ),
        (
            Response(b"t", ID, samples=(HASH,), num=1, interval=21600, external_ip=("1.2.3.4", 5)),
            "response id=01020304… samples=1 num=1 interval=21600 ip=1.2.3.4:5",
        ),
        (ErrorMessage(b"t", 203, "invalid token"), "error 203 invalid token"),
        (ErrorMessage(b"t", 201, ""), "error 201"),
        (ErrorMessage(b"t", 202, "two\nlines"), "error 202 two�lines"),
    ],
)
def test_describe(msg: Message, line: str) -> None:
    assert describe(msg) == line


@given(messages)
def test_describe_is_always_one_short_line(msg: Message) -> None:
    line = describe(msg)
    assert line and line.isprintable() and len(line) < 200


@given(responses, versions)
def test_fast_response_encoder_matches_generic_bencode(
    msg: Response, version: bytes | None
) -> None:
    """The response fast path writes bytes directly; it must equal bencode.py's encoding of the
    same dictionary, key for key."""
    r: dict[bytes, object] = {b"id": msg.sender_id}
    if msg.nodes:
        r[b"nodes"] = compact.encode_nodes(msg.nodes)
    if msg.nodes6:
        r[b"nodes6"] = compact.encode_nodes6(msg.nodes6)
    if msg.values:
        r[b"values"] = compact.encode_values(msg.values)
    if msg.token is not None:
        r[b"token"] = msg.token
    for key, value in ((b"p", msg.port), (b"interval", msg.interval), (b"num", msg.num)):
        if value is not None:
            r[key] = value
    if msg.samples or msg.num is not None:
        r[b"samples"] = b"".join(msg.samples)
    for key, item in (
        (b"k", msg.k),
        (b"seq", msg.seq),
        (b"sig", msg.sig),
        (b"BFsd", msg.bf_seeds),
        (b"BFpe", msg.bf_peers),
    ):
        if item is not None:
            r[key] = item
    if msg.v is not None:
        r[b"v"] = bencodepy.decode(msg.v)
    top: dict[bytes, object] = {b"t": msg.tid, b"y": b"r", b"r": r}
    if msg.external_ip is not None:
        top[b"ip"] = compact.encode_peer(msg.external_ip)
    if msg.read_only:
        top[b"ro"] = 1
    v = msg.version if msg.version is not None else version
    if v is not None:
        top[b"v"] = v
    assert krpc.encode(msg, version=version) == bencodepy.encode(top)


# --- BEP 44 get/put, BEP 33 scrape ---------------------------------------------------------------
KEY = bytes(range(32))
SIG = bytes(range(64))


def test_get_query() -> None:
    assert decode(query(b"get", {b"target": HASH})) == GetQuery(b"tt", ID, target=HASH)
    q = decode(query(b"get", {b"target": HASH, b"seq": 4, b"want": [b"n6"]}))
    assert q == GetQuery(b"tt", ID, target=HASH, seq=4, want=frozenset({b"n6"}))
    assert wire(q)[b"a"] == {b"id": ID, b"target": HASH, b"seq": 4, b"want": [b"n6"]}
    assert decode_error(query(b"get", {b"target": b"short"})).reason == (
        "'target' must be 20 bytes, got 5"
    )


def test_immutable_put_keeps_v_bencoded() -> None:
    q = decode(query(b"put", {b"token": b"tok", b"v": [b"a", 1, {b"x": b"y"}]}))
    assert q == PutQuery(b"tt", ID, token=b"tok", v=b"l1:ai1ed1:x1:yee")
    assert wire(q)[b"a"] == {b"id": ID, b"token": b"tok", b"v": [b"a", 1, {b"x": b"y"}]}
    # seq, sig, salt, cas mean nothing without k: dropped.
    q = decode(query(b"put", {b"token": b"t", b"v": b"x", b"seq": 1, b"salt": b"s", b"cas": 1}))
    assert q == PutQuery(b"tt", ID, token=b"t", v=b"1:x")


def test_mutable_put() -> None:
    args = {b"token": b"t", b"v": b"hi", b"k": KEY, b"seq": 3, b"sig": SIG, b"salt": b"s"}
    args[b"cas"] = 2
    q = decode(query(b"put", args))
    assert q == PutQuery(
        b"tt", ID, token=b"t", v=b"2:hi", k=KEY, seq=3, sig=SIG, salt=b"s", cas=2
    )
    assert wire(q)[b"a"] == {b"id": ID, **args}
    # A salt of any length decodes: its limit is the storage node's error 207.
    assert decode(query(b"put", {**args, b"salt": b"s" * 100})).salt == b"s" * 100  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({b"v": b"x"}, "missing 'token'"),
        ({b"token": b"t"}, "missing 'v'"),
        ({b"token": b"t", b"v": b"x", b"k": KEY, b"sig": SIG}, "missing 'seq'"),
        ({b"token": b"t", b"v": b"x", b"k": KEY, b"seq": 1}, "missing 'sig'"),
        ({b"token": b"t", b"v": b"x", b"k": KEY[:31], b"seq": 1, b"sig": SIG}, "'k' must be 32"),
        ({b"token": b"t", b"v": b"x", b"k": KEY, b"seq": 1, b"sig": SIG[:9]}, "'sig' must be 64"),
        ({b"token": b"t", b"v": b"x", b"k": KEY, b"seq": b"1", b"sig": SIG}, "'seq' must be an"),
    ],
)
def test_malformed_puts(args: dict[bytes, object], reason: str) -> None:
    err = decode_error(query(b"put", args))
    assert err.reason.startswith(reason) and err.code == PROTOCOL_ERROR and err.query


def test_a_value_with_unsorted_keys_is_refused() -> None:
    # BEP 44: invalid bencoding in v (unsorted keys) must be refused with 203.
    data = (
        b"d1:ad2:id20:" + ID + b"5:token1:t1:vd1:bi1e1:ai2eee1:q3:put1:t2:tt1:y1:qe"
    )
    err = decode_error(data)
    assert "not canonical" in err.reason and err.code == PROTOCOL_ERROR and err.tid == b"tt"


def test_get_reply_fields() -> None:
    r = Response(b"tt", ID, token=b"t", v=b"5:hello", k=KEY, seq=9, sig=SIG)
    body = wire(r)[b"r"]
    assert body == {b"id": ID, b"token": b"t", b"v": b"hello", b"k": KEY, b"seq": 9, b"sig": SIG}
    assert decode(encode(r)) == r
    assert describe(r).endswith("token v=7B k=00010203… seq=9 sig")
    assert decode_error(response({b"k": b"short"})).reason == "'k' must be 32 bytes, got 5"


def test_scrape_fields() -> None:
    q = decode(query(b"get_peers", {b"info_hash": HASH, b"scrape": 1, b"noseed": 1}))
    assert q == GetPeersQuery(b"tt", ID, info_hash=HASH, scrape=True, noseed=True)
    assert wire(q)[b"a"] == {b"id": ID, b"info_hash": HASH, b"scrape": 1, b"noseed": 1}
    assert describe(q) == "get_peers info_hash=64656667… scrape noseed"
    from dhtviewer.dht.bloom import BloomFilter

    seeds = BloomFilter.of(["10.0.0.1", "10.0.0.2"]).to_bytes()
    peers = BloomFilter().to_bytes()
    r = Response(b"tt", ID, token=b"t", bf_seeds=seeds, bf_peers=peers)
    assert wire(r)[b"r"] == {b"id": ID, b"token": b"t", b"BFsd": seeds, b"BFpe": peers}
    assert decode(encode(r)) == r
    assert "scrape seeds~2 peers~0" in describe(r)
    assert decode_error(response({b"BFsd": b"\x00" * 255})).reason == (
        "'BFsd' must be 256 bytes, got 255"
    )


def test_item_fields_that_cannot_be_encoded() -> None:
    for bad in (
        Response(b"t", ID, k=b"short"),
        Response(b"t", ID, sig=b"short"),
        Response(b"t", ID, bf_peers=b"short"),
        Response(b"t", ID, v=b"not bencode"),
    ):
        with pytest.raises(ValueError):
            encode(bad)


def test_describe_get_and_put() -> None:
    assert describe(GetQuery(b"t", ID, target=HASH, seq=3)) == "get target=64656667… seq>3"
    assert describe(PutQuery(b"t", ID, token=b"x", v=b"1:x")) == "put immutable v=3B"
    put = PutQuery(b"t", ID, token=b"x", v=b"1:x", k=KEY, seq=2, sig=SIG, salt=b"s\n", cas=1)
    assert describe(put) == "put mutable k=00010203… seq=2 v=3B salt=s� cas=1"


v4_contacts = st.builds(NodeInfo, ids, v4_peers)
v6_contacts = st.builds(NodeInfo, ids, v6_peers)


@given(
    tid=tids, sender=ids, ip=st.none() | v4_peers | v6_peers, version=versions,
    nodes=st.lists(v4_contacts, max_size=10).map(tuple),
    nodes6=st.lists(v6_contacts, max_size=10).map(tuple),
    values=st.lists(v4_peers | v6_peers, max_size=30).map(tuple),
    token=st.none() | st.binary(max_size=20),
)
def test_common_response_writer_is_byte_identical_to_encode(
    tid: bytes, sender: bytes, ip: Addr | None, version: bytes | None,
    nodes: tuple[NodeInfo, ...], nodes6: tuple[NodeInfo, ...], values: tuple[Addr, ...],
    token: bytes | None,
) -> None:
    """The serving path writes ping/find_node/get_peers replies without a Response; its bytes
    must be those of encoding the Response (and of the generic bencoder)."""
    msg = Response(tid, sender, nodes=nodes, nodes6=nodes6, values=values, token=token,
                   external_ip=ip, version=version)
    data = krpc.encode_common_response(tid, sender, ip, version, nodes, nodes6, values, token)
    assert data == krpc.encode(msg)
    assert data == krpc._encode_response_generic(msg, version)


@pytest.mark.parametrize(
    "fields",
    [
        {"ip": ("1.2.3.4", True)},
        {"ip": ("example.com", 1)},
        {"nodes": (NodeInfo(bytes(20), ("2001:db8::1", 1)),)},
        {"values": (("1.2.3.4", 1, 2),)},
        {"values": (("1.2.3.4", 70000),)},
        {"tid": "tt"},
    ],
)
def test_common_response_writer_refuses_what_encode_refuses(fields: dict[str, Any]) -> None:
    args: dict[str, Any] = {"tid": b"tt", "sender": bytes(20), "ip": ("1.2.3.4", 1),
                            "version": None, "nodes": (), "nodes6": (), "values": (),
                            "token": None, **fields}
    msg = Response(args["tid"], args["sender"], nodes=args["nodes"], values=args["values"],
                   external_ip=args["ip"])
    with pytest.raises(ValueError) as expected:
        krpc.encode(msg)
    with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
        krpc.encode_common_response(*args.values())
