"""The sans-IO core driven by hand: a dozen DhtNodes, no sockets, no event loop, no real clock.

    python examples/sans_io.py

``DhtNode`` does no I/O of its own. Whoever drives it follows one contract:

* every datagram that arrives goes to ``node.receive(data, addr, now)``;
* ``node.handle_timer(now)`` is called once ``now >= node.next_deadline()``;
* after each of those calls and after each API call (``ping``, ``bootstrap``,
  ``start_lookup``...), what ``node.datagrams_to_send()`` returns is sent and
  ``node.drain_events()`` is read.

Here the "network" is a priority queue of datagrams in flight with a fixed latency, and the
clock is a float that jumps from one thing to the next, so the run is instant and the same every
time. The asyncio transport (``dhtviewer.net.transport``) and the simulator
(``dhtviewer.sim``) drive the very same nodes the same way.
"""

from __future__ import annotations

import heapq
import itertools
import random

from dhtviewer import DhtNode, DhtSettings, events
from dhtviewer.dht.messages import Addr

LATENCY = 0.02  # seconds, each way


class HandDriven:
    """A tiny deterministic network of nodes on made-up loopback addresses."""

    def __init__(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        settings = DhtSettings(allow_local=True)  # every address here is a loopback one
        self.now = 0.0
        self.nodes: dict[Addr, DhtNode] = {}
        for i in range(n):
            addr = (f"127.0.160.{i + 1}", 6881)
            self.nodes[addr] = DhtNode(rng=random.Random(rng.getrandbits(64)), now=self.now,
                                       settings=settings)
        self.addr_of = {node: addr for addr, node in self.nodes.items()}
        self.in_flight: list[tuple[float, int, bytes, Addr, Addr]] = []
        self.seq = itertools.count()
        self.log: list[events.Event] = []

    def flush(self, node: DhtNode) -> None:
        """What the node wants sent goes on the wire; its events go to the log."""
        src = self.addr_of[node]
        for data, dst in node.datagrams_to_send():
            heapq.heappush(self.in_flight, (self.now + LATENCY, next(self.seq), data, src, dst))
        self.log.extend(node.drain_events())

    def run_until(self, end: float) -> None:
        """Deliver datagrams and fire timers in time order until ``end`` (or nothing is left)."""
        while True:
            deadlines = [(d, node) for node in self.nodes.values()
                         if (d := node.next_deadline()) is not None]
            next_timer = min(deadlines, key=lambda x: x[0], default=None)
            next_packet = self.in_flight[0][0] if self.in_flight else None
            times = [t for t in (next_packet, next_timer[0] if next_timer else None)
                     if t is not None]
            if not times or min(times) > end:
                self.now = end
                return
            when = min(times)
            self.now = max(self.now, when)
            if next_packet == when:
                _, _, data, src, dst = heapq.heappop(self.in_flight)
                node = self.nodes.get(dst)
                if node is not None:  # nobody at that address: the datagram is lost
                    node.receive(data, src, self.now)
                    self.flush(node)
            else:
                assert next_timer is not None
                node = next_timer[1]
                node.handle_timer(self.now)
                self.flush(node)


def main() -> int:
    net = HandDriven(12, seed=160)
    nodes = list(net.nodes.values())
    first = net.addr_of[nodes[0]]
    # Everyone bootstraps from the first node (an API call, then flush: the driving contract).
    for node in nodes[1:]:
        node.bootstrap([first], net.now)
        net.flush(node)
    net.run_until(30.0)
    sizes = [node.routing_size() for node in nodes]
    print(f"after 30 virtual seconds: routing tables of {min(sizes)}..{max(sizes)} nodes")

    asker, target = nodes[-1], nodes[3].node_id
    lookup_id = asker.start_lookup(target, net.now, kind="find_node")
    net.flush(asker)
    net.run_until(net.now + 10.0)
    mine = [e for e in net.log if getattr(e, "lookup_id", None) == lookup_id]
    for e in mine:
        if isinstance(e, events.LookupQuerySent):
            print(f"  {e.at:7.3f}s asked    {e.addr[0]} (depth {e.depth})")
        elif isinstance(e, events.LookupResponse):
            print(f"  {e.at:7.3f}s answered {e.addr[0]} after {e.rtt * 1000:.0f} ms, "
                  f"{e.nodes} new contacts")
    done = next(e for e in mine if isinstance(e, events.LookupFinished))
    print(f"find_node settled in {done.elapsed * 1000:.0f} virtual ms: asked {done.queried}, "
          f"{done.responded} answered; closest is {done.closest[0][0].hex()[:16]}… "
          f"({'the target' if done.closest[0][0] == target else 'not the target'})")
    return 0 if done.closest[0][0] == target else 1


if __name__ == "__main__":
    raise SystemExit(main())
