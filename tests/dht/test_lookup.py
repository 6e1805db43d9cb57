"""Lookup: convergence on a scripted Kademlia network, alpha and the window, slow, resent and
failed nodes, the wait for slow nodes while no peer is found, the neighbourhood probe, paths."""

from __future__ import annotations

import random
from collections import defaultdict

from dhtviewer.dht.lookup import ANSWERED, FAILED, INFLIGHT, MARGIN, NEW, SLOW, Lookup
from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node_id import distance, random_id, shared_prefix_bits

K = 8


class ScriptedNetwork:
    """N nodes, each with a proper Kademlia table (up to K contacts per shared-prefix bucket)."""

    def __init__(self, n: int, seed: int, dead_fraction: float = 0.0) -> None:
        rng = random.Random(seed)
        self.nodes = [
            NodeInfo(random_id(rng), (f"10.0.{i // 250}.{i % 250 + 1}", 6881)) for i in range(n)
        ]
        self.by_addr = {n.addr: n for n in self.nodes}
        self.dead = {n.addr for n in rng.sample(self.nodes, int(n * dead_fraction))}
        self.tables: dict[bytes, list[NodeInfo]] = {}
        for me in self.nodes:
            buckets: dict[int, list[NodeInfo]] = defaultdict(list)
            for other in rng.sample(self.nodes, len(self.nodes)):
                if other.id == me.id:
                    continue
                b = buckets[shared_prefix_bits(me.id, other.id)]
                if len(b) < K:
                    b.append(other)
            self.tables[me.id] = [x for b in buckets.values() for x in b]

    def answer(self, addr: tuple[str, int], target: bytes) -> list[NodeInfo]:
        me = self.by_addr[addr]
        return sorted(self.tables[me.id], key=lambda x: distance(x.id, target))[:K]

    def true_closest(self, target: bytes, live_only: bool = True) -> list[bytes]:
        pool = [n for n in self.nodes if not (live_only and n.addr in self.dead)]
        return [n.id for n in sorted(pool, key=lambda x: distance(x.id, target))[:K]]


def run(net: ScriptedNetwork, lk: Lookup, max_rounds: int = 200) -> int:
    """Answer every in-flight query once per round (dead nodes go slow, then fail)."""
    rounds = 0
    now = 0.0
    pending: list[tuple[tuple[str, int], int]] = []
    while not lk.is_done() and rounds < max_rounds:
        for cand in lk.next_queries():
            lk.mark_sent(cand, now)
            pending.append((cand.addr, rounds))
        rounds += 1
        now += 0.1
        still: list[tuple[tuple[str, int], int]] = []
        for addr, sent_round in pending:
            if addr in net.dead:
                if rounds - sent_round == 2:
                    lk.on_slow(addr)
                if rounds - sent_round >= 5:
                    lk.on_failure(addr)
                else:
                    still.append((addr, sent_round))
                continue
            node = net.by_addr[addr]
            cand = lk.on_response(addr, node.id, now, token=b"tok")
            assert cand is not None
            lk.add_nodes(net.answer(addr, lk.target), node.id, cand.depth + 1)
        pending = still
    return rounds


def start(net: ScriptedNetwork, target: bytes, seed_from: NodeInfo, alpha: int = 4) -> Lookup:
    lk = Lookup(1, target, "find_node", 0.0, k=K, alpha=alpha)
    lk.add_nodes(net.answer(seed_from.addr, target), None, 0)
    return lk


def test_converges_to_true_closest_nodes() -> None:
    net = ScriptedNetwork(600, seed=1)
    rng = random.Random(2)
    for _ in range(10):
        target = random_id(rng)
        lk = start(net, target, rng.choice(net.nodes))
        run(net, lk)
        assert lk.is_done()
        assert [c.id for c in lk.closest()] == net.true_closest(target)
        assert lk.queried < 60  # it does not crawl the whole network


