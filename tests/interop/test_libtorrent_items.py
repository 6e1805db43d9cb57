"""BEP 44 items and BEP 33 scrapes on the wire, between our codec and libtorrent 2.1.

Sixteen libtorrent nodes on 127.0.72.x. Our side speaks raw KRPC here (messages built and
checked by ``krpc``, ``items``, ``bloom``, ``scrape`` and ``item_collector``, sent from the
harness socket), so each test checks one wire-level promise in both directions:

- what we ``put`` (immutable, and mutable with a salt) libtorrent's own ``dht_get_*_item``
  finds and accepts (hash, signature, seq);
- what libtorrent puts (``dht_put_immutable_item``, ``dht_put_mutable_item`` with a salt) our
  checks accept, with the very signature our ed25519 makes from the same seed;
- libtorrent refuses what the BEP refuses, with the codes our item store uses;
- libtorrent's scrape filters, merged by us, count its seeds and downloaders.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator

import pytest

from dhtviewer.dht import bencoding
from dhtviewer.dht.item_collector import ItemCollector
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.items import (
    BAD_SIGNATURE,
    CAS_MISMATCH,
    SALT_TOO_BIG,
    SEQ_TOO_LOW,
    VALUE_TOO_BIG,
    Item,
    mutable_target,
    sign,
)
from dhtviewer.dht.messages import (
    Addr,
    ErrorMessage,
    GetPeersQuery,
    GetQuery,
    Message,
    NodeInfo,
    PingQuery,
    PutQuery,
    Query,
    Response,
    SampleInfohashesQuery,
)
from dhtviewer.dht.node_id import distance
from dhtviewer.dht.sampler import Sampler
from dhtviewer.dht.scrape import ScrapeMerge
from dhtviewer.net.sample_store import SampleStore
from dhtviewer.net.session import DhtSession

pytest.importorskip("libtorrent", reason="interop tests need libtorrent (the 'test' extra)")

import libtorrent as lt

from tests.interop.test_libtorrent_interop import LoopThread, start_session
from tests.support.libtorrent_net import LibtorrentNet
from tests.support.raw_peer import RawPeer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

NODES = 16
OUR_ID = bytes.fromhex("d1" * 20)
SEED = bytes(range(32))
_tids = (i.to_bytes(2, "big") for i in itertools.count(1))


@pytest.fixture(scope="module")
def net() -> Iterator[LibtorrentNet]:
    # The raw endpoint sends dozens of queries a second from one address: past libtorrent's
    # default of 5 packets/s it would be blocked, and scrape replies (~700 bytes) soon pass
    # its default DHT upload budget of 8 kB/s.
    settings = {"dht_block_ratelimit": 10_000, "dht_upload_rate_limit": 1_000_000}
    with LibtorrentNet(n=NODES, base="127.0.72.1", seed=72, extra_settings=settings) as network:
        yield network


@pytest.fixture(scope="module")
def ids(net: LibtorrentNet) -> dict[int, bytes]:
    out = {}
    for i, addr in enumerate(net.addrs):
        reply = ask(net, addr, PingQuery(next(_tids), OUR_ID))
        assert isinstance(reply, Response)
        out[i] = reply.sender_id
    return out


def closest(ids: dict[int, bytes], target: bytes, k: int = 8) -> list[int]:
    return sorted(ids, key=lambda i: distance(ids[i], target))[:k]


_peer: RawPeer | None = None


@pytest.fixture(scope="module", autouse=True)
def raw_peer() -> Iterator[RawPeer]:
    global _peer
    with RawPeer(OUR_ID) as peer:
        _peer = peer
        yield peer
        _peer = None


def ask(net: LibtorrentNet, addr: Addr, q: Query) -> Message:
    """One query from our raw endpoint (a polite empty node: libtorrent's own lookups ask it
    too, and must get answers)."""
    assert _peer is not None
    return _peer.ask(addr, q)


def token_of(net: LibtorrentNet, addr: Addr, target: bytes) -> bytes:
    r = ask(net, addr, GetQuery(next(_tids), OUR_ID, target=target))
    assert isinstance(r, Response) and r.token is not None
    return r.token


def put_query(item: Item, token: bytes, cas: int | None = None) -> PutQuery:
    if not item.mutable:
        return PutQuery(next(_tids), OUR_ID, token=token, v=item.value)
    return PutQuery(
        next(_tids),
        OUR_ID,
        token=token,
        v=item.value,
        k=item.public_key,
        seq=item.seq,
        sig=item.signature,
        salt=item.salt,
        cas=cas,
    )


def our_put(net: LibtorrentNet, ids: dict[int, bytes], item: Item) -> int:
    """Put ``item`` to the 8 libtorrent nodes closest to its target; how many stored it."""
    stored = 0
    for i in closest(ids, item.target):
        addr = net.addrs[i]
        reply = ask(net, addr, put_query(item, token_of(net, addr, item.target)))
        stored += isinstance(reply, Response)
    return stored


def our_get(
    net: LibtorrentNet, ids: dict[int, bytes], target: bytes, salt: bytes = b""
) -> ItemCollector:
    collector = ItemCollector(target, salt)
    for i in closest(ids, target):
        reply = ask(net, net.addrs[i], GetQuery(next(_tids), OUR_ID, target=target))
        assert isinstance(reply, Response)
        collector.offer(reply.sender_id, net.addrs[i], reply)
    return collector


# --- our put -> libtorrent's get -----------------------------------------------------------------
def test_our_immutable_put_is_found_by_libtorrent(
    net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    value = [b"dhtviewer", 44, {b"kind": b"immutable"}]
    item = Item.immutable(value)
    assert our_put(net, ids, item) == 8
    found = net.get_immutable(NODES - 1, item.target)
    assert found is not None and bencoding.encode(found) == item.value


def test_our_mutable_put_with_salt_is_found_by_libtorrent(
    net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    item = Item.signed(SEED, b"hello from dhtviewer", 5, b"issue-14")
    assert our_put(net, ids, item) == 8
    found = net.get_mutable(NODES - 2, item.public_key or b"", b"issue-14")
    assert found is not None
    value, seq, signature = found
    assert value == b"hello from dhtviewer" and seq == 5 and signature == item.signature


# --- libtorrent's put -> our get -----------------------------------------------------------------
def test_libtorrent_immutable_put_passes_our_checks(
    net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    value = {b"from": b"libtorrent", b"n": 7}
    target, stored = net.put_immutable(0, value)
    assert stored >= 1
    got = our_get(net, ids, target)
    assert got.best == Item(bencoding.encode(value)) and got.rejected == 0
    # libtorrent stores to the 8 closest its own lookup found, which may miss a true closest.
    assert len(got.holders) >= stored // 2


def test_libtorrent_mutable_put_with_salt_passes_our_checks(
    net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    seed = bytes(range(100, 132))
    assert net.put_mutable(1, seed, b"libtorrent was here", b"salty") >= 1
    ours = Item.signed(seed, b"libtorrent was here", 1, b"salty")
    got = our_get(net, ids, ours.target, b"salty")
    # libtorrent signs from the expanded form of the same seed: the same ed25519 signature.
    assert got.best == ours and got.rejected == 0
    # Asked with the wrong salt, every copy is refused, and the reason says why.
    wrong = our_get(net, ids, ours.target, b"pepper")
    assert wrong.best is None and wrong.rejected == len(got.holders)
    assert {r.reason for r in wrong.rejections} == {
        "SHA-1 of key and salt does not match the target"
    }


# --- what libtorrent refuses ---------------------------------------------------------------------
def test_libtorrent_refuses_what_our_store_refuses(
    net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    seed = bytes(range(50, 82))
    v2 = Item.signed(seed, b"two", 2, b"rules")
    [i] = closest(ids, v2.target, 1)
    addr = net.addrs[i]

    def put(item: Item, cas: int | None = None) -> Message:
        return ask(net, addr, put_query(item, token_of(net, addr, v2.target), cas))

    assert isinstance(put(v2), Response)
    cases = {
        SEQ_TOO_LOW: put(Item.signed(seed, b"one", 1, b"rules")),
        CAS_MISMATCH: put(Item.signed(seed, b"three", 3, b"rules"), cas=1),
        BAD_SIGNATURE: put(Item(b"4:evil", v2.public_key, 9, v2.signature, b"rules")),
    }
    for code, reply in cases.items():
        assert isinstance(reply, ErrorMessage) and reply.code == code, (code, reply)
    raw = b"1000:" + b"x" * 1000  # built by hand: Item.signed refuses a value this big
    big = Item(raw, v2.public_key, 4, sign(seed, 4, raw, b"rules"), b"rules")
    big_reply = put(big)
    assert isinstance(big_reply, ErrorMessage) and big_reply.code == VALUE_TOO_BIG
    salty = Item.signed(seed, b"v", 1, b"s" * 64)
    token = token_of(net, addr, salty.target)
    q = put_query(salty, token)
    long_salt = PutQuery(q.tid, OUR_ID, token=token, v=q.v, k=q.k, seq=q.seq, sig=q.sig,
                         salt=b"s" * 65)
    reply = ask(net, addr, long_salt)
    assert isinstance(reply, ErrorMessage) and reply.code == SALT_TOO_BIG


# --- BEP 33 --------------------------------------------------------------------------------------
def test_libtorrent_scrape_filters_count_its_seeds_and_downloaders(
    net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    info_hash = bytes.fromhex("33" * 20)
    seeds, downloaders = range(2, 6), range(6, 12)  # 4 seeds, 6 downloaders, one IP each
    for i in seeds:
        net.sessions[i].dht_announce(lt.sha1_hash(info_hash), 6881, int(lt.announce_flags_t.seed))
    for i in downloaders:
        net.sessions[i].dht_announce(lt.sha1_hash(info_hash), 6881, 0)

    def scrape() -> tuple[ScrapeMerge, int]:
        merge, with_filters = ScrapeMerge(), 0
        for i in closest(ids, info_hash):
            q = GetPeersQuery(next(_tids), OUR_ID, info_hash=info_hash, scrape=True)
            r = ask(net, net.addrs[i], q)
            assert isinstance(r, Response)
            with_filters += r.bf_seeds is not None
            merge.add(r.bf_seeds, r.bf_peers, r.values)
        return merge, with_filters

    deadline = time.monotonic() + 15
    while True:
        merge, with_filters = scrape()
        est = merge.result()
        if (round(est.seeds), round(est.downloaders)) == (4, 6) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert with_filters >= 1 and est.legacy == 0
    assert (round(est.seeds), round(est.downloaders)) == (4, 6)


# --- BEP 51 --------------------------------------------------------------------------------------
def test_our_sampler_crawls_libtorrent(net: LibtorrentNet, ids: dict[int, bytes]) -> None:
    """Our crawl schedule and sample store, over raw sample_infohashes to every libtorrent
    node: every announced info-hash is found, libtorrent's interval (6 h) means no node is
    asked twice, and the replies are within the BEP's bounds."""
    announced = [bytes([0x51, i]) * 10 for i in range(12)]
    for n, h in enumerate(announced):
        net.sessions[n % NODES].dht_announce(lt.sha1_hash(h), 6881, 0)
    store = SampleStore(":memory:")
    first = ids[0], net.addrs[0]
    deadline = time.monotonic() + 20
    seen: set[bytes] = set()
    while set(announced) - seen and time.monotonic() < deadline:
        sampler = Sampler(random.Random(5), time.monotonic(), rate=200.0, max_inflight=4)
        sampler.add_contacts([NodeInfo(*first)])
        asked: list[Addr] = []
        while (now := time.monotonic()) < deadline:
            batch = sampler.due(now)
            if not batch and sampler.inflight == 0 and sampler.next_deadline(now) is None:
                break
            for node, target in batch:
                asked.append(node.addr)
                r = ask(net, node.addr, SampleInfohashesQuery(next(_tids), OUR_ID, target=target))
                assert isinstance(r, Response)
                if r.num is None:  # our raw endpoint, which libtorrent hands out as a contact
                    store.record_unsupported(r.sender_id, node.addr, now)
                    sampler.on_reply(node.addr, r.sender_id, now, supported=False)
                    continue
                assert r.interval is not None and 0 <= r.interval <= 21600
                assert len(r.samples) <= r.num
                store.record(r.sender_id, node.addr, r.samples, r.num, r.interval, now)
                sampler.on_reply(
                    node.addr, r.sender_id, now, supported=True, returned=len(r.samples),
                    num=r.num, interval=r.interval, contacts=r.nodes,
                )
            time.sleep(0.01)
        assert len(asked) == len(set(asked))  # each once: libtorrent's interval honoured
        assert set(net.addrs) <= set(asked)
        seen = set(store.info_hashes())
        time.sleep(0.5)  # announces still arriving: crawl again
    assert set(announced) <= seen
    est = store.estimate()
    assert est.observed == len(seen) and est.nodes == NODES
    assert store.totals().nodes_supporting == NODES


