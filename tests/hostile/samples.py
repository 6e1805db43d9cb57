"""Valid KRPC datagrams of every method, for a node in a known state: the seeds that property
tests mutate and that the atheris corpus starts from.

``primed_node()`` builds a node whose random choices are fixed (seeded RNG, fixed id and clock)
with one ping and one lookup in flight, so ``valid_messages()`` can include replies that match
its transactions and an ``announce_peer`` carrying a token it will accept.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

from dhtviewer.dht import bencoding, krpc
from dhtviewer.dht.bloom import BloomFilter
from dhtviewer.dht.families import Sibling, dual_stack
from dhtviewer.dht.items import Item
from dhtviewer.dht.messages import (
    GENERIC_ERROR,
    METHOD_UNKNOWN,
    PROTOCOL_ERROR,
    SERVER_ERROR,
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
)
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.op_ids import OpIds
from dhtviewer.dht.settings import DhtSettings

# Public-looking addresses (so the routing table takes them) are harmless here: the core is
# sans-IO and nothing is ever sent to them.
T0 = 1000.0
NODE_ID = bytes.fromhex("5a" * 20)
TARGET = bytes.fromhex("33" * 20)
INFO_HASH = bytes.fromhex("c4" * 20)
PING_PEER: Addr = ("11.0.0.1", 6881)
"""Pinged by the primed node: a reply from here with the right tid is accepted."""
LOOKUP_SEED: Addr = ("11.0.0.2", 6881)
"""Seed of the primed node's get_peers lookup of TARGET."""
QUERIER: Addr = ("11.0.0.3", 6881)
"""Where the sample queries come from (the announce token is bound to this IP)."""
SOURCES: tuple[Addr, ...] = (
    PING_PEER,
    LOOKUP_SEED,
    QUERIER,
    ("2a00:1450::3", 6881),
    ("11.0.0.1", 6882),  # the pinged IP, another port: a reply from here must be dropped
    ("127.0.0.1", 1),  # refused by the routing table's address filter
    ("11.0.0.4", 65535),
    ("2a00:1450::4", 1),
)
"""Source addresses the fuzzers pick from (index = a byte of input modulo the length)."""

SETTINGS = DhtSettings()
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "krpc-captures"


def dual_pair(settings: DhtSettings = SETTINGS, seed: int = 0) -> dict[int, DhtNode]:
    """A dual-stack host at T0: an IPv4 and an IPv6 node, each the other's sibling."""
    ops = OpIds()

    def make(family: int, sibling: Sibling) -> DhtNode:
        return DhtNode(
            rng=random.Random(seed * 2 + family), secrets=random.Random(~(seed * 2 + family)),
            now=T0, node_id=NODE_ID, settings=settings, family=family, sibling=sibling,
            op_ids=ops,
        )

    return dual_stack(make)


def primed_node(settings: DhtSettings = SETTINGS, seed: int = 0) -> DhtNode:
    """The IPv4 node of a dual-stack host (so ``want`` for IPv6 contacts is answered too) at
    time T0 with a ping to PING_PEER and a get_peers lookup (seeded with LOOKUP_SEED) in flight;
    its outbox and event queue are empty."""
    node = dual_pair(settings, seed)[4]
    node.ping(PING_PEER, T0)
    node.start_lookup(TARGET, T0, kind="get_peers", seeds=[LOOKUP_SEED])
    node.datagrams_to_send()
    node.drain_events()
    return node


def pending_tids(node: DhtNode) -> dict[Addr, bytes]:
    """Transaction id of the query in flight to each address."""
    return {p.addr: p.tid for p in node.txns}


IMMUTABLE = Item.immutable([b"fuzz", 1, {b"k": b"v"}])
MUTABLE = Item.signed(bytes(range(32)), b"fuzz", 3, b"salt")
"""BEP 44 items the sample puts carry (the mutable one signed by a fixed seed)."""


def item_token(node: DhtNode, item: Item) -> bytes:
    """A write token the primed node accepts from QUERIER for ``item``'s target."""
    return node.tokens.issue(QUERIER[0], item.target, T0)


def _node(i: int, family: int = 4) -> NodeInfo:
    ip = f"11.1.0.{i}" if family == 4 else f"2a00:1450::{i:x}"
    return NodeInfo(bytes([i]) * 20, (ip, 1000 + i))


