"""LocalTestnet: N real DHT nodes on 127.0.x.y in one process and one event loop.

Each node is a plain DhtNode driven by its own DhtProtocol on its own loopback address (every
127/8 address works on Linux without configuration), so clients talk to it exactly as they would
to the public DHT, over real UDP. Nodes join in waves, each bootstrapping from node 0 and a few
earlier nodes, so the network ends up connected the way a real one grows. Then a few random
info-hashes are announced by some of the nodes, with made-up TCP ports, so lookups have peers to
find. Deterministic node ids and info-hashes for a given seed.

With ``ipv6``, every host is dual-stack (BEP 32): besides its IPv4 node it runs an IPv6 node on
::1 (the only IPv6 loopback address: its nodes differ by port), with the same id. The two DHTs
grow side by side, separately, each host's nodes joining from their own family's seeds (the
contacts a bootstrap learns for the other family are not needed here, and verifying them would
only slow the start); each answers ``want`` for its sibling's family, as a dual-stack client
does, and announcers announce in both.

A thousand nodes take seconds to join, so ``start`` reports its progress (``TestnetProgress``:
nodes bound, nodes joined, announces done; a dual-stack host's IPv6 node counts as a node) to an
optional callback. The callback runs in the
testnet's own thread when the testnet runs in one (``BackgroundTestnet``): it must hand the
report over to its own thread itself (the desktop app posts it to the GUI's loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from dhtviewer.dht import events as ev
from dhtviewer.dht.families import Sibling, dual_stack
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import random_id
from dhtviewer.dht.op_ids import OpIds
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.transport import DhtProtocol, open_udp

log = logging.getLogger(__name__)

WAVE = 8
"""Nodes that bootstrap at the same time; the next wave starts when this one has finished."""
BOOTSTRAP_SEEDS = 3
"""Earlier nodes (node 0 always among them) a joining node is told about."""
ANNOUNCE_PORT_BASE = 40000
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def loopback_range(bind_base: str, n: int) -> list[str]:
    """``n`` loopback addresses from ``bind_base`` upwards, stepping the last octet, then the
    one before it; last octets 0 and 255 are skipped (network/broadcast lookalikes)."""
    try:
        base = ipaddress.IPv4Address(bind_base)
    except ValueError:
        raise ValueError(f"testnet base address must be IPv4, got {bind_base!r}") from None
    if base not in _LOOPBACK:
        raise ValueError(f"testnet base address must be in 127.0.0.0/8, got {bind_base}")
    out: list[str] = []
    a = base
    while len(out) < n:
        if a not in _LOOPBACK:
            raise ValueError(f"{n} nodes from {bind_base} run past the end of 127.0.0.0/8")
        if a.packed[3] not in (0, 255):
            out.append(str(a))
        a += 1
    return out


class Phase(str, Enum):
    BINDING = "binding"
    """Opening the nodes' sockets."""
    JOINING = "joining"
    """Bootstrapping the nodes, wave after wave."""
    ANNOUNCING = "announcing"
    """Announcing the test info-hashes."""

    def __str__(self) -> str:
        return str(self.value)


_PHASE_SHARE = {Phase.BINDING: (0.0, 0.1), Phase.JOINING: (0.1, 0.95),
                Phase.ANNOUNCING: (0.95, 1.0)}
"""Where each phase sits in the overall progress (joining is most of the time)."""


@dataclass(frozen=True, slots=True)
class TestnetProgress:
    """How far ``LocalTestnet.start`` is: ``done`` of ``total`` in ``phase`` (nodes bound,
    nodes joined, or announces finished)."""

    __test__ = False  # not a pytest test class, despite the name

    phase: Phase
    done: int
    total: int

    @property
    def fraction(self) -> float:
        """Overall progress of the start, 0 to 1."""
        low, high = _PHASE_SHARE[self.phase]
        return low + (high - low) * (self.done / self.total if self.total else 1.0)

    def describe(self) -> str:
        what = {Phase.BINDING: "nodes started", Phase.JOINING: "nodes bootstrapped",
                Phase.ANNOUNCING: "test announces done"}[self.phase]
        return f"{self.done:,} of {self.total:,} {what}"


