"""Responder: what a node answers to each query, and the bytes it sends back.

It owns the content of replies: our id, the querier's address as we saw it (BEP 42 ``ip``) and
our version in every one; the closest contacts of the families asked for (BEP 32 ``want``: our
own family's from our table, the other family's from the ``Sibling`` view of the host's other
node, none of it when we have no such node);
peers and a write token for ``get_peers``; checking the token and storing the peer for
``announce_peer``; BEP 51 samples; an error for an unknown method. And the amplification
guard: no reply leaves larger than ``max_reply_bytes``, whatever a small query asked for.

Each method has a handler, ``handler(query, addr, now) -> reply``, in a registry:
``register(b"echo", fn)`` adds a custom method (or replaces a built-in one), and an unregistered
method gets error 204. Custom queries decode as ``UnknownQuery`` (``name``, ``args``); a handler
builds its reply with ``response(q, addr, **fields)`` (``extra={...}`` for keys of its own).

Whether a query is answered at all (read-only mode, rate limits), the traffic counters, and
what the node learns about the querier stay with ``DhtNode``: the responder only decides what
to say.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.families import Sibling, wanted_families
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.messages import (
    METHOD_UNKNOWN,
    PROTOCOL_ERROR,
    Addr,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    NodeInfo,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
    method_of,
)
from dhtviewer.dht.peer_store import PeerStore
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.tokens import TokenIssuer

Handler = Callable[[Any, Addr, float], Message]
"""``handler(query, addr, now)``: the reply (a ``Response`` or an ``ErrorMessage``) to ``query``
from ``addr``. It must not raise: a handler that does is answered with error 202 (server
error) by the node and counted."""


class Responder:
    """Builds and encodes a node's replies. ``counters`` are the node's (``bad_tokens`` and
    ``announces_stored`` are counted here); ``emit`` receives ``AnnounceReceived``."""

    def __init__(
        self,
        *,
        identity: NodeIdentity,
        settings: DhtSettings,
        table: RoutingTable,
        store: PeerStore,
        tokens: TokenIssuer,
        rng: random.Random,
        counters: Counters,
        emit: Callable[[ev.Event], None],
        sibling: Sibling | None = None,
    ) -> None:
        """``identity``: whose id the replies carry. ``table``: our routing table (our
        family's contacts); ``sibling``: the other family's contacts, for queries whose
        ``want`` asks for them (None: a single-stack node). ``rng``: draws what is sampled
        (peers, BEP 51 info-hashes), which is visible on the wire anyway: not a secret."""
        self.identity = identity
        self.settings = settings
        self.table = table
        self.sibling = sibling
        self.store = store
        self.tokens = tokens
        self.rng = rng
        self.counters = counters
        self.emit = emit
        self._sample_cache: tuple[float, list[bytes]] | None = None
        """(when drawn, the BEP 51 subset) while the store holds more than one reply's worth."""
        self._handlers: dict[bytes, Handler] = {
            PingQuery.method: self._ping_reply,
            FindNodeQuery.method: self._find_node_reply,
            GetPeersQuery.method: self._get_peers_reply,
            AnnouncePeerQuery.method: self._announce_reply,
            SampleInfohashesQuery.method: self._sample_reply,
        }
        self._builtin = dict(self._handlers)
        # A subclass may change how replies are made (any method): it gets no direct path.
        plain = type(self) is Responder
        self._wire_find_node = self._handlers[FindNodeQuery.method] if plain else None
        self._wire_get_peers = self._handlers[GetPeersQuery.method] if plain else None
        """The built-in handlers whose replies ``answer_wire`` writes directly."""

    @property
    def node_id(self) -> bytes:
        return self.identity.node_id

    def register(self, method: bytes, handler: Handler, *, builtin: bool = False) -> None:
        """Answer queries for ``method`` with ``handler`` (replacing any handler it had).
        ``builtin``: one of the node's own methods (BEP 44's, registered by their service),
        which ``unregister`` brings back after a replacement."""
        if not isinstance(method, bytes) or not method:
            raise ValueError(f"method must be a non-empty byte string, got {method!r}")
        self._handlers[method] = handler
        if builtin:
            self._builtin[method] = handler

    def unregister(self, method: bytes) -> None:
        """Stop answering ``method`` with a registered handler: a built-in method gets its
        built-in answer back, any other method error 204."""
        builtin = self._builtin.get(method)
        if builtin is not None:
            self._handlers[method] = builtin
        else:
            self._handlers.pop(method, None)

    def methods(self) -> list[bytes]:
        """Methods answered, sorted."""
        return sorted(self._handlers)

    def answer(self, q: Query, addr: Addr, now: float) -> Message:
        """The reply to ``q`` from ``addr`` (a Response, or an ErrorMessage)."""
        handler = self._handlers.get(method_of(q))
        if handler is None:
            return ErrorMessage(q.tid, METHOD_UNKNOWN, "method unknown")
        return handler(q, addr, now)

    def answer_wire(self, q: Query, addr: Addr, now: float) -> bytes | None:
        """The encoded reply to ``q`` when it is a find_node or a get_peers (without BEP 33
        scrape) answered by the built-in handler: the bytes ``encode(answer(q, addr, now))``
        would give, the same state changes (token, peer draw), without building a
        ``Response``. None for every other query (then ``answer`` and ``encode``)."""
        # The handler of the query's own method (a subclass may name another one).
        handler = self._handlers.get(type(q).method)
        token: bytes | None = None
        values: tuple[Addr, ...] = ()
        values_packed: bytes | None = None
        if handler is None:
            return None
        if isinstance(q, FindNodeQuery):
            if handler is not self._wire_find_node:
                return None
            v4, v6, packed4, packed6 = self._closest_wire(q.target, q.want, addr, now)
        elif isinstance(q, GetPeersQuery):
            if q.scrape or handler is not self._wire_get_peers:
                return None
            # What _get_peers_reply draws, in the same order; the peers with their entries.
            token = self.tokens.issue(addr[0], q.info_hash, now)
            peers, entries = self.store.get_encoded(
                q.info_hash, now, self.rng, self.settings.max_peers_per_reply,
                ip_family(addr[0]), krpc.value_entry, noseed=q.noseed,
            )
            values, values_packed = tuple(peers), b"".join(entries)
            v4, v6, packed4, packed6 = self._closest_wire(q.info_hash, q.want, addr, now)
        else:
            return None
        version = self.settings.client_version
        data = krpc.encode_common_response(
            q.tid, self.node_id, addr, version, v4, v6, values, token,
            nodes_packed=packed4, nodes6_packed=packed6, values_packed=values_packed,
        )
        if len(data) > self.settings.max_reply_bytes:
            data = self._shrink(
                self.response(q, addr, nodes=v4, nodes6=v6, values=values, token=token)
            )
        return data

    def response(self, q: Query, addr: Addr, **fields: Any) -> Response:
        """Our reply to ``q``: our id, the requester's address as we saw it (BEP 42 ``ip``),
        our version, and the method's ``fields`` (``Response`` fields; ``extra`` for others)."""
        return Response(
            q.tid, self.node_id, external_ip=addr, version=self.settings.client_version, **fields
        )

    def encode(self, reply: Message) -> bytes:
        """``reply`` on the wire, shrunk to ``max_reply_bytes`` if it is a larger Response."""
        data = krpc.encode(reply)
        if isinstance(reply, Response) and len(data) > self.settings.max_reply_bytes:
            data = self._shrink(reply)
        return data

    # --- internals -------------------------------------------------------------------------------
    def _ping_reply(self, q: PingQuery, addr: Addr, now: float) -> Response:
        return self.response(q, addr)

    def _find_node_reply(self, q: FindNodeQuery, addr: Addr, now: float) -> Response:
        v4, v6 = self.closest_nodes(q.target, q.want, addr, now)
        return self.response(q, addr, nodes=v4, nodes6=v6)

    def closest_nodes(
        self, target: bytes, want: frozenset[bytes], addr: Addr, now: float
    ) -> tuple[tuple[NodeInfo, ...], tuple[NodeInfo, ...]]:
        """The K closest contacts to ``target`` of each family ``want`` names (BEP 32; none:
        the family of ``addr``), as (``nodes``, ``nodes6``), for handlers of other methods too.
        A family we do not run gets none."""
        k = self.settings.k
        out: dict[int, tuple[NodeInfo, ...]] = {4: (), 6: ()}
        for fam in wanted_families(want, ip_family(addr[0])):
            if fam == self.table.family:
                out[fam] = tuple(self.table.closest(target, k, now))
            elif self.sibling is not None and self.sibling.family == fam:
                out[fam] = tuple(self.sibling.closest(target, k, now))
        return out[4], out[6]

    def _closest_wire(
        self, target: bytes, want: frozenset[bytes], addr: Addr, now: float
    ) -> tuple[tuple[NodeInfo, ...], tuple[NodeInfo, ...], bytes | None, bytes | None]:
        """``closest_nodes``, plus our own family's contacts already packed (``nodes``,
        ``nodes6``; None for a family whose contacts must be encoded)."""
        k = self.settings.k
        out: dict[int, tuple[NodeInfo, ...]] = {4: (), 6: ()}
        packed: dict[int, bytes | None] = {4: None, 6: None}
        for fam in wanted_families(want, ip_family(addr[0])):
            if fam == self.table.family:
                infos, packed[fam] = self.table.closest_packed(target, k, now)
                out[fam] = tuple(infos)
            elif self.sibling is not None and self.sibling.family == fam:
                out[fam] = tuple(self.sibling.closest(target, k, now))
        return out[4], out[6], packed[4], packed[6]

    def _shrink(self, r: Response) -> bytes:
        """Amplification guard: no reply may exceed max_reply_bytes, whatever a small query
        asked for. Sheds peers first (a quarter at a time), then samples, then contacts."""
        limit = self.settings.max_reply_bytes
        while True:
            data = krpc.encode(r)
            if len(data) <= limit:
                return data
            if r.values:
                r = replace(r, values=r.values[: len(r.values) * 3 // 4])
            elif r.samples:
                r = replace(r, samples=r.samples[: len(r.samples) * 3 // 4])
            elif r.nodes6:
                r = replace(r, nodes6=r.nodes6[:-1])
            elif r.nodes:
                r = replace(r, nodes=r.nodes[:-1])
            else:
                return data  # nothing left to shed: the bare reply is tiny anyway

    def _get_peers_parts(
        self, q: GetPeersQuery, addr: Addr, now: float
    ) -> tuple[bytes, tuple[Addr, ...]]:
        """(token, peers) of a get_peers reply, drawn in this order."""
        token = self.tokens.issue(addr[0], q.info_hash, now)
        peers = self.store.get(
            q.info_hash,
            now,
            self.rng,
            self.settings.max_peers_per_reply,
            family=ip_family(addr[0]),
            noseed=q.noseed,
        )
        return token, tuple(peers)

    def _get_peers_reply(self, q: GetPeersQuery, addr: Addr, now: float) -> Response:
        token, peers = self._get_peers_parts(q, addr, now)
        v4, v6 = self.closest_nodes(q.info_hash, q.want, addr, now)
        # BEP 33: the filters (512 bytes) come with the peers; a reply too large for
        # max_reply_bytes sheds peers first (``_shrink``), never the filters.
        filters = self.store.scrape_filters(q.info_hash, now) if q.scrape else None
        return self.response(
            q,
            addr,
            nodes=v4,
            nodes6=v6,
            values=peers,
            token=token,
            bf_seeds=filters[0] if filters else None,
            bf_peers=filters[1] if filters else None,
        )

    def _announce_reply(self, q: AnnouncePeerQuery, addr: Addr, now: float) -> Message:
        if not self.tokens.verify(q.token, addr[0], q.info_hash, now):
            self.counters.bad_tokens += 1
            return ErrorMessage(q.tid, PROTOCOL_ERROR, "invalid token")
        port = addr[1] if q.implied_port else q.port
        if not 0 < port < 65536:
            return ErrorMessage(q.tid, PROTOCOL_ERROR, "invalid port")
        peer = (addr[0], port)
        if self.store.add(q.info_hash, peer, now, seed=q.seed):
            self.counters.announces_stored += 1
            self.emit(ev.AnnounceReceived(q.info_hash, peer, q.sender_id, now))
        return self.response(q, addr)

    def _sample_reply(self, q: SampleInfohashesQuery, addr: Addr, now: float) -> Response:
        """BEP 51 at its latest revision: ``samples`` always (maybe empty), ``num``, and
        ``interval`` (0..21600). While every info_hash fits in one reply they are all returned;
        past that, a random subset drawn at most once per ``interval`` (the BEP lets nodes
        precompute it, and tells crawlers not to ask again sooner: they would gain nothing)."""
        s = self.settings
        v4, v6 = self.closest_nodes(q.target, q.want, addr, now)
        interval = max(0, min(int(s.sample_interval), 21600))
        r = self.response(
            q, addr, nodes=v4, nodes6=v6, interval=interval, num=self.store.info_hash_count()
        )
        room = s.max_reply_bytes - len(krpc.encode(r)) - 8
        count = max(0, min(s.max_samples, room // 20))
        return replace(r, samples=tuple(self._subset(count, interval, now)))

    def _subset(self, count: int, interval: int, now: float) -> list[bytes]:
        store = self.store
        if store.info_hash_count() <= count:
            return store.sample_info_hashes(self.rng, count)
        cached = self._sample_cache
        if cached is None or now >= cached[0] + interval or len(cached[1]) < count:
            cached = self._sample_cache = (now, store.sample_info_hashes(self.rng, count))
        # Stale entries (expired or evicted since) are left out, never returned.
        return [h for h in cached[1][:count] if h in store]
