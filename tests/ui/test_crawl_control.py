"""CrawlControl: a BEP 51 crawl started and stopped for the Activity view, its live figures
once a second, and the database read in a worker thread whose result arrives on the GUI
thread; the crawl ends with the node."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from dhtviewer.net.crawl import CrawlFigures
from dhtviewer.net.sample_store import SampleStore
from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
from dhtviewer.ui.crawl_control import EMPTY, ActivitySnapshot, CrawlControl, read_snapshot
from tests.support.qt_async import qasync_loop, run, until

pytestmark = pytest.mark.qt
N1, N2 = b"\x01" * 20, b"\x02" * 20
A, B, C = b"\xaa" * 20, b"\xbb" * 20, b"\xcc" * 20
ADDR = ("127.0.0.2", 6881)


def test_read_snapshot_of_a_database(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    assert read_snapshot(path, None, 1000.0) is EMPTY
    assert not path.exists()  # reading never creates the database
    with SampleStore(path) as store:
        store.record(N1, ADDR, [A, B], 10, 60, 700.0)
        store.record(N2, ADDR, [B, C], 5, 60, 950.0)
        store.record_unsupported(b"\x03" * 20, ("127.0.0.3", 1), 960.0)
    snap = read_snapshot(path, None, 1000.0)
    assert (snap.totals.info_hashes, snap.totals.samples, snap.totals.nodes_without) == (3, 4, 1)
    assert snap.top[0].info_hash == B and snap.top[0].nodes == 2
    assert {n.node_id for n in snap.nodes} == {N1, N2}
    assert [m[0] for m in snap.per_minute] == [660.0, 900.0]
    assert snap.estimate.observed == 3 and snap.estimate.nodes == 2
    assert snap.read_seconds > 0 and snap.at == 1000.0
    recent = read_snapshot(path, 900.0, 1000.0)
    assert recent.estimate.observed == 2 and recent.estimate_since == 900.0


@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


def start_node(loop: qasync.QEventLoop, base: str) -> Controller:
    c = Controller()
    options = StartOptions(mode=TESTNET, testnet_nodes=16, testnet_base=base, testnet_seed=6,
                           bind_host="127.0.0.1", port=0)

    async def start() -> None:
        await c.start(options)  # type: ignore[misc]
        await until(lambda: c.state == "ready")

    run(loop, start())
    return c


def test_crawl_figures_snapshots_and_stop(loop: qasync.QEventLoop, tmp_path: Path) -> None:
    path = tmp_path / "samples.sqlite3"
    idle = Controller()
    assert "not running" in str(CrawlControl(idle, path).start(20.0))
    c = start_node(loop, "127.0.66.1")
    crawl = CrawlControl(c, path)
    figures: list[CrawlFigures] = []
    snaps: list[tuple[ActivitySnapshot, bool]] = []
    crawl.figures_changed.connect(figures.append)
    crawl.snapshot_ready.connect(
        lambda s: snaps.append((s, threading.current_thread() is threading.main_thread())))
    try:
        assert "above 0" in str(crawl.start(0.0))
        assert crawl.start(50.0) is None and crawl.running
        assert "already running" in str(crawl.start(50.0))

        async def crawling() -> None:
            await until(lambda: bool(figures) and figures[-1].supporting >= 16, 15)
            assert crawl.request_snapshot()
            await until(lambda: bool(snaps), 10)

        run(loop, crawling())
        snap, on_gui_thread = snaps[-1]
        assert on_gui_thread
        assert snap.totals.nodes_supporting >= 1 and len(snap.nodes) >= 1
        crawl.stop()
        assert not crawl.running and crawl.store is None
        assert figures[-1].supporting >= 16
        with SampleStore(path, readonly=True) as store:
            assert store.totals().nodes_supporting >= 16  # everything committed at the stop

        # a crawl is stopped, and its database closed, when the node stops
        assert crawl.start(50.0) is None
        run(loop, c.shutdown())
        assert not crawl.running and crawl.store is None
    finally:
        crawl.shutdown()
        run(loop, c.shutdown())