ProgressCallback = Callable[[TestnetProgress], None]


@dataclass(eq=False)
class _Member:
    """One host of the testnet: its node of each family, on its socket."""

    nodes: dict[int, DhtNode]
    protos: dict[int, DhtProtocol] = field(default_factory=dict)
    addrs: dict[int, Addr] = field(default_factory=dict)
    waiters: dict[int, asyncio.Future[ev.Event]] = field(default_factory=dict)

    @property
    def addr(self) -> Addr:
        return self.addrs[4]

    def on_event(self, family: int, event: ev.Event) -> None:
        # An announce ends with AnnounceFinished, unless its lookup was cancelled.
        if isinstance(event, ev.AnnounceFinished) or (
            isinstance(event, ev.LookupFinished)
            and (event.kind != "announce" or event.cancelled)
        ):
            fut = self.waiters.pop(event.lookup_id, None)
            if fut is not None and not fut.done():
                fut.set_result(event)

    def bootstrap(self, family: int, seeds: list[Addr]) -> asyncio.Future[ev.Event]:
        node = self.nodes[family]
        return self._run(family, lambda now: node.bootstrap(seeds, now))

    def announce(self, family: int, info_hash: bytes, port: int) -> asyncio.Future[ev.Event]:
        node = self.nodes[family]
        return self._run(family, lambda now: node.announce(info_hash, port, now))

    def _run(self, family: int, call: Callable[[float], int]) -> asyncio.Future[ev.Event]:
        """Start an operation; the future resolves with its final event."""
        fut: asyncio.Future[ev.Event] = asyncio.get_running_loop().create_future()

        def wrapped(now: float) -> int:
            lid = call(now)
            self.waiters[lid] = fut  # before run() flushes: the end may come at once
            return lid

        self.protos[family].run(wrapped)
        return fut


