"""DhtSession: one DHT node on a UDP socket, with an async API for the CLI and the GUI.

The session owns the node's life cycle (bind, bootstrap with retries, stop with state saved),
resolves names asynchronously, and turns the node's events into awaitable results: a lookup,
announce or ping started here resolves when the node emits the matching ``LookupFinished``,
``AnnounceFinished`` or ``PingFinished`` (matched by id). Every event also goes to subscribers,
so a GUI sees exactly what the node does. ``start_find_peers`` returns a ``LookupHandle`` whose
events can be iterated live while the lookup runs.

States: "stopped" -> "bootstrapping" -> "ready"; "idle" when running with nothing to bootstrap
from (a bare ``ping``). State changes are delivered to subscribers as ``StateChanged`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import DEFAULT_PORT, format_addr, ip_family, is_local, is_loopback
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import ID_BYTES, random_id
from dhtviewer.dht.routing_table import RoutingSnapshot
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.crawl import CrawlRecorder
from dhtviewer.net.handles import (
    LOOKUP_EVENTS,
    AnnounceResult,
    ItemResult,
    LookupHandle,
    LookupResult,
    PingResult,
    PutResult,
    SampleResult,
    ScrapeResult,
)
from dhtviewer.net.resolve import RESOLVE_TIMEOUT, HostPort, resolve_addrs
from dhtviewer.net.sample_store import SampleStore
from dhtviewer.net.state_store import (
    SavedState,
    StateLoadWarning,
    load_state,
    parse_state,
    save_state,
)
from dhtviewer.net.transport import BindError, DhtProtocol, PortInUseError, open_udp

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PORT",
    "AnnounceResult",
    "BindError",
    "BootstrapError",
    "DhtSession",
    "LookupHandle",
    "LookupResult",
    "PingResult",
    "PortInUseError",
    "SessionClosedError",
    "SessionEvent",
    "State",
    "StateChanged",
    "private_network",
    "resolve_addrs",
]

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP: tuple[str, ...] = (
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
)
RETRY_FIRST = 2.0
"""Seconds before the first bootstrap retry when nobody answered; doubles up to RETRY_MAX."""
RETRY_MAX = 120.0
READY_GOOD_NODES = 8
"""Good routing entries needed to be "ready" (fewer if fewer nodes answered the bootstrap)."""
_RESTORED_SEEDS = 32  # saved contacts that seed a bootstrap next to the bootstrap addresses

State = Literal["stopped", "idle", "bootstrapping", "ready"]


class SessionClosedError(RuntimeError):
    """The session stopped while the operation was waiting."""


class BootstrapError(RuntimeError):
    """None of the bootstrap addresses could be resolved and no saved contact is known."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The session moved from ``old`` to ``new``; ``detail`` says why (shown in a status bar)."""

    old: str
    new: str
    detail: str
    at: float


SessionEvent = ev.Event | StateChanged
Subscriber = Callable[[SessionEvent], None]


