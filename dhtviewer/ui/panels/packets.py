"""PacketLogPanel: every datagram the node sent or received, Wireshark style.

A bounded ring buffer (``PacketsModel``) shown through a filter (free text, method, direction);
selecting a row shows the whole decoded message below. Pause freezes the list for reading (new
packets are counted, not kept); the view follows the newest packet while scrolled to the bottom.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht import events as ev
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.models import PacketsModel, PacketsProxy
from dhtviewer.ui.models.nodes import monospace_font
from dhtviewer.ui.models.packets import (
    COL_ADDR,
    COL_DIR,
    COL_METHOD,
    COL_SIZE,
    COL_TID,
    COL_TIME,
    COL_TYPE,
)
from dhtviewer.ui.panels.common import setup_table

METHODS = ("ping", "find_node", "get_peers", "announce_peer", "sample_infohashes", "get", "put")
CAPACITY = 5000


class PacketLogPanel(QWidget):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = PacketsModel(CAPACITY, self)
        self.proxy = PacketsProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter: address, method, transaction id, summary…")
        self.filter.setToolTip("Show only packets whose address, method, type, transaction id "
                               "or summary contains this text")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_text)
        self.method = QComboBox(self)
        self.method.addItem("All methods", None)
        for m in METHODS:
            self.method.addItem(m, m)
        self.method.setToolTip("Show one KRPC method only")
        self.method.currentIndexChanged.connect(
            lambda: self.proxy.set_method(self.method.currentData())
        )
        self.direction = QComboBox(self)
        for label, value in (("In and out", None), ("In", "in"), ("Out", "out")):
            self.direction.addItem(label, value)
        self.direction.setToolTip("Received, sent, or both")
        self.direction.currentIndexChanged.connect(
            lambda: self.proxy.set_direction(self.direction.currentData())
        )
        self.pause = QPushButton("Pause", self)
        self.pause.setCheckable(True)
        self.pause.setToolTip("Freeze the list to read it; packets meanwhile are counted, "
                              "not kept")
        self.pause.toggled.connect(self.set_paused)
        self.follow = QCheckBox("Follow", self)
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the newest packet in view")
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setToolTip("Empty the packet log")
        self.clear_button.clicked.connect(self.model.clear)
        self.count = QLabel(self)
        self.count.setToolTip(f"Packets shown / kept (the log keeps the last {CAPACITY:,})")

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        setup_table(self.table, sortable=False)
        self.table.setToolTip("Select a packet to see the whole decoded message")
        unit = self.fontMetrics().horizontalAdvance("0")
        for col, chars in ((COL_TIME, 9), (COL_DIR, 5), (COL_ADDR, 22), (COL_TYPE, 10),
                           (COL_METHOD, 15), (COL_TID, 7), (COL_SIZE, 6)):
            self.table.setColumnWidth(col, unit * chars)
        self.table.selectionModel().currentRowChanged.connect(self._selected)
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setFont(monospace_font())
        self.detail.setPlaceholderText("Select a packet to see the decoded message.")
        self.detail.setToolTip("The selected message, decoded (bytes as hex unless printable)")

        bar = QHBoxLayout()
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.method)
        bar.addWidget(self.direction)
        bar.addWidget(self.pause)
        bar.addWidget(self.follow)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.count)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        controller.events.connect(self.add_events)
        self._update_count()

    def add_events(self, batch: list[ev.Event]) -> None:
        bar = self.table.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        before = (self.model.rowCount(), self.model.dropped_while_paused)
        self.model.add_events(batch)
        if (self.model.rowCount(), self.model.dropped_while_paused) == before:
            return
        if self.follow.isChecked() and at_bottom and not self.model.paused:
            self.table.scrollToBottom()
        self._update_count()

    def set_paused(self, paused: bool) -> None:
        self.model.paused = paused
        if not paused:
            self.model.dropped_while_paused = 0
        self.pause.setText("Resume" if paused else "Pause")
        self._update_count()

    def _update_count(self) -> None:
        text = f"{self.proxy.rowCount():,} / {self.model.rowCount():,}"
        if self.model.paused:
            text += f" · paused, {self.model.dropped_while_paused:,} not kept"
        self.count.setText(text)

    def _selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.detail.clear()
            return
        row = self.proxy.mapToSource(current).row()
        self.detail.setPlainText(self.model.decoded(row))
