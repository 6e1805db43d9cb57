"""What the session's operations return: results of lookups, announces and pings, and the
``LookupHandle`` that follows one lookup live.

A handle is fed the node's events for its lookup id by the session; it keeps them (so any number
of ``async for`` loops can replay them from the start while it runs) and resolves its futures
from the terminal events: ``LookupFinished`` for a lookup, ``AnnounceFinished`` (or a cancelled
``LookupFinished``) for an announce.
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
    ev.LookupTimeout,
    ev.PeersFound,
    ev.LookupFinished,
    ev.AnnounceFinished,
)


def result_of(f: ev.LookupFinished) -> LookupResult:
    return LookupResult(
        f.target, f.peers, f.queried, f.responded, f.closest, f.elapsed, f.kind, f.cancelled,
        f.lookup_id,
    )


class LookupHandle:
    """A running lookup (or announce) started by the session.

    ``async for event in handle`` yields every event of this lookup from its start, live, and
    ends after its last one; several iterators may run at once. ``await handle.result()`` gives
    the ``LookupResult``; for an announce, ``await handle.announce_result()`` the
    ``AnnounceResult``. ``handle.cancel()`` stops it (the result is then marked cancelled).
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
        self._announce: asyncio.Future[AnnounceResult] | None = (
            loop.create_future() if kind == "announce" else None
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

    async def announce_result(self, timeout: float | None = None) -> AnnounceResult:
        """For ``kind == "announce"``: the announce outcome (empty ``stored_at`` if cancelled)."""
        if self._announce is None:
            raise ValueError(f"a {self.kind} lookup has no announce result")
        await self._wait(self._announce, timeout)
        return self._announce.result()

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
        if isinstance(event, ev.LookupFinished):
            result = result_of(event)
            if not self._lookup.done():
                self._lookup.set_result(result)
            if self._announce is None:
                last = True
            elif event.cancelled:
                self._set_announce(AnnounceResult(event.target, 0, (), (), result))
                last = True
        elif isinstance(event, ev.AnnounceFinished):
            lookup = (
                self._lookup.result()
                if self._lookup.done() and not self._lookup.exception()
                else LookupResult(event.info_hash, (), 0, 0, (), 0.0, "announce", True)
            )
            self._set_announce(
                AnnounceResult(event.info_hash, event.port, event.stored_at, event.failed, lookup)
            )
            last = True
        if last:
            self.finished = True
        self._changed.set()
        return last

    def _set_announce(self, result: AnnounceResult) -> None:
        if self._announce is not None and not self._announce.done():
            self._announce.set_result(result)

    def abort(self, exc: BaseException) -> None:
        """End the handle with ``exc`` for whoever still waits (session stopped)."""
        for fut in (self._lookup, self._announce):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # nobody may be waiting; do not warn "never retrieved"
        self.finished = True
        self._changed.set()
