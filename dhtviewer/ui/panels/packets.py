"""PacketLogPanel: every datagram the node sent or received, Wireshark style.

The packets go to a ``PacketCapture`` (a bounded ring on disk, see ``ui.capture.store``) as the
controller hands them over, whatever the view does; the table is a lazy view of it. A display
filter (``ui.capture.filter``, plus the method and direction selectors) runs over the whole
capture. Pause freezes the view for reading, never the capture: the rows that came meanwhile are
counted and come in on resume. Selecting a row shows the decoded message and its bytes below,
with its pair (the reply of a query, the query of a reply; Ctrl+. jumps between them). The
Addresses tab groups the packets by remote address. The status line says how many packets are
shown, kept and captured, and how many never reached the log: dropped unparsed by the node
(blocked IPs) or over the controller's per-tick cap.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht import events as ev
from dhtviewer.ui.capture.dissect import pair_text
from dhtviewer.ui.capture.filter import Filter, FilterError, compile_filter, help_text
from dhtviewer.ui.capture.records import Direction, Kind
from dhtviewer.ui.capture.store import MB, CaptureLimits, PacketCapture
from dhtviewer.ui.capture.writer import AddressesResult
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.models.addresses import HEADERS as ADDRESS_HEADERS
from dhtviewer.ui.models.addresses import AddressesModel
from dhtviewer.ui.models.nodes import SORT_ROLE, format_addr, monospace_font
from dhtviewer.ui.models.packets import (
    COL_ADDR,
    COL_DIR,
    COL_METHOD,
    COL_NO,
    COL_RTT,
    COL_SIZE,
    COL_TID,
    COL_TIME,
    COL_TYPE,
    PacketsModel,
    direction_filter,
    method_filter,
)
from dhtviewer.ui.panels.capture_limits import CaptureLimitsDialog
from dhtviewer.ui.panels.common import InlineMessage, copy_text, mark_invalid, setup_table
from dhtviewer.ui.settings_store import SettingsStore

METHODS = ("ping", "find_node", "get_peers", "announce_peer", "sample_infohashes", "get", "put")
FILTER_DELAY_MS = 400
"""Typing pauses this long before the filter runs (Enter runs it at once)."""
STATUS_MS = 500
ADDRESSES_EVERY_MS = 2000
"""How often the Addresses tab is recounted while it is shown."""


class PacketLogPanel(QWidget):
    def __init__(
        self,
        controller: Controller,
        capture_dir: Path | None = None,
        limits: CaptureLimits | None = None,
        store: SettingsStore | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``capture_dir``: where the capture file goes (None: a temporary directory);
        ``limits`` its bounds (default: ``store``'s, else the defaults), saved to ``store``
        when the user changes them."""
        super().__init__(parent)
        self.controller = controller
        self.store = store
        if limits is None:
            limits = store.packet_log_limits() if store is not None else CaptureLimits()
        self.capture = PacketCapture(capture_dir, limits)
        self.model = PacketsModel(self.capture, self)
        self.model.listeners.append(self._addresses_arrived)
        self.addresses = AddressesModel(self)
        self.addresses_proxy = QSortFilterProxyModel(self)
        self.addresses_proxy.setSortRole(SORT_ROLE)
        self.addresses_proxy.setSourceModel(self.addresses)
        self._addresses_job: int | None = None
        self._addresses_started = 0.0
        self._detail_peer: int | None = None  # the pairing the detail pane shows
        self._blocked = 0  # datagrams from blocked IPs since Clear (over sessions)
        self._blocked_seen = 0.0  # the node's counter at the last stats
        self._events_dropped = 0
        self._events_dropped_seen = 0.0
        self._ui_cap_base = controller.dropped_events

        self._build_bar()
        self._build_pages()
        self.count = QLabel(self)
        self.count.setWordWrap(True)
        self.drops = QLabel(self)
        self.drops.setWordWrap(True)
        self.drops.setToolTip(
            "Datagrams that never reached the log. From blocked IPs: a flooding address is "
            "ignored for a while and its datagrams are dropped before parsing (the node's "
            "per-IP rate limit). Over the UI's cap: more packets arrived between two 100 ms "
            "updates than the window takes. Lost: the capture file could not keep up.")
        status = QVBoxLayout()
        status.setSpacing(0)
        status.addWidget(self.count)
        status.addWidget(self.drops)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._bar)
        layout.addWidget(self.filter_message)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(status)

        controller.events.connect(self.add_events)
        controller.stats_changed.connect(self._on_stats)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_MS)
        self._status_timer.timeout.connect(self._tick)
        self._status_timer.start()
        self._addresses_timer = QTimer(self)
        self._addresses_timer.setInterval(ADDRESSES_EVERY_MS)
        self._addresses_timer.timeout.connect(self.refresh_addresses)
        self.refresh_status()

    # --- construction --------------------------------------------------------------------------
    def _build_bar(self) -> None:
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Display filter, e.g. method == get_peers and rtt > 100, "
                                       "or any word…")
        self.filter.setToolTip(help_text())
        self.filter.setClearButtonEnabled(True)
        self.filter.returnPressed.connect(self.apply_filter)
        self.filter.textChanged.connect(self._filter_edited)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.filter_message = InlineMessage(self)
        self.method = QComboBox(self)
        self.method.addItem("All methods", None)
        for m in METHODS:
            self.method.addItem(m, m)
        self.method.setToolTip("Show one KRPC method only")
        self.method.currentIndexChanged.connect(self.apply_filter)
        self.direction = QComboBox(self)
        for label, value in (("In and out", None), ("In", Direction.IN), ("Out", Direction.OUT)):
            self.direction.addItem(label, value)
        self.direction.setToolTip("Received, sent, or both")
        self.direction.currentIndexChanged.connect(self.apply_filter)
        # Tool buttons: a push button's style minimum width would not fit a 1024-pixel window.
        self.pause = QToolButton(self)
        self.pause.setText("Pause")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Hold the list still to read it; the capture goes on, and the "
                              "packets that came meanwhile appear on resume")
        self.pause.toggled.connect(self.set_paused)
        self.follow = QCheckBox("Follow", self)
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the newest packet in view")
        self.clear_button = QToolButton(self)
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Empty the capture")
        self.clear_button.clicked.connect(self.clear)
        self.limits_button = QToolButton(self)
        self.limits_button.setText("Limits…")
        self.limits_button.setToolTip("How many packets the capture keeps, and how much disk")
        self.limits_button.clicked.connect(self.edit_limits)
        for combo in (self.method, self.direction):
            # narrow enough for a 1024-pixel window; the list opens as wide as it needs
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(7)
        # The filter has a row of its own (as in Wireshark): the wider, the more it shows.
        controls = QHBoxLayout()
        for w in (self.method, self.direction, self.pause, self.follow, self.clear_button,
                  self.limits_button):
            controls.addWidget(w)
        controls.addStretch(1)
        bar = QVBoxLayout()
        bar.addWidget(self.filter)
        bar.addLayout(controls)
        self._bar = bar

    def _build_pages(self) -> None:
        self.table = QTableView(self)
        self.table.setModel(self.model)
        setup_table(self.table, sortable=False)
        self.table.setToolTip("Select a packet to see the whole decoded message; right-click "
                              "for more")
        unit = self.fontMetrics().horizontalAdvance("0")
        for col, chars in ((COL_NO, 8), (COL_TIME, 9), (COL_DIR, 5), (COL_ADDR, 21),
                           (COL_TYPE, 10), (COL_METHOD, 13), (COL_TID, 7), (COL_RTT, 8),
                           (COL_SIZE, 6)):
            self.table.setColumnWidth(col, unit * chars)
        self.table.selectionModel().currentRowChanged.connect(self._selected)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.model.rowsAboutToBeRemoved.connect(self._before_head_removed)
        self.model.rowsRemoved.connect(self._after_head_removed)
        self._scroll_before: int | None = None

        self.pair_label = QLabel(self)
        self.pair_button = QPushButton("Go to reply", self)
        self.pair_button.setToolTip("Jump to the other packet of this query/reply pair (Ctrl+.)")
        self.pair_button.clicked.connect(self.goto_pair)
        self.pair_button.setEnabled(False)
        shortcut = QShortcut(QKeySequence("Ctrl+."), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.goto_pair)
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setFont(monospace_font())
        self.detail.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.detail.setPlaceholderText("Select a packet to see the decoded message.")
        self.detail.setToolTip("The selected message, decoded (bytes as hex unless printable), "
                               "then its bytes in hex and ASCII")
        detail_box = QWidget(self)
        pair_row = QHBoxLayout()
        pair_row.setContentsMargins(0, 0, 0, 0)
        pair_row.addWidget(self.pair_label, 1)
        pair_row.addWidget(self.pair_button)
        box = QVBoxLayout(detail_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(pair_row)
        box.addWidget(self.detail, 1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(detail_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        self.packets_page = split

        self.addresses_table = QTableView(self)
        self.addresses_table.setModel(self.addresses_proxy)
        setup_table(self.addresses_table, sortable=True)
        self.addresses_table.horizontalHeader().setStretchLastSection(False)
        head = self.addresses_table.horizontalHeader()
        pad = unit * 3  # room for the sort arrow
        for c, title in enumerate(ADDRESS_HEADERS):
            chars = 21 if c == 0 else 15 if c == 1 else 7
            self.addresses_table.setColumnWidth(
                c, max(unit * chars, head.fontMetrics().horizontalAdvance(title) + pad))
        self.addresses_table.setToolTip("Double-click an address to see its packets")
        self.addresses_table.doubleClicked.connect(
            lambda index: self.open_address(self.addresses_proxy.mapToSource(index).row()))
        self.addresses_note = QLabel(self)
        self.addresses_note.setWordWrap(True)
        page = QWidget(self)
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.addresses_table, 1)
        column.addWidget(self.addresses_note)
        self.addresses_page = page

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.packets_page, "Packets")
        self.tabs.addTab(self.addresses_page, "Addresses")
        self.tabs.setTabToolTip(1, "The packets grouped by remote address (those the filter "
                                   "shows)")
        self.tabs.currentChanged.connect(self._tab_changed)

    # --- feeding -------------------------------------------------------------------------------
    def add_events(self, batch: list[ev.Event]) -> None:
        """A controller batch: captured whatever the view does, then shown."""
        bar = self.table.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        if not self.capture.add_events(batch):
            return
        self.model.poll()
        if self.follow.isChecked() and at_bottom and not self.model.paused:
            self.table.scrollToBottom()
        current = self.table.currentIndex()
        p = self.model.packet(current.row()) if current.isValid() else None
        if p is not None and p.peer != self._detail_peer:
            self._selected(current, current)  # its reply came meanwhile
        self.refresh_status()

    def _tick(self) -> None:
        self.model.poll()
        self.refresh_status()

    def _on_stats(self, stats: dict[str, Any]) -> None:
        # The node's counters start again with each session: add up what each one counted.
        self._blocked, self._blocked_seen = _accumulate(
            self._blocked, self._blocked_seen, stats.get("dropped_blocked"))
        self._events_dropped, self._events_dropped_seen = _accumulate(
            self._events_dropped, self._events_dropped_seen, stats.get("events_dropped"))
        self.refresh_status()

    def set_paused(self, paused: bool) -> None:
        self.model.set_paused(paused)
        self.pause.setText("Resume" if paused else "Pause")
        if not paused and self.follow.isChecked():
            self.table.scrollToBottom()
        self.refresh_status()

    def clear(self) -> None:
        self.model.clear()
        self.detail.clear()
        self.pair_label.clear()
        self.pair_button.setEnabled(False)
        self.addresses.set_rows([])
        self._blocked = self._events_dropped = 0
        self._ui_cap_base = self.controller.dropped_events
        self.refresh_status()

    def close_capture(self) -> None:
        """Stop the capture's writer and delete its file (the window is closing)."""
        self._status_timer.stop()
        self._addresses_timer.stop()
        self.capture.close()

    # --- filter --------------------------------------------------------------------------------
    def current_filter(self) -> Filter | None:
        """The filter text with the method and direction selectors; raises FilterError."""
        text = compile_filter(self.filter.text(), lambda: self.capture.time_origin or 0.0)
        parts = [f for f in (text, method_filter(self.method.currentData()),
                             direction_filter(self.direction.currentData())) if f is not None]
        return Filter.all_of(parts)

    def _filter_edited(self) -> None:
        try:
            compile_filter(self.filter.text())
        except FilterError as err:
            self._filter_timer.stop()
            self._show_filter_error(str(err))
            return
        self._show_filter_error(None)
        self._filter_timer.start()

    def _show_filter_error(self, message: str | None) -> None:
        if message is None:
            self.filter_message.clear_message()
        else:
            self.filter_message.show_error(f"Filter: {message}")
        mark_invalid(self.filter, message is not None)

    def apply_filter(self) -> None:
        """Run the filter over the whole capture (a bad one says why and changes nothing)."""
        self._filter_timer.stop()
        try:
            where = self.current_filter()
        except FilterError as err:
            self._show_filter_error(str(err))
            return
        self._show_filter_error(None)
        self.model.set_filter(where)
        self._selected(self.table.currentIndex(), QModelIndex())
        if self.tabs.currentWidget() is self.addresses_page:
            self.refresh_addresses(force=True)
        if self.follow.isChecked():
            self.table.scrollToBottom()
        self.refresh_status()

    # --- status --------------------------------------------------------------------------------
    def refresh_status(self) -> None:
        cap, model = self.capture, self.model
        parts = [f"{model.rowCount():,} shown", f"{cap.kept:,} kept",
                 f"{cap.captured:,} captured"]
        if model.paused:
            parts.append(f"paused, {model.new_while_paused():,} new")
        if model.filtering:
            parts.append(f"filtering {model.scan_progress():.0%}")
        limits = cap.limits
        if cap.path is not None:
            parts.append(f"{cap.disk_bytes / MB:.1f} of {limits.max_bytes / MB:,.0f} MB on disk")
        self.count.setText(" · ".join(parts))
        evicted = cap.captured - cap.kept
        where = str(cap.path) if cap.path is not None else "memory only"
        self.count.setToolTip(
            "shown: packets the filter lets through\n"
            f"kept: packets in the capture now (at most {limits.max_packets:,} and "
            f"{limits.max_bytes / MB:,.0f} MB; the oldest go first)\n"
            f"captured: since the start or Clear ({evicted:,} dropped by the limits)\n"
            f"capture file: {where}" + (f"\n{cap.error}" if cap.error else ""))
        ui_cap = self.controller.dropped_events - self._ui_cap_base
        drops = [f"Never reached the log: {self._blocked:,} datagrams from blocked IPs "
                 f"(dropped unparsed)", f"{ui_cap:,} over the UI's per-tick cap"]
        if self._events_dropped:
            drops.append(f"{self._events_dropped:,} events lost by the node's queue")
        if cap.lost:
            drops.append(f"{cap.lost:,} lost (the capture file could not keep up)")
        if cap.error:
            drops.append(cap.error)
        self.drops.setText(" · ".join(drops))

    # --- selection and pairs -------------------------------------------------------------------
    def _selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        p = self.model.packet(current.row()) if current.isValid() else None
        self._detail_peer = p.peer if p is not None else None
        if p is None:
            self.detail.clear()
            self.pair_label.clear()
            self.pair_button.setEnabled(False)
            return
        self.detail.setPlainText(self.model.detail(current.row()))
        self.pair_label.setText(pair_text(p))
        self.pair_button.setText("Go to query" if p.kind is not Kind.QUERY else "Go to reply")
        self.pair_button.setVisible(p.kind in (Kind.QUERY, Kind.RESPONSE, Kind.ERROR))
        self.pair_button.setEnabled(p.peer is not None)

    def goto_pair(self) -> bool:
        """Select the other packet of the current one's query/reply pair; False (and the reason
        beside the button) when there is none to show."""
        current = self.table.currentIndex()
        p = self.model.packet(current.row()) if current.isValid() else None
        if p is None:
            return False
        if p.peer is None:
            self.pair_label.setText(pair_text(p) or "This packet is not part of a pair")
            return False
        row = self.model.row_of(p.peer)
        if row is None:
            if self.capture.packet(p.peer) is None:
                why = "left the capture"
            elif self.model.paused and p.peer >= self.model.frontier:
                why = "came while paused: it shows on resume"
            else:
                why = "is hidden by the filter"
            self.pair_label.setText(f"No. {p.peer:,} {why}")
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        p = self.model.packet(index.row()) if index.isValid() else None
        if p is None:
            return
        self.table.selectRow(index.row())
        menu = QMenu(self)
        other = "reply" if p.kind is Kind.QUERY else "query"
        go = menu.addAction(f"Go to the {other}\tCtrl+.", self.goto_pair)
        go.setEnabled(p.peer is not None)
        menu.addSeparator()
        addr = format_addr(p.addr)
        menu.addAction(f"Filter: address {addr}", lambda: self._set_filter(f"addr == {addr}"))
        if p.tid:
            menu.addAction("Filter: this transaction",
                           lambda: self._set_filter(f"addr == {addr} and tid == {p.tid.hex()}"))
        if p.method:
            menu.addAction(f"Filter: method {p.method}",
                           lambda: self._set_filter(f"method == {p.method}"))
        menu.addSeparator()
        menu.addAction("Copy summary", lambda: copy_text(str(index.siblingAtColumn(
            self.model.columnCount() - 1).data())))
        menu.addAction("Copy bytes as hex", lambda: copy_text(p.data.hex()))
        menu.addAction("Copy decoded message", lambda: copy_text(self.detail.toPlainText()))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _set_filter(self, text: str) -> None:
        self.filter.setText(text)
        self.apply_filter()

    # keep the rows being read in place when the oldest ones leave the capture
    def _before_head_removed(self, _parent: QModelIndex, first: int, _last: int) -> None:
        bar = self.table.verticalScrollBar()
        following = self.follow.isChecked() and bar.value() >= bar.maximum() - 2
        self._scroll_before = bar.value() if first == 0 and not following else None

    def _after_head_removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        if self._scroll_before is not None:
            self.table.verticalScrollBar().setValue(
                max(0, self._scroll_before - (last - first + 1)))
            self._scroll_before = None

    # --- addresses -----------------------------------------------------------------------------
    def show_addresses(self) -> None:
        self.tabs.setCurrentWidget(self.addresses_page)

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.addresses_page:
            self.refresh_addresses()
            self._addresses_timer.start()
        else:
            self._addresses_timer.stop()

    def refresh_addresses(self, force: bool = False) -> None:
        """Recount the packets per address (those the filter shows), in the background;
        ``force``: even if a count is running (the filter changed)."""
        if self._addresses_job is not None:
            if not force:
                return  # the previous count is still running
            self.capture.cancel(self._addresses_job)
        self._addresses_job = self.capture.start_addresses(self.model.filter)
        self._addresses_started = time.monotonic()
        self.model.expect_results(True)

    def _addresses_arrived(self, results: list[AddressesResult]) -> None:
        for r in results:
            if r.job != self._addresses_job:
                continue
            self._addresses_job = None
            self.model.expect_results(False)
            # A big capture takes a while to count: never spend most of the writer's time on it.
            took = time.monotonic() - self._addresses_started
            self._addresses_timer.setInterval(max(ADDRESSES_EVERY_MS, int(4000 * took)))
            self.addresses.time_origin = self.capture.time_origin or 0.0
            self.addresses.set_rows(r.rows, r.truncated)
            shown = "the packets the filter shows" if self.model.filter is not None else (
                "every packet kept")
            busiest = f"the busiest {len(r.rows):,} " if r.truncated else f"{len(r.rows):,} "
            self.addresses_note.setText(f"{busiest}addresses, over {shown}; double-click one "
                                        "to see its packets")

    def open_address(self, row: int) -> None:
        """Show the packets of the address on ``row`` of the Addresses table."""
        if not 0 <= row < self.addresses.rowCount():
            return
        s = self.addresses.stats(row)
        self.tabs.setCurrentWidget(self.packets_page)
        self._set_filter(f"addr == {format_addr((s.ip, s.port))}")

    # --- limits --------------------------------------------------------------------------------
    def edit_limits(self) -> None:
        dialog = CaptureLimitsDialog(self.capture, self)
        if dialog.exec():
            self.set_limits(dialog.limits())

    def set_limits(self, limits: CaptureLimits) -> None:
        self.capture.set_limits(limits)
        if self.store is not None:
            self.store.save_packet_log_limits(limits)
        self.model.poll()
        self.refresh_status()


def _accumulate(total: int, seen: float, value: object) -> tuple[int, float]:
    """Add a counter's growth to ``total``; a counter that went down started again from 0."""
    if not isinstance(value, int | float):
        return total, seen
    grown = value - seen if value >= seen else value
    return total + int(grown), float(value)
