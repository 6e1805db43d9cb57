"""FamilyStack: one address family's share of a ``DhtSession``: its ``DhtNode``, its UDP socket,
its bootstrap addresses and saved contacts, and the bootstrap loop that brings it to "ready".

BEP 32 runs the IPv4 and the IPv6 DHT as independent networks, so each family bootstraps,
backs off, retries and recovers on its own, and has its own state ("bootstrapping", "ready",
...). The session combines the states for the user and routes between the families only what
the BEP allows: contacts one family's node learned for the other (``hint``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dhtviewer.dht import events as ev
from dhtviewer.dht.families import family_name
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node import DhtNode
from dhtviewer.net.transport import DhtProtocol

State = Literal["stopped", "idle", "bootstrapping", "ready"]

RETRY_FIRST = 2.0
"""Seconds before the first bootstrap retry when nobody answered; doubles up to RETRY_MAX."""
RETRY_MAX = 120.0
READY_GOOD_NODES = 8
"""Good routing entries needed to be "ready" (fewer if fewer nodes answered the bootstrap)."""
RESTORED_SEEDS = 32
"""Saved contacts that seed a bootstrap next to the bootstrap addresses."""
MAX_HINTS = 32
"""Contacts learned through the other family kept as seeds for the next bootstrap attempt."""


@dataclass(eq=False)
class FamilyStack:
    """The node of ``family`` on its socket. ``on_state(stack)`` is called after every change of
    ``state``/``detail``; ``resolve()`` resolves the bootstrap names again for this family (for a
    start while offline: names that did not resolve then may resolve later)."""

    family: int
    node: DhtNode
    proto: DhtProtocol
    bootstrap_addrs: list[Addr]
    restored: list[NodeInfo]
    on_state: Callable[[FamilyStack], None]
    resolve: Callable[[], Awaitable[list[Addr]]]
    state: State = "stopped"
    detail: str = ""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    waiters: dict[int, asyncio.Future[ev.LookupFinished]] = field(default_factory=dict)
    hints: list[Addr] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # Our bootstrap lookups end with a LookupFinished from our node.
        self.proto.subscribe(self._on_event)

    @property
    def name(self) -> str:
        return family_name(self.family)

    @property
    def local_address(self) -> Addr | None:
        tr = self.proto.transport
        if tr is None:
            return None
        sockname = tr.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1])) if sockname else None

    def set_state(self, state: State, detail: str) -> None:
        if (state, detail) == (self.state, self.detail):
            return
        self.state, self.detail = state, detail
        if state == "ready":
            self.ready.set()
        else:
            self.ready.clear()
        self.on_state(self)

    # --- bootstrap -----------------------------------------------------------------------------
    def start_bootstrap(self, restored: Sequence[NodeInfo], has_names: bool) -> None:
        """Bootstrap in the background (state "bootstrapping" until enough nodes answered);
        "idle" when there is nothing at all to start from."""
        if not (self.bootstrap_addrs or restored or has_names or len(self.node.table)):
            self.set_state("idle", "no bootstrap address")
            return
        if self.bootstrap_addrs:
            detail = f"bootstrapping from {len(self.bootstrap_addrs)} address(es)"
        elif restored or len(self.node.table):
            detail = f"bootstrapping from {len(restored) + len(self.node.table)} known contacts"
        else:
            detail = self._waiting()
        self.set_state("bootstrapping", detail)
        self.task = asyncio.get_running_loop().create_task(
            self._bootstrap_loop([n.addr for n in restored][:RESTORED_SEEDS], has_names)
        )

    def hint(self, contacts: Sequence[NodeInfo]) -> None:
        """Contacts of our family that the other family's node learned (BEP 32): seeds of the
        next bootstrap attempt, which starts at once if one is waiting to retry."""
        for n in contacts:
            if n.addr not in self.hints:
                self.hints.append(n.addr)
        del self.hints[:-MAX_HINTS]
        if self.state == "bootstrapping":
            self._wake.set()

    async def cancel_bootstrap(self) -> None:
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in self.waiters.values():
            fut.cancel()
        self.waiters.clear()

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.LookupFinished):
            waiter = self.waiters.pop(event.lookup_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)

    async def _bootstrap_loop(self, restored_seeds: list[Addr], has_names: bool) -> None:
        """Bootstrap lookups until enough nodes answered, backing off while nobody does."""
        delay = RETRY_FIRST
        attempt = 0
        node = self.node
        while True:
            if not self.bootstrap_addrs and has_names:
                self.bootstrap_addrs = await self.resolve()
            hints, self.hints = self.hints, []
            seeds = list(dict.fromkeys([*self.bootstrap_addrs, *restored_seeds, *hints]))
            if not seeds and not node.routing_size():
                # Nothing to ask (no bootstrap name of this family, no saved contact): wait for
                # the other family to hand us contacts (BEP 32), or for a name to resolve.
                self.set_state("bootstrapping", self._waiting())
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            attempt += 1
            fut: asyncio.Future[ev.LookupFinished] = asyncio.get_running_loop().create_future()

            def call(
                now: float, fut: asyncio.Future[ev.LookupFinished] = fut, seeds: list[Addr] = seeds
            ) -> None:
                self.waiters[node.bootstrap(seeds, now)] = fut

            self.proto.run(call)
            finished = await fut
            now = self.proto.loop.time()
            good = node.good_node_count(now)
            need = max(1, min(READY_GOOD_NODES, node.settings.k, finished.responded))
            if node.routing_size() > 0 and good >= need:
                self.set_state("ready", f"{good} good nodes after {finished.elapsed:.1f} s")
                self.task = None
                return
            if finished.responded == 0:
                why = "no bootstrap node answered"
            else:
                why = f"{finished.responded} answered but only {good} good nodes"
            self.set_state(
                "bootstrapping", f"{why} (attempt {attempt}); retrying in {delay:g} s"
            )
            await self._sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _waiting(self) -> str:
        return f"waiting for {self.name} contacts (no {self.name} bootstrap address)"

    async def _sleep(self, delay: float) -> None:
        """``delay`` seconds, or until ``hint`` brings contacts to try."""
        self._wake.clear()
        if self.hints:  # hints that came during the attempt: try them at once
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
