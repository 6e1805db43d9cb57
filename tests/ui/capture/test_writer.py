"""CaptureWriter: batches in order, a full disk retried without losing or reordering anything,
scans newest chunk first (and replaced by a newer one), per-address statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from dhtviewer.ui.capture import writer as w
from dhtviewer.ui.capture.filter import Filter

ALL = Filter("1")


def row(seq: int, ip: str = "127.0.0.1", kind: str = "query", direction: str = "in",
        size: int = 10, peer: int | None = None, rtt: float | None = None) -> w.Row:
    return (seq, float(seq), direction, ip, 6881, kind, "ping", b"tt", size,
            b"\x05" * 20 if direction == "in" else None, b"x" * 200, "", peer, rtt)


def results(writer: w.CaptureWriter) -> list[w.Result]:
    out = []
    while not writer.results.empty():
        out.append(writer.results.get_nowait())
    return out


def count(writer: w.CaptureWriter) -> int:
    assert writer.conn is not None
    return int(writer.conn.execute("SELECT count(*) FROM packets").fetchone()[0])


def test_a_full_disk_is_retried_in_order(tmp_path: Path) -> None:
    writer = w.CaptureWriter(tmp_path / "c.sqlite3", inline=True)
    assert writer.conn is not None
    try:
        writer.submit(w.Write(1, [row(s) for s in range(1, 11)], [], 0))
        pages = writer.conn.execute("PRAGMA page_count").fetchone()[0]
        writer.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
        writer.submit(w.Write(2, [row(s) for s in range(11, 400)], [], 0))
        writer.submit(w.Write(3, [row(400)], [(400, 0.5, 1)], 5))
        got = results(writer)
        assert isinstance(got[0], w.Committed) and got[0].batch == 1
        assert [type(r) for r in got[1:]] == [w.WriteFailed]  # said once, not per batch
        assert "full" in got[1].message  # type: ignore[union-attr]
        assert count(writer) == 10
        writer.conn.execute("PRAGMA max_page_count = 1000000")  # space again
        writer.submit(w.Write(4, [row(401)], [], 0))
        got = results(writer)
        assert [r.batch for r in got if isinstance(r, w.Committed)] == [2, 3, 4]
        assert count(writer) == 397  # 1..401 but the 4 below No. 5 (deleted by batch 3)
        peer = writer.conn.execute("SELECT peer, rtt FROM packets WHERE seq = 1").fetchone()
        assert peer is None  # seq 1 was deleted after being paired
    finally:
        writer.close()


def test_scan_goes_newest_chunk_first_and_a_new_scan_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(w, "SCAN_CHUNK", 100)
    writer = w.CaptureWriter(tmp_path / "c.sqlite3")
    try:
        writer.submit(w.Write(1, [row(s, kind="query" if s % 7 else "error")
                                  for s in range(1, 1001)], [], 0))
        writer.submit(w.Scan(1, Filter("type = 'error'"), 1, 1001))
        assert writer.sync(10)
        chunks = [r for r in results(writer) if isinstance(r, w.ScanChunk)]
        assert [c.hi for c in chunks] == list(range(1001, 1, -100))
        assert chunks[-1].done and not any(c.done for c in chunks[:-1])
        found = [s for c in reversed(chunks) for s in c.seqs]
        assert found == [s for s in range(1, 1001) if s % 7 == 0]
        # cancelled before it runs: nothing comes back
        writer.submit(w.Scan(2, ALL, 1, 1001))
        writer.submit(w.Cancel(2))
        writer.submit(w.Scan(3, ALL, 990, 1001))
        assert writer.sync(10)
        got = [r for r in results(writer) if isinstance(r, w.ScanChunk)]
        assert {c.job for c in got} <= {2, 3} and got[-1].job == 3 and got[-1].done
    finally:
        writer.close()


def test_addresses_are_counted_per_ip_and_port(tmp_path: Path) -> None:
    writer = w.CaptureWriter(tmp_path / "c.sqlite3", inline=True)
    try:
        rows = [row(1, "10.0.0.1", "query", "out", 50, peer=2, rtt=0.2),
                row(2, "10.0.0.1", "response", "in", 300, peer=1, rtt=0.2),
                row(3, "10.0.0.1", "query", "out", 50),
                row(4, "10.0.0.2", "malformed", "in", 9)]
        writer.submit(w.Write(1, rows, [], 0))
        writer.submit(w.Addresses(7, None, 1, 10))
        [result] = [r for r in results(writer) if isinstance(r, w.AddressesResult)]
        assert result.job == 7 and not result.truncated
        a, b = result.rows
        assert (a.ip, a.packets, a.packets_in, a.packets_out, a.queries_out, a.responses,
                a.unanswered, a.bytes_in, a.bytes_out) == ("10.0.0.1", 3, 1, 2, 2, 1, 1, 300, 100)
        assert a.rtt == pytest.approx(0.2) and a.ids == 1 and a.first == 1.0 and a.last == 3.0
        assert (b.ip, b.malformed, b.rtt) == ("10.0.0.2", 1, None)
        writer.submit(w.Addresses(8, Filter("size > ?", (100,)), 1, 1))
        [only] = [r for r in results(writer) if isinstance(r, w.AddressesResult)]
        assert [s.ip for s in only.rows] == ["10.0.0.1"] and not only.truncated
        writer.submit(w.Addresses(9, None, 1, 1))
        [cut] = [r for r in results(writer) if isinstance(r, w.AddressesResult)]
        assert len(cut.rows) == 1 and cut.truncated
    finally:
        writer.close()
