"""PacketCapture: every datagram of the packet log, in a bounded ring kept on disk.

Packets are numbered as they are captured (``seq`` 1, 2, ...). The ring keeps the rows from
``first_seq`` to ``next_seq - 1``: at most ``max_packets`` of them, and at most ``max_bytes`` of
capture file (``CaptureLimits``, a setting); the oldest go first. The ring's arithmetic lives
here, on the GUI thread, so what the view shows never waits for the disk: the newest
``memory_rows`` rows are also kept in memory (the live view reads only those), older ones are
read back from the file a page at a time, when a view scrolls to them.

The file is SQLite (``capture-<pid>-<n>.sqlite3`` in the state directory, removed when the
capture closes; files left by a process that died are removed at the next start). Its writer
runs on a thread of its own (``writer.CaptureWriter``) and takes one batch per controller tick,
never a write per packet on the GUI thread. If the writer falls behind by ``max_backlog`` rows
(a disk that stalls or is full) new packets are not captured and are counted in ``lost``, so
memory stays bounded. If no file can be created at all, the capture lives in memory, bounded by
``FALLBACK_PACKETS``, and ``error`` says why.

Filters (``filter.Filter``) run in SQLite, by the writer's thread: over the history on disk
(``start_filter``: a scan, newest first, in chunks) and over each batch as it is written.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dhtviewer.dht import events as ev
from dhtviewer.ui.capture import writer as w
from dhtviewer.ui.capture.filter import Filter
from dhtviewer.ui.capture.records import Direction, Kind, Packet, Pairer, packet_of

log = logging.getLogger(__name__)

MB = 1024 * 1024
PAGE = 256
"""Rows read back from the file at once."""
MAX_PAGES = 64
"""Pages of older rows kept in memory (the rows a view scrolled to recently)."""
CHUNK = 64
"""The byte bound is kept per chunk of this many rows (evicted whole)."""
WAL_ALLOWANCE = 1.5 * MB
"""Room left in ``max_bytes`` for the write-ahead log (the writer checkpoints it at 1 MB)."""
FALLBACK_PACKETS = 50_000
PACKETS_RANGE = (1_000, 100_000_000)
MB_RANGE = (8, 1_000_000)
"""What the user may set the limits to (the settings dialog, the stored settings)."""
_PACKET_EVENTS = (ev.MessageSent, ev.MessageReceived, ev.MalformedReceived, ev.ResponseDropped)
_FILE = re.compile(r"^capture-(\d+)-\d+\.sqlite3(-wal|-shm)?$")
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class CaptureLimits:
    """How much the capture keeps. ``max_packets`` and ``max_bytes`` (of capture file) bound the
    ring; ``memory_rows`` newest rows are also kept in memory; ``max_backlog`` rows may wait for
    the disk before new packets are dropped (counted)."""

    max_packets: int = 1_000_000
    max_bytes: int = 256 * MB
    memory_rows: int = 10_000
    max_backlog: int = 200_000

    def __post_init__(self) -> None:
        for name in ("max_packets", "max_bytes", "memory_rows", "max_backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def as_row(p: Packet) -> w.Row:
    return (p.seq, p.at, p.direction.value, p.ip, p.port, p.kind.value, p.method, p.tid, p.size,
            p.node_id, p.data, p.note, p.peer, p.rtt)


def from_row(r: Any) -> Packet:
    """The packet of a row read back from the file (``as_row``'s inverse)."""
    seq, at, d, ip, port, kind, method, tid, size, node_id, data, note, peer, rtt = r
    return Packet(seq, at, Direction(d), ip, port, Kind(kind), method, bytes(tid), size,
                  None if node_id is None else bytes(node_id), bytes(data), note, peer, rtt)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap, safe check elsewhere: leave the file alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_files(directory: Path) -> int:
    """Delete the capture files of processes that are gone; returns how many."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            m = _FILE.match(entry.name)
            if m and int(m[1]) != os.getpid() and not _pid_alive(int(m[1])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
    return removed


def _cleanup(writer: w.CaptureWriter, read: sqlite3.Connection | None, path: Path | None,
             tmpdir: Path | None) -> None:
    writer.close()
    if read is not None:
        read.close()
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{path}{suffix}")
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)


class PacketCapture:
    """See the module docstring. ``directory`` None: a temporary directory of its own."""

    def __init__(self, directory: Path | None = None,
                 limits: CaptureLimits | None = None) -> None:
        self.limits = limits or CaptureLimits()
        self.next_seq = 1
        self.first_seq = 1
        self.captured = 0
        """Packets captured since the start (or Clear), evicted ones included."""
        self.lost = 0
        """Packets not captured because the writer was ``max_backlog`` rows behind."""
        self.time_origin: float | None = None
        self.error: str | None = None
        """Why the capture file cannot be written (None while all is well)."""
        self.disk_bytes = 0
        """The capture file's size (with its write-ahead log) after the last batch."""
        self._tail: deque[Packet] = deque()
        self._committed = 1  # rows below are on disk
        self._chunks: deque[list[int]] = deque()  # [end seq (exclusive), bytes, rows]
        self._bytes = 0
        self._pairer = Pairer()
        self._pages: OrderedDict[int, dict[int, Packet]] = OrderedDict()
        self._unwritten: dict[int, tuple[int, float | None, int]] = {}
        """Pairings of rows on disk whose UPDATE is not committed: seq -> (peer, rtt, batch)."""
        self._batch = 0
        self._batch_ends: deque[tuple[int, int, int]] = deque()
        """(batch, next seq after it, estimated bytes of the ring then), until committed."""
        self._ratio = 1.0
        """The file's bytes per estimated byte, as last measured: SQLite's pages are not full,
        and large rows fill them worse."""
        self._jobs = itertools.count(1)
        self._closed = False
        self.path: Path | None = None
        tmpdir: Path | None = None
        writer: w.CaptureWriter | None = None
        for where in (directory, None):
            try:
                if where is None:
                    tmpdir = Path(tempfile.mkdtemp(prefix="dhtviewer-capture-"))
                    where = tmpdir
                where.mkdir(parents=True, exist_ok=True)
                remove_stale_files(where)
                path = where / f"capture-{os.getpid()}-{next(_counter)}.sqlite3"
                writer = w.CaptureWriter(path)
                self.path = path
                break
            except (OSError, sqlite3.Error) as err:
                log.warning("cannot create the packet capture file in %s: %s", where, err)
                self.error = f"cannot create the capture file in {where}: {err}"
                if tmpdir is not None:
                    shutil.rmtree(tmpdir, ignore_errors=True)
                    tmpdir = None
        if writer is None:
            writer = w.CaptureWriter(":memory:", inline=True)
            self.limits = replace(self.limits,
                                  max_packets=min(self.limits.max_packets, FALLBACK_PACKETS))
            self.error = (self.error or "no capture file") + (
                f"; keeping the last {self.limits.max_packets:,} packets in memory")
        else:
            self.error = None
        self._writer = writer
        read = writer.conn if writer.inline else w.connect(self.path or ":memory:",
                                                            readonly=True)
        assert read is not None
        self._read: sqlite3.Connection = read
        self._finalizer = weakref.finalize(
            self, _cleanup, writer, None if writer.inline else self._read, self.path, tmpdir
        )

    # --- state ---------------------------------------------------------------------------------
    @property
    def kept(self) -> int:
        """Packets in the ring now."""
        return self.next_seq - self.first_seq

    @property
    def in_memory_only(self) -> bool:
        return self.path is None

    def memory_rows(self) -> int:
        """Rows held in memory (the newest ones, and pages read back)."""
        return len(self._tail) + sum(len(p) for p in self._pages.values())

    def estimated_bytes(self) -> int:
        """What the ring's rows are charged against ``max_bytes``."""
        return self._bytes

    # --- capturing -----------------------------------------------------------------------------
    def add_events(self, events: Iterable[object]) -> int:
        """Capture the packet events among ``events`` (others are ignored); returns how many."""
        new: list[Packet] = []
        updates: list[tuple[int, float | None, int]] = []
        room = self.limits.max_backlog - (self.next_seq - self._committed)
        pair = self._pairer.add
        keep = self._tail.append  # at once: a reply in this batch may pair with a query in it
        for event in events:
            if not isinstance(event, _PACKET_EVENTS):
                continue
            if room <= 0:
                self.lost += 1
                continue
            p = packet_of(event, self.next_seq)
            if p is None:  # pragma: no cover - _PACKET_EVENTS are all packets
                continue
            room -= 1
            self.next_seq += 1
            query = pair(p)
            if query is not None:
                updates.append((p.seq, p.rtt, query))
                self._pair_in_memory(query, p.seq, p.rtt)
            new.append(p)
            keep(p)
        if not new:
            return 0
        if self.time_origin is None:
            self.time_origin = new[0].at
        self.captured += len(new)
        self._account(new)
        self._evict()
        for peer, rtt, seq in updates:
            if seq < self._committed:
                self._unwritten[seq] = (peer, rtt, self._batch + 1)
        self._submit([as_row(p) for p in new], updates)
        self._prune_tail()
        return len(new)

    def _pair_in_memory(self, seq: int, peer: int, rtt: float | None) -> None:
        p = self._cached(seq)
        if p is not None:
            p.peer, p.rtt = peer, rtt

    def _account(self, new: list[Packet]) -> None:
        chunks = self._chunks
        total = 0
        for p in new:
            if not chunks or chunks[-1][2] >= CHUNK:
                chunks.append([p.seq + 1, 0, 0])
            c = chunks[-1]
            cost = p.cost()
            c[0], c[1], c[2] = p.seq + 1, c[1] + cost, c[2] + 1
            total += cost
        self._bytes += total

    def _evict(self) -> None:
        first = max(self.first_seq, self.next_seq - self.limits.max_packets)
        chunks = self._chunks
        while chunks and chunks[0][0] <= first:
            self._bytes -= chunks.popleft()[1]
        budget = max(self.limits.max_bytes - WAL_ALLOWANCE, self.limits.max_bytes / 2)
        budget /= self._ratio
        while self._bytes > budget and len(chunks) > 1:
            end, cost, _ = chunks.popleft()
            self._bytes -= cost
            first = max(first, end)
        if first == self.first_seq:
            return
        self.first_seq = first
        tail = self._tail
        while tail and tail[0].seq < first:
            tail.popleft()
        for page in [k for k in self._pages if (k + 1) * PAGE <= first]:
            del self._pages[page]

    def _prune_tail(self) -> None:
        tail, keep = self._tail, self.limits.memory_rows
        while len(tail) > keep and tail[0].seq < self._committed:
            tail.popleft()

    def set_limits(self, limits: CaptureLimits) -> None:
        """New bounds; a smaller ring drops its oldest rows now."""
        if self.in_memory_only:
            limits = replace(limits, max_packets=min(limits.max_packets, FALLBACK_PACKETS))
        self.limits = limits
        self._evict()
        self._submit([], [])
        self._prune_tail()

    def clear(self) -> None:
        """Forget every packet (the numbering goes on)."""
        self.first_seq = self.next_seq
        self.captured = self.lost = 0
        self.time_origin = None
        self._tail.clear()
        self._pages.clear()
        self._chunks.clear()
        self._bytes = 0
        self._pairer.clear()
        self._unwritten.clear()
        self._submit([], [])

    # --- results of the writer -----------------------------------------------------------------
    def poll(self) -> list[w.ScanChunk | w.LiveChunk | w.AddressesResult]:
        """Take what the writer finished: commits (rows now on disk) and job results, which are
        returned for the views."""
        out: list[w.ScanChunk | w.LiveChunk | w.AddressesResult] = []
        results = self._writer.results
        committed_batch = None
        while not results.empty():
            r = results.get_nowait()
            if isinstance(r, w.Committed):
                committed_batch = r.batch
                self.disk_bytes = r.disk_bytes
                self._measured(r.batch, r.used_bytes)
                if self.path is not None:
                    self.error = None
            elif isinstance(r, w.WriteFailed):
                self.error = r.message
            else:
                out.append(r)
        if committed_batch is not None:
            self._on_committed(committed_batch)
        return out

    def _measured(self, batch: int, used: int) -> None:
        for b, _, estimated in self._batch_ends:
            if b == batch:
                if estimated >= MB // 4:  # small rings: page granularity would dominate
                    self._ratio = min(3.0, max(1.0, used / estimated))
                return

    def _on_committed(self, batch: int) -> None:
        ends = self._batch_ends
        upto = self._committed
        while ends and ends[0][0] <= batch:
            upto = ends.popleft()[1]
        self._committed = max(self._committed, upto)
        for seq in [s for s, (_, _, b) in self._unwritten.items() if b <= batch]:
            del self._unwritten[seq]
        self._prune_tail()

    def _submit(self, rows: list[w.Row], updates: list[tuple[int, float | None, int]]) -> None:
        self._batch += 1
        self._batch_ends.append((self._batch, self.next_seq, self._bytes))
        self._writer.submit(w.Write(self._batch, rows, updates, self.first_seq))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the writer has done everything asked so far (tests, benchmarks)."""
        return self._writer.sync(timeout)

    # --- reading -------------------------------------------------------------------------------
    def packet(self, seq: int) -> Packet | None:
        """The row numbered ``seq``, or None if it is not in the ring (evicted, or not yet)."""
        if seq < self.first_seq or seq >= self.next_seq:
            return None
        p = self._cached(seq)
        if p is not None:
            return p
        return self._load_page(seq // PAGE).get(seq)

    def packets(self, lo: int, hi: int) -> list[Packet]:
        """The rows of [lo, hi) still in the ring, in order."""
        lo, hi = max(lo, self.first_seq), min(hi, self.next_seq)
        out = []
        for seq in range(lo, hi):
            p = self.packet(seq)
            if p is not None:
                out.append(p)
        return out

    def _cached(self, seq: int) -> Packet | None:
        tail = self._tail
        if tail and seq >= tail[0].seq:
            i = seq - tail[0].seq
            return tail[i] if i < len(tail) else None
        page = self._pages.get(seq // PAGE)
        return page.get(seq) if page is not None else None

    def _load_page(self, page: int) -> dict[int, Packet]:
        lo = max(page * PAGE, self.first_seq)
        hi = (page + 1) * PAGE
        try:
            rows = self._read.execute(
                f"SELECT {w.COLUMNS} FROM packets WHERE seq >= ? AND seq < ?", (lo, hi)
            ).fetchall()
        except sqlite3.Error as err:
            log.warning("cannot read the packet capture: %s", err)
            return {}
        got = {}
        for r in rows:
            p = from_row(r)
            pending = self._unwritten.get(p.seq)
            if pending is not None:
                p.peer, p.rtt = pending[0], pending[1]
            got[p.seq] = p
        self._pages[page] = got
        self._pages.move_to_end(page)
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        return got

    # --- filters and statistics ----------------------------------------------------------------
    def start_filter(self, where: Filter | None, lo: int, hi: int) -> int:
        """Match ``where``: the history [lo, hi) is scanned (ScanChunks from ``poll``, newest
        first) and every row from ``hi`` on as it is written (LiveChunks), under the returned
        job id. Replaces the filter running; None stops it."""
        job = next(self._jobs)
        if where is not None:
            self._writer.submit(w.Scan(job, where, lo, hi))
        self._writer.submit(w.Live(job, where, hi))
        return job

    def start_addresses(self, where: Filter | None, limit: int = 10_000) -> int:
        """Packets grouped by address (the busiest ``limit``), over the ring's rows that match
        ``where``; the result comes from ``poll`` as an AddressesResult."""
        job = next(self._jobs)
        self._writer.submit(w.Addresses(job, where, self.first_seq, limit))
        return job

    def cancel(self, job: int) -> None:
        self._writer.submit(w.Cancel(job))

    def close(self) -> None:
        """Stop the writer and delete the capture file. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._finalizer()
