"""Controller: the one bridge between the DHT session (asyncio) and the Qt widgets.

It owns the ``DhtSession`` and, in local-testnet mode, the embedded ``LocalTestnet`` (run in a
thread of its own, so its many nodes do not load the Qt thread); in simulated-Mainline mode, the
``dhtviewer simnet`` child process (``simnet.child.SimnetChild``: never a thread of the GUI,
ended with it). Session
events are queued as they happen and handed to the widgets in batches by a 100 ms ``QTimer``:
whatever the packet rate, the UI sees at most ten ``events`` signals a second, and the routing
table snapshots (one per address family the session runs, BEP 32; routing events say which
family changed) are taken at most that often (only when one changed, and once a second so ages
tick). Every operation the UI can ask for is a plain method that starts an asyncio task; a task
that fails logs its exception (the log panel shows it) and emits ``error``, so nothing is lost.

Everything runs on the Qt thread: under qasync the asyncio loop is Qt's event loop. The one
exception is the embedded testnet's thread, which is why the application collects garbage in
the GUI thread only (``app.collect_garbage_in_gui_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import format_addr, host_family, socket_family
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node import LookupLimitError
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.handles import AnnounceResult, ItemResult, LookupHandle, LookupResult, PutResult
from dhtviewer.net.session import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PORT,
    BindError,
    DhtSession,
    PortInUseError,
    SessionEvent,
    StateChanged,
)
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet
from dhtviewer.simnet.child import SimnetChild, SimnetChildError

log = logging.getLogger(__name__)
T = TypeVar("T")

MAINLINE, TESTNET, CUSTOM, SIMNET = "mainline", "testnet", "custom", "simnet"
MODES = (MAINLINE, TESTNET, CUSTOM, SIMNET)
SIMNET_NODES = 1_000_000
"""Default size of the simulated Mainline (``dhtviewer simnet``)."""
MAX_SIMNET_NODES = 10_000_000

# Controller states: the session's own ("stopped", "idle", "bootstrapping", "ready") plus the
# two transitions the controller runs itself.
STARTING, STOPPING, STOPPED = "starting", "stopping", "stopped"

TICK_MS = 100
"""Batching period: at most 10 deliveries of events (and redraws) per second."""
SNAPSHOT_EVERY = 1.0
"""Seconds between routing snapshots when nothing changed (the "last seen" ages move on)."""
STATS_EVERY = 0.5
STALL_SECONDS = 6.0
"""A bootstrap with no answer at all after this long is reported as stalled."""
MAX_PENDING = 50_000
"""Traffic events queued between two ticks beyond this are dropped (counted): a flood must not
grow memory without bound while the UI is busy."""
LOOKUP_TIMEOUT = 60.0
MAX_REMEMBERED_LOOKUPS = 1000
"""User lookups whose family parts ``lookup_parts`` still knows (the views keep 200)."""
READY_GOOD_NODES = 8
"""Good nodes the session wants before it reports "ready" (shown as progress)."""
_ROUTING = (ev.NodeAdded, ev.NodeRemoved, ev.NodeStateChanged, ev.BucketSplit, ev.NodeIdChanged)
"""Events after which the routing views need a new snapshot (a new id re-sorts every bucket)."""


@dataclass(frozen=True, slots=True)
class StartOptions:
    """How to start the node. ``routers`` are used in MAINLINE mode, ``custom`` in CUSTOM mode;
    TESTNET mode starts ``testnet_nodes`` nodes from ``testnet_base`` and bootstraps from them.
    ``port`` 0 binds an ephemeral port. ``state_path`` None keeps the node state in memory."""

    mode: str = MAINLINE
    routers: tuple[str, ...] = DEFAULT_BOOTSTRAP
    custom: tuple[str, ...] = ()
    testnet_nodes: int = 64
    testnet_base: str = "127.0.1.1"
    testnet_seed: int | None = None
    simnet_nodes: int = SIMNET_NODES
    simnet_profile: str = "realistic"
    simnet_scenarios: tuple[str, ...] = ()
    """``--scenario`` arguments of the simulated Mainline (eclipse:INFOHASH, poison, ...)."""
    bind_host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    settings: DhtSettings = field(default_factory=DhtSettings)
    state_path: Path | None = None
    node_id: bytes | None = None
    """Our id for this run (tests, screenshots); None: the saved one, or a random one."""

    def bootstrap_spec(self) -> list[str]:
        return list(self.custom if self.mode == CUSTOM else self.routers)


@dataclass(frozen=True, slots=True)
class AnnounceVerification:
    """The outcome of checking an announce with an independent get_peers lookup.
    ``expected``: the peer address we looked for (ip may be None when our address is unknown,
    then any peer on the port counts). ``matched``: the returned peers that are us."""

    info_hash: bytes
    expected: tuple[str | None, int]
    verified: bool
    matched: tuple[Addr, ...]
    peers: tuple[Addr, ...]
    lookup_id: int
    detail: str


def find_free_port(host: str, near: int, tries: int = 20) -> int:
    """A UDP port free on ``host``: the first of ``near+1 .. near+tries`` that binds, else any
    ephemeral one (0 if even that fails)."""
    family = socket_family(host)
    candidates = [p for p in range(near + 1, near + 1 + tries) if 0 < p < 65536] + [0]
    for port in candidates:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    return 0


def _unspecified(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


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
    check)."""
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
        self.testnet: LocalTestnet | None = None
        """The embedded testnet (it runs in its own thread: read its addresses only)."""
        self._testnet_runner: BackgroundTestnet | None = None
        self.simnet: SimnetChild | None = None
        """The simulated Mainline child process (SIMNET mode)."""
        self.options: StartOptions | None = None
        self._state = STOPPED
        self._detail = "not started"
        self._unsubscribe: Any = None
        self._pending: list[SessionEvent] = []
        self.dropped_events = 0
        self._routing_dirty: set[int] = set()
        self._last_snapshot = -1e9
        self._last_stats = -1e9
        # family -> (ip, votes): each family's node learns its own external address
        self._external: dict[int, tuple[str, int]] = {}
        self._external_dirty: set[int] = set()
        self._responses = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: asyncio.Task[Any] | None = None
        self.current_lookup: LookupHandle | None = None
        self._parts: dict[int, tuple[int, ...]] = {}  # first lookup id -> every family's
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

    def now(self) -> float:
        """The clock of every event's ``at``."""
        return _loop().time()

    def local_address(self) -> Addr | None:
        return self.session.local_address if self.session is not None else None

    def node_id(self) -> bytes | None:
        return self.session.node_id if self.session is not None else None

    def external_address(self) -> tuple[str, int] | None:
        """(ip, votes) once the network told us how it sees us."""
        return next(iter(self._external.values()), None)

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
            self._responses = 0
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
        self._external, self._external_dirty = {}, set()
        self._set_state(STARTING, "starting")
        host = options.bind_host.strip() or "0.0.0.0"
        spec: list[Any] = options.bootstrap_spec()
        if options.mode == TESTNET:
            if _unspecified(host):
                # a testnet lives on loopback; its client has no business on the LAN
                host = "127.0.0.1"
            self._set_state(STARTING, f"starting a local testnet of {options.testnet_nodes} nodes")
            # Dual stack (an IPv6 node per host on ::1) when the node joins IPv6 too.
            ipv6 = 6 in options.settings.address_families.families and ipv6_loopback_available()
            net = LocalTestnet(options.testnet_nodes, options.testnet_base, port=0,
                               seed=options.testnet_seed, ipv6=ipv6)
            # The testnet runs on its own loop in a thread: its nodes' traffic must not load
            # the Qt thread, which belongs to our node and the window.
            runner = BackgroundTestnet(net)
            try:
                await _loop().run_in_executor(None, runner.__enter__)
            except (BindError, ValueError, TimeoutError) as err:
                self._fail(f"cannot start the local testnet: {err}")
                return False
            self.testnet, self._testnet_runner = net, runner
            self.testnet_changed.emit(dict(net.announced))
            spec = list(net.bootstrap_addrs)
            log.info("local testnet: %d nodes from %s", net.n, format_addr(net.addrs[0]))
        settings = options.settings
        if options.mode == SIMNET:
            if _unspecified(host):
                host = "127.0.0.1"
            started = await self._start_simnet(options)
            if started is None:
                return False
            spec = started
            # The simulated Mainline spreads its nodes over many /24s of loopback, as the
            # Internet does: the subnet rule applies there as on the real network (a local
            # testnet, whose nodes share 127.0.0.0/24, relaxes it).
            settings = replace(settings, restrict_local_subnets=True)
        session = DhtSession(settings, bind=(host, options.port),
                             state_path=options.state_path, node_id=options.node_id)
        if session.load_warning is not None:
            log.warning("%s", session.load_warning)
        self._unsubscribe = session.subscribe(self._on_event)
        self.session = session
        self._responses = 0
        try:
            await session.start(spec, wait=False)
        except PortInUseError as err:
            self._unsubscribe()
            self.session = None
            await self._stop_testnet()
            await self._stop_simnet()
            free = find_free_port(host, options.port)
            log.warning("%s", err)
            self._set_state(STOPPED, f"UDP port {options.port} is in use")
            self.port_in_use.emit(host, options.port, free)
            return False
        except (BindError, OSError) as err:
            self._unsubscribe()
            self.session = None
            await self._stop_testnet()
            await self._stop_simnet()
            self._fail(str(err))
            return False
        local = session.local_address
        log.info("node %s listening on %s", session.node_id.hex(),
                 format_addr(local) if local else "?")
        if session.external_ip is not None:
            for fam, ip in session.external_ips.items():
                self._external[fam] = (ip, 0)
                self._external_dirty.add(fam)
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
        if self.current_lookup is not None:
            self.current_lookup.cancel()
            self.current_lookup = None
        session = self.session
        if session is not None and session.state != "stopped":
            self._set_state(STOPPING, "stopping; saving the node state")
            await session.stop()
            if session.state_path is not None:
                log.info("node state saved to %s", session.state_path)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._stop_testnet()
        await self._stop_simnet()
        self._set_state(STOPPED, "stopped")

    async def _start_simnet(self, options: StartOptions) -> list[Any] | None:
        """Start the simulated Mainline child; its routers, or None (reported) on failure."""
        scen = f", {' '.join(options.simnet_scenarios)}" if options.simnet_scenarios else ""
        self._set_state(STARTING, f"building a simulated Mainline of {options.simnet_nodes:,} "
                        f"nodes ({options.simnet_profile}{scen})")
        child = SimnetChild(options.simnet_nodes, options.simnet_scenarios,
                            options.simnet_profile)
        try:
            doc = await child.start()
        except (SimnetChildError, OSError) as err:
            self._fail(f"cannot start the simulated Mainline: {err}")
            return None
        self.simnet = child
        info = dict(doc)
        try:
            swarms = await child.fetch("/swarms?limit=50")
            info["swarms"] = [(s["info_hash"], s["peers"]) for s in swarms["swarms"]]
        except (OSError, ValueError, KeyError) as err:
            log.warning("simulated Mainline: no swarm list (%s)", err)
            info["swarms"] = []
        self.simnet_changed.emit(info)
        log.info("simulated Mainline: %s nodes built in %.1f s (%.0f MB), control API %s",
                 f"{doc.get('nodes', 0):,}", doc.get("build_s", 0.0), doc.get("rss_mb", 0.0),
                 doc.get("control"))
        return list(child.routers)

    async def _stop_simnet(self) -> None:
        child, self.simnet = self.simnet, None
        if child is not None:
            await child.stop()
            self.simnet_changed.emit(None)

    async def _stop_testnet(self) -> None:
        runner, self._testnet_runner = self._testnet_runner, None
        self.testnet = None
        if runner is not None:
            await _loop().run_in_executor(None, runner.__exit__, None, None, None)
            self.testnet_changed.emit(None)

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
        """Start a ``kind`` lookup ("get_peers", "scrape" or "find_node") of ``target`` and make
        it the current one; ``what`` names the action in the not-running error, ``task`` the
        follower."""
        session = self._running_session(what)
        if session is None:
            return None
        try:
            if kind in ("get_peers", "scrape"):
                handle = session.start_find_peers(target, scrape=kind == "scrape")
            else:
                handle = session.start_find_node(target)
        except LookupLimitError as err:
            # The node's cap on concurrent lookups (DhtSettings.max_lookups) is a limit the
            # user can hit by clicking fast; say so instead of failing in a Qt slot.
            log.warning("cannot %s: %s", what, err)
            self.error.emit(f"Cannot {what}: {err}. Wait for some to finish.")
            return None
        self.current_lookup = handle
        self._started(handle, kind, target)
        self._spawn(self._follow_lookup(handle), f"{task} of {target.hex()}")
        return handle

    def cancel_lookup(self) -> bool:
        """Cancel the current lookup; False if none was running."""
        handle, self.current_lookup = self.current_lookup, None
        if handle is None or handle.done():
            return False
        handle.cancel()
        log.info("lookup %d cancelled", handle.lookup_id)
        return True

    def announce(
        self, info_hash: bytes, port: int, implied_port: bool = False
    ) -> asyncio.Task[AnnounceVerification | None] | None:
        """Announce, then verify with an independent get_peers lookup."""
        session = self._running_session("announce")
        if session is None:
            return None
        handle = session.start_announce(info_hash, port, implied_port)
        self._started(handle, "announce", info_hash)
        return self._spawn(
            self._announce(session, handle, info_hash, port, implied_port),
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
        return self._parts.get(lookup_id, (lookup_id,))

    def _started(self, handle: LookupHandle, kind: str, target: bytes) -> None:
        parts = handle.lookup_ids
        self._parts[handle.lookup_id] = parts
        while len(self._parts) > MAX_REMEMBERED_LOOKUPS:
            del self._parts[next(iter(self._parts))]
        self.lookup_started.emit(handle.lookup_id, kind, target)

    def _running_session(self, what: str) -> DhtSession | None:
        if self.session is None or not self.running:
            log.warning("cannot %s: the node is not running", what)
            self.error.emit(f"Cannot {what}: the node is not running. Start it first.")
            return None
        return self.session

    async def _follow_lookup(self, handle: LookupHandle) -> LookupResult:
        result = await handle.result(LOOKUP_TIMEOUT)
        what = "cancelled" if result.cancelled else "finished"
        log.info("%s lookup %d %s: %d peers, %d of %d nodes answered, %.2f s",
                 result.kind, result.lookup_id, what, len(result.peers), result.responded,
                 result.queried, result.elapsed)
        if self.current_lookup is handle:
            self.current_lookup = None
        self.lookup_finished.emit(result)
        if handle.kind == "scrape":
            scrape = await handle.scrape_result(LOOKUP_TIMEOUT)
            log.info("scrape of %s: about %.0f seeds and %.0f downloaders (BEP 33 filters of "
                     "%d nodes, %d without)", result.info_hash.hex(), scrape.seeds,
                     scrape.downloaders, scrape.nodes, scrape.legacy)
            self.scrape_finished.emit(scrape)
        return result

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
        try:
            if request is not None:
                handle = session.start_put_item(request)
            else:
                handle = session.start_get_item(target, salt)
        except LookupLimitError as err:
            log.warning("cannot %s the item: %s", kind, err)
            self.error.emit(f"Cannot {kind} the item: {err}. Wait for some to finish.")
            return None
        self._started(handle, kind, target)
        self._spawn(self._follow_item(handle), f"{kind} of {target.hex()}")
        return handle

    async def _follow_item(self, handle: LookupHandle) -> None:
        result: ItemResult | PutResult
        if handle.kind == "put":
            result = await handle.put_result(LOOKUP_TIMEOUT)
            log.info("put of %s stored at %d nodes, refused or unanswered by %d",
                     result.target.hex(), len(result.stored_at), len(result.failed))
        else:
            result = await handle.item_result(LOOKUP_TIMEOUT)
            log.info("get of %s: %s", result.target.hex(),
                     f"found (seq {result.seq}, {len(result.holders)} holders)" if result.found
                     else f"nothing found ({result.rejected} copies rejected)")
        self.item_finished.emit(result)

    async def _announce(
        self, session: DhtSession, handle: LookupHandle, info_hash: bytes, port: int,
        implied_port: bool,
    ) -> AnnounceVerification | None:
        result: AnnounceResult = await handle.announce_result(LOOKUP_TIMEOUT)
        log.info("announce of %s stored at %d nodes, refused or unanswered by %d",
                 info_hash.hex(), len(result.stored_at), len(result.failed))
        self.announce_finished.emit(result)
        if session is not self.session or not self.running:
            return None
        local = session.local_address
        expected_port = local[1] if implied_port and local is not None else port
        # A node that stored us saw the announce's source address: our external address on
        # the internet, the bind address on a LAN or loopback testnet.
        ips = {ip for ip in (session.external_ip, local[0] if local else None)
               if ip is not None and not _unspecified(ip)}
        verify = session.start_find_peers(info_hash)
        self._started(verify, "verify", info_hash)
        found = await verify.result(LOOKUP_TIMEOUT)
        matched = tuple(p for p in found.peers
                        if p[1] == expected_port and (not ips or p[0] in ips))
        shown_ip = next(iter(sorted(ips)), None)
        target = format_addr((shown_ip or "*", expected_port))
        if matched:
            detail = (f"an independent get_peers lookup returned our peer "
                      f"{format_addr(matched[0])} ({len(found.peers)} peers in all)")
        elif not result.stored_at:
            detail = "no node accepted the announce, and the lookup does not return our peer"
        else:
            detail = (f"{len(result.stored_at)} nodes accepted the announce, but an independent "
                      f"get_peers lookup did not return {target} ({len(found.peers)} peers)")
        check = AnnounceVerification(info_hash, (shown_ip, expected_port), bool(matched), matched,
                                     found.peers, verify.lookup_id, detail)
        log.info("announce of %s %s: %s", info_hash.hex(),
                 "verified" if matched else "NOT verified", detail)
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
        if isinstance(event, ev.TRAFFIC_EVENTS):
            if len(self._pending) >= MAX_PENDING:
                self.dropped_events += 1
                return
            if isinstance(event, ev.MessageReceived) and event.kind == "r":
                self._responses += 1
        elif isinstance(event, _ROUTING):
            self._routing_dirty.add(event.family)
        elif isinstance(event, ev.ExternalAddressChanged):
            fam = host_family(event.ip)
            self._external[fam] = (event.ip, event.votes)
            self._external_dirty.add(fam)
        elif isinstance(event, StateChanged):
            if event.new != "bootstrapping":
                self._stall_timer.stop()
            self._pending.append(event)
            # a handful per session: delivered at once, so no transition is ever skipped
            self._set_state(event.new, event.detail)
            return
        self._pending.append(event)

    def _tick(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Qt is turning without asyncio (a test pumping Qt events between two runs of the
            # loop): the session's clock is not readable, the next real tick delivers
            return
        batch, self._pending = self._pending, []
        if batch:
            self.events.emit(batch)
        dirty, self._external_dirty = self._external_dirty, set()
        for fam in sorted(dirty):
            self.external_address_changed.emit(*self._external[fam])
        session = self.session
        if session is None or session.node is None or not self.running:
            return
        now = session.now()
        periodic = now - self._last_snapshot >= SNAPSHOT_EVERY
        if periodic or self._routing_dirty:
            dirty, self._routing_dirty = self._routing_dirty, set()
            if periodic:
                self._last_snapshot = now
            for family in session.families:
                if periodic or family in dirty:
                    self.routing_changed.emit(session.routing_snapshot(family))
        if now - self._last_stats >= STATS_EVERY:
            self._last_stats = now
            stats = session.stats()
            stats["now"] = now
            self.stats_changed.emit(stats)

    def _check_stall(self) -> None:
        session = self.session
        if session is None or session.state != "bootstrapping" or self._responses:
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