def test_dead_nodes_do_not_prevent_convergence() -> None:
    net = ScriptedNetwork(600, seed=3, dead_fraction=0.2)
    rng = random.Random(4)
    hits = 0
    for _ in range(10):
        target = random_id(rng)
        lk = start(net, target, rng.choice(net.nodes))
        run(net, lk)
        assert lk.is_done()
        got = [c.id for c in lk.closest()]
        hits += len(set(got) & set(net.true_closest(target)))
        assert all(c.state != NEW or c.dist > lk.closest()[-1].dist for c in lk.candidates())
    assert hits >= 75  # at least ~94% of the true live 8-closest found


def test_alpha_bounds_queries_in_flight() -> None:
    net = ScriptedNetwork(200, seed=5)
    lk = start(net, random_id(random.Random(6)), net.nodes[0], alpha=3)
    first = lk.next_queries()
    assert len(first) == 3
    for c in first:
        lk.mark_sent(c, 0.0)
    assert lk.next_queries() == []
    lk.on_slow(first[0].addr)  # a slow query frees its slot
    assert len(lk.next_queries()) == 1


def ids_at(*firsts: int) -> list[NodeInfo]:
    """Nodes whose ids start with the given byte (distance order from the zero target)."""
    return [NodeInfo(bytes([b]) + b"\x00" * 19, ("10.0.0.1", 7000 + b)) for b in firsts]


def test_queries_overtaken_by_nearer_candidates_free_their_slots() -> None:
    """alpha counts the queries in flight to the K nearest candidates only: when a reply brings
    K nodes nearer than the ones asked, those are asked at once (libtorrent's aggressive
    lookups), not after the stale queries come back."""
    lk = Lookup(1, b"\x00" * 20, "find_node", 0.0, k=K, alpha=2)
    far = ids_at(200, 201, 202)
    lk.add_nodes(far, None, 0)
    first = lk.next_queries()
    assert [c.addr for c in first] == [n.addr for n in far[:2]]
    for c in first:
        lk.mark_sent(c, 0.0, 1.0)
    lk.on_response(far[0].addr, far[0].id, 0.05, None)
    assert [c.addr for c in lk.next_queries()] == [far[2].addr]  # one slot: far[1] holds one
    near = ids_at(*range(1, K + 1))
    lk.add_nodes(near, far[0].id, 1)
    # far[1] is no longer among the K nearest: both slots go to the nearest new ones
    assert [c.addr for c in lk.next_queries()] == [n.addr for n in near[:2]]


def test_one_candidate_past_the_k_nearest_is_asked_too() -> None:
    lk = Lookup(1, b"\x00" * 20, "find_node", 0.0, k=K, alpha=20)
    nodes = ids_at(*range(1, K + 5))
    lk.add_nodes(nodes, None, 0)
    assert [c.addr for c in lk.next_queries()] == [n.addr for n in nodes[: K + MARGIN]]


def settle(lk: Lookup, nodes: list[NodeInfo], silent: set[int]) -> None:
    """Ask every candidate the lookup wants; all but the ``silent`` indexes answer at 0.05."""
    for c in lk.next_queries():
        lk.mark_sent(c, 0.0, 1.0)
    for i, n in enumerate(nodes):
        if i not in silent and lk.candidate(n.addr) is not None:
            lk.on_response(n.addr, n.id, 0.05, b"tok")


def test_silent_node_among_the_k_nearest_is_resent_once_the_lookup_settles() -> None:
    lk = Lookup(1, b"\x00" * 20, "get_peers", 0.0, k=K, alpha=20)
    nodes = ids_at(*range(1, K + 2))
    lk.add_nodes(nodes, None, 0)
    settle(lk, nodes, silent={0, 1, 8})
    nearest = lk.at_checkpoint(nodes[0].addr)
    assert nearest is not None and lk.at_checkpoint(nodes[0].addr) is None  # only once
    assert lk.should_resend(nearest)  # 6 of the K nearest answered: settling
    lk.mark_resent(nearest)
    assert not lk.should_resend(nearest)  # once
    past_k = lk.at_checkpoint(nodes[8].addr)
    assert past_k is not None and not lk.should_resend(past_k)  # not among the K nearest
    # the resent node is slow only when both its queries passed the short timeout
    sent_before = lk.sent
    assert lk.on_slow(nodes[0].addr) is None
    assert nearest.state == INFLIGHT
    assert lk.on_slow(nodes[0].addr) is nearest and nearest.state == SLOW
    assert lk.sent == sent_before  # resends are counted when sent, not when slow
    # an answer to either query still counts
    assert lk.on_response(nodes[0].addr, nodes[0].id, 0.9, None) is nearest
    assert nearest.state == ANSWERED


