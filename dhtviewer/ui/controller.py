"""Controller: the one bridge between the DHT session (asyncio) and the Qt widgets.

It owns the ``DhtSession`` and, in local-testnet mode, the embedded ``LocalTestnet`` (run in a
thread of its own, so its many nodes do not load the Qt thread); in simulated-Mainline mode, the
``dhtviewer simnet`` child process (both in ``LocalNetworks``). It starts and stops them
(``StartOptions`` says how, ``start_options``), and turns session events into Qt signals: they
are queued as they happen (``EventBatcher``) and handed to the widgets in batches by a 100 ms
``QTimer``: whatever the packet rate, the UI sees at most ten ``events`` signals a second, and
the routing table snapshots (one per address family the session runs, BEP 32; routing events
say which family changed) are taken at most that often (only when one changed, and once a
second so ages tick). The lookups the user asks for live in
``UserLookups``, the announce check in ``announce_check``; their signals are the controller's.
Every operation the UI can ask for is a plain method that starts an asyncio task; a task that
fails logs its exception (the log panel shows it) and emits ``error``, so nothing is lost.

Everything runs on the Qt thread: under qasync the asyncio loop is Qt's event loop. The one
exception is the embedded testnet's thread, which is why the application collects garbage in
the GUI thread only (``app.collect_garbage_in_gui_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import Addr
from dhtviewer.net.handles import AnnounceResult, LookupHandle
from dhtviewer.net.session import (
    BindError,
    DhtSession,
    PortInUseError,
    SessionEvent,
    StateChanged,
)
from dhtviewer.net.testnet import LocalTestnet
from dhtviewer.simnet.child import SimnetChild
from dhtviewer.ui.announce_check import AnnounceVerification, verify_announce
from dhtviewer.ui.event_batcher import TICK_MS, EventBatcher
from dhtviewer.ui.local_networks import LocalNetworkError, LocalNetworks
from dhtviewer.ui.start_options import (
    CUSTOM,
    MAINLINE,
    MAX_SIMNET_NODES,
    MODES,
    SIMNET,
    SIMNET_NODES,
    TESTNET,
    StartOptions,
    find_free_port,
    unspecified,
)
from dhtviewer.ui.user_lookups import LOOKUP_TIMEOUT, DeferredLookup, UserLookups

# what the widgets import with the controller
__all__ = [
    "CUSTOM",
    "MAINLINE",
    "MAX_SIMNET_NODES",
    "MODES",
    "READY_GOOD_NODES",
    "SIMNET",
    "SIMNET_NODES",
    "STARTING",
    "STOPPED",
    "STOPPING",
    "TESTNET",
    "AnnounceVerification",
    "Controller",
    "StartOptions",
    "find_free_port",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Controller states: the session's own ("stopped", "idle", "bootstrapping", "ready") plus the
# two transitions the controller runs itself.
STARTING, STOPPING, STOPPED = "starting", "stopping", "stopped"

STALL_SECONDS = 6.0
"""A bootstrap with no answer at all after this long is reported as stalled."""
READY_GOOD_NODES = 8
"""Good nodes the session wants before it reports "ready" (shown as progress)."""


class Controller(QObject):
    """See the module docstring. ``state`` is one of "stopped", "starting", "bootstrapping",
    "ready", "idle", "stopping"."""

    state_changed = Signal(str, str)
    """(state, detail) whenever either changes (at once: state changes are rare)."""
    events = Signal(list)
    """A batch of session events, in order (at most one batch per tick)."""
    routing_changed = Signal(object)
    """A RoutingSnapshot of one address family (``snapshot.family``), after changes to that
    family's table, at most once per tick; once a second otherwise."""
    stats_changed = Signal(dict)
    """``DhtSession.stats()`` plus "now" (the events' clock), twice a second while running."""
    testnet_changed = Signal(object)
    """dict info_hash -> announced peers of the embedded testnet; None when it stopped."""
    simnet_changed = Signal(object)
    """The simulated Mainline's ready line (dict: routers, control, nodes, build_s, ...) plus
    "swarms": [(info_hash hex, peers)] of its most popular seeded swarms; None when it stopped."""
    external_address_changed = Signal(str, int)
    """(ip, votes) learned from BEP 42 ``ip`` votes."""
    lookup_started = Signal(int, str, object)
    """(lookup id, kind, target) of a lookup the user asked for ("verify" for the announce
    check). Lookup ids never repeat in the app's life, across Stop/Start and mode changes."""
    lookup_deferred = Signal(str, object)
    """(message, target): a lookup waits for the bootstrap (the table is empty); it starts
    with ``lookup_started`` once a node is known, or ends with ``lookup_refused``; ("", None)
    when the user cancelled it."""
    lookup_refused = Signal(str)
    """Why a lookup the user asked for did not start (also sent as ``error``)."""
    lookup_finished = Signal(object)
    """LookupResult of a user lookup."""
    announce_finished = Signal(object)
    """AnnounceResult (stored_at / failed)."""
    announce_verified = Signal(object)
    """AnnounceVerification."""
    scrape_finished = Signal(object)
    """ScrapeResult of a lookup started with ``find_peers(scrape=True)`` (BEP 33)."""
    item_finished = Signal(object)
    """ItemResult of a ``get_item`` or PutResult of a ``put_item`` (BEP 44)."""
    ping_finished = Signal(str, bool, str)
    """(address, answered, one-line text)."""
    bootstrap_stalled = Signal(str)
    """Plain-words explanation: no router answered within STALL_SECONDS."""
    port_in_use = Signal(str, int, int)
    """(host, busy port, a free port to offer; 0 if none found)."""
    error = Signal(str)
    """A one-line message for the user (details went to the log)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: DhtSession | None = None
        self.networks = LocalNetworks(self._starting, self)
        """The local testnet or simulated Mainline the node joins (TESTNET, SIMNET modes)."""
        self.networks.testnet_changed.connect(self.testnet_changed)
        self.networks.simnet_changed.connect(self.simnet_changed)
        self.options: StartOptions | None = None
        self._state = STOPPED
        self._detail = "not started"
        self._unsubscribe: Any = None
        self.batcher = EventBatcher()
        """The session's events queued for the next tick (and what else the tick owes)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: asyncio.Task[Any] | None = None
        self.lookups = UserLookups(self._spawn, self)
        """The lookups the user asked for (its signals are forwarded as the controller's)."""
        for mine, theirs in (
            (self.lookups.started, self.lookup_started),
            (self.lookups.deferred, self.lookup_deferred),
            (self.lookups.refused, self.lookup_refused),
            (self.lookups.finished, self.lookup_finished),
            (self.lookups.scrape_finished, self.scrape_finished),
            (self.lookups.item_finished, self.item_finished),
            (self.lookups.error, self.error),
        ):
            mine.connect(theirs)
        self._first_op_id = 1
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._stall_timer = QTimer(self)
        self._stall_timer.setSingleShot(True)
        self._stall_timer.timeout.connect(self._check_stall)

    # ======================================================================== reading ==
    @property
    def state(self) -> str:
        return self._state

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def running(self) -> bool:
        """A session exists and is not stopped (bootstrapping, ready or idle)."""
        return self.session is not None and self.session.state != "stopped"

    @property
    def busy(self) -> bool:
        """Starting or stopping."""
        return self._busy is not None and not self._busy.done()

    @property
    def testnet(self) -> LocalTestnet | None:
        """The embedded testnet (it runs in its own thread: read its addresses only)."""
        return self.networks.testnet

    @property
    def simnet(self) -> SimnetChild | None:
        """The simulated Mainline child process (SIMNET mode)."""
        return self.networks.simnet

    @property
    def start_progress(self) -> float | None:
        """How far the start is (0 to 1) while a testnet starts; None otherwise."""
        return self.networks.start_progress

    @property
    def current_lookup(self) -> LookupHandle | None:
        """The lookup Esc cancels (a get_peers, scrape or find_node the user started)."""
        return self.lookups.current

    @property
    def deferred_lookup(self) -> DeferredLookup | None:
        """A lookup waiting for the bootstrap (see ``DeferredLookup``)."""
        return self.lookups.waiting

    @property
    def dropped_events(self) -> int:
        """Traffic events dropped because the views fell behind (see ``EventBatcher``)."""
        return self.batcher.dropped

    def now(self) -> float:
        """The clock of every event's ``at``."""
        return _loop().time()

    def local_address(self) -> Addr | None:
        return self.session.local_address if self.session is not None else None

    def node_id(self) -> bytes | None:
        return self.session.node_id if self.session is not None else None

    def external_address(self) -> tuple[str, int] | None:
        """(ip, votes) once the network told us how it sees us."""
        return self.batcher.external_address()

    def local_addresses(self) -> dict[int, Addr]:
        """family -> the bound (ip, port) of each running family's socket."""
        return self.session.local_addresses if self.session is not None else {}

    def bep42_ok(self) -> bool | None:
        node = self.session.node if self.session is not None else None
        return node.bep42_ok() if node is not None else None

    # ====================================================================== life cycle ==
    def start(self, options: StartOptions) -> asyncio.Task[bool | None] | None:
        """Start the node (and the testnet in TESTNET mode). None if already running or busy;
        the task's result is True once the session is bootstrapping."""
        if self.busy or self.running:
            log.info("start ignored: the node is %s", self._state)
            return None
        return self._set_busy(self._spawn(self._start(options), "starting the node"))

    def stop(self) -> asyncio.Task[None] | None:
        """Stop the node (saving its state) and the testnet, after a start in progress."""
        if self.busy and self._state == STOPPING:
            return None
        return self._set_busy(self._spawn(self._stop_after(self._busy), "stopping the node"))

    def restart(self, options: StartOptions) -> asyncio.Task[bool | None]:
        """Stop whatever runs, then start with ``options``."""
        previous = self._busy

        async def run() -> bool:
            await self._stop_after(previous)
            return await self._start(options)

        return self._set_busy(self._spawn(run(), "restarting the node"))

    def _set_busy(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._busy = task

        def done(_task: asyncio.Task[T]) -> None:
            # "busy" is part of what the UI shows (which buttons work): tell it it ended
            self.state_changed.emit(self._state, self._detail)

        task.add_done_callback(done)
        return task

    def rebootstrap(self, addrs: Sequence[str] | None = None) -> asyncio.Task[None] | None:
        """Bootstrap the running node again, from ``addrs`` (HOST:PORT texts) or from what it
        started with (in testnet mode: the testnet)."""
        session, options = self.session, self.options
        if session is None or options is None or not self.running:
            self._running_session("re-bootstrap")
            return None
        if options.mode == TESTNET and self.testnet is not None:
            spec: list[Any] = list(self.testnet.bootstrap_addrs)
        elif options.mode == SIMNET and self.simnet is not None:
            spec = list(self.simnet.routers)
        elif addrs:
            spec = list(addrs)
        else:
            spec = options.bootstrap_spec()

        async def run() -> None:
            self.batcher.responses = 0
            await session.bootstrap(spec)
            self._stall_timer.start(int(STALL_SECONDS * 1000))

        return self._spawn(run(), "re-bootstrapping")

    async def shutdown(self) -> None:
        """Stop everything and wait for it (window close). Safe to call twice."""
        for task in list(self._tasks):
            if task is not self._busy and task is not asyncio.current_task():
                task.cancel()
        await self._stop_after(self._busy)
        self._timer.stop()
        self._tick()

    async def _start(self, options: StartOptions) -> bool:
        self.options = options
        self.batcher.forget_external()
        self._set_state(STARTING, "starting")
        host = options.bind_host.strip() or "0.0.0.0"
        spec: list[Any] = options.bootstrap_spec()
        if options.mode == TESTNET:
            if unspecified(host):
                # a testnet lives on loopback; its client has no business on the LAN
                host = "127.0.0.1"
            try:
                spec = await self.networks.start_testnet(options)
            except LocalNetworkError as err:
                self._fail(str(err))
                return False
        settings = options.settings
        if options.mode == SIMNET:
            if unspecified(host):
                host = "127.0.0.1"
            try:
                spec = await self.networks.start_simnet(options)
            except LocalNetworkError as err:
                self._fail(str(err))
                return False
            # The simulated Mainline spreads its nodes over many /24s of loopback, as the
            # Internet does: the subnet rule applies there as on the real network (a local
            # testnet, whose nodes share 127.0.0.0/24, relaxes it).
            settings = replace(settings, restrict_local_subnets=True)
        session = DhtSession(settings, bind=(host, options.port),
                             state_path=options.state_path, node_id=options.node_id,
                             first_op_id=self._next_op_id())
        if session.load_warning is not None:
            log.warning("%s", session.load_warning)
        self._unsubscribe = session.subscribe(self._on_event)
        self.session = session
        self.batcher.responses = 0
        try:
            await session.start(spec, wait=False)
        except PortInUseError as err:
            self._unsubscribe()
            self.session = None
            await self.networks.stop()
            free = find_free_port(host, options.port)
            log.warning("%s", err)
            self._set_state(STOPPED, f"UDP port {options.port} is in use")
            self.port_in_use.emit(host, options.port, free)
            return False
        except (BindError, OSError) as err:
            self._unsubscribe()
            self.session = None
            await self.networks.stop()
            self._fail(str(err))
            return False
        local = session.local_address
        log.info("node %s listening on %s", session.node_id.hex(),
                 format_addr(local) if local else "?")
        if session.external_ip is not None:
            for fam, ip in session.external_ips.items():
                self.batcher.set_external(fam, ip, 0)
        self._set_state(session.state, session.state_detail)
        if session.state == "bootstrapping":
            self._stall_timer.start(int(STALL_SECONDS * 1000))
        return True

    async def _stop_after(self, busy: asyncio.Task[Any] | None) -> None:
        """Stop once ``busy`` (a start or stop already under way) is over."""
        if busy is not None and busy is not asyncio.current_task() and not busy.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await busy
        await self._stop()

    async def _stop(self) -> None:
        self._stall_timer.stop()
        self.lookups.node_stopping()
        session = self.session
        if session is not None and session.state != "stopped":
            self._set_state(STOPPING, "stopping; saving the node state")
            await session.stop()
            if session.state_path is not None:
                log.info("node state saved to %s", session.state_path)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.networks.stop()
        self.batcher.forget_external()  # the next run learns them anew
        self._set_state(STOPPED, "stopped")

    def _next_op_id(self) -> int:
        """Where the next session's lookup ids start: after every id handed out so far, so
        that a lookup id names one lookup for the app's whole life (the lookup history, the
        peers table and exports are keyed by it)."""
        if self.session is not None:
            self._first_op_id = max(self._first_op_id, self.session.next_op_id)
        return self._first_op_id

    def _starting(self, detail: str) -> None:
        """How a local network's start goes (late reports, after the start, are dropped)."""
        if self._state == STARTING:
            self._set_state(STARTING, detail)

    def _fail(self, message: str) -> None:
        log.error("%s", message)
        self._set_state(STOPPED, message)
        self.error.emit(message)

    # ====================================================================== operations ==
    def find_peers(self, info_hash: bytes, scrape: bool = False) -> LookupHandle | None:
        """Start a get_peers lookup; it becomes the current one (what Esc cancels). ``scrape``:
        then estimate the swarm from the closest nodes' BEP 33 filters (``scrape_finished``)."""
        kind = "scrape" if scrape else "get_peers"
        return self._start_lookup("find peers", kind, info_hash, "lookup")

    def find_node(self, target: bytes) -> LookupHandle | None:
        return self._start_lookup("find node", "find_node", target, "find_node")

    def _start_lookup(
        self, what: str, kind: str, target: bytes, task: str
    ) -> LookupHandle | None:
        session = self._running_session(what)
        if session is None:
            return None
        return self.lookups.start(session, what, kind, target, task)

    def cancel_lookup(self) -> bool:
        """Cancel the current lookup (or the one waiting for the bootstrap); False if none was
        running."""
        return self.lookups.cancel()

    def announce(
        self, info_hash: bytes, port: int, implied_port: bool = False
    ) -> asyncio.Task[AnnounceVerification | None] | None:
        """Announce, then verify with an independent get_peers lookup."""
        session = self._running_session("announce")
        if session is None:
            return None
        handle = session.start_announce(info_hash, port, implied_port)
        self.lookups.register(handle, "announce", info_hash)
        return self._spawn(
            self._announce(session, handle, port, implied_port),
            f"announce of {info_hash.hex()}",
        )

    def ping(self, addr: Addr) -> asyncio.Task[None] | None:
        session = self._running_session("ping")
        if session is None:
            return None
        return self._spawn(self._ping(session, addr), f"ping of {format_addr(addr)}")

    def lookup_parts(self, lookup_id: int) -> tuple[int, ...]:
        """The lookup ids of every address family's part of the user lookup ``lookup_id``
        (what ``lookup_started`` named), first one first; just ``(lookup_id,)`` if unknown."""
        return self.lookups.parts(lookup_id)

    def _running_session(self, what: str) -> DhtSession | None:
        if self.session is None or not self.running:
            log.warning("cannot %s: the node is not running", what)
            self.error.emit(f"Cannot {what}: the node is not running. Start it first.")
            return None
        return self.session

    # --- BEP 44 ------------------------------------------------------------------------------
    def get_item(self, target: bytes, salt: bytes = b"") -> LookupHandle | None:
        """Start a BEP 44 get; ``item_finished`` gets its ItemResult."""
        return self._start_item("get", target, salt=salt)

    def put_item(self, request: PutRequest) -> LookupHandle | None:
        """Start a BEP 44 put; ``item_finished`` gets its PutResult."""
        return self._start_item("put", request.target, request=request)

    def stored_items(self) -> list[tuple[bytes, StoredItem]]:
        """The items other nodes put on our node (empty while it is not running)."""
        if self.session is None or not self.running:
            return []
        return self.session.stored_items()

    def _start_item(self, kind: str, target: bytes, *, salt: bytes = b"",
                    request: PutRequest | None = None) -> LookupHandle | None:
        session = self._running_session(f"{kind} the item")
        if session is None:
            return None
        return self.lookups.start_item(session, kind, target, salt=salt, request=request)

    async def _announce(
        self, session: DhtSession, handle: LookupHandle, port: int, implied_port: bool,
    ) -> AnnounceVerification | None:
        result: AnnounceResult = await handle.announce_result(LOOKUP_TIMEOUT)
        log.info("announce of %s stored at %d nodes, refused or unanswered by %d",
                 result.info_hash.hex(), len(result.stored_at), len(result.failed))
        self.announce_finished.emit(result)
        if session is not self.session or not self.running:
            return None
        check = await verify_announce(session, result, port, implied_port,
                                      self.lookups.register)
        self.announce_verified.emit(check)
        return check

    async def _ping(self, session: DhtSession, addr: Addr) -> None:
        where = format_addr(addr)
        try:
            res = await session.ping(addr)
        except TimeoutError:
            log.info("ping %s: no answer", where)
            self.ping_finished.emit(where, False, f"{where} did not answer the ping")
            return
        version = res.version.hex() if res.version else "no version"
        text = f"{where} answered in {res.rtt * 1000:.0f} ms (id {res.id.hex()[:12]}…, {version})"
        log.info("ping %s", text)
        self.ping_finished.emit(where, True, text)

    # ======================================================================= events ==
    def _on_event(self, event: SessionEvent) -> None:
        # Called by the session for every event: must stay cheap (no Qt signals here).
        self.batcher.add(event)
        if isinstance(event, StateChanged):
            if event.new != "bootstrapping":
                self._stall_timer.stop()
            # a handful per session: told at once, so no transition is ever skipped
            self._set_state(event.new, event.detail)

    def _tick(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Qt is turning without asyncio (a test pumping Qt events between two runs of the
            # loop): the session's clock is not readable, the next real tick delivers
            return
        batch = self.batcher.take_events()
        if batch:
            self.events.emit(batch)
        for ip, votes in self.batcher.take_external():
            self.external_address_changed.emit(ip, votes)
        session = self.session
        if session is None or session.node is None or not self.running:
            return
        now = session.now()
        self.lookups.tick(session, now)
        for family in self.batcher.routing_due(now, session.families):
            self.routing_changed.emit(session.routing_snapshot(family))
        if self.batcher.stats_due(now):
            stats = session.stats()
            stats["now"] = now
            self.stats_changed.emit(stats)

    def _check_stall(self) -> None:
        session = self.session
        if session is None or session.state != "bootstrapping" or self.batcher.responses:
            return
        if not session.bootstrap_addrs:
            why = ("None of the bootstrap routers could be found (their names did not resolve). "
                   "You may be offline, or DNS is not working.")
        else:
            why = (f"No bootstrap router answered within {STALL_SECONDS:.0f} seconds. You may be "
                   "offline, or a firewall may block UDP traffic.")
        log.warning("%s", why)
        self.bootstrap_stalled.emit(why)

    def _set_state(self, state: str, detail: str) -> None:
        if (state, detail) == (self._state, self._detail):
            return
        self._state, self._detail = state, detail
        self.state_changed.emit(state, detail)

    # ======================================================================== tasks ==
    def _spawn(self, coro: Coroutine[Any, Any, T], what: str) -> asyncio.Task[T | None]:
        """Run ``coro`` as a task whose failure is logged and reported, never lost; the task
        then returns None."""
        task = _loop().create_task(self._guard(coro, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, T], what: str) -> T | None:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # the log panel shows the traceback, the status bar the one-liner
            log.exception("%s failed", what)
            self.error.emit(f"{what[0].upper()}{what[1:]} failed: {err}")
            return None


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()

