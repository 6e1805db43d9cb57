"""BEP 44 on the requesting side: the ``get`` lookup and the ``put`` round.

A get is an iterative ``get`` lookup toward the target (``LookupKind.GET_ITEM``): every answer
that carries an item is verified (``ItemCollector``) and reported (``ItemFound`` or
``ItemRejected`` with the reason); an immutable item ends the lookup at its first valid copy
(its value cannot change), a mutable one needs the whole lookup, to find the newest ``seq``.
It ends with ``LookupFinished`` then ``ItemGetFinished``.

A put is the same lookup (``LookupKind.PUT_ITEM``), which collects the write tokens and the
newest ``seq`` already stored, then a ``PutRound``: ``put`` to the K closest nodes that gave a
token, and one ``ItemPutFinished`` saying where it was stored and why it was not elsewhere. A
mutable item is signed only then, when its ``seq`` is known: the one asked for, else the
newest found plus one (the same seq when the newest already holds the same value, which makes
the put a refresh). ``cas`` is sent to the nodes that returned an item (the seq each returned),
never to the others (BEP 44).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dhtviewer.dht import events as ev
from dhtviewer.dht.item_collector import ItemCollector
from dhtviewer.dht.items import Item, check_salt, check_seq, encode_value, mutable_target
from dhtviewer.dht.items import public_key_of as _public_key_of
from dhtviewer.dht.kinds import LookupKind, OwnerKind
from dhtviewer.dht.lookup import Candidate, Lookup
from dhtviewer.dht.lookups import LookupManager
from dhtviewer.dht.messages import Addr, PutQuery, Response
from dhtviewer.dht.transactions import Pending, TransactionOwner

__all__ = ["GetItemState", "PutRequest", "PutRound", "start_get", "start_put"]

Emit = Callable[[ev.Event], None]
SendQuery = Callable[..., Pending | None]


@dataclass(frozen=True, slots=True)
class PutRequest:
    """What to put. Immutable: ``value`` (any bencodable) only. Mutable: ``seed`` (the 32-byte
    ed25519 private seed), optional ``salt``, ``seq`` (None: the newest found + 1)."""

    value: object
    seed: bytes | None = None
    salt: bytes = b""
    seq: int | None = None

    def __post_init__(self) -> None:
        # Checked at once, so a bad request fails at the API call and not in the put round.
        encode_value(self.value)
        if self.seed is None:
            if self.salt or self.seq is not None:
                raise ValueError("salt and seq are for mutable items (give a key seed)")
        else:
            _public_key_of(self.seed)
            check_salt(self.salt)
            if self.seq is not None:
                check_seq(self.seq)

    @property
    def raw_value(self) -> bytes:
        return encode_value(self.value)

    @property
    def public_key(self) -> bytes | None:
        return None if self.seed is None else _public_key_of(self.seed)

    @property
    def target(self) -> bytes:
        if self.seed is None:
            return Item(self.raw_value).target
        return mutable_target(_public_key_of(self.seed), self.salt)


class GetItemState:
    """What a get (or the lookup of a put) collects; its ``on_response`` is the lookup's
    ``ResponseHook``."""

    def __init__(self, target: bytes, salt: bytes, emit: Emit, *, stop_at_first: bool) -> None:
        self.collector = ItemCollector(target, salt)
        self.seqs: dict[Addr, int] = {}
        """The seq each node returned a valid mutable item with (for ``cas``)."""
        self.stop_at_first = stop_at_first
        self._emit = emit

    def on_response(self, lk: Lookup, cand: Candidate, r: Response, now: float) -> bool:
        c = self.collector
        before = c.rejected
        item = c.offer(r.sender_id, cand.addr, r)
        if item is not None:
            if item.mutable:
                self.seqs[cand.addr] = item.seq
            self._emit(
                ev.ItemFound(
                    lk.id,
                    r.sender_id,
                    cand.addr,
                    item.value,
                    item.public_key,
                    item.seq if item.mutable else None,
                    now,
                )
            )
            return self.stop_at_first and not item.mutable
        if c.rejected > before:
            reason = c.rejections[-1].reason if len(c.rejections) == c.rejected else "rejected"
            self._emit(ev.ItemRejected(lk.id, r.sender_id, cand.addr, reason, now))
        return False

    def finished(self, lk: Lookup, now: float, cancelled: bool) -> None:
        """The get's ``FinishHook``: one ``ItemGetFinished``."""
        c = self.collector
        best = c.best
        self._emit(
            ev.ItemGetFinished(
                lk.id,
                c.target,
                best.value if best is not None else None,
                best.public_key if best is not None else None,
                best.seq if best is not None and best.mutable else None,
                best.signature if best is not None and best.mutable else None,
                tuple(c.holders),
                c.rejected,
                tuple(dict.fromkeys(r.reason for r in c.rejections)),
                cancelled,
                now,
            )
        )


