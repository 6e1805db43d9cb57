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
    """The node's 20-byte id."""
    addr: Addr
    """Its UDP (ip, port)."""
    bucket: int
    """Index of the bucket it went into: the leading bits its id shares with ours (0: the half
    of the id space farthest from us), except in the last bucket, which holds every deeper
    node too."""
    family: int
    """The address family (4 or 6) of the routing table."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class NodeRemoved:
    """A node left the routing table. ``reason``: "bad" (evicted after failures), "replaced",
    "id-changed" or "cleared"."""

    node_id: bytes
    """The node's 20-byte id."""
    addr: Addr
    """Its UDP (ip, port)."""
    bucket: int
    """Index of the bucket it left."""
    family: int
    """The address family (4 or 6) of the routing table."""
    reason: str
    """Why it left: "bad", "replaced", "id-changed" or "cleared"."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class NodeStateChanged:
    """A routing entry moved between "good", "questionable" and "bad"."""

    node_id: bytes
    """The node's 20-byte id."""
    addr: Addr
    """Its UDP (ip, port)."""
    old: NodeState
    """The state it had."""
    new: NodeState
    """The state it has now."""
    family: int
    """The address family (4 or 6) of the routing table."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class BucketSplit:
    """The bucket covering our own id split; the table now has ``bucket_count`` buckets."""

    family: int
    """The address family (4 or 6) of the routing table that split."""
    bucket_count: int
    """Buckets after the split."""
    at: float
    """When, on the node's clock (seconds)."""


# --- traffic ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MessageSent:
    """A datagram we send. ``kind``: "q", "r" or "e"; ``method`` of the query (or of the query a
    response answers, when known; b"" otherwise). ``data``: the raw datagram (packet log)."""

    addr: Addr
    """Where it goes: (ip, port)."""
    kind: str
    """"q" (query), "r" (response) or "e" (error)."""
    method: bytes
    """The KRPC method (b"ping", b"get_peers"...); for a reply, the method of the query it
    answers when known, else b""."""
    tid: bytes
    """The KRPC transaction id."""
    size: int
    """Bytes of the datagram."""
    data: bytes
    """The datagram itself (bencoded)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A datagram that decoded. ``kind``/``method`` as in MessageSent; ``node_id`` of the sender."""

    addr: Addr
    """Where it came from: (ip, port)."""
    kind: str
    """"q" (query), "r" (response) or "e" (error)."""
    method: bytes
    """The KRPC method of the query, or of the query of ours a reply answers."""
    tid: bytes
    """The KRPC transaction id."""
    size: int
    """Bytes of the datagram."""
    node_id: bytes | None
    """The sender's id (for an error reply: the id we expected at that address, if known)."""
    data: bytes
    """The datagram itself (bencoded)."""
    at: float
    """When, on the node's clock (seconds)."""


MALFORMED_PREFIX = 256
"""Bytes of a malformed datagram kept in its event: enough to see what it was (the packet log
shows them), bounded so that a flood of large garbage costs little memory."""


@dataclass(frozen=True, slots=True)
class MalformedReceived:
    """A datagram that did not decode (or was dropped before decoding). ``code`` is the KRPC
    error code it maps to; ``replied`` tells whether a KRPC error went back. ``data``: its first
    ``MALFORMED_PREFIX`` bytes (``size`` is the whole length)."""

    addr: Addr
    """Where it came from: (ip, port)."""
    size: int
    """Bytes of the whole datagram."""
    code: int
    """The KRPC error code it maps to (201 generic, 203 protocol error...)."""
    reason: str
    """What was wrong with it, in words."""
    replied: bool
    """Whether a KRPC error reply went back (only to a recognisable query, within the
    rate budget)."""
    at: float
    """When, on the node's clock (seconds)."""
    data: bytes = b""
    """Its first ``MALFORMED_PREFIX`` bytes."""


