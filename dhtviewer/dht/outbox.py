"""Outbox: what a node hands back to whoever drives it: datagrams to send and events.

Every datagram leaves through ``transmit`` (counted, and announced as a ``MessageSent`` event
while packet events are wanted), every event through ``emit``. Events wait in a bounded queue:
a consumer that stops draining loses the oldest ones (counted) rather than the node's memory.
"""

from __future__ import annotations

from collections import deque

from dhtviewer.dht import events as ev
from dhtviewer.dht.counters import Counters, Direction
from dhtviewer.dht.messages import Addr


class Outbox:
    def __init__(self, counters: Counters, max_events: int, traffic_events: bool) -> None:
        self._counters = counters
        self._events: deque[ev.Event] = deque(maxlen=max(1, max_events))
        self._datagrams: list[tuple[bytes, Addr]] = []
        self.traffic_events = traffic_events
        """Build MessageSent/MessageReceived events (one per datagram)."""

    def emit(self, event: ev.Event) -> None:
        events = self._events
        if len(events) == events.maxlen:
            self._counters.events_dropped += 1
        events.append(event)

    def transmit(
        self, data: bytes, addr: Addr, kind: str, method: bytes, tid: bytes, now: float
    ) -> None:
        """Queue ``data`` for ``addr``. ``kind`` "q", "r" or "e"; ``method`` of the query (b""
        when unknown), for the packet event."""
        self._datagrams.append((data, addr))
        c = self._counters
        c.packets_out += 1
        c.bytes_out += len(data)
        c.messages.add(Direction.OUT, kind, method)
        if self.traffic_events:
            self.emit(ev.MessageSent(addr, kind, method, tid, len(data), data, now))

    def take_datagrams(self) -> list[tuple[bytes, Addr]]:
        out, self._datagrams = self._datagrams, []
        return out

    def take_events(self) -> list[ev.Event]:
        out = list(self._events)
        self._events.clear()
        return out

    def queued_events(self) -> int:
        return len(self._events)
