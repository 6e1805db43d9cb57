"""The capture file's writer: the one owner of the SQLite connection that writes, and of the long
queries (filter scans, per-address statistics), run on a thread of its own.

The GUI thread hands it commands (``Write``, ``Scan``, ``Live``, ``Addresses``, ...) through a
queue and reads the results back from another one on its next tick; nothing here touches Qt.
A display filter runs here whole: over the history (``Scan``) and over each batch as it is
written (``Live``), so the GUI thread does no per-packet filtering. Writes are
batches (one transaction per controller tick, never one per packet) applied strictly in order; a
failed batch (disk full) is retried, with the ones after it, until it goes through. Between two
chunks of a scan the queue is drained, so a long filter never holds the writes back for long.
sqlite3 releases the GIL while SQLite works, so the window keeps turning meanwhile.

``inline=True`` runs every command at once in the caller's thread instead (the in-memory
fallback when no file can be created).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dhtviewer.ui.capture.filter import Filter

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS packets (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    dir TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    tid BLOB NOT NULL,
    size INTEGER NOT NULL,
    node_id BLOB,
    data BLOB NOT NULL,
    note TEXT NOT NULL,
    peer INTEGER,
    rtt REAL
)
"""
COLUMNS = "seq, at, dir, ip, port, type, method, tid, size, node_id, data, note, peer, rtt"
INSERT = f"INSERT OR REPLACE INTO packets ({COLUMNS}) VALUES ({', '.join('?' * 14)})"
Row = tuple[int, float, str, str, int, str, str, bytes, int, bytes | None, bytes, str,
            int | None, float | None]

SCAN_CHUNK = 20_000
"""Rows a filter scan reads between two looks at the command queue."""
RETRY_SECONDS = 1.0
_NOTHING = object()


# --- commands --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Write:
    """Insert ``rows``, pair rows already written (``updates``: (peer, rtt, seq)), and forget
    every row below ``delete_below`` (the ring's bound)."""

    batch: int
    rows: list[Row]
    updates: list[tuple[int, float | None, int]]
    delete_below: int


@dataclass(frozen=True, slots=True)
class Scan:
    """Find the rows of [lo, hi) that match ``where``, newest chunk first."""

    job: int
    where: Filter
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Live:
    """Match ``where`` on every row from ``from_seq`` on, those written already and each batch
    written from now on; results are LiveChunks of ``job``. ``where`` None: stop."""

    job: int
    where: Filter | None
    from_seq: int


@dataclass(frozen=True, slots=True)
class Addresses:
    """Packets grouped by address, over the rows from ``lo`` that match ``where``."""

    job: int
    where: Filter | None
    lo: int
    limit: int


@dataclass(frozen=True, slots=True)
class Cancel:
    job: int


@dataclass(slots=True)
class Sync:
    """Set ``done`` once everything queued before it is written and no job is left."""

    done: threading.Event = field(default_factory=threading.Event)


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Committed:
    """A batch is on disk. ``disk_bytes``: the file and its write-ahead log; ``used_bytes``: the
    pages holding rows (what the ring's rows really take)."""

    batch: int
    disk_bytes: int
    used_bytes: int


@dataclass(frozen=True, slots=True)
class WriteFailed:
    message: str


@dataclass(frozen=True, slots=True)
class ScanChunk:
    """The matching seqs (ascending) of [lo, hi); ``done`` on the last chunk of the job."""

    job: int
    lo: int
    hi: int
    seqs: array[int]
    done: bool


@dataclass(frozen=True, slots=True)
class LiveChunk:
    """The seqs (ascending) of [lo, hi) matching a Live filter, as the rows were written."""

    job: int
    lo: int
    hi: int
    seqs: array[int]


@dataclass(frozen=True, slots=True)
class AddressStats:
    ip: str
    port: int
    packets: int
    packets_in: int
    packets_out: int
    queries_in: int
    queries_out: int
    responses: int
    errors: int
    malformed: int
    unanswered: int
    bytes_in: int
    bytes_out: int
    rtt: float | None
    """Mean seconds from our query to its reply, over our answered queries."""
    first: float
    last: float
    node_id: bytes | None
    ids: int
    """Distinct node ids seen from this address (more than 1: it changed its id)."""


@dataclass(frozen=True, slots=True)
class AddressesResult:
    job: int
    rows: list[AddressStats]
    truncated: bool


Result = Committed | WriteFailed | ScanChunk | LiveChunk | AddressesResult

