"""ActivityPanel: what the DHT is doing, seen through a BEP 51 crawl.

Start a crawl at a chosen rate (queries per second, at most) and watch: info-hashes sampled per
minute and how many of them are new (plot), how many distinct info-hashes were seen and how many
exist by the Chao2 estimate with its 95 % interval, the nodes that answer ``sample_infohashes``
and the info-hashes sampled from the most nodes. Double-click an info-hash (or select it and
press "Look up") to find its peers in the Lookup panel. Samples are kept in the SQLite database
of the state directory (``samples.sqlite3``) and can be exported as CSV.

The live counts come from ``CrawlControl`` once a second; the tables, the plot and the estimate
from a database read it makes off the GUI thread every few seconds while this panel is visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht.settings import spec_of
from dhtviewer.net.crawl import CrawlFigures
from dhtviewer.net.sample_store import default_sample_db_path
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.crawl_control import SNAPSHOT_EVERY, ActivitySnapshot, CrawlControl
from dhtviewer.ui.models.activity import (
    I_NODES,
    N_SEEN,
    SamplerNodesModel,
    TopInfohashesModel,
)
from dhtviewer.ui.panels.common import InlineMessage, muted_label, setup_table
from dhtviewer.ui.panels.lookup import sorting_proxy
from dhtviewer.ui.views.lazy import LazyView

if TYPE_CHECKING:
    from dhtviewer.ui.views.activity_plot import ActivityPlot

__all__ = ["ActivityPanel", "LazyActivityPlot"]

MAX_RATE = 10_000.0
IDLE_TEXT = ("No crawl yet. A crawl asks nodes all over the id space for samples of the "
             "info-hashes they store (BEP 51), at most the rate above.")


class LazyActivityPlot(LazyView["ActivityPlot"]):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self._build, parent, size_hint=QSize(400, 180),
                         policy=QSizePolicy.Policy.Preferred)

    @staticmethod
    def _build() -> ActivityPlot:
        from dhtviewer.ui.views.activity_plot import ActivityPlot

        return ActivityPlot()

    def set_minutes(self, per_minute: list[tuple[float, int, int]], now: float) -> None:
        self.defer("set_minutes", lambda plot: plot.set_minutes(per_minute, now))


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


class ActivityPanel(QWidget):
    lookup_requested = Signal(str)
    """The hex info-hash the user wants looked up."""

    def __init__(self, controller: Controller, db_path: Path | None = None,
                 rate: float = 20.0, parent: QWidget | None = None) -> None:
        """``db_path``: the sample database (default: the user state dir's)."""
        super().__init__(parent)
        self.controller = controller
        self.crawl = CrawlControl(controller, db_path or default_sample_db_path(), self)
        self.snapshot: ActivitySnapshot | None = None
        self._plotted: tuple[int, list[tuple[float, int, int]]] | None = None
        self.figures: CrawlFigures | None = None
        self._last_request = -1e9

        self.start_button = QPushButton("Start crawl", self)
        self.start_button.setToolTip("Walk the DHT asking nodes for samples of the info-hashes "
                                     "they store (BEP 51)")
        self.start_button.clicked.connect(self.start_crawl)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop the crawl (what it found stays in the database)")
        self.stop_button.clicked.connect(self.crawl.stop)
        spec = spec_of("crawl_rate").info  # the same range as the preferences' crawl rate
        self.rate = QDoubleSpinBox(self)
        self.rate.setRange(float(spec.low or 0.1), float(spec.high or MAX_RATE))
        self.rate.setDecimals(1)
        self.rate.setValue(rate)
        self.rate.setSuffix(f" {spec.unit}")
        self.rate.setToolTip(f"{spec.help} Each node is asked again only after the interval "
                             "it gives.")
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setToolTip(f"Every sampled info-hash in {self.crawl.db_path}")
        self.export_button.clicked.connect(self.export_dialog)
        self.message = InlineMessage(self)
        self.summary = QLabel(IDLE_TEXT, self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.estimate = QLabel(self)
        self.estimate.setWordWrap(True)
        self.estimate.setTextFormat(Qt.TextFormat.RichText)
        self.estimate.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.estimate.setToolTip(
            "Chao2 (bias-corrected) from how many nodes returned each info-hash: a lower-bound "
            "estimator, reliable once enough nodes answered and some info-hashes came back "
            "from two of them")

        self.plot = LazyActivityPlot(self)
        self.top = TopInfohashesModel(self)
        self.top_proxy = sorting_proxy(self)
        self.top_proxy.setSourceModel(self.top)
        self.top_table = QTableView(self)
        self.top_table.setModel(self.top_proxy)
        setup_table(self.top_table)
        self.top_table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.top_table.doubleClicked.connect(self._double_clicked)
        self.top_table.sortByColumn(I_NODES, Qt.SortOrder.DescendingOrder)
        self.top_table.setToolTip("Info-hashes the crawl sampled, from the most nodes down; "
                                  "double-click one to find its peers")
        unit = self.fontMetrics().horizontalAdvance("0")
        for col, chars in enumerate((42, 7, 8, 9)):
            self.top_table.setColumnWidth(col, unit * chars)
        self.top_title = QLabel("Most sampled info-hashes", self)
        self.lookup_button = QPushButton("Look up", self)
        self.lookup_button.setToolTip("Find the peers of the selected info-hash (or double-click "
                                      "it)")
        self.lookup_button.clicked.connect(self.lookup_selected)
        self.nodes = SamplerNodesModel(self)
        self.nodes_proxy = sorting_proxy(self)
        self.nodes_proxy.setSourceModel(self.nodes)
        self.nodes_table = QTableView(self)
        self.nodes_table.setModel(self.nodes_proxy)
        setup_table(self.nodes_table)
        for col, chars in enumerate((22, 8, 10, 8, 8, 10)):
            self.nodes_table.setColumnWidth(col, unit * chars)
        self.nodes_table.sortByColumn(N_SEEN, Qt.SortOrder.DescendingOrder)
        self.nodes_table.setToolTip("Nodes that answered sample_infohashes: how many "
                                    "info-hashes they store, the interval they ask for, the "
                                    "samples they gave")
        self.nodes_title = QLabel("Nodes that speak BEP 51", self)

        top_row = QHBoxLayout()
        top_row.addWidget(self.start_button)
        top_row.addWidget(self.stop_button)
        top_row.addWidget(self.rate)
        top_row.addStretch(1)
        top_row.addWidget(self.export_button)
        top_box = QWidget(self)
        vbox = QVBoxLayout(top_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.top_title, 1)
        row.addWidget(self.lookup_button)
        vbox.addLayout(row)
        vbox.addWidget(self.top_table, 1)
        vbox.addWidget(muted_label("Ranked by the number of nodes that returned them; "
                                   "double-click one to look it up.", self))
        nodes_box = QWidget(self)
        vbox = QVBoxLayout(nodes_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addWidget(self.nodes_title)
        vbox.addWidget(self.nodes_table, 1)
        tables = QSplitter(Qt.Orientation.Horizontal, self)
        tables.addWidget(top_box)
        tables.addWidget(nodes_box)
        plot_box = QWidget(self)
        vbox = QVBoxLayout(plot_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addWidget(self.plot, 1)
        vbox.addWidget(muted_label("Bars: info-hashes sampled per minute; line: how many of "
                                   "them were new.", self))
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(plot_box)
        self.splitter.addWidget(tables)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top_row)
        layout.addWidget(self.message)
        layout.addWidget(self.summary)
        layout.addWidget(self.estimate)
        layout.addWidget(self.splitter, 1)

        self.crawl.figures_changed.connect(self._figures)
        self.crawl.snapshot_ready.connect(self.apply_snapshot)
        self.crawl.running_changed.connect(self._update_buttons)
        self.crawl.exported.connect(self._exported)
        # bound methods, not lambdas: Qt drops them with the panel (the controller outlives it)
        controller.state_changed.connect(self._update_buttons)
        self.top_table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._update_buttons()

    # --- crawl ----------------------------------------------------------------------------------
    def start_crawl(self) -> bool:
        self.message.clear_message()
        why = self.crawl.start(self.rate.value())
        if why is not None:
            self.message.show_error(why)
            return False
        return True

    def _update_buttons(self, *_: object) -> None:
        running = self.crawl.running
        self.start_button.setEnabled(self.controller.running and not running)
        self.stop_button.setEnabled(running)
        self.rate.setEnabled(not running)
        self.lookup_button.setEnabled(self.selected_infohash() is not None)

    def _figures(self, f: CrawlFigures) -> None:
        self.figures = f
        what = "Crawling" if self.crawl.running else "Crawled"
        self.summary.setText(
            f"<b>{what}</b> for {_clock(f.elapsed)} at up to {f.rate:g} queries/s · "
            f"{f.replies:,} replies from {f.supporting:,} nodes speaking BEP 51 "
            f"({f.without:,} without, {f.failed:,} timeouts) · {f.samples:,} samples "
            f"({f.samples_per_minute:,.0f} per minute) · <b>{f.distinct:,} distinct "
            f"info-hashes</b>")
        if self.isVisible() and self.crawl.running:
            now = f.started_at + f.elapsed
            if now - self._last_request >= SNAPSHOT_EVERY and self.crawl.request_snapshot():
                self._last_request = now

    # --- database snapshot ----------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.crawl.request_snapshot()  # what an earlier crawl left in the database

    def apply_snapshot(self, snap: ActivitySnapshot) -> None:
        self.snapshot = snap
        keep = self.selected_infohash()
        self.top.set_rows(snap.top)
        self.nodes.set_rows(snap.nodes)
        # a repaint of the plot is the costly part: only when a bar changed or moved a minute
        key = (int(snap.at // 60), snap.per_minute)
        if self._plotted != key:
            self._plotted = key
            self.plot.set_minutes(snap.per_minute, snap.at)
        t = snap.totals
        self.top_title.setText(f"Most sampled info-hashes ({t.info_hashes:,} in the database)")
        self.nodes_title.setText(f"Nodes that speak BEP 51 ({t.nodes_supporting:,}; "
                                 f"{t.nodes_without:,} do not)")
        e = snap.estimate
        if e.observed == 0:
            self.estimate.setText("")
        else:
            scope = "this crawl" if snap.estimate_since is not None else "the database"
            flag = ("" if e.reliable else
                    " — <i>too few repeat sightings yet to be reliable</i>")
            self.estimate.setText(
                f"Estimated <b>≈ {e.estimate:,.0f} info-hashes</b> in the DHT "
                f"(95 %: {e.low:,.0f}–{e.high:,.0f}; {e.observed:,} seen in {scope}, "
                f"{e.q1:,} from one node, {e.q2:,} from two, over {e.nodes:,} nodes){flag}")
        if keep is not None:
            self.select_infohash(keep)
        self._update_buttons()

    # --- info-hashes ----------------------------------------------------------------------------
    def selected_infohash(self) -> str | None:
        rows = self.top_table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.top.row(self.top_proxy.mapToSource(rows[0]).row()).info_hash.hex()

    def select_infohash(self, hex_hash: str) -> bool:
        row = self.top.row_of(bytes.fromhex(hex_hash))
        if row is None:
            return False
        index = self.top_proxy.mapFromSource(self.top.index(row, 0))
        self.top_table.selectRow(index.row())
        return True

    def lookup_selected(self) -> bool:
        chosen = self.selected_infohash()
        if chosen is None:
            return False
        self.lookup_requested.emit(chosen)
        return True

    def _double_clicked(self, index: QModelIndex) -> None:
        source = self.top_proxy.mapToSource(index)
        self.lookup_requested.emit(self.top.row(source.row()).info_hash.hex())

    # --- export ---------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export sampled info-hashes",
                                              "infohashes.csv", "CSV (*.csv)")
        if name:
            self.crawl.export_csv(Path(name))
            self.message.show_info(f"Writing {name}…")

    def _exported(self, path: str, rows: int, error: str) -> None:
        if error:
            self.message.show_error(f"Cannot export to {path}: {error}")
        else:
            self.message.show_info(f"{rows:,} info-hashes written to {path}")
