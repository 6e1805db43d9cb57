"""UserLookups: the lookups the user asks for, from the click to their result.

It starts get_peers, scrape and find_node lookups and BEP 44 gets and puts on the session,
keeps the current lookup (the one Esc cancels), makes a lookup asked for while the routing
tables are empty wait for the bootstrap (with none, it would have nobody to ask and "finish"
at once), refuses with the reason what cannot start, remembers every address family's part of
each lookup (BEP 32: one user lookup, one lookup per family), and follows each to its result.
Lookup ids come from the session's operation counter, which the controller carries over from
one session to the next: an id names one lookup for the app's whole life, whatever its kind.

It tells what happens through its signals (the controller forwards them as its own); following
runs as tasks of the controller's (``spawn``), whose failures are logged and reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from dhtviewer.dht.families import family_name
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.node import LookupLimitError
from dhtviewer.net.handles import ItemResult, LookupHandle, LookupResult, PutResult
from dhtviewer.net.session import DhtSession

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 60.0
"""Seconds a lookup's result is waited for."""
BOOTSTRAP_WAIT = 30.0
"""A lookup asked for while the routing table is still empty waits this long for the bootstrap
to find a node, then gives up (with the reason)."""
MAX_REMEMBERED_LOOKUPS = 1000
"""User lookups whose family parts ``parts`` still knows (the views keep 200)."""

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
"""Runs a coroutine as a task whose failure is logged and reported (``what`` names it)."""


@dataclass(frozen=True, slots=True)
class DeferredLookup:
    """A lookup waiting for the bootstrap to put a first node in the routing table: with none,
    it would have nobody to ask and "finish" at once. ``since``: the events' clock."""

    what: str
    kind: str
    target: bytes
    task: str
    since: float


