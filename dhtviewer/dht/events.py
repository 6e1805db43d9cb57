"""Events the core emits: small frozen dataclasses the UI and the session subscribe to.

The UI never reaches into protocol internals; everything it draws comes from these events or from
read-only snapshots. ``at`` is always the core's ``now`` (seconds) when the event happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from dhtviewer.dht.kinds import LookupKind, NodeState, OwnerKind, QueryRole
from dhtviewer.dht.messages import Addr, NodeInfo


# --- routing table ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeAdded:
    """A node entered the routing table of ``family`` (4 or 6) in bucket ``bucket``."""

    node_id: bytes
    addr: Addr
    bucket: int
    family: int
    at: float


@dataclass(frozen=True, slots=True)
class NodeRemoved:
    """A node left the routing table. ``reason``: "bad" (evicted after failures), "replaced",
    "id-changed" or "cleared"."""

    node_id: bytes
    addr: Addr
    bucket: int
    family: int
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class NodeStateChanged:
    """A routing entry moved between "good", "questionable" and "bad"."""

    node_id: bytes
    addr: Addr
    old: NodeState
    new: NodeState
    family: int
    at: float


@dataclass(frozen=True, slots=True)
class BucketSplit:
    """The bucket covering our own id split; the table now has ``bucket_count`` buckets."""

    family: int
    bucket_count: int
    at: float


# --- traffic ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MessageSent:
    """A datagram we send. ``kind``: "q", "r" or "e"; ``method`` of the query (or of the query a
    response answers, when known; b"" otherwise). ``data``: the raw datagram (packet log)."""

    addr: Addr
    kind: str
    method: bytes
    tid: bytes
    size: int
    data: bytes
    at: float


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A datagram that decoded. ``kind``/``method`` as in MessageSent; ``node_id`` of the sender."""

    addr: Addr
    kind: str
    method: bytes
    tid: bytes
    size: int
    node_id: bytes | None
    data: bytes
    at: float


MALFORMED_PREFIX = 256
"""Bytes of a malformed datagram kept in its event: enough to see what it was (the packet log
shows them), bounded so that a flood of large garbage costs little memory."""


@dataclass(frozen=True, slots=True)
class MalformedReceived:
    """A datagram that did not decode (or was dropped before decoding). ``code`` is the KRPC
    error code it maps to; ``replied`` tells whether a KRPC error went back. ``data``: its first
    ``MALFORMED_PREFIX`` bytes (``size`` is the whole length)."""

    addr: Addr
    size: int
    code: int
    reason: str
    replied: bool
    at: float
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ResponseDropped:
    """A response or error we did not ask for (unknown tid, wrong address/port): poisoning guard."""

    addr: Addr
    tid: bytes
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class OtherFamilyContacts:
    """A reply to one of our queries carried contacts of the other address family (we asked for
    them with BEP 32 ``want`` while bootstrapping, or while our sibling was short of contacts).
    The lookup does not use them (the two DHTs are separate); a dual-stack driver offers them to
    its node of ``family`` (``DhtNode.offer_contacts``), which pings them before using them."""

    family: int
    nodes: tuple[NodeInfo, ...]
    at: float


@dataclass(frozen=True, slots=True)
class ExternalAddressChanged:
    """BEP 42 ``ip`` votes from responders in ``votes`` distinct networks (/24 or /64) settled
    on our external address: a new one, or the one restored from a previous run, confirmed."""

    ip: str
    votes: int
    at: float


@dataclass(frozen=True, slots=True)
class NodeIdChanged:
    """Our node id changed from ``old_id`` to ``new_id``: derived (BEP 42) from our voted
    external address ``external_ip``, which the old id did not match. The routing tables kept
    their contacts, re-sorted around the new id (take a new snapshot); a driver saves the id."""

    old_id: bytes
    new_id: bytes
    external_ip: str
    family: int
    """The family (4 or 6) of the node whose id changed (each family's DHT has its own id)."""
    at: float


# --- lookups ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LookupStarted:
    """``kind``: "get_peers", "find_node", "announce" (a get_peers lookup followed by announces),
    or the node's own maintenance: "bootstrap" (find_node of our id) and "refresh" (a bucket).
    ``family``: the address family (4 or 6) of the node, hence of the DHT, the lookup runs in
    (BEP 32: a dual-stack session runs one lookup per family)."""

    lookup_id: int
    target: bytes
    kind: LookupKind
    at: float
    family: int = 4