class DhtSession:
    """A DHT node bound to a UDP socket. All methods must be called from the event loop's thread.

    ``settings``: core limits (``allow_local`` is switched on automatically when every bootstrap
    address is local, or the bind address is loopback). ``bind``: ``(host, port)``; port 0 picks
    an ephemeral port. ``state_path``: JSON file to restore from at construction and save to at
    ``stop()``; None keeps state in memory only (a stopped session restarts with its contacts).
    ``first_op_id``: the first lookup (operation) id; ids then never repeat, across restarts of
    this session too, so a program running sessions one after another passes the previous one's
    ``next_op_id`` and can key its records of lookups by id.
    """

    def __init__(
        self,
        settings: DhtSettings | None = None,
        bind: tuple[str, int] = ("0.0.0.0", DEFAULT_PORT),
        state_path: str | os.PathLike[str] | None = None,
        node_id: bytes | None = None,
        rng: random.Random | None = None,
        first_op_id: int = 1,
    ) -> None:
        if node_id is not None and len(node_id) != ID_BYTES:
            raise ValueError(f"node_id must be {ID_BYTES} bytes, got {len(node_id)}")
        self.settings = settings or DhtSettings()
        self.bind = bind
        self.state_path = state_path
        self.rng = rng or random.Random()
        self.load_warning: StateLoadWarning | None = None
        saved = SavedState()
        if state_path is not None:
            saved, self.load_warning = load_state(state_path)
        self._saved = saved
        self._node_id = node_id or saved.node_id or random_id(self.rng)
        self._node: DhtNode | None = None
        self._first_op_id = first_op_id
        self._proto: DhtProtocol | None = None
        self._state: State = "stopped"
        self._detail = ""
        self._ready = asyncio.Event()
        # (callback, wants MessageSent/MessageReceived)
        self._subscribers: list[tuple[Subscriber, bool]] = []
        self._unsubscribe_proto: Callable[[], None] | None = None
        self._handles: dict[int, LookupHandle] = {}
        self._pings: dict[int, asyncio.Future[ev.PingFinished]] = {}
        self._samples: dict[int, asyncio.Future[ev.SamplesReceived]] = {}
        self._crawl: CrawlRecorder | None = None
        self._bootstrap_waiters: dict[int, asyncio.Future[ev.LookupFinished]] = {}
        self._bootstrap_task: asyncio.Task[None] | None = None
        self._bootstrap_spec: list[HostPort] = []
        self.bootstrap_addrs: list[Addr] = []
        self.family: int = socket.AF_INET
        self._started_at = 0.0

    # ======================================================================= life cycle ==
    async def start(
        self,
        bootstrap: Sequence[HostPort] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> None:
        """Bind the socket and bootstrap. ``bootstrap``: "host:port" strings or (host, port)
        pairs; None = the public routers; empty = do not bootstrap (state "idle" unless saved
        contacts exist). With ``wait``, return once "ready"; raise ``TimeoutError`` after
        ``timeout`` seconds (the session keeps running and retrying; call ``stop()``), or
        ``BootstrapError`` if no bootstrap name resolves. Raises ``PortInUseError``/``BindError``
        when the socket cannot be bound."""
        if self._state != "stopped":
            raise RuntimeError("session already started")
        loop = asyncio.get_running_loop()
        host, port = self.bind
        family, host = await _resolve_bind(host)
        self.family = family
        spec = list(DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap)
        addrs, errors = await resolve_addrs(spec, family)
        node_family = 6 if family == socket.AF_INET6 else 4
        restored = [n for n in self._saved.nodes if ip_family(n.addr[0]) == node_family]
        if spec and not addrs and not restored and wait:
            raise BootstrapError("cannot resolve any bootstrap address: " + "; ".join(errors))
        settings = self.settings
        if not settings.allow_local and private_network(
            host, addrs or [n.addr for n in restored]
        ):
            # A testnet or a LAN: its nodes have local addresses, which the public-DHT hygiene
            # rules would otherwise refuse.
            settings = replace(settings, allow_local=True)
        node = DhtNode(
            rng=self.rng,
            now=loop.time(),
            node_id=self._node_id,
            settings=settings,
            families=(node_family,),
            external_ip=self._saved.external_ip,
            traffic_events=self._wants_traffic(),
            first_op_id=self.next_op_id,
        )
        proto = await open_udp(node, host, port, family)
        self._node, self._proto = node, proto
        # Only now: subscriptions made while open_udp was awaited went to the previous node.
        self._sync_traffic_events()
        self._unsubscribe_proto = proto.subscribe(self._on_event)
        self._started_at = loop.time()
        self.bootstrap_addrs = addrs
        self._bootstrap_spec = spec
        self._ready.clear()
        if restored:
            proto.run(lambda now: node.add_contacts(restored, now))
        if not (addrs or restored or spec):
            self._set_state("idle", "no bootstrap address")
            return
        self._set_state("bootstrapping", f"bootstrapping from {len(addrs)} address(es)")
        self._bootstrap_task = loop.create_task(self._bootstrap_loop(restored))
        if wait:
            await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until the state is "ready"; ``TimeoutError`` (naming the last problem) otherwise."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"bootstrap did not finish within {timeout:g} s ({self._detail})"
            ) from None

    async def bootstrap(self, addrs: Sequence[HostPort], wait: bool = False,
                        timeout: float = 30.0) -> None:
        """(Re)bootstrap a running session from ``addrs`` (the GUI's "Bootstrap" button)."""
        node = self._require_node()
        spec = list(addrs)
        resolved, errors = await resolve_addrs(spec, self.family)
        if not resolved and errors:
            raise BootstrapError("cannot resolve any bootstrap address: " + "; ".join(errors))
        if resolved and all(is_local(a[0]) for a in resolved) and not node.settings.allow_local:
            log.warning("local bootstrap addresses given but the running node refuses local "
                        "contacts; restart the session to allow them")
        self._bootstrap_spec = spec
        self.bootstrap_addrs = resolved
        await self._cancel_bootstrap_task()
        self._ready.clear()
        self._set_state("bootstrapping", f"bootstrapping from {len(resolved)} address(es)")
        self._bootstrap_task = asyncio.get_running_loop().create_task(self._bootstrap_loop([]))
        if wait:
            await self.wait_ready(timeout)

    async def stop(self) -> None:
        """Cancel what is running, save the state, close the socket. Safe to call twice; the
        session can be started again (same node id, contacts kept)."""
        node, proto = self._node, self._proto
        if self._state == "stopped" or node is None or proto is None:
            return
        await self._cancel_bootstrap_task()
        for lid in list(self._handles):
            self._cancel_lookup(lid)
        closed = SessionClosedError("the DHT session stopped")
        for handle in list(self._handles.values()):
            handle.abort(closed)
        self._handles.clear()
        for waiters in (self._pings, self._samples):
            for fut in waiters.values():
                if not fut.done():
                    fut.set_exception(closed)
                    fut.exception()
            waiters.clear()
        self.stop_crawl()
        exported = node.export_state()
        try:
            self._saved = parse_state(exported)
        except ValueError:
            log.exception("node exported an invalid state")
        if self.state_path is not None:
            try:
                save_state(self.state_path, exported)
            except OSError as err:
                log.warning("cannot save DHT state to %s: %s", self.state_path, err)
        if self._unsubscribe_proto is not None:
            self._unsubscribe_proto()
            self._unsubscribe_proto = None
        proto.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(proto.closed), 2.0)
        self._proto = None
        self._ready.clear()
        self._set_state("stopped", "stopped")

    async def __aenter__(self) -> DhtSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ======================================================================= operations ==
    def start_find_peers(self, info_hash: bytes, scrape: bool = False) -> LookupHandle:
        """Start a get_peers lookup; follow it through the returned handle. ``scrape``: then
        estimate the swarm (BEP 33): the handle's kind is "scrape", ``scrape_result()``."""
        return self._start_lookup("scrape" if scrape else "get_peers", info_hash)

    def start_find_node(self, target: bytes) -> LookupHandle:
        return self._start_lookup("find_node", target)

    def start_announce(
        self, info_hash: bytes, port: int, implied_port: bool = False
    ) -> LookupHandle:
        """A get_peers lookup followed by announce_peer to the closest token holders."""
        return self._start_lookup("announce", info_hash, port, implied_port)

    async def find_peers(self, info_hash: bytes, timeout: float | None = None) -> LookupResult:
        """Peers for ``info_hash``. After ``timeout`` the lookup is cancelled and what was found
        so far is returned (``cancelled`` set)."""
        return await self.start_find_peers(info_hash).result(timeout)

    async def find_node(self, target: bytes, timeout: float | None = None) -> LookupResult:
        return await self.start_find_node(target).result(timeout)

    async def scrape(self, info_hash: bytes, timeout: float | None = None) -> ScrapeResult:
        """Peers (``lookup.peers``) and the BEP 33 estimate of seeds and downloaders."""
        return await self.start_find_peers(info_hash, scrape=True).scrape_result(timeout)

    # --- BEP 44 ------------------------------------------------------------------------------
    def start_get_item(self, target: bytes, salt: bytes = b"") -> LookupHandle:
        """Start a BEP 44 get of ``target`` (``salt``: the mutable item's, if any)."""
        return self._start_lookup("get", target, salt=salt)

    def start_put_item(self, request: PutRequest) -> LookupHandle:
        """Start a BEP 44 put (lookup, then put to the K closest)."""
        return self._start_lookup("put", request.target, request=request)

    async def get_item(
        self, target: bytes, salt: bytes = b"", timeout: float | None = None
    ) -> ItemResult:
        """The newest valid item stored under ``target`` (``found`` false if none)."""
        return await self.start_get_item(target, salt).item_result(timeout)

    async def put_item(self, request: PutRequest, timeout: float | None = None) -> PutResult:
        """Store ``request`` on the K closest nodes; where it was stored and why not
        elsewhere."""
        return await self.start_put_item(request).put_result(timeout)

    def stored_items(self) -> list[tuple[bytes, StoredItem]]:
        """The BEP 44 items other nodes stored on us, least recently put first."""
        node = self._require_node()
        return node.items.snapshot(self.now())

    # --- BEP 51 ------------------------------------------------------------------------------
    async def sample(self, addr: HostPort, timeout: float | None = None) -> SampleResult:
        """One ``sample_infohashes`` to ``addr`` (BEP 51). ``error`` set in the result when the
        node does not speak BEP 51; ``TimeoutError`` when it does not answer."""
        node, proto = self._require_running()
        resolved, errors = await resolve_addrs([addr], self.family)
        if not resolved:
            raise ValueError(errors[0] if errors else f"cannot resolve {addr}")
        target = resolved[0]
        fut: asyncio.Future[ev.SamplesReceived] = asyncio.get_running_loop().create_future()

        def call(now: float) -> int:
            op = node.sample(target, now)
            self._samples[op] = fut
            return op

        op = proto.run(call)
        wait_s = node.settings.hard_timeout + 1.0 if timeout is None else timeout
        try:
            done = await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer from {format_addr(target)}") from None
        finally:
            self._samples.pop(op, None)
        if done.error == "timeout":
            raise TimeoutError(f"no answer from {format_addr(target)}")
        return SampleResult(target, done.node_id, done.samples, done.num, done.interval,
                            done.error)

    def start_crawl(
        self, store: SampleStore | None = None, rate: float | None = None
    ) -> CrawlRecorder:
        """Crawl the DHT with BEP 51 (one crawl at a time): every answer is recorded in
        ``store`` (None: counted in memory only) and counted by the returned recorder, which
        the GUI and the CLI read. ``stop_crawl`` ends it."""
        node, proto = self._require_running()
        if self._crawl is not None:
            raise RuntimeError("a crawl is already running")
        seeds = self.bootstrap_addrs
        op = proto.run(lambda now: node.start_crawl(now, rate=rate, seeds=seeds))
        recorder = CrawlRecorder(op, store, node.settings.crawl_rate if rate is None else rate)
        self._crawl = recorder
        return recorder

    def stop_crawl(self) -> CrawlRecorder | None:
        """Stop the running crawl (its recorder is returned, its store committed)."""
        recorder, self._crawl = self._crawl, None
        node, proto = self._node, self._proto
        if recorder is None:
            return None
        if node is not None and proto is not None:
            proto.run(lambda now: node.stop_crawl(now))
        recorder.finish()
        return recorder

    @property
    def crawl(self) -> CrawlRecorder | None:
        """The running crawl's recorder (None when none runs)."""
        return self._crawl

    async def lookup_progress(self, info_hash: bytes) -> AsyncIterator[ev.Event]:
        """Start a get_peers lookup and yield its events live; the last is ``LookupFinished``."""
        handle = self.start_find_peers(info_hash)
        try:
            async for event in handle:
                yield event
        finally:
            handle.cancel()  # the consumer stopped early: do not leave the lookup running

    async def announce(
        self,
        info_hash: bytes,
        port: int,
        implied_port: bool = False,
        timeout: float | None = None,
    ) -> AnnounceResult:
        """Announce that we have ``info_hash`` on TCP ``port`` (or the UDP source port with
        ``implied_port``)."""
        return await self.start_announce(info_hash, port, implied_port).announce_result(timeout)

    async def ping(self, addr: HostPort, timeout: float | None = None) -> PingResult:
        """Ping one node. Raises ``TimeoutError`` if it does not answer (within ``timeout``,
        default: the core's hard timeout)."""
        node, proto = self._require_running()
        resolved, errors = await resolve_addrs([addr], self.family)
        if not resolved:
            raise ValueError(errors[0] if errors else f"cannot resolve {addr}")
        target = resolved[0]
        fut: asyncio.Future[ev.PingFinished] = asyncio.get_running_loop().create_future()

        def call(now: float) -> int:
            op = node.ping(target, now)
            self._pings[op] = fut
            return op

        op = proto.run(call)
        wait_s = node.settings.hard_timeout + 1.0 if timeout is None else timeout
        try:
            done = await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except asyncio.TimeoutError:
            done = None
        finally:
            self._pings.pop(op, None)
        if done is None or done.node_id is None or done.rtt is None:
            raise TimeoutError(f"no answer from {format_addr(target)}")
        return PingResult(target, done.node_id, done.rtt, done.version)

    def subscribe(self, callback: Subscriber, *, traffic: bool = True) -> Callable[[], None]:
        """``callback(event)`` for every node event and every ``StateChanged``, across restarts.
        Returns the function that unsubscribes.

        ``traffic=False``: the callback does without ``MessageSent``/``MessageReceived`` (one per
        datagram). While no subscriber wants them the node does not even build them, which is a
        tenth of what a busy headless node spends per query."""
        entry = (callback, traffic)
        self._subscribers.append(entry)
        self._sync_traffic_events()

        def unsubscribe() -> None:
            for i, e in enumerate(self._subscribers):
                if e is entry:
                    del self._subscribers[i]
                    self._sync_traffic_events()
                    return

        return unsubscribe

    def _wants_traffic(self) -> bool:
        return any(traffic for _, traffic in self._subscribers)

    def _sync_traffic_events(self) -> None:
        if self._node is not None:
            self._node.set_traffic_events(self._wants_traffic())

    # ======================================================================= read-only ==
    @property
    def state(self) -> State:
        return self._state

    @property
    def state_detail(self) -> str:
        return self._detail

    @property
    def node_id(self) -> bytes:
        return self._node_id

    @property
    def next_op_id(self) -> int:
        """The id the next lookup (or other operation) will get."""
        return self._node.next_op_id if self._node is not None else self._first_op_id

    @property
    def node(self) -> DhtNode | None:
        """The core node (for read-only views); None before the first start."""
        return self._node

    @property
    def local_address(self) -> Addr | None:
        """The bound ``(ip, port)`` (the real port when bound to port 0); None when stopped."""
        proto = self._proto
        if proto is None or proto.transport is None:
            return None
        name = proto.transport.get_extra_info("sockname")
        return (str(name[0]), int(name[1])) if name else None

    @property
    def external_ip(self) -> str | None:
        """Our address as other nodes see it (BEP 42 votes), once known."""
        return self._node.external_ip if self._node is not None else self._saved.external_ip

    def now(self) -> float:
        """The clock every event's ``at`` refers to."""
        return asyncio.get_running_loop().time()

    def routing_snapshot(self) -> RoutingSnapshot:
        node = self._require_node()
        return node.routing_snapshot(self.now(), 6 if self.family == socket.AF_INET6 else 4)

    def stats(self) -> dict[str, float]:
        """Node counters, transport error counters, ``good_nodes`` and ``uptime`` seconds."""
        node = self._node
        if node is None:
            return {}
        now = self.now()
        out: dict[str, float] = dict(node.stats(now))
        if self._proto is not None:
            out.update(self._proto.counters)
        out["good_nodes"] = node.good_node_count(now)
        out["uptime"] = now - self._started_at if self._state != "stopped" else 0.0
        return out

    # ======================================================================= internals ==
    def _require_node(self) -> DhtNode:
        if self._node is None:
            raise RuntimeError("the DHT session has not been started")
        return self._node

    def _require_running(self) -> tuple[DhtNode, DhtProtocol]:
        if self._node is None or self._proto is None or self._state == "stopped":
            raise RuntimeError("the DHT session is not running")
        return self._node, self._proto

    def _start_lookup(
        self,
        kind: str,
        target: bytes,
        port: int = 0,
        implied_port: bool = False,
        *,
        salt: bytes = b"",
        request: PutRequest | None = None,
    ) -> LookupHandle:
        node, proto = self._require_running()
        if len(target) != ID_BYTES:
            raise ValueError(f"target must be {ID_BYTES} bytes, got {len(target)}")
        handle = LookupHandle(kind, target, self._cancel_lookup)
        # With a thin routing table (still bootstrapping) the bootstrap nodes seed the lookup.
        seeds = self.bootstrap_addrs if node.routing_size() < node.settings.k else []

        def call(now: float) -> int:
            if kind == "announce":
                lid = node.announce(target, port, now, implied_port=implied_port, seeds=seeds)
            elif kind == "get":
                lid = node.get_item(target, now, salt=salt, seeds=seeds)
            elif kind == "put":
                assert request is not None
                lid = node.put_item(request, now, seeds=seeds)
            elif kind == "scrape":
                lid = node.start_lookup(target, now, seeds=seeds, scrape=True)
            else:
                lid = node.start_lookup(target, now, kind=kind, seeds=seeds)
            # Registered before run() flushes, so the handle sees LookupStarted too.
            handle.lookup_id = lid
            self._handles[lid] = handle
            return lid

        proto.run(call)
        return handle

    def _cancel_lookup(self, lookup_id: int) -> None:
        node, proto = self._node, self._proto
        if node is None or proto is None or lookup_id not in self._handles:
            return
        proto.run(lambda now: node.cancel_lookup(lookup_id, now))
        handle = self._handles.pop(lookup_id, None)
        if handle is not None and not handle.finished:
            # An announce cancelled after its lookup phase has no LookupFinished left to emit.
            handle.abort(SessionClosedError("lookup cancelled"))

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, LOOKUP_EVENTS):
            handle = self._handles.get(event.lookup_id)
            if handle is not None and handle.on_event(event):
                self._handles.pop(event.lookup_id, None)
            if isinstance(event, ev.LookupFinished):
                waiter = self._bootstrap_waiters.pop(event.lookup_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
        elif isinstance(event, ev.PingFinished):
            fut = self._pings.pop(event.op_id, None)
            if fut is not None and not fut.done():
                fut.set_result(event)
        elif isinstance(event, ev.SamplesReceived):
            crawl = self._crawl
            if crawl is not None and event.op_id == crawl.op_id:
                crawl.record(event)
            else:
                sample = self._samples.pop(event.op_id, None)
                if sample is not None and not sample.done():
                    sample.set_result(event)
        elif (
            isinstance(event, ev.NodeRemoved)
            and self._state == "ready"
            and self._node is not None
            and self._node.routing_size() == 0
        ):
            # Lost every contact (network down, laptop resumed): find our way back in.
            self._ready.clear()
            self._set_state("bootstrapping", "routing table empty; bootstrapping again")
            self._bootstrap_task = asyncio.get_running_loop().create_task(
                self._bootstrap_loop([])
            )
        self._publish(event)

    def _publish(self, event: SessionEvent) -> None:
        traffic = type(event) in ev.TRAFFIC_EVENTS
        for cb, wants_traffic in tuple(self._subscribers):
            if traffic and not wants_traffic:
                continue
            try:
                cb(event)
            except Exception:
                log.exception("session subscriber %r failed on %s", cb, type(event).__name__)

    def _set_state(self, new: State, detail: str) -> None:
        old = self._state
        self._state = new
        self._detail = detail
        if new == "ready":
            self._ready.set()
        if old != new or detail:
            log.info("DHT session %s: %s", new, detail)
            loop = asyncio.get_running_loop()
            self._publish(StateChanged(old, new, detail, loop.time()))

    async def _cancel_bootstrap_task(self) -> None:
        task, self._bootstrap_task = self._bootstrap_task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in self._bootstrap_waiters.values():
            fut.cancel()
        self._bootstrap_waiters.clear()

    async def _bootstrap_loop(self, restored: Sequence[NodeInfo]) -> None:
        """Bootstrap lookups until enough nodes answered, backing off while nobody does."""
        delay = RETRY_FIRST
        restored_seeds = [n.addr for n in restored][:_RESTORED_SEEDS]
        attempt = 0
        while True:
            attempt += 1
            node, proto = self._require_running()
            if not self.bootstrap_addrs and self._bootstrap_spec:
                # Names that did not resolve before (offline at start) may resolve now.
                self.bootstrap_addrs, _ = await resolve_addrs(self._bootstrap_spec, self.family)
            seeds = [*self.bootstrap_addrs, *restored_seeds]
            fut: asyncio.Future[ev.LookupFinished] = asyncio.get_running_loop().create_future()

            def call(
                now: float,
                node: DhtNode = node,
                fut: asyncio.Future[ev.LookupFinished] = fut,
                seeds: list[Addr] = seeds,
            ) -> None:
                self._bootstrap_waiters[node.bootstrap(seeds, now)] = fut

            proto.run(call)
            finished = await fut
            good = node.good_node_count(self.now())
            need = max(1, min(READY_GOOD_NODES, node.settings.k, finished.responded))
            if node.routing_size() > 0 and good >= need:
                self._set_state(
                    "ready", f"{good} good nodes after {finished.elapsed:.1f} s"
                )
                self._bootstrap_task = None
                return
            why = (
                "no bootstrap node answered"
                if finished.responded == 0
                else f"{finished.responded} answered but only {good} good nodes"
            )
            self._set_state(
                "bootstrapping", f"{why} (attempt {attempt}); retrying in {delay:g} s"
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


def private_network(bind_host: str, contacts: Sequence[Addr]) -> bool:
    """Whether a node bound to ``bind_host`` that starts from ``contacts`` (bootstrap addresses,
    or saved contacts when there are none) runs on a private network and so must accept local
    addresses: bound to loopback, or every contact local."""
    return is_loopback(bind_host) or (bool(contacts) and all(is_local(a[0]) for a in contacts))


async def _resolve_bind(host: str) -> tuple[int, str]:
    """Address family and literal address for the bind host (a name is resolved)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), host
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE),
            RESOLVE_TIMEOUT,
        )
    except (OSError, asyncio.TimeoutError) as err:
        raise BindError(f"cannot resolve bind address {host!r}: {err}", host, 0) from None
    fam, _, _, _, sockaddr = infos[0]
    return int(fam), str(sockaddr[0])
