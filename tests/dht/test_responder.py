"""Responder: what each query gets back. (End-to-end answers through DhtNode.receive, with
admission and counters, are in test_node.py; here the reply content itself.)"""

from __future__ import annotations

import random

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.families import Sibling
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.messages import (
    METHOD_UNKNOWN,
    PROTOCOL_ERROR,
    Addr,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    NodeInfo,
    PingQuery,
    Response,
    SampleInfohashesQuery,
    UnknownQuery,
)
from dhtviewer.dht.node_id import random_id
from dhtviewer.dht.peer_store import PeerStore
from dhtviewer.dht.responder import Responder
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.tokens import TokenIssuer

OWN = bytes(range(20))
V4: Addr = ("198.51.100.7", 6881)
V6: Addr = ("2a01:4f8:ffff::7", 6881)


class TableHolder:
    """What a sibling node shows of itself: its table's closest contacts."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table

    def closest_contacts(self, target: bytes, count: int, now: float) -> list[NodeInfo]:
        return self.table.closest(target, count, now)

    def needs_contacts(self) -> bool:
        return False


class Setup:
    """A dual-stack host's two responders: ``r`` answers on IPv4, ``r6`` on IPv6; each shows
    the other family's contacts through its ``Sibling``. ``single`` is an IPv4-only one."""

    def __init__(self, settings: DhtSettings | None = None) -> None:
        s = settings or DhtSettings()
        rng = random.Random(3)
        self.tables = {f: RoutingTable(OWN, s, f) for f in (4, 6)}
        for i in range(40):
            self.tables[4].heard_from(random_id(rng), (f"1.2.{i}.1", 6881), 0.0, responded=True)
            self.tables[6].heard_from(random_id(rng), (f"2a01:4f8:{i:x}::1", 6881), 0.0,
                                      responded=True)
        self.store = PeerStore(max_info_hashes=100, max_peers_per_info_hash=100, ttl=1800.0)
        self.counters = Counters()
        self.events: list[ev.Event] = []
        views = {4: Sibling(6), 6: Sibling(4)}
        views[4].bind(TableHolder(self.tables[6]))
        views[6].bind(TableHolder(self.tables[4]))

        def responder(family: int, sibling: Sibling | None) -> Responder:
            return Responder(
                identity=NodeIdentity(OWN, secrets=random.Random(2)), settings=s,
                table=self.tables[family], store=self.store,
                tokens=TokenIssuer(rng, 0.0), rng=rng, counters=self.counters,
                emit=self.events.append, sibling=sibling,
            )

        self.r = responder(4, views[4])
        self.r6 = responder(6, views[6])
        self.single = responder(4, None)


def test_every_reply_carries_our_id_the_seen_address_and_our_version() -> None:
    r = Setup().r.answer(PingQuery(b"tt", random_id(random.Random(1))), V4, 1.0)
    assert r == Response(b"tt", OWN, external_ip=V4, version=DhtSettings().client_version)


def test_contacts_come_from_the_families_asked_for() -> None:
    st = Setup()
    asker = random_id(random.Random(2))
    target = random_id(random.Random(4))
    same = st.r6.answer(FindNodeQuery(b"t", asker, target=target), V6, 1.0)
    both = st.r.answer(FindNodeQuery(b"t", asker, target=target, want=frozenset({b"n4", b"n6"})),
                       V4, 1.0)
    assert isinstance(same, Response) and isinstance(both, Response)
    assert not same.nodes and len(same.nodes6) == 8  # no want: the querier's own family
    assert list(same.nodes6) == st.tables[6].closest(target, 8, 1.0)
    assert len(both.nodes) == len(both.nodes6) == 8
    assert list(both.nodes) == st.tables[4].closest(target, 8, 1.0)
    # The other family's contacts come from the sibling, the IPv6 node's table.
    assert list(both.nodes6) == st.tables[6].closest(target, 8, 1.0)


