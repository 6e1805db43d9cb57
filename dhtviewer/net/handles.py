"""What the session's operations return: results of lookups, announces, BEP 44 gets and puts,
BEP 33 scrapes, BEP 51 samples and pings, and the ``LookupHandle`` that follows one lookup live.

A handle is fed the node's events for its lookup id by the session; it keeps them (so any number
of ``async for`` loops can replay them from the start while it runs) and resolves its futures
from the terminal events: ``LookupFinished`` for a lookup; for a lookup with a second phase its
final event (``FINAL_EVENT``): ``AnnounceFinished``, ``ItemGetFinished``, ``ItemPutFinished``
or ``ScrapeFinished``, which the node sends even when cancelled (then empty and marked so),
except a scrape cancelled before its phase started: it ends at its cancelled ``LookupFinished``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr


@dataclass(frozen=True, slots=True)
class LookupResult:
    """A finished lookup. ``info_hash`` is the target (an info-hash, or a node id for
    find_node). ``closest``: the K closest nodes that answered, nearest first. ``elapsed`` in
    seconds. ``cancelled``: stopped early (timeout, ``cancel()`` or session stop); the other
    fields then hold what was found so far."""

    info_hash: bytes
    peers: tuple[Addr, ...]
    queried: int
    responded: int
    closest: tuple[tuple[bytes, Addr], ...]
    elapsed: float
    kind: str = "get_peers"
    cancelled: bool = False
    lookup_id: int = 0


@dataclass(frozen=True, slots=True)
class AnnounceResult:
    """``stored_at``: nodes that accepted our announce_peer; ``failed``: those that did not."""

    info_hash: bytes
    port: int
    stored_at: tuple[Addr, ...]
    failed: tuple[Addr, ...]
    lookup: LookupResult


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
    return LookupResult(
        f.target, f.peers, f.queried, f.responded, f.closest, f.elapsed, f.kind, f.cancelled,
        f.lookup_id,
    )


class LookupHandle:
    """A running lookup (or announce, get, put, scrape) started by the session.

    ``async for event in handle`` yields every event of this lookup from its start, live, and
    ends after its last one; several iterators may run at once. ``await handle.result()`` gives
    the ``LookupResult``; ``announce_result()``, ``item_result()``, ``put_result()`` and
    ``scrape_result()`` the outcome of the second phase of those kinds. ``handle.cancel()``
    stops it (the result is then marked cancelled).
    """

    def __init__(self, kind: str, target: bytes, cancel: Callable[[int], None]) -> None:
        """``cancel(lookup_id)`` stops the lookup in the node (the session's job)."""
        loop = asyncio.get_running_loop()
        self.kind = kind
        self.target = target
        self.lookup_id = 0
        self.events: list[ev.Event] = []
        self._cancel = cancel
        self._lookup: asyncio.Future[LookupResult] = loop.create_future()
        self._final_type = FINAL_EVENT.get(kind)
        self._final: asyncio.Future[ev.Event | None] | None = (
            loop.create_future() if self._final_type is not None else None
        )
        self._changed = asyncio.Event()
        self.finished = False

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
        """The lookup's result. After ``timeout`` seconds the lookup is cancelled and the
        partial result returned (``cancelled`` set). Cancelling the awaiting task cancels the
        lookup too."""
        await self._wait(self._lookup, timeout)
        return self._lookup.result()

    async def _final_event(self, kind: str, timeout: float | None) -> ev.Event | None:
        if self.kind != kind or self._final is None:
            raise ValueError(f"a {self.kind} lookup has no {kind} result")
        await self._wait(self._final, timeout)
        return self._final.result()

    def _lookup_or_empty(self, target: bytes) -> LookupResult:
        f = self._lookup
        if f.done() and not f.cancelled() and f.exception() is None:
            return f.result()
        return LookupResult(target, (), 0, 0, (), 0.0, self.kind, True, self.lookup_id)

    async def announce_result(self, timeout: float | None = None) -> AnnounceResult:
        """For ``kind == "announce"``: the announce outcome (empty ``stored_at`` if cancelled)."""
        e = await self._final_event("announce", timeout)
        lookup = self._lookup_or_empty(self.target)
        if not isinstance(e, ev.AnnounceFinished):
            return AnnounceResult(self.target, 0, (), (), lookup)
        return AnnounceResult(e.info_hash, e.port, e.stored_at, e.failed, lookup)

    async def item_result(self, timeout: float | None = None) -> ItemResult:
        """For ``kind == "get"``: the item found (``found`` false if none)."""
        e = await self._final_event("get", timeout)
        lookup = self._lookup_or_empty(self.target)
        if not isinstance(e, ev.ItemGetFinished):
            return ItemResult(self.target, None, None, None, None, (), 0, (), lookup)
        return ItemResult(
            e.target, e.value, e.public_key, e.seq, e.signature, e.holders, e.rejected,
            e.reasons, lookup,
        )

    async def put_result(self, timeout: float | None = None) -> PutResult:
        """For ``kind == "put"``: where the item was stored, and why not elsewhere."""
        e = await self._final_event("put", timeout)
        lookup = self._lookup_or_empty(self.target)
        if not isinstance(e, ev.ItemPutFinished):
            return PutResult(self.target, None, None, (), (), lookup)
        return PutResult(e.target, e.public_key, e.seq, e.stored_at, e.failed, lookup)

    async def scrape_result(self, timeout: float | None = None) -> ScrapeResult:
        """For ``kind == "scrape"``: the swarm estimate (``cancelled`` when none was made)."""
        e = await self._final_event("scrape", timeout)
        lookup = self._lookup_or_empty(self.target)
        if not isinstance(e, ev.ScrapeFinished):
            return ScrapeResult(self.target, 0.0, 0.0, 0, 0, False, True, lookup)
        return ScrapeResult(
            e.info_hash, e.seeds, e.downloaders, e.nodes, e.legacy, e.saturated, e.cancelled,
            lookup,
        )

    def cancel(self) -> None:
        if not self.finished:
            self._cancel(self.lookup_id)

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
        """Record ``event``; True when it was the last one of this lookup."""
        self.events.append(event)
        last = False
        final = self._final_type
        if isinstance(event, ev.LookupFinished):
            if not self._lookup.done():
                self._lookup.set_result(result_of(event))
            if final is None:
                last = True
            elif event.cancelled and final not in _ALWAYS_SENT:
                self._set_final(None)  # cancelled before its phase: no final event follows
                last = True
        elif final is not None and isinstance(event, final):
            self._set_final(event)
            last = True
        if last:
            self.finished = True
        self._changed.set()
        return last

    def _set_final(self, event: ev.Event | None) -> None:
        if self._final is not None and not self._final.done():
            self._final.set_result(event)

    def abort(self, exc: BaseException) -> None:
        """End the handle with ``exc`` for whoever still waits (session stopped)."""
        for fut in (self._lookup, self._final):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # nobody may be waiting; do not warn "never retrieved"
        self.finished = True
        self._changed.set()
