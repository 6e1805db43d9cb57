"""PacketsModel, the lazy view of a capture: Qt's model tester while rows come, leave (ring) and
are filtered (history scanned in chunks, newest first, then live rows), pause and resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.messages import PingQuery
from dhtviewer.ui.capture import writer as writer_mod
from dhtviewer.ui.capture.filter import compile_filter
from dhtviewer.ui.capture.store import CaptureLimits, PacketCapture
from dhtviewer.ui.models.packets import COL_ADDR, COL_NO, COL_RTT, HEADERS, PacketsModel

pytestmark = pytest.mark.qt


def pings(n: int, start: int = 0) -> list[ev.Event]:
    out: list[ev.Event] = []
    for i in range(start, start + n):
        tid = (i & 0xFFFF).to_bytes(2, "big")
        data = krpc.encode(PingQuery(tid, b"\x02" * 20))
        out.append(ev.MessageReceived((f"127.0.4.{1 + i % 10}", 6881), "q", b"ping", tid,
                                      len(data), b"\x02" * 20, data, i * 0.01))
    return out


@pytest.fixture
def capture(tmp_path: Path, qapp: QApplication) -> Iterator[PacketCapture]:
    cap = PacketCapture(tmp_path, CaptureLimits(max_packets=500, memory_rows=100))
    yield cap
    cap.close()


def feed(model: PacketsModel, events: list[ev.Event]) -> None:
    model.capture.add_events(events)
    model.poll()


def settle(model: PacketsModel) -> None:
    assert model.capture.wait_idle(10)
    model.poll()


def col(model: PacketsModel, c: int) -> list[str]:
    return [str(model.index(r, c).data()) for r in range(model.rowCount())]


def test_rows_come_and_leave_the_ring(capture: PacketCapture, qtmodeltester: ModelTester) -> None:
    model = PacketsModel(capture)
    qtmodeltester.check(model)  # type: ignore[no-untyped-call]
    feed(model, pings(300))
    assert model.rowCount() == 300 and col(model, COL_NO)[0] == "1"
    feed(model, pings(300, start=300))
    assert model.rowCount() == 500 and col(model, COL_NO)[0] == "101"  # the ring's bound
    assert model.row_of(101) == 0 and model.row_of(100) is None and model.seq_at(499) == 600
    settle(model)
    assert model.index(0, COL_ADDR).data() == "127.0.4.1:6881"  # read back from the file
    assert model.index(0, COL_RTT).data() == ""
    assert len(HEADERS) == model.columnCount()


def test_filter_scans_history_in_chunks_then_follows_live(
    capture: PacketCapture, qtmodeltester: ModelTester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "SCAN_CHUNK", 50)
    model = PacketsModel(capture)
    qtmodeltester.check(model)  # type: ignore[no-untyped-call]
    feed(model, pings(400))
    model.set_filter(compile_filter("addr == 127.0.4.3"))
    assert model.filtering
    settle(model)
    assert not model.filtering and model.scan_progress() == 1.0
    assert col(model, COL_NO) == [str(s) for s in range(3, 401, 10)]
    feed(model, pings(20, start=400))  # the writer matches new rows as it writes them
    settle(model)
    assert col(model, COL_NO)[-2:] == ["403", "413"]
    feed(model, pings(200, start=420))  # the oldest matches leave with the ring
    settle(model)
    assert col(model, COL_NO)[0] == "123" and model.rowCount() == 50
    model.set_filter(None)
    assert model.rowCount() == 500


def test_pause_holds_the_rows_and_resume_brings_them(
    capture: PacketCapture, qtmodeltester: ModelTester
) -> None:
    model = PacketsModel(capture)
    qtmodeltester.check(model)  # type: ignore[no-untyped-call]
    feed(model, pings(50))
    model.set_paused(True)
    feed(model, pings(30, start=50))
    assert model.rowCount() == 50 and model.new_while_paused() == 30
    model.set_filter(compile_filter("addr == 127.0.4.1"))  # a filter while paused: still held
    settle(model)
    assert col(model, COL_NO) == [str(s) for s in range(1, 50, 10)]
    model.set_paused(False)
    assert col(model, COL_NO) == [str(s) for s in range(1, 80, 10)]
    model.set_paused(True)
    feed(model, pings(300, start=80))
    settle(model)
    assert model.rowCount() == 8  # matched meanwhile, held until resume
    model.set_paused(False)
    assert col(model, COL_NO) == [str(s) for s in range(1, 380, 10)]
    model.clear()
    assert model.rowCount() == 0 and capture.kept == 0
