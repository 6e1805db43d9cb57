"""PacketCapture: the ring's bounds (packets, bytes of file, rows in memory), the writer's
backlog, pairing of rows already on disk, the fallbacks when no file can be made, and that the
history scan and the live matcher agree."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.messages import PingQuery, Response
from dhtviewer.ui.capture import store as store_mod
from dhtviewer.ui.capture import writer as writer_mod
from dhtviewer.ui.capture.filter import compile_filter
from dhtviewer.ui.capture.records import Packet
from dhtviewer.ui.capture.store import MB, CaptureLimits, PacketCapture, remove_stale_files

OWN = b"\x01" * 20


def pings(n: int, start: int = 0, pad: int = 0, at: float = 0.0) -> list[ev.Event]:
    """``n`` incoming pings from 20 addresses, each answered (``pad`` bytes more per reply)."""
    out: list[ev.Event] = []
    for i in range(start, start + n):
        addr = (f"127.0.7.{1 + i % 20}", 5000 + i % 20)
        tid = (i & 0xFFFF).to_bytes(2, "big")
        q = krpc.encode(PingQuery(tid, b"\x02" * 20))
        r = krpc.encode(Response(tid, OWN)) + b"\x00" * pad
        out.append(ev.MessageReceived(addr, "q", b"ping", tid, len(q), b"\x02" * 20, q,
                                      at + i * 0.001))
        out.append(ev.MessageSent(addr, "r", b"ping", tid, len(r), r, at + i * 0.001 + 0.0005))
    return out


def feed(cap: PacketCapture, events: list[ev.Event], per_tick: int = 300) -> None:
    for i in range(0, len(events), per_tick):
        cap.add_events(events[i : i + per_tick])
        cap.poll()


def settle(cap: PacketCapture) -> None:
    assert cap.wait_idle(20.0)
    cap.poll()


def on_disk(cap: PacketCapture) -> int:
    assert cap.path is not None
    with sqlite3.connect(cap.path) as conn:
        return int(conn.execute("SELECT count(*) FROM packets").fetchone()[0])


@pytest.fixture
def make(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[PacketCapture] = []

    def factory(**limits: int) -> PacketCapture:
        cap = PacketCapture(tmp_path, CaptureLimits(**limits))
        made.append(cap)
        return cap

    yield factory
    for cap in made:
        cap.close()


def test_ring_keeps_the_newest_packets_up_to_the_count(make) -> None:  # type: ignore[no-untyped-def]
    cap = make(max_packets=1000)
    feed(cap, pings(2500))
    settle(cap)
    assert (cap.captured, cap.kept, cap.first_seq, cap.next_seq) == (5000, 1000, 4001, 5001)
    assert cap.packet(4000) is None and cap.packet(5001) is None
    first = cap.packet(4001)
    assert first is not None and first.seq == 4001
    assert on_disk(cap) == 1000


def test_capture_file_stays_within_its_byte_bound(make) -> None:  # type: ignore[no-untyped-def]
    cap = make(max_bytes=8 * MB)
    feed(cap, pings(30_000, pad=700))  # about 24 MB of replies
    settle(cap)
    assert cap.kept < 60_000 and cap.first_seq > 1
    assert cap.disk_bytes == os.path.getsize(cap.path) + os.path.getsize(f"{cap.path}-wal")
    assert cap.disk_bytes <= 8 * MB
    assert cap.disk_bytes > 5 * MB  # and the bound is used, not wasted


def test_memory_holds_only_the_newest_rows_and_reads_back_the_rest(make) -> None:  # type: ignore[no-untyped-def]
    cap = make(memory_rows=300)
    query = krpc.encode(PingQuery(b"zz", OWN))
    cap.add_events([ev.MessageSent(("127.0.9.9", 9), "q", b"ping", b"zz", len(query), query,
                                   0.0)])
    feed(cap, pings(2000, at=1.0))
    settle(cap)
    assert cap.memory_rows() <= 300
    # the reply to our first query comes now: its row, on disk only, gets the pairing too
    reply = krpc.encode(Response(b"zz", b"\x03" * 20))
    cap.add_events([ev.MessageReceived(("127.0.9.9", 9), "r", b"ping", b"zz", len(reply),
                                       b"\x03" * 20, reply, 5.0)])
    q = cap.packet(1)
    assert q is not None and q.peer == cap.next_seq - 1 and q.rtt == pytest.approx(5.0)
    settle(cap)
    cap._pages.clear()  # read it back from the file
    q = cap.packet(1)
    assert q is not None and q.peer == cap.next_seq - 1 and q.rtt == pytest.approx(5.0)
    rows = cap.packets(1, 4002)
    assert [p.seq for p in rows] == list(range(1, 4002))


def test_a_stalled_writer_bounds_the_backlog_and_counts_the_loss(
    make, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    gate = threading.Event()
    real = writer_mod.CaptureWriter._write

    def slow(self: writer_mod.CaptureWriter, w: writer_mod.Write) -> bool:
        gate.wait(20)
        return real(self, w)

    monkeypatch.setattr(writer_mod.CaptureWriter, "_write", slow)
    cap = make(max_backlog=500, memory_rows=100)
    feed(cap, pings(400))
    assert cap.kept == 500 and cap.lost == 300
    assert cap.memory_rows() == 500  # nothing could leave memory: it is not on disk yet
    gate.set()
    settle(cap)
    feed(cap, pings(10, start=400))
    settle(cap)
    assert cap.kept == 520 and cap.lost == 300 and on_disk(cap) == 520
    assert cap.memory_rows() <= 100


def test_a_filter_covers_the_history_and_the_rows_written_after(make) -> None:  # type: ignore[no-untyped-def]
    cap = make()
    feed(cap, pings(1500))
    bad = ev.MalformedReceived(("127.0.7.3", 5002), 40, 203, "invalid bencode", False, 9.0,
                               b"junk")
    cases: dict[str, Callable[[Packet], bool]] = {
        "addr == 127.0.7.3": lambda p: p.ip == "127.0.7.3",
        "dir == out and size > 40": lambda p: p.direction.value == "out" and p.size > 40,
        "junk": lambda p: b"junk" in p.data,
        "not method == ping": lambda p: p.method != "ping",
    }
    for text, wanted in cases.items():
        f = compile_filter(text)
        job = cap.start_filter(f, cap.first_seq, cap.next_seq)
        results = []
        more = [*pings(500, start=1500), bad]  # written after the filter started
        for i in range(0, len(more), 300):
            cap.add_events(more[i : i + 300])
            results += cap.poll()
        assert cap.wait_idle(20.0)
        history: list[int] = []
        live: list[int] = []
        for r in results + cap.poll():
            if isinstance(r, writer_mod.ScanChunk) and r.job == job:
                history = list(r.seqs) + history  # newest chunk first
            elif isinstance(r, writer_mod.LiveChunk) and r.job == job:
                live += list(r.seqs)
        everything = cap.packets(cap.first_seq, cap.next_seq)
        assert history + live == [p.seq for p in everything if wanted(p)], text
        assert not history or not live or history[-1] < live[0]


def test_clear_and_lower_limits(make) -> None:  # type: ignore[no-untyped-def]
    cap = make()
    feed(cap, pings(500))
    cap.set_limits(CaptureLimits(max_packets=100))
    assert cap.kept == 100 and cap.first_seq == 901
    settle(cap)
    assert on_disk(cap) == 100
    cap.clear()
    assert cap.kept == 0 and cap.captured == 0 and cap.time_origin is None
    feed(cap, pings(1))
    assert cap.first_seq == 1001 and cap.kept == 2  # numbering goes on
    settle(cap)
    assert on_disk(cap) == 2


def test_unusable_directory_falls_back_to_a_temporary_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cap = PacketCapture(blocker / "capture")
    try:
        assert cap.path is not None and cap.path.parent != blocker
        feed(cap, pings(10))
        settle(cap)
        assert on_disk(cap) == 20 and cap.error is None
        folder = cap.path.parent
    finally:
        cap.close()
    assert not folder.exists()


def test_no_file_at_all_keeps_a_bounded_capture_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kw: object) -> str:
        raise OSError("read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cap = PacketCapture(blocker, CaptureLimits(max_packets=10_000_000))
    try:
        assert cap.in_memory_only and cap.error is not None and "memory" in cap.error
        assert cap.limits.max_packets == store_mod.FALLBACK_PACKETS
        feed(cap, pings(100))
        f = compile_filter("addr == 127.0.7.1")
        assert f is not None
        cap.start_filter(f, cap.first_seq, cap.next_seq)
        found = [s for r in cap.poll() if isinstance(r, writer_mod.ScanChunk) for s in r.seqs]
        assert len(found) == 10
    finally:
        cap.close()


def test_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    stale = [tmp_path / f"capture-{pid}-1.sqlite3", tmp_path / f"capture-{pid}-1.sqlite3-wal"]
    mine = tmp_path / f"capture-{os.getpid()}-999.sqlite3"
    other = tmp_path / "state.json"
    for f in (*stale, mine, other):
        f.write_bytes(b"")
    assert remove_stale_files(tmp_path) == 2
    assert not any(f.exists() for f in stale) and mine.exists() and other.exists()


def test_close_removes_the_file(tmp_path: Path) -> None:
    cap = PacketCapture(tmp_path)
    feed(cap, pings(5))
    settle(cap)
    assert cap.path is not None and cap.path.exists()
    cap.close()
    cap.close()
    assert list(tmp_path.iterdir()) == []
