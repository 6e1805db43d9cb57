"""LocalTestnet: N real DHT nodes on 127.0.x.y in one process and one event loop.

Each node is a plain DhtNode driven by its own DhtProtocol on its own loopback address (every
127/8 address works on Linux without configuration), so clients talk to it exactly as they would
to the public DHT, over real UDP. Nodes join in waves, each bootstrapping from node 0 and a few
earlier nodes, so the network ends up connected the way a real one grows. Then a few random
info-hashes are announced by some of the nodes, with made-up TCP ports, so lookups have peers to
find. Deterministic node ids and info-hashes for a given seed.

A thousand nodes take seconds to join, so ``start`` reports its progress (``TestnetProgress``:
nodes bound, nodes joined, announces done) to an optional callback. The callback runs in the
testnet's own thread when the testnet runs in one (``BackgroundTestnet``): it must hand the
report over to its own thread itself (the desktop app posts it to the GUI's loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import random_id
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
    addr: Addr
    node: DhtNode
    proto: DhtProtocol
    waiters: dict[int, asyncio.Future[ev.Event]] = field(default_factory=dict)

    def on_event(self, event: ev.Event) -> None:
        # An announce ends with AnnounceFinished, unless its lookup was cancelled.
        if isinstance(event, ev.AnnounceFinished) or (
            isinstance(event, ev.LookupFinished)
            and (event.kind != "announce" or event.cancelled)
        ):
            fut = self.waiters.pop(event.lookup_id, None)
            if fut is not None and not fut.done():
                fut.set_result(event)

    def bootstrap(self, seeds: list[Addr]) -> asyncio.Future[ev.Event]:
        return self._run(lambda now: self.node.bootstrap(seeds, now))

    def announce(self, info_hash: bytes, port: int) -> asyncio.Future[ev.Event]:
        return self._run(lambda now: self.node.announce(info_hash, port, now))

    def _run(self, call: Callable[[float], int]) -> asyncio.Future[ev.Event]:
        """Start an operation; the future resolves with its final event."""
        fut: asyncio.Future[ev.Event] = asyncio.get_running_loop().create_future()

        def wrapped(now: float) -> int:
            lid = call(now)
            self.waiters[lid] = fut  # before run() flushes: the end may come at once
            return lid

        self.proto.run(wrapped)
        return fut


class LocalTestnet:
    """``n`` nodes on ``bind_base`` and the addresses after it, all on UDP ``port`` (0: an
    ephemeral port each). After ``await start()``: ``addrs`` (every node), ``bootstrap_addrs``
    (a few early nodes to bootstrap from), ``announced`` (info_hash -> peers stored in the
    network) and ``nodes`` (the DhtNode objects, for inspection)."""

    def __init__(
        self,
        n: int,
        bind_base: str = "127.0.1.1",
        port: int = 6881,
        seed: int | None = None,
        announced: int = 3,
        settings: DhtSettings | None = None,
        announcers: int = 3,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"a testnet needs at least 1 node, got {n}")
        self.n = n
        self.ips = loopback_range(bind_base, n)
        self.port = port
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
        self.on_progress = on_progress
        """Called with a ``TestnetProgress`` as ``start`` goes (see the module docstring)."""

    @property
    def addrs(self) -> list[Addr]:
        return [m.addr for m in self._members]

    @property
    def nodes(self) -> list[DhtNode]:
        return [m.node for m in self._members]

    @property
    def bootstrap_addrs(self) -> list[Addr]:
        return self.addrs[: min(3, len(self._members))]

    async def start(self, timeout: float = 60.0) -> None:
        """Bind every node, bootstrap them in waves, announce the test info-hashes. Raises
        ``BindError``/``PortInUseError`` (after closing what was opened) if an address is busy,
        ``TimeoutError`` if the network does not settle within ``timeout``."""
        if self.started:
            raise RuntimeError("testnet already started")
        loop = asyncio.get_running_loop()
        try:
            for ip, (node_seed, node_id) in zip(self.ips, self._node_seeds, strict=True):
                node = DhtNode(
                    rng=random.Random(node_seed),
                    now=loop.time(),
                    node_id=node_id,
                    settings=self.settings,
                    traffic_events=False,
                )
                proto = await open_udp(node, ip, self.port, socket.AF_INET)
                assert proto.transport is not None
                port = int(proto.transport.get_extra_info("sockname")[1])
                member = _Member((ip, port), node, proto)
                proto.subscribe(member.on_event)
                self._members.append(member)
                self._report(Phase.BINDING, len(self._members))
            self.started = True
            await asyncio.wait_for(self._join_and_announce(), timeout)
        except BaseException:
            await self.stop()
            raise

    def _report(self, phase: Phase, done: int, total: int | None = None) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(TestnetProgress(phase, done, self.n if total is None else total))
        except Exception:  # a broken progress display must not break the testnet
            log.exception("testnet progress callback failed")

    async def _join_and_announce(self) -> None:
        members = self._members
        addrs = self.addrs
        self._report(Phase.JOINING, 1)  # node 0 is the first contact, it joins no one
        for start in range(1, len(members), WAVE):
            wave = []
            for i in range(start, min(start + WAVE, len(members))):
                earlier = addrs[1:i]
                picked = self.rng.sample(earlier, min(BOOTSTRAP_SEEDS - 1, len(earlier)))
                seeds = [addrs[0], *picked]
                wave.append(members[i].bootstrap(seeds))
            await asyncio.gather(*wave)
            self._report(Phase.JOINING, min(start + WAVE, len(members)))
        # The first nodes joined a nearly empty network and, full of each other, they do not
        # take in the queriers that came later (only answers earn a place in a full bucket).
        # A second bootstrap through random later nodes fills their tables.
        late = addrs[WAVE:]
        sparse = [m for m in members if m.node.routing_size() < 2 * self.settings.k]
        if late and sparse:
            again = []
            for m in sparse:
                seeds = self.rng.sample(late, min(BOOTSTRAP_SEEDS, len(late)))
                again.append(m.bootstrap(seeds))
            await asyncio.gather(*again)
        await self._announce()

    async def _announce(self) -> None:
        jobs: list[tuple[bytes, Addr, asyncio.Future[ev.Event]]] = []
        for j, (info_hash, picks) in enumerate(
            zip(self._info_hashes, self._announcer_picks, strict=True)
        ):
            self.announced[info_hash] = []
            for k, m in enumerate(self._members[i] for i in picks):
                port = ANNOUNCE_PORT_BASE + j * 100 + k
                jobs.append((info_hash, (m.addr[0], port), m.announce(info_hash, port)))
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
        for m in members:
            for fut in m.waiters.values():
                fut.cancel()
            m.proto.close()
        if members:
            await asyncio.wait([asyncio.ensure_future(m.proto.closed) for m in members], timeout=2)
        self.started = False

    async def __aenter__(self) -> LocalTestnet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def stats(self) -> dict[str, int]:
        """Counters summed over every node, plus ``nodes``."""
        total: dict[str, int] = {"nodes": len(self._members)}
        now = self._members[0].proto.loop.time() if self._members else 0.0
        for m in self._members:
            for key, value in m.node.stats(now).items():
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