@dataclass(frozen=True, slots=True)
class ResponseDropped:
    """A response or error we did not ask for (unknown tid, wrong address/port): poisoning guard."""

    addr: Addr
    """Where it came from: (ip, port)."""
    tid: bytes
    """The transaction id it carried."""
    reason: str
    """Why it was dropped ("unknown transaction id", "reply from another address than the
    one queried")."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class OtherFamilyContacts:
    """A reply to one of our queries carried contacts of the other address family (we asked for
    them with BEP 32 ``want`` while bootstrapping, or while our sibling was short of contacts).
    The lookup does not use them (the two DHTs are separate); a dual-stack driver offers them to
    its node of ``family`` (``DhtNode.offer_contacts``), which pings them before using them."""

    family: int
    """The address family (4 or 6) of the contacts: the other node's."""
    nodes: tuple[NodeInfo, ...]
    """The contacts (unverified: nobody asked them yet)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class ExternalAddressChanged:
    """BEP 42 ``ip`` votes from responders in ``votes`` distinct networks (/24 or /64) settled
    on our external address: a new one, or the one restored from a previous run, confirmed."""

    ip: str
    """Our external address, as responders report it."""
    votes: int
    """How many votes agreed on it."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class NodeIdChanged:
    """Our node id changed from ``old_id`` to ``new_id``: derived (BEP 42) from our voted
    external address ``external_ip``, which the old id did not match. The routing tables kept
    their contacts, re-sorted around the new id (take a new snapshot); a driver saves the id."""

    old_id: bytes
    """The id we had."""
    new_id: bytes
    """The id we have now (BEP 42, derived from ``external_ip``)."""
    external_ip: str
    """Our external address, as the votes settled it."""
    family: int
    """The family (4 or 6) of the node whose id changed (each family's DHT has its own id)."""
    at: float
    """When, on the node's clock (seconds)."""


# --- lookups ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LookupStarted:
    """``kind``: "get_peers", "find_node", "announce" (a get_peers lookup followed by announces),
    or the node's own maintenance: "bootstrap" (find_node of our id) and "refresh" (a bucket).
    ``family``: the address family (4 or 6) of the node, hence of the DHT, the lookup runs in
    (BEP 32: a dual-stack session runs one lookup per family)."""

    lookup_id: int
    """The lookup's id: every later event of this lookup carries it (the id a session's
    ``LookupHandle`` follows)."""
    target: bytes
    """The 20-byte id looked up (an info-hash, a node id, a BEP 44 target)."""
    kind: LookupKind
    """What it is for (see the class docstring)."""
    at: float
    """When, on the node's clock (seconds)."""
    family: int = 4
    """The address family (4 or 6) of the DHT it runs in."""


@dataclass(frozen=True, slots=True)
class LookupQuerySent:
    """A lookup asked ``node_id`` at ``addr``. ``referrer`` is the node that returned it (None for a
    seed from the routing table or bootstrap list); ``depth`` is its hop count (seeds are 0).
    ``role``: a first query, a resend to a silent candidate, or the neighbourhood probe (to a
    node that already answered; its answer only adds candidates, and has no event)."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes | None
    """The id of the node asked (None for a bootstrap address, whose id is not known yet)."""
    addr: Addr
    """Its UDP (ip, port)."""
    referrer: bytes | None
    """The id of the node whose reply named it (None for a seed)."""
    depth: int
    """Hops from the seeds (seeds are 0, the nodes they returned 1, ...)."""
    at: float
    """When, on the node's clock (seconds)."""
    role: QueryRole = QueryRole.ASK
    """Why it was sent: a first query (ASK), a resend to a silent node among the K nearest
    (RESEND), or the neighbourhood probe (PROBE)."""


@dataclass(frozen=True, slots=True)
class LookupResponse:
    """``node_id`` answered after ``rtt`` seconds with ``nodes`` new contacts and ``peers``
    peers."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes
    """The id of the node that answered."""
    addr: Addr
    """Its UDP (ip, port)."""
    rtt: float
    """Seconds between our query and its answer."""
    nodes: int
    """Contacts in the answer that were new to this lookup."""
    peers: int
    """Peers in the answer (get_peers)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class LookupQuerySlow:
    """A lookup query passed its short timeout unanswered: it no longer holds one of the
    lookup's ``alpha`` slots (another node is asked), but its answer is still used if it
    comes before the hard timeout."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes | None
    """The id of the node asked (None if it was not known)."""
    addr: Addr
    """Its UDP (ip, port)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class LookupTimeout:
    """A lookup query reached its hard timeout unanswered: it failed."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes | None
    """The id of the node asked (None if it was not known)."""
    addr: Addr
    """Its UDP (ip, port)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class LookupQueryError:
    """A lookup query was answered with a KRPC error, or with a reply that did not decode
    (``error`` says which and why): the node is there but gave nothing to use."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes | None
    """The id of the node asked (None if it was not known)."""
    addr: Addr
    """Its UDP (ip, port)."""
    error: str
    """What came back: "error CODE: message", or "malformed reply: why"."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class PeersFound:
    """``node_id`` returned peers: ``peers`` are the ones new to this lookup, ``returned`` all
    the peers it sent (so a view can count how many nodes returned each peer)."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes
    """The id of the node that returned them."""
    peers: tuple[Addr, ...]
    """Peers (ip, port) new to this lookup."""
    at: float
    """When, on the node's clock (seconds)."""
    returned: tuple[Addr, ...] = ()
    """Every peer that node returned, new or not."""


