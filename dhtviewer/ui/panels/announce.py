"""AnnouncePanel: tell the DHT that we have a torrent, then check that it listened.

An announce is a get_peers lookup followed by announce_peer to the closest nodes that gave us a
token. The panel lists which nodes accepted it and which did not, then verifies it with an
independent get_peers lookup, which must return our own peer (our address as the storing nodes
saw it, with the announced port): verified, or not found.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht.addresses import format_addr
from dhtviewer.net.handles import AnnounceResult
from dhtviewer.net.session import DEFAULT_PORT
from dhtviewer.ui.announce_check import AnnounceVerification
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.models.nodes import monospace_font
from dhtviewer.ui.panels.common import (
    InlineMessage,
    clear_query_error,
    muted_label,
    parse_query,
    query_field,
)
from dhtviewer.ui.views.theme import current_theme

MIN_RESULT_ROWS = 5
IDLE, ANNOUNCING, VERIFYING, VERIFIED, NOT_FOUND = (
    "idle", "announcing", "verifying", "verified", "not found"
)


class AnnouncePanel(QWidget):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.status = IDLE
        self._info_hash: bytes | None = None
        self._stored_text = ""

        self.query = query_field(
            self,
            "info-hash or magnet link",
            "The torrent to announce: 40-hex or 32-base32 info-hash, or a magnet link",
            self.start_announce,
            self._edited,
        )
        self.port = QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.port.setToolTip("TCP port other peers should connect to")
        self.implied = QCheckBox("Implied port", self)
        self.implied.setToolTip("BEP 5 implied_port: peers use the UDP source port of the "
                                "announce (our DHT port) instead of the port above")
        self.implied.toggled.connect(lambda on: self.port.setEnabled(not on))
        self.announce_button = QPushButton("Announce", self)
        self.announce_button.setToolTip("Announce us as a peer of this torrent, then verify")
        self.announce_button.clicked.connect(self.start_announce)
        self.message = InlineMessage(self)

        self.status_label = QLabel("Nothing announced yet.", self)
        self.status_label.setWordWrap(True)
        self.status_label.setToolTip("Progress of the announce")
        self.verify_label = QLabel(self)
        self.verify_label.setWordWrap(True)
        self.verify_label.setTextFormat(Qt.TextFormat.RichText)
        self.verify_label.setToolTip("Whether an independent get_peers lookup returns our peer")
        self.verify_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.nodes = QTreeWidget(self)
        self.nodes.setRootIsDecorated(False)
        self.nodes.setHeaderLabels(["Node", "Result"])
        self.nodes.setToolTip("The closest nodes we sent announce_peer to, and whether they "
                              "stored it")
        self.nodes.setFont(monospace_font())
        self.nodes.setColumnWidth(0, self.fontMetrics().horizontalAdvance("0") * 24)
        # room for a few results at least (a short window scrolls the panel instead)
        rows = self.nodes.fontMetrics().height() * 1.3 * MIN_RESULT_ROWS
        self.nodes.setMinimumHeight(int(rows + self.nodes.header().sizeHint().height()
                                        + 2 * self.nodes.frameWidth()))

        row = QHBoxLayout()
        row.addWidget(self.port)
        row.addWidget(self.implied)
        row.addStretch(1)
        form = QFormLayout()
        form.addRow("Info-hash", self.query)
        form.addRow("Port", row)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.announce_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(self.verify_label)
        layout.addWidget(self.nodes, 1)
        layout.addWidget(muted_label("The lookup view draws the announce's path and the "
                                     "verifying lookup.", self))

        controller.announce_finished.connect(self._announced)
        controller.announce_verified.connect(self._verified)
        controller.state_changed.connect(self._state_changed)
        self._update_buttons()

    def set_query(self, text: str) -> None:
        self.query.setText(text)
        self._edited()

    def _edited(self) -> None:
        clear_query_error(self.query, self.message)

    def _state_changed(self, state: str, _detail: str) -> None:
        if state == "stopped" and self.status in (ANNOUNCING, VERIFYING):
            self._interrupted("the node stopped before the announce was verified")
        self._update_buttons()

    def _interrupted(self, why: str) -> None:
        self.status = IDLE
        self.verify_label.setText(f"<span style='color:{current_theme().bad}'>"
                                  f"<b>✗ Not verified</b></span> — {why}")
        self._update_buttons()

    def _task_done(self, task: asyncio.Task[AnnounceVerification | None]) -> None:
        failed = task.cancelled() or task.result() is None
        if failed and self.status in (ANNOUNCING, VERIFYING):
            self._interrupted("the announce did not complete (see the log)")

    def _update_buttons(self) -> None:
        busy = self.status in (ANNOUNCING, VERIFYING)
        self.announce_button.setEnabled(self.controller.running and not busy)

    def start_announce(self) -> bool:
        info_hash = parse_query(self.query, self.message, self.controller.running)
        if info_hash is None:
            return False
        implied = self.implied.isChecked()
        task = self.controller.announce(info_hash, self.port.value(), implied)
        if task is None:
            return False
        self._info_hash = info_hash
        task.add_done_callback(self._task_done)
        self.status = ANNOUNCING
        self.nodes.clear()
        what = "our DHT port (implied)" if implied else f"port {self.port.value()}"
        self.status_label.setText(f"Announcing {info_hash.hex()} on {what}: looking up the "
                                  "closest nodes…")
        self.verify_label.setText("")
        self._update_buttons()
        return True

    def _announced(self, result: AnnounceResult) -> None:
        if result.info_hash != self._info_hash:
            return
        t = current_theme()
        self.nodes.clear()
        for addr in result.stored_at:
            item = QTreeWidgetItem([format_addr(addr), "✓ stored"])
            item.setForeground(1, _color(t.good))
            self.nodes.addTopLevelItem(item)
        for addr in result.failed:
            item = QTreeWidgetItem([format_addr(addr), "✗ refused or no answer"])
            item.setForeground(1, _color(t.bad))
            self.nodes.addTopLevelItem(item)
        n, m = len(result.stored_at), len(result.failed)
        self._stored_text = (f"{n} node{'s' if n != 1 else ''} stored the announce"
                             + (f", {m} did not" if m else "") + ".")
        self.status_label.setText(self._stored_text + " Verifying with an independent "
                                  "get_peers lookup…")
        self.status = VERIFYING
        self.verify_label.setText("verifying…")
        self._update_buttons()

    def _verified(self, check: AnnounceVerification) -> None:
        if check.info_hash != self._info_hash:
            return
        t = current_theme()
        self.status_label.setText(self._stored_text)
        if check.verified:
            self.status = VERIFIED
            self.verify_label.setText(f"<span style='color:{t.good}'><b>✓ Verified</b></span> "
                                      f"— {check.detail}")
        else:
            self.status = NOT_FOUND
            self.verify_label.setText(f"<span style='color:{t.bad}'><b>✗ Not found</b></span> "
                                      f"— {check.detail}")
        self._update_buttons()


def _color(hex_color: str) -> QBrush:
    return QBrush(QColor(hex_color))
