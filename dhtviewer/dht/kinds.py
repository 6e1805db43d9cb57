"""The core's named states and kinds: routing-entry states, lookup kinds, lookup-candidate states
and the owners of transactions.

They are ``str`` enums: a member compares equal to its text (``NodeState.GOOD == "good"``), prints
as it (``f"{kind}"`` is ``"announce"``) and goes into JSON as it, so events and snapshots stay plain
to read for views, logs and scripts while the core itself never passes bare strings around.

New kinds join by adding a member here (issue-sized extensions such as BEP 44 ``get``/``put``
lookups add a ``LookupKind`` and the query they send; see ``lookup.py``).
"""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """A ``str`` enum that prints as its value on every Python version."""

    def __str__(self) -> str:
        return str(self.value)


class NodeState(TextEnum):
    """BEP 5 state of a routing entry."""

    GOOD = "good"
    """Answered one of our queries within ``good_period`` (or answered once and has queried us
    within it)."""
    QUESTIONABLE = "questionable"
    """Silent for ``good_period``, or never answered us."""
    BAD = "bad"
    """Failed ``bad_after_failures`` queries in a row."""


class LookupKind(TextEnum):
    """What a lookup is for. Bootstrap and refresh are the node's own; users start the others."""

    GET_PEERS = "get_peers"
    """Iterative get_peers: collects peers and the K closest nodes."""
    FIND_NODE = "find_node"
    """Iterative find_node: the K closest nodes to a target."""
    ANNOUNCE = "announce"
    """A get_peers lookup, then announce_peer to the K closest token holders."""
    BOOTSTRAP = "bootstrap"
    """find_node of our own id, seeded with bootstrap addresses."""
    REFRESH = "refresh"
    """find_node of a random id in a stale bucket."""
    GET_ITEM = "get"
    """BEP 44: iterative get: the newest valid item under a target, and who holds it."""
    PUT_ITEM = "put"
    """BEP 44: an iterative get (tokens, the newest seq), then put to the K closest."""

    @property
    def internal(self) -> bool:
        """Started by the node itself (table maintenance), not by a user."""
        return self in (LookupKind.BOOTSTRAP, LookupKind.REFRESH)

    @property
    def collects_peers(self) -> bool:
        return self in (LookupKind.GET_PEERS, LookupKind.ANNOUNCE)


class CandidateState(TextEnum):
    """Where a lookup candidate stands."""

    NEW = "new"
    INFLIGHT = "in flight"
    SLOW = "slow"
    """Queried, past the short timeout, may still answer; no longer holds a slot."""
    ANSWERED = "answered"
    FAILED = "failed"
    """Hard timeout or an error reply."""


class QueryRole(TextEnum):
    """Why a lookup sent a query."""

    ASK = "ask"
    """The first query to a candidate."""
    RESEND = "resend"
    """The same query again, to a candidate silent past half the short timeout."""
    PROBE = "probe"
    """find_node to an answered node, for the neighbours of the lookup's K closest."""


class OwnerKind(TextEnum):
    """Who waits for the answer to one of our queries."""

    LOOKUP = "lookup"
    ANNOUNCE = "announce"
    PING = "ping"
    """A direct ping asked for through the API."""
    VERIFY = "verify"
    """A routing-table ping (verification of a candidate, ping before evict)."""
    CUSTOM = "custom"
    """A query sent through ``DhtNode.send_query`` (custom KRPC methods, library users)."""
    PUT = "put"
    """The put round of a BEP 44 put lookup."""
    SCRAPE = "scrape"
    """The BEP 33 scrape round after a get_peers lookup."""
    SAMPLE = "sample"
    """BEP 51 sample_infohashes: a crawl, or one direct query."""
