"""The SQLite sample store: recording replies, counts, top list, per-minute rates, estimate,
CSV export, and a corrupt file moved aside."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from dhtviewer.net.sample_store import SampleStore

N1, N2, N3 = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20
A, B, C = b"\xaa" * 20, b"\xbb" * 20, b"\xcc" * 20
ADDR = ("127.0.0.2", 6881)


def test_record_counts_new_info_hashes_and_nodes() -> None:
    s = SampleStore(":memory:")
    assert s.record(N1, ADDR, [A, B], num=2, interval=60, at=100.0) == 2
    assert s.record(N2, ADDR, [B, C, C], num=5, interval=60, at=110.0) == 1
    assert s.record(N1, ADDR, [A], num=2, interval=60, at=200.0) == 0
    s.record_unsupported(N3, ("127.0.0.3", 1), 120.0)
    t = s.totals()
    assert (t.info_hashes, t.samples, t.replies) == (3, 6, 3)
    assert (t.nodes_supporting, t.nodes_without) == (2, 1)
    top = s.top()
    assert top[0].info_hash == B and top[0].nodes == 2 and top[0].times == 2
    a = next(x for x in top if x.info_hash == A)
    assert (a.times, a.nodes, a.first_seen, a.last_seen) == (2, 1, 100.0, 200.0)
    nodes = {n.node_id: n for n in s.nodes()}
    assert set(nodes) == {N1, N2}
    assert nodes[N1].replies == 2 and nodes[N1].samples == 3 and nodes[N1].num == 2
    assert [n.node_id for n in s.nodes(supported=False)] == [N3]


def test_per_minute_and_estimate_window() -> None:
    s = SampleStore(":memory:")
    s.record(N1, ADDR, [A, B], 2, 60, 60.0)
    s.record(N2, ADDR, [B], 1, 60, 90.0)
    s.record(N1, ADDR, [C], 2, 60, 185.0)
    assert s.per_minute(0.0) == [(60.0, 3, 2), (180.0, 1, 1)]
    assert s.per_minute(120.0) == [(180.0, 1, 1)]
    e = s.estimate()
    assert e.observed == 3 and e.q1 == 2 and e.q2 == 1 and e.nodes == 2
    late = s.estimate(since=180.0)
    assert late.observed == 1 and late.nodes == 1


def test_csv_export() -> None:
    s = SampleStore(":memory:")
    s.record(N1, ADDR, [A], 1, 60, 0.0)
    out = io.StringIO()
    assert s.export_csv(out) == 1
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["info_hash", "first_seen", "last_seen", "times", "nodes"]
    assert rows[1] == [A.hex(), "1970-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00", "1", "1"]


def test_persists_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "samples.sqlite3"
    with SampleStore(path) as s:
        s.record(N1, ADDR, [A, B], 2, 60, 0.0)
    with SampleStore(path) as s:
        assert s.totals().info_hashes == 2
        assert s.export_csv(tmp_path / "out.csv") == 2
    assert (tmp_path / "out.csv").read_text().count("\n") == 3


def test_a_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "samples.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with SampleStore(path) as s:
        assert s.totals().info_hashes == 0
        s.record(N1, ADDR, [A], 1, 60, 0.0)
    backups = list(tmp_path.glob("samples.sqlite3.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes().startswith(b"this is not")


def test_a_reader_sees_commits_while_the_writer_holds_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "samples.sqlite3"
    with pytest.raises(sqlite3.OperationalError):
        SampleStore(path, readonly=True)  # nothing to read yet: no file is made
    assert not path.exists()
    writer = SampleStore(path)
    writer.record(N1, ADDR, [A, B], 2, 60, 0.0)
    writer.commit()
    writer.record(N2, ADDR, [C], 1, 60, 1.0)  # not committed yet
    with SampleStore(path, readonly=True) as reader:
        assert reader.totals().info_hashes == 2  # the last commit, without waiting
        with pytest.raises(sqlite3.OperationalError):
            reader.record(N3, ADDR, [A], 1, 60, 2.0)
    writer.commit()
    with SampleStore(path, readonly=True) as reader:
        assert reader.totals().info_hashes == 3
    writer.close()
