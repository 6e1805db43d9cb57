"""Real datagrams exchanged with libtorrent 2.1 decode as libtorrent meant them.

The captures live in the workspace's shared/krpc-captures/; a copy is kept in tests/data so the
suite does not depend on anything outside the repository.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dhtviewer.dht.krpc import KrpcError, decode, encode
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    GetQuery,
    Message,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
    UnknownQuery,
)

NAME = "libtorrent-2.1.json"
REPO_COPY = Path(__file__).resolve().parents[1] / "data" / "krpc-captures" / NAME
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "krpc-captures" / NAME

LT_ID = bytes.fromhex("447f59bde0221f731523ba522355194e7248edd4")
OUR_ID = b"\x1f" * 20
LT_VERSION = b"LT\x02\x11"
LOOKED_UP = bytes(range(20))  # the info_hash libtorrent announced in the capture session
SEEN_FROM = ("127.0.20.1", 6881)  # our address as libtorrent reported it (BEP 42 "ip")


def _records() -> list[tuple[str, str, bytes]]:
    doc = json.loads(REPO_COPY.read_text())
    return [(r["direction"], r["note"], base64.b64decode(r["b64"])) for r in doc["records"]]


RECORDS = _records()
# The two queries we sent to libtorrent on purpose broken; it answered them with errors.
MALFORMED_ON_PURPOSE = {
    "get_peers without info_hash (query)": "missing 'info_hash'",
    "ping with a 5-byte id (query)": "'id' must be 20 bytes, got 5",
}


def by_note(note: str) -> Message:
    (data,) = [d for _, n, d in RECORDS if n == note]
    return decode(data)


def test_repo_copy_matches_the_shared_captures() -> None:
    if not SHARED.exists():
        pytest.skip("shared/ is not beside the repository")
    assert REPO_COPY.read_bytes() == SHARED.read_bytes()


def test_capture_file_is_complete() -> None:
    assert len(RECORDS) == 28
    assert {d for d, _, _ in RECORDS} == {"libtorrent->us", "us->libtorrent"}


@pytest.mark.parametrize(("direction", "note", "data"), RECORDS, ids=[n for _, n, _ in RECORDS])
def test_every_record_decodes(direction: str, note: str, data: bytes) -> None:
    if note in MALFORMED_ON_PURPOSE:
        with pytest.raises(KrpcError, match=MALFORMED_ON_PURPOSE[note]) as info:
            decode(data)
        # Readable enough for the node to answer with an error, as libtorrent did.
        assert info.value.query and info.value.tid is not None and info.value.code == 203
        return
    msg = decode(data)
    if direction == "libtorrent->us":
        assert msg.version == LT_VERSION
        if not isinstance(msg, ErrorMessage):
            assert msg.sender_id == LT_ID
    else:
        assert isinstance(msg, Query) and msg.sender_id == OUR_ID and msg.version is None


def test_libtorrent_bootstraps_with_get_peers_and_bs() -> None:
    msg = by_note("query get_peers sent by libtorrent")
    assert isinstance(msg, GetPeersQuery)
    assert msg.bootstrap is True
    assert msg.sender_id == LT_ID
    assert msg.version is not None and msg.version.startswith(b"LT") and len(msg.version) == 4
    assert msg.want == frozenset()


def test_libtorrent_announce_carries_seed_0() -> None:
    msg = by_note("query announce_peer sent by libtorrent")
    assert isinstance(msg, AnnouncePeerQuery)
    assert (msg.info_hash, msg.port, msg.token) == (LOOKED_UP, 51413, b"\x01\x02\x03\x04")
    assert msg.seed is False
    assert msg.implied_port is False


def test_replies_carry_our_address_and_libtorrents_port() -> None:
    replies = [
        decode(d)
        for direction, note, d in RECORDS
        if direction == "libtorrent->us" and "reply" in note
    ]
    responses = [m for m in replies if isinstance(m, Response)]
    assert len(responses) == 9
    for r in responses:
        assert r.external_ip == SEEN_FROM
        assert r.port == 6881
        assert r.sender_id == LT_ID


def test_get_peers_replies() -> None:
    before = by_note("get_peers for an info_hash libtorrent announced (libtorrent's reply)")
    assert isinstance(before, Response)
    assert before.token == b'["\x15\x07' and before.values == () and before.nodes == ()
    after = by_note("get_peers after our announce (libtorrent's reply)")
    assert isinstance(after, Response)
    # We announced port 7000 with implied_port unset; libtorrent stored our port as 7000.
    assert after.values == (("127.0.20.1", 7000),)
    assert after.token == before.token


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("announce_peer with a bad token (libtorrent's reply)", "invalid token"),
        ("unknown method (libtorrent's reply)", "unknown message"),
        ("get_peers without info_hash (libtorrent's reply)", "missing 'info_hash' key"),
        ("ping with a 5-byte id (libtorrent's reply)", "invalid value for 'id'"),
    ],
)
def test_libtorrent_error_replies(note: str, message: str) -> None:
    msg = by_note(note)
    assert msg == ErrorMessage(msg.tid, 203, message, version=LT_VERSION)


def test_error_replies_with_an_extra_r_dict_decode() -> None:
    data = next(d for _, n, d in RECORDS if n == "unknown method (libtorrent's reply)")
    assert b"1:rd2:id20:" in data  # the extra "r" is really there
    assert isinstance(decode(data), ErrorMessage)


def test_sample_infohashes_reply() -> None:
    msg = by_note("sample_infohashes (BEP 51) (libtorrent's reply)")
    assert isinstance(msg, Response)
    assert (msg.interval, msg.num, msg.samples, msg.nodes) == (21600, 1, (LOOKED_UP,), ())


def test_bep44_get_and_its_reply_decode() -> None:
    q = by_note("get (BEP 44) for a missing item (query)")
    assert isinstance(q, GetQuery) and len(q.target) == 20 and q.seq is None
    r = by_note("get (BEP 44) for a missing item (libtorrent's reply)")
    assert isinstance(r, Response)
    assert r.token == b"j\xed\\\x1f" and r.nodes == () and r.values == ()
    assert r.v is None and r.k is None and r.seq is None


def test_read_only_ping() -> None:
    msg = by_note("ping from a read-only node (BEP 43) (query)")
    assert isinstance(msg, PingQuery) and msg.read_only


def test_our_queries_in_the_capture() -> None:
    q = by_note("find_node with want n4 n6 (query)")
    assert isinstance(q, FindNodeQuery) and q.want == frozenset({b"n4", b"n6"})
    s = by_note("sample_infohashes (BEP 51) (query)")
    assert isinstance(s, SampleInfohashesQuery)
    u = by_note("unknown method (query)")
    assert isinstance(u, UnknownQuery) and u.name == b"frobnicate"


@pytest.mark.parametrize(("direction", "note", "data"), RECORDS, ids=[n for _, n, _ in RECORDS])
def test_reencoding_gives_an_equal_message(direction: str, note: str, data: bytes) -> None:
    if note in MALFORMED_ON_PURPOSE:
        return
    msg = decode(data)
    assert decode(encode(msg)) == msg
    # Queries come out byte for byte as captured: both sides write canonical bencode and the
    # same keys. Not so for the capture's "ro" (inside "a"; we write it at the top level) nor for
    # an unknown method (we keep only its name and id).
    if isinstance(msg, Query) and not msg.read_only and not isinstance(msg, UnknownQuery):
        assert encode(msg) == data
