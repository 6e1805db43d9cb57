"""SimNetwork: a discrete-event network of many sans-IO DhtNodes on a virtual clock.

Owns the virtual clock, the event heap (datagram deliveries and node timers), the per-link
latency, random loss and dead nodes. Nodes are driven exactly as the DhtNode driving contract
says: after every receive, timer or API call the network collects the node's datagrams, drains
its events and re-reads its next deadline. No packet touches a socket; addresses are dictionary
keys, drawn from public IPv4 space so that the default Mainline settings (no private addresses,
BEP 42 ids) work unchanged.

Everything is deterministic given the seed: one ``random.Random`` for the network (addresses,
latency jitter, loss) and two derived from it per node (its public randomness and its secrets).

The inner loop is kept lean because benchmarks run 10,000 nodes: heap entries are plain tuples,
timers use lazy invalidation (the latest deadline per node is remembered; older heap entries are
skipped when popped) and events of nodes nobody watches are dropped at once.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import bep42_id, distance
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.sim.latency import LatencyModel, LogNormalLatency
from dhtviewer.sim.seeding import IdIndex

T = TypeVar("T")

# A node whose deadline is still in the past right after handle_timer would make the loop spin at
# one instant forever; its timer is pushed this far ahead instead (and counted in stats).
_STALL_STEP = 0.05
_DEFAULT_MAX_TIME = 3600.0


class SimTimeoutError(TimeoutError):
    """A helper that runs the simulation until something happens hit its virtual time limit."""


@dataclass(slots=True, eq=False)
class SimNode:
    """One simulated host: its DhtNode, its address, whether it is up, and its event log when
    watched (None otherwise)."""

    index: int
    addr: Addr
    dht: DhtNode
    alive: bool = True
    events: list[ev.Event] | None = None

    @property
    def node_id(self) -> bytes:
        return self.dht.node_id


@dataclass(slots=True)
class SimStats:
    """Network-wide counters. ``datagrams``/``bytes``: everything nodes sent (dropped included)."""

    datagrams: int = 0
    bytes: int = 0
    delivered: int = 0
    dropped_loss: int = 0
    dropped_dead: int = 0
    dropped_unknown: int = 0
    timers: int = 0
    timer_stalls: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_loss + self.dropped_dead + self.dropped_unknown


@dataclass(frozen=True, slots=True)
class LookupResult:
    """A finished lookup (or announce). ``duration``: virtual seconds from start to
    LookupFinished; ``total_duration``: to AnnounceFinished for an announce, else the same.
    ``queries``: how many queries the lookup sent (its LookupQuerySent events)."""

    lookup_id: int
    kind: str
    finished: ev.LookupFinished
    announced: ev.AnnounceFinished | None
    duration: float
    total_duration: float
    queries: int
    events: tuple[ev.Event, ...]

    @property
    def peers(self) -> tuple[Addr, ...]:
        return self.finished.peers

    @property
    def closest_ids(self) -> list[bytes]:
        return [node_id for node_id, _ in self.finished.closest]


@dataclass(slots=True, eq=False)
class LookupHandle:
    """A lookup started through the network; ``done`` once it finished (and, for an announce,
    once the announce_peer round finished too)."""

    node: SimNode
    lookup_id: int
    kind: str
    started_at: float
    events: list[ev.Event] = field(default_factory=list)
    finished: ev.LookupFinished | None = None
    announced: ev.AnnounceFinished | None = None
    done_at: float | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def result(self) -> LookupResult:
        if self.finished is None or self.done_at is None:
            raise RuntimeError(f"lookup {self.lookup_id} has not finished")
        return LookupResult(
            self.lookup_id,
            self.kind,
            self.finished,
            self.announced,
            self.finished.at - self.started_at,
            self.done_at - self.started_at,
            sum(1 for e in self.events if isinstance(e, ev.LookupQuerySent)),
            tuple(self.events),
        )

    def _add(self, event: ev.Event) -> None:
        self.events.append(event)
        if isinstance(event, ev.LookupFinished):
            self.finished = event
            if self.kind != "announce" or event.cancelled:
                self.done_at = event.at
        elif isinstance(event, ev.AnnounceFinished):
            self.announced = event
            self.done_at = event.at


# Heap entry: (time, seq, node index, datagram or None for a timer, source address or None).
_Entry = tuple[float, int, int, "bytes | None", "Addr | None"]


class SimNetwork:
    """Many DhtNodes on one virtual clock. See the module docstring."""

    def __init__(
        self,
        seed: int,
        latency: LatencyModel | None = None,
        loss: float = 0.0,
        *,
        settings: DhtSettings | None = None,
    ) -> None:
        """``settings``: default for ``add_node``; ``loss``: probability a datagram is lost."""
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {loss}")
        self.seed = seed
        self.latency: LatencyModel = latency if latency is not None else LogNormalLatency()
        self.loss = loss
        self.settings = settings or DhtSettings()
        self.now = 0.0
        self.nodes: list[SimNode] = []
        self.stats = SimStats()
        self._rng = random.Random(seed)
        self._heap: list[_Entry] = []
        self._seq = 0
        self._by_addr: dict[Addr, int] = {}
        self._used_ips: set[str] = set()
        self._timer_at: list[float | None] = []
        self._inflight = 0  # datagrams in the heap
        self._busy: set[int] = set()  # live nodes with queries outstanding
        self._trackers: dict[tuple[int, int], LookupHandle] = {}
        self._tracked_nodes: dict[int, int] = {}  # node index -> number of open trackers
        self._stop_on: LookupHandle | None = None
        self._stop = False

    # ========================================================================== population ==
    def add_node(self, settings: DhtSettings | None = None, *, alive: bool = True) -> SimNode:
        """A new node with a fresh public IPv4 address and a BEP 42 id for it. It knows nobody
        until bootstrapped: ``bootstrap_all``, or ``call(node, lambda d, now: d.bootstrap(...))``.
        """
        rng = self._rng
        ip = self._new_ip()
        port = rng.randrange(1024, 65536)
        node_seed = rng.getrandbits(64)
        # Seeded secrets too (tids, tokens, the id), so that a run is reproducible; a real
        # node draws them from the operating system.
        secrets = random.Random(~node_seed)
        node_id = bep42_id(ip, secrets)
        dht = DhtNode(
            rng=random.Random(node_seed),
            secrets=secrets,
            now=self.now,
            node_id=node_id,
            settings=settings or self.settings,
            traffic_events=False,
        )
        sn = SimNode(len(self.nodes), (ip, port), dht, alive)
        self.nodes.append(sn)
        self._by_addr[sn.addr] = sn.index
        self._timer_at.append(None)
        return sn

    def add_nodes(self, count: int, settings: DhtSettings | None = None) -> list[SimNode]:
        return [self.add_node(settings) for _ in range(count)]

    def _new_ip(self) -> str:
        rng = self._rng
        while True:
            value = rng.getrandbits(32)
            if not 1 <= value >> 24 <= 223:
                continue
            ip = ipaddress.IPv4Address(value)
            text = str(ip)
            if ip.is_global and text not in self._used_ips:
                self._used_ips.add(text)
                return text

    def node_at(self, addr: Addr) -> SimNode | None:
        i = self._by_addr.get(addr)
        return None if i is None else self.nodes[i]

    def live_nodes(self) -> list[SimNode]:
        return [sn for sn in self.nodes if sn.alive]

    def kill(self, node: SimNode) -> None:
        """The host goes silent: datagrams to it are dropped and its timers stop."""
        node.alive = False
        self._timer_at[node.index] = None
        self._busy.discard(node.index)

    def revive(self, node: SimNode) -> None:
        """The host comes back with its old state; overdue timers fire at once."""
        if node.alive:
            return
        node.alive = True
        self._after(node, False)

    def kill_random(self, fraction: float, *, exclude: Sequence[SimNode] = ()) -> list[SimNode]:
        """Kill ``round(fraction * live nodes)`` live nodes chosen at random (never ``exclude``)."""
        skip = {sn.index for sn in exclude}
        pool = [sn for sn in self.nodes if sn.alive and sn.index not in skip]
        victims = self._rng.sample(pool, round(fraction * len(pool)))
        for sn in victims:
            self.kill(sn)
        return victims

    def watch(self, node: SimNode) -> list[ev.Event]:
        """Start keeping ``node``'s events; the returned list grows as the simulation runs."""
        if node.events is None:
            node.events = []
        return node.events

    def unwatch(self, node: SimNode) -> None:
        node.events = None

    # ============================================================================ bootstrap ==
    def bootstrap_all(
        self,
        mode: str = "seed",
        *,
        max_age: float = 300.0,
        per_bucket: int | None = None,
        contacts: int = 3,
        stagger: float = 0.05,
        max_time: float = 600.0,
    ) -> None:
        """Form a converged network out of every live node.

        ``mode="seed"`` (fast, for big networks): each node's routing table is filled directly
        with what a long-running node would hold, chosen by brute force over all live node
        ids: for every shared-prefix length, ``per_bucket`` (default 1.5 K: the bucket plus part
        of its replacement cache) random nodes at that distance, entered as nodes that answered
        us ``0..max_age`` seconds ago (so later bucket refreshes spread out instead of firing in
        one instant). No datagram is sent; nodes count as bootstrapped.

        ``mode="lookup"`` (realistic, slow): nodes join one by one, ``stagger`` virtual seconds
        apart, each with a real bootstrap lookup through ``contacts`` random earlier nodes;
        then the network runs until idle (at most ``max_time``).
        """
        live = [sn for sn in self.nodes if sn.alive]
        if mode == "seed":
            self._seed_tables(live, max_age, per_bucket)
        elif mode == "lookup":
            self._bootstrap_by_lookup(live, contacts, stagger, max_time)
        else:
            raise ValueError(f"unknown bootstrap mode {mode!r}")

    def _seed_tables(self, live: list[SimNode], max_age: float, per_bucket: int | None) -> None:
        rng = self._rng
        # BEP 43: read-only nodes never enter routing tables.
        contactable = [sn for sn in live if not sn.dht.settings.read_only]
        index = IdIndex([sn.node_id for sn in contactable])
        infos = [NodeInfo(sn.node_id, sn.addr) for sn in contactable]
        for sn in live:
            dht = sn.dht
            at = self.now - rng.uniform(0.0, max_age) if max_age > 0 else self.now
            k = dht.settings.k
            wanted = per_bucket if per_bucket is not None else k + k // 2
            # rtt stays unknown: nothing was measured (and computing one costs 15% here)
            dht.preload_contacts(
                [infos[j] for j in index.routing_contacts(sn.node_id, wanted, rng)], at
            )
            self._after(sn, False)

    def _bootstrap_by_lookup(
        self, live: list[SimNode], contacts: int, stagger: float, max_time: float
    ) -> None:
        rng = self._rng
        for n, sn in enumerate(live):
            if n == 0:
                continue
            self._join(sn, rng.sample(live[:n], min(contacts, n)))
            self.run_for(stagger)
        if len(live) > 1:
            # The first node had nobody to ask when it started; it joins last.
            self._join(live[0], rng.sample(live[1:], min(contacts, len(live) - 1)))
        self.run_until_idle(max_time)

    def join(self, node: SimNode, contacts: int = 3) -> int:
        """Start ``node``'s bootstrap lookup (a newcomer to a formed network) through
        ``contacts`` random live nodes; returns its lookup id. Run the simulation to let it
        finish (``run_until_idle``)."""
        pool = [
            sn for sn in self.nodes if sn.alive and sn is not node and not sn.dht.settings.read_only
        ]
        return self._join(node, self._rng.sample(pool, min(contacts, len(pool))))

    def _join(self, node: SimNode, contacts: list[SimNode]) -> int:
        seeds = [o.addr for o in contacts]
        return self.call(node, lambda d, now: d.bootstrap(seeds, now))

    # ============================================================================ driving ==
    def call(self, node: SimNode, fn: Callable[[DhtNode, float], T]) -> T:
        """Run an API call ``fn(dht, now)`` on a live node, then flush it per the contract."""
        if not node.alive:
            raise ValueError(f"node {node.index} is dead")
        result = fn(node.dht, self.now)
        self._after(node, False)
        return result

    def run_until(self, until: float | Callable[[], bool], max_time: float | None = None) -> bool:
        """``until`` a virtual time: process every event up to it, then set the clock to it.
        ``until`` a predicate: run until it holds (checked after each event) or ``max_time``
        virtual seconds passed (default one hour; the clock then stands at that limit);
        returns whether it held."""
        if not callable(until):
            if until > self.now:
                self._run(until, None, False)
            return True
        if until():
            return True
        limit = self.now + (_DEFAULT_MAX_TIME if max_time is None else max_time)
        return self._run(limit, until, False)

    def run_for(self, dt: float) -> None:
        self.run_until(self.now + dt)

    def run_until_idle(self, max_time: float = _DEFAULT_MAX_TIME) -> bool:
        """Run until no datagram is in flight and no live node waits for an answer (periodic
        maintenance timers may still be pending), or ``max_time`` virtual seconds passed."""
        if self._idle():
            return True
        return self._run(self.now + max_time, None, True)

    def _idle(self) -> bool:
        return not self._inflight and not self._busy

    def _run(self, limit: float, pred: Callable[[], bool] | None, idle: bool) -> bool:
        heap = self._heap
        nodes = self.nodes
        timer_at = self._timer_at
        stats = self.stats
        pop = heapq.heappop
        self._stop = False
        while heap:
            t = heap[0][0]
            if t > limit:
                break
            _, _, i, data, src = pop(heap)
            self.now = t
            sn = nodes[i]
            if data is None:
                if timer_at[i] != t:
                    continue  # superseded by a later next_deadline() (lazy invalidation)
                timer_at[i] = None
                stats.timers += 1
                sn.dht.handle_timer(t)
                self._after(sn, True)
            else:
                self._inflight -= 1
                if sn.alive:
                    stats.delivered += 1
                    sn.dht.receive(data, src, t)  # type: ignore[arg-type]
                    self._after(sn, False)
                else:
                    stats.dropped_dead += 1
            if self._stop:
                return True
            if pred is not None and pred():
                return True
            if idle and not self._inflight and not self._busy:
                return True
        self.now = max(self.now, limit)
        return False

    def _after(self, sn: SimNode, from_timer: bool) -> None:
        """The driving contract, after every call into a node."""
        dht = sn.dht
        i = sn.index
        out = dht.datagrams_to_send()
        if out:
            stats = self.stats
            by_addr = self._by_addr
            rng = self._rng
            loss = self.loss
            delay = self.latency.delay
            heap = self._heap
            now = self.now
            src = sn.addr
            for data, addr in out:
                stats.datagrams += 1
                stats.bytes += len(data)
                dst = by_addr.get(addr)
                if dst is None:
                    stats.dropped_unknown += 1
                elif loss and rng.random() < loss:
                    stats.dropped_loss += 1
                else:
                    self._seq += 1
                    heapq.heappush(heap, (now + delay(i, dst, rng), self._seq, dst, data, src))
                    self._inflight += 1
        events = dht.drain_events()
        if events:
            if sn.events is not None:
                sn.events.extend(events)
            if i in self._tracked_nodes:
                self._route(i, events)
        if dht.txns:
            self._busy.add(i)
        else:
            self._busy.discard(i)
        deadline = dht.next_deadline()
        if deadline is None:
            self._timer_at[i] = None
            return
        if deadline <= self.now:
            if from_timer:
                # handle_timer left an overdue deadline: do not spin at this instant
                self.stats.timer_stalls += 1
                deadline = self.now + _STALL_STEP
            else:
                deadline = self.now
        if deadline != self._timer_at[i]:
            self._timer_at[i] = deadline
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, i, None, None))

    def _route(self, i: int, events: list[ev.Event]) -> None:
        for e in events:
            lid = getattr(e, "lookup_id", None)
            if lid is None:
                continue
            handle = self._trackers.get((i, lid))
            if handle is None:
                continue
            handle._add(e)
            if handle.done:
                del self._trackers[(i, lid)]
                left = self._tracked_nodes[i] - 1
                if left:
                    self._tracked_nodes[i] = left
                else:
                    del self._tracked_nodes[i]
                if handle is self._stop_on:
                    self._stop = True

    # ============================================================================ lookups ==
    def start_lookup(
        self,
        node: SimNode,
        target: bytes,
        kind: str = "get_peers",
        *,
        alpha: int | None = None,
        short_timeout: float | None = None,
    ) -> LookupHandle:
        """Start a "get_peers" or "find_node" lookup without running the simulation.
        ``alpha``/``short_timeout``: this lookup's own (see ``DhtNode.start_lookup``)."""
        return self._start(
            node,
            kind,
            lambda d, now: d.start_lookup(
                target, now, kind=kind, alpha=alpha, short_timeout=short_timeout
            ),
        )

    def start_announce(
        self, node: SimNode, info_hash: bytes, port: int, *, implied_port: bool = False
    ) -> LookupHandle:
        return self._start(
            node,
            "announce",
            lambda d, now: d.announce(info_hash, port, now, implied_port=implied_port),
        )

    def _start(self, node: SimNode, kind: str, fn: Callable[[DhtNode, float], int]) -> LookupHandle:
        if not node.alive:
            raise ValueError(f"node {node.index} is dead")
        lid = fn(node.dht, self.now)
        handle = LookupHandle(node, lid, kind, self.now)
        self._trackers[(node.index, lid)] = handle
        self._tracked_nodes[node.index] = self._tracked_nodes.get(node.index, 0) + 1
        # Flush after registering, so the events the call itself emitted reach the handle.
        self._after(node, False)
        return handle

    def wait(self, handle: LookupHandle, max_time: float = _DEFAULT_MAX_TIME) -> LookupResult:
        """Run until ``handle`` is done; raises SimTimeoutError after ``max_time`` seconds."""
        if not handle.done:
            self._stop_on = handle
            try:
                self._run(self.now + max_time, None, False)
            finally:
                self._stop_on = None
            if not handle.done:
                raise SimTimeoutError(f"lookup {handle.lookup_id} still running at {self.now}")
        return handle.result()

    def lookup(
        self,
        node: SimNode,
        target: bytes,
        kind: str = "get_peers",
        *,
        max_time: float = _DEFAULT_MAX_TIME,
    ) -> LookupResult:
        """Start a lookup and run the simulation until it finished."""
        return self.wait(self.start_lookup(node, target, kind), max_time)

    def announce(
        self,
        node: SimNode,
        info_hash: bytes,
        port: int,
        *,
        implied_port: bool = False,
        max_time: float = _DEFAULT_MAX_TIME,
    ) -> LookupResult:
        """Announce ``node`` as a peer of ``info_hash`` and run until the announce finished."""
        handle = self.start_announce(node, info_hash, port, implied_port=implied_port)
        return self.wait(handle, max_time)

    # =========================================================================== oracles ==
    def closest_live(
        self, target: bytes, count: int, *, exclude: Sequence[SimNode] = ()
    ) -> list[SimNode]:
        """Brute force: the ``count`` live, answering nodes nearest ``target`` (the truth a
        lookup should converge to)."""
        skip = {sn.index for sn in exclude}
        pool = (
            sn
            for sn in self.nodes
            if sn.alive and sn.index not in skip and not sn.dht.settings.read_only
        )
        return heapq.nsmallest(count, pool, key=lambda sn: distance(sn.node_id, target))

    def pending_events(self) -> int:
        """Entries in the event heap (stale timer entries included)."""
        return len(self._heap)