class LocalTestnet:
    """``n`` nodes on ``bind_base`` and the addresses after it, all on UDP ``port`` (0: an
    ephemeral port each); with ``ipv6``, each also on ::1 (an ephemeral port each). After
    ``await start()``: ``addrs`` (every IPv4 node), ``addrs6`` (every IPv6 node),
    ``bootstrap_addrs`` (a few early nodes of each family to bootstrap from), ``announced``
    (info_hash -> peers stored in the network) and ``nodes``/``nodes6`` (the DhtNode objects,
    for inspection)."""

    def __init__(
        self,
        n: int,
        bind_base: str = "127.0.1.1",
        port: int = 6881,
        seed: int | None = None,
        announced: int = 3,
        settings: DhtSettings | None = None,
        announcers: int = 3,
        ipv6: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"a testnet needs at least 1 node, got {n}")
        self.n = n
        self.ips = loopback_range(bind_base, n)
        self.port = port
        self.families = (4, 6) if ipv6 else (4,)
        rng = random.Random(seed)
        # Everything the seed promises (node ids, info-hashes, who announces) is drawn up front;
        # the join order's random choices come from a separate generator, so timing-dependent
        # branches of the join cannot shift them.
        self._node_seeds = [(rng.getrandbits(64), random_id(rng)) for _ in self.ips]
        self._info_hashes = [random_id(rng) for _ in range(announced)]
        self._announcer_picks = [
            rng.sample(range(n), min(announcers, n)) for _ in range(announced)
        ]
        self.rng = random.Random(rng.getrandbits(64))
        # Every contact is a loopback address, which the public-DHT hygiene rules refuse.
        self.settings = replace(settings or DhtSettings(), allow_local=True)
        self._members: list[_Member] = []
        self.announced: dict[bytes, list[Addr]] = {}
        self.started = False
        self._joined: dict[int, int] = {}  # family -> nodes joined so far (progress)
        self.on_progress = on_progress
        """Called with a ``TestnetProgress`` as ``start`` goes (see the module docstring)."""

    @property
    def addrs(self) -> list[Addr]:
        return [m.addrs[4] for m in self._members]

    @property
    def addrs6(self) -> list[Addr]:
        return [m.addrs[6] for m in self._members if 6 in m.addrs]

    @property
    def nodes(self) -> list[DhtNode]:
        return [m.nodes[4] for m in self._members]

    @property
    def nodes6(self) -> list[DhtNode]:
        return [m.nodes[6] for m in self._members if 6 in m.nodes]

    @property
    def node_count(self) -> int:
        """Nodes of every family: ``n`` hosts, each with a node per family."""
        return self.n * len(self.families)

    @property
    def bootstrap_addrs(self) -> list[Addr]:
        first = self._members[: min(3, len(self._members))]
        return [m.addrs[fam] for fam in self.families for m in first]

    async def start(self, timeout: float = 60.0) -> None:
        """Bind every node, bootstrap them in waves, announce the test info-hashes. Raises
        ``BindError``/``PortInUseError`` (after closing what was opened) if an address is busy,
        ``TimeoutError`` if the network does not settle within ``timeout``."""
        if self.started:
            raise RuntimeError("testnet already started")
        bound_nodes = 0
        try:
            for ip, (node_seed, node_id) in zip(self.ips, self._node_seeds, strict=True):
                member = _Member(self._make_nodes(node_seed, node_id))
                self._members.append(member)
                for fam in self.families:
                    host, port = (ip, self.port) if fam == 4 else ("::1", 0)
                    family = socket.AF_INET if fam == 4 else socket.AF_INET6
                    proto = await open_udp(member.nodes[fam], host, port, family)
                    assert proto.transport is not None
                    bound = int(proto.transport.get_extra_info("sockname")[1])
                    member.protos[fam], member.addrs[fam] = proto, (host, bound)
                    proto.subscribe(functools.partial(member.on_event, fam))
                    bound_nodes += 1
                    self._report(Phase.BINDING, bound_nodes)
            self.started = True
            await asyncio.wait_for(self._join_and_announce(), timeout)
        except BaseException:
            await self.stop()
            raise

    def _report_joined(self) -> None:
        # The families join side by side: one count over both.
        self._report(Phase.JOINING, sum(self._joined.values()))

    def _report(self, phase: Phase, done: int, total: int | None = None) -> None:
        if self.on_progress is None:
            return
        total = self.node_count if total is None else total
        try:
            self.on_progress(TestnetProgress(phase, done, total))
        except Exception:  # a broken progress display must not break the testnet
            log.exception("testnet progress callback failed")

    def _make_nodes(self, node_seed: int, node_id: bytes) -> dict[int, DhtNode]:
        loop = asyncio.get_running_loop()
        rng = random.Random(node_seed)
        ops = OpIds()
        # Every IPv6 node is on ::1: per-IP budgets would count the whole IPv6 half as one
        # host (and block it while the network forms).
        v6 = replace(self.settings, rate_limit=False)

        def make(family: int, sibling: Sibling | None) -> DhtNode:
            return DhtNode(
                rng=rng if family == 4 else random.Random(rng.getrandbits(64)),
                # Seeded like the rest, so a seed gives the same network (a real node's
                # secrets come from the operating system).
                secrets=random.Random(f"secrets:{node_seed}:{family}"),
                now=loop.time(),
                node_id=node_id,
                settings=self.settings if family == 4 else v6,
                family=family,
                sibling=sibling,
                op_ids=ops,
                traffic_events=False,
            )

        if len(self.families) == 2:
            return dual_stack(make)
        return {4: make(4, None)}

    async def _join_and_announce(self) -> None:
        await asyncio.gather(*(self._join(fam) for fam in self.families))
        await self._announce()

    async def _join(self, family: int) -> None:
        members = self._members
        addrs = [m.addrs[family] for m in members]
        self._joined[family] = 1  # node 0 is the first contact, it joins no one
        self._report_joined()
        for start in range(1, len(members), WAVE):
            wave = []
            for i in range(start, min(start + WAVE, len(members))):
                earlier = addrs[1:i]
                picked = self.rng.sample(earlier, min(BOOTSTRAP_SEEDS - 1, len(earlier)))
                seeds = [addrs[0], *picked]
                wave.append(members[i].bootstrap(family, seeds))
            await asyncio.gather(*wave)
            self._joined[family] = min(start + WAVE, len(members))
            self._report_joined()
        # The first nodes joined a nearly empty network and, full of each other, they do not
        # take in the queriers that came later (only answers earn a place in a full bucket).
        # A second bootstrap through random later nodes fills their tables.
        late = addrs[WAVE:]
        sparse = [
            m for m in members if m.nodes[family].routing_size() < 2 * self.settings.k
        ]
        if late and sparse:
            again = []
            for m in sparse:
                seeds = self.rng.sample(late, min(BOOTSTRAP_SEEDS, len(late)))
                again.append(m.bootstrap(family, seeds))
            await asyncio.gather(*again)

    async def _announce(self) -> None:
        jobs: list[tuple[bytes, Addr, asyncio.Future[ev.Event]]] = []
        for j, (info_hash, picks) in enumerate(
            zip(self._info_hashes, self._announcer_picks, strict=True)
        ):
            self.announced[info_hash] = []
            for k, m in enumerate(self._members[i] for i in picks):
                port = ANNOUNCE_PORT_BASE + j * 100 + k
                for fam in self.families:  # BEP 32: a dual-stack peer announces in both DHTs
                    peer = (m.addrs[fam][0], port)
                    jobs.append((info_hash, peer, m.announce(fam, info_hash, port)))
        self._report(Phase.ANNOUNCING, 0, len(jobs))
        for n, (info_hash, peer, fut) in enumerate(jobs, start=1):
            done = await fut
            self._report(Phase.ANNOUNCING, n, len(jobs))
            if isinstance(done, ev.AnnounceFinished) and done.stored_at:
                self.announced[info_hash].append(peer)
            else:
                log.warning("testnet announce of %s from %s stored nowhere", info_hash.hex(), peer)

    async def stop(self) -> None:
        """Close every socket. Safe to call twice."""
        members, self._members = self._members, []
        protos = [p for m in members for p in m.protos.values()]
        for m in members:
            for fut in m.waiters.values():
                fut.cancel()
        for proto in protos:
            proto.close()
        if protos:
            await asyncio.wait([asyncio.ensure_future(p.closed) for p in protos], timeout=2)
        self.started = False

    async def __aenter__(self) -> LocalTestnet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def stats(self) -> dict[str, int]:
        """Counters summed over every node (of every family), plus ``nodes`` (hosts)."""
        total: dict[str, int] = {"nodes": len(self._members)}
        protos = [p for m in self._members for p in m.protos.values()]
        now = protos[0].loop.time() if protos else 0.0
        for m in self._members:
            for node in m.nodes.values():
                for key, value in node.stats(now).items():
                    total[key] = total.get(key, 0) + value
        return total


class BackgroundTestnet:
    """A LocalTestnet on its own event loop in a daemon thread, for code that is not async or
    that runs its own loop (tests driving the CLI in a subprocess, benchmarks). Use as a context
    manager; ``net`` is the running LocalTestnet (read its addresses, not its nodes: they belong
    to the other thread)."""

    def __init__(self, net: LocalTestnet, timeout: float = 60.0) -> None:
        self.net = net
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LocalTestnet:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.net.start(self.timeout))
            except BaseException as err:
                ready.set_exception(err)
                loop.close()
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.net.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="dhtviewer-testnet", daemon=True)
        self._thread.start()
        ready.result(self.timeout + 5)
        return self.net

    def __exit__(self, *exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