_ADDRESSES_SQL = """
SELECT ip, port, count(*), sum(dir = 'in'), sum(dir = 'out'),
       sum(type = 'query' AND dir = 'in'), sum(type = 'query' AND dir = 'out'),
       sum(type = 'response'), sum(type = 'error'), sum(type = 'malformed'),
       sum(type = 'query' AND peer IS NULL),
       total(CASE WHEN dir = 'in' THEN size END), total(CASE WHEN dir = 'out' THEN size END),
       avg(CASE WHEN type = 'query' THEN rtt END), min(at), max(at), max(node_id),
       count(DISTINCT node_id)
FROM packets WHERE seq >= ? AND ({where})
GROUP BY ip, port ORDER BY count(*) DESC, ip, port LIMIT ?
"""


def connect(path: Path | str, *, readonly: bool = False,
            same_thread: bool = True) -> sqlite3.Connection:
    """A connection to a capture file (or ":memory:") with the schema in place."""
    conn = sqlite3.connect(str(path), check_same_thread=same_thread, isolation_level=None)
    if readonly:
        conn.execute("PRAGMA query_only = 1")
        return conn
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        # Scratch data: a power cut may lose the capture, never the machine's time in fsync.
        conn.execute("PRAGMA synchronous = OFF")
        # A small write-ahead log: it counts against the capture's disk bound too.
        conn.execute("PRAGMA wal_autocheckpoint = 256")
        conn.execute("PRAGMA journal_size_limit = 1048576")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(SCHEMA)
    return conn