class UserLookups(QObject):
    """See the module docstring. The controller's signals of the same meaning document the
    arguments."""

    started = Signal(int, str, object)
    """(lookup id, kind, target): ``Controller.lookup_started``."""
    deferred = Signal(str, object)
    """(message, target): ``Controller.lookup_deferred``."""
    refused = Signal(str)
    """Why a lookup did not start: ``Controller.lookup_refused``."""
    finished = Signal(object)
    """LookupResult: ``Controller.lookup_finished``."""
    scrape_finished = Signal(object)
    """ScrapeResult: ``Controller.scrape_finished``."""
    item_finished = Signal(object)
    """ItemResult or PutResult: ``Controller.item_finished``."""
    error = Signal(str)
    """A one-line message for the user (a refused lookup's too)."""

    def __init__(self, spawn: Spawn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._spawn = spawn
        self.current: LookupHandle | None = None
        """The lookup Esc cancels (a get_peers, scrape or find_node; not a get or put)."""
        self.waiting: DeferredLookup | None = None
        """A lookup waiting for the bootstrap (see ``DeferredLookup``)."""
        self._parts: dict[int, tuple[int, ...]] = {}  # first lookup id -> every family's

    # --- get_peers, scrape, find_node -----------------------------------------------------------
    def start(
        self, session: DhtSession, what: str, kind: str, target: bytes, task: str
    ) -> LookupHandle | None:
        """Start a ``kind`` lookup ("get_peers", "scrape" or "find_node") of ``target`` and make
        it the current one; ``what`` names the action in messages, ``task`` the follower. With
        an empty routing table the lookup waits for the bootstrap (``deferred``; None returned)
        or, if the node is not bootstrapping, is refused with the reason."""
        if session.node is not None and known_nodes(session) == 0:
            if session.state != "bootstrapping":
                self.refuse(what, f"{_tables(session)} empty and the node is not "
                            "bootstrapping; give it bootstrap addresses and re-bootstrap")
                return None
            if self.current is not None:
                self.current.cancel()
                self.current = None
            self.waiting = DeferredLookup(what, kind, target, task, session.now())
            message = (f"Waiting for the bootstrap: the {kind} lookup of {target.hex()} starts "
                       "as soon as the routing table has a node to ask.")
            log.info("%s", message)
            self.deferred.emit(message, target)
            return None
        self.waiting = None
        return self._launch(session, what, kind, target, task)

    def _launch(
        self, session: DhtSession, what: str, kind: str, target: bytes, task: str
    ) -> LookupHandle | None:
        try:
            if kind in ("get_peers", "scrape"):
                handle = session.start_find_peers(target, scrape=kind == "scrape")
            else:
                handle = session.start_find_node(target)
        except LookupLimitError as err:
            # The node's cap on concurrent lookups (DhtSettings.max_lookups) is a limit the
            # user can hit by clicking fast; say so instead of failing in a Qt slot.
            self.refuse(what, f"{err}. Wait for some to finish")
            return None
        self.current = handle
        self.register(handle, kind, target)
        self._spawn(self._follow(handle), f"{task} of {target.hex()}")
        return handle

    def refuse(self, what: str, why: str) -> None:
        """``what`` did not start because of ``why``: said to the user (``refused``, ``error``)."""
        self.waiting = None
        message = f"Cannot {what}: {why}."
        log.warning("%s", message)
        self.refused.emit(message)
        self.error.emit(message)

    def tick(self, session: DhtSession, now: float) -> None:
        """Start the waiting lookup once the routing tables know a node; refuse it once the
        bootstrap is over or ``BOOTSTRAP_WAIT`` passed without one."""
        waiting = self.waiting
        if waiting is None or session.node is None:
            return
        if known_nodes(session) > 0:
            self.waiting = None
            self._launch(session, waiting.what, waiting.kind, waiting.target, waiting.task)
        elif session.state != "bootstrapping" or now - waiting.since > BOOTSTRAP_WAIT:
            self.refuse(waiting.what, f"the bootstrap found no node within "
                        f"{now - waiting.since:.0f} s, so there is nobody to ask")

    def cancel(self) -> bool:
        """Cancel the current lookup (or the one waiting for the bootstrap); False if none was
        running."""
        if self.waiting is not None:
            log.info("%s of %s cancelled before it started", self.waiting.what,
                     self.waiting.target.hex())
            self.waiting = None
            self.deferred.emit("", None)
            return True
        handle, self.current = self.current, None
        if handle is None or handle.done():
            return False
        handle.cancel()
        log.info("lookup %d cancelled", handle.lookup_id)
        return True

    def node_stopping(self) -> None:
        """The node stops: a waiting lookup is refused, the current one cancelled."""
        if self.waiting is not None:
            self.refuse(self.waiting.what, "the node stopped before it found a node to ask")
        if self.current is not None:
            self.current.cancel()
            self.current = None

    async def _follow(self, handle: LookupHandle) -> LookupResult:
        result = await handle.result(LOOKUP_TIMEOUT)
        what = "cancelled" if result.cancelled else "finished"
        log.info("%s lookup %d %s: %d peers, %d of %d nodes answered, %.2f s",
                 result.kind, result.lookup_id, what, len(result.peers), result.responded,
                 result.queried, result.elapsed)
        if self.current is handle:
            self.current = None
        self.finished.emit(result)
        if handle.kind == "scrape":
            scrape = await handle.scrape_result(LOOKUP_TIMEOUT)
            log.info("scrape of %s: about %.0f seeds and %.0f downloaders (BEP 33 filters of "
                     "%d nodes, %d without)", result.info_hash.hex(), scrape.seeds,
                     scrape.downloaders, scrape.nodes, scrape.legacy)
            self.scrape_finished.emit(scrape)
        return result

    # --- BEP 44 ---------------------------------------------------------------------------------
    def start_item(self, session: DhtSession, kind: str, target: bytes, *, salt: bytes = b"",
                   request: PutRequest | None = None) -> LookupHandle | None:
        """Start a BEP 44 ``kind`` ("get" or "put" of ``request``) of ``target``; not the
        current lookup (Esc leaves it), followed to ``item_finished``."""
        try:
            if request is not None:
                handle = session.start_put_item(request)
            else:
                handle = session.start_get_item(target, salt)
        except LookupLimitError as err:
            log.warning("cannot %s the item: %s", kind, err)
            self.error.emit(f"Cannot {kind} the item: {err}. Wait for some to finish.")
            return None
        self.register(handle, kind, target)
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

    # --- every family's part --------------------------------------------------------------------
    def register(self, handle: LookupHandle, kind: str, target: bytes) -> None:
        """A user lookup started (any kind, "announce" and "verify" too): remember its family
        parts and say so (``started``)."""
        self._parts[handle.lookup_id] = handle.lookup_ids
        while len(self._parts) > MAX_REMEMBERED_LOOKUPS:
            del self._parts[next(iter(self._parts))]
        self.started.emit(handle.lookup_id, kind, target)

    def parts(self, lookup_id: int) -> tuple[int, ...]:
        """The lookup ids of every address family's part of the user lookup ``lookup_id``
        (what ``started`` named), first one first; just ``(lookup_id,)`` if unknown."""
        return self._parts.get(lookup_id, (lookup_id,))


def known_nodes(session: DhtSession) -> int:
    """Nodes in the routing tables of every family: a lookup has someone to ask in at least
    one DHT (a family still empty is seeded by its bootstrap addresses, if any)."""
    return sum(node.routing_size() for node in session.nodes.values())


def _tables(session: DhtSession) -> str:
    if len(session.families) > 1:
        names = " and ".join(family_name(f) for f in session.families)
        return f"the routing tables ({names}) are"
    return "the routing table is"