# --- the same through our DhtSession (a full node among the libtorrent ones) ---------------------
@pytest.fixture(scope="module")
def ours(net: LibtorrentNet) -> Iterator[tuple[LoopThread, DhtSession]]:
    loop = LoopThread()
    session = DhtSession(bind=("127.0.73.1", 0), rng=random.Random(73))
    start_session(loop, session, net.addrs[:3])
    yield loop, session
    loop.run(session.stop)
    loop.close()


def test_session_put_and_libtorrent_get(
    ours: tuple[LoopThread, DhtSession], net: LibtorrentNet
) -> None:
    loop, session = ours
    immutable = loop.run(lambda: session.put_item(PutRequest([b"session", 1]), timeout=10))
    assert len(immutable.stored_at) >= 7  # the 8 closest, libtorrent's (ours may be one)
    found = net.get_immutable(5, immutable.target)
    assert found is not None and bencoding.encode(found) == b"l7:sessioni1ee"
    seed = bytes(range(7, 39))
    mutable = loop.run(lambda: session.put_item(
        PutRequest(b"from our session", seed=seed, salt=b"node"), timeout=10
    ))
    assert mutable.seq == 1 and len(mutable.stored_at) >= 7
    got = net.get_mutable(6, Item.signed(seed, b"x", 1).public_key or b"", b"node")
    assert got is not None and got[0] == b"from our session" and got[1] == 1