@dataclass(frozen=True, slots=True)
class LookupQuerySent:
    """A lookup asked ``node_id`` at ``addr``. ``referrer`` is the node that returned it (None for a
    seed from the routing table or bootstrap list); ``depth`` is its hop count (seeds are 0).
    ``role``: a first query, a resend to a silent candidate, or the neighbourhood probe (to a
    node that already answered; its answer only adds candidates, and has no event)."""

    lookup_id: int
    node_id: bytes | None
    addr: Addr
    referrer: bytes | None
    depth: int
    at: float
    role: QueryRole = QueryRole.ASK


@dataclass(frozen=True, slots=True)
class LookupResponse:
    """``node_id`` answered after ``rtt`` seconds with ``nodes`` new contacts and ``peers``
    peers."""

    lookup_id: int
    node_id: bytes
    addr: Addr
    rtt: float
    nodes: int
    peers: int
    at: float


@dataclass(frozen=True, slots=True)
class LookupQuerySlow:
    """A lookup query passed its short timeout unanswered: it no longer holds one of the
    lookup's ``alpha`` slots (another node is asked), but its answer is still used if it
    comes before the hard timeout."""

    lookup_id: int
    node_id: bytes | None
    addr: Addr
    at: float


@dataclass(frozen=True, slots=True)
class LookupTimeout:
    """A lookup query reached its hard timeout unanswered: it failed."""

    lookup_id: int
    node_id: bytes | None
    addr: Addr
    at: float


@dataclass(frozen=True, slots=True)
class LookupQueryError:
    """A lookup query was answered with a KRPC error, or with a reply that did not decode
    (``error`` says which and why): the node is there but gave nothing to use."""

    lookup_id: int
    node_id: bytes | None
    addr: Addr
    error: str
    at: float


@dataclass(frozen=True, slots=True)
class PeersFound:
    """``node_id`` returned peers: ``peers`` are the ones new to this lookup, ``returned`` all
    the peers it sent (so a view can count how many nodes returned each peer)."""

    lookup_id: int
    node_id: bytes
    peers: tuple[Addr, ...]
    at: float
    returned: tuple[Addr, ...] = ()


@dataclass(frozen=True, slots=True)
class LookupFinished:
    """The lookup settled (or was cancelled). ``closest``: the K closest that answered, nearest
    first, as (id, addr). ``queried``/``responded`` count distinct nodes. ``elapsed`` in seconds.
    ``family``: the address family of the DHT it ran in, as in its ``LookupStarted``."""

    lookup_id: int
    target: bytes
    kind: LookupKind
    peers: tuple[Addr, ...]
    closest: tuple[tuple[bytes, Addr], ...]
    queried: int
    responded: int
    elapsed: float
    cancelled: bool
    at: float
    family: int = 4


@dataclass(frozen=True, slots=True)
class AnnounceFinished:
    """announce_peer was sent to the closest token holders; ``stored_at`` accepted it."""

    lookup_id: int
    info_hash: bytes
    port: int
    stored_at: tuple[Addr, ...]
    failed: tuple[Addr, ...]
    at: float
    cancelled: bool = False
    """Cancelled, in either phase (before its get_peers lookup settled, nothing was sent)."""


# --- server side and direct queries -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AnnounceReceived:
    """A peer announced ``info_hash`` to us and we stored ``peer``."""

    info_hash: bytes
    peer: Addr
    node_id: bytes
    at: float


@dataclass(frozen=True, slots=True)
class PingFinished:
    """A direct ping (``DhtNode.ping``) finished: ``node_id``/``rtt`` None on timeout."""

    op_id: int
    addr: Addr
    node_id: bytes | None
    rtt: float | None
    version: bytes | None
    at: float


# --- BEP 44 items -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ItemFound:
    """A get or put lookup received a valid item from ``node_id``: ``value`` bencoded;
    ``public_key``/``seq`` for a mutable item (None for an immutable one)."""

    lookup_id: int
    node_id: bytes
    addr: Addr
    value: bytes
    public_key: bytes | None
    seq: int | None
    at: float