def test_want_of_the_other_family_only_and_unknown_entries() -> None:
    st = Setup()
    asker = random_id(random.Random(2))
    target = random_id(random.Random(4))
    n6 = FindNodeQuery(b"t", asker, target=target, want=frozenset({b"n6"}))
    only6 = st.r.answer(n6, V4, 1.0)
    assert isinstance(only6, Response)
    assert not only6.nodes and list(only6.nodes6) == st.tables[6].closest(target, 8, 1.0)
    # An entry the BEP does not define is ignored; none known means the query's own family.
    odd = st.r.answer(FindNodeQuery(b"t", asker, target=target, want=frozenset({b"x9"})), V4, 1.0)
    assert isinstance(odd, Response) and len(odd.nodes) == 8 and not odd.nodes6
    # A node without an IPv6 sibling has no IPv6 contacts to give, and says nothing.
    none = st.single.answer(n6, V4, 1.0)
    assert isinstance(none, Response) and not none.nodes and not none.nodes6


def test_get_peers_gives_a_token_for_that_ip_and_peers_of_its_family() -> None:
    st = Setup()
    ih = b"i" * 20
    st.store.add(ih, ("203.0.113.1", 1), 0.0)
    st.store.add(ih, ("2001:db8::99", 2), 0.0)
    asker = random_id(random.Random(5))
    r = st.r.answer(GetPeersQuery(b"t", asker, info_hash=ih), V4, 1.0)
    assert isinstance(r, Response) and r.values == (("203.0.113.1", 1),) and r.token
    announce = AnnouncePeerQuery(b"t", asker, info_hash=ih, port=7000, token=r.token)
    other_ip = st.r.answer(announce, ("198.51.100.8", 6881), 2.0)
    assert isinstance(other_ip, ErrorMessage) and other_ip.code == PROTOCOL_ERROR
    assert st.counters.bad_tokens == 1
    assert isinstance(st.r.answer(announce, V4, 2.0), Response)
    assert st.counters.announces_stored == 1
    assert st.events == [ev.AnnounceReceived(ih, (V4[0], 7000), asker, 2.0)]
    implied = AnnouncePeerQuery(b"t", asker, info_hash=ih, port=0, token=r.token,
                                implied_port=True)
    st.r.answer(implied, V4, 3.0)
    assert (V4[0], V4[1]) in st.store.get(ih, 3.0, random.Random(0), 50)


def test_unknown_methods_get_204() -> None:
    r = Setup().r.answer(UnknownQuery(b"t", OWN, name=b"vote"), V4, 1.0)
    assert r == ErrorMessage(b"t", METHOD_UNKNOWN, "method unknown")


def test_oversized_replies_shed_peers_first_and_fit_the_budget() -> None:
    st = Setup()
    ih = b"j" * 20
    for i in range(50):
        st.store.add(ih, (f"2001:db8:1::{i + 1:x}", 6881), 0.0)
    q = GetPeersQuery(b"t", random_id(random.Random(6)), info_hash=ih,
                      want=frozenset({b"n4", b"n6"}))
    reply = st.r6.answer(q, V6, 1.0)
    assert isinstance(reply, Response) and len(reply.values) == 50
    assert len(krpc.encode(reply)) > DhtSettings().max_reply_bytes  # would amplify
    data = st.r.encode(reply)
    assert len(data) <= DhtSettings().max_reply_bytes
    sent = krpc.decode(data)
    assert isinstance(sent, Response)
    assert 0 < len(sent.values) < 50 and len(sent.nodes) == len(sent.nodes6) == 8


def test_samples_fit_and_are_capped() -> None:
    st = Setup()
    for i in range(60):
        st.store.add(i.to_bytes(20, "big"), ("203.0.113.1", 1), 0.0)
    r = st.r.answer(SampleInfohashesQuery(b"t", OWN, target=OWN), V4, 1.0)
    assert isinstance(r, Response)
    assert r.num == 60 and len(r.samples) == DhtSettings().max_samples
    assert len(st.r.encode(r)) <= DhtSettings().max_reply_bytes


def test_registry_adds_replaces_and_removes_methods() -> None:
    st = Setup()
    assert st.r.methods() == sorted(
        [b"announce_peer", b"find_node", b"get_peers", b"ping", b"sample_infohashes"]
    )
    asker = random_id(random.Random(5))
    q = UnknownQuery(b"t", asker, name=b"hello", args={b"x": 1})
    assert isinstance(st.r.answer(q, V4, 1.0), ErrorMessage)

    def hello(query: UnknownQuery, addr: tuple[str, int], now: float) -> Response:
        x = query.args[b"x"]
        assert isinstance(x, int)
        return st.r.response(query, addr, extra={b"x2": 2 * x})

    st.r.register(b"hello", hello)
    reply = st.r.answer(q, V4, 1.0)
    assert isinstance(reply, Response) and reply.extra == {b"x2": 2} and reply.external_ip == V4
    decoded = krpc.decode(st.r.encode(reply))
    assert isinstance(decoded, Response) and decoded.extra == {b"x2": 2}
    st.r.unregister(b"hello")
    assert isinstance(st.r.answer(q, V4, 1.0), ErrorMessage)


