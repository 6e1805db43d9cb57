"""LookupManager: runs the node's lookups: starts them, sends their queries, feeds the answers
back, finishes them (and hands an announce over to its ``AnnounceRound``).

Each running lookup has a ``Lookup`` (whom to ask next, when it is done: ``lookup.py``) and is
the owner of its queries through a small ``TransactionOwner``. Every lookup emits
``LookupStarted``, then ``LookupQuerySent``/``LookupResponse``/``PeersFound`` and, for queries
that go wrong, ``LookupQuerySlow`` (past the short timeout), ``LookupTimeout`` (past the hard
one) or ``LookupQueryError`` (an error reply) as it goes, and exactly one ``LookupFinished``; an
announce then exactly one ``AnnounceFinished``, even when cancelled before its second phase.

What a lookup of each kind asks is ``QUERY_OF_KIND``; a new kind (BEP 44 ``get``, say) adds its
member to ``LookupKind`` and its query here. What a kind collects beyond contacts and peers goes
to the ``on_response`` hook given at ``start`` (which may also end the lookup early), and a
second phase after the lookup settles (announce_peer, BEP 44 put, BEP 33 scrape) is started by
the ``then`` hook: it returns a ``Phase``, a transaction owner that reports its own end through
the callback it was given, and is cancelled with the lookup.

A lookup runs in the node's address family only (BEP 32: the IPv4 and IPv6 DHTs are separate):
it is seeded from that family's table and follows only that family's contacts (``nodes`` for
IPv4, ``nodes6`` for IPv6). A dual-stack node asks for the other family's contacts too while it
bootstraps, or while its sibling is short of them (``want``); those it hands over as an
``OtherFamilyContacts`` event, never to the lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from dhtviewer.dht import events as ev
from dhtviewer.dht.announce import AnnounceRound
from dhtviewer.dht.families import WANT_OF, Sibling, other_family
from dhtviewer.dht.identity import NodeIdentity
from dhtviewer.dht.kinds import LookupKind, OwnerKind, QueryRole
from dhtviewer.dht.lookup import CHECKPOINT, Candidate, Lookup
from dhtviewer.dht.messages import Addr, FindNodeQuery, GetPeersQuery, GetQuery, Query, Response
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
    LookupKind.GET_ITEM: (GetQuery, "target"),
    LookupKind.PUT_ITEM: (GetQuery, "target"),
}
"""The query each kind of lookup sends, and the argument that carries its target."""

FinishHook = Callable[[Lookup, float, bool], None]
"""Called as ``hook(lookup, now, cancelled)`` right after a lookup's ``LookupFinished``."""

ResponseHook = Callable[[Lookup, Candidate, Response, float], bool]
"""Called as ``hook(lookup, candidate, reply, now)`` for each answer the lookup uses (after its
contacts and peers are taken); returning True ends the lookup at once."""


class Phase(Protocol):
    """A lookup's second phase (``AnnounceRound``, ``PutRound``, ``ScrapeRound``): the owner of
    its queries, which ends once, calling the ``done`` callback it was started with."""

    lookup_id: int

    def finish(self, now: float, *, cancelled: bool = False) -> None: ...


