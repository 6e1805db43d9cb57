"""One captured datagram and the pairing of queries with their replies.

``packet_of`` turns the core's packet events (MessageSent, MessageReceived, MalformedReceived,
ResponseDropped) into ``Packet`` rows; every other event is not a packet. ``Pairer`` matches a
reply to the query it answers, in either direction: our query and the remote reply, a remote
query and our reply. KRPC pairs them by transaction id, which is only unique per address, so
the key is (address, transaction id, direction of the query). Open queries are bounded in number
and age: a query nobody answers is forgotten, it does not hold memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from dhtviewer.dht import events as ev


class Direction(str, Enum):
    IN = "in"
    OUT = "out"


class Kind(str, Enum):
    """What a datagram is. UNSOLICITED: a reply that decoded but answers nothing we asked (the
    poisoning guard dropped it)."""

    QUERY = "query"
    RESPONSE = "response"
    ERROR = "error"
    MALFORMED = "malformed"
    UNSOLICITED = "unsolicited"


_KINDS = {"q": Kind.QUERY, "r": Kind.RESPONSE, "e": Kind.ERROR}
ROW_OVERHEAD = 80
"""Bytes a row costs on disk beyond its variable-length fields (numbers, record and b-tree
headers): what the ring's byte bound charges per packet, with ``Packet.cost``."""


@dataclass(slots=True)
class Packet:
    seq: int
    """The capture number (1, 2, ...): never reused within a capture, also after evictions."""
    at: float
    direction: Direction
    ip: str
    port: int
    kind: Kind
    method: str
    tid: bytes
    size: int
    """The datagram's whole length (``data`` may be a prefix of it, for a malformed one)."""
    node_id: bytes | None
    """The sender's id, for a received message that decoded."""
    data: bytes
    note: str = ""
    """Why a malformed or unsolicited datagram was dropped."""
    peer: int | None = None
    """The seq of the paired query (for a reply) or reply (for a query)."""
    rtt: float | None = None
    """Seconds from our query to the remote's reply, on both rows of the pair. None for our
    replies to remote queries: the core answers in the same step, at the same ``now``."""
    summary: str | None = None
    """The one-line description, computed when the row is first shown (not stored)."""

    @property
    def addr(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def cost(self) -> int:
        """The bytes this row takes in the capture file (an estimate, for the ring's bound)."""
        return (ROW_OVERHEAD + len(self.data) + len(self.ip) + len(self.method) + len(self.tid)
                + len(self.note) + (len(self.node_id) if self.node_id else 0))


def format_ms(seconds: float | None) -> str:
    """A round-trip time in milliseconds, as the tables show it (our own replies take a few
    hundredths of a millisecond, hence two decimals); "" when unknown."""
    return "" if seconds is None else f"{seconds * 1000:.2f}"


def packet_of(event: ev.Event | object, seq: int) -> Packet | None:
    """The packet row of ``event`` numbered ``seq``, or None if the event is not a datagram."""
    if isinstance(event, ev.MessageSent | ev.MessageReceived):
        received = isinstance(event, ev.MessageReceived)
        return Packet(
            seq, event.at, Direction.IN if received else Direction.OUT, event.addr[0],
            event.addr[1], _KINDS.get(event.kind, Kind.MALFORMED),
            event.method.decode("ascii", "replace"), event.tid, event.size,
            event.node_id if isinstance(event, ev.MessageReceived) else None, event.data,
        )
    if isinstance(event, ev.MalformedReceived):
        note = f"{event.reason} (error {event.code}{', replied' if event.replied else ''})"
        return Packet(seq, event.at, Direction.IN, event.addr[0], event.addr[1], Kind.MALFORMED,
                      "", b"", event.size, None, event.data, note)
    if isinstance(event, ev.ResponseDropped):
        return Packet(seq, event.at, Direction.IN, event.addr[0], event.addr[1],
                      Kind.UNSOLICITED, "", event.tid, 0, None, b"", f"dropped: {event.reason}")
    return None


class Pairer:
    """Pairs replies with queries; at most ``max_open`` unanswered queries younger than
    ``max_age`` seconds are remembered (the oldest are forgotten first). Only (seq, time) of a
    query is kept, not its row."""

    def __init__(self, max_open: int = 20_000, max_age: float = 60.0) -> None:
        self.max_open = max_open
        self.max_age = max_age
        self._open: OrderedDict[tuple[str, int, bytes, Direction], tuple[int, float]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._open)

    def clear(self) -> None:
        self._open.clear()

    def add(self, p: Packet) -> int | None:
        """Note ``p``. For a reply that answers a remembered query: set its ``peer`` (and
        ``rtt``, for a reply to our query) and return the query's seq (whose row gets the same
        pairing); otherwise None."""
        if p.kind is Kind.QUERY:
            key = (p.ip, p.port, p.tid, p.direction)
            self._open.pop(key, None)  # a tid reused by the same address: the newest counts
            self._open[key] = (p.seq, p.at)
            self._forget(p.at)
            return None
        if p.kind not in (Kind.RESPONSE, Kind.ERROR):
            return None
        asked = Direction.OUT if p.direction is Direction.IN else Direction.IN
        query = self._open.pop((p.ip, p.port, p.tid, asked), None)
        if query is None:
            return None
        p.peer = query[0]
        p.rtt = max(0.0, p.at - query[1]) if asked is Direction.OUT else None
        return query[0]

    def _forget(self, now: float) -> None:
        open_ = self._open
        while len(open_) > self.max_open:
            open_.popitem(last=False)
        horizon = now - self.max_age
        while open_:
            if next(iter(open_.values()))[1] >= horizon:
                break
            open_.popitem(last=False)
