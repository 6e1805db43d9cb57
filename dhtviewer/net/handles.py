"""What the session's operations return: results of lookups, announces, BEP 44 gets and puts,
BEP 33 scrapes, BEP 51 samples and pings, and the ``LookupHandle`` that follows one lookup live.

A user's lookup is one lookup per address family the session runs (BEP 32: the IPv4 and IPv6
DHTs are separate networks), each a *part* of one handle. The session feeds the handle its
parts' events; it keeps them (so any number of ``async for`` loops can replay them from the
start while it runs) and resolves each part from its terminal events: ``LookupFinished`` for a
lookup; for a lookup with a second phase its final event (``FINAL_EVENT``): ``AnnounceFinished``,
``ItemGetFinished``, ``ItemPutFinished`` or ``ScrapeFinished``, which the node sends even when
cancelled (then empty and marked so), except a scrape cancelled before its phase started: it
ends at its cancelled ``LookupFinished`` (that part is then empty and marked cancelled).
Results merge the parts for the user (peers once each, nodes of every family) and keep each
family's own figures (``LookupResult.by_family``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node_id import distance


@dataclass(frozen=True, slots=True)
class FamilyLookup:
    """The lookup one address family's node ran for a session lookup (fields as in
    ``LookupResult``, for that family's DHT only)."""

    family: int
    lookup_id: int
    peers: tuple[Addr, ...]
    queried: int
    responded: int
    closest: tuple[tuple[bytes, Addr], ...]
    elapsed: float
    cancelled: bool


@dataclass(frozen=True, slots=True)
class LookupResult:
    """A finished lookup, merged over the address families it ran in. ``info_hash`` is the
    target (an info-hash, or a node id for find_node). ``peers``: every peer found, each once.
    ``closest``: the K closest nodes that answered in each family, nearest first. ``queried``
    and ``responded`` add up the families; ``elapsed`` in seconds, until the last family
    settled. ``cancelled``: stopped early (timeout, ``cancel()`` or session stop); the other
    fields then hold what was found so far. ``lookup_id``: the first family's lookup;
    ``by_family``: each family's own lookup."""

    info_hash: bytes
    peers: tuple[Addr, ...]
    queried: int
    responded: int
    closest: tuple[tuple[bytes, Addr], ...]
    elapsed: float
    kind: str = "get_peers"
    cancelled: bool = False
    lookup_id: int = 0
    by_family: tuple[FamilyLookup, ...] = ()

    def family(self, family: int) -> FamilyLookup | None:
        """The lookup of ``family`` (None if the session did not run that family)."""
        return next((f for f in self.by_family if f.family == family), None)


@dataclass(frozen=True, slots=True)
class AnnounceResult:
    """``stored_at``: nodes that accepted our announce_peer (in every family: we announce in
    each DHT, from its own socket); ``failed``: those that did not."""

    info_hash: bytes
    port: int
    stored_at: tuple[Addr, ...]
    failed: tuple[Addr, ...]
    lookup: LookupResult

    def stored_by_family(self) -> dict[int, int]:
        """family -> nodes that stored the announce, for each family the lookup ran in."""
        out = {f.family: 0 for f in self.lookup.by_family}
        for a in self.stored_at:
            fam = ip_family(a[0])
            out[fam] = out.get(fam, 0) + 1
        return out