PhaseStarter = Callable[[Lookup, float, Callable[[TransactionOwner], None]], "Phase | None"]
"""``starter(lookup, now, done)`` starts the phase after ``LookupFinished`` (not cancelled) and
returns it, or None when there is nothing to do (it must then have reported its end itself)."""


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
        if p.extra is QueryRole.PROBE:
            self.manager._on_probe_response(self.lookup, r, now)
        else:
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
        identity: NodeIdentity,
        settings: DhtSettings,
        table: RoutingTable,
        rpc: Rpc,
        outbox: Outbox,
        ids: Callable[[], int],
        addr_ok: Callable[[Addr], bool],
        subnet_of: Callable[[str], bytes | None] | None = None,
        sibling: Sibling | None = None,
    ) -> None:
        """``identity``: ours (our id is never a lookup's contact). ``table``: the node's
        routing table; its family is the lookups'. ``ids()``: the next operation id (shared
        with pings). ``addr_ok(addr)``: whether a contact's address may be used at all.
        ``subnet_of(ip)``: the subnet rule for lookups, the routing policy's
        ``RoutingPolicy.subnet`` (which says None where the rule does not apply); None: no
        rule at all. ``sibling``: the other family's node (dual stack), whose need for
        contacts decides ``want``."""
        self.identity = identity
        self.settings = settings
        self.table = table
        self.family = table.family
        self._other = other_family(table.family)
        self._sibling = sibling
        self._want_both = frozenset({WANT_OF[4], WANT_OF[6]})
        self.rpc = rpc
        self.outbox = outbox
        self._ids = ids
        self._addr_ok = addr_ok
        self._subnet_of = subnet_of
        self.lookups: dict[int, Lookup] = {}
        """Running lookups, in either phase of an announce."""
        self._owners: dict[int, _LookupQueries] = {}
        self._phases: dict[int, Phase] = {}
        self._hooks: dict[int, FinishHook] = {}
        self._then: dict[int, PhaseStarter] = {}
        self._on_response_hooks: dict[int, ResponseHook] = {}
        self._announces: dict[int, tuple[int, bool, bool | None]] = {}
        """Announces not finished yet: (port, implied_port, seed), for the AnnounceFinished of
        one cancelled before its second phase."""

    @property
    def node_id(self) -> bytes:
        return self.identity.node_id

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
        announce: tuple[int, bool] | tuple[int, bool, bool | None] | None = None,
        on_response: ResponseHook | None = None,
        then: PhaseStarter | None = None,
    ) -> Lookup:
        """Start a lookup of ``kind`` toward ``target``, seeded with the routing table's 2K
        closest entries and ``seeds`` (addresses whose ids are unknown). ``alpha`` and
        ``short_timeout`` override the settings for this lookup; ``announce``: (port,
        implied_port[, seed]) for ``LookupKind.ANNOUNCE``. ``on_response`` and ``then``: see
        ``ResponseHook`` and ``PhaseStarter``. Raises ValueError for a bad target and
        ``LookupLimitError`` when ``max_lookups`` are running."""
        if len(target) != ID_BYTES:
            raise ValueError("lookup target must be 20 bytes")
        s = self.settings
        if len(self.lookups) >= s.max_lookups:
            raise LookupLimitError(f"{len(self.lookups)} lookups already running")
        if (kind == LookupKind.ANNOUNCE) != (announce is not None):
            raise ValueError("an announce lookup needs its port, and only it")
        if announce is not None and then is not None:
            raise ValueError("an announce lookup has its own second phase")
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
            then = partial(self._start_announce, announce)
            seed = announce[2] if len(announce) > 2 else None
            self._announces[lid] = (announce[0], announce[1], seed)
        if then is not None:
            self._then[lid] = then
        if on_response is not None:
            self._on_response_hooks[lid] = on_response
        lk.add_nodes(self.table.closest(target, s.k * 2, now), None, 0)
        for a in seeds:
            if self._addr_ok(a):
                lk.add_seed(a)
        self.rpc.counters.lookups_started += 1
        self.outbox.emit(ev.LookupStarted(lid, target, kind, now, self.family))
        self.step(lk, now)
        return lk

    # --- running -----------------------------------------------------------------------------
    def step(self, lk: Lookup, now: float) -> None:
        """Send what ``lk`` wants to ask now; finish it if it is done."""
        if lk.finished:
            return
        qtype, key = QUERY_OF_KIND[lk.kind]
        args: dict[str, Any] = {key: lk.target}
        if self._asks_both(lk):
            args["want"] = self._want_both
        owner = self._owners[lk.id]
        emit = self.outbox.emit
        short = self._short_timeout(lk)
        while True:
            batch = lk.next_queries()
            if not batch:
                break
            sent_any = False
            for cand in batch:
                # Its silence is first reported at the checkpoint (see lookup.py).
                p = self.rpc.send(
                    qtype, cand.addr, cand.id, now, owner, short_timeout=short * CHECKPOINT, **args
                )
                if p is None:
                    break
                lk.mark_sent(cand, now, short)
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
            return
        probe = lk.probe()
        if probe is not None:
            asked, target = probe
            p = self.rpc.send(FindNodeQuery, asked.addr, asked.id, now, owner, target=target)
            if p is not None:
                p.extra = QueryRole.PROBE
                emit(
                    ev.LookupQuerySent(
                        lk.id, asked.id, asked.addr, asked.referrer, asked.depth, now,
                        QueryRole.PROBE,
                    )
                )

    def _short_timeout(self, lk: Lookup) -> float:
        return self.rpc.timeout.value if lk.short_timeout is None else lk.short_timeout

    def _asks_both(self, lk: Lookup) -> bool:
        """BEP 32: a dual-stack node asks for both families' contacts while it bootstraps, or
        while its sibling is short of contacts (after an outage of that family, say); otherwise
        only for its own, which a query implies by the family it travels over (no ``want``)."""
        sib = self._sibling
        if sib is None or not sib.bound:
            return False
        return lk.kind == LookupKind.BOOTSTRAP or sib.needs_contacts()

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
        phase = self._phases.get(lookup_id)
        if phase is not None:
            self.rpc.cancel(phase)  # type: ignore[arg-type]
        self._finish(lk, now, cancelled=True)
        return True

    def _on_response(self, lk: Lookup, p: Pending, r: Response, now: float) -> None:
        cand = lk.on_response(p.addr, r.sender_id, now, r.token)
        if cand is None:
            return
        own = self.node_id
        addr_ok = self._addr_ok
        mine, theirs = (r.nodes, r.nodes6) if self.family == 4 else (r.nodes6, r.nodes)
        contacts = [n for n in mine if n.id != own and addr_ok(n.addr)]
        new_nodes = lk.add_nodes(contacts, r.sender_id, cand.depth + 1)
        if theirs and self._sibling is not None and self._sibling.bound:
            # Never into this lookup: the other family's DHT is another network. At most K,
            # as an honest reply carries (a hostile one cannot make the event large).
            self.outbox.emit(
                ev.OtherFamilyContacts(self._other, tuple(theirs[: self.settings.k]), now)
            )
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
        hook = self._on_response_hooks.get(lk.id)
        if hook is not None and hook(lk, cand, r, now):
            self._finish(lk, now)
            return
        self.step(lk, now)

    def _on_failure(self, lk: Lookup, p: Pending, error: str | None, now: float) -> None:
        if lk.on_failure(p.addr, error) is not None:
            if error is None:
                self.outbox.emit(ev.LookupTimeout(lk.id, p.node_id, p.addr, now))
            else:
                self.outbox.emit(ev.LookupQueryError(lk.id, p.node_id, p.addr, error, now))
            self.step(lk, now)

    def _on_slow(self, lk: Lookup, p: Pending, now: float) -> None:
        if p.extra is QueryRole.PROBE:
            return
        cand = lk.at_checkpoint(p.addr)
        if cand is not None and cand.slow_at is not None and cand.slow_at > now:
            self._checkpoint(lk, cand, p, now, cand.slow_at)
        elif lk.on_slow(p.addr) is not None:
            self.outbox.emit(ev.LookupQuerySlow(lk.id, p.node_id, p.addr, now))
            self.step(lk, now)

    def _checkpoint(
        self, lk: Lookup, cand: Candidate, p: Pending, now: float, slow_at: float
    ) -> None:
        """``cand``'s first query is silent at half the short timeout: it keeps waiting until
        the full short timeout (``slow_at``), and is asked once more if ``lk`` wants it."""
        # When the short timeout is the hard one, the query is never slow: it just fails.
        self.rpc.rearm_short(p, slow_at)
        if not lk.should_resend(cand):
            return
        qtype, key = QUERY_OF_KIND[lk.kind]
        args: dict[str, Any] = {key: lk.target}
        if self._asks_both(lk):
            args["want"] = self._want_both
        resent = self.rpc.send(
            qtype, cand.addr, cand.id, now, self._owners[lk.id],
            short_timeout=slow_at - now, **args,
        )
        if resent is not None:
            lk.mark_resent(cand)
            self.outbox.emit(
                ev.LookupQuerySent(
                    lk.id, cand.id, cand.addr, cand.referrer, cand.depth, now, QueryRole.RESEND
                )
            )

    def _on_probe_response(self, lk: Lookup, r: Response, now: float) -> None:
        """The neighbourhood probe's answer: only its contacts matter."""
        if lk.finished:
            return
        own = self.node_id
        mine = r.nodes if self.family == 4 else r.nodes6
        cand = lk.candidate_by_id(r.sender_id)
        depth = cand.depth + 1 if cand is not None else 1
        lk.add_nodes([n for n in mine if n.id != own and self._addr_ok(n.addr)], r.sender_id,
                     depth)
        self.step(lk, now)

    # --- finishing ---------------------------------------------------------------------------
    def _finish(self, lk: Lookup, now: float, cancelled: bool = False) -> None:
        phase = self._phases.get(lk.id)
        if phase is not None:
            # Cancelled during its second phase: the lookup phase already reported.
            phase.finish(now, cancelled=True)
            return
        lk.finished = True
        lk.finished_at = now
        counters = self.rpc.counters
        counters.lookups_finished += 1
        counters.lookups_cancelled += cancelled
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
                self.family,
            )
        )
        then = self._then.pop(lk.id, None)
        self._on_response_hooks.pop(lk.id, None)
        announce = self._announces.pop(lk.id, None)
        if cancelled and announce is not None:
            # Cancelled before its second phase: the announce still ends with its own event,
            # so whoever waits for it is never left waiting.
            self.outbox.emit(
                ev.AnnounceFinished(lk.id, lk.target, announce[0], (), (), now, cancelled=True)
            )
        if then is not None and not cancelled:
            # The lookup stays registered (it counts toward max_lookups, and can be cancelled)
            # until its phase reports its end through _phase_done.
            lid = lk.id
            self._phases[lid] = _Starting(lid)
            phase = then(lk, now, self._phase_done)
            if lid in self._phases:  # the phase did not end while it started
                if phase is None:
                    self._forget(lid)
                else:
                    self._phases[lid] = phase
            return
        hook = self._hooks.pop(lk.id, None)
        self._forget(lk.id)
        if hook is not None:
            hook(lk, now, cancelled)

    def _start_announce(
        self,
        announce: tuple[int, bool] | tuple[int, bool, bool | None],
        lk: Lookup,
        now: float,
        done: Callable[[TransactionOwner], None],
    ) -> Phase:
        port, implied = announce[0], announce[1]
        seed = announce[2] if len(announce) > 2 else None
        round_ = AnnounceRound(
            lk.id, lk.target, port, implied, emit=self.outbox.emit, on_done=done, seed=seed
        )
        holders = [c for c in lk.closest() if c.token is not None][: self.settings.k]
        round_.start(holders, self.rpc.send, now)
        return round_

    def _phase_done(self, phase: TransactionOwner) -> None:
        self.rpc.cancel(phase)
        lookup_id = getattr(phase, "lookup_id", None)
        if isinstance(lookup_id, int):
            self._forget(lookup_id)

    def _forget(self, lookup_id: int) -> None:
        self.lookups.pop(lookup_id, None)
        self._announces.pop(lookup_id, None)
        self._owners.pop(lookup_id, None)
        self._phases.pop(lookup_id, None)
        self._then.pop(lookup_id, None)
        self._hooks.pop(lookup_id, None)
        self._on_response_hooks.pop(lookup_id, None)


class _Starting:
    """Stands for a phase while its starter runs (so a cancel meanwhile is harmless)."""

    def __init__(self, lookup_id: int) -> None:
        self.lookup_id = lookup_id

    def finish(self, now: float, *, cancelled: bool = False) -> None:
        pass
