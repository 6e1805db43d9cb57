"""LookupManager: what each kind of lookup asks, per-lookup alpha and short timeout, exactly one
LookupFinished per lookup (cancelled or not), and the limit on running lookups."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.families import dual_stack
from dhtviewer.dht.kinds import LookupKind, QueryRole
from dhtviewer.dht.lookups import QUERY_OF_KIND
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    NodeInfo,
    Response,
)
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import random_id
from dhtviewer.dht.op_ids import OpIds
from dhtviewer.dht.settings import DhtSettings
from tests.support.wire import LOCAL, Wire, build_network

SEEDS = [(f"127.0.9.{i}", 6881) for i in range(1, 21)]


def make() -> DhtNode:
    return DhtNode(rng=random.Random(1), now=0.0, settings=LOCAL)


def test_every_kind_has_its_query() -> None:
    assert set(QUERY_OF_KIND) == set(LookupKind)
    node = make()
    node.start_lookup(b"\x01" * 20, 0.0, kind="find_node", seeds=SEEDS[:1])
    node.start_lookup(b"\x02" * 20, 0.0, kind=LookupKind.GET_PEERS, seeds=SEEDS[:1])
    node.announce(b"\x03" * 20, 7000, 0.0, seeds=SEEDS[:1])
    sent = [krpc.decode(d) for d, _ in node.datagrams_to_send()]
    assert [type(q) for q in sent] == [FindNodeQuery, GetPeersQuery, GetPeersQuery]
    started = [e for e in node.drain_events() if isinstance(e, ev.LookupStarted)]
    assert [e.kind for e in started] == ["find_node", "get_peers", "announce"]
    with pytest.raises(ValueError, match="kind"):
        node.start_lookup(b"\x01" * 20, 0.0, kind=LookupKind.REFRESH)  # the node's own


def test_alpha_and_short_timeout_per_lookup() -> None:
    node = make()
    node.start_lookup(b"\x01" * 20, 0.0, seeds=SEEDS, alpha=2, short_timeout=0.3)
    assert len(node.datagrams_to_send()) == 2
    node.start_lookup(b"\x02" * 20, 0.0, seeds=SEEDS)
    assert len(node.datagrams_to_send()) == LOCAL.alpha
    # the first lookup's queries pass their (own) short timeout at 0.3: two more go out
    node.handle_timer(0.3)
    out = [krpc.decode(d) for d, _ in node.datagrams_to_send()]
    assert len(out) == 2 and all(getattr(q, "info_hash", None) == b"\x01" * 20 for q in out)
    with pytest.raises(ValueError, match="alpha"):
        node.start_lookup(b"\x03" * 20, 0.0, seeds=SEEDS, alpha=0)


def test_one_finished_event_per_lookup_even_when_cancelled_twice() -> None:
    node = make()
    lid = node.start_lookup(b"\x01" * 20, 0.0, seeds=SEEDS)
    node.cancel_lookup(lid, 0.1)
    node.cancel_lookup(lid, 0.2)
    node.handle_timer(10.0)
    fin = [e for e in node.drain_events() if isinstance(e, ev.LookupFinished)]
    assert len(fin) == 1 and fin[0].cancelled and not node.lookups and len(node.txns) == 0


def test_a_lookup_reaches_the_closest_nodes_of_a_small_network() -> None:
    wire = Wire()
    addrs = build_network(wire, 24)
    target = random_id(random.Random(9))
    seeker = wire.nodes[addrs[20]]
    lid = seeker.start_lookup(target, wire.now, kind="find_node")
    wire.run(wire.now + 10)
    (done,) = [e for e in wire.events[addrs[20]]
               if isinstance(e, ev.LookupFinished) and e.lookup_id == lid]
    others = [n.node_id for a, n in wire.nodes.items() if a != addrs[20]]
    truth = sorted(others, key=lambda x: int.from_bytes(x, "big") ^ int.from_bytes(target, "big"))
    assert [c[0] for c in done.closest] == truth[: LOCAL.k]


def test_a_lost_query_to_one_of_the_k_closest_is_sent_again() -> None:
    """The nearest node's first query is lost (a dropped datagram): at half the short timeout,
    with the others answered, the lookup sends it once more, and that node is in the result
    instead of being overtaken as slow."""
    wire = Wire()
    addrs = build_network(wire, 24)
    seeker_addr = addrs[20]
    nearest = addrs[3]
    target = wire.nodes[nearest].node_id  # it is its own closest node
    wire.dead.add(nearest)
    lid = wire.nodes[seeker_addr].start_lookup(target, wire.now, kind="find_node")

    def lookup_events() -> list[ev.Event]:
        return [e for e in wire.events[seeker_addr] if getattr(e, "lookup_id", None) == lid]

    while not any(isinstance(e, ev.LookupQuerySent) and e.addr == nearest
                  for e in lookup_events()):
        wire.run(wire.now + 0.005)
    wire.run(wire.now + 0.011)  # that first query arrived and went nowhere
    wire.dead.discard(nearest)
    wire.run(wire.now + 10)
    events = lookup_events()
    to_nearest = [e.role for e in events
                  if isinstance(e, ev.LookupQuerySent) and e.addr == nearest]
    assert to_nearest[:2] == [QueryRole.ASK, QueryRole.RESEND]
    (done,) = [e for e in events if isinstance(e, ev.LookupFinished)]
    assert done.closest[0] == (target, nearest)
    assert not any(isinstance(e, ev.LookupQuerySlow) and e.addr == nearest for e in events)


def test_the_neighbourhood_probe_is_a_find_node_whose_contacts_join_the_lookup() -> None:
    wire = Wire()
    addrs = build_network(wire, 24)
    seeker_addr = addrs[20]
    seeker = wire.nodes[seeker_addr]
    target = random_id(random.Random(10))
    lid = seeker.start_lookup(target, wire.now, kind="get_peers")
    wire.run(wire.now + 10)
    events = [e for e in wire.events[seeker_addr] if getattr(e, "lookup_id", None) == lid]
    probes = [e for e in events
              if isinstance(e, ev.LookupQuerySent) and e.role == QueryRole.PROBE]
    assert len(probes) <= 1
    if probes:
        asked = [e.addr for e in events
                 if isinstance(e, ev.LookupQuerySent) and e.role == QueryRole.ASK]
        assert probes[0].addr in asked  # a node that was asked (and answered) before
    (done,) = [e for e in events if isinstance(e, ev.LookupFinished)]
    others = [n.node_id for a, n in wire.nodes.items() if a != seeker_addr]
    truth = sorted(others, key=lambda x: int.from_bytes(x, "big") ^ int.from_bytes(target, "big"))
    assert [c[0] for c in done.closest] == truth[: LOCAL.k]


def sent_queries(node: DhtNode) -> dict[tuple[str, int], bytes]:
    """Address -> tid of each query the node just sent."""
    return {dst: krpc.decode(d).tid for d, dst in node.datagrams_to_send()}


def test_slow_queries_error_replies_and_timeouts_are_three_different_events() -> None:
    node = make()
    lid = node.start_lookup(b"\x01" * 20, 0.0, seeds=SEEDS[:3], short_timeout=0.4)
    tids = sent_queries(node)
    a, b, c = SEEDS[:3]
    node.receive(krpc.encode(ErrorMessage(tids[a], 202, "server busy")), a, 0.1)
    node.handle_timer(0.4)  # b and c pass the short timeout
    node.receive(krpc.encode(Response(tids[b], b"\x22" * 20)), b, 0.5)  # b answers late
    node.handle_timer(LOCAL.hard_timeout)  # c never does
    events = [e for e in node.drain_events() if getattr(e, "lookup_id", None) == lid]
    kinds = [(type(e).__name__, e.addr) for e in events
             if isinstance(e, ev.LookupQueryError | ev.LookupQuerySlow | ev.LookupTimeout)]
    assert kinds == [
        ("LookupQueryError", a), ("LookupQuerySlow", b), ("LookupQuerySlow", c),
        ("LookupTimeout", c),
    ]
    (err,) = [e for e in events if isinstance(e, ev.LookupQueryError)]
    assert err.error == "error 202: server busy"
    assert any(isinstance(e, ev.LookupResponse) and e.addr == b for e in events)
    assert node.counters.slow_queries == 2 and node.counters.timeouts == 1


def test_a_query_checked_at_half_the_short_timeout_is_counted_slow_once() -> None:
    """The lookup looks at its K-nearest queries at half the short timeout (and may send one
    again); that checkpoint is not the query's short timeout: every query that stays silent is
    counted slow once, then timed out once (the checkpoint counted too made the hostile
    invariant slow + timeouts <= 2 x queries fail)."""
    node = make()
    node.start_lookup(b"\x01" * 20, 0.0, seeds=SEEDS[:3])
    node.datagrams_to_send()
    t = 0.0
    while t < 3 * LOCAL.hard_timeout:  # nobody answers
        t += 0.05
        node.handle_timer(t)
        node.datagrams_to_send()
    c = node.counters
    assert c.queries_out >= 3
    assert c.slow_queries == c.timeouts == c.queries_out


@pytest.mark.parametrize("phase", ["lookup", "announce"])
def test_a_cancelled_announce_ends_with_one_lookup_finished_and_one_announce_finished(
    phase: str,
) -> None:
    node = make()
    lid = node.announce(b"\x03" * 20, 7000, 0.0, seeds=SEEDS[:2])
    if phase == "announce":
        # Both seeds answer with a token: the lookup settles, announce_peer goes out.
        for i, (addr, tid) in enumerate(sent_queries(node).items()):
            reply = Response(tid, bytes([0x40 + i]) * 20, token=b"tk")
            node.receive(krpc.encode(reply), addr, 0.1)
        assert any(isinstance(krpc.decode(d), AnnouncePeerQuery)
                   for d, _ in node.datagrams_to_send())
    node.cancel_lookup(lid, 0.2)
    node.cancel_lookup(lid, 0.3)
    node.handle_timer(30.0)
    events = [e for e in node.drain_events() if getattr(e, "lookup_id", None) == lid]
    finished = [e for e in events if isinstance(e, ev.LookupFinished)]
    announced = [e for e in events if isinstance(e, ev.AnnounceFinished)]
    assert len(finished) == 1 and len(announced) == 1
    assert announced[0].cancelled and announced[0].stored_at == ()
    assert finished[0].cancelled == (phase == "lookup")
    assert events[-1] is announced[0]
    assert not node.lookups and len(node.txns) == 0


def test_an_announce_not_cancelled_is_not_marked_cancelled() -> None:
    node = make()
    lid = node.announce(b"\x03" * 20, 7000, 0.0, seeds=SEEDS[:1])
    node.handle_timer(LOCAL.hard_timeout)  # the seed never answers: nobody to announce to
    (done,) = [e for e in node.drain_events()
               if isinstance(e, ev.AnnounceFinished) and e.lookup_id == lid]
    assert not done.cancelled and done.stored_at == ()


# --- one family per lookup (BEP 32) --------------------------------------------------------------
V4_CONTACTS = tuple(NodeInfo(bytes([0x10 + i]) * 20, (f"127.0.8.{i + 1}", 6881)) for i in range(4))
V6_CONTACTS = tuple(NodeInfo(bytes([0x20 + i]) * 20, ("::1", 7000 + i)) for i in range(4))


def answer(node: DhtNode, to: tuple[str, int], query: bytes, now: float, **fields: object) -> None:
    """Answer our ``query`` (as sent to ``to``) with a reply carrying ``fields``."""
    q = krpc.decode(query)
    node.receive(krpc.encode(Response(q.tid, b"\x77" * 20, **fields)), to, now)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", [4, 6])
def test_a_lookup_follows_only_the_contacts_of_its_family(family: int) -> None:
    seed = ("127.0.9.1", 6881) if family == 4 else ("::1", 6999)
    node = DhtNode(rng=random.Random(1), now=0.0, settings=LOCAL, family=family)
    lid = node.start_lookup(b"\x11" * 20, 0.0, seeds=[seed])
    ((query, to),) = node.datagrams_to_send()
    answer(node, to, query, 0.1, nodes=V4_CONTACTS, nodes6=V6_CONTACTS)
    asked = {a for _, a in node.datagrams_to_send()}
    mine = V4_CONTACTS if family == 4 else V6_CONTACTS
    assert asked == {n.addr for n in mine}  # never the other family's contacts
    events = node.drain_events()
    assert not any(isinstance(e, ev.OtherFamilyContacts) for e in events)  # no sibling
    started = next(e for e in events if isinstance(e, ev.LookupStarted))
    assert started.family == family
    node.cancel_lookup(lid, 0.2)
    (done,) = [e for e in node.drain_events() if isinstance(e, ev.LookupFinished)]
    assert done.family == family


def dual(settings: DhtSettings = LOCAL) -> dict[int, DhtNode]:
    ops = OpIds()
    return dual_stack(lambda family, sibling: DhtNode(
        rng=random.Random(family), now=0.0, settings=settings, family=family, sibling=sibling,
        op_ids=ops,
    ))


def test_a_dual_stack_node_asks_for_both_families_while_bootstrapping_and_hands_over() -> None:
    pair = dual()
    four = pair[4]
    four.bootstrap([("127.0.9.1", 6881)], 0.0)
    ((query, to),) = four.datagrams_to_send()
    q = krpc.decode(query)
    assert isinstance(q, FindNodeQuery) and q.want == {b"n4", b"n6"}
    answer(four, to, query, 0.1, nodes=V4_CONTACTS, nodes6=V6_CONTACTS)
    asked = {a for _, a in four.datagrams_to_send()}
    assert asked == {n.addr for n in V4_CONTACTS}
    handed = [e for e in four.drain_events() if isinstance(e, ev.OtherFamilyContacts)]
    assert handed == [ev.OtherFamilyContacts(6, V6_CONTACTS, 0.1)]
    # The driver offers them to the IPv6 node: pinged, and in its table only once they answer.
    six = pair[6]
    six.offer_contacts(handed[0].nodes, 0.1)
    pings = six.datagrams_to_send()
    assert {a for _, a in pings} == {n.addr for n in V6_CONTACTS} and len(six.table) == 0
    data, addr = pings[0]
    answer(six, addr, data, 0.2)
    assert len(six.table) == 1 and six.table.get(b"\x77" * 20) is not None


def test_want_only_while_the_sibling_is_short_of_contacts() -> None:
    pair = dual()
    four, six = pair[4], pair[6]
    four.start_lookup(b"\x11" * 20, 0.0, seeds=[("127.0.9.1", 6881)])
    (q_short,) = [krpc.decode(d) for d, _ in four.datagrams_to_send()]
    assert isinstance(q_short, GetPeersQuery) and q_short.want == {b"n4", b"n6"}
    six.preload_contacts([NodeInfo(bytes([0x30 + i]) * 20, ("::1", 8000 + i))
                          for i in range(LOCAL.k)], 0.0)
    assert not six.needs_contacts()
    four.start_lookup(b"\x12" * 20, 0.0, seeds=[("127.0.9.2", 6881)])
    (q_full,) = [krpc.decode(d) for d, _ in four.datagrams_to_send()]
    assert isinstance(q_full, GetPeersQuery) and q_full.want == frozenset()
    assert b"want" not in krpc.encode(q_full)  # the family of the query says it all


def test_the_nodes_of_a_pair_share_operation_ids() -> None:
    pair = dual()
    a = pair[4].start_lookup(b"\x11" * 20, 0.0)
    b = pair[6].start_lookup(b"\x11" * 20, 0.0)
    c = pair[4].ping(("127.0.9.1", 6881), 0.0)
    assert len({a, b, c}) == 3
