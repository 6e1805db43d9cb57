"""LookupState: everything the UI shows about one lookup, rebuilt from the core's lookup events.

Pure Python (no Qt), so it is tested on scripted event sequences. One record per lookup holds the
path graph (every queried node with its hop depth, the bits it shares with the target, who
referred it, its outcome and RTT), the peers found with how many nodes returned each and when,
and the summary counters, and what a second phase reported: where an announce or a BEP 44 put
was stored, the item a get found (and the copies it rejected, with why), the BEP 33 estimate of
a scrape. ``LookupTracker`` keeps a bounded history of them, which the lookup history list
re-selects from.

Queried nodes are keyed by address, as in the core: a bootstrap seed is asked before its id is
known, and only its answer tells us the id.

A dual-stack session runs a user's lookup once per address family (BEP 32: two separate DHTs).
Told which lookups belong together (``LookupTracker.group``), the tracker keeps them in one
record: one row, one graph with the paths of both families, the peers of both. The record is
finished when every family's lookup is; each family's own maintenance lookups stay apart.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import host_family
from dhtviewer.dht.families import family_name
from dhtviewer.dht.kinds import QueryRole
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.node_id import distance, shared_prefix_bits

# Outcome of one query of a lookup.
IN_FLIGHT = "in flight"
SLOW = "slow"
"""Past the short timeout, still unanswered: the lookup asked someone else meanwhile."""
ANSWERED = "answered"
RETURNED_PEERS = "returned peers"
TIMED_OUT = "timed out"
ERROR = "error reply"
"""Answered with a KRPC error (or a reply that did not decode): alive, but nothing to use."""
ABANDONED = "abandoned"
"""Still unanswered when the lookup settled; the core forgets such queries."""
OUTCOMES = (IN_FLIGHT, SLOW, ANSWERED, RETURNED_PEERS, TIMED_OUT, ERROR, ABANDONED)

# State of a whole lookup.
RUNNING = "running"
DONE = "done"
CANCELLED = "cancelled"
ANNOUNCING = "announcing"
ANNOUNCED = "announced"
PUTTING = "putting"
"""A BEP 44 put whose lookup settled: the put round is under way."""
STORED = "stored"
NOT_STORED = "not stored"


@dataclass(slots=True)
class PathNode:
    """One queried node. ``prefix_bits``: leading bits shared with the target (None while the id
    is unknown). ``closest_rank``: 0-based place in the final closest list, None if not in it."""

    addr: Addr
    node_id: bytes | None
    depth: int
    referrer: bytes | None
    prefix_bits: int | None
    sent_at: float
    outcome: str = IN_FLIGHT
    rtt: float | None = None
    nodes_returned: int = 0
    peers_returned: int = 0
    error: str | None = None
    closest_rank: int | None = None
    slow: bool = False
    """It passed the short timeout (whether or not it answered later)."""

    @property
    def answered(self) -> bool:
        return self.outcome in (ANSWERED, RETURNED_PEERS)


@dataclass(slots=True)
class PeerRecord:
    """A peer the lookup found: when first, and which nodes returned it."""

    addr: Addr
    first_seen: float
    sources: set[bytes] = field(default_factory=set)

    @property
    def count(self) -> int:
        """How many distinct nodes returned this peer (at least 1: it was found)."""
        return max(1, len(self.sources))


@dataclass(frozen=True, slots=True)
class LookupSummary:
    lookup_id: int
    target: bytes
    kind: str
    state: str
    queried: int
    answered: int
    in_flight: int
    timed_out: int
    peers: int
    elapsed: float
    closest: tuple[tuple[bytes, Addr], ...]


def _family(addr: Addr) -> int:
    return host_family(addr[0])


class LookupState:
    """The record of one lookup (of its lookup in each family, once ``add_part`` named them),
    updated one event at a time with ``apply``."""

    def __init__(
        self, lookup_id: int, target: bytes, kind: str, started_at: float, family: int = 4
    ) -> None:
        """``family``: the address family of the DHT the lookup runs in (4 or 6)."""
        self.lookup_id = lookup_id
        self.target = target
        self.kind = kind
        self.parts: dict[int, int] = {lookup_id: family}
        """lookup id -> family of every lookup this record follows."""
        self._open: set[int] = {lookup_id}  # parts whose LookupFinished has not come
        self._unannounced: set[int] = {lookup_id}  # parts whose AnnounceFinished has not come
        self._closest: dict[int, tuple[tuple[bytes, Addr], ...]] = {}
        self._elapsed: dict[int, float] = {}
        self.started_at = started_at
        self.last_event_at = started_at
        self.nodes: dict[Addr, PathNode] = {}  # in the order queries were sent
        # By (family, id): a dual-stack host has one id in both DHTs (BEP 32 advises it), and
        # a referrer is always of the family of the node it referred.
        self._by_id: dict[tuple[int, bytes], PathNode] = {}
        self.peers: dict[Addr, PeerRecord] = {}  # in the order peers were found
        self.closest: tuple[tuple[bytes, Addr], ...] = ()
        self.finished = False
        self.cancelled = False
        self.finished_elapsed: float | None = None
        self.announce_done = False
        self.stored_at: tuple[Addr, ...] = ()
        self.announce_failed: tuple[Addr, ...] = ()
        # the second phase of a scrape, get or put: one final event per part (family)
        self._scrapes: dict[int, ev.ScrapeFinished] = {}
        self._gets: dict[int, ev.ItemGetFinished] = {}
        self._puts: dict[int, ev.ItemPutFinished] = {}
        self.rejections: dict[Addr, str] = {}
        """Nodes whose item copy a get or put lookup rejected, and why."""

    def add_part(self, lookup_id: int, family: int, started_at: float | None = None) -> None:
        """Follow ``lookup_id`` (the lookup of ``family``) in this record too."""
        if lookup_id in self.parts:
            self.parts[lookup_id] = family
            return
        self.parts[lookup_id] = family
        self._open.add(lookup_id)
        self._unannounced.add(lookup_id)
        self.finished = False
        if started_at is not None:
            self.started_at = min(self.started_at, started_at)

    # --- second phases (every family's added up, as the session's handle does) ----------------
    @property
    def scrape(self) -> ev.ScrapeFinished | None:
        """The BEP 33 estimate of a get_peers lookup started with scrape, over the families
        that reported so far (each DHT holds its own family's peers: they add up)."""
        done = list(self._scrapes.values())
        if not done:
            return None
        made = [e for e in done if not e.cancelled]
        if not made:
            return done[-1]
        last = made[-1]
        return ev.ScrapeFinished(
            self.lookup_id, last.info_hash, sum(e.seeds for e in made),
            sum(e.downloaders for e in made), sum(e.nodes for e in made),
            sum(e.legacy for e in made), any(e.saturated for e in made), False,
            max(e.at for e in made))

    @property
    def item(self) -> ev.ItemGetFinished | None:
        """What a BEP 44 get found: the newest valid item of any family (else the last
        report)."""
        done = list(self._gets.values())
        found = [e for e in done if e.value is not None]
        if found:
            return max(found, key=lambda e: -1 if e.seq is None else e.seq)
        return done[-1] if done else None

    @property
    def put(self) -> ev.ItemPutFinished | None:
        """Where a BEP 44 put stored the item, and why not elsewhere, once every family's put
        round ended (None before)."""
        if not self._puts or set(self._puts) != set(self.parts):
            return None
        done = list(self._puts.values())
        first = done[0]
        return ev.ItemPutFinished(
            self.lookup_id, first.target, first.public_key, first.seq,
            tuple(a for e in done for a in e.stored_at),
            tuple(f for e in done for f in e.failed), max(e.at for e in done))

    @property
    def family(self) -> int:
        """The family of the first lookup (the only one for a single-stack one)."""
        return self.parts[self.lookup_id]

    @property
    def families(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.parts.values())))

    @property
    def families_text(self) -> str:
        """"IPv4", "IPv6" or "IPv4+IPv6"."""
        return "+".join(family_name(f) for f in self.families)

    @classmethod
    def from_events(cls, events: Iterable[ev.Event]) -> LookupState:
        """Build from the events of one lookup; the first lookup event must be LookupStarted."""
        state: LookupState | None = None
        for event in events:
            if state is None:
                if isinstance(event, ev.LookupStarted):
                    state = cls(event.lookup_id, event.target, event.kind, event.at,
                                event.family)
                continue
            state.apply(event)
        if state is None:
            raise ValueError("no LookupStarted event")
        return state

    # --- updating ------------------------------------------------------------------------------
    def apply(self, event: ev.Event) -> bool:
        """Fold one event in; returns False if it does not concern this lookup."""
        if getattr(event, "lookup_id", None) not in self.parts:
            return False
        if isinstance(event, ev.LookupQuerySent):
            self._query_sent(event)
        elif isinstance(event, ev.LookupResponse):
            if not self._response(event):
                return False
        elif isinstance(event, ev.LookupQuerySlow):
            node = self.nodes.get(event.addr)
            if node is None:
                return False
            node.slow = True
            if node.outcome == IN_FLIGHT:
                node.outcome = SLOW
        elif isinstance(event, ev.LookupTimeout):
            node = self.nodes.get(event.addr)
            if node is None:
                return False
            node.outcome = TIMED_OUT
        elif isinstance(event, ev.LookupQueryError):
            node = self.nodes.get(event.addr)
            if node is None:
                return False
            node.outcome = ERROR
            node.error = event.error
        elif isinstance(event, ev.PeersFound):
            self._peers_found(event.node_id, event.returned or event.peers, event.at,
                              self.parts[event.lookup_id])
        elif isinstance(event, ev.LookupFinished):
            self._finished(event)
        elif isinstance(event, ev.AnnounceFinished):
            self._unannounced.discard(event.lookup_id)
            self.announce_done = not self._unannounced
            self.stored_at += event.stored_at
            self.announce_failed += event.failed
        elif isinstance(event, ev.ScrapeFinished):
            self._scrapes[event.lookup_id] = event
        elif isinstance(event, ev.ItemRejected):
            self.rejections[event.addr] = event.reason
        elif isinstance(event, ev.ItemGetFinished):
            self._gets[event.lookup_id] = event
        elif isinstance(event, ev.ItemPutFinished):
            self._puts[event.lookup_id] = event
            self.stored_at += event.stored_at
        else:
            return False
        self.last_event_at = max(self.last_event_at, event.at)
        return True

    def _query_sent(self, event: ev.LookupQuerySent) -> None:
        if event.role != QueryRole.ASK and event.addr in self.nodes:
            return  # a resend or the probe: the node is on the graph already
        bits = None if event.node_id is None else shared_prefix_bits(event.node_id, self.target)
        node = PathNode(event.addr, event.node_id, event.depth, event.referrer, bits, event.at)
        self.nodes[event.addr] = node
        if event.node_id is not None:
            self._by_id[(_family(event.addr), event.node_id)] = node

    def _response(self, event: ev.LookupResponse) -> bool:
        node = self.nodes.get(event.addr)
        if node is None:
            return False
        if node.node_id != event.node_id:
            # A seed told us its id (or the node changed it): place it at its real distance.
            fam = _family(event.addr)
            if node.node_id is not None:
                self._by_id.pop((fam, node.node_id), None)
            node.node_id = event.node_id
            node.prefix_bits = shared_prefix_bits(event.node_id, self.target)
            self._by_id[(fam, event.node_id)] = node
        node.rtt = event.rtt
        node.nodes_returned = event.nodes
        node.peers_returned = event.peers
        node.outcome = RETURNED_PEERS if event.peers > 0 else ANSWERED
        return True

    def _peers_found(
        self, source: bytes | None, peers: Iterable[Addr], at: float, family: int = 4
    ) -> None:
        for addr in peers:
            record = self.peers.get(addr)
            if record is None:
                record = self.peers[addr] = PeerRecord(addr, at)
            if source is not None:
                record.sources.add(source)
        if source is not None:
            node = self._by_id.get((family, source))
            if node is not None and node.answered:
                node.outcome = RETURNED_PEERS

    def _finished(self, event: ev.LookupFinished) -> None:
        self._open.discard(event.lookup_id)
        if event.cancelled:
            self._unannounced.discard(event.lookup_id)  # no announce round follows
            self.announce_done = self.announce_done or not self._unannounced
        self.cancelled = self.cancelled or event.cancelled
        self._closest[event.lookup_id] = event.closest
        self._elapsed[event.lookup_id] = event.elapsed
        # Nearest first over the families (one id space; each family's own K closest).
        self.closest = tuple(sorted(
            dict.fromkeys(c for part in self._closest.values() for c in part),
            key=lambda c: (distance(c[0], self.target), c[1]),
        ))
        self._peers_found(None, event.peers, event.at)
        if self._open:
            return  # another family's lookup still runs: its queries are still in flight
        self.finished = True
        self.finished_elapsed = max(self._elapsed.values())
        for node in self.nodes.values():
            node.closest_rank = None
            if node.outcome in (IN_FLIGHT, SLOW):
                node.outcome = ABANDONED
        for rank, (node_id, addr) in enumerate(self.closest):
            ranked = self._by_id.get((_family(addr), node_id))
            if ranked is not None:
                ranked.closest_rank = rank

    # --- reading -------------------------------------------------------------------------------
    def node_by_id(self, node_id: bytes, family: int | None = None) -> PathNode | None:
        """The queried node ``node_id`` (of ``family``; None: of either, IPv4 first)."""
        families = (family,) if family is not None else (4, 6)
        return next(
            (n for f in families if (n := self._by_id.get((f, node_id))) is not None), None
        )

    def edges(self) -> list[tuple[PathNode, PathNode]]:
        """(referrer, referred) for every queried node whose referrer we queried too."""
        out = []
        for node in self.nodes.values():
            if node.referrer is None:
                continue
            parent = self._by_id.get((_family(node.addr), node.referrer))
            if parent is not None and parent is not node:
                out.append((parent, node))
        return out

    def closest_nodes(self) -> list[PathNode]:
        ranked = [n for n in self.nodes.values() if n.closest_rank is not None]
        return sorted(ranked, key=lambda n: n.closest_rank or 0)

    @property
    def state(self) -> str:
        if not self.finished:
            return RUNNING
        if self.cancelled:
            return CANCELLED
        if self.kind == "announce":
            return ANNOUNCED if self.announce_done else ANNOUNCING
        if self.kind == "put":
            if self.put is None:
                return PUTTING
            return STORED if self.put.stored_at else NOT_STORED
        return DONE

    @property
    def queried(self) -> int:
        return len(self.nodes)

    @property
    def answered(self) -> int:
        return sum(1 for n in self.nodes.values() if n.answered)

    @property
    def in_flight(self) -> int:
        """Queries not answered yet, slow ones included."""
        return sum(1 for n in self.nodes.values() if n.outcome in (IN_FLIGHT, SLOW))

    @property
    def timed_out(self) -> int:
        return sum(1 for n in self.nodes.values() if n.outcome == TIMED_OUT)

    @property
    def max_depth(self) -> int:
        return max((n.depth for n in self.nodes.values()), default=0)

    def elapsed(self, now: float | None = None) -> float:
        """Seconds the lookup took (finished) or has been running (until ``now``, default the
        time of its latest event)."""
        if self.finished_elapsed is not None:
            return self.finished_elapsed
        end = self.last_event_at if now is None else now
        return max(0.0, end - self.started_at)

    def summary(self, now: float | None = None) -> LookupSummary:
        return LookupSummary(
            lookup_id=self.lookup_id,
            target=self.target,
            kind=self.kind,
            state=self.state,
            queried=self.queried,
            answered=self.answered,
            in_flight=self.in_flight,
            timed_out=self.timed_out,
            peers=len(self.peers),
            elapsed=self.elapsed(now),
            closest=self.closest,
        )