@dataclass(frozen=True, slots=True)
class LookupFinished:
    """The lookup settled (or was cancelled). ``closest``: the K closest that answered, nearest
    first, as (id, addr). ``queried``/``responded`` count distinct nodes. ``elapsed`` in seconds.
    ``family``: the address family of the DHT it ran in, as in its ``LookupStarted``."""

    lookup_id: int
    """The lookup (``LookupStarted.lookup_id``)."""
    target: bytes
    """The 20-byte id looked up."""
    kind: LookupKind
    """What it was for (as in ``LookupStarted``)."""
    peers: tuple[Addr, ...]
    """Every peer found (get_peers, announce), each once."""
    closest: tuple[tuple[bytes, Addr], ...]
    """The K closest nodes that answered, nearest first: (id, (ip, port))."""
    queried: int
    """Distinct nodes asked."""
    responded: int
    """Distinct nodes that answered."""
    elapsed: float
    """Seconds from start to end."""
    cancelled: bool
    """Stopped early (``cancel_lookup``, a timeout of the caller, a session stop); the
    other fields hold what was found until then."""
    at: float
    """When, on the node's clock (seconds)."""
    family: int = 4
    """The address family (4 or 6) of the DHT it ran in."""


@dataclass(frozen=True, slots=True)
class AnnounceFinished:
    """announce_peer was sent to the closest token holders; ``stored_at`` accepted it."""

    lookup_id: int
    """The announce's lookup (``LookupStarted.lookup_id``)."""
    info_hash: bytes
    """The info-hash announced."""
    port: int
    """The TCP port announced (with ``implied_port``, the receivers use our UDP source port
    instead)."""
    stored_at: tuple[Addr, ...]
    """The nodes (ip, port) that accepted it."""
    failed: tuple[Addr, ...]
    """The nodes that refused it or did not answer."""
    at: float
    """When, on the node's clock (seconds)."""
    cancelled: bool = False
    """Cancelled, in either phase (before its get_peers lookup settled, nothing was sent)."""


# --- server side and direct queries -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AnnounceReceived:
    """A peer announced ``info_hash`` to us and we stored ``peer``."""

    info_hash: bytes
    """The info-hash announced."""
    peer: Addr
    """The peer stored: the announcer's IP and the port it announced."""
    node_id: bytes
    """The announcing node's id."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class PingFinished:
    """A direct ping (``DhtNode.ping``) finished: ``node_id``/``rtt`` None on timeout."""

    op_id: int
    """The id ``DhtNode.ping`` returned."""
    addr: Addr
    """The (ip, port) pinged."""
    node_id: bytes | None
    """The id it answered with; None if it did not answer."""
    rtt: float | None
    """Seconds until its answer; None if it did not answer."""
    version: bytes | None
    """Its KRPC ``v`` (client and version), if it sent one."""
    at: float
    """When, on the node's clock (seconds)."""


# --- BEP 44 items -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ItemFound:
    """A get or put lookup received a valid item from ``node_id``: ``value`` bencoded;
    ``public_key``/``seq`` for a mutable item (None for an immutable one)."""

    lookup_id: int
    """The get or put lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes
    """The id of the node that returned it."""
    addr: Addr
    """Its UDP (ip, port)."""
    value: bytes
    """The item's value, bencoded."""
    public_key: bytes | None
    """The ed25519 public key of a mutable item (None: immutable)."""
    seq: int | None
    """The sequence number of a mutable item (None: immutable)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class ItemRejected:
    """A node returned an item that failed verification; ``reason`` says which check."""

    lookup_id: int
    """The get or put lookup (``LookupStarted.lookup_id``)."""
    node_id: bytes
    """The id of the node that returned it."""
    addr: Addr
    """Its UDP (ip, port)."""
    reason: str
    """The check it failed (signature, target, size...)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class ItemGetFinished:
    """A get lookup ended (after its ``LookupFinished``). ``value`` (bencoded) and the other
    item fields are None when no valid item was found; ``holders`` returned the newest one;
    ``rejected`` answers failed verification, ``reasons`` the distinct reasons why."""

    lookup_id: int
    """The get lookup (``LookupStarted.lookup_id``)."""
    target: bytes
    """The 20-byte target looked up."""
    value: bytes | None
    """The newest valid value found, bencoded; None if none."""
    public_key: bytes | None
    """Its ed25519 public key (mutable items)."""
    seq: int | None
    """Its sequence number (mutable items)."""
    signature: bytes | None
    """Its ed25519 signature (mutable items)."""
    holders: tuple[Addr, ...]
    """The nodes (ip, port) that returned that value."""
    rejected: int
    """Answers that failed verification."""
    reasons: tuple[str, ...]
    """The distinct reasons they failed."""
    cancelled: bool
    """Stopped early; the other fields hold what was found until then."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class ItemPutFinished:
    """A put ended: ``stored_at`` accepted the item; ``failed`` are (address, why) for the
    others (a KRPC error such as "302 ..." or "timeout"). ``seq`` of a mutable item as put."""

    lookup_id: int
    """The put's lookup (``LookupStarted.lookup_id``)."""
    target: bytes
    """Where the item was put (its SHA-1, or the key and salt's)."""
    public_key: bytes | None
    """The ed25519 public key of a mutable item (None: immutable)."""
    seq: int | None
    """The sequence number put (mutable items)."""
    stored_at: tuple[Addr, ...]
    """The nodes (ip, port) that stored it."""
    failed: tuple[tuple[Addr, str], ...]
    """(node, why) for each node that did not."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class ItemStored:
    """Server side: ``addr`` put an item on us. ``new``: it was not stored before (else a
    newer seq or a refresh); ``size``: bytes of the bencoded value."""

    target: bytes
    """The item's target."""
    public_key: bytes | None
    """The ed25519 public key of a mutable item (None: immutable)."""
    seq: int | None
    """The sequence number stored (mutable items)."""
    size: int
    """Bytes of the bencoded value."""
    addr: Addr
    """The (ip, port) that put it."""
    new: bool
    """It was not stored before (else: a newer seq, or a refresh)."""
    at: float
    """When, on the node's clock (seconds)."""


