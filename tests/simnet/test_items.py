"""BEP 44 on simulated nodes: get with a token, put by our store's rules and codes, bounded
stores, unsupported clients answering 204, Sybils swallowing puts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.item_service import accept_put
from dhtviewer.dht.item_store import ItemStore
from dhtviewer.dht.items import Item, ItemError
from dhtviewer.dht.messages import (
    ErrorMessage,
    GetQuery,
    Message,
    PutQuery,
    Query,
    Response,
)
from dhtviewer.simnet import index as ix
from dhtviewer.simnet import items as simitems
from dhtviewer.simnet.items import ITEM_CLIENTS
from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.options import parse_scenarios
from dhtviewer.simnet.profile import CLIENTS, FRIENDLY

PORT = 7000
CLIENT = ("127.0.130.1", 5555)
OTHER = ("127.0.130.2", 5555)
CLIENT_ID = bytes(range(20))
T0 = 1000.0
SEED = bytes(range(32))


def make(nodes: int = 3000, scenarios: list[str] | None = None) -> Simnet:
    config = SimnetConfig(nodes=nodes, seed=1, profile=replace(FRIENDLY, swarms=20),
                          scenarios=parse_scenarios(scenarios or []))
    return Simnet(config, [PORT], T0)


def ask(net: Simnet, pos: int, q: Query, src: tuple[str, int] = CLIENT,
        now: float = T0) -> Message:
    net.outbox = []
    net.receive(krpc.encode(q), src, net.index.ip(pos), PORT, now)
    out, net.outbox = net.outbox, []
    assert len(out) == 1
    return krpc.decode(out[0].data)


def supporting(net: Simnet, wanted: bool = True, start: int = 0) -> int:
    bad = ix.SILENT | ix.ERRORING | ix.MALFORMED | ix.SYBIL
    names = [c.name for c in CLIENTS]
    return next(p for p in range(start, net.index.n) if not net.index.flags[p] & bad
                and (names[net.index.clients[p]] in ITEM_CLIENTS) == wanted)


@pytest.fixture()
def net() -> Simnet:
    return make()


def token(net: Simnet, pos: int, target: bytes, src: tuple[str, int] = CLIENT) -> bytes:
    r = ask(net, pos, GetQuery(b"g0", CLIENT_ID, target=target), src)
    assert isinstance(r, Response) and r.token is not None
    return r.token


def put_query(item: Item, tok: bytes, cas: int | None = None) -> PutQuery:
    if item.public_key is None:
        return PutQuery(b"p0", CLIENT_ID, token=tok, v=item.value)
    return PutQuery(b"p0", CLIENT_ID, token=tok, v=item.value, k=item.public_key,
                    seq=item.seq, sig=item.signature, salt=item.salt, cas=cas)


def test_immutable_put_then_get_from_another_asker(net: Simnet) -> None:
    pos = supporting(net)
    item = Item.immutable(b"hello simnet")
    r = ask(net, pos, put_query(item, token(net, pos, item.target)))
    assert isinstance(r, Response) and r.sender_id == net.index.node_id(pos)
    got = ask(net, pos, GetQuery(b"g1", bytes(20), target=item.target), OTHER)
    assert isinstance(got, Response) and got.v == item.value and got.k is None
    assert got.token and len(got.nodes) == 8
    Item(got.v).check_for(item.target)
    assert net.items.holders(item.target, T0) == [pos]


def test_mutable_put_newest_seq_wins_and_get_with_seq_omits_the_value(net: Simnet) -> None:
    pos = supporting(net)
    first = Item.signed(SEED, b"v1", 1, b"salt")
    tok = token(net, pos, first.target)
    assert isinstance(ask(net, pos, put_query(first, tok)), Response)
    second = Item.signed(SEED, b"v2", 2, b"salt")
    assert isinstance(ask(net, pos, put_query(second, tok, cas=1)), Response)
    got = ask(net, pos, GetQuery(b"g2", CLIENT_ID, target=first.target))
    assert isinstance(got, Response)
    assert (got.v, got.seq, got.k, got.sig) == (second.value, 2, second.public_key,
                                                 second.signature)
    newer = ask(net, pos, GetQuery(b"g3", CLIENT_ID, target=first.target, seq=2))
    assert isinstance(newer, Response) and newer.seq == 2 and newer.v is None


@pytest.mark.parametrize(("change", "code"), [
    ("old_seq", 302), ("cas", 301), ("signature", 206), ("token", 203), ("other_ip", 203),
    ("salt", 207), ("big", 205),
])
def test_refusals_carry_the_same_code_as_our_own_store(net: Simnet, change: str,
                                                       code: int) -> None:
    pos = supporting(net)
    stored = Item.signed(SEED, b"v5", 5)
    tok = token(net, pos, stored.target)
    assert isinstance(ask(net, pos, put_query(stored, tok)), Response)
    cas = None
    src = CLIENT
    if change == "old_seq":
        item = Item.signed(SEED, b"v4", 4)
    elif change == "cas":
        item, cas = Item.signed(SEED, b"v6", 6), 3
    elif change == "signature":
        item = replace(Item.signed(SEED, b"v6", 6), signature=bytes(64))
    elif change == "token":
        item, tok = Item.signed(SEED, b"v6", 6), bytes(8)
    elif change == "other_ip":
        item, src = Item.signed(SEED, b"v6", 6), OTHER
    elif change == "salt":
        item = replace(Item.signed(SEED, b"v6", 6), salt=b"s" * 65)
    else:
        item = replace(Item.signed(SEED, b"v6", 6), value=b"1001:" + b"x" * 1001)
    e = ask(net, pos, put_query(item, tok, cas), src)
    assert isinstance(e, ErrorMessage) and e.code == code
    # our own store refuses the same put with the same code
    ours = ItemStore(max_items=8)
    accept_put(put_query(stored, b"t"), CLIENT[0], T0, ours, lambda *_: True)
    with pytest.raises(ItemError) as err:
        accept_put(put_query(item, tok, cas), src[0], T0, ours,
                   lambda t, *_: change not in ("token", "other_ip"))
    assert err.value.code == code
    got = ask(net, pos, GetQuery(b"g4", CLIENT_ID, target=stored.target))
    assert isinstance(got, Response) and got.seq == 5 and got.v == stored.value


def test_clients_without_bep44_answer_204(net: Simnet) -> None:
    pos = supporting(net, wanted=False)
    e = ask(net, pos, GetQuery(b"g5", CLIENT_ID, target=bytes(20)))
    assert isinstance(e, ErrorMessage) and e.code == 204
    e = ask(net, pos, PutQuery(b"p5", CLIENT_ID, token=bytes(8), v=b"1:x"))
    assert isinstance(e, ErrorMessage) and e.code == 204


def test_stores_are_bounded_over_the_network(monkeypatch: pytest.MonkeyPatch,
                                             net: Simnet) -> None:
    monkeypatch.setattr(simitems, "MAX_ITEMS", 30)
    monkeypatch.setattr(simitems, "ITEMS_PER_NODE", 4)
    positions = [p for p in range(net.index.n) if net.items.supports(p)
                 and not net.index.flags[p] & (ix.SILENT | ix.SYBIL)][:20]
    for n, pos in enumerate(positions):
        for j in range(6):
            item = Item.immutable(b"%d-%d" % (n, j))
            assert isinstance(ask(net, pos, put_query(item, token(net, pos, item.target))),
                              Response)
            assert all(len(s) <= 4 for s in net.items.stores.values())
            assert net.items.item_count() <= 30
    assert net.items.stats["stores_dropped"] > 0
    # the most recent puts survive
    last = Item.immutable(b"%d-%d" % (len(positions) - 1, 5))
    assert net.items.holders(last.target, T0) == [positions[-1]]


def test_sybils_swallow_puts() -> None:
    net = make(scenarios=["eclipse:" + "ab" * 20])
    pos = next(p for p in range(net.index.n) if net.index.flags[p] & ix.SYBIL
               and net.items.supports(p))
    item = Item.immutable(b"swallowed")
    r = ask(net, pos, put_query(item, token(net, pos, item.target)))
    assert isinstance(r, Response)
    got = ask(net, pos, GetQuery(b"g6", CLIENT_ID, target=item.target))
    assert isinstance(got, Response) and got.v is None