class LookupTracker:
    """Routes lookup events to their ``LookupState``; keeps at most ``capacity`` lookups, evicting
    the oldest finished one first (a running lookup is only evicted if all of them are running)."""

    def __init__(self, capacity: int = 200) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.lookups: OrderedDict[int, LookupState] = OrderedDict()
        self._evicted: list[LookupState] = []
        self._grouped: dict[int, int] = {}  # a family's lookup -> the first lookup of its group
        self._alias: dict[int, int] = {}  # the same, once the group's record exists

    def group(self, lookup_ids: Iterable[int]) -> None:
        """The lookups ``lookup_ids`` (one per family, the first one named first) are one
        lookup for the user: keep them in the record of the first. Call before their events."""
        ids = list(lookup_ids)
        for lid in ids[1:]:
            self._grouped[lid] = ids[0]

    def apply(self, event: ev.Event) -> LookupState | None:
        """Fold one event in; returns the lookup it changed (None if none)."""
        if isinstance(event, ev.LookupStarted):
            primary = self._grouped.get(event.lookup_id)
            if primary is not None:
                grouped = self.lookups.get(primary)
                if grouped is not None:
                    grouped.add_part(event.lookup_id, event.family, event.at)
                    self._alias[event.lookup_id] = primary
                    return grouped
            state = LookupState(
                event.lookup_id, event.target, event.kind, event.at, event.family
            )
            # Ids are unique for the app's life (the controller sees to it); should one come
            # again all the same, the new lookup replaces the old record rather than sharing
            # its rows and peers.
            old = self.lookups.pop(event.lookup_id, None)
            if old is not None:
                self._forget(old)
                self._evicted.append(old)
            self._alias.pop(event.lookup_id, None)  # nor its events go to an old group
            self.lookups[event.lookup_id] = state
            self._trim()
            return state
        lookup_id = getattr(event, "lookup_id", None)
        if not isinstance(lookup_id, int):
            return None
        found = self.lookups.get(self._alias.get(lookup_id, lookup_id))
        if found is None or not found.apply(event):
            return None
        return found

    def _trim(self) -> None:
        while len(self.lookups) > self.capacity:
            victim = next((i for i, s in self.lookups.items() if s.finished), None)
            if victim is None:
                victim = next(iter(self.lookups))
            gone = self.lookups.pop(victim)
            self._forget(gone)
            for part in gone.parts:
                self._grouped.pop(part, None)
            self._evicted.append(gone)

    def _forget(self, gone: LookupState) -> None:
        """Drop the aliases of a record no longer kept (its parts' events have no record)."""
        for part in gone.parts:
            if self._alias.get(part) == gone.lookup_id:
                del self._alias[part]

    def add_oldest(self, states: Iterable[LookupState]) -> None:
        """Take finished lookups of an earlier run as the oldest (the first to be evicted)."""
        for state in reversed(list(states)):
            self.lookups[state.lookup_id] = state
            self.lookups.move_to_end(state.lookup_id, last=False)
            for part in state.parts:
                if part != state.lookup_id:
                    self._alias[part] = state.lookup_id
        self._trim()

    def take_evicted(self) -> list[LookupState]:
        """Lookups dropped since the last call (so a model can remove their rows)."""
        out, self._evicted = self._evicted, []
        return out

    def get(self, lookup_id: int) -> LookupState | None:
        """The record of ``lookup_id`` (of its group's, for one family's part of a group)."""
        return self.lookups.get(self._alias.get(lookup_id, lookup_id))

    def __len__(self) -> int:
        return len(self.lookups)
