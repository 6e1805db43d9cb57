"""Outstanding queries: transaction ids, exact-address matching, short and hard deadlines.

A response is only accepted from the exact (ip, port) we queried, with the transaction id we chose:
this is the first line of defence against spoofed replies. Each query has two deadlines: after the
*short* one it stops holding a lookup slot (the lookup may ask someone else) but can still answer;
after the *hard* one it has failed.

Every query has an *owner*, a ``TransactionOwner``: the lookup, announce round, ping or custom
exchange waiting for it. The node tells the owner what became of each of its queries (answered,
error, slow, timed out); a new kind of exchange (a custom KRPC method, a BEP 44 put) is a new
owner subclass, nothing else.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from dhtviewer.dht.kinds import OwnerKind
from dhtviewer.dht.messages import Addr, Response

_SHORT, _HARD = 0, 1


class TransactionOwner:
    """Who waits for the answers to some of our queries. Subclasses override the callbacks they
    need; each is called at most once per query, and never after ``TransactionTable.cancel``
    forgot the owner's queries. Callbacks run inside the node (``receive``/``handle_timer``):
    they may send further queries and emit events. They should not raise; one that does is
    counted (``owner_errors``) and reported (``OwnerFailed``), and the node carries on."""

    kind: ClassVar[OwnerKind] = OwnerKind.CUSTOM

    @property
    def active(self) -> bool:
        """Whether it still waits for answers (a finished lookup is not)."""
        return True

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        """``p`` was answered with ``r`` (from the address it was sent to)."""

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        """``p`` got a KRPC error, or a reply that did not decode but named ``p``'s transaction
        (from the address it was sent to): it ended at once, with nothing usable; ``reason``
        says what came back."""

    def on_slow(self, p: Pending, now: float) -> None:
        """``p`` passed its short timeout unanswered; it may still be answered."""

    def on_timeout(self, p: Pending, now: float) -> None:
        """``p`` reached its hard timeout: it has failed."""


@dataclass(slots=True)
class Pending:
    """One query in flight; ``owner`` waits for it."""

    tid: bytes
    addr: Addr
    node_id: bytes | None
    method: bytes
    sent_at: float
    short_deadline: float
    hard_deadline: float
    owner: TransactionOwner
    slow: bool = False
    extra: object = field(default=None)


class TransactionTable:
    """In-flight queries keyed by transaction id (2 random bytes).

    ``rng`` must be the node's *secrets* source: a reply is accepted only with the tid we
    chose, so an off-path attacker who could predict tids could answer for the node we asked."""

    def __init__(self, rng: random.Random, max_inflight: int) -> None:
        self._rng = rng
        self._max = min(max_inflight, 60000)  # tids are 2 bytes; keep collisions cheap to avoid
        self._pending: dict[bytes, Pending] = {}
        self._heap: list[tuple[float, int, bytes, int]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._pending.values()))

    @property
    def full(self) -> bool:
        return len(self._pending) >= self._max

    def fresh_tid(self) -> bytes:
        """An unused transaction id (not registered yet: pass it to ``new``, so a query can be
        encoded before anything is registered for it). Raises OverflowError when
        ``max_inflight`` are outstanding."""
        if self.full:
            raise OverflowError("too many queries in flight")
        while True:
            tid = self._rng.getrandbits(16).to_bytes(2, "big")
            if tid not in self._pending:
                return tid

    def new(
        self,
        addr: Addr,
        node_id: bytes | None,
        method: bytes,
        now: float,
        short_timeout: float,
        hard_timeout: float,
        owner: TransactionOwner,
        extra: object = None,
        *,
        tid: bytes | None = None,
    ) -> Pending:
        """Register a query (under ``tid`` from ``fresh_tid``, or a new one); raises
        OverflowError when ``max_inflight`` are outstanding, ValueError for a ``tid`` in use."""
        if tid is None:
            tid = self.fresh_tid()
        elif self.full:
            raise OverflowError("too many queries in flight")
        elif tid in self._pending:
            raise ValueError(f"transaction id {tid.hex()} is in use")
        short = now + min(short_timeout, hard_timeout)
        hard = now + hard_timeout
        p = Pending(tid, addr, node_id, method, now, short, hard, owner, extra=extra)
        self._pending[tid] = p
        self._seq += 1
        if short < hard:
            heapq.heappush(self._heap, (short, self._seq, tid, _SHORT))
        heapq.heappush(self._heap, (hard, self._seq, tid, _HARD))
        return p

    def match(self, tid: bytes, addr: Addr) -> tuple[Pending | None, str]:
        """The pending query this reply answers, removed from the table; or None and why not."""
        p = self._pending.get(tid)
        if p is None:
            return None, "unknown transaction id"
        if p.addr != addr:
            return None, "reply from another address than the one queried"
        del self._pending[tid]
        return p, ""

    def get(self, tid: bytes) -> Pending | None:
        """The query in flight with transaction id ``tid`` (left in the table)."""
        return self._pending.get(tid)

    def rearm_short(self, p: Pending, deadline: float) -> bool:
        """Move the short deadline of ``p`` (still in flight, not slow) to ``deadline``, so that
        its owner hears of its silence again then. False, and nothing changes, when ``p`` is no
        longer in flight or ``deadline`` is not before its hard one."""
        if self._pending.get(p.tid) is not p or deadline >= p.hard_deadline:
            return False
        p.slow = False
        p.short_deadline = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, p.tid, _SHORT))
        return True

    def cancel_owner(self, owner: TransactionOwner) -> list[Pending]:
        """Forget every query of ``owner`` (a cancelled lookup); late replies will be dropped."""
        gone = [p for p in self._pending.values() if p.owner is owner]
        for p in gone:
            del self._pending[p.tid]
        return gone

    def expire(self, now: float) -> tuple[list[Pending], list[Pending]]:
        """Queries that just passed their short deadline, and those that passed the hard one
        (removed)."""
        slow: list[Pending] = []
        failed: list[Pending] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, tid, kind = heapq.heappop(heap)
            p = self._pending.get(tid)
            if p is None:
                continue
            if kind == _HARD:
                if p.hard_deadline <= now:
                    del self._pending[tid]
                    failed.append(p)
            elif not p.slow and p.short_deadline <= now:
                p.slow = True
                slow.append(p)
        return slow, failed

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2] not in self._pending:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