def test_no_resend_while_the_lookup_is_still_converging() -> None:
    lk = Lookup(1, b"\x00" * 20, "get_peers", 0.0, k=K, alpha=20)
    nodes = ids_at(*range(1, K + 2))
    lk.add_nodes(nodes, None, 0)
    settle(lk, nodes, silent={0, 1, 2, 3})  # only 5 of the K nearest answered
    cand = lk.at_checkpoint(nodes[0].addr)
    assert cand is not None and not lk.should_resend(cand)


def test_empty_get_peers_waits_for_slow_nodes_among_the_k_nearest() -> None:
    """An empty answer is final only when nobody nearer could still give one: a get_peers
    lookup without peers waits for its slow nodes among the K nearest until they answer or
    fail; with a peer in hand, or for find_node, they are overtaken."""
    for kind, peers, waits in (("get_peers", False, True), ("get_peers", True, False),
                               ("find_node", False, False)):
        lk = Lookup(1, b"\x00" * 20, kind, 0.0, k=K, alpha=20)
        nodes = ids_at(*range(1, K + 3))
        lk.add_nodes(nodes, None, 0)
        settle(lk, nodes, silent={0})
        if peers:
            lk.add_peers([("10.9.9.9", 1)], 0.05)
        assert not lk.is_done()  # in flight: it holds the lookup open in every case
        lk.on_slow(nodes[0].addr)
        for c in lk.next_queries():  # the slot it freed
            lk.mark_sent(c, 0.3, 1.0)
            lk.on_response(c.addr, c.id or b"", 0.35, None)
        assert lk.is_done() is not waits, (kind, peers)
        if waits:
            lk.on_failure(nodes[0].addr)  # its hard timeout
            assert lk.is_done()


def test_neighbourhood_probe_asks_the_edges_side_for_the_other_half() -> None:
    """Once the K nearest are all asked and K - 2 answered, one answered node on the edge's
    side is asked (once) for the target with the first bit the edge differs in flipped."""
    target = b"\x00" * 20
    lk = Lookup(1, target, "get_peers", 0.0, k=K, alpha=20)
    # shared-prefix lengths with the target: the edge (K-th) shares 8 bits (first byte 0,
    # second byte 0x80); two answered nodes share exactly 8 bits as well
    firsts = [b"\x00\x01", b"\x00\x02", b"\x00\x04", b"\x00\x08", b"\x00\x10", b"\x00\x20",
              b"\x00\x81", b"\x00\x82", b"\x00\xc0"]
    nodes = [NodeInfo(f + b"\x00" * 18, ("10.0.1.1", 8000 + i)) for i, f in enumerate(firsts)]
    lk.add_nodes(nodes, None, 0)
    for c in lk.next_queries()[:K - 1]:
        lk.mark_sent(c, 0.0, 1.0)
    assert lk.probe() is None  # the K-th is not asked yet
    for c in lk.next_queries():
        lk.mark_sent(c, 0.0, 1.0)
    for n in nodes[:5]:
        lk.on_response(n.addr, n.id, 0.05, None)
    assert lk.probe() is None  # only 5 of the K nearest answered
    lk.on_response(nodes[6].addr, nodes[6].id, 0.06, None)
    probe = lk.probe()
    assert probe is not None
    asked, probe_target = probe
    assert asked.addr == nodes[6].addr  # answered, on the edge's side (0x80 in byte two)
    assert probe_target == b"\x00\x80" + b"\x00" * 18
    assert lk.probe() is None  # once