def test_unregistering_a_replaced_built_in_method_brings_the_built_in_back() -> None:
    st = Setup()
    asker = random_id(random.Random(5))
    ping = PingQuery(b"t", asker)

    def refuse(query: PingQuery, addr: tuple[str, int], now: float) -> ErrorMessage:
        return ErrorMessage(query.tid, 201, "no pings today")

    st.r.register(b"ping", refuse)
    refused = st.r.answer(ping, V4, 1.0)
    assert isinstance(refused, ErrorMessage) and refused.message == "no pings today"
    st.r.unregister(b"ping")
    answered = st.r.answer(ping, V4, 1.0)
    assert isinstance(answered, Response) and answered.sender_id == st.r.node_id
    assert b"ping" in st.r.methods()
    # Methods a service registers as built-in come back the same way (BEP 44's get and put).
    st.r.register(b"get", refuse, builtin=True)
    st.r.register(b"get", lambda q, a, now: ErrorMessage(q.tid, 202, "replaced"))
    st.r.unregister(b"get")
    back = st.r.answer(UnknownQuery(b"t", asker, name=b"get"), V4, 1.0)
    assert isinstance(back, ErrorMessage) and back.message == "no pings today"


def test_scrape_adds_filters_of_seeds_and_downloaders_and_noseed_filters_values() -> None:
    from dhtviewer.dht.bloom import BloomFilter

    st = Setup()
    ih = b"s" * 20
    for i in range(5):
        st.store.add(ih, (f"203.0.113.{i}", 6881), 0.0, seed=True)
    for i in range(5, 60):
        st.store.add(ih, (f"203.0.113.{i}", 6881), 0.0, seed=None if i % 2 else False)
    asker = random_id(random.Random(6))
    r = st.r.answer(GetPeersQuery(b"t", asker, info_hash=ih, scrape=True), V4, 1.0)
    assert isinstance(r, Response) and r.bf_seeds is not None and r.bf_peers is not None
    assert round(BloomFilter(r.bf_seeds).estimate()) == 5
    assert abs(BloomFilter(r.bf_peers).estimate() - 55) < 2  # a Bloom estimate
    data = st.r.encode(r)
    assert len(data) <= 1400
    shrunk = krpc.decode(data)
    assert isinstance(shrunk, Response) and shrunk.bf_seeds == r.bf_seeds  # peers shed first
    plain = st.r.answer(GetPeersQuery(b"t", asker, info_hash=ih), V4, 1.0)
    assert isinstance(plain, Response) and plain.bf_seeds is None
    noseed = st.r.answer(GetPeersQuery(b"t", asker, info_hash=ih, noseed=True), V4, 1.0)
    assert isinstance(noseed, Response) and noseed.values
    assert not {h for h, _ in noseed.values} & {f"203.0.113.{i}" for i in range(5)}
    # No swarm: no filters (BEP 33: only when the node has entries for that info-hash).
    none = st.r.answer(GetPeersQuery(b"t", asker, info_hash=b"n" * 20, scrape=True), V4, 1.0)
    assert isinstance(none, Response) and none.bf_seeds is None and none.bf_peers is None


def test_bep51_subset_is_drawn_once_per_interval() -> None:
    from dataclasses import replace

    st = Setup(replace(DhtSettings(), sample_interval=300))
    for i in range(100):
        st.store.add(bytes([i]) * 20, ("203.0.113.1", 1), 0.0)
    asker = random_id(random.Random(7))

    def sample(now: float) -> Response:
        r = st.r.answer(SampleInfohashesQuery(b"t", asker, target=OWN), V4, now)
        assert isinstance(r, Response) and r.interval == 300 and r.num == 100
        return r

    first = sample(1.0)
    assert len(first.samples) == 20
    assert sample(200.0).samples == first.samples  # within the interval: the same subset
    assert sample(302.0).samples != first.samples  # after it: drawn anew


