"""Operations: what a ``DhtSession`` has in flight on its nodes, and the awaitables for them.

A lookup, announce, BEP 44 get/put, ping, ``sample_infohashes``, custom query or crawl is started
on a family's node through its transport, and ends when the node emits the matching event
(``LookupFinished``/``AnnounceFinished``, ``PingFinished``, ``SamplesReceived``), matched by
operation id: the nodes of a session share one id counter, so an id names one operation
whichever family runs it. This module owns those waits: the lookup handles by id, the futures
of pings and samples, the running crawl. ``on_event`` routes the nodes' events to them;
``abort`` fails every wait when the session stops. The session itself keeps the life cycle
(sockets, bootstrap, state) and chooses which family's stack runs an operation.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.messages import Addr, Response
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import ID_BYTES
from dhtviewer.net.crawl import CrawlRecorder
from dhtviewer.net.handles import LOOKUP_EVENTS, LookupHandle, PingResult, SampleResult
from dhtviewer.net.queries import FutureOwner
from dhtviewer.net.sample_store import SampleStore
from dhtviewer.net.stack import FamilyStack

__all__ = ["Operations", "SessionClosedError"]

E = TypeVar("E")


class SessionClosedError(RuntimeError):
    """The session stopped while the operation was waiting."""


class Operations:
    def __init__(
        self,
        stacks: Callable[[], Mapping[int, FamilyStack]],
        running: Callable[[], Sequence[FamilyStack]],
    ) -> None:
        """``stacks()``: the session's family stacks (family -> stack), asked anew at each use
        because a restart replaces them; ``running()``: the stacks a new operation runs on
        (it raises when the session is not running)."""
        self._stacks = stacks
        self._running = running
        self._handles: dict[int, LookupHandle] = {}
        self._pings: dict[int, asyncio.Future[ev.PingFinished]] = {}
        self._samples: dict[int, asyncio.Future[ev.SamplesReceived]] = {}
        self._crawl: CrawlRecorder | None = None
        self._crawl_ops: set[int] = set()

    def __len__(self) -> int:
        """Operations waited for: lookup parts, pings and samples (a crawl not counted)."""
        return len(self._handles) + len(self._pings) + len(self._samples)

    # ========================================================================= lookups ==
    def start_lookup(
        self,
        kind: str,
        target: bytes,
        port: int = 0,
        implied_port: bool = False,
        *,
        salt: bytes = b"",
        request: PutRequest | None = None,
    ) -> LookupHandle:
        """Start the lookup in every running family (BEP 32: each DHT on its own), one handle.
        A family that refuses (too many lookups) cancels the others: none runs."""
        stacks = self._running()
        if len(target) != ID_BYTES:
            raise ValueError(f"target must be {ID_BYTES} bytes, got {len(target)}")
        handle = LookupHandle(kind, target, self._cancel_lookup)
        try:
            for stack in stacks:
                self._start_part(stack, handle, kind, target, port, implied_port, salt, request)
        except Exception:
            handle.cancel()
            for lid in handle.lookup_ids:
                self._handles.pop(lid, None)
            raise
        return handle

    def _start_part(
        self, stack: FamilyStack, handle: LookupHandle, kind: str, target: bytes, port: int,
        implied_port: bool, salt: bytes, request: PutRequest | None,
    ) -> None:
        node = stack.node
        # With a thin routing table (still bootstrapping) the bootstrap nodes seed the lookup.
        seeds = stack.bootstrap_addrs if node.routing_size() < node.settings.k else []

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
            handle.add_part(stack.family, lid)
            self._handles[lid] = handle
            return lid

        stack.proto.run(call)

    def _cancel_lookup(self, lookup_id: int) -> None:
        handle = self._handles.get(lookup_id)
        family = handle.family_of(lookup_id) if handle is not None else None
        stack = self._stacks().get(family) if family is not None else None
        if handle is None or stack is None:
            return
        # The node ends the lookup with its final events (LookupFinished and, for a lookup with
        # a second phase, that phase's end), which end this part of the handle as they come.
        stack.proto.run(lambda now: stack.node.cancel_lookup(lookup_id, now))
        self._handles.pop(lookup_id, None)

    # ================================================================ one-shot queries ==
    async def ping(self, stack: FamilyStack, target: Addr, timeout: float | None) -> PingResult:
        """Ping ``target`` from ``stack``; ``TimeoutError`` if it does not answer within
        ``timeout`` (default: the core's hard timeout)."""
        done = await self._one_shot(stack, self._pings, stack.node.ping, target, timeout)
        if done is None or done.node_id is None or done.rtt is None:
            raise TimeoutError(f"no answer from {format_addr(target)}")
        return PingResult(target, done.node_id, done.rtt, done.version)

    async def sample(
        self, stack: FamilyStack, target: Addr, timeout: float | None
    ) -> SampleResult:
        """One ``sample_infohashes`` to ``target`` from ``stack`` (BEP 51); ``error`` set in
        the result when the node does not speak it; ``TimeoutError`` when it does not answer."""
        done = await self._one_shot(stack, self._samples, stack.node.sample, target, timeout)
        if done is None or done.error == "timeout":
            raise TimeoutError(f"no answer from {format_addr(target)}")
        return SampleResult(target, done.node_id, done.samples, done.num, done.interval,
                            done.error)

    @staticmethod
    async def _one_shot(
        stack: FamilyStack,
        waits: dict[int, asyncio.Future[E]],
        start: Callable[[Addr, float], int],
        target: Addr,
        timeout: float | None,
    ) -> E | None:
        """Start one query-and-answer operation (``start(target, now)`` gives its id) and wait
        for its end event in ``waits``; None after ``timeout`` (default: a second past the
        core's hard timeout, by which the core has reported it)."""
        fut: asyncio.Future[E] = asyncio.get_running_loop().create_future()

        def call(now: float) -> int:
            op = start(target, now)
            waits[op] = fut  # before run() flushes: the end event cannot come first
            return op

        op = stack.proto.run(call)
        wait_s = stack.node.settings.hard_timeout + 1.0 if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except asyncio.TimeoutError:
            return None
        finally:
            waits.pop(op, None)

    @staticmethod
    async def query(
        stack: FamilyStack,
        target: Addr,
        method: bytes,
        arguments: dict[bytes, object],
        timeout: float | None,
        node_id: bytes | None,
    ) -> Response:
        """A query of any ``method`` to ``target`` from ``stack``, matched by the core (see
        ``DhtSession.query``). No bookkeeping here: the core calls the owner back."""
        node = stack.node
        owner = FutureOwner(asyncio.get_running_loop())
        # The core's own deadline for this query (its TimeoutError names what was asked); the
        # asyncio one below is a safety net a little later, and the only one for timeout=0.
        hard = timeout if timeout is not None and timeout > 0 else None

        def call(now: float) -> object:
            return node.send_query(target, method, arguments, now, owner, node_id=node_id,
                                   hard_timeout=hard)

        if stack.proto.run(call) is None:
            raise OverflowError(
                f"{node.settings.max_inflight_queries} queries in flight; nothing sent to "
                f"{format_addr(target)}"
            )
        limit = node.settings.hard_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(
                asyncio.shield(owner.future), limit + 0.5 if hard or timeout is None else 0.0
            )
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"no answer to {method.decode(errors='replace')} from {format_addr(target)} "
                f"within {limit:g} s"
            ) from None
        finally:
            if not owner.future.done():
                # Cancelled (or the safety net): the core forgets the query, and a late answer
                # is dropped as unsolicited.
                owner.abandon()
                if stack.proto.is_open:
                    stack.proto.run(lambda now: node.cancel_queries(owner))

    # =========================================================================== crawl ==
    @property
    def crawl(self) -> CrawlRecorder | None:
        return self._crawl

    def start_crawl(self, store: SampleStore | None, rate: float | None) -> CrawlRecorder:
        """A BEP 51 crawl in every running family, ``rate`` (default: the settings') shared
        between them."""
        stacks = self._running()
        if self._crawl is not None:
            raise RuntimeError("a crawl is already running")
        total = stacks[0].node.settings.crawl_rate if rate is None else rate
        share = total / len(stacks)
        ops = [
            s.proto.run(functools.partial(_start_crawl, s.node, share, s.bootstrap_addrs))
            for s in stacks
        ]
        recorder = CrawlRecorder(ops[0], store, total)
        self._crawl, self._crawl_ops = recorder, set(ops)
        return recorder

    def stop_crawl(self) -> CrawlRecorder | None:
        """Stop the running crawl in every running family; its recorder (store committed)."""
        recorder, self._crawl = self._crawl, None
        self._crawl_ops = set()
        if recorder is None:
            return None
        for stack in self._stacks().values():
            stack.proto.run(stack.node.stop_crawl)
        recorder.finish()
        return recorder

    # ========================================================================== events ==
    def on_event(self, event: ev.Event) -> None:
        """Hand a node's event to the operation it belongs to, if one waits for it."""
        if isinstance(event, LOOKUP_EVENTS):
            handle = self._handles.get(event.lookup_id)
            if handle is not None:
                handle.on_event(event)
                if handle.finished:
                    for lid in handle.lookup_ids:
                        self._handles.pop(lid, None)
        elif isinstance(event, ev.PingFinished):
            fut = self._pings.pop(event.op_id, None)
            if fut is not None and not fut.done():
                fut.set_result(event)
        elif isinstance(event, ev.SamplesReceived):
            crawl = self._crawl
            if crawl is not None and event.op_id in self._crawl_ops:
                crawl.record(event)
            else:
                sample = self._samples.pop(event.op_id, None)
                if sample is not None and not sample.done():
                    sample.set_result(event)

    def abort(self) -> None:
        """The session stops: cancel every lookup in its node, fail every wait with
        ``SessionClosedError``, stop the crawl."""
        for lid in list(self._handles):
            self._cancel_lookup(lid)
        closed = SessionClosedError("the DHT session stopped")
        for handle in list(self._handles.values()):
            handle.abort(closed)
        self._handles.clear()
        waits: tuple[dict[int, asyncio.Future[ev.PingFinished]],
                     dict[int, asyncio.Future[ev.SamplesReceived]]] = (self._pings, self._samples)
        for futures in waits:
            for fut in futures.values():
                if not fut.done():
                    fut.set_exception(closed)
                    fut.exception()  # retrieved: nobody may be awaiting it any more
            futures.clear()
        self.stop_crawl()


def _start_crawl(node: DhtNode, rate: float, seeds: Sequence[Addr], now: float) -> int:
    return node.start_crawl(now, rate=rate, seeds=seeds)
