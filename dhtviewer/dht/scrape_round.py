"""ScrapeRound: the BEP 33 phase after a get_peers lookup: ask the K closest nodes that answered
for their Bloom filters (``get_peers`` with ``scrape=1``) and merge them (``ScrapeMerge``).

Why a phase after the lookup and not ``scrape=1`` on every query of the lookup: a node that
honours the flag may answer with the filters *instead of* peers (libtorrent does), which would
make the lookup itself find no peers. Asking the K closest again costs K queries and gives both
answers in full. It ends with one ``ScrapeFinished``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dhtviewer.dht import events as ev
from dhtviewer.dht.kinds import OwnerKind
from dhtviewer.dht.lookup import Candidate
from dhtviewer.dht.messages import Addr, GetPeersQuery, Response
from dhtviewer.dht.scrape import ScrapeMerge
from dhtviewer.dht.transactions import Pending, TransactionOwner

__all__ = ["ScrapeRound"]

SendQuery = Callable[..., Pending | None]


class ScrapeRound(TransactionOwner):
    kind = OwnerKind.SCRAPE

    def __init__(
        self,
        lookup_id: int,
        info_hash: bytes,
        *,
        emit: Callable[[ev.Event], None],
        on_done: Callable[[TransactionOwner], None],
    ) -> None:
        self.lookup_id = lookup_id
        self.info_hash = info_hash
        self.merge = ScrapeMerge()
        self.pending: set[Addr] = set()
        self.done = False
        self._emit = emit
        self._on_done = on_done

    @property
    def active(self) -> bool:
        return not self.done

    def start(self, closest: Sequence[Candidate], send: SendQuery, now: float) -> None:
        for c in closest:
            p = send(
                GetPeersQuery, c.addr, c.id, now, self, info_hash=self.info_hash, scrape=True
            )
            if p is not None:
                self.pending.add(c.addr)
        if not self.pending:
            self.finish(now)

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        if p.addr in self.pending:
            self.merge.add(r.bf_seeds, r.bf_peers, r.values)
        self._answered(p.addr, now)

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self._answered(p.addr, now)

    def on_timeout(self, p: Pending, now: float) -> None:
        self._answered(p.addr, now)

    def _answered(self, addr: Addr, now: float) -> None:
        if self.done or addr not in self.pending:
            return
        self.pending.discard(addr)
        if not self.pending:
            self.finish(now)

    def finish(self, now: float, *, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        self.pending.clear()
        est = self.merge.result()
        self._emit(
            ev.ScrapeFinished(
                self.lookup_id,
                self.info_hash,
                est.seeds,
                est.downloaders,
                est.nodes,
                est.legacy,
                est.saturated,
                cancelled,
                now,
            )
        )
        self._on_done(self)
