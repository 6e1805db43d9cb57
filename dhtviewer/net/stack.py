"""FamilyStack: one address family's share of a ``DhtSession``: its ``DhtNode``, its UDP socket,
its bootstrap addresses and saved contacts, and the bootstrap loop that brings it to "ready".
``bind_families`` binds a session's sockets (leaving out a family the host cannot have) and
``make_nodes`` builds the nodes of the families bound, siblings of each other.

BEP 32 runs the IPv4 and the IPv6 DHT as independent networks, so each family bootstraps,
backs off, retries and recovers on its own, and has its own state ("bootstrapping", "ready",
...). The session combines the states for the user and routes between the families only what
the BEP allows: contacts one family's node learned for the other (``hint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dhtviewer.dht import events as ev
from dhtviewer.dht.families import Sibling, dual_stack, family_name
from dhtviewer.dht.messages import Addr, NodeInfo
from dhtviewer.dht.node import DhtNode
from dhtviewer.net.transport import BindError, DhtProtocol, PortInUseError, bind_udp

log = logging.getLogger(__name__)

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

# A socket of this family cannot be had on this host at all (no IPv6 stack, no such address):
# with both families asked for, the session runs without it.
_UNAVAILABLE = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


def bind_families(binds: Mapping[int, tuple[str, int]]) -> dict[int, socket.socket]:
    """A bound UDP socket per family of ``binds``. With two families asked for, one this host
    cannot open a socket for at all (no IPv6) is left out, with a warning; any other failure
    (a busy port, say) closes what was bound and raises ``BindError``/``PortInUseError``."""
    socks: dict[int, socket.socket] = {}
    first_error: BindError | None = None
    try:
        for fam, (host, port) in binds.items():
            try:
                socks[fam] = bind_udp(host, port, socket.AF_INET6 if fam == 6 else socket.AF_INET)
            except BindError as err:
                if len(binds) == 1 or isinstance(err, PortInUseError) or (
                    err.errno not in _UNAVAILABLE
                ):
                    raise
                first_error = first_error or err
                log.warning("running without %s: %s", family_name(fam), err)
    except BaseException:
        for sock in socks.values():
            sock.close()
        raise
    if not socks:
        assert first_error is not None
        raise first_error
    return socks


def make_nodes(
    families: Sequence[int], make: Callable[[int, Sibling | None], DhtNode]
) -> dict[int, DhtNode]:
    """The node of each family (``make(family, sibling)``); with two, each sees the other
    through its ``Sibling`` (BEP 32 ``want``), with one, it has none."""
    if len(families) == 2:
        return dual_stack(make)
    return {fam: make(fam, None) for fam in families}


def combined_state(stacks: Sequence[FamilyStack]) -> tuple[State, str]:
    """A session's state from its families': "ready" once one family is, else "bootstrapping"
    while one is, else "idle"; the detail says how each family fares."""
    states = {s.state for s in stacks}
    new: State = (
        "ready" if "ready" in states
        else "bootstrapping" if "bootstrapping" in states
        else "idle" if "idle" in states
        else "stopped"
    )
    # A family not started yet (the other is starting first) has nothing to say.
    told = [s for s in stacks if s.state != "stopped"] or list(stacks)
    if len(told) == 1:
        return new, told[0].detail
    return new, "; ".join(f"{s.name} {s.state}: {s.detail}" for s in told)


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