def test_libtorrent_put_and_session_get(
    ours: tuple[LoopThread, DhtSession], net: LibtorrentNet
) -> None:
    loop, session = ours
    target, stored = net.put_immutable(7, [b"lt", 2])
    assert stored >= 1
    got = loop.run(lambda: session.get_item(target, timeout=10))
    assert got.found and got.value == b"l2:lti2ee" and got.rejected == 0
    seed = bytes(range(9, 41))
    assert net.put_mutable(8, seed, b"salted by libtorrent", b"lt-salt") >= 1
    ours_item = Item.signed(seed, b"salted by libtorrent", 1, b"lt-salt")
    found = loop.run(lambda: session.get_item(ours_item.target, b"lt-salt", timeout=10))
    assert found.value == ours_item.value and found.seq == 1
    assert found.signature == ours_item.signature


def test_libtorrent_stores_on_our_node(
    ours: tuple[LoopThread, DhtSession], net: LibtorrentNet, ids: dict[int, bytes]
) -> None:
    """libtorrent's put reaches our storage side when we are among the closest: an item whose
    target is our own id is one we must be asked to store."""
    loop, session = ours
    our_id = session.node_id
    # An immutable value whose target is close to us: search a few values for a near one.
    best = min(
        (Item.immutable([b"near", i]) for i in range(4000)),
        key=lambda it: distance(it.target, our_id),
    )
    target, stored = net.put_immutable(9, best.decoded_value())
    assert target == best.target and stored >= 1
    held = loop.call(session.stored_items)
    assert best.target in {t for t, _ in held}


