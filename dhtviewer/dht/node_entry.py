"""NodeEntry: what a routing table knows about one node (live or waiting in a replacement cache),
and its BEP 5 state. Mutable and internal to the table; what leaves the table are snapshots
(``routing_snapshot.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dhtviewer.dht.kinds import NodeState
from dhtviewer.dht.messages import Addr, NodeInfo

RTT_GAIN = 0.25
"""Weight of a new RTT sample in the smoothed RTT (EWMA)."""


@dataclass(slots=True)
class NodeEntry:
    """A node in the table or in a replacement cache. Mutable and internal to the table: what
    leaves the table are :class:`NodeSnapshot` values."""

    id: bytes
    addr: Addr
    added_at: float
    last_response: float | None = None
    """Last time it answered one of our queries."""
    last_query: float | None = None
    """Last time it sent us a query."""
    failures: int = 0
    """Consecutive queries of ours it did not answer."""
    rtt: float | None = None
    """Smoothed round-trip time of its answers, seconds."""
    version: bytes | None = None
    """Last KRPC ``v`` seen from it."""
    bep42_ok: bool = False
    """Whether its id matches its IP (BEP 42)."""
    pinged_at: float | None = None
    """Last time the table asked the caller to ping it (see PING_INTERVAL)."""
    subnet: bytes | None = None
    """Its network under the subnet-diversity rule (None: the rule does not apply to it)."""
    packed: bytes = field(default=b"", init=False, repr=False, compare=False)
    """Its compact node record while it is live (set by the table when it enters or moves)."""
    id_int: int = field(init=False, repr=False, compare=False)
    """The id as an int, so XOR distances cost one operation on the hot paths."""
    info: NodeInfo = field(init=False, repr=False, compare=False)
    """The contact as handed out by closest(), built once."""

    def __post_init__(self) -> None:
        self.id_int = int.from_bytes(self.id, "big")
        self.info = NodeInfo(self.id, self.addr)

    def state(self, now: float, good_period: float, bad_after: int) -> NodeState:
        """BEP 5: good if it answered us within ``good_period``, or has answered us once and
        queried us within ``good_period``; bad after ``bad_after`` failed queries in a row;
        questionable otherwise."""
        if self.failures >= bad_after:
            return NodeState.BAD
        last = self.last_response
        if last is not None:
            if now - last < good_period:
                return NodeState.GOOD
            query = self.last_query
            if query is not None and now - query < good_period:
                return NodeState.GOOD
        return NodeState.QUESTIONABLE

    @property
    def last_seen(self) -> float:
        seen = self.added_at
        if self.last_response is not None and self.last_response > seen:
            seen = self.last_response
        if self.last_query is not None and self.last_query > seen:
            seen = self.last_query
        return seen

    @property
    def answered(self) -> bool:
        """It answered at least one of our queries (it is not a spoofed address)."""
        return self.last_response is not None

    def move(self, addr: Addr) -> None:
        """The node answered from a new port of the same IP (a NAT rebinding)."""
        self.addr = addr
        self.info = NodeInfo(self.id, addr)


def record(
    e: NodeEntry, now: float, responded: bool, rtt: float | None, version: bytes | None
) -> None:
    """Note a message from ``e``: an answer (resets failures, feeds the RTT) or a query."""
    if responded:
        e.last_response = now
        e.failures = 0
        if rtt is not None:
            e.rtt = rtt if e.rtt is None else e.rtt + (rtt - e.rtt) * RTT_GAIN
    else:
        e.last_query = now
    if version is not None:
        e.version = version
