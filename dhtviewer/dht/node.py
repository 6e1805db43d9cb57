"""DhtNode: the sans-IO Mainline DHT node (BEP 5, with BEP 32, 33, 42, 43, 44 and 51).

One node speaks one address family (BEP 32 runs two independent DHTs): one socket, one routing
table, lookups through that family's nodes only. A dual-stack host runs one node per family; the
two share nothing but what ``families.Sibling`` shows (see ``families``).

The node wires its parts together and drives them; each part is its own module:

* ``intake.Intake``: every incoming datagram: admission (size, blocked senders, read-only
  mode, rate limits), decoding, and the query path (answer, then learn about the querier);
* ``rpc.Rpc``: our queries, reply matching, timeouts, and what every answer teaches;
* ``identity.NodeIdentity``: our id and external address (BEP 42 votes and ids);
* ``responder.Responder``: what each query gets back (a method -> handler registry);
* ``lookups.LookupManager`` and ``announce.AnnounceRound``: lookups and announces;
* ``item_lookup`` (BEP 44 get and put), ``scrape_round`` (BEP 33), ``crawler`` (BEP 51 crawl
  and direct queries) on the requesting side; ``item_service`` (BEP 44 get/put answers, with
  ``item_store.ItemStore``) on the storage side;
* ``refresh.Refresher``: bootstrap and bucket refresh;
* ``routing_table.RoutingTable`` (with its ``RoutingPolicy``), ``peer_store.PeerStore``,
  ``tokens.TokenIssuer``, ``rate_limit.RateLimiter``;
* ``tasks.Scheduler``: tasks on the node's clock; ``outbox.Outbox``: datagrams and events out;
  ``counters.Counters``: every count, shared by all of them.

Here stays what no single part owns: the public API (checking its arguments), what follows a
change of our id, and the read-only views. The node never touches a socket or a clock, and
takes its settings once, at construction.

Two sources of randomness are injected: ``rng`` for what others see anyway (refresh targets,
samples, which peers to return) and ``secrets`` for what nobody may predict (transaction ids,
token secrets, our node id). By default ``secrets`` is the operating system's generator; a
simulation passes a seeded one to stay deterministic.

Driving contract (the asyncio transport and the simulator follow exactly this)::

    node = DhtNode(rng=random.Random(), now=clock(), settings=DhtSettings(...))  # secrets: OS
    node.receive(data, addr, now)         # every datagram that arrives
    node.handle_timer(now)                # whenever now >= node.next_deadline()
    node.start_lookup(...), node.announce(...), node.ping(...), node.bootstrap(...)   # API calls
    # after EACH of the calls above:
    for data, addr in node.datagrams_to_send(): sendto(data, addr)
    for event in node.drain_events(): dispatch(event)
    deadline = node.next_deadline()       # absolute time (same clock as `now`) or None
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import acceptable_address, destination_problem, ip_family
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.crawler import UNKNOWN_ID, Crawl, DirectSample
from dhtviewer.dht.external_ip import ExternalIpVoter
from dhtviewer.dht.families import FAMILIES, Sibling
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.intake import Intake
from dhtviewer.dht.item_lookup import PutRequest, start_get, start_put
from dhtviewer.dht.item_service import ItemService
from dhtviewer.dht.item_store import ItemStore
from dhtviewer.dht.kinds import LookupKind, NodeState
from dhtviewer.dht.lookup import Lookup
from dhtviewer.dht.lookups import LookupLimitError, LookupManager, Phase
from dhtviewer.dht.messages import (
    Addr,
    NodeInfo,
    PingQuery,
    SampleInfohashesQuery,
    UnknownQuery,
)
from dhtviewer.dht.node_id import ID_BYTES, bep42_id, bep42_valid, random_id
from dhtviewer.dht.op_ids import OpIds
from dhtviewer.dht.outbox import Outbox
from dhtviewer.dht.peer_store import PeerStore
from dhtviewer.dht.rate_limit import RateLimiter
from dhtviewer.dht.refresh import Refresher
from dhtviewer.dht.responder import Handler, Responder
from dhtviewer.dht.routing_policy import RoutingPolicy
from dhtviewer.dht.routing_table import RoutingSnapshot, RoutingTable
from dhtviewer.dht.rpc import DirectPing, Rpc
from dhtviewer.dht.sampler import Sampler
from dhtviewer.dht.scrape_round import ScrapeRound
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.tasks import ScheduledTask, Scheduler, Task
from dhtviewer.dht.tokens import TokenIssuer
from dhtviewer.dht.transactions import Pending, TransactionOwner, TransactionTable

__all__ = ["DhtNode", "LookupLimitError"]

_USER_KINDS = (LookupKind.GET_PEERS, LookupKind.FIND_NODE)


class DhtNode:
    def __init__(
        self,
        *,
        rng: random.Random,
        now: float,
        node_id: bytes | None = None,
        settings: DhtSettings | None = None,
        family: int = 4,
        sibling: Sibling | None = None,
        op_ids: OpIds | None = None,
        traffic_events: bool = True,
        external_ip: str | None = None,
        routing_policy: RoutingPolicy | None = None,
        first_op_id: int | None = None,
        secrets: random.Random | None = None,
    ) -> None:
        """``rng``: randomness others may see (refresh targets, samples). ``secrets``: what
        nobody may predict (transaction ids, token secrets, our id when none is given; default:
        the operating system's ``random.SystemRandom``). ``family``: the address family (4 or
        6) this node speaks: its socket's, its routing table's, its lookups'. ``sibling``: the
        read-only view of the host's node of the other family (dual stack, BEP 32); None for a
        single-stack node. ``op_ids``: where operation ids (lookups, pings, samples) come
        from; the nodes of one session share one, so that an id names one operation across
        families (and ``next_op_id`` is the pair's). ``traffic_events``: emit
        MessageSent/MessageReceived (``set_traffic_events`` switches it later).
        ``external_ip``: our address as last known (restored state), until votes say
        otherwise. ``routing_policy``: the routing table's and lookups' rules (default: from
        ``settings``). ``first_op_id``: where a node without ``op_ids`` starts its ids; a
        program that runs nodes one after another passes the previous node's ``next_op_id`` so
        that ids never repeat within its life."""
        if node_id is not None and len(node_id) != ID_BYTES:
            raise ValueError("node_id must be 20 bytes")
        if family not in FAMILIES:
            raise ValueError(f"family must be 4 or 6, got {family!r}")
        if sibling is not None and sibling.family == family:
            raise ValueError(f"the sibling of an IPv{family} node must be of the other family")
        if op_ids is not None and first_op_id is not None:
            # the shared source decides; a first id beside it would silently be ignored
            raise ValueError("give op_ids or first_op_id, not both")
        s = self._settings = settings or DhtSettings()
        self._rng = rng
        secret_rng = secrets if secrets is not None else random.SystemRandom()
        self._identity = identity = NodeIdentity(
            node_id if node_id is not None else random_id(secret_rng),
            secrets=secret_rng,
            external_ip=external_ip,
            derive=s.derive_node_id,
        )
        self._family = family
        self._sibling = sibling
        self._started_at = now
        c = self._counters = Counters()
        self._outbox = Outbox(c, s.max_queued_events, traffic_events)
        emit = self._outbox.emit
        policy = routing_policy or RoutingPolicy.from_settings(s)
        self._table = RoutingTable(
            identity.node_id, s, family, emit=emit, policy=policy, counters=c
        )
        self._tokens = TokenIssuer(secret_rng, now, s.token_rotation)
        self._store = PeerStore(
            max_info_hashes=s.max_info_hashes,
            max_peers_per_info_hash=s.max_peers_per_info_hash,
            max_peers=s.max_stored_peers,
            ttl=s.peer_ttl,
            counters=c,
        )
        self._limiter = RateLimiter(
            per_ip_rate=s.per_ip_rate,
            per_ip_burst=s.per_ip_burst,
            block_seconds=s.block_seconds,
            max_tracked_ips=s.max_tracked_ips,
            global_rate=s.global_reply_rate,
            global_burst=s.global_reply_burst,
            counters=c,
        )
        self._rpc = Rpc(
            identity=identity,
            settings=s,
            table=self._table,
            outbox=self._outbox,
            counters=c,
            secrets=secret_rng,
            limiter=self._limiter,
            on_external_ip=self._vote_external_ip,
        )
        self._ops = op_ids if op_ids is not None else OpIds(
            1 if first_op_id is None else first_op_id
        )
        self._lookups = LookupManager(
            identity=identity,
            settings=s,
            table=self._table,
            rpc=self._rpc,
            outbox=self._outbox,
            ids=self._new_op,
            addr_ok=self._addr_ok,
            # The policy's rule, whatever it is: a policy that overrides ``subnet`` governs
            # lookups as it governs the table (it answers None where the rule is off).
            subnet_of=policy.subnet,
            sibling=sibling,
        )
        self._refresher = Refresher(
            settings=s, table=self._table, lookups=self._lookups, rng=rng
        )
        self._tasks = Scheduler(on_error=self._task_failed)
        self._responder = Responder(
            identity=identity,
            settings=s,
            table=self._table,
            sibling=sibling,
            store=self._store,
            tokens=self._tokens,
            rng=rng,
            counters=c,
            emit=emit,
        )
        self._items = ItemStore(max_items=s.max_items, ttl=s.item_ttl, counters=c)
        ItemService(
            responder=self._responder, store=self._items, tokens=self._tokens, counters=c,
            emit=emit,
        ).register()
        self._intake = Intake(
            identity=identity,
            settings=s,
            table=self._table,
            rpc=self._rpc,
            responder=self._responder,
            limiter=self._limiter,
            outbox=self._outbox,
            counters=c,
        )
        self._crawl: Crawl | None = None

    # ============================================================================== driving ==
    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle one incoming datagram. Never raises on any input."""
        self._intake.receive(data, addr, now)

    def handle_timer(self, now: float) -> None:
        self._rpc.expire(now)
        store = self._store
        nxt = store.next_expiry()
        if nxt is not None and nxt <= now:
            store.expire(now)
        nxt = self._items.next_expiry()
        if nxt is not None and nxt <= now:
            self._items.expire(now)
        self._refresher.tick(now)
        # Lookups blocked by a full transaction table get another chance here.
        self._lookups.step_all(now)
        self._tasks.run_due(now)

    def next_deadline(self) -> float | None:
        # Asked after every datagram by a driver: no list, no sort of the candidates.
        best = self._rpc.next_deadline()
        for t in (
            self._store.next_expiry(),
            self._items.next_expiry(),
            self._refresher.next_deadline(),
            self._tasks.next_deadline(),
        ):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        return self._outbox.take_datagrams()

    def drain_events(self) -> list[ev.Event]:
        return self._outbox.take_events()

    def set_traffic_events(self, enabled: bool) -> None:
        """Whether to build MessageSent/MessageReceived events (one per datagram: a tenth of
        what a busy node spends per query, so a driver turns them off while nobody looks)."""
        self._outbox.traffic_events = enabled

    # =========================================================================== operations ==
    def bootstrap(self, addrs: Sequence[Addr], now: float) -> int:
        """find_node lookup of our own id seeded with ``addrs`` (ids unknown) and the routing
        table. When it finishes, the node counts as bootstrapped and refreshes its buckets."""
        return self._refresher.bootstrap(self._identity.node_id, addrs, now)

    def start_lookup(
        self,
        target: bytes,
        now: float,
        *,
        kind: LookupKind | str = LookupKind.GET_PEERS,
        seeds: Sequence[Addr] = (),
        alpha: int | None = None,
        short_timeout: float | None = None,
        scrape: bool = False,
    ) -> int:
        """kind: "get_peers" or "find_node". Emits LookupStarted ... LookupFinished.
        ``alpha`` and ``short_timeout`` override the settings for this lookup (a fixed short
        timeout instead of the adaptive one). ``scrape`` (get_peers only): then ask the K
        closest for their BEP 33 filters (``ScrapeFinished``)."""
        try:
            lookup_kind = LookupKind(kind)
        except ValueError:
            lookup_kind = None
        if lookup_kind not in _USER_KINDS:
            raise ValueError(f"unknown lookup kind {kind!r}")
        if scrape and lookup_kind != LookupKind.GET_PEERS:
            raise ValueError("only a get_peers lookup can scrape")
        return self._lookups.start(
            target,
            lookup_kind,
            now,
            seeds=seeds,
            alpha=alpha,
            short_timeout=short_timeout,
            then=self._start_scrape if scrape else None,
        ).id

    def get_item(
        self, target: bytes, now: float, *, salt: bytes = b"", seeds: Sequence[Addr] = ()
    ) -> int:
        """BEP 44 get of ``target`` (``salt``: the one a mutable item was put with; it is
        not on the wire but checked against the target). Emits ItemFound/ItemRejected as
        answers come, then LookupFinished and ItemGetFinished."""
        return start_get(
            self._lookups, target, now, salt=salt, seeds=seeds, emit=self._outbox.emit
        )

    def put_item(self, request: PutRequest, now: float, *, seeds: Sequence[Addr] = ()) -> int:
        """BEP 44 put of ``request`` to the K closest nodes: LookupFinished, then
        ItemPutFinished (where it was stored, and why not elsewhere)."""
        return start_put(
            self._lookups,
            request,
            now,
            seeds=seeds,
            emit=self._outbox.emit,
            send=self._rpc.send,
            k=self._settings.k,
        )

    def sample(self, addr: Addr, now: float, *, target: bytes | None = None) -> int:
        """One BEP 51 sample_infohashes to ``addr``; ends with SamplesReceived(op_id=returned
        id)."""
        self._check_destination(addr)
        op = self._new_op()
        owner = DirectSample(op, self._outbox.emit)
        aim = target if target is not None else random_id(self._rng)
        if self._rpc.send(SampleInfohashesQuery, addr, None, now, owner, target=aim) is None:
            self._outbox.emit(
                ev.SamplesReceived(op, None, addr, (), None, None, "too many queries", now)
            )
        return op

    def start_crawl(
        self, now: float, *, rate: float | None = None, seeds: Sequence[Addr] = ()
    ) -> int:
        """Crawl the DHT with BEP 51 sample_infohashes (one crawl at a time; ``rate``: queries
        per second, default ``crawl_rate``), starting from the routing table and ``seeds``.
        Emits SamplesReceived per answer until ``stop_crawl`` (CrawlFinished)."""
        if self._crawl is not None and not self._crawl.stopped:
            raise RuntimeError("a crawl is already running")
        s = self._settings
        sampler = Sampler(
            self._rng,
            now,
            rate=s.crawl_rate if rate is None else rate,
            max_inflight=s.crawl_max_inflight,
            max_known=s.crawl_max_known,
            max_visits=s.crawl_max_visits,
        )
        identity = self._identity
        crawl = self._crawl = Crawl(
            self._new_op(),
            sampler,
            send=self._rpc.send,
            emit=self._outbox.emit,
            schedule=lambda when, fn: self._tasks.call_at(when, fn, name="crawl"),
            contact_ok=lambda n: n.id != identity.node_id and self._addr_ok(n.addr),
        )
        contacts = list(self._table.export_nodes())
        # Seeds have unknown ids: a placeholder until they answer (the sampler keys by
        # address, and the reply's id replaces it).
        contacts += [NodeInfo(UNKNOWN_ID, a) for a in seeds if self._addr_ok(a)]
        crawl.add_contacts(contacts, now)
        return crawl.op_id

    def stop_crawl(self, now: float) -> None:
        """Stop the running crawl (no-op if none): CrawlFinished; late answers are dropped."""
        crawl = self._crawl
        if crawl is not None and not crawl.stopped:
            self._rpc.cancel(crawl)
            crawl.stop(now)

    def crawl_stats(self) -> dict[str, int] | None:
        """The running (or last) crawl's counts: queried, replied, failed, supported,
        unsupported, dropped_contacts, known, pending, inflight (None before any crawl)."""
        return None if self._crawl is None else self._crawl.stats()

    def announce(
        self,
        info_hash: bytes,
        port: int,
        now: float,
        *,
        implied_port: bool = False,
        seeds: Sequence[Addr] = (),
        seed: bool | None = None,
    ) -> int:
        """get_peers lookup, then announce_peer to the K closest token holders; ends with
        LookupFinished (kind "announce") then AnnounceFinished. ``seed``: BEP 33 flag (we have
        the whole torrent), counted in scrapes' seed filter."""
        if not (implied_port or 0 < port < 65536):
            raise ValueError(f"port must be 1..65535, got {port}")
        return self._lookups.start(
            info_hash, LookupKind.ANNOUNCE, now, seeds=seeds, announce=(port, implied_port, seed)
        ).id

    def cancel_lookup(self, lookup_id: int, now: float) -> None:
        self._lookups.cancel(lookup_id, now)

    def ping(self, addr: Addr, now: float) -> int:
        """Direct ping; ends with PingFinished(op_id=returned id). Raises ValueError for an
        address that cannot be queried (see ``addresses.destination_problem``)."""
        self._check_destination(addr)
        op = self._new_op()
        owner = DirectPing(op, self._outbox.emit)
        if self._rpc.send(PingQuery, addr, None, now, owner) is None:
            self._outbox.emit(ev.PingFinished(op, addr, None, None, None, now))
        return op

    def send_query(
        self,
        addr: Addr,
        method: bytes,
        args: Mapping[bytes, object],
        now: float,
        owner: TransactionOwner,
        *,
        node_id: bytes | None = None,
        short_timeout: float | None = None,
        hard_timeout: float | None = None,
    ) -> Pending | None:
        """Send a query of any ``method`` with ``args`` (the ``a`` dict without ``id``) to
        ``addr``; ``owner`` is told of its answer, error or timeouts, with the core's matching
        (exact address and transaction id) and deadlines: ``short_timeout`` and
        ``hard_timeout`` for this query (default: the adaptive short timeout and the
        ``hard_timeout`` setting). None when ``max_inflight_queries`` are outstanding (nothing
        sent). Raises ValueError, with nothing sent or registered, for a bad address, method
        or timeout, or ``args`` that cannot be bencoded."""
        if not isinstance(method, bytes) or not method:
            raise ValueError(f"method must be a non-empty byte string, got {method!r}")
        self._check_destination(addr)
        for name, value in (("short_timeout", short_timeout), ("hard_timeout", hard_timeout)):
            if value is not None and not (type(value) in (int, float) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        try:
            return self._rpc.send(
                UnknownQuery, addr, node_id, now, owner, name=method, args=dict(args),
                short_timeout=short_timeout, hard_timeout=hard_timeout,
            )
        except ValueError as err:
            raise ValueError(f"cannot encode the {method!r} query: {err}") from None

    def cancel_queries(self, owner: TransactionOwner) -> int:
        """Forget ``owner``'s queries in flight (how many): it hears nothing more of them, and
        late replies are dropped as unsolicited."""
        return self._rpc.cancel(owner)

    def register_handler(self, method: bytes, handler: Handler) -> None:
        """Answer queries for ``method`` with ``handler(query, addr, now) -> reply`` (see
        ``Responder``); replaces the handler of a built-in method too."""
        self._responder.register(method, handler)

    def unregister_handler(self, method: bytes) -> None:
        self._responder.unregister(method)

    def call_at(self, when: float, fn: Task, *, name: str = "") -> ScheduledTask:
        """Run ``fn(now)`` at the first timer at or after ``when`` (the node's clock)."""
        return self._tasks.call_at(when, fn, name=name)

    def call_every(
        self, interval: float, fn: Task, *, first: float, name: str = ""
    ) -> ScheduledTask:
        """Run ``fn(now)`` at ``first`` and every ``interval`` seconds after (node's clock)."""
        return self._tasks.call_every(interval, fn, first=first, name=name)

    def add_contacts(self, nodes: Sequence[NodeInfo], now: float) -> None:
        """Known contacts (restored state): pinged, and entered into the table when they answer.
        Contacts of the other family are ignored."""
        for n in nodes:
            if self._addr_ok(n.addr) and n.id != self._identity.node_id:
                self._rpc.send(PingQuery, n.addr, n.id, now, self._rpc.verification)

    def offer_contacts(self, nodes: Sequence[NodeInfo], now: float) -> None:
        """Contacts of our family that the host's other node learned (``OtherFamilyContacts``,
        BEP 32): unverified, so they are pinged within the verification budget (as anyone who
        queries us) and enter the table only if they answer."""
        fresh = [
            n for n in nodes
            if self._addr_ok(n.addr) and n.id != self._identity.node_id
            and self._table.get_by_addr(n.addr) is None
        ]
        self._rpc.verify(fresh, now)

    def preload_contacts(self, nodes: Sequence[NodeInfo], answered_at: float) -> None:
        """Fill the routing table with ``nodes`` as if each had answered us at ``answered_at``,
        and count the node as bootstrapped: for simulations that seed tables from global
        knowledge instead of running millions of bootstrap queries. Not for the real network
        (nothing is verified)."""
        table = self._table
        for n in nodes:
            if ip_family(n.addr[0]) == self._family and n.id != self._identity.node_id:
                table.heard_from(n.id, n.addr, answered_at, responded=True)
        self._refresher.mark_bootstrapped()

    # ====================================================================== read-only views ==
    @property
    def node_id(self) -> bytes:
        """Ours now: it changes when our voted external address needs a BEP 42 id
        (``NodeIdChanged``)."""
        return self._identity.node_id

    @property
    def settings(self) -> DhtSettings:
        return self._settings

    @property
    def next_op_id(self) -> int:
        """The id the next operation (lookup, ping, ...) will get (in a dual-stack pair, by
        either node: they share their ids)."""
        return self._ops.next_id

    @property
    def family(self) -> int:
        """The address family (4 or 6) this node speaks."""
        return self._family

    @property
    def external_ip(self) -> str | None:
        """Our address as responders see it (BEP 42 votes), once known."""
        return self._identity.external_ip

    @property
    def bootstrapped(self) -> bool:
        return self._refresher.bootstrapped

    @property
    def short_timeout(self) -> float:
        """The short timeout in force now (adaptive unless disabled in settings)."""
        return self._rpc.timeout.value

    @property
    def traffic_events(self) -> bool:
        return self._outbox.traffic_events

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def table(self) -> RoutingTable:
        """The routing table (read-only use: ``snapshot``, ``closest``, iteration)."""
        return self._table

    @property
    def lookups(self) -> Mapping[int, Lookup]:
        """Running lookups (an announce stays here until its announce round ends)."""
        return self._lookups.lookups

    @property
    def txns(self) -> TransactionTable:
        return self._rpc.txns

    @property
    def store(self) -> PeerStore:
        return self._store

    @property
    def items(self) -> ItemStore:
        """The BEP 44 items stored on us (read-only use: ``snapshot(now)``)."""
        return self._items

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    @property
    def tokens(self) -> TokenIssuer:
        return self._tokens

    @property
    def responder(self) -> Responder:
        return self._responder

    @property
    def voter(self) -> ExternalIpVoter:
        return self._identity.voter

    def routing_snapshot(self, now: float) -> RoutingSnapshot:
        return self._table.snapshot(now)

    def routing_size(self) -> int:
        return len(self._table)

    def good_node_count(self, now: float) -> int:
        s = self._settings
        return sum(
            1
            for e in self._table
            if e.state(now, s.good_period, s.bad_after_failures) == NodeState.GOOD
        )

    def closest_contacts(self, target: bytes, count: int, now: float) -> list[NodeInfo]:
        """The ``count`` verified contacts closest to ``target`` (what a ``find_node`` reply
        carries): what the other family's node reads through its ``Sibling``."""
        return self._table.closest(target, count, now)

    def needs_contacts(self) -> bool:
        """Short of contacts (fewer than K in the table): the sibling's lookups then ask for our
        family's contacts too (BEP 32), to feed us."""
        return len(self._table) < self._settings.k

    def stats(self, now: float) -> dict[str, int]:
        """Every counter (``Counters``) and the sizes of things at ``now``."""
        out = self._counters.as_dict()
        store = self._store
        limiter = self._limiter
        out["routing_nodes"] = self.routing_size()
        out["inflight"] = len(self._rpc)
        out["lookups"] = len(self._lookups)
        out["stored_info_hashes"] = store.info_hash_count()
        out["stored_peers"] = store.peer_count()
        out["stored_items"] = len(self._items)
        out["blocked_ips"] = len(limiter.blocked_ips(now))
        out["tracked_ips"] = limiter.tracked()
        out["queued_events"] = self._outbox.queued_events()
        out["tasks"] = len(self._tasks)
        # Every datagram a protection discarded (refused queries included).
        out["dropped_packets"] = out["rate_limited"] + out["dropped_blocked"] + out["oversized"]
        return out

    def export_state(self) -> dict[str, object]:
        """JSON-able: {"family": 4|6, "node_id": hex, "external_ip": str|None,
        "nodes": [[hex, ip, port], ...]}."""
        nodes = [[n.id.hex(), n.addr[0], n.addr[1]] for n in self._table.export_nodes()]
        return {
            "family": self._family,
            "node_id": self.node_id.hex(),
            "external_ip": self.external_ip,
            "nodes": nodes,
        }

    @property
    def id_change_held_until(self) -> float | None:
        """While our id does not match our settled external address because it changed less
        than ``identity.ID_CHANGE_INTERVAL`` ago: when it may change again (None otherwise)."""
        return self._identity.change_held_until

    def bep42_ok(self) -> bool | None:
        """Whether our id is valid for our external address (None while it is unknown)."""
        ip = self.external_ip
        if ip is None:
            return None
        return bep42_valid(self.node_id, ip)

    @staticmethod
    def id_for_ip(ip: str, rng: random.Random) -> bytes:
        """A BEP 42 compliant id for a node whose external address is ``ip``."""
        return bep42_id(ip, rng)

    # ============================================================================ internals ==
    def _start_scrape(
        self, lk: Lookup, now: float, done: Callable[[TransactionOwner], None]
    ) -> Phase:
        round_ = ScrapeRound(lk.id, lk.target, emit=self._outbox.emit, on_done=done)
        round_.start(lk.closest(), self._rpc.send, now)
        return round_

    def _new_op(self) -> int:
        return next(self._ops)

    def _check_destination(self, addr: Addr) -> None:
        why = destination_problem(addr)
        if why is None and ip_family(addr[0]) != self._family:
            why = f"this node speaks IPv{self._family} only"
        if why is not None:
            raise ValueError(f"cannot query {addr!r}: {why}")

    def _addr_ok(self, addr: Addr) -> bool:
        try:
            fam = ip_family(addr[0])
        except ValueError:
            return False
        if fam != self._family:
            return False
        return acceptable_address(addr, allow_local=self._settings.allow_local) is None

    def _vote_external_ip(self, voter: str, ip: str, now: float) -> None:
        settled = self._identity.vote(voter, ip, now)
        if settled is None:
            return
        emit = self._outbox.emit
        if settled.address_changed:
            emit(ev.ExternalAddressChanged(settled.ip, settled.votes, now))
        new_id = settled.new_id
        if new_id is None:
            return
        # BEP 42: our address needs another id. Keep every contact, re-sorted around it.
        self._counters.node_id_changes += 1
        self._rpc.verify(self._table.update_node_id(new_id, now), now)
        emit(ev.NodeIdChanged(settled.old_id, new_id, settled.ip, self._family, now))
        self._refresher.node_id_changed(new_id, now)

    def _task_failed(self, task: ScheduledTask, err: Exception, now: float) -> None:
        self._counters.task_errors += 1
        self._outbox.emit(ev.TaskFailed(task.name or repr(task.fn), repr(err), now))
