"""Subscriptions to a session's events: callbacks filtered by event class, and ``EventStream``,
an async iterator over them with a bounded queue.

A subscriber names the event classes it wants (``kinds``; None: all). The packet events
(``MessageSent``/``MessageReceived``, one per datagram) are special: a node builds them only
while some subscriber wants them, so ``Subscribers.wants_traffic`` tells the session when to
switch them on. A subscriber that raises is logged and counted (``errors``) and the others
still get the event: a bad handler never stops the node or the session.

``EventStream`` is for consumers that cannot keep up synchronously: the session's callback
only appends to a bounded deque; when it is full the oldest event is dropped (and counted in
``dropped``), so a slow reader costs memory up to ``maxsize`` events and never stalls the
node.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from dhtviewer.dht.events import TRAFFIC_EVENTS

log = logging.getLogger(__name__)

E = TypeVar("E")

DEFAULT_STREAM_SIZE = 10_000
"""Events an ``EventStream`` holds before it drops the oldest."""


def event_kinds(kinds: Iterable[type] | None, known: Iterable[type]) -> tuple[type, ...] | None:
    """``kinds`` checked against the ``known`` event classes, as a tuple (None stays None: all
    events). TypeError naming the culprit for anything that is not one of them (an instance
    instead of its class, a string, a class of another module)."""
    if kinds is None:
        return None
    if isinstance(kinds, type):
        kinds = (kinds,)
    known_set = set(known)
    out: list[type] = []
    try:
        items = list(kinds)
    except TypeError:
        raise TypeError(
            f"kinds must be event classes or None, got {type(kinds).__name__}"
        ) from None
    for k in items:
        if not isinstance(k, type) or k not in known_set:
            raise TypeError(f"kinds: {k!r} is not an event class (see dhtviewer.events)")
        out.append(k)
    return tuple(dict.fromkeys(out))


@dataclass(eq=False, slots=True)
class Subscription(Generic[E]):
    """One subscriber: ``callback`` for events of ``kinds`` (None: every kind; packet events
    only with ``traffic``)."""

    callback: Callable[[E], None]
    kinds: tuple[type, ...] | None
    traffic: bool

    def wants(self, event: E, is_traffic: bool) -> bool:
        if is_traffic and not self.traffic:
            return False
        return self.kinds is None or isinstance(event, self.kinds)


class Subscribers(Generic[E]):
    """The subscribers of one session. ``on_change()`` is called whenever whether anyone wants
    packet events may have changed."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._subs: list[Subscription[E]] = []
        self._on_change = on_change
        self.errors = 0
        """Exceptions raised by subscriber callbacks (each logged)."""

    def add(
        self,
        callback: Callable[[E], None],
        kinds: tuple[type, ...] | None = None,
        traffic: bool = True,
    ) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes (idempotent). Packet events go to
        the callback only if ``traffic`` and ``kinds`` (when given) names them."""
        if kinds is not None:
            traffic = traffic and any(k in TRAFFIC_EVENTS for k in kinds)
        sub = Subscription(callback, kinds, traffic)
        self._subs.append(sub)
        self._on_change()

        def unsubscribe() -> None:
            # Identity, not equality: the same bound method may be subscribed twice.
            for i, s in enumerate(self._subs):
                if s is sub:
                    del self._subs[i]
                    self._on_change()
                    return

        return unsubscribe

    def wants_traffic(self) -> bool:
        return any(s.traffic for s in self._subs)

    def publish(self, event: E) -> None:
        """``event`` to every subscriber that wants it, in subscription order."""
        is_traffic = type(event) in TRAFFIC_EVENTS
        for sub in tuple(self._subs):  # a callback may unsubscribe (itself or another)
            if not sub.wants(event, is_traffic):
                continue
            try:
                sub.callback(event)
            except Exception:
                self.errors += 1
                log.exception(
                    "event subscriber %r failed on %s", sub.callback, type(event).__name__
                )

    def __len__(self) -> int:
        return len(self._subs)


class EventStream(Generic[E]):
    """``async for event in stream``: the events of a subscription, in order, until ``close()``
    (or the ``async with`` block ends). Holds at most ``maxsize`` events; past that the oldest
    is dropped and counted in ``dropped``. Made by ``DhtSession.events``; must be read on the
    event loop's thread."""

    def __init__(self, maxsize: int = DEFAULT_STREAM_SIZE) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self.dropped = 0
        """Events dropped because the reader fell ``maxsize`` behind."""
        self._queue: deque[E] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None
        self._on_drop: Callable[[int], None] | None = None

    def attach(
        self, unsubscribe: Callable[[], None], on_drop: Callable[[int], None] | None = None
    ) -> None:
        """What ``close()`` calls to unsubscribe; ``on_drop(n)`` counts drops elsewhere too."""
        self._unsubscribe = unsubscribe
        self._on_drop = on_drop

    def put(self, event: E) -> None:
        """The subscription's callback: queue ``event`` (never blocks, never raises)."""
        if self._closed:
            return
        queue = self._queue
        if len(queue) >= self.maxsize:
            queue.popleft()
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(1)
        queue.append(event)
        self._wake.set()

    def pending(self) -> int:
        """Events queued and not read yet."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unsubscribe; a reader waiting for the next event finishes (queued events are still
        yielded first)."""
        if self._closed:
            return
        self._closed = True
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    async def get(self, timeout: float | None = None) -> E:
        """The next event; ``TimeoutError`` after ``timeout`` seconds without one,
        ``EOFError`` once closed and drained."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except StopAsyncIteration:
            raise EOFError("the event stream is closed") from None
        except asyncio.TimeoutError:
            raise TimeoutError(f"no event within {timeout:g} s") from None

    async def __aenter__(self) -> EventStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
