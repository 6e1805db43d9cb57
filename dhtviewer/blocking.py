"""``BlockingDht``: the ``Dht`` API without ``await``, for scripts, notebooks and threads.

A daemon thread owns an asyncio event loop and the ``Dht`` on it. Each call is handed to that
loop (``asyncio.run_coroutine_threadsafe``) and waits for its answer, so any thread may call
any method at any time: the node itself is only ever touched by its own thread, which is what
makes it safe (BitScrape's thread-safety promise, kept without a single lock in the core).

* A call from the loop's own thread (inside a subscriber, a method handler or a task) would
  wait for itself forever: it raises ``RuntimeError`` instead. Code running there uses the
  async ``Dht`` (``blocking.aio``), which is safe on that thread.
* Ctrl-C (``KeyboardInterrupt``) while a call waits cancels the operation on the loop (a
  lookup stops, a query is abandoned) before the interrupt reaches the caller.
* ``close()`` (or the end of the ``with`` block) stops the node (state saved, sockets closed),
  ends the loop and joins the thread. A ``BlockingDht`` that is dropped without ``close()``
  is shut down the same way when it is garbage collected or when the interpreter exits.
* Lookups can be followed (``start_find_peers(...)`` returns a ``BlockingLookup`` to read
  with ``for``) and events read as a plain iterator (``for event in dht.events(...)``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar

from dhtviewer.api import Dht, MethodHandler, ReplyFields, TaskFunction
from dhtviewer.arguments import HostPortArg, check_timeout
from dhtviewer.dht.events import Event
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import Addr, Response
from dhtviewer.dht.routing_table import RoutingSnapshot
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.extensions import SessionTask
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
from dhtviewer.net.session import SessionEvent, State
from dhtviewer.net.subscriptions import DEFAULT_STREAM_SIZE, EventStream

__all__ = ["BlockingDht", "BlockingEvents", "BlockingLookup"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_POLL = 0.2
"""Seconds between checks for Ctrl-C while a call waits (a wait without a timeout cannot be
interrupted on every platform); an answer is returned the moment it comes, not at a tick."""
SHUTDOWN_TIMEOUT = 10.0
"""Seconds ``close()`` waits for the node to stop and the thread to end."""


class _Loop:
    """The event loop thread. Holds no reference to the ``BlockingDht`` (so that an unused one
    can be garbage collected, and its finalizer can shut this down)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.thread = threading.Thread(
            target=self._serve, args=(started,), name="dhtviewer-dht", daemon=True
        )
        self.thread.start()
        started.result(SHUTDOWN_TIMEOUT)
        self.closed = False

    def _serve(self, started: concurrent.futures.Future[None]) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set_result, None)
        try:
            loop.run_forever()
        finally:
            # Whatever is left (a call cancelled at shutdown) ends here, on its own thread.
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (see the module docstring)."""
        if self.closed or not self.thread.is_alive():
            coro.close()
            raise RuntimeError("this BlockingDht is closed")
        if self.on_loop_thread():
            coro.close()
            raise RuntimeError(
                "a BlockingDht method was called from the DHT's own thread (in a subscriber, "
                "handler or task), where it would wait for itself forever; use the async API "
                "there (BlockingDht.aio)"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            # Not fut.result(_POLL) in a loop: its "not yet" is TimeoutError, which the
            # operation itself may raise too.
            while not concurrent.futures.wait((fut,), _POLL).done:
                pass
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()  # cancels the task on the loop: lookups stop, queries are abandoned
            self._settle()
            raise

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the loop's thread (for the synchronous parts of the API)."""

        async def call() -> T:
            return fn()

        return self.call(call())

    def _settle(self) -> None:
        """Let the loop run what a cancellation started (a task's ``finally`` blocks)."""

        async def turns() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(turns(), self.loop).result(SHUTDOWN_TIMEOUT)

    def shutdown(self, dht: Dht | None, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop ``dht`` (sockets closed, state saved), end the loop, join the thread."""
        if self.closed:
            return
        if self.on_loop_thread():
            raise RuntimeError("a BlockingDht cannot be closed from its own thread")
        self.closed = True
        if not self.thread.is_alive():
            return
        if dht is not None:
            try:
                asyncio.run_coroutine_threadsafe(dht.stop(), self.loop).result(timeout)
            except Exception:
                log.exception("the DHT did not stop cleanly")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("the DHT thread did not end within %g s", timeout)


def _shutdown(runner: _Loop, holder: list[Dht]) -> None:
    """The finalizer of a ``BlockingDht`` (explicit ``close()``, garbage collection or
    interpreter exit)."""
    if runner.on_loop_thread():
        # Collected on its own thread (the last reference died in a callback): the loop cannot
        # wait for itself; ask it to stop and let the daemon thread end.
        runner.closed = True
        runner.loop.call_soon(runner.loop.stop)
        return
    runner.shutdown(holder[0] if holder else None)


class BlockingDht:
    """A ``Dht`` on its own event loop thread, with blocking methods (see the module
    docstring). Takes the arguments of ``Dht``, and: ``start_timeout`` (seconds to wait until
    ready), ``autostart`` (False: start later with ``start()``, for example after registering
    handlers). ``Dht.blocking(...)`` makes one."""

    def __init__(
        self,
        settings: DhtSettings | None = None,
        *,
        start_timeout: float = 30.0,
        autostart: bool = True,
        **kwargs: Any,
    ) -> None:
        timeout = check_timeout(start_timeout, "start_timeout")
        self._runner = runner = _Loop()
        holder: list[Dht] = []
        self._finalizer = weakref.finalize(self, _shutdown, runner, holder)
        try:
            # Made on its own thread: its asyncio objects belong to that loop.
            self._dht = runner.run(lambda: Dht(settings, **kwargs))
            holder.append(self._dht)
            if autostart:
                self.start(timeout=30.0 if timeout is None else timeout)
        except BaseException:
            self._finalizer()
            raise

    @property
    def aio(self) -> Dht:
        """The async ``Dht`` underneath: for code running on the DHT's thread (subscribers,
        handlers, tasks), never from another thread."""
        return self._dht

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Stop the node (state saved, sockets closed) and end its thread. Safe to call
        twice."""
        if self._runner.on_loop_thread():
            raise RuntimeError("a BlockingDht cannot be closed from its own thread")
        self._finalizer()

    def __enter__(self) -> BlockingDht:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.call(coro)

    def _run(self, fn: Callable[[], T]) -> T:
        return self._runner.run(fn)

    # ======================================================================= life cycle ==
    def start(self, bootstrap: Sequence[HostPortArg] | None = None, *, timeout: float = 30.0
              ) -> None:
        """Join the DHT (see ``Dht.start``); done by the constructor unless ``autostart`` is
        False."""
        self._call(self._dht.start(bootstrap, timeout=timeout))

    def stop(self) -> None:
        """Stop the node but keep the thread: ``start()`` again later (``close()`` ends both)."""
        self._call(self._dht.stop())

    def wait_ready(self, timeout: float | None = None) -> None:
        self._call(self._dht.wait_ready(timeout))

    # ======================================================================= operations ==
    def find_peers(self, info_hash: bytes | str, *, timeout: float | None = None
                   ) -> LookupResult:
        """See ``Dht.find_peers``."""
        return self._call(self._dht.find_peers(info_hash, timeout=timeout))

    def find_node(self, target: bytes | str, *, timeout: float | None = None) -> LookupResult:
        return self._call(self._dht.find_node(target, timeout=timeout))

    def announce(self, info_hash: bytes | str, port: int | None = None, *,
                 timeout: float | None = None) -> AnnounceResult:
        return self._call(self._dht.announce(info_hash, port, timeout=timeout))

    def scrape(self, info_hash: bytes | str, *, timeout: float | None = None) -> ScrapeResult:
        return self._call(self._dht.scrape(info_hash, timeout=timeout))

    def ping(self, addr: HostPortArg, *, timeout: float | None = None) -> PingResult:
        return self._call(self._dht.ping(addr, timeout=timeout))

    def get(self, target: bytes | str, *, salt: bytes = b"", timeout: float | None = None
            ) -> ItemResult:
        return self._call(self._dht.get(target, salt=salt, timeout=timeout))

    def put(self, value: object, *, seed: bytes | None = None, salt: bytes = b"",
            seq: int | None = None, timeout: float | None = None) -> PutResult:
        return self._call(self._dht.put(value, seed=seed, salt=salt, seq=seq, timeout=timeout))

    def sample(self, addr: HostPortArg, *, timeout: float | None = None) -> SampleResult:
        return self._call(self._dht.sample(addr, timeout=timeout))

    def query(self, addr: HostPortArg, method: bytes | str,
              args: ReplyFields | None = None, *,
              timeout: float | None = None) -> Response:
        """See ``Dht.query``."""
        return self._call(self._dht.query(addr, method, args, timeout=timeout))

    # --- followed live ---------------------------------------------------------------------------
    def start_find_peers(self, info_hash: bytes | str) -> BlockingLookup:
        """``for event in lookup`` follows it; ``lookup.result(timeout)`` waits for it."""
        return BlockingLookup(self._runner, self._run(lambda: self._dht.start_find_peers(
            info_hash)))

    def start_find_node(self, target: bytes | str) -> BlockingLookup:
        return BlockingLookup(self._runner, self._run(lambda: self._dht.start_find_node(target)))

    def start_announce(self, info_hash: bytes | str, port: int | None = None
                       ) -> BlockingLookup:
        return BlockingLookup(
            self._runner, self._run(lambda: self._dht.start_announce(info_hash, port))
        )

    # ======================================================================= events ==
    def subscribe(self, handler: Callable[[SessionEvent], None], *,
                  kinds: Iterable[type] | type | None = None) -> Callable[[], None]:
        """``handler(event)`` for every event of ``kinds``, called **on the DHT's thread**: it
        must be quick and hand work to other threads itself. Returns the function that
        unsubscribes (callable from any thread)."""
        unsubscribe = self._run(lambda: self._dht.subscribe(handler, kinds=kinds))

        def unsubscribe_anywhere() -> None:
            if self._runner.on_loop_thread():
                unsubscribe()
            elif not self._runner.closed:
                self._run(unsubscribe)

        return unsubscribe_anywhere

    def events(self, kinds: Iterable[type] | type | None = None, *,
               timeout: float | None = None, maxsize: int = DEFAULT_STREAM_SIZE
               ) -> BlockingEvents:
        """The events of ``kinds`` from now on, as an iterator that ends after ``timeout``
        seconds in all (None: when closed); ``close()`` it (or use ``with``) to unsubscribe.
        A reader ``maxsize`` events behind loses the oldest (``dropped``)."""
        seconds = check_timeout(timeout)
        stream = self._run(lambda: self._dht.events(kinds, maxsize=maxsize))
        return BlockingEvents(self._runner, stream, seconds)

    # ================================================================ extension points ==
    def register_handler(self, method: bytes | str, handler: MethodHandler, *,
                         replace_builtin: bool = False) -> None:
        """See ``Dht.register_handler``; ``handler`` runs on the DHT's thread."""
        self._run(lambda: self._dht.register_handler(method, handler,
                                                     replace_builtin=replace_builtin))

    def unregister_handler(self, method: bytes | str) -> None:
        self._run(lambda: self._dht.unregister_handler(method))

    def call_at(self, when: float, fn: TaskFunction, *, name: str = "") -> SessionTask:
        """See ``Dht.call_at``; ``fn`` runs on the DHT's thread. ``task.cancel()`` is safe from
        any thread (the task is skipped when next due)."""
        return self._run(lambda: self._dht.call_at(when, fn, name=name))

    def call_later(self, delay: float, fn: TaskFunction, *, name: str = "") -> SessionTask:
        return self._run(lambda: self._dht.call_later(delay, fn, name=name))

    def call_every(self, interval: float, fn: TaskFunction, *, first: float | None = None,
                   name: str = "") -> SessionTask:
        return self._run(lambda: self._dht.call_every(interval, fn, first=first, name=name))

    # ======================================================================= views ==
    @property
    def node_id(self) -> bytes:
        return self._run(lambda: self._dht.node_id)

    @property
    def state(self) -> State:
        return self._run(lambda: self._dht.state)

    @property
    def families(self) -> tuple[int, ...]:
        return self._run(lambda: self._dht.families)

    @property
    def local_address(self) -> Addr | None:
        return self._run(lambda: self._dht.local_address)

    @property
    def local_addresses(self) -> dict[int, Addr]:
        return self._run(lambda: self._dht.local_addresses)

    @property
    def external_ip(self) -> str | None:
        return self._run(lambda: self._dht.external_ip)

    def now(self) -> float:
        return self._run(self._dht.now)

    def routing_snapshot(self, family: int | None = None) -> RoutingSnapshot:
        """A snapshot (immutable: safe to read on any thread)."""
        return self._run(lambda: self._dht.routing_snapshot(family))

    def stats(self) -> dict[str, float]:
        return self._run(self._dht.stats)

    def stored_items(self) -> list[tuple[bytes, StoredItem]]:
        return self._run(self._dht.stored_items)