def test_libtorrent_mutable_put_lands_on_our_node(
    ours: tuple[LoopThread, DhtSession], net: LibtorrentNet
) -> None:
    """A libtorrent mutable put whose target (SHA-1 of key and salt) is near our id is stored
    by our node, signature and all: our storage side accepts what libtorrent signs."""
    loop, session = ours
    our_id = session.node_id
    seed = bytes(range(21, 53))
    pk = Item.signed(seed, b"x", 1).public_key or b""
    salt = min((b"near-%d" % i for i in range(4000)),
               key=lambda s: distance(mutable_target(pk, s), our_id))
    assert net.put_mutable(10, seed, b"libtorrent was here", salt) >= 1
    expected = Item.signed(seed, b"libtorrent was here", 1, salt)
    held = dict(loop.call(session.stored_items))
    assert expected.target in held
    stored = held[expected.target].item
    assert stored.mutable and stored.seq == 1 and stored.salt == salt
    assert stored.value == expected.value and stored.signature == expected.signature
    stored.validate()


def test_session_scrape_of_a_libtorrent_swarm(
    ours: tuple[LoopThread, DhtSession], net: LibtorrentNet
) -> None:
    loop, session = ours
    info_hash = bytes.fromhex("b3" * 20)
    for i in range(0, 3):
        net.sessions[i].dht_announce(lt.sha1_hash(info_hash), 7000, int(lt.announce_flags_t.seed))
    for i in range(3, 8):
        net.sessions[i].dht_announce(lt.sha1_hash(info_hash), 7000, 0)
    deadline = time.monotonic() + 15
    while True:
        result = loop.run(lambda: session.scrape(info_hash, timeout=10))
        counts = (round(result.seeds), round(result.downloaders))
        # libtorrent's announces are fired above without waiting: each first runs its own
        # traversal, so our lookup (a millisecond on a warm table) can end before any
        # announce_peer landed while the scrape round, a moment later, already counts them
        # all. Retry until both views agree rather than on the scrape alone.
        if (counts == (3, 5) and result.lookup.peers) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counts == (3, 5) and result.nodes >= 1
    # The lookup itself found peers too, on the same network the scrape counted.
    assert result.lookup.peers


def test_session_crawl_of_libtorrent(
    ours: tuple[LoopThread, DhtSession], net: LibtorrentNet
) -> None:
    loop, session = ours
    recorder = loop.call(lambda: session.start_crawl(None, rate=100.0))
    deadline = time.monotonic() + 15
    while loop.call(lambda: recorder.figures().supporting) < NODES:
        assert time.monotonic() < deadline, loop.call(recorder.figures)
        time.sleep(0.1)
    loop.call(session.stop_crawl)
    fig = recorder.figures()
    assert fig.supporting >= NODES and fig.distinct >= 1
