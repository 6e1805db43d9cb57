"""CrawlRecorder: what a running BEP 51 crawl has found, for the Activity view and the CLI.

The session hands it every ``SamplesReceived`` of its crawl. It writes them to the sample
store (SQLite, committed at most once a second: a busy crawl must not fsync per reply) and
keeps live figures in memory: replies, samples and new info-hashes per minute over the last
hour, the nodes that speak BEP 51 and those that do not, and distinct info-hashes seen.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dhtviewer.dht import events as ev
from dhtviewer.net.sample_store import SampleStore

__all__ = ["CrawlFigures", "CrawlRecorder"]

_MINUTES_KEPT = 60
_COMMIT_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class CrawlFigures:
    """A crawl so far. ``per_minute``: (minute start as wall time, samples, new info-hashes),
    oldest first. ``rate``: the configured query rate (queries/s)."""

    started_at: float
    elapsed: float
    replies: int
    samples: int
    distinct: int
    supporting: int
    without: int
    failed: int
    rate: float
    per_minute: tuple[tuple[float, int, int], ...]

    @property
    def samples_per_minute(self) -> float:
        return self.samples / (self.elapsed / 60.0) if self.elapsed > 0 else 0.0


class CrawlRecorder:
    def __init__(
        self,
        op_id: int,
        store: SampleStore | None,
        rate: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: wall-clock seconds (the store outlives the process)."""
        self.op_id = op_id
        self.store = store
        self.rate = rate
        self._clock = clock
        self.started_at = clock()
        self.finished_at: float | None = None
        self.replies = self.samples = self.failed = 0
        self._seen: set[bytes] = set()
        self._supporting: set[bytes] = set()
        self._without: set[tuple[str, int]] = set()
        self._minutes: deque[list[float]] = deque(maxlen=_MINUTES_KEPT)
        self._last_commit = self.started_at
        self.last: ev.SamplesReceived | None = None

    def record(self, e: ev.SamplesReceived) -> int:
        """One answer of the crawl; returns how many of its samples were new to this crawl."""
        now = self._clock()
        self.last = e
        if e.error is not None:
            if e.error == "timeout":
                self.failed += 1
            else:
                self._without.add(e.addr)
                if self.store is not None and e.node_id is not None:
                    self.store.record_unsupported(e.node_id, e.addr, now)
            self._maybe_commit(now)
            return 0
        self.replies += 1
        self.samples += len(e.samples)
        if e.node_id is not None:
            self._supporting.add(e.node_id)
        new = 0
        for h in e.samples:
            if h not in self._seen:
                self._seen.add(h)
                new += 1
        if self.store is not None and e.node_id is not None:
            self.store.record(e.node_id, e.addr, e.samples, e.num, e.interval, now)
        minute = now - now % 60
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append([minute, 0, 0])
        bucket = self._minutes[-1]
        bucket[1] += len(e.samples)
        bucket[2] += new
        self._maybe_commit(now)
        return new

    def _maybe_commit(self, now: float) -> None:
        if self.store is not None and now - self._last_commit >= _COMMIT_EVERY:
            self.store.commit()
            self._last_commit = now

    def finish(self) -> None:
        if self.finished_at is None:
            self.finished_at = self._clock()
        if self.store is not None:
            self.store.commit()

    def figures(self) -> CrawlFigures:
        end = self.finished_at if self.finished_at is not None else self._clock()
        return CrawlFigures(
            self.started_at,
            max(0.0, end - self.started_at),
            self.replies,
            self.samples,
            len(self._seen),
            len(self._supporting),
            len(self._without),
            self.failed,
            self.rate,
            tuple((m, int(s), int(n)) for m, s, n in self._minutes),
        )
