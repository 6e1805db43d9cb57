"""BEP 51 on the requesting side: a crawl (``Crawl``) and a single query (``DirectSample``).

A crawl sends ``sample_infohashes`` on the schedule of its ``Sampler`` (random-target walk,
bounded rate, ``interval`` honoured) and reports every answer as one ``SamplesReceived``: the
samples with ``num`` and ``interval``, or an ``error`` for a node that does not speak BEP 51 (an
error reply, or a reply without ``num``: BEP 51 nodes always send it with ``samples``) or did
not answer. The contacts of every reply feed the walk. It wakes itself up with the node's task
scheduler when the sampler says more can be sent, and runs until ``stop`` (``CrawlFinished``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dhtviewer.dht import events as ev
from dhtviewer.dht.kinds import OwnerKind
from dhtviewer.dht.messages import Addr, NodeInfo, Response, SampleInfohashesQuery
from dhtviewer.dht.sampler import Sampler
from dhtviewer.dht.tasks import ScheduledTask, Task
from dhtviewer.dht.transactions import Pending, TransactionOwner

__all__ = ["UNKNOWN_ID", "Crawl", "DirectSample"]

UNKNOWN_ID = bytes(20)
"""Stands for the id of a seed address (a bootstrap node) until its answer tells it."""

Emit = Callable[[ev.Event], None]
SendQuery = Callable[..., Pending | None]
Schedule = Callable[[float, Task], ScheduledTask]


def _supported(r: Response) -> bool:
    return r.num is not None


class Crawl(TransactionOwner):
    kind = OwnerKind.SAMPLE

    def __init__(
        self,
        op_id: int,
        sampler: Sampler,
        *,
        send: SendQuery,
        emit: Emit,
        schedule: Schedule,
        contact_ok: Callable[[NodeInfo], bool],
    ) -> None:
        """``contact_ok(node)``: whether a contact from a reply may be crawled (address rules,
        not our own id)."""
        self.op_id = op_id
        self.sampler = sampler
        self.stopped = False
        self._send = send
        self._emit = emit
        self._schedule = schedule
        self._contact_ok = contact_ok
        self._wake: ScheduledTask | None = None
        self._wake_at: float | None = None

    @property
    def active(self) -> bool:
        return not self.stopped

    def add_contacts(self, nodes: Iterable[NodeInfo], now: float) -> None:
        self.sampler.add_contacts(n for n in nodes if self._contact_ok(n))
        self.pump(now)

    def pump(self, now: float) -> None:
        """Send what the sampler allows now, and arrange to be called when it allows more."""
        if self.stopped:
            return
        s = self.sampler
        for node, target in s.due(now):
            expected = node.id if node.id != UNKNOWN_ID else None
            p = self._send(SampleInfohashesQuery, node.addr, expected, now, self, target=target)
            if p is None:  # the node's transaction table is full: counts as failed
                s.on_failure(node.addr)
        deadline = s.next_deadline(now)
        if deadline is None or (self._wake_at is not None and self._wake_at <= deadline):
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake_at = deadline
        self._wake = self._schedule(deadline, self._woken)

    def _woken(self, now: float) -> None:
        self._wake = self._wake_at = None
        self.pump(now)

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        s = self.sampler
        contacts = [n for n in (*r.nodes, *r.nodes6) if self._contact_ok(n)]
        if _supported(r):
            s.on_reply(
                p.addr,
                r.sender_id,
                now,
                supported=True,
                returned=len(r.samples),
                num=r.num,
                interval=r.interval,
                contacts=contacts,
            )
            self._report(p.addr, r.sender_id, r.samples, r.num, r.interval, None, now)
        else:
            s.on_reply(p.addr, r.sender_id, now, supported=False, contacts=contacts)
            self._report(p.addr, r.sender_id, (), None, None, "no BEP 51 samples", now)
        self.pump(now)

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        # Alive, but not a BEP 51 node (204 method unknown, most often).
        self.sampler.on_reply(p.addr, p.node_id or b"", now, supported=False)
        self._report(p.addr, p.node_id, (), None, None, reason, now)
        self.pump(now)

    def on_slow(self, p: Pending, now: float) -> None:
        # past the short timeout: the slot goes to the next node (Sampler docstring)
        self.sampler.on_slow(p.addr)
        self.pump(now)

    def on_timeout(self, p: Pending, now: float) -> None:
        self.sampler.on_failure(p.addr)
        self._report(p.addr, p.node_id, (), None, None, "timeout", now)
        self.pump(now)

    def _report(
        self,
        addr: Addr,
        node_id: bytes | None,
        samples: tuple[bytes, ...],
        num: int | None,
        interval: int | None,
        error: str | None,
        now: float,
    ) -> None:
        event = ev.SamplesReceived(self.op_id, node_id, addr, samples, num, interval, error, now)
        self._emit(event)

    def stop(self, now: float) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        stats = self.sampler.counts.as_dict()
        stats["known"] = self.sampler.known()
        stats["pending"] = self.sampler.pending()
        self._emit(ev.CrawlFinished(self.op_id, stats, now))

    def stats(self) -> dict[str, int]:
        """Its counts (``SamplerCounts``), with known, pending, inflight and running."""
        sampler = self.sampler
        out = sampler.counts.as_dict()
        out.update(
            known=sampler.known(),
            pending=sampler.pending(),
            inflight=sampler.inflight,
            running=int(not self.stopped),
        )
        return out


class DirectSample(TransactionOwner):
    """One ``sample_infohashes`` asked through the API: ends with one ``SamplesReceived``."""

    kind = OwnerKind.SAMPLE

    def __init__(self, op_id: int, emit: Emit) -> None:
        self.op_id = op_id
        self._emit = emit

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        error = None if _supported(r) else "no BEP 51 samples in the reply"
        self._emit(
            ev.SamplesReceived(
                self.op_id, r.sender_id, p.addr, r.samples, r.num, r.interval, error, now
            )
        )

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self._emit(ev.SamplesReceived(self.op_id, p.node_id, p.addr, (), None, None, reason, now))

    def on_timeout(self, p: Pending, now: float) -> None:
        self._emit(
            ev.SamplesReceived(self.op_id, p.node_id, p.addr, (), None, None, "timeout", now)
        )