class PutRound(TransactionOwner):
    """``put`` to the closest token holders of a finished lookup; one ``ItemPutFinished``."""

    kind = OwnerKind.PUT

    def __init__(
        self,
        lookup_id: int,
        request: PutRequest,
        found: GetItemState,
        *,
        emit: Emit,
        on_done: Callable[[TransactionOwner], None],
    ) -> None:
        self.lookup_id = lookup_id
        self.request = request
        self.found = found
        self.item = self._item()
        self.pending: set[Addr] = set()
        self.stored_at: list[Addr] = []
        self.failed: list[tuple[Addr, str]] = []
        self.done = False
        self._emit = emit
        self._on_done = on_done

    def _item(self) -> Item:
        req = self.request
        if req.seed is None:
            return Item(req.raw_value)
        seq = req.seq
        if seq is None:
            best = self.found.collector.best
            if best is None:
                seq = 1
            elif best.value == req.raw_value:
                seq = best.seq  # the same item: a refresh
            else:
                seq = best.seq + 1
            check_seq(seq)
        return Item.signed(req.seed, req.value, seq, req.salt)

    @property
    def active(self) -> bool:
        return not self.done

    def start(self, holders: Sequence[Candidate], send: SendQuery, now: float) -> None:
        it = self.item
        for c in holders:
            assert c.token is not None
            args: dict[str, object] = {"token": c.token, "v": it.value}
            if it.mutable:
                args.update(k=it.public_key, seq=it.seq, sig=it.signature, salt=it.salt)
                cas = self.found.seqs.get(c.addr)
                if cas is not None:
                    args["cas"] = cas
            p = send(PutQuery, c.addr, c.id, now, self, **args)
            if p is not None:
                self.pending.add(c.addr)
            else:
                self.failed.append((c.addr, "not sent: too many queries in flight"))
        if not self.pending:
            self.finish(now)

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        self._answered(p.addr, None, now)

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self._answered(p.addr, reason, now)

    def on_timeout(self, p: Pending, now: float) -> None:
        self._answered(p.addr, "timeout", now)

    def _answered(self, addr: Addr, error: str | None, now: float) -> None:
        if self.done or addr not in self.pending:
            return
        self.pending.discard(addr)
        if error is None:
            self.stored_at.append(addr)
        else:
            self.failed.append((addr, error))
        if not self.pending:
            self.finish(now)

    def finish(self, now: float, *, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if cancelled:
            self.failed.extend((a, "cancelled") for a in sorted(self.pending))
            self.pending.clear()
        it = self.item
        self._emit(
            ev.ItemPutFinished(
                self.lookup_id,
                it.target,
                it.public_key,
                it.seq if it.mutable else None,
                tuple(self.stored_at),
                tuple(self.failed),
                now,
            )
        )
        self._on_done(self)


def start_get(
    lookups: LookupManager,
    target: bytes,
    now: float,
    *,
    salt: bytes,
    seeds: Sequence[Addr],
    emit: Emit,
) -> int:
    """A get lookup (``LookupFinished``, then ``ItemGetFinished``); returns its id."""
    check_salt(salt)
    state = GetItemState(target, salt, emit, stop_at_first=True)
    lk = lookups.start(
        target,
        LookupKind.GET_ITEM,
        now,
        seeds=seeds,
        on_response=state.on_response,
        on_finished=state.finished,
    )
    return lk.id


def start_put(
    lookups: LookupManager,
    request: PutRequest,
    now: float,
    *,
    seeds: Sequence[Addr],
    emit: Emit,
    send: SendQuery,
    k: int,
) -> int:
    """A put: lookup (``LookupFinished``), then the put round (``ItemPutFinished``, also when
    cancelled in either phase); returns the lookup id."""
    state = GetItemState(request.target, request.salt, emit, stop_at_first=False)

    def then(lk: Lookup, now: float, done: Callable[[TransactionOwner], None]) -> PutRound:
        round_ = PutRound(lk.id, request, state, emit=emit, on_done=done)
        holders = [c for c in lk.closest() if c.token is not None][:k]
        round_.start(holders, send, now)
        return round_

    def cancelled(lk: Lookup, now: float, was_cancelled: bool) -> None:
        if was_cancelled:  # during the lookup: nothing was put
            target = request.target
            emit(ev.ItemPutFinished(lk.id, target, request.public_key, request.seq, (), (), now))

    lk = lookups.start(
        request.target,
        LookupKind.PUT_ITEM,
        now,
        seeds=seeds,
        on_response=state.on_response,
        then=then,
        on_finished=cancelled,
    )
    return lk.id
