"""BEP 44 on the storage side: what get and put are answered with, in libtorrent's order of
checks, and every reply within the size bound."""

from __future__ import annotations

import random

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.items import Item, sign
from dhtviewer.dht.messages import ErrorMessage, GetQuery, Message, NodeInfo, PutQuery, Response
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.settings import DhtSettings

CLIENT = ("203.0.113.9", 6881)
OTHER = ("203.0.113.10", 6881)
PEER_ID = b"\x77" * 20
SEED = bytes(range(32))


def make() -> DhtNode:
    node = DhtNode(rng=random.Random(1), now=0.0, node_id=b"\x5a" * 20, settings=DhtSettings())
    node.preload_contacts(
        [NodeInfo(bytes([i]) * 20, (f"11.{i}.0.1", 6881)) for i in range(1, 30)], 0.0
    )
    node.datagrams_to_send()
    node.drain_events()
    return node


def ask(node: DhtNode, q: GetQuery | PutQuery, src: tuple[str, int] = CLIENT) -> Message:
    node.receive(krpc.encode(q), src, 1.0)
    [(data, dst)] = node.datagrams_to_send()
    assert dst == src and len(data) <= node.settings.max_reply_bytes
    return krpc.decode(data)


def token(node: DhtNode, target: bytes, src: tuple[str, int] = CLIENT) -> bytes:
    r = ask(node, GetQuery(b"g", PEER_ID, target=target), src)
    assert isinstance(r, Response) and r.token is not None and len(r.nodes) == 8
    return r.token


def put(node: DhtNode, item: Item, tok: bytes, cas: int | None = None) -> Message:
    if not item.mutable:
        return ask(node, PutQuery(b"p", PEER_ID, token=tok, v=item.value))
    return ask(
        node,
        PutQuery(b"p", PEER_ID, token=tok, v=item.value, k=item.public_key, seq=item.seq,
                 sig=item.signature, salt=item.salt, cas=cas),
    )


def code(reply: Message) -> int:
    assert isinstance(reply, ErrorMessage), reply
    return reply.code


def test_immutable_put_and_get() -> None:
    node = make()
    item = Item.immutable(b"x" * 996)  # the largest value: 1000 bytes bencoded
    assert isinstance(put(node, item, token(node, item.target)), Response)
    r = ask(node, GetQuery(b"g", PEER_ID, target=item.target))
    assert isinstance(r, Response) and r.v == item.value and r.k is None
    assert r.nodes  # the closest contacts still fit next to a 1000-byte value
    [stored] = [e for e in node.drain_events() if isinstance(e, ev.ItemStored)]
    assert stored.new and stored.addr == CLIENT and stored.size == 1000
    assert node.stats(1.0)["stored_items"] == 1


def test_mutable_get_with_seq_omits_what_the_asker_has() -> None:
    node = make()
    item = Item.signed(SEED, b"v", 4, b"s")
    assert isinstance(put(node, item, token(node, item.target)), Response)
    full = ask(node, GetQuery(b"g", PEER_ID, target=item.target))
    assert isinstance(full, Response)
    assert (full.v, full.k, full.seq, full.sig) == (item.value, item.public_key, 4, item.signature)
    for seq, has_value in ((3, True), (4, False), (9, False)):
        r = ask(node, GetQuery(b"g", PEER_ID, target=item.target, seq=seq))
        assert isinstance(r, Response) and r.seq == 4
        assert (r.v is not None) == has_value and (r.sig is not None) == has_value


def test_put_checks_in_libtorrents_order() -> None:
    node = make()
    v1 = Item.signed(SEED, b"one", 1, b"s")
    tok = token(node, v1.target)
    # The token is bound to this IP and this target.
    assert code(put(node, v1, token(node, b"\x01" * 20))) == 203
    assert code(ask(node, PutQuery(b"p", PEER_ID, token=tok, v=v1.value, k=v1.public_key,
                                   seq=1, sig=v1.signature, salt=v1.salt), OTHER)) == 203
    assert isinstance(put(node, v1, tok), Response)
    raw = b"1000:" + b"x" * 1000
    big = Item(raw, v1.public_key, 2, sign(SEED, 2, raw, b"s"), b"s")
    assert code(put(node, big, b"bad token")) == 205  # size before token
    long_salt = Item(v1.value, v1.public_key, 2, v1.signature, b"s" * 65)
    assert code(put(node, long_salt, b"bad token")) == 207
    forged = Item(b"4:evil", v1.public_key, 2, v1.signature, b"s")
    assert code(put(node, forged, tok)) == 206
    assert code(put(node, Item.signed(SEED, b"two", 2, b"s"), tok, cas=0)) == 301
    assert isinstance(put(node, Item.signed(SEED, b"two", 2, b"s"), tok, cas=1), Response)
    assert code(put(node, Item.signed(SEED, b"one", 1, b"s"), tok)) == 302
    c = node.counters
    assert c.puts_refused == 7 and c.items_stored == 2 and c.bad_tokens == 2
