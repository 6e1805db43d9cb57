"""CrawlControl: the BEP 51 crawl as the Activity view runs it, and what it reads back.

It starts and stops the session's crawl (``DhtSession.start_crawl``) with the sample database
(``net/sample_store.py``) it owns, and reports in two throttled streams:

- ``figures_changed``: the crawl recorder's live counts (kept in memory: cheap), once a second
  while the crawl runs (paced by the controller's throttled ``stats_changed``, the one clock of
  the window's redraws) and once when it stops;
- ``snapshot_ready``: an ``ActivitySnapshot`` read from the database: totals, the Chao2
  estimate, the most sampled info-hashes, the nodes that speak BEP 51, samples per minute.
  Those queries scan tables that grow with the crawl (hundreds of milliseconds at a few hundred
  thousand sightings), so they never run on the GUI thread: a worker thread opens the database
  read-only (WAL: it sees the last commit and never blocks the crawl's writes) and the result
  comes back as a queued signal. At most one read is in flight; the view asks for one every
  ``SNAPSHOT_EVERY`` seconds while it is visible.

The crawl ends with the node: when the controller reports "stopped", the database is closed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from dhtviewer.dht.population import PopulationEstimate, chao2
from dhtviewer.net.crawl import CrawlFigures, CrawlRecorder
from dhtviewer.net.sample_store import (
    SampledInfohash,
    SamplerNode,
    SampleStore,
    SampleTotals,
)
from dhtviewer.ui.controller import STOPPED, STOPPING, Controller

__all__ = ["FIGURES_EVERY_MS", "SNAPSHOT_EVERY", "ActivitySnapshot", "CrawlControl",
           "read_snapshot"]

log = logging.getLogger(__name__)

FIGURES_EVERY_MS = 1000
SNAPSHOT_EVERY = 3.0
TOP_LIMIT = 100
NODES_LIMIT = 200
PLOT_MINUTES = 60


@dataclass(frozen=True, slots=True)
class ActivitySnapshot:
    """What the sample database holds. ``estimate`` covers the sightings since
    ``estimate_since`` (the current crawl's start; None: all of them). ``per_minute``: (minute
    start, samples, new info-hashes) over the last hour. ``read_seconds``: how long the read
    took in the worker thread."""

    totals: SampleTotals
    estimate: PopulationEstimate
    estimate_since: float | None
    top: list[SampledInfohash]
    nodes: list[SamplerNode]
    per_minute: list[tuple[float, int, int]]
    read_seconds: float
    at: float


EMPTY = ActivitySnapshot(SampleTotals(0, 0, 0, 0, 0), chao2(0, 0, 0, 0), None, [], [], [], 0.0,
                         0.0)


def read_snapshot(path: Path, estimate_since: float | None, now: float,
                  top: int = TOP_LIMIT, nodes: int = NODES_LIMIT) -> ActivitySnapshot:
    """Everything the Activity view shows from the database at ``path`` (opened read-only;
    ``EMPTY`` when there is none yet). Runs in any thread."""
    started = time.perf_counter()
    try:
        store = SampleStore(path, readonly=True)
    except sqlite3.OperationalError:
        return EMPTY
    try:
        snap = ActivitySnapshot(
            store.totals(),
            store.estimate(estimate_since),
            estimate_since,
            store.top(top),
            store.nodes(nodes),
            store.per_minute(now - PLOT_MINUTES * 60),
            0.0,
            now,
        )
    except sqlite3.OperationalError:  # a database the crawl has not initialised yet
        return EMPTY
    finally:
        store.close()
    return ActivitySnapshot(snap.totals, snap.estimate, snap.estimate_since, snap.top,
                            snap.nodes, snap.per_minute, time.perf_counter() - started, now)


class CrawlControl(QObject):
    figures_changed = Signal(object)
    """CrawlFigures of the running (or just stopped) crawl."""
    snapshot_ready = Signal(object)
    """An ActivitySnapshot, delivered on the GUI thread."""
    running_changed = Signal(bool)
    exported = Signal(str, int, str)
    """(path, rows, error): a CSV export finished (``error`` empty when it worked)."""

    def __init__(self, controller: Controller, db_path: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.db_path = db_path
        self.store: SampleStore | None = None
        self.recorder: CrawlRecorder | None = None
        self.started_at: float | None = None
        """Wall time the current (or last) crawl of this run started: the estimate's window."""
        self.reads = 0
        self.last_read_seconds = 0.0
        self._executor: ThreadPoolExecutor | None = None
        self._reading = False
        self._lock = threading.Lock()
        self._last_tick = -1e9
        controller.state_changed.connect(self._state_changed)
        controller.stats_changed.connect(self._stats_changed)

    @property
    def running(self) -> bool:
        return self.recorder is not None

    # --- crawl ----------------------------------------------------------------------------------
    def start(self, rate: float) -> str | None:
        """Start crawling at ``rate`` queries/s; None if it started, else why not."""
        session = self.controller.session
        if session is None or not self.controller.running:
            return "The node is not running: start it in the Network panel."
        if self.recorder is not None:
            return "A crawl is already running."
        if not rate > 0:
            return f"The rate must be above 0 queries/s, got {rate:g}."
        try:
            store = SampleStore(self.db_path)
        except (OSError, sqlite3.Error) as err:
            return f"Cannot open the sample database {self.db_path}: {err}"
        try:
            recorder = session.start_crawl(store, rate=rate)
        except RuntimeError as err:
            store.close()
            return f"Cannot crawl: {err}"
        self.store, self.recorder = store, recorder
        self.started_at = recorder.started_at
        log.info("BEP 51 crawl started at %g queries/s, samples kept in %s", rate, self.db_path)
        self.running_changed.emit(True)
        self._tick()
        return None

    def stop(self) -> None:
        """Stop the crawl (its last figures and a snapshot follow); nothing if none runs."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        session = self.controller.session
        if session is not None and session.crawl is recorder:
            session.stop_crawl()
        recorder.finish()
        self._close_store()
        f = recorder.figures()
        log.info("BEP 51 crawl stopped after %.0f s: %d replies from %d BEP 51 nodes, %d "
                 "samples, %d distinct info-hashes", f.elapsed, f.replies, f.supporting,
                 f.samples, f.distinct)
        self.figures_changed.emit(f)
        self.running_changed.emit(False)
        self.request_snapshot()

    def figures(self) -> CrawlFigures | None:
        return self.recorder.figures() if self.recorder is not None else None

    def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.close()

    def _stats_changed(self, stats: dict[str, float]) -> None:
        now = stats.get("now", 0.0)
        if self.recorder is not None and now - self._last_tick >= FIGURES_EVERY_MS / 1000 - 0.05:
            self._last_tick = now
            self._tick()

    def _tick(self) -> None:
        if self.recorder is not None:
            if self.store is not None:
                # the recorder commits as replies come; the last ones wait for this (a reader
                # sees only what is committed)
                self.store.commit()
            self.figures_changed.emit(self.recorder.figures())

    def _state_changed(self, state: str, _detail: str) -> None:
        if state in (STOPPED, STOPPING) and self.recorder is not None:
            # the session stops its crawl itself; what is left is ours to close
            self.stop()

    # --- reading --------------------------------------------------------------------------------
    def request_snapshot(self) -> bool:
        """Read the database in the worker thread (``snapshot_ready`` follows). False when a
        read is already under way."""
        with self._lock:
            if self._reading:
                return False
            self._reading = True
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="activity-read")
        since = self.started_at
        self._executor.submit(self._read, self.db_path, since, time.time())
        return True

    def _read(self, path: Path, since: float | None, now: float) -> None:
        # worker thread: only the read and the (queued) signal
        try:
            snap = read_snapshot(path, since, now)
        except Exception:
            log.exception("reading the sample database %s failed", path)
            snap = None
        with self._lock:
            self._reading = False
        if snap is not None:
            self.snapshot_ready.emit(snap)

    def export_csv(self, dest: Path) -> None:
        """Write every sampled info-hash to ``dest`` as CSV in the worker thread;
        ``exported`` follows."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="activity-read")
        self._executor.submit(self._export, self.db_path, dest)

    def _export(self, path: Path, dest: Path) -> None:
        try:
            store = SampleStore(path, readonly=True)
        except sqlite3.OperationalError:
            self.exported.emit(str(dest), 0, "no samples yet: run a crawl first")
            return
        try:
            rows = store.export_csv(dest)
        except (OSError, sqlite3.Error) as err:
            self.exported.emit(str(dest), 0, str(err))
            return
        finally:
            store.close()
        self.exported.emit(str(dest), rows, "")

    def shutdown(self) -> None:
        """Stop the crawl and the worker (window closing)."""
        self.stop()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
