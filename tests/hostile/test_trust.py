"""Trust: what an attacker cannot make the node do (issue 11).

* Reflection and poisoning: a spoofed query puts nobody in the routing table; only nodes that
  answered us are ever handed out; verification pings are bounded per address and in total.
* Eclipse and Sybil: one host with many made-up ids on its own /24 gets one place in a bucket
  and one among a lookup's K closest (and our announce), not eight.
"""

from __future__ import annotations

import random
from dataclasses import replace

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import subnet_key
from dhtviewer.dht.messages import (
    Addr,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    NodeInfo,
    PingQuery,
    Query,
    Response,
)
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import bep42_id, distance, random_id
from dhtviewer.dht.settings import DhtSettings
from tests.hostile.invariants import check_invariants, drain

DEFAULTS = DhtSettings()
OWN_ID = bytes.fromhex("5a" * 20)
VICTIM: Addr = ("8.8.8.8", 53)


def honest(n: int, seed: int = 3) -> list[NodeInfo]:
    """``n`` public contacts, each in its own /24, with BEP 42 ids."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ip = f"23.{i // 200}.{i % 200}.{7 + i % 13}"
        out.append(NodeInfo(bep42_id(ip, rng), (ip, 6881 + i)))
    return out


def make(settings: DhtSettings = DEFAULTS, contacts: int = 40) -> DhtNode:
    node = DhtNode(rng=random.Random(1), now=0.0, node_id=OWN_ID, settings=settings)
    node.preload_contacts(honest(contacts), 0.0)
    return node


def listed(msg: Message) -> set[Addr]:
    if not isinstance(msg, Response):
        return set()
    return {n.addr for n in (*msg.nodes, *msg.nodes6)}


# --- reflection and poisoning -------------------------------------------------------------------
def test_a_spoofed_ping_is_never_handed_out_and_costs_its_victim_two_datagrams() -> None:
    node = make()
    rng = random.Random(7)
    # An id next to ours: an answer would get it a place, so it is worth one verification ping.
    spoofed_id = OWN_ID[:-1] + bytes([OWN_ID[-1] ^ 1])
    sent: list[tuple[Message, Addr]] = []

    def deliver(msg: Message, src: Addr, now: float) -> None:
        node.receive(krpc.encode(msg), src, now)
        sent.extend((krpc.decode(d), a) for d, a in drain(node))

    size = node.routing_size()
    deliver(PingQuery(b"sp", spoofed_id), VICTIM, 1.0)
    assert node.table.get(spoofed_id) is None and node.routing_size() == size
    # Others ask about the spoofed id and around it, lookups run, timers fire for ten minutes.
    now = 1.0
    for i in range(600):
        now += 1.0
        asker: Addr = (f"31.0.{i % 250}.9", 7000)
        target = spoofed_id if i % 2 else random_id(rng)
        q = FindNodeQuery(b"f%d" % i, random_id(rng), target=target) if i % 3 else GetPeersQuery(
            b"g%d" % i, random_id(rng), info_hash=target
        )
        deliver(q, asker, now)
        if i % 100 == 0:
            node.start_lookup(spoofed_id, now, kind="find_node")
        node.handle_timer(now)
        sent.extend((krpc.decode(d), a) for d, a in drain(node))
    check_invariants(node, now)
    to_victim = [m for m, a in sent if a == VICTIM]
    assert len(to_victim) == 2  # the reply to its ping, one verification ping; nothing more
    assert sum(isinstance(m, PingQuery) for m in to_victim) == 1
    assert all(VICTIM not in listed(m) for m, _ in sent)
    assert not any(isinstance(m, Query) and a == VICTIM and not isinstance(m, PingQuery)
                   for m, a in sent)  # never asked by a lookup either


def test_a_spoofed_query_flood_sends_a_bounded_number_of_verification_pings() -> None:
    s = DEFAULTS
    node = DhtNode(rng=random.Random(1), now=0.0, node_id=OWN_ID, settings=s)
    rng = random.Random(9)
    pings = 0
    seconds = 10.0
    for i in range(10_000):  # 10,000 addresses, 1,000 queries per second
        now = i * seconds / 10_000
        src = (f"45.{i // 250 % 250}.{i % 250}.{1 + i // 62500}", 1024 + i % 60000)
        node.receive(krpc.encode(PingQuery(b"q", random_id(rng))), src, now)
        pings += sum(
            1 for d, a in node.datagrams_to_send() if a == src and isinstance(krpc.decode(d), Query)
        )
        node.drain_events()
    bound = s.verify_rate * seconds + s.verify_rate
    assert 0 < pings <= bound, pings
    stats = node.stats(seconds)
    assert stats["verify_pings"] == pings and stats["verify_pings_skipped"] > 9_000
    assert node.routing_size() == 0  # none of them answered: none of them is in
    check_invariants(node, seconds)


def test_a_second_spoofed_ping_within_the_interval_gets_no_second_verification() -> None:
    node = make(contacts=0)
    for t in (1.0, 20.0, 200.0):
        node.receive(krpc.encode(PingQuery(b"sp", b"\x42" * 20)), VICTIM, t)
        out = [krpc.decode(d) for d, a in node.datagrams_to_send() if a == VICTIM]
        assert sum(isinstance(m, PingQuery) for m in out) == (1 if t == 1.0 else 0)
    later = 1.0 + DEFAULTS.verify_interval
    node.receive(krpc.encode(PingQuery(b"sp", b"\x42" * 20)), VICTIM, later)
    out = [krpc.decode(d) for d, a in node.datagrams_to_send() if a == VICTIM]
    assert sum(isinstance(m, PingQuery) for m in out) == 1  # a few minutes on, again once


# --- eclipse and Sybil --------------------------------------------------------------------------
def test_one_host_gets_one_place_among_a_lookups_closest_and_our_announce() -> None:
    node = make(contacts=16)
    target = random_id(random.Random(11))
    # The hostile host answers from 1.2.3.0/24 with eight made-up ids right next to the target.
    sybils = [
        NodeInfo(bytes(a ^ b for a, b in zip(target, bytes(19) + bytes([i]), strict=True)),
                 (f"1.2.3.{10 + i}", 40000 + i))
        for i in range(1, 9)
    ]
    sybil_net = subnet_key("1.2.3.1")
    queried: list[Addr] = []
    lid = node.announce(target, 6881, 0.0)
    now = 0.0
    events: list[ev.Event] = []
    for _ in range(200):
        out = node.datagrams_to_send()
        events += node.drain_events()
        if not out:
            now += 1.0
            node.handle_timer(now)
            continue
        for data, addr in out:
            q = krpc.decode(data)
            if not isinstance(q, Query):
                continue
            queried.append(addr)
            is_sybil = subnet_key(addr[0]) == sybil_net
            sender = next((s.id for s in sybils if s.addr == addr), None) if is_sybil else None
            if sender is None:
                sender = next((h.id for h in honest(16) if h.addr == addr), None)
            assert sender is not None
            reply = Response(q.tid, sender, nodes=tuple(sybils), token=b"tok")
            node.receive(krpc.encode(reply), addr, now + 0.05)
        now += 0.1
        if lid not in node.lookups:
            break
    events += node.drain_events()
    (fin,) = [e for e in events if isinstance(e, ev.LookupFinished)]
    (ann,) = [e for e in events if isinstance(e, ev.AnnounceFinished)]
    assert sum(subnet_key(a[0]) == sybil_net for _, a in fin.closest) == 1
    assert sum(subnet_key(a[0]) == sybil_net for a in ann.stored_at) <= 1
    # Only the nearest of the eight was ever asked (get_peers, then announce_peer).
    assert len({a for a in queried if subnet_key(a[0]) == sybil_net}) == 1


def test_one_subnet_gets_one_place_per_bucket_unless_local() -> None:
    ids = [random_id(random.Random(i)) for i in range(8)]
    public = DhtNode(rng=random.Random(1), now=0.0, node_id=OWN_ID, settings=DEFAULTS)
    for i, node_id in enumerate(ids):
        public.preload_contacts([NodeInfo(node_id, (f"1.2.3.{i + 1}", 6881))], 0.0)
    assert public.routing_size() == 1 and public.counters.refused_subnet == 7
    # A local testnet: loopback addresses share 127.0.0.0/24 and are all welcome...
    local = DhtSettings(allow_local=True)
    testnet = DhtNode(rng=random.Random(1), now=0.0, node_id=OWN_ID, settings=local)
    testnet.preload_contacts([NodeInfo(n, (f"127.0.0.{i + 2}", 6881)) for i, n in enumerate(ids)],
                             0.0)
    assert testnet.routing_size() == 8
    # ...unless the rule is forced on (the simulated Mainline spreads its nodes over /24s).
    forced = DhtNode(rng=random.Random(1), now=0.0, node_id=OWN_ID,
                     settings=replace(local, restrict_local_subnets=True))
    forced.preload_contacts([NodeInfo(n, (f"127.0.0.{i + 2}", 6881)) for i, n in enumerate(ids)],
                            0.0)
    assert forced.routing_size() == 1
    off = DhtNode(rng=random.Random(1), now=0.0, node_id=OWN_ID,
                  settings=replace(DEFAULTS, restrict_subnets=False))
    off.preload_contacts([NodeInfo(n, (f"1.2.3.{i + 1}", 6881)) for i, n in enumerate(ids)], 0.0)
    assert off.routing_size() == 8


def test_an_answer_beats_a_spoofed_query_from_the_same_subnet() -> None:
    node = make(contacts=0)
    real = NodeInfo(random_id(random.Random(5)), ("1.2.3.4", 6881))
    # A spoofed query claims 1.2.3.5 (same /24): it waits as an unverified candidate...
    node.receive(krpc.encode(PingQuery(b"sp", random_id(random.Random(6)))), ("1.2.3.5", 6881), 0.0)
    node.datagrams_to_send()
    # ...and cannot keep the real node, which answers a query of ours, out.
    node.preload_contacts([real], 1.0)
    assert node.table.get(real.id) is not None
    assert distance(real.id, real.id) == 0