def test_replies_written_directly_are_those_of_answer_and_encode() -> None:
    """``answer_wire`` (the serving path for find_node and get_peers) gives the bytes that
    ``encode(answer(...))`` gives on a responder in the same state: same contacts, same
    token, the same peers drawn; other queries (scrape, ping, announce) are left to
    ``answer``. Over many random queries, including swarms too large for one reply."""
    a, b = Setup(DhtSettings(max_reply_bytes=600)), Setup(DhtSettings(max_reply_bytes=600))
    rng = random.Random(11)
    hashes = [random_id(rng) for _ in range(6)]
    for setup in (a, b):
        for n, ih in enumerate(hashes):
            for i in range(n * 12):
                setup.store.add(ih, (f"7.7.{n}.{i}", 1000 + i), 0.0)
            setup.store.add(ih, (f"2a01:4f8:7::{n}", 1000), 0.0)
    wants = [frozenset(), frozenset({b"n4"}), frozenset({b"n6"}), frozenset({b"n4", b"n6"})]
    direct = 0
    for i in range(300):
        asker = random_id(rng)
        want = rng.choice(wants)
        kind = rng.randrange(4)
        q: FindNodeQuery | GetPeersQuery | PingQuery
        if kind == 0:
            q = FindNodeQuery(b"t%d" % i, asker, target=random_id(rng), want=want)
        elif kind == 1:
            q = GetPeersQuery(b"g%d" % i, asker, info_hash=rng.choice(hashes), want=want,
                              noseed=rng.random() < 0.2, scrape=rng.random() < 0.2)
        elif kind == 2:
            q = GetPeersQuery(b"x", asker, info_hash=random_id(rng), want=want)
        else:
            q = PingQuery(b"p", asker)
        if i % 7 == 0:  # swarms change between replies: a cached encoding must follow
            ih = rng.choice(hashes)
            peer = (f"8.8.{i % 200}.{i % 250}", 2000 + i) if i % 2 else (f"2a01:4f8:9::{i:x}", 1)
            for setup in (a, b):
                setup.store.add(ih, peer, 1.0 + i, seed=i % 3 == 0)
        for name in ("r", "r6"):
            addr = V4 if name == "r" else V6
            now = 1.0 + i
            wire = getattr(a, name).answer_wire(q, addr, now)
            reference = getattr(b, name).encode(getattr(b, name).answer(q, addr, now))
            if wire is None:
                assert isinstance(q, PingQuery) or (isinstance(q, GetPeersQuery) and q.scrape)
                getattr(a, name).answer(q, addr, now)  # keep both in the same state
            else:
                direct += 1
                assert wire == reference
                assert len(wire) <= 600
    assert direct > 300


def test_a_replaced_handler_is_not_bypassed() -> None:
    st = Setup()
    st.r.register(FindNodeQuery.method, lambda q, addr, now: ErrorMessage(q.tid, 201, "no"))
    q = FindNodeQuery(b"t", random_id(random.Random(1)), target=OWN)
    assert st.r.answer_wire(q, V4, 1.0) is None
    st.r.unregister(FindNodeQuery.method)
    assert st.r.answer_wire(q, V4, 1.0) == st.r.encode(st.r.answer(q, V4, 1.0))


def test_a_subclass_gets_no_direct_path() -> None:
    """A Responder subclass may change any step of a reply: it is always asked (answer)."""

    class Quiet(Responder):
        def closest_nodes(
            self, target: bytes, want: frozenset[bytes], addr: Addr, now: float
        ) -> tuple[tuple[NodeInfo, ...], tuple[NodeInfo, ...]]:
            return (), ()

    st = Setup()
    quiet = Quiet(
        identity=NodeIdentity(OWN, secrets=random.Random(2)), settings=DhtSettings(),
        table=st.tables[4], store=st.store, tokens=TokenIssuer(random.Random(1), 0.0),
        rng=random.Random(1), counters=Counters(), emit=st.events.append,
    )
    q = FindNodeQuery(b"t", random_id(random.Random(1)), target=OWN)
    assert quiet.answer_wire(q, V4, 1.0) is None
    reply = quiet.answer(q, V4, 1.0)
    assert isinstance(reply, Response) and reply.nodes == ()