def test_slow_node_does_not_block_completion() -> None:
    nodes = [NodeInfo(bytes([i]) + b"\x00" * 19, ("10.0.0.1", 7000 + i)) for i in range(1, 10)]
    lk = Lookup(1, b"\x00" * 20, "find_node", 0.0, k=8, alpha=8)
    lk.add_nodes(nodes, None, 0)
    first = lk.next_queries()
    assert [c.addr for c in first] == [n.addr for n in nodes[:8]]
    for c in first:
        lk.mark_sent(c, 0.0)
    for n in nodes[1:8]:
        lk.on_response(n.addr, n.id, 0.05, None)
    assert not lk.is_done()  # the nearest is still in flight
    # a slot is free: the 9th (one past the K nearest) is asked
    assert [c.addr for c in lk.next_queries()] == [nodes[8].addr]
    lk.mark_sent(lk.next_queries()[0], 0.05)
    lk.on_response(nodes[8].addr, nodes[8].id, 0.1, None)
    assert not lk.is_done()  # the nearest, in flight, still holds the lookup open
    lk.on_slow(nodes[0].addr)
    # past the short timeout it no longer does (find_node: nothing to wait for)
    assert lk.is_done()
    assert [c.id for c in lk.closest()] == [n.id for n in nodes[1:]]
    # a late answer from the slow node is still taken and it becomes the nearest
    lk.on_response(nodes[0].addr, nodes[0].id, 2.0, None)
    assert lk.closest()[0].id == nodes[0].id


def test_records_referral_path_and_outcomes() -> None:
    net = ScriptedNetwork(300, seed=7, dead_fraction=0.1)
    target = random_id(random.Random(8))
    lk = start(net, target, net.nodes[1])
    run(net, lk)
    by_id = {c.id: c for c in lk.candidates() if c.id is not None}
    asked = [c for c in lk.candidates() if c.state in (ANSWERED, FAILED, SLOW)]
    assert asked
    for c in asked:
        assert c.sent_at is not None
        if c.depth == 0:
            assert c.referrer is None
        else:
            parent = by_id[c.referrer]  # type: ignore[index]
            assert parent.state == ANSWERED and parent.depth == c.depth - 1
        if c.state == ANSWERED:
            assert c.rtt is not None and c.rtt >= 0
    assert lk.queried == len(asked)


def test_seed_without_id_is_asked_first_and_resorted() -> None:
    lk = Lookup(1, b"\xff" * 20, "find_node", 0.0, k=8, alpha=1)
    lk.add_nodes([NodeInfo(b"\x01" * 20, ("10.0.0.5", 1))], None, 0)
    assert lk.add_seed(("10.0.0.9", 6881))
    assert not lk.add_seed(("10.0.0.9", 6881))
    first = lk.next_queries()
    assert [c.addr for c in first] == [("10.0.0.9", 6881)]
    lk.mark_sent(first[0], 0.0)
    cand = lk.on_response(("10.0.0.9", 6881), b"\xfe" * 20, 0.1, None)
    assert cand is not None and cand.dist == distance(b"\xfe" * 20, b"\xff" * 20)
    assert lk.candidates()[0].id == b"\xfe" * 20


def test_peers_are_deduplicated_and_counted() -> None:
    lk = Lookup(1, b"\x00" * 20, "get_peers", 0.0, k=8, alpha=4)
    a, b = ("10.1.1.1", 1000), ("10.1.1.2", 1000)
    assert lk.add_peers([a, b], 1.5) == [a, b]
    assert lk.add_peers([a], 2.0) == []
    assert lk.peers == {a: 2, b: 1}
    assert lk.first_peer_at == 1.5


def test_reply_from_unknown_address_is_ignored() -> None:
    lk = Lookup(1, b"\x00" * 20, "get_peers", 0.0, k=8, alpha=4)
    assert lk.on_response(("10.9.9.9", 1), b"\x01" * 20, 0.0, None) is None
    assert lk.on_failure(("10.9.9.9", 1)) is None


def test_candidate_list_is_bounded() -> None:
    rng = random.Random(9)
    lk = Lookup(1, b"\x00" * 20, "find_node", 0.0, k=8, alpha=4, max_candidates=100)
    lk.add_nodes([NodeInfo(random_id(rng), ("10.2.0.1", 1000 + i)) for i in range(500)], None, 0)
    assert len(lk.candidates()) == 100
    # the nearest ones were kept
    dists = sorted(c.dist for c in lk.candidates())
    assert dists == [c.dist for c in lk.candidates()]