def valid_messages(seed: int = 0) -> dict[str, bytes]:
    """name -> datagram: queries of every method (from QUERIER), replies matching the primed
    node's transactions, errors of every code, and the real libtorrent captures."""
    node = primed_node(seed=seed)
    tids = pending_tids(node)
    ping_tid, lookup_tid = tids[PING_PEER], tids[LOOKUP_SEED]
    token = node.tokens.issue(QUERIER[0], INFO_HASH, T0)
    peer_id = bytes.fromhex("77" * 20)
    v = b"LT\x02\x11"
    four = frozenset({b"n4"})
    both = frozenset({b"n4", b"n6"})
    msgs: dict[str, Message] = {
        "q_ping": PingQuery(b"aa", peer_id, version=v),
        "q_ping_ro": PingQuery(b"ab", peer_id, read_only=True),
        "q_find_node": FindNodeQuery(b"ac", peer_id, target=TARGET),
        "q_find_node_want": FindNodeQuery(b"ad", peer_id, target=TARGET, want=both),
        "q_get_peers": GetPeersQuery(b"ae", peer_id, info_hash=INFO_HASH, version=v),
        "q_get_peers_bs": GetPeersQuery(b"af", peer_id, info_hash=INFO_HASH, want=four,
                                        bootstrap=True),
        "q_announce": AnnouncePeerQuery(b"ag", peer_id, info_hash=INFO_HASH, port=51413,
                                        token=token, seed=True),
        "q_announce_implied": AnnouncePeerQuery(b"ah", peer_id, info_hash=INFO_HASH, port=0,
                                                token=token, implied_port=True),
        "q_announce_bad_token": AnnouncePeerQuery(b"ai", peer_id, info_hash=INFO_HASH,
                                                  port=6881, token=b"12345678"),
        "q_sample": SampleInfohashesQuery(b"aj", peer_id, target=TARGET, want=both),
        "q_get_peers_scrape": GetPeersQuery(b"am", peer_id, info_hash=INFO_HASH, scrape=True,
                                            noseed=True),
        "q_get": GetQuery(b"an", peer_id, target=IMMUTABLE.target),
        "q_get_seq": GetQuery(b"ao", peer_id, target=MUTABLE.target, seq=1, want=both),
        "q_put_immutable": PutQuery(b"ap", peer_id, token=item_token(node, IMMUTABLE),
                                    v=IMMUTABLE.value),
        "q_put_mutable": PutQuery(b"aq", peer_id, token=item_token(node, MUTABLE),
                                  v=MUTABLE.value, k=MUTABLE.public_key, seq=MUTABLE.seq,
                                  sig=MUTABLE.signature, salt=MUTABLE.salt, cas=0),
        "q_put_bad_sig": PutQuery(b"ar", peer_id, token=item_token(node, MUTABLE),
                                  v=b"4:evil", k=MUTABLE.public_key, seq=9,
                                  sig=MUTABLE.signature, salt=MUTABLE.salt),
        "r_ping": Response(ping_tid, bytes.fromhex("88" * 20), external_ip=("11.0.0.9", 6881),
                           version=v),
        "r_ping_ro_p": Response(ping_tid, bytes.fromhex("88" * 20), read_only=True, port=6881),
        "r_nodes": Response(lookup_tid, bytes.fromhex("99" * 20),
                            nodes=tuple(_node(i) for i in range(1, 9)),
                            nodes6=tuple(_node(i, 6) for i in range(1, 4)), token=b"tok"),
        "r_values": Response(lookup_tid, bytes.fromhex("99" * 20),
                             values=(("11.2.0.1", 6881), ("2a00:1450::9", 51413)),
                             nodes=(_node(3),), token=b"\x01" * 8),
        "r_item": Response(lookup_tid, bytes.fromhex("99" * 20), token=b"tok", v=MUTABLE.value,
                           k=MUTABLE.public_key, seq=MUTABLE.seq, sig=MUTABLE.signature,
                           nodes=(_node(5),)),
        "r_scrape": Response(lookup_tid, bytes.fromhex("99" * 20), token=b"tok",
                             bf_seeds=BloomFilter.of(["11.3.0.1"]).to_bytes(),
                             bf_peers=BloomFilter().to_bytes(), nodes=(_node(6),)),
        "r_samples": Response(lookup_tid, bytes.fromhex("99" * 20), interval=21600, num=3,
                              samples=(INFO_HASH, TARGET, NODE_ID), nodes=(_node(4),)),
        "e_201": ErrorMessage(ping_tid, GENERIC_ERROR, "A Generic Error Ocurred"),
        "e_202": ErrorMessage(lookup_tid, SERVER_ERROR, "Server Error"),
        "e_203": ErrorMessage(ping_tid, PROTOCOL_ERROR, "invalid token"),
        "e_204": ErrorMessage(lookup_tid, METHOD_UNKNOWN, "Method Unknown"),
    }
    out = {name: krpc.encode(m) for name, m in msgs.items()}
    peer: dict[bytes, object] = {b"id": peer_id}
    out["q_unknown_method"] = bencoding.encode({b"t": b"ak", b"y": b"q", b"q": b"vote", b"a": peer})
    out["q_ro_in_args"] = bencoding.encode(
        {b"t": b"al", b"y": b"q", b"q": b"ping", b"a": {b"id": peer_id, b"ro": 1}}
    )
    # libtorrent adds an "r" dict to its errors; some clients send no message text.
    out["e_with_r"] = bencoding.encode(
        {b"t": ping_tid, b"y": b"e", b"e": [PROTOCOL_ERROR, b"bad"], b"r": {b"id": peer_id}}
    )
    out["e_code_only"] = bencoding.encode({b"t": lookup_tid, b"y": b"e", b"e": [GENERIC_ERROR]})
    for path in sorted(CAPTURES.glob("*.json")):
        doc = json.loads(path.read_text())
        for i, rec in enumerate(doc["records"]):
            out[f"capture_{path.stem}_{i}"] = base64.b64decode(rec["b64"])
    return out
