"""Wire: a handful of DhtNodes delivering datagrams to each other on a fake clock (constant 10 ms
latency), driven exactly by the node's contract; for tests of the core's parts that need real
peers (lookups, announces, refresh, custom queries) without the simulator. A dual-stack host
(``add_dual``) is a pair of nodes, one per family; the wire routes what one learns for the other
(``OtherFamilyContacts``) as a session does."""

from __future__ import annotations

import random

from dhtviewer.dht import events as ev
from dhtviewer.dht.families import Sibling, dual_stack
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.op_ids import OpIds
from dhtviewer.dht.settings import DhtSettings

LOCAL = DhtSettings(allow_local=True)


class Wire:
    """Delivers datagrams between nodes on a fake clock (constant 10 ms latency)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[tuple[str, int], DhtNode] = {}
        self.events: dict[tuple[str, int], list[ev.Event]] = {}
        self.dead: set[tuple[str, int]] = set()
        self.queue: list[tuple[float, int, bytes, tuple[str, int], tuple[str, int]]] = []
        self.seq = 0
        self.siblings: dict[tuple[str, int], tuple[str, int]] = {}

    def add(
        self, addr: tuple[str, int], seed: int, settings: DhtSettings = LOCAL, **kwargs: object
    ) -> DhtNode:
        node = DhtNode(
            rng=random.Random(seed),
            secrets=random.Random(~seed),
            now=self.now,
            settings=settings,
            **kwargs,  # type: ignore[arg-type]
        )
        self.nodes[addr] = node
        self.events[addr] = []
        return node

    def add_dual(
        self,
        addr4: tuple[str, int],
        addr6: tuple[str, int],
        seed: int,
        settings: DhtSettings = LOCAL,
        **kwargs: object,
    ) -> dict[int, DhtNode]:
        """A dual-stack host: an IPv4 node at ``addr4`` and an IPv6 node at ``addr6`` (same id,
        shared operation ids), each seeing the other through its ``Sibling``."""
        rng = random.Random(seed)
        node_id = rng.randbytes(20)
        ops = OpIds()

        def make(family: int, sibling: Sibling) -> DhtNode:
            return DhtNode(
                rng=random.Random(rng.getrandbits(64)), now=self.now, settings=settings,
                node_id=node_id, family=family, sibling=sibling, op_ids=ops,
                **kwargs,  # type: ignore[arg-type]
            )

        pair = dual_stack(make)
        for addr, fam in ((addr4, 4), (addr6, 6)):
            self.nodes[addr] = pair[fam]
            self.events[addr] = []
        self.siblings[addr4], self.siblings[addr6] = addr6, addr4
        return pair

    def flush(self, addr: tuple[str, int]) -> None:
        node = self.nodes[addr]
        for data, dst in node.datagrams_to_send():
            self.seq += 1
            self.queue.append((self.now + 0.01, self.seq, data, addr, dst))
        events = node.drain_events()
        self.events[addr].extend(events)
        other = self.siblings.get(addr)
        for e in events:
            if isinstance(e, ev.OtherFamilyContacts) and other is not None:
                self.nodes[other].offer_contacts(e.nodes, self.now)

    def run(self, until: float) -> None:
        while True:
            for addr in self.nodes:
                self.flush(addr)
            deadlines = [(n.next_deadline(), a) for a, n in self.nodes.items()]
            nxt_timer = min((d for d, _ in deadlines if d is not None), default=None)
            nxt_msg = min(self.queue)[0] if self.queue else None
            nxt = min(t for t in (nxt_timer, nxt_msg, until + 1) if t is not None)
            if nxt > until:
                self.now = until
                return
            self.now = nxt
            if nxt_msg is not None and nxt_msg <= self.now:
                item = min(self.queue)
                self.queue.remove(item)
                _, _, data, src, dst = item
                if dst in self.nodes and dst not in self.dead:
                    self.nodes[dst].receive(data, src, self.now)
            for d, a in deadlines:
                if d is not None and d <= self.now:
                    self.nodes[a].handle_timer(self.now)


def build_network(wire: Wire, n: int) -> list[tuple[str, int]]:
    addrs = [(f"127.0.{40 + i // 200}.{i % 200 + 1}", 6881) for i in range(n)]
    for i, a in enumerate(addrs):
        node = wire.add(a, seed=100 + i)
        seeds = addrs[max(0, i - 3) : i] or []
        if seeds:
            node.bootstrap(seeds, wire.now)
        wire.run(wire.now + 0.2)
    wire.run(wire.now + 10)
    return addrs
