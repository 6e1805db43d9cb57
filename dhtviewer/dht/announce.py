"""AnnounceRound: the second phase of an announce: announce_peer to the closest token holders.

When an announce's get_peers lookup has settled, the K closest nodes that answered with a write
token are each sent ``announce_peer`` (with their own token). The round ends, with one
``AnnounceFinished`` event, when every one of them has answered (``stored_at``), refused or
timed out (``failed``), or when it is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dhtviewer.dht import events as ev
from dhtviewer.dht.kinds import OwnerKind
from dhtviewer.dht.lookup import Candidate
from dhtviewer.dht.messages import Addr, AnnouncePeerQuery, Response
from dhtviewer.dht.transactions import Pending, TransactionOwner

SendQuery = Callable[..., Pending | None]


class AnnounceRound(TransactionOwner):
    kind = OwnerKind.ANNOUNCE

    def __init__(
        self,
        lookup_id: int,
        info_hash: bytes,
        port: int,
        implied_port: bool,
        *,
        emit: Callable[[ev.Event], None],
        on_done: Callable[[AnnounceRound], None],
        seed: bool | None = None,
    ) -> None:
        """``port``: the TCP port announced (with ``implied_port`` the receiver uses our UDP
        source port instead). ``on_done(round)`` runs once, after ``AnnounceFinished``.
        ``seed``: BEP 33 ``seed`` flag (None: not sent)."""
        self.seed = seed
        self.lookup_id = lookup_id
        self.info_hash = info_hash
        self.port = port
        self.implied_port = implied_port
        self.pending: set[Addr] = set()
        self.stored_at: list[Addr] = []
        self.failed: list[Addr] = []
        self.done = False
        self._emit = emit
        self._on_done = on_done

    @property
    def active(self) -> bool:
        return not self.done

    def start(self, holders: Sequence[Candidate], send: SendQuery, now: float) -> None:
        """Send announce_peer to ``holders`` (candidates with a token) through ``send`` (the
        signature of ``Rpc.send``)."""
        for c in holders:
            assert c.token is not None
            p = send(
                AnnouncePeerQuery,
                c.addr,
                c.id,
                now,
                self,
                info_hash=self.info_hash,
                port=max(self.port, 1) if self.implied_port else self.port,
                token=c.token,
                implied_port=self.implied_port,
                seed=self.seed,
            )
            if p is not None:
                self.pending.add(c.addr)
            else:
                self.failed.append(c.addr)
        if not self.pending:
            self.finish(now)

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        self._answered(p.addr, True, now)

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self._answered(p.addr, False, now)

    def on_timeout(self, p: Pending, now: float) -> None:
        self._answered(p.addr, False, now)

    def _answered(self, addr: Addr, ok: bool, now: float) -> None:
        if self.done or addr not in self.pending:
            return
        self.pending.discard(addr)
        (self.stored_at if ok else self.failed).append(addr)
        if not self.pending:
            self.finish(now)

    def finish(self, now: float, *, cancelled: bool = False) -> None:
        """End the round (at once when ``cancelled``: unanswered announces count as failed)."""
        if self.done:
            return
        self.done = True
        if cancelled:
            self.failed.extend(sorted(self.pending))
            self.pending.clear()
        self._emit(
            ev.AnnounceFinished(
                self.lookup_id,
                self.info_hash,
                self.port,
                tuple(self.stored_at),
                tuple(self.failed),
                now,
                cancelled=cancelled,
            )
        )
        self._on_done(self)
