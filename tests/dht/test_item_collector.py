"""A get lookup's item bookkeeping: verification, newest seq, holders, rejection reasons."""

from __future__ import annotations

from dhtviewer.dht.item_collector import ItemCollector
from dhtviewer.dht.items import Item
from dhtviewer.dht.messages import Response

SEED = bytes(range(32))
NID = b"\x01" * 20
A1, A2, A3 = ("127.0.0.2", 1), ("127.0.0.3", 1), ("127.0.0.4", 1)


def reply(item: Item | None, **kw: object) -> Response:
    if item is None:
        return Response(b"t", NID, **kw)  # type: ignore[arg-type]
    if not item.mutable:
        return Response(b"t", NID, v=item.value)
    return Response(b"t", NID, v=item.value, k=item.public_key, seq=item.seq, sig=item.signature)


def test_immutable() -> None:
    item = Item.immutable(b"hello")
    c = ItemCollector(item.target)
    assert c.offer(NID, A1, reply(None)) is None
    assert c.offer(NID, A1, reply(item)) == item
    assert c.offer(NID, A2, reply(item)) == item
    assert c.best == item and c.holders == [A1, A2]
    assert c.offer(NID, A3, reply(Item.immutable(b"forged"))) is None
    assert c.rejections[0].reason == "SHA-1 of the value does not match the target"


def test_newest_seq_wins() -> None:
    v1, v3 = Item.signed(SEED, b"one", 1, b"s"), Item.signed(SEED, b"three", 3, b"s")
    c = ItemCollector(v1.target, b"s")
    c.offer(NID, A1, reply(v1))
    c.offer(NID, A2, reply(v3))
    c.offer(NID, A3, reply(v1))
    assert c.best == v3 and c.holders == [A2]
    # A node asked with seq=3 that has it answers with the seq only.
    c.offer(NID, A3, reply(None, seq=3))
    assert c.holders == [A2, A3]


def test_wrong_salt_and_forged_signature_are_explained() -> None:
    item = Item.signed(SEED, b"v", 1, b"right")
    wrong = ItemCollector(item.target, b"wrong")
    assert wrong.offer(NID, A1, reply(item)) is None
    assert wrong.rejections[0].reason == "SHA-1 of key and salt does not match the target"
    c = ItemCollector(item.target, b"right")
    forged = Response(b"t", NID, v=b"4:evil", k=item.public_key, seq=2, sig=item.signature)
    assert c.offer(NID, A2, forged) is None
    assert c.rejections[0].reason == "invalid signature" and c.best is None
    half = Response(b"t", NID, v=item.value, k=item.public_key)
    assert c.offer(NID, A3, half) is None and c.rejected == 2


def test_rejections_are_bounded() -> None:
    c = ItemCollector(b"\x00" * 20, max_rejections=3)
    for _ in range(10):
        c.offer(NID, A1, Response(b"t", NID, v=b"1:x"))
    assert c.rejected == 10 and len(c.rejections) == 3