# --- BEP 33 and BEP 51 ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScrapeFinished:
    """The scrape round after a get_peers lookup: estimated distinct ``seeds`` and
    ``downloaders`` over the filters of ``nodes`` closest nodes (``legacy`` of them answered
    with peers only). ``saturated``: a merged filter is too full to be trusted."""

    lookup_id: int
    """The get_peers lookup the scrape followed."""
    info_hash: bytes
    """The info-hash scraped."""
    seeds: float
    """Estimated distinct seeds (BEP 33 Bloom filter estimate)."""
    downloaders: float
    """Estimated distinct downloaders."""
    nodes: int
    """Closest nodes whose answers were merged."""
    legacy: int
    """Of those, nodes that answered with peers only (no filters)."""
    saturated: bool
    """A merged filter is too full for its estimate to be trusted."""
    cancelled: bool
    """Stopped before an estimate was made."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class SamplesReceived:
    """A BEP 51 answer (``op_id``: the crawl's, or the direct query's). ``error`` is set when the
    node does not speak BEP 51 (an error reply, or no ``samples``) or did not answer; then
    ``node_id`` may be None and there are no samples."""

    op_id: int
    """The crawl's id, or the one ``DhtNode.sample`` returned."""
    node_id: bytes | None
    """The id of the node that answered (None if it did not)."""
    addr: Addr
    """The (ip, port) asked."""
    samples: tuple[bytes, ...]
    """The info-hashes it sampled (20 bytes each)."""
    num: int | None
    """How many info-hashes it says it stores in all."""
    interval: int | None
    """Seconds it asks us to wait before asking it again."""
    error: str | None
    """Why there are no samples (an error reply, no BEP 51, no answer); None if fine."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class CrawlFinished:
    """A crawl stopped (``DhtNode.stop_crawl``). ``stats``: the sampler's counts."""

    op_id: int
    """The crawl's id (``DhtNode.start_crawl``)."""
    stats: dict[str, int]
    """The sampler's counts (queried, replied, failed, supported, ...)."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class OwnerFailed:
    """The ``callback`` (``on_response``, ``on_error``, ``on_slow``, ``on_timeout``) of a
    transaction owner of kind ``owner`` raised ``error`` (its ``repr``) for a query to ``addr``.
    The node carried on; that owner may be left waiting for nothing."""

    owner: OwnerKind
    """The kind of owner (a lookup, a ping, a custom exchange...)."""
    callback: str
    """The callback that raised: "on_response", "on_error", "on_slow" or "on_timeout"."""
    addr: Addr
    """The (ip, port) of the query concerned."""
    error: str
    """The ``repr`` of the exception it raised."""
    at: float
    """When, on the node's clock (seconds)."""


@dataclass(frozen=True, slots=True)
class TaskFailed:
    """A task scheduled on the node (``DhtNode.call_at``/``call_every``) raised ``error``
    (its ``repr``); a periodic task stays scheduled."""

    name: str
    """The task's name (its function's ``repr`` when it has none)."""
    error: str
    """The ``repr`` of the exception it raised."""
    at: float
    """When, on the node's clock (seconds)."""


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
