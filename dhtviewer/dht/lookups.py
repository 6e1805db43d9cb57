"""LookupManager: runs the node's lookups: starts them, sends their queries, feeds the answers
back, finishes them (and hands an announce over to its ``AnnounceRound``).

Each running lookup has a ``Lookup`` (whom to ask next, when it is done: ``lookup.py``) and is
the owner of its queries through a small ``TransactionOwner``. Every lookup emits
``LookupStarted``, then ``LookupQuerySent``/``LookupResponse``/``PeersFound``/``LookupTimeout`` as
it goes, and exactly one ``LookupFinished``; an announce then one ``AnnounceFinished``.

What a lookup of each kind asks is ``QUERY_OF_KIND``; a new kind (BEP 44 ``get``, say) adds its
member to ``LookupKind`` and its query here, and handles what it collects in ``on_response``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dhtviewer.dht import events as ev
from dhtviewer.dht.announce import AnnounceRound
from dhtviewer.dht.kinds import LookupKind, OwnerKind
from dhtviewer.dht.lookup import Lookup
from dhtviewer.dht.messages import Addr, FindNodeQuery, GetPeersQuery, Query, Response
from dhtviewer.dht.node_id import ID_BYTES
from dhtviewer.dht.outbox import Outbox
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.rpc import Rpc
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.transactions import Pending, TransactionOwner

QUERY_OF_KIND: dict[LookupKind, tuple[type[Query], str]] = {
    LookupKind.GET_PEERS: (GetPeersQuery, "info_hash"),
    LookupKind.ANNOUNCE: (GetPeersQuery, "info_hash"),
    LookupKind.FIND_NODE: (FindNodeQuery, "target"),
    LookupKind.BOOTSTRAP: (FindNodeQuery, "target"),
    LookupKind.REFRESH: (FindNodeQuery, "target"),
}
"""The query each kind of lookup sends, and the argument that carries its target."""

FinishHook = Callable[[Lookup, float, bool], None]
"""Called as ``hook(lookup, now, cancelled)`` right after a lookup's ``LookupFinished``."""


class LookupLimitError(RuntimeError):
    """Raised when a lookup cannot start: too many are running."""


class _LookupQueries(TransactionOwner):
    """Owner of one lookup's queries."""

    kind = OwnerKind.LOOKUP
    __slots__ = ("lookup", "manager")

    def __init__(self, manager: LookupManager, lookup: Lookup) -> None:
        self.manager = manager
        self.lookup = lookup

    @property
    def active(self) -> bool:
        return not self.lookup.finished

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        self.manager._on_response(self.lookup, p, r, now)

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self.manager._on_failure(self.lookup, p, reason, now)

    def on_timeout(self, p: Pending, now: float) -> None:
        self.manager._on_failure(self.lookup, p, None, now)

    def on_slow(self, p: Pending, now: float) -> None:
        self.manager._on_slow(self.lookup, p, now)


