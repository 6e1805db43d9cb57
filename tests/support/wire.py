"""Wire: a handful of DhtNodes delivering datagrams to each other on a fake clock (constant 10 ms
latency), driven exactly by the node's contract; for tests of the core's parts that need real
peers (lookups, announces, refresh, custom queries) without the simulator."""

from __future__ import annotations

import random

from dhtviewer.dht import events as ev
from dhtviewer.dht.node import DhtNode
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

    def flush(self, addr: tuple[str, int]) -> None:
        node = self.nodes[addr]
        for data, dst in node.datagrams_to_send():
            self.seq += 1
            self.queue.append((self.now + 0.01, self.seq, data, addr, dst))
        self.events[addr].extend(node.drain_events())

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
