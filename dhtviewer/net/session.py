"""DhtSession: the DHT nodes of one host, one per address family, each on its own UDP socket,
with an async API for the CLI and the GUI.

BEP 32 runs two independent DHTs, IPv4 and IPv6; deployed clients join both. A session runs a
node per family it is set to (``DhtSettings.address_families``; IPv6 only where the host can
open an IPv6 socket), each a ``FamilyStack``: its own socket, routing table, bootstrap and state.
The session owns their life cycle (bind, bootstrap with retries, stop with state saved), resolves
names asynchronously (a bootstrap name with addresses of both families feeds both), and turns
the nodes' events into awaitable results: a lookup, announce or ping started here resolves when
the node emits the matching ``LookupFinished``, ``AnnounceFinished`` or ``PingFinished`` (matched
by id: the nodes share operation ids). A lookup or announce runs in every family, separately,
and its ``LookupHandle`` merges them for the user. Pings and samples go out of the socket of the
target's family. Every event also goes to subscribers, so a GUI sees exactly what the nodes do;
events that concern one family say which (routing events, ``LookupStarted``/``LookupFinished``),
the others carry an address.

States: "stopped" -> "bootstrapping" -> "ready"; "idle" when running with nothing to bootstrap
from (a bare ``ping``). The session is "ready" once one family is, and says how each family
fares in its detail text. State changes are delivered to subscribers as ``StateChanged`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import random
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import DEFAULT_PORT, is_local
from dhtviewer.dht.families import FAMILIES, Sibling, family_name
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import Addr, NodeInfo, Response
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import ID_BYTES, random_id
from dhtviewer.dht.op_ids import OpIds
from dhtviewer.dht.responder import Handler
from dhtviewer.dht.routing_table import RoutingSnapshot
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.tasks import Task
from dhtviewer.net.binds import family_binds, private_network
from dhtviewer.net.crawl import CrawlRecorder
from dhtviewer.net.extensions import NodeExtensions, RoutingPolicyFactory, SessionTask
from dhtviewer.net.handles import (
    AnnounceResult,
    ItemResult,
    LookupHandle,
    LookupResult,
    PingResult,
    PutResult,
    SampleResult,
    ScrapeResult,
)
from dhtviewer.net.operations import Operations, SessionClosedError
from dhtviewer.net.queries import QueryError
from dhtviewer.net.resolve import HostPort, resolve_addrs, resolve_families
from dhtviewer.net.sample_store import SampleStore
from dhtviewer.net.stack import FamilyStack, State, bind_families, combined_state, make_nodes
from dhtviewer.net.state_store import (
    SavedState,
    StateLoadWarning,
    load_state,
    parse_state,
    save_state,
    state_document,
)
from dhtviewer.net.subscriptions import (
    DEFAULT_STREAM_SIZE,
    EventStream,
    Subscribers,
    event_kinds,
)
from dhtviewer.net.transport import BindError, DhtProtocol, PortInUseError, serve_udp

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PORT",
    "AnnounceResult",
    "BindError",
    "BootstrapError",
    "DhtSession",
    "EventStream",
    "LookupHandle",
    "LookupResult",
    "PingResult",
    "PortInUseError",
    "QueryError",
    "RoutingPolicyFactory",
    "SessionClosedError",
    "SessionEvent",
    "SessionTask",
    "State",
    "StateChanged",
    "private_network",
    "resolve_addrs",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BOOTSTRAP: tuple[str, ...] = (
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
)


class BootstrapError(RuntimeError):
    """None of the bootstrap addresses could be resolved and no saved contact is known."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The session moved from ``old`` to ``new``, or its ``detail`` changed; ``detail`` says why
    (shown in a status bar; with two families, how each fares). ``families``: (family, state)
    of each family the session runs."""

    old: str
    """The state before ("stopped", "idle", "bootstrapping" or "ready")."""
    new: str
    """The state now."""
    detail: str
    """Why, in words (how each family fares when there are two)."""
    at: float
    """When, on the session's clock (``DhtSession.now()``, seconds)."""
    families: tuple[tuple[int, str], ...] = ()
    """(family, state) of each address family the session runs."""