class BlockingLookup:
    """A running lookup seen from another thread: ``for event in lookup`` yields its events
    live (from the start) and ends with the last; ``result(timeout)``, ``announce_result``
    wait for its outcome; ``cancel()`` stops it."""

    def __init__(self, runner: _Loop, handle: LookupHandle) -> None:
        self._runner = runner
        self.handle = handle
        """The ``LookupHandle`` on the DHT's thread (read it there only)."""

    @property
    def kind(self) -> str:
        return self.handle.kind

    @property
    def target(self) -> bytes:
        return self.handle.target

    def __iter__(self) -> Iterator[Event]:
        runner = self._runner
        ait: AsyncIterator[Event] = runner.run(self.handle.__aiter__)

        async def step() -> Event:
            return await ait.__anext__()

        while True:
            try:
                event = runner.call(step())
            except StopAsyncIteration:
                return
            yield event

    def result(self, timeout: float | None = None) -> LookupResult:
        """The merged result; after ``timeout`` seconds the lookup stops (``cancelled``)."""
        return self._runner.call(self.handle.result(check_timeout(timeout)))

    def announce_result(self, timeout: float | None = None) -> AnnounceResult:
        return self._runner.call(self.handle.announce_result(check_timeout(timeout)))

    def done(self) -> bool:
        return self._runner.run(self.handle.done)

    def cancel(self) -> None:
        self._runner.run(self.handle.cancel)


class BlockingEvents:
    """An iterator over a session's events (``BlockingDht.events``), ending after its
    ``timeout`` or at ``close()``."""

    def __init__(self, runner: _Loop, stream: EventStream[SessionEvent],
                 timeout: float | None) -> None:
        self._runner = runner
        self._stream = stream
        self._deadline = None if timeout is None else time.monotonic() + timeout

    @property
    def dropped(self) -> int:
        """Events dropped because this reader fell ``maxsize`` behind."""
        return self._stream.dropped

    def __iter__(self) -> Iterator[SessionEvent]:
        return self

    def __next__(self) -> SessionEvent:
        if self._stream.closed and not self._stream.pending():
            raise StopIteration
        remaining = None
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise StopIteration
        try:
            return self._runner.call(self._stream.get(remaining))
        except (TimeoutError, EOFError):
            self.close()
            raise StopIteration from None

    def close(self) -> None:
        """Unsubscribe (from any thread; no-op once the DHT is closed)."""
        if self._stream.closed:
            return
        if self._runner.on_loop_thread():
            self._stream.close()
        elif not self._runner.closed:
            self._runner.run(self._stream.close)

    def __enter__(self) -> BlockingEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