class LookupManager:
    def __init__(
        self,
        *,
        node_id: bytes,
        settings: DhtSettings,
        tables: dict[int, RoutingTable],
        rpc: Rpc,
        outbox: Outbox,
        ids: Callable[[], int],
        addr_ok: Callable[[Addr], bool],
        subnet_of: Callable[[str], bytes | None] | None = None,
    ) -> None:
        """``ids()``: the next operation id (shared with pings). ``addr_ok(addr)``: whether a
        contact's address may be used at all. ``subnet_of(ip)``: the subnet rule for lookups
        (``RoutingPolicy.subnet``; None: no rule)."""
        self.node_id = node_id
        self.settings = settings
        self.tables = tables
        self.rpc = rpc
        self.outbox = outbox
        self._ids = ids
        self._addr_ok = addr_ok
        self._subnet_of = subnet_of
        self.lookups: dict[int, Lookup] = {}
        """Running lookups, in either phase of an announce."""
        self._owners: dict[int, _LookupQueries] = {}
        self._announces: dict[int, AnnounceRound] = {}
        self._hooks: dict[int, FinishHook] = {}
        self._announce_args: dict[int, tuple[int, bool]] = {}

    def __len__(self) -> int:
        return len(self.lookups)

    # --- starting ----------------------------------------------------------------------------
    def start(
        self,
        target: bytes,
        kind: LookupKind,
        now: float,
        *,
        seeds: Sequence[Addr] = (),
        alpha: int | None = None,
        short_timeout: float | None = None,
        on_finished: FinishHook | None = None,
        announce: tuple[int, bool] | None = None,
    ) -> Lookup:
        """Start a lookup of ``kind`` toward ``target``, seeded with the routing table's 2K
        closest entries and ``seeds`` (addresses whose ids are unknown). ``alpha`` and
        ``short_timeout`` override the settings for this lookup; ``announce``: (port,
        implied_port) for ``LookupKind.ANNOUNCE``. Raises ValueError for a bad target and
        ``LookupLimitError`` when ``max_lookups`` are running."""
        if len(target) != ID_BYTES:
            raise ValueError("lookup target must be 20 bytes")
        s = self.settings
        if len(self.lookups) >= s.max_lookups:
            raise LookupLimitError(f"{len(self.lookups)} lookups already running")
        if (kind == LookupKind.ANNOUNCE) != (announce is not None):
            raise ValueError("an announce lookup needs its port, and only it")
        if alpha is not None and alpha < 1:
            raise ValueError(f"alpha must be at least 1, got {alpha}")
        if short_timeout is not None and not short_timeout > 0:
            raise ValueError(f"short_timeout must be positive, got {short_timeout}")
        lid = self._ids()
        lk = Lookup(
            lid,
            target,
            kind,
            now,
            k=s.k,
            alpha=s.alpha if alpha is None else alpha,
            short_timeout=short_timeout,
            subnet_of=self._subnet_of,
        )
        self.lookups[lid] = lk
        self._owners[lid] = _LookupQueries(self, lk)
        if on_finished is not None:
            self._hooks[lid] = on_finished
        if announce is not None:
            self._announce_args[lid] = announce
        for table in self.tables.values():
            lk.add_nodes(table.closest(target, s.k * 2, now), None, 0)
        for a in seeds:
            if self._addr_ok(a):
                lk.add_seed(a)
        self.outbox.emit(ev.LookupStarted(lid, target, kind, now))
        self.step(lk, now)
        return lk

    # --- running -----------------------------------------------------------------------------
    def step(self, lk: Lookup, now: float) -> None:
        """Send what ``lk`` wants to ask now; finish it if it is done."""
        if lk.finished:
            return
        qtype, key = QUERY_OF_KIND[lk.kind]
        args = {key: lk.target}
        owner = self._owners[lk.id]
        emit = self.outbox.emit
        while True:
            batch = lk.next_queries()
            if not batch:
                break
            sent_any = False
            for cand in batch:
                p = self.rpc.send(
                    qtype,
                    cand.addr,
                    cand.id,
                    now,
                    owner,
                    short_timeout=lk.short_timeout,
                    **args,
                )
                if p is None:
                    break
                lk.mark_sent(cand, now)
                sent_any = True
                emit(
                    ev.LookupQuerySent(
                        lk.id, cand.id, cand.addr, cand.referrer, cand.depth, now
                    )
                )
            if not sent_any:
                break
        if lk.is_done():
            self._finish(lk, now)

    def step_all(self, now: float) -> None:
        """Give every lookup a chance to send (those blocked by a full transaction table)."""
        for lk in list(self.lookups.values()):
            self.step(lk, now)

    def cancel(self, lookup_id: int, now: float) -> bool:
        """Stop a running lookup (or the announce round of an announce). False if unknown."""
        lk = self.lookups.get(lookup_id)
        if lk is None:
            return False
        self.rpc.cancel(self._owners[lookup_id])
        round_ = self._announces.get(lookup_id)
        if round_ is not None:
            self.rpc.cancel(round_)
        self._finish(lk, now, cancelled=True)
        return True

    def _on_response(self, lk: Lookup, p: Pending, r: Response, now: float) -> None:
        cand = lk.on_response(p.addr, r.sender_id, now, r.token)
        if cand is None:
            return
        own = self.node_id
        addr_ok = self._addr_ok
        contacts = [n for n in (*r.nodes, *r.nodes6) if n.id != own and addr_ok(n.addr)]
        new_nodes = lk.add_nodes(contacts, r.sender_id, cand.depth + 1)
        peers = [a for a in r.values if a[1] != 0]
        room = self.settings.max_peers_per_lookup - len(lk.peers)
        if len(peers) > room:
            # Bounded: peers already known still count, new ones only while there is room.
            fresh = dict.fromkeys(a for a in peers if a not in lk.peers)
            keep = set(list(fresh)[: max(0, room)])
            peers = [a for a in peers if a in lk.peers or a in keep]
        new_peers = lk.add_peers(peers, now) if lk.kind.collects_peers else []
        cand.peers = len(peers)
        emit = self.outbox.emit
        rtt = cand.rtt or 0.0
        emit(ev.LookupResponse(lk.id, r.sender_id, p.addr, rtt, new_nodes, len(peers), now))
        if peers:
            emit(ev.PeersFound(lk.id, r.sender_id, tuple(new_peers), now, tuple(peers)))
        self.step(lk, now)

    def _on_failure(self, lk: Lookup, p: Pending, error: str | None, now: float) -> None:
        if lk.on_failure(p.addr, error) is not None:
            self.outbox.emit(ev.LookupTimeout(lk.id, p.node_id, p.addr, error, now))
            self.step(lk, now)

    def _on_slow(self, lk: Lookup, p: Pending, now: float) -> None:
        lk.on_slow(p.addr)
        self.step(lk, now)

    # --- finishing ---------------------------------------------------------------------------
    def _finish(self, lk: Lookup, now: float, cancelled: bool = False) -> None:
        round_ = self._announces.get(lk.id)
        if round_ is not None:
            # Cancelled during its announce round: the lookup phase already reported.
            round_.finish(now, cancelled=True)
            return
        lk.finished = True
        lk.finished_at = now
        self.rpc.cancel(self._owners[lk.id])
        closest = tuple((c.id, c.addr) for c in lk.closest() if c.id is not None)
        self.outbox.emit(
            ev.LookupFinished(
                lk.id,
                lk.target,
                lk.kind,
                tuple(lk.peers),
                closest,
                lk.queried,
                lk.responded,
                now - lk.started_at,
                cancelled,
                now,
            )
        )
        announce = self._announce_args.pop(lk.id, None)
        if announce is not None and not cancelled:
            self._start_announce(lk, announce, now)
            return
        hook = self._hooks.pop(lk.id, None)
        self._forget(lk.id)
        if hook is not None:
            hook(lk, now, cancelled)

    def _start_announce(self, lk: Lookup, announce: tuple[int, bool], now: float) -> None:
        port, implied = announce
        round_ = AnnounceRound(
            lk.id, lk.target, port, implied, emit=self.outbox.emit, on_done=self._announce_done
        )
        self._announces[lk.id] = round_
        holders = [c for c in lk.closest() if c.token is not None][: self.settings.k]
        round_.start(holders, self.rpc.send, now)

    def _announce_done(self, round_: AnnounceRound) -> None:
        self.rpc.cancel(round_)
        self._forget(round_.lookup_id)

    def _forget(self, lookup_id: int) -> None:
        self.lookups.pop(lookup_id, None)
        self._owners.pop(lookup_id, None)
        self._announces.pop(lookup_id, None)
        self._announce_args.pop(lookup_id, None)
        self._hooks.pop(lookup_id, None)