SessionEvent = ev.Event | StateChanged
Subscriber = Callable[[SessionEvent], None]
EVENT_TYPES: tuple[type, ...] = (*typing.get_args(ev.Event), StateChanged)
"""Every class of event a session delivers (what ``subscribe``'s ``kinds`` may name)."""


class DhtSession:
    """The DHT nodes of one host (one per address family) on their UDP sockets. All methods
    must be called from the event loop's thread.

    ``settings``: core limits and ``address_families`` (``allow_local`` is switched on
    automatically when every bootstrap address is local, or the bind address is loopback).
    ``bind``: ``(host, port)``; port 0 picks an ephemeral port. The other family binds the same
    port on the matching address (``0.0.0.0`` <-> ``::``, ``127.0.0.1`` <-> ``::1``) unless
    ``bind6`` gives the IPv6 one. ``state_path``: JSON file to restore from at construction and
    save to at ``stop()`` (per family); None keeps state in memory only (a stopped session
    restarts with its contacts). ``node_id``: our id in every family (BEP 32 advises one id
    for both), instead of the saved ones. ``routing_policy``: ``factory(settings, family)``
    making each node's ``RoutingPolicy`` at every start (None: the default rules).
    ``first_op_id``: the first lookup (operation) id; ids then never repeat, across the
    families and restarts of this session too, so a program running sessions one after another
    passes the previous one's ``next_op_id`` and can key its records of lookups by id.

    What the session keeps across stop/start and installs on every node it makes: subscribers,
    custom method handlers (``register_handler``), tasks (``call_at``/``call_every``) and the
    routing policy factory (``routing_policy``).
    """

    def __init__(
        self,
        settings: DhtSettings | None = None,
        bind: tuple[str, int] = ("0.0.0.0", DEFAULT_PORT),
        state_path: str | os.PathLike[str] | None = None,
        node_id: bytes | None = None,
        rng: random.Random | None = None,
        bind6: tuple[str, int] | None = None,
        secrets: random.Random | None = None,
        *,
        routing_policy: RoutingPolicyFactory | None = None,
        first_op_id: int = 1,
    ) -> None:
        """``rng``: the node's randomness others may see; ``secrets``: what nobody may predict
        (transaction ids, token secrets, node ids); default: the operating system's."""
        if node_id is not None and len(node_id) != ID_BYTES:
            raise ValueError(f"node_id must be {ID_BYTES} bytes, got {len(node_id)}")
        self.settings = settings or DhtSettings()
        self.bind = bind
        self.bind6 = bind6
        self.state_path = state_path
        self.rng = rng or random.Random()
        self.secrets = secrets or random.SystemRandom()
        self.load_warning: StateLoadWarning | None = None
        saved = SavedState()
        if state_path is not None:
            saved, self.load_warning = load_state(state_path)
        self._saved = saved
        self._forced_id = node_id
        self._node_id = node_id or saved.node_id or random_id(self.secrets)
        self._stacks: dict[int, FamilyStack] = {}
        self._nodes: dict[int, DhtNode] = {}
        self._state: State = "stopped"
        self._detail = ""
        self._ready = asyncio.Event()
        self._subscribers: Subscribers[SessionEvent] = Subscribers(self._sync_traffic_events)
        self._events_dropped = 0
        self.extensions = NodeExtensions(routing_policy)
        """Routing policy factory, custom handlers and tasks, installed on every node."""
        self._unsubscribe_protos: list[Callable[[], None]] = []
        self._pending = Operations(lambda: self._stacks, self._require_running)
        """Lookups, pings, samples, queries and the crawl in flight (``net.operations``)."""
        self._bootstrap_spec: list[HostPort] = []
        # one source for every family and every start: an id names one operation
        self._ops = OpIds(first_op_id)
        self._started_at = 0.0

    # ======================================================================= life cycle ==
    async def start(
        self,
        bootstrap: Sequence[HostPort] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> None:
        """Bind the sockets and bootstrap each family. ``bootstrap``: "host:port" strings or
        (host, port) pairs; None = the public routers; empty = do not bootstrap (state "idle"
        unless saved contacts exist). With ``wait``, return once "ready" (one family is);
        raise ``TimeoutError`` after ``timeout`` seconds (the session keeps running and
        retrying; call ``stop()``), or ``BootstrapError`` if no bootstrap name resolves. Raises
        ``PortInUseError``/``BindError`` when a socket cannot be bound."""
        if self._state != "stopped":
            raise RuntimeError("session already started")
        loop = asyncio.get_running_loop()
        binds = await family_binds(self.bind, self.bind6, self.settings.address_families.families)
        spec = list(DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap)
        by_family, errors = await resolve_families(spec, list(binds))
        restored = {fam: self._saved.family(fam).nodes for fam in binds}
        if spec and not any(by_family.values()) and not any(restored.values()) and wait:
            raise BootstrapError("cannot resolve any bootstrap address: " + "; ".join(errors))
        settings = self.settings
        contacts = [a for addrs in by_family.values() for a in addrs] or [
            n.addr for nodes in restored.values() for n in nodes
        ]
        if not settings.allow_local and any(
            private_network(host, contacts) for host, _ in binds.values()
        ):
            # A testnet or a LAN: its nodes have local addresses, which the public-DHT hygiene
            # rules would otherwise refuse.
            settings = replace(settings, allow_local=True)
        socks = bind_families(binds)
        nodes = make_nodes(list(socks), functools.partial(self._make_node, settings, loop.time()))
        protos: dict[int, DhtProtocol] = {}
        try:
            for fam, sock in socks.items():
                protos[fam] = await serve_udp(nodes[fam], sock)
        except BaseException:
            for fam, sock in socks.items():
                if fam in protos:
                    protos[fam].close()
                else:
                    sock.close()
            raise
        self._started_at = loop.time()
        self._bootstrap_spec = spec
        self._ready.clear()
        self._stacks = {}
        self._nodes = {fam: nodes[fam] for fam in protos}
        for fam, proto in protos.items():
            stack = FamilyStack(
                fam, nodes[fam], proto, by_family.get(fam, []), restored[fam],
                on_state=self._family_state_changed,
                resolve=functools.partial(self._resolve_for, fam),
            )
            self._stacks[fam] = stack
            self._unsubscribe_protos.append(
                proto.subscribe(functools.partial(self._on_event, stack))
            )
        # Only now: subscriptions made while the sockets were opened went to previous nodes.
        self._sync_traffic_events()
        self.extensions.started(self._running(), loop.time())
        for stack in self._stacks.values():
            if stack.restored:
                _run(stack, functools.partial(_add_contacts, stack.restored))
        if not (any(by_family.values()) or any(restored.values()) or spec):
            for stack in self._stacks.values():
                stack.set_state("idle", "no bootstrap address")
            return
        for stack in self._stacks.values():
            stack.start_bootstrap(stack.restored, bool(spec))
        if wait:
            await self.wait_ready(timeout)

    def _make_node(
        self, settings: DhtSettings, now: float, family: int, sibling: Sibling | None
    ) -> DhtNode:
        """The node of ``family``: its saved id and address (or the session's id: BEP 32 advises
        one id for both), operation ids from the session's counter (an id names one
        operation whichever family runs it)."""
        saved = self._saved.family(family)
        node = DhtNode(
            rng=self.rng,
            secrets=self.secrets,
            now=now,
            node_id=self._forced_id or saved.node_id or self._node_id,
            settings=settings,
            family=family,
            sibling=sibling,
            op_ids=self._ops,
            external_ip=saved.external_ip,
            traffic_events=self._wants_traffic(),
            routing_policy=self.extensions.policy_for(settings, family),
        )
        self.extensions.install(node)
        return node

    async def _resolve_for(self, family: int) -> list[Addr]:
        by_family, _ = await resolve_families(self._bootstrap_spec, [family])
        return by_family.get(family, [])

    async def wait_ready(self, timeout: float | None = None, *, every_family: bool = False) -> None:
        """Until the state is "ready" (``every_family``: until every family's is);
        ``TimeoutError`` (naming the last problem) otherwise."""
        try:
            if every_family:
                waits = [s.ready.wait() for s in self._stacks.values()]
                await asyncio.wait_for(asyncio.gather(*waits), timeout)
            else:
                await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"bootstrap did not finish within {timeout:g} s ({self._detail})"
            ) from None

    async def bootstrap(self, addrs: Sequence[HostPort], wait: bool = False,
                        timeout: float = 30.0) -> None:
        """(Re)bootstrap a running session from ``addrs``, each family from its own addresses
        (the GUI's "Bootstrap" button)."""
        self._require_running()
        spec = list(addrs)
        by_family, errors = await resolve_families(spec, list(self._stacks))
        resolved = [a for addrs in by_family.values() for a in addrs]
        if not resolved and errors:
            raise BootstrapError("cannot resolve any bootstrap address: " + "; ".join(errors))
        allow_local = all(s.node.settings.allow_local for s in self._stacks.values())
        if resolved and all(is_local(a[0]) for a in resolved) and not allow_local:
            log.warning("local bootstrap addresses given but the running node refuses local "
                        "contacts; restart the session to allow them")
        self._bootstrap_spec = spec
        for stack in self._stacks.values():
            await stack.cancel_bootstrap()
            stack.bootstrap_addrs = by_family.get(stack.family, [])
        self._ready.clear()
        for stack in self._stacks.values():
            stack.start_bootstrap((), bool(spec))
        if wait:
            await self.wait_ready(timeout)

    async def stop(self) -> None:
        """Cancel what is running, save the state of every family, close the sockets. Safe to
        call twice; the session can be started again (same node ids, contacts kept)."""
        if self._state == "stopped" or not self._stacks:
            return
        for stack in self._stacks.values():
            await stack.cancel_bootstrap()
        self._pending.abort()
        self.extensions.stopped()
        self._save_state()
        for unsubscribe in self._unsubscribe_protos:
            unsubscribe()
        self._unsubscribe_protos.clear()
        stacks = list(self._stacks.values())
        for stack in stacks:
            stack.proto.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(asyncio.shield(s.proto.closed) for s in stacks)), 2.0
            )
        for stack in stacks:
            stack.state, stack.detail = "stopped", "stopped"
            stack.ready.clear()
        self._ready.clear()
        self._set_state("stopped", "stopped")
        self._stacks = {}

    async def __aenter__(self) -> DhtSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ======================================================================= operations ==
    def start_find_peers(self, info_hash: bytes, scrape: bool = False) -> LookupHandle:
        """Start a get_peers lookup; follow it through the returned handle. ``scrape``: then
        estimate the swarm (BEP 33): the handle's kind is "scrape", ``scrape_result()``."""
        return self._pending.start_lookup("scrape" if scrape else "get_peers", info_hash)

    def start_find_node(self, target: bytes) -> LookupHandle:
        return self._pending.start_lookup("find_node", target)

    def start_announce(
        self, info_hash: bytes, port: int, implied_port: bool = False
    ) -> LookupHandle:
        """A get_peers lookup followed by announce_peer to the closest token holders."""
        return self._pending.start_lookup("announce", info_hash, port, implied_port)

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
        return self._pending.start_lookup("get", target, salt=salt)

    def start_put_item(self, request: PutRequest) -> LookupHandle:
        """Start a BEP 44 put (lookup, then put to the K closest)."""
        return self._pending.start_lookup("put", request.target, request=request)

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
        """The BEP 44 items other nodes stored on us (every family), least recently put
        first."""
        self._require_node()
        now = self.now()
        items = [x for node in self._nodes.values() for x in node.items.snapshot(now)]
        return items if len(self._nodes) < 2 else sorted(items, key=lambda x: x[1].refreshed_at)

    # --- BEP 51 ------------------------------------------------------------------------------
    async def sample(self, addr: HostPort, timeout: float | None = None) -> SampleResult:
        """One ``sample_infohashes`` to ``addr`` (BEP 51), from the socket of its family.
        ``error`` set in the result when the node does not speak BEP 51; ``TimeoutError`` when
        it does not answer."""
        stack, target = await self._stack_for(addr)
        return await self._pending.sample(stack, target, timeout)

    def start_crawl(
        self, store: SampleStore | None = None, rate: float | None = None
    ) -> CrawlRecorder:
        """Crawl the DHT with BEP 51 (one crawl at a time, in every family, the ``rate`` shared
        between them): every answer is recorded in ``store`` (None: counted in memory only)
        and counted by the returned recorder, which the GUI and the CLI read. ``stop_crawl``
        ends it."""
        return self._pending.start_crawl(store, rate)

    def stop_crawl(self) -> CrawlRecorder | None:
        """Stop the running crawl (its recorder is returned, its store committed)."""
        return self._pending.stop_crawl()

    @property
    def crawl(self) -> CrawlRecorder | None:
        """The running crawl's recorder (None when none runs)."""
        return self._pending.crawl

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
        """Ping one node, from the socket of its family. Raises ``TimeoutError`` if it does not
        answer (within ``timeout``, default: the core's hard timeout)."""
        stack, target = await self._stack_for(addr)
        return await self._pending.ping(stack, target, timeout)

    # ================================================================ extension points ==
    @property
    def routing_policy(self) -> RoutingPolicyFactory | None:
        """``factory(settings, family) -> RoutingPolicy`` for every node made from the next
        ``start()`` on (None: the default rules from the settings)."""
        return self.extensions.routing_policy

    @routing_policy.setter
    def routing_policy(self, factory: RoutingPolicyFactory | None) -> None:
        if factory is not None and not callable(factory):
            raise TypeError(
                f"routing_policy must be callable or None, got {type(factory).__name__}"
            )
        self.extensions.routing_policy = factory

    def register_handler(self, method: bytes, handler: Handler) -> None:
        """Answer queries for ``method`` with ``handler(query, addr, now) -> reply`` on every
        node, now and after any restart (see ``DhtNode.register_handler``; ``node.responder``
        builds replies). A handler that raises is answered with error 202 and counted
        (``handler_errors``)."""
        self.extensions.add_handler(method, handler, self._nodes if self._stacks else {})

    def unregister_handler(self, method: bytes) -> None:
        """Stop answering ``method`` with the handler given to ``register_handler`` (a built-in
        method gets its built-in answer back)."""
        self.extensions.remove_handler(method, self._nodes if self._stacks else {})

    async def query(
        self,
        addr: HostPort,
        method: bytes,
        args: Mapping[bytes, object] | None = None,
        *,
        timeout: float | None = None,
        node_id: bytes | None = None,
    ) -> Response:
        """Send a query of ``method`` (any name: a custom one, or a built-in) with ``args`` (the
        ``a`` dict without ``id``) to ``addr``, from the socket of its family, and return the
        ``Response`` (custom keys in ``response.extra``). The core matches the reply (exact
        address, transaction id). Raises ``QueryError`` for a KRPC error reply (``code``,
        ``message``), ``TimeoutError`` after ``timeout`` seconds (default: the core's hard
        timeout), ``OverflowError`` when too many queries are in flight (nothing sent).
        Cancelling the awaiting task abandons the query. ``node_id``: the id expected at
        ``addr``, if known (a reply from another id is counted as a changed id)."""
        stack, target = await self._stack_for(addr)
        return await Operations.query(stack, target, method, dict(args or {}), timeout, node_id)

    def call_at(
        self, when: float, fn: Task, *, name: str = "", family: int | None = None
    ) -> SessionTask:
        """Run ``fn(now)`` once at ``when`` on the node's clock (``now()``), inside the node's
        timer; kept across stop/start (a task due while the session was stopped runs at the
        next start). ``family``: whose node runs it (default: the first family's). A task
        that raises is counted (``task_errors``) and reported as a ``TaskFailed`` event.
        ``fn`` may call the session (start lookups, send queries): it runs on the loop's
        thread."""
        _check_time("when", when)
        return self._add_task(SessionTask(fn, None, name, family, float(when)))

    def call_later(
        self, delay: float, fn: Task, *, name: str = "", family: int | None = None
    ) -> SessionTask:
        """``call_at(now() + delay, fn)``."""
        _check_time("delay", delay, minimum=0.0)
        return self.call_at(self.now() + delay, fn, name=name, family=family)

    def call_every(
        self,
        interval: float,
        fn: Task,
        *,
        first: float | None = None,
        name: str = "",
        family: int | None = None,
    ) -> SessionTask:
        """Run ``fn(now)`` at ``first`` (default: one ``interval`` from now) and then every
        ``interval`` seconds, on the node's clock, across stop/start (no catching up on runs
        missed while stopped). ``cancel()`` the returned task to end it."""
        _check_time("interval", interval, minimum=0.0, strict=True)
        start = self.now() + interval if first is None else first
        _check_time("first", start)
        return self._add_task(SessionTask(fn, float(interval), name, family, float(start)))

    @property
    def tasks(self) -> list[SessionTask]:
        """The session's tasks still scheduled."""
        return self.extensions.tasks

    def _add_task(self, task: SessionTask) -> SessionTask:
        if not callable(task.fn):
            raise TypeError(f"task must be callable, got {type(task.fn).__name__}")
        running = self._running()
        return self.extensions.add_task(task, running, self.now() if running else None)

    def _running(self) -> dict[int, tuple[DhtNode, DhtProtocol]]:
        """family -> (node, transport) of every family running (empty when stopped)."""
        if self._state == "stopped" and not self._stacks:
            return {}
        return {fam: (s.node, s.proto) for fam, s in self._stacks.items()}

    def subscribe(
        self,
        callback: Subscriber,
        *,
        traffic: bool = True,
        kinds: Iterable[type] | None = None,
    ) -> Callable[[], None]:
        """``callback(event)`` for every node event and every ``StateChanged``, across restarts
        (``kinds``: only events of these classes, see ``EVENT_TYPES``). Returns the function
        that unsubscribes. A callback that raises is logged and counted
        (``stats()["subscriber_errors"]``); the others still get the event.

        ``traffic=False``: the callback does without ``MessageSent``/``MessageReceived`` (one per
        datagram), as does one whose ``kinds`` leave them out. While no subscriber wants them
        the nodes do not even build them, which is a tenth of what a busy headless node spends
        per query."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        return self._subscribers.add(callback, event_kinds(kinds, EVENT_TYPES), traffic)

    def events(
        self, kinds: Iterable[type] | None = None, *, maxsize: int = DEFAULT_STREAM_SIZE
    ) -> EventStream[SessionEvent]:
        """An ``EventStream`` of the events of ``kinds`` (None: all) from now on:
        ``async for event in stream`` until ``stream.close()``. A reader more than
        ``maxsize`` events behind loses the oldest (counted in ``stream.dropped`` and
        ``stats()["events_dropped"]``); the node never waits for it."""
        stream: EventStream[SessionEvent] = EventStream(maxsize)
        unsubscribe = self.subscribe(stream.put, kinds=kinds)
        stream.attach(unsubscribe, self._count_dropped)
        return stream

    def _count_dropped(self, n: int) -> None:
        self._events_dropped += n

    def _wants_traffic(self) -> bool:
        return self._subscribers.wants_traffic()

    def _sync_traffic_events(self) -> None:
        wanted = self._wants_traffic()
        for node in self._nodes.values():
            node.set_traffic_events(wanted)

    # ======================================================================= read-only ==
    @property
    def state(self) -> State:
        return self._state

    @property
    def state_detail(self) -> str:
        return self._detail

    @property
    def families(self) -> tuple[int, ...]:
        """The address families running (4 before 6); empty when stopped."""
        return tuple(self._stacks)

    def family_state(self, family: int) -> tuple[State, str]:
        """(state, detail) of ``family`` ("stopped" when it does not run)."""
        stack = self._stacks.get(family)
        return ("stopped", "not running") if stack is None else (stack.state, stack.detail)

    @property
    def node_id(self) -> bytes:
        """Our id (the IPv4 node's when both run with different saved ids)."""
        node = self.node
        return node.node_id if node is not None else self._node_id

    @property
    def next_op_id(self) -> int:
        """The id the next lookup (or other operation) will get, in either family."""
        return self._ops.next_id

    @property
    def node(self) -> DhtNode | None:
        """The first family's node (IPv4 when it runs), for read-only views; None before the
        first start. ``nodes`` has every family's."""
        return next(iter(self._nodes.values()), None)

    @property
    def nodes(self) -> Mapping[int, DhtNode]:
        """family -> core node (read-only views); the last run's after a stop."""
        return dict(self._nodes)

    @property
    def local_address(self) -> Addr | None:
        """The first family's bound ``(ip, port)`` (the real port when bound to port 0); None
        when stopped. ``local_addresses`` has every family's."""
        return next(iter(self.local_addresses.values()), None)

    @property
    def local_addresses(self) -> dict[int, Addr]:
        out: dict[int, Addr] = {}
        for fam, stack in self._stacks.items():
            addr = stack.local_address
            if addr is not None:
                out[fam] = addr
        return out

    @property
    def bootstrap_addrs(self) -> list[Addr]:
        """The resolved bootstrap addresses of every family (IPv4 first)."""
        return [a for s in self._stacks.values() for a in s.bootstrap_addrs]

    @property
    def external_ip(self) -> str | None:
        """Our address as other nodes see it (BEP 42 votes), once known: the first family's
        that knows it. ``external_ips`` has every family's."""
        return next(iter(self.external_ips.values()), None)

    @property
    def external_ips(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for fam in FAMILIES:
            node = self._nodes.get(fam)
            ip = node.external_ip if node is not None else self._saved.family(fam).external_ip
            if ip is not None:
                out[fam] = ip
        return out

    def now(self) -> float:
        """The clock every event's ``at`` refers to."""
        return asyncio.get_running_loop().time()

    def routing_snapshot(self, family: int | None = None) -> RoutingSnapshot:
        """The routing table of ``family`` (default: the first family's)."""
        node = self._require_node() if family is None else self._nodes.get(family)
        if node is None:
            raise RuntimeError(f"no {family_name(family or 4)} node in this session")
        return node.routing_snapshot(self.now())

    def stats(self) -> dict[str, float]:
        """Node counters and transport error counters summed over the families,
        ``good_nodes``, ``routing_nodes`` and ``uptime`` seconds; per family
        ``routing_nodes_v4``, ``good_nodes_v4`` (``_v6``) and ``ready_v4`` (1 when ready);
        ``subscriber_errors`` (callbacks that raised), ``events_dropped`` (by event streams
        whose readers fell behind), ``session_tasks`` (tasks scheduled)."""
        if not self._nodes:
            return {}
        now = self.now()
        out: dict[str, float] = {}
        for fam, node in self._nodes.items():
            for key, value in node.stats(now).items():
                out[key] = out.get(key, 0) + value
            good = node.good_node_count(now)
            out["good_nodes"] = out.get("good_nodes", 0) + good
            out[f"good_nodes_v{fam}"] = good
            out[f"routing_nodes_v{fam}"] = node.routing_size()
            stack = self._stacks.get(fam)
            out[f"ready_v{fam}"] = 1.0 if stack is not None and stack.state == "ready" else 0.0
        for stack in self._stacks.values():
            for key, count in stack.proto.counters.items():
                out[key] = out.get(key, 0) + count
        # The transports count their own subscribers' errors (the session's stacks), this the
        # session's subscribers'.
        out["subscriber_errors"] = out.get("subscriber_errors", 0) + self._subscribers.errors
        out["events_dropped"] = self._events_dropped
        out["session_tasks"] = len(self.extensions.tasks)
        out["uptime"] = now - self._started_at if self._state != "stopped" else 0.0
        return out

    # ======================================================================= internals ==
    def _save_state(self) -> None:
        """Keep every family's state for a restart, and write it to ``state_path`` if set.
        Families that did not run this time keep what was saved for them."""
        exports = {fam: node.export_state() for fam, node in self._nodes.items()}
        for fam, kept in self._saved.families.items():
            if fam not in exports:
                exports[fam] = _export_of(fam, kept.node_id, kept.external_ip, kept.nodes)
        document = state_document(exports[fam] for fam in sorted(exports))
        try:
            self._saved = parse_state(document)
        except ValueError:
            log.exception("nodes exported an invalid state")
        if self.state_path is not None:
            try:
                save_state(self.state_path, document)
            except OSError as err:
                log.warning("cannot save DHT state to %s: %s", self.state_path, err)

    def _require_node(self) -> DhtNode:
        node = self.node
        if node is None:
            raise RuntimeError("the DHT session has not been started")
        return node

    def _require_running(self) -> list[FamilyStack]:
        if not self._stacks or self._state == "stopped":
            raise RuntimeError("the DHT session is not running")
        return list(self._stacks.values())

    async def _stack_for(self, addr: HostPort) -> tuple[FamilyStack, Addr]:
        """The running family that can reach ``addr`` and its resolved address (IPv4 first
        for a name of both families). ValueError when none can."""
        stacks = self._require_running()
        by_family, errors = await resolve_families([addr], [s.family for s in stacks])
        for stack in stacks:
            found = by_family.get(stack.family)
            if found:
                return stack, found[0]
        if errors:
            raise ValueError(errors[0])
        names = " or ".join(s.name for s in stacks)
        raise ValueError(f"{addr}: no {names} address, and this session runs only {names}")

    def _on_event(self, stack: FamilyStack, event: ev.Event) -> None:
        self._pending.on_event(event)
        if isinstance(event, ev.OtherFamilyContacts):
            self._offer(event)
        elif isinstance(event, ev.NodeIdChanged):
            # BEP 42: this family's voted address needed another id. A restart must keep it
            # (over an id given at construction too), and so must the state file even if we
            # never stop cleanly: the saved state now holds every running family's id.
            self._save_state()
            self._forced_id = None
        elif (
            isinstance(event, ev.NodeRemoved)
            and stack.state == "ready"
            and stack.node.routing_size() == 0
        ):
            # Lost every contact of this family (network down, laptop resumed): find our way
            # back in.
            stack.set_state("bootstrapping", "routing table empty; bootstrapping again")
            stack.start_bootstrap((), bool(self._bootstrap_spec))
        self._publish(event)

    def _offer(self, event: ev.OtherFamilyContacts) -> None:
        """BEP 32: contacts one family's node learned for the other go to that node (which
        pings them before use) and, while it bootstraps, seed its next attempt."""
        other = self._stacks.get(event.family)
        if other is None:
            return
        other.proto.run(lambda now: other.node.offer_contacts(event.nodes, now))
        other.hint(event.nodes)

    def _publish(self, event: SessionEvent) -> None:
        self._subscribers.publish(event)

    def _family_state_changed(self, stack: FamilyStack) -> None:
        self._set_state(*combined_state(list(self._stacks.values()) or [stack]))

    def _set_state(self, new: State, detail: str) -> None:
        old = self._state
        self._state = new
        self._detail = detail
        if new == "ready":
            self._ready.set()
        else:
            self._ready.clear()
        if old != new or detail:
            log.info("DHT session %s: %s", new, detail)
            loop = asyncio.get_running_loop()
            families = tuple((s.family, str(s.state)) for s in self._stacks.values())
            self._publish(StateChanged(old, new, detail, loop.time(), families))


def _check_time(
    name: str, value: float, *, minimum: float | None = None, strict: bool = False
) -> None:
    """A finite number of seconds (at least ``minimum``, or above it if ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(
            f"{name} must be {'above' if strict else 'at least'} {minimum:g} s, got {value!r}"
        )


def _run(stack: FamilyStack, call: Callable[[DhtNode, float], T]) -> T:
    """``call(node, now)`` on ``stack``'s node through its transport (which then flushes)."""
    node = stack.node
    return stack.proto.run(lambda now: call(node, now))


def _add_contacts(contacts: Sequence[NodeInfo], node: DhtNode, now: float) -> None:
    node.add_contacts(contacts, now)


def _export_of(
    family: int, node_id: bytes | None, external_ip: str | None, nodes: Sequence[NodeInfo]
) -> dict[str, object]:
    """A family's saved state in ``DhtNode.export_state()`` form (kept for a family that did
    not run this time)."""
    return {
        "family": family,
        "node_id": node_id.hex() if node_id is not None else None,
        "external_ip": external_ip,
        "nodes": [[n.id.hex(), n.addr[0], n.addr[1]] for n in nodes],
    }
