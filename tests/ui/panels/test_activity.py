"""The Activity panel as a user drives it: a crawl of a live embedded testnet started at a
rate, its figures, the plot, the two tables and the estimate filled from the database, a
selected info-hash kept across refreshes, double-click to look one up, CSV export; a refused
start explained inline."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
from dhtviewer.ui.panels.activity import ActivityPanel
from tests.support.controller_kit import running_controller
from tests.support.qt_async import run, until

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def node(loop: qasync.QEventLoop) -> Iterator[Controller]:
    yield from running_controller(loop, StartOptions(
        mode=TESTNET, testnet_nodes=20, testnet_base="127.0.65.1", testnet_seed=8,
        bind_host="127.0.0.1", port=0,
    ))


def test_a_stopped_node_cannot_crawl(qapp: QApplication, tmp_path: Path, qtbot: QtBot) -> None:
    panel = ActivityPanel(Controller(), db_path=tmp_path / "s.sqlite3")
    qtbot.addWidget(panel)
    assert not panel.start_button.isEnabled()
    assert panel.start_crawl() is False
    assert panel.message.is_error and "not running" in panel.message.text()
    assert not (tmp_path / "s.sqlite3").exists()


def test_crawl_fills_the_view_and_a_double_click_asks_for_a_lookup(
    loop: qasync.QEventLoop, node: Controller, tmp_path: Path, qtbot: QtBot
) -> None:
    panel = ActivityPanel(node, db_path=tmp_path / "s.sqlite3", rate=50.0)
    qtbot.addWidget(panel)
    panel.show()
    for proxy in (panel.top_proxy, panel.nodes_proxy):
        ModelTester(qtbot).check(proxy, force_py=True)
    assert node.testnet is not None
    announced = set(node.testnet.announced)
    wanted: list[str] = []
    panel.lookup_requested.connect(wanted.append)

    async def crawl() -> None:
        assert panel.start_crawl()
        assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
        assert not panel.rate.isEnabled()
        await until(lambda: panel.figures is not None and panel.figures.supporting >= 20, 15)
        # the panel asks the database every few seconds while it is visible
        await until(lambda: panel.snapshot is not None
                    and panel.snapshot.totals.nodes_supporting >= 20, 15)

    run(loop, crawl())
    assert "Crawling" in panel.summary.text() and "at up to 50 queries/s" in panel.summary.text()
    assert "nodes speaking BEP 51" in panel.summary.text()
    assert announced <= {panel.top.row(r).info_hash for r in range(panel.top.rowCount())}
    assert panel.nodes.rowCount() >= 20
    assert "Estimated" in panel.estimate.text() and "this crawl" in panel.estimate.text()
    assert panel.plot.view.bar_count() >= 1
    # the most sampled first
    counts = [int(panel.top_proxy.index(r, 1).data()) for r in range(panel.top_proxy.rowCount())]
    assert counts == sorted(counts, reverse=True)

    chosen = panel.top_proxy.index(panel.top_proxy.rowCount() - 1, 0).data()
    assert panel.select_infohash(chosen) and panel.lookup_button.isEnabled()
    panel.apply_snapshot(panel.snapshot)  # a refresh keeps the choice
    assert panel.selected_infohash() == chosen
    assert panel.lookup_selected() and wanted == [chosen]
    panel._double_clicked(panel.top_proxy.index(0, 2))
    assert wanted[-1] == panel.top_proxy.index(0, 0).data()

    panel.crawl.stop()
    assert panel.start_button.isEnabled() and "Crawled" in panel.summary.text()

    async def export() -> None:
        dest = tmp_path / "out.csv"
        panel.crawl.export_csv(dest)
        await until(lambda: "written to" in panel.message.text(), 10)

    run(loop, export())
    rows = list(csv.reader((tmp_path / "out.csv").open()))
    assert rows[0][0] == "info_hash" and {bytes.fromhex(r[0]) for r in rows[1:]} >= announced
    panel.crawl.shutdown()