class CaptureWriter:
    """See the module docstring. ``results`` is the queue the GUI thread reads."""

    def __init__(self, path: Path | str, *, inline: bool = False) -> None:
        self.path = path
        self.inline = inline
        self.results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._jobs: dict[str, tuple[int, Iterator[None]]] = {}
        self._retry: list[Write] = []
        self._syncs: list[Sync] = []
        self._deleted_below = 0
        self._written_end = 1  # one past the newest row written
        self._live: Live | None = None
        self.conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        if inline:
            self.conn = connect(path)
        else:
            # Opened here so that an unusable file fails the constructor, not the thread.
            connect(path).close()
            self._thread = threading.Thread(target=self._run, name="capture writer",
                                            daemon=True)
            self._thread.start()

    # --- GUI side ------------------------------------------------------------------------------
    def submit(self, command: object) -> None:
        if self.inline:
            if self._retry:
                self._flush_retry()
            self._handle(command)
            self._finish_jobs()
        else:
            self._inbox.put(command)

    def sync(self, timeout: float) -> bool:
        """Wait until everything submitted so far is done; False on timeout."""
        s = Sync()
        self.submit(s)
        return s.done.wait(timeout) if not self.inline else True

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(timeout)
            self._thread = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # --- writer side ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.conn = connect(self.path)
        except sqlite3.Error as err:  # the file vanished between the check and now
            self.results.put(WriteFailed(f"cannot open the capture file: {err}"))
            return
        retry_at = 0.0
        try:
            while True:
                timeout: float | None = None
                if self._jobs:
                    timeout = 0.0
                elif self._retry:
                    timeout = max(0.0, retry_at - time.monotonic())
                try:
                    command = self._inbox.get(timeout=timeout)
                except queue.Empty:
                    command = _NOTHING
                if command is None:
                    return
                if command is not _NOTHING:
                    self._handle(command)
                    if not self._inbox.empty():
                        continue  # drain the queue before the next chunk of a job
                if self._retry and time.monotonic() >= retry_at:
                    self._flush_retry()
                    retry_at = time.monotonic() + RETRY_SECONDS
                if self._jobs:
                    self._step_jobs()
                if not self._jobs and not self._retry:
                    self._release_syncs()
        except Exception:  # never seen; the GUI must learn the capture stopped, not hang
            log.exception("the capture writer stopped")
            self.results.put(WriteFailed("the capture writer stopped (see the log)"))
        finally:
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            self._release_syncs()

    def _handle(self, command: object) -> None:
        if isinstance(command, Write):
            if self._retry:
                self._retry.append(command)
            else:
                self._write(command)
        elif isinstance(command, Live):
            self._live = command if command.where is not None else None
            if self._live is not None:  # the rows already written since from_seq
                self._match_live(command.from_seq, self._written_end)
        elif isinstance(command, Scan):
            self._jobs["scan"] = (command.job, self._scan(command))
        elif isinstance(command, Addresses):
            self._jobs["addresses"] = (command.job, self._addresses(command))
        elif isinstance(command, Cancel):
            for kind, (job, _) in list(self._jobs.items()):
                if job == command.job:
                    del self._jobs[kind]
        elif isinstance(command, Sync):
            self._syncs.append(command)
            if not self._jobs and not self._retry:
                self._release_syncs()

    def _release_syncs(self) -> None:
        syncs, self._syncs = self._syncs, []
        for s in syncs:
            s.done.set()

    def _finish_jobs(self) -> None:
        while self._jobs:
            self._step_jobs()
        self._release_syncs()

    def _write(self, w: Write) -> bool:
        conn = self.conn
        assert conn is not None
        try:
            conn.execute("BEGIN")
            if w.rows:
                conn.executemany(INSERT, w.rows)
            if w.updates:
                conn.executemany("UPDATE packets SET peer = ?, rtt = ? WHERE seq = ?", w.updates)
            if w.delete_below > self._deleted_below:
                conn.execute("DELETE FROM packets WHERE seq < ?", (w.delete_below,))
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if not self._retry:
                log.warning("cannot write the packet capture: %s (retrying)", err)
                self.results.put(WriteFailed(f"cannot write the capture file: {err}"))
            if not self._retry or self._retry[0] is not w:
                self._retry.insert(0, w)
            return False
        self._deleted_below = max(self._deleted_below, w.delete_below)
        if w.rows:
            self._written_end = max(self._written_end, w.rows[-1][0] + 1)
            self._match_live(w.rows[0][0], w.rows[-1][0] + 1)
        pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                             for p in ("page_count", "freelist_count", "page_size"))
        self.results.put(Committed(w.batch, self._disk_bytes(), (pages - free) * size))
        return True

    def _match_live(self, lo: int, hi: int) -> None:
        live = self._live
        if live is None or live.where is None:
            return
        lo = max(lo, live.from_seq, self._deleted_below)
        if lo >= hi:
            return
        conn = self.conn
        assert conn is not None
        try:
            rows = conn.execute(
                f"SELECT seq FROM packets WHERE seq >= ? AND seq < ? AND ({live.where.sql})",
                (lo, hi, *live.where.params),
            ).fetchall()
        except sqlite3.Error as err:
            log.warning("packet capture filter failed: %s", err)
            return
        if rows:
            self.results.put(LiveChunk(live.job, lo, hi, array("q", [r[0] for r in rows])))

    def _flush_retry(self) -> None:
        while self._retry:
            w = self._retry[0]
            if not self._write(w):
                return
            self._retry.pop(0)

    def _disk_bytes(self) -> int:
        if str(self.path) == ":memory:":
            conn = self.conn
            assert conn is not None
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            return int(pages * size)
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def _step_jobs(self) -> None:
        for kind, (_job, steps) in list(self._jobs.items()):
            try:
                next(steps)
            except StopIteration:
                del self._jobs[kind]
            except sqlite3.Error as err:
                log.warning("packet capture query failed: %s", err)
                del self._jobs[kind]

    def _scan(self, s: Scan) -> Iterator[None]:
        conn = self.conn
        assert conn is not None
        sql = f"SELECT seq FROM packets WHERE seq >= ? AND seq < ? AND ({s.where.sql})"
        hi = s.hi
        lo = max(s.lo, self._deleted_below)
        if hi <= lo:
            self.results.put(ScanChunk(s.job, lo, lo, array("q"), True))
            return
        while hi > lo:
            a = max(lo, hi - SCAN_CHUNK)
            rows = conn.execute(sql, (a, hi, *s.where.params)).fetchall()
            self.results.put(ScanChunk(s.job, a, hi, array("q", [r[0] for r in rows]), a <= lo))
            hi = a
            yield

    def _addresses(self, a: Addresses) -> Iterator[None]:
        conn = self.conn
        assert conn is not None
        where = a.where.sql if a.where is not None else "1"
        params = a.where.params if a.where is not None else ()
        rows = conn.execute(_ADDRESSES_SQL.format(where=where),
                            (a.lo, *params, a.limit + 1)).fetchall()
        stats = [AddressStats(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                              int(r[11]), int(r[12]), r[13], r[14], r[15], r[16], r[17])
                 for r in rows[: a.limit]]
        self.results.put(AddressesResult(a.job, stats, len(rows) > a.limit))
        return
        yield  # a generator, like the scans: one step
