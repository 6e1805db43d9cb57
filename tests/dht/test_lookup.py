"""Lookup: convergence on a scripted Kademlia network, alpha, slow and failed nodes, paths."""

from __future__ import annotations

import random
from collections import defaultdict

from dhtviewer.dht.lookup import ANSWERED, FAILED, NEW, SLOW, Lookup
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
    lk.on_slow(nodes[0].addr)
    # past the short timeout it no longer holds the lookup open: the 9th is asked instead
    assert [c.addr for c in lk.next_queries()] == [nodes[8].addr]
    lk.mark_sent(lk.next_queries()[0], 1.0)
    lk.on_response(nodes[8].addr, nodes[8].id, 1.05, None)
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
