"""EventBatcher: the throttle between the session's events and the views' redraws.

The session reports every event as it happens, thousands a second on a busy node; the views
must redraw at most ten times a second whatever the rate. The batcher queues the events (a
flood beyond ``MAX_PENDING`` between two ticks is dropped and counted, so memory stays bounded
while the UI is busy), notes which address family's routing table changed and which family
learned its external address, and tells each tick what is due: the queued batch, the routing
snapshots (of the families that changed; every family once a second so ages tick) and the
stats (twice a second). No Qt and no clock of its own: the controller's timer calls it with the
events' clock, so it is tested with made-up times.
"""

from __future__ import annotations

from collections.abc import Iterable

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import host_family
from dhtviewer.net.session import SessionEvent

TICK_MS = 100
"""Batching period: at most 10 deliveries of events (and redraws) per second."""
SNAPSHOT_EVERY = 1.0
"""Seconds between routing snapshots when nothing changed (the "last seen" ages move on)."""
STATS_EVERY = 0.5
"""Seconds between two stats deliveries."""
MAX_PENDING = 50_000
"""Traffic events queued between two ticks beyond this are dropped (counted): a flood must not
grow memory without bound while the UI is busy."""
ROUTING_EVENTS = (ev.NodeAdded, ev.NodeRemoved, ev.NodeStateChanged, ev.BucketSplit,
                  ev.NodeIdChanged)
"""Events after which the routing views need a new snapshot (a new id re-sorts every bucket)."""


class EventBatcher:
    """Session events queued for the next tick, and what else that tick owes the views."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self.dropped = 0
        """Traffic events dropped because the queue was full (since the app started)."""
        self.responses = 0
        """Responses received since the last ``responses = 0`` (a start or re-bootstrap): a
        bootstrap with none has stalled."""
        self._pending: list[SessionEvent] = []
        self._routing_dirty: set[int] = set()
        # family -> (ip, votes): each family's node learns its own external address
        self._external: dict[int, tuple[str, int]] = {}
        self._external_dirty: set[int] = set()
        self._last_snapshot = -1e9
        self._last_stats = -1e9

    # --- the session's side (called for every event: must stay cheap) ---------------------------
    def add(self, event: SessionEvent) -> None:
        """Queue ``event`` for the next tick (a traffic event beyond the cap is dropped)."""
        if isinstance(event, ev.TRAFFIC_EVENTS):
            if len(self._pending) >= self.max_pending:
                self.dropped += 1
                return
            if isinstance(event, ev.MessageReceived) and event.kind == "r":
                self.responses += 1
        elif isinstance(event, ROUTING_EVENTS):
            self._routing_dirty.add(event.family)
        elif isinstance(event, ev.ExternalAddressChanged):
            self.set_external(host_family(event.ip), event.ip, event.votes)
        self._pending.append(event)

    def set_external(self, family: int, ip: str, votes: int) -> None:
        """``family``'s external address is ``ip`` (by ``votes`` votes); delivered next tick."""
        self._external[family] = (ip, votes)
        self._external_dirty.add(family)

    def forget_external(self) -> None:
        """A new run learns its external addresses anew."""
        self._external, self._external_dirty = {}, set()

    # --- the tick's side ------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Events waiting for the next tick."""
        return len(self._pending)

    def take_events(self) -> list[SessionEvent]:
        """The events queued since the last call, in the order they happened."""
        batch, self._pending = self._pending, []
        return batch

    def take_external(self) -> list[tuple[str, int]]:
        """(ip, votes) of each family whose external address changed since the last call."""
        dirty, self._external_dirty = self._external_dirty, set()
        return [self._external[fam] for fam in sorted(dirty)]

    def external_address(self) -> tuple[str, int] | None:
        """(ip, votes) of the first family that learned its address; None before any."""
        return next(iter(self._external.values()), None)

    def routing_due(self, now: float, families: Iterable[int]) -> list[int]:
        """The families (of ``families``) whose routing snapshot is due at ``now``: those that
        changed, or every one once ``SNAPSHOT_EVERY`` passed since the last periodic round."""
        periodic = now - self._last_snapshot >= SNAPSHOT_EVERY
        if not periodic and not self._routing_dirty:
            return []
        dirty, self._routing_dirty = self._routing_dirty, set()
        if periodic:
            self._last_snapshot = now
        return [family for family in families if periodic or family in dirty]

    def stats_due(self, now: float) -> bool:
        """Whether the stats are due at ``now`` (then not again for ``STATS_EVERY``)."""
        if now - self._last_stats < STATS_EVERY:
            return False
        self._last_stats = now
        return True