@dataclass(frozen=True, slots=True)
class ItemRejected:
    """A node returned an item that failed verification; ``reason`` says which check."""

    lookup_id: int
    node_id: bytes
    addr: Addr
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class ItemGetFinished:
    """A get lookup ended (after its ``LookupFinished``). ``value`` (bencoded) and the other
    item fields are None when no valid item was found; ``holders`` returned the newest one;
    ``rejected`` answers failed verification, ``reasons`` the distinct reasons why."""

    lookup_id: int
    target: bytes
    value: bytes | None
    public_key: bytes | None
    seq: int | None
    signature: bytes | None
    holders: tuple[Addr, ...]
    rejected: int
    reasons: tuple[str, ...]
    cancelled: bool
    at: float


@dataclass(frozen=True, slots=True)
class ItemPutFinished:
    """A put ended: ``stored_at`` accepted the item; ``failed`` are (address, why) for the
    others (a KRPC error such as "302 ..." or "timeout"). ``seq`` of a mutable item as put."""

    lookup_id: int
    target: bytes
    public_key: bytes | None
    seq: int | None
    stored_at: tuple[Addr, ...]
    failed: tuple[tuple[Addr, str], ...]
    at: float


@dataclass(frozen=True, slots=True)
class ItemStored:
    """Server side: ``addr`` put an item on us. ``new``: it was not stored before (else a
    newer seq or a refresh); ``size``: bytes of the bencoded value."""

    target: bytes
    public_key: bytes | None
    seq: int | None
    size: int
    addr: Addr
    new: bool
    at: float


# --- BEP 33 and BEP 51 ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScrapeFinished:
    """The scrape round after a get_peers lookup: estimated distinct ``seeds`` and
    ``downloaders`` over the filters of ``nodes`` closest nodes (``legacy`` of them answered
    with peers only). ``saturated``: a merged filter is too full to be trusted."""

    lookup_id: int
    info_hash: bytes
    seeds: float
    downloaders: float
    nodes: int
    legacy: int
    saturated: bool
    cancelled: bool
    at: float


@dataclass(frozen=True, slots=True)
class SamplesReceived:
    """A BEP 51 answer (``op_id``: the crawl's, or the direct query's). ``error`` is set when the
    node does not speak BEP 51 (an error reply, or no ``samples``) or did not answer; then
    ``node_id`` may be None and there are no samples."""

    op_id: int
    node_id: bytes | None
    addr: Addr
    samples: tuple[bytes, ...]
    num: int | None
    interval: int | None
    error: str | None
    at: float


@dataclass(frozen=True, slots=True)
class CrawlFinished:
    """A crawl stopped (``DhtNode.stop_crawl``). ``stats``: the sampler's counts."""

    op_id: int
    stats: dict[str, int]
    at: float


@dataclass(frozen=True, slots=True)
class OwnerFailed:
    """The ``callback`` (``on_response``, ``on_error``, ``on_slow``, ``on_timeout``) of a
    transaction owner of kind ``owner`` raised ``error`` (its ``repr``) for a query to ``addr``.
    The node carried on; that owner may be left waiting for nothing."""

    owner: OwnerKind
    callback: str
    addr: Addr
    error: str
    at: float


@dataclass(frozen=True, slots=True)
class TaskFailed:
    """A task scheduled on the node (``DhtNode.call_at``/``call_every``) raised ``error``
    (its ``repr``); a periodic task stays scheduled."""

    name: str
    error: str
    at: float


Event = (
    NodeAdded
    | NodeRemoved
    | NodeStateChanged
    | BucketSplit
    | MessageSent
    | MessageReceived
    | MalformedReceived
    | ResponseDropped
    | ExternalAddressChanged
    | NodeIdChanged
    | OtherFamilyContacts
    | LookupStarted
    | LookupQuerySent
    | LookupResponse
    | LookupQuerySlow
    | LookupTimeout
    | LookupQueryError
    | PeersFound
    | LookupFinished
    | AnnounceFinished
    | AnnounceReceived
    | PingFinished
    | TaskFailed
    | OwnerFailed
    | ItemFound
    | ItemRejected
    | ItemGetFinished
    | ItemPutFinished
    | ItemStored
    | ScrapeFinished
    | SamplesReceived
    | CrawlFinished
)

TRAFFIC_EVENTS = (MessageSent, MessageReceived)
"""The packet events: one per datagram, built only while ``DhtNode.traffic_events`` is on."""