@dataclass(frozen=True, slots=True)
class ItemResult:
    """A BEP 44 get. ``value`` is the bencoded value (None: no valid item found); ``public_key``,
    ``seq``, ``signature`` for a mutable item. ``holders`` returned the newest one; ``rejected``
    answers failed verification, ``reasons`` says why (distinct reasons)."""

    target: bytes
    value: bytes | None
    public_key: bytes | None
    seq: int | None
    signature: bytes | None
    holders: tuple[Addr, ...]
    rejected: int
    reasons: tuple[str, ...]
    lookup: LookupResult

    @property
    def found(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class PutResult:
    """A BEP 44 put. ``stored_at`` accepted it; ``failed``: (node, why) for the others."""

    target: bytes
    public_key: bytes | None
    seq: int | None
    stored_at: tuple[Addr, ...]
    failed: tuple[tuple[Addr, str], ...]
    lookup: LookupResult


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """A BEP 33 scrape: estimated distinct seeds and downloaders over the merged filters of
    ``nodes`` closest nodes (``legacy`` of them sent peers only). ``saturated``: too many to
    count. ``cancelled``: no estimate was made."""

    info_hash: bytes
    seeds: float
    downloaders: float
    nodes: int
    legacy: int
    saturated: bool
    cancelled: bool
    lookup: LookupResult


@dataclass(frozen=True, slots=True)
class SampleResult:
    """One BEP 51 answer. ``error`` set when the node does not speak BEP 51 or did not answer."""

    addr: Addr
    node_id: bytes | None
    samples: tuple[bytes, ...]
    num: int | None
    interval: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class PingResult:
    """``id``: the responder's node id; ``rtt`` in seconds; ``version``: its KRPC ``v``."""

    addr: Addr
    id: bytes
    rtt: float
    version: bytes | None


LOOKUP_EVENTS = (
    ev.LookupStarted,
    ev.LookupQuerySent,
    ev.LookupResponse,
    ev.LookupQuerySlow,
    ev.LookupTimeout,
    ev.LookupQueryError,
    ev.PeersFound,
    ev.LookupFinished,
    ev.AnnounceFinished,
    ev.ItemFound,
    ev.ItemRejected,
    ev.ItemGetFinished,
    ev.ItemPutFinished,
    ev.ScrapeFinished,
)

FINAL_EVENT: dict[str, type] = {
    "announce": ev.AnnounceFinished,
    "get": ev.ItemGetFinished,
    "put": ev.ItemPutFinished,
    "scrape": ev.ScrapeFinished,
}
"""The event that ends a handle of each kind with a second phase."""
_ALWAYS_SENT = (ev.AnnounceFinished, ev.ItemGetFinished, ev.ItemPutFinished)
"""Final events the node sends even when the lookup is cancelled before its phase."""


def result_of(f: ev.LookupFinished) -> LookupResult:
    """The result of one family's lookup on its own."""
    return merge_results(f.target, f.kind, [f])


def merge_results(
    target: bytes, kind: str, parts: Sequence[ev.LookupFinished]
) -> LookupResult:
    """One result for the user from the families' ``LookupFinished`` (in family order)."""
    by_family = tuple(
        FamilyLookup(f.family, f.lookup_id, f.peers, f.queried, f.responded, f.closest,
                     f.elapsed, f.cancelled)
        for f in parts
    )
    peers = tuple(dict.fromkeys(p for f in parts for p in f.peers))
    closest = tuple(
        sorted(
            dict.fromkeys(c for f in parts for c in f.closest),
            key=lambda c: (distance(c[0], target), c[1]),
        )
    )
    return LookupResult(
        target,
        peers,
        sum(f.queried for f in parts),
        sum(f.responded for f in parts),
        closest,
        max((f.elapsed for f in parts), default=0.0),
        kind,
        any(f.cancelled for f in parts),
        parts[0].lookup_id if parts else 0,
        by_family,
    )


class _Part:
    """One family's lookup of a handle, and the futures its terminal events resolve."""

    __slots__ = ("family", "final", "finished", "lookup", "lookup_id")

    def __init__(self, family: int, lookup_id: int, with_final: bool) -> None:
        loop = asyncio.get_running_loop()
        self.family = family
        self.lookup_id = lookup_id
        self.lookup: asyncio.Future[ev.LookupFinished] = loop.create_future()
        self.final: asyncio.Future[ev.Event | None] | None = (
            loop.create_future() if with_final else None
        )
        self.finished = False


class LookupHandle:
    """A running lookup (or announce, get, put, scrape) started by the session, in one or more
    address families (``add_part`` for each).

    ``async for event in handle`` yields every event of its lookups from their start, live, and
    ends after the last one; several iterators may run at once. ``await handle.result()`` gives
    the merged ``LookupResult``; ``announce_result()``, ``item_result()``, ``put_result()`` and
    ``scrape_result()`` the merged outcome of the second phase of those kinds.
    ``handle.cancel()`` stops it (the result is then marked cancelled).
    """

    def __init__(self, kind: str, target: bytes, cancel: Callable[[int], None]) -> None:
        """``cancel(lookup_id)`` stops one part's lookup in its node (the session's job)."""
        loop = asyncio.get_running_loop()
        self.kind = kind
        self.target = target
        self.events: list[ev.Event] = []
        self._cancel = cancel
        self._parts: dict[int, _Part] = {}
        self._final_type = FINAL_EVENT.get(kind)
        # Resolved once every part's lookup (then: final event) is in, or by abort.
        self._looked: asyncio.Future[None] = loop.create_future()
        self._ended: asyncio.Future[None] = loop.create_future()
        self._changed = asyncio.Event()
        self.finished = False

    # --- parts ---------------------------------------------------------------------------------
    def add_part(self, family: int, lookup_id: int) -> None:
        """The lookup ``lookup_id`` of ``family`` is part of this handle (before its events)."""
        if lookup_id in self._parts:
            raise ValueError(f"lookup {lookup_id} is already a part of this handle")
        self._parts[lookup_id] = _Part(family, lookup_id, self._final_type is not None)

    @property
    def lookup_id(self) -> int:
        """The first part's lookup id (0 before any part)."""
        return next(iter(self._parts), 0)

    @property
    def lookup_ids(self) -> tuple[int, ...]:
        return tuple(self._parts)

    @property
    def families(self) -> tuple[int, ...]:
        return tuple(p.family for p in self._parts.values())

    def family_of(self, lookup_id: int) -> int | None:
        part = self._parts.get(lookup_id)
        return None if part is None else part.family

    # --- reading -------------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[ev.Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ev.Event]:
        i = 0
        while True:
            while i < len(self.events):
                yield self.events[i]
                i += 1
            if self.finished:
                return
            self._changed.clear()
            await self._changed.wait()

    async def result(self, timeout: float | None = None) -> LookupResult:
        """The merged result. After ``timeout`` seconds the lookups are cancelled and the
        partial result returned (``cancelled`` set). Cancelling the awaiting task cancels the
        lookups too."""
        await self._wait(self._looked, timeout)
        self._looked.result()  # raises what abort() set
        return merge_results(
            self.target, self.kind, [p.lookup.result() for p in self._parts.values()]
        )

    async def _finals(self, kind: str, timeout: float | None) -> list[ev.Event | None]:
        if self.kind != kind or self._final_type is None:
            raise ValueError(f"a {self.kind} lookup has no {kind} result")
        await self._wait(self._ended, timeout)
        self._ended.result()
        return [p.final.result() if p.final is not None else None for p in self._parts.values()]

    def _lookup_or_empty(self) -> LookupResult:
        looked = [
            p.lookup.result() for p in self._parts.values()
            if p.lookup.done() and not p.lookup.cancelled() and p.lookup.exception() is None
        ]
        if looked and len(looked) == len(self._parts):
            return merge_results(self.target, self.kind, looked)
        partial = merge_results(self.target, self.kind, looked)
        return LookupResult(
            self.target, partial.peers, partial.queried, partial.responded, partial.closest,
            partial.elapsed, self.kind, True, self.lookup_id, partial.by_family,
        )

    async def announce_result(self, timeout: float | None = None) -> AnnounceResult:
        """For ``kind == "announce"``: the announce outcome over every family (empty
        ``stored_at`` where a family's announce was cancelled)."""
        finals = [e for e in await self._finals("announce", timeout)
                  if isinstance(e, ev.AnnounceFinished)]
        lookup = self._lookup_or_empty()
        port = next((e.port for e in finals), 0)
        return AnnounceResult(
            self.target, port, tuple(a for e in finals for a in e.stored_at),
            tuple(a for e in finals for a in e.failed), lookup,
        )

    async def item_result(self, timeout: float | None = None) -> ItemResult:
        """For ``kind == "get"``: the newest valid item any family found (``found`` false if
        none); ``holders`` are the nodes, of every family, that returned that one."""
        finals = [e for e in await self._finals("get", timeout)
                  if isinstance(e, ev.ItemGetFinished)]
        lookup = self._lookup_or_empty()
        found = [e for e in finals if e.value is not None]
        rejected = sum(e.rejected for e in finals)
        reasons = tuple(dict.fromkeys(r for e in finals for r in e.reasons))
        if not found:
            return ItemResult(self.target, None, None, None, None, (), rejected, reasons, lookup)
        best = max(found, key=lambda e: -1 if e.seq is None else e.seq)
        holders = tuple(a for e in found if (e.value, e.seq) == (best.value, best.seq)
                        for a in e.holders)
        return ItemResult(
            best.target, best.value, best.public_key, best.seq, best.signature, holders,
            rejected, reasons, lookup,
        )

    async def put_result(self, timeout: float | None = None) -> PutResult:
        """For ``kind == "put"``: where the item was stored in every family, and why not
        elsewhere."""
        finals = [e for e in await self._finals("put", timeout)
                  if isinstance(e, ev.ItemPutFinished)]
        lookup = self._lookup_or_empty()
        if not finals:
            return PutResult(self.target, None, None, (), (), lookup)
        first = finals[0]
        return PutResult(
            first.target, first.public_key, first.seq,
            tuple(a for e in finals for a in e.stored_at),
            tuple(f for e in finals for f in e.failed), lookup,
        )

    async def scrape_result(self, timeout: float | None = None) -> ScrapeResult:
        """For ``kind == "scrape"``: the swarm estimate over every family (``cancelled`` when
        none was made). Each DHT stores the peers of its own family only (BEP 32), so the
        families' estimates add up."""
        finals = [e for e in await self._finals("scrape", timeout)
                  if isinstance(e, ev.ScrapeFinished) and not e.cancelled]
        lookup = self._lookup_or_empty()
        if not finals:
            return ScrapeResult(self.target, 0.0, 0.0, 0, 0, False, True, lookup)
        return ScrapeResult(
            self.target, sum(e.seeds for e in finals), sum(e.downloaders for e in finals),
            sum(e.nodes for e in finals), sum(e.legacy for e in finals),
            any(e.saturated for e in finals), False, lookup,
        )

    def cancel(self) -> None:
        """Stop every part that has not ended."""
        for part in list(self._parts.values()):
            if not part.finished:
                self._cancel(part.lookup_id)

    def done(self) -> bool:
        return self.finished

    async def _wait(self, fut: asyncio.Future[Any], timeout: float | None) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            self.cancel()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if not fut.done():  # cancel() resolves synchronously; this is a safety net
            raise TimeoutError(f"lookup {self.lookup_id} did not finish")

    # --- fed by the session ------------------------------------------------------------------
    def on_event(self, event: ev.Event) -> bool:
        """Record ``event`` (of one of the parts); True when it was the last one of the last
        part."""
        part = self._parts.get(getattr(event, "lookup_id", -1))
        if part is None:
            return self.finished
        self.events.append(event)
        final = self._final_type
        if isinstance(event, ev.LookupFinished):
            if not part.lookup.done():
                part.lookup.set_result(event)
            if final is None:
                part.finished = True
            elif event.cancelled and final not in _ALWAYS_SENT:
                self._set_final(part, None)  # cancelled before its phase: no final event
                part.finished = True
        elif final is not None and isinstance(event, final):
            self._set_final(part, event)
            part.finished = True
        self._update()
        self._changed.set()
        return self.finished

    def _set_final(self, part: _Part, event: ev.Event | None) -> None:
        if part.final is not None and not part.final.done():
            part.final.set_result(event)

    def _update(self) -> None:
        parts = self._parts.values()
        if not parts:
            return
        if all(p.lookup.done() for p in parts) and not self._looked.done():
            self._looked.set_result(None)
        if all(p.finished for p in parts):
            self.finished = True
            if not self._ended.done():
                self._ended.set_result(None)

    def abort_part(self, lookup_id: int, exc: BaseException) -> None:
        """End one part with ``exc`` (cancelled where no terminal event will come)."""
        part = self._parts.get(lookup_id)
        if part is None or part.finished:
            return
        for fut in (part.lookup, part.final):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()
        part.finished = True
        self._update()
        self._changed.set()

    def abort(self, exc: BaseException) -> None:
        """End the handle with ``exc`` for whoever still waits (session stopped)."""
        for part in self._parts.values():
            for fut in (part.lookup, part.final):
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # nobody may be waiting; do not warn "never retrieved"
            part.finished = True
        for whole in (self._looked, self._ended):
            if not whole.done():
                whole.set_exception(exc)
                whole.exception()
        self.finished = True
        self._changed.set()
