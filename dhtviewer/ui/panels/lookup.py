"""LookupPanel: find the peers of a torrent and watch the lookup find its way.

The input takes a 40-hex or 32-base32 info-hash or a magnet link (a BitTorrent v2 one is looked
up by its truncated SHA-256 hash, and the panel says so); anything else gets an inline message
and starts nothing. Enter or "Find peers" starts the lookup, Esc (a window shortcut)
cancels it. The lookup path graph and a progress line (queried / answered / in flight / elapsed)
follow it live; the peers table lists what it found (copy, export CSV or JSON, with the lookup's
info-hash, time and parameters); the history keeps earlier lookups, also those of earlier runs
(``lookup_history``), and selecting one redraws its graph and peers. The node's own maintenance
lookups (bootstrap, bucket refresh) are hidden from the history unless asked for.

With "Scrape" the lookup also asks the closest nodes for their BEP 33 filters, and the estimated
seeds and downloaders of the swarm appear beside the peers found.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    QStringListModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from dhtviewer import __version__
from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import format_addr
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.lookup_history import load_history, save_history
from dhtviewer.ui.lookup_state import LookupState
from dhtviewer.ui.models import SORT_ROLE, LookupsModel, PeersModel
from dhtviewer.ui.models.lookups import COL_KIND, COL_STARTED
from dhtviewer.ui.models.nodes import filter_change
from dhtviewer.ui.models.peers import ExportContext
from dhtviewer.ui.panels.common import (
    InlineMessage,
    clear_query_error,
    copy_text,
    muted_label,
    parse_query,
    query_field,
    setup_table,
)
from dhtviewer.ui.settings_store import SettingsStore
from dhtviewer.ui.views.lazy import LazyLookupGraph

Index = QModelIndex | QPersistentModelIndex
MAINTENANCE_KINDS = frozenset({"bootstrap", "refresh"})
_NOT_FOLLOWED = frozenset({"get", "put"})
"""Kinds of lookup the panel lists but does not switch to (BEP 44: the Items panel shows them)."""
EMPTY_HINT = ("No lookup yet: paste an info-hash or a magnet link above and press Enter "
              "(on a local testnet, double-click one of its info-hashes in the Network panel).")


def swarm_estimate(scrape: ev.ScrapeFinished) -> str:
    """The BEP 33 estimate in a few words, beside the peers found."""
    if scrape.cancelled:
        return "scrape cancelled"
    if scrape.nodes == 0:
        return "no node answered the scrape"
    more = "more than " if scrape.saturated else "≈ "
    return (f"swarm {more}{scrape.seeds:.0f} seeds, {scrape.downloaders:.0f} downloaders "
            f"(BEP 33, {scrape.nodes} nodes)")


class LookupsProxy(QSortFilterProxyModel):
    """The lookup history, newest first by default; hides maintenance lookups unless
    ``show_maintenance``."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.show_maintenance = False

    def set_show_maintenance(self, show: bool) -> None:
        filter_change(self, lambda: setattr(self, "show_maintenance", show))

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self.show_maintenance:
            return True
        model = self.sourceModel()
        kind = model.data(model.index(source_row, COL_KIND, source_parent), SORT_ROLE)
        return kind not in MAINTENANCE_KINDS


def sorting_proxy(parent: QObject) -> QSortFilterProxyModel:
    proxy = QSortFilterProxyModel(parent)
    proxy.setSortRole(SORT_ROLE)
    proxy.setDynamicSortFilter(True)
    return proxy


class LookupPanel(QWidget):
    searched = Signal(str)
    """The text of an accepted query (for the recent list)."""
    target_changed = Signal(object)
    """Target (bytes) of the lookup shown, or None."""

    def __init__(self, controller: Controller, parent: QWidget | None = None,
                 store: SettingsStore | None = None) -> None:
        """``store``: where the export folder is remembered (None: not remembered)."""
        super().__init__(parent)
        self.controller = controller
        self.store = store
        self.shown: LookupState | None = None
        self._waiting_shown = False
        self._params: dict[int, dict[str, int | float]] = {}
        """Lookup id -> the parameters (k, alpha) of the node it ran on, noted at its start."""
        self._follow: int | None = None

        # --- input -----------------------------------------------------------------------------
        self.query = query_field(
            self,
            "info-hash (40 hex or 32 base32 characters) or magnet link",
            "What to look up: a 40-hex or 32-base32 info-hash, or a magnet link. Enter starts "
            "the lookup (Ctrl+L focuses this field).",
            self.start_lookup,
            self._query_edited,
        )
        self.recent = QStringListModel(self)
        completer = QCompleter(self.recent, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.query.setCompleter(completer)
        self.find_button = QPushButton("Find peers", self)
        self.find_button.setToolTip("Start a get_peers lookup (Enter)")
        self.find_button.setDefault(True)
        self.find_button.clicked.connect(self.start_lookup)
        self.scrape = QCheckBox("Scrape", self)
        self.scrape.setToolTip("BEP 33: also estimate how many seeds and downloaders the swarm "
                               "has, from the Bloom filters of the closest nodes")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the running lookup (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.controller.cancel_lookup)
        self.message = InlineMessage(self)
        self.progress = QLabel(EMPTY_HINT, self)
        self.progress.setToolTip("The lookup shown: nodes queried, answered, still in flight, "
                                 "timed out; peers found; time taken")
        self.progress.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # wraps rather than set the dock's minimum width (the target alone is 40 characters)
        self.progress.setWordWrap(True)

        # --- graph, peers, history -------------------------------------------------------------
        # built after the window's first frame (pyqtgraph is slow to import)
        self.graph = LazyLookupGraph(self)
        self.graph.setToolTip("")  # per-point tooltips come from the graph itself

        self.peers = PeersModel(self)
        self.peers_proxy = sorting_proxy(self)
        self.peers_proxy.setSourceModel(self.peers)
        self.peers_table = QTableView(self)
        self.peers_table.setModel(self.peers_proxy)
        setup_table(self.peers_table)
        self.peers_table.setToolTip("Peers the lookup found: how many nodes returned each, and "
                                    "when it was first seen (seconds after the start)")
        unit = self.fontMetrics().horizontalAdvance("0")
        for col, chars in enumerate((15, 7, 7)):
            self.peers_table.setColumnWidth(col, unit * chars)
        # every column in view (the last one stretches over what is left): the table asks for
        # their width rather than being squeezed by the graph beside it
        header = self.peers_table.horizontalHeader()
        last = header.fontMetrics().horizontalAdvance(self.peers.HEADERS[-1]) + unit * 3
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        self.peers_table.setMinimumWidth(unit * (15 + 7 + 7) + last + bar
                                         + 2 * self.peers_table.frameWidth())
        self.peers_title = QLabel("Peers", self)
        # wraps rather than widen the peers side (a scrape adds the swarm's estimate to it)
        self.peers_title.setWordWrap(True)
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy the selected peers (all if none selected) as IP:PORT")
        self.copy_button.clicked.connect(self.copy_peers)
        self.export_button = QPushButton("Export…", self)
        self.export_button.setToolTip("Save the peers as CSV or JSON (Ctrl+E)")
        self.export_button.clicked.connect(self.export_dialog)

        self.lookups = LookupsModel(parent=self)
        self.history_proxy = LookupsProxy(self)
        self.history_proxy.setSourceModel(self.lookups)
        self.history = QTableView(self)
        self.history.setModel(self.history_proxy)
        setup_table(self.history)
        self.history.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.history.sortByColumn(COL_STARTED, Qt.SortOrder.DescendingOrder)
        for col, chars in enumerate((42, 11, 12, 11, 7, 9, 11)):
            self.history.setColumnWidth(col, unit * chars)
        self.history.setToolTip("Earlier lookups: select one to redraw its graph and peers")
        self.history.selectionModel().currentRowChanged.connect(self._history_selected)
        self.show_maintenance = QCheckBox("Maintenance lookups", self)
        self.show_maintenance.setToolTip("Also list the node's own lookups (bootstrap and "
                                         "bucket refresh)")
        self.show_maintenance.toggled.connect(self.history_proxy.set_show_maintenance)

        top = QHBoxLayout()
        top.addWidget(self.query, 1)
        top.addWidget(self.scrape)
        top.addWidget(self.find_button)
        top.addWidget(self.cancel_button)

        peers_box = QWidget(self)
        vbox = QVBoxLayout(peers_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.peers_title, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.export_button)
        vbox.addLayout(row)
        vbox.addWidget(self.peers_table, 1)
        history_box = QWidget(self)
        vbox = QVBoxLayout(history_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("History", self), 1)
        row.addWidget(self.show_maintenance)
        vbox.addLayout(row)
        vbox.addWidget(self.history, 1)
        graph_box = QWidget(self)
        vbox = QVBoxLayout(graph_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addWidget(self.graph, 1)
        vbox.addWidget(muted_label("Lines: who referred whom · hover a point for the node", self))
        # graph and peers side by side; the history (a wide table) as a strip under both
        upper = QSplitter(Qt.Orientation.Horizontal, self)
        upper.addWidget(graph_box)
        upper.addWidget(peers_box)
        upper.setStretchFactor(0, 5)
        upper.setStretchFactor(1, 0)  # the graph takes the spare width; the peers their columns
        upper.setCollapsible(0, False)
        upper.setCollapsible(1, False)
        self.upper = upper
        self._peers_width_set = False
        upper.splitterMoved.connect(lambda *_: setattr(self, "_peers_width_set", True))
        upper.installEventFilter(self)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(upper)
        self.splitter.addWidget(history_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.progress)
        layout.addWidget(self.splitter, 1)

        controller.events.connect(self.add_events)
        controller.lookup_started.connect(self._lookup_started)
        controller.lookup_deferred.connect(lambda text, _target: self._waiting(text))
        controller.lookup_refused.connect(self._refused)
        controller.lookup_finished.connect(lambda _result: self._update_buttons())
        controller.state_changed.connect(lambda *_: self._update_buttons())
        self._update_buttons()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.upper and event.type() == QEvent.Type.Resize:
            self._fit_peers()  # the splitter's own size (the panel's is known before it)
        return super().eventFilter(watched, event)

    def _fit_peers(self) -> None:
        """The peers table as wide as its columns, or wider (up to 40 % of the room) so that
        its title row, with a scrape's estimate, holds on one line; the graph the rest (the
        splitter would split by size hints). Until the user moves the splitter."""
        if self._peers_width_set:
            return
        w = self.upper.width()
        title = (self.peers_title.fontMetrics().horizontalAdvance(self.peers_title.text())
                 + self.copy_button.sizeHint().width() + self.export_button.sizeHint().width()
                 + 4 * self.fontMetrics().horizontalAdvance("0"))
        peers = max(self.peers_table.minimumWidth(), min(title, int(w * 0.4)))
        if self.upper.sizes()[1:] != [peers]:
            self.upper.setSizes([max(w - peers, 0), peers])

    # --- input ---------------------------------------------------------------------------------
    def set_query(self, text: str) -> None:
        self.query.setText(text)
        self._query_edited()

    def set_recent(self, recent: list[str]) -> None:
        self.recent.setStringList(recent)

    def focus_query(self) -> None:
        self.query.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.query.selectAll()

    def _query_edited(self) -> None:
        clear_query_error(self.query, self.message)

    def start_lookup(self) -> bool:
        """Parse the query and start the lookup; False (with an inline message) if it cannot."""
        text = self.query.text().strip()
        info_hash = parse_query(self.query, self.message, self.controller.running)
        if info_hash is None:
            return False
        # parse_query cleared the last error and may have left a note (a v2 magnet's hash)
        handle = self.controller.find_peers(info_hash, scrape=self.scrape.isChecked())
        deferred = self.controller.deferred_lookup
        if handle is None and (deferred is None or deferred.target != info_hash):
            return False
        self.searched.emit(text)
        self._update_buttons()
        return True

    # --- following lookups ---------------------------------------------------------------------
    def _waiting(self, text: str) -> None:
        if text:
            self.message.show_info(text)
        elif self._waiting_shown:
            self.message.clear_message()  # the waiting lookup was cancelled
        self._waiting_shown = bool(text)
        self._update_buttons()

    def _refused(self, text: str) -> None:
        self._waiting_shown = False
        self.message.show_error(text)
        self._update_buttons()

    def _lookup_started(self, lookup_id: int, kind: str, target: object) -> None:
        options = self.controller.options
        if options is not None:
            self._params[lookup_id] = {"k": options.settings.k, "alpha": options.settings.alpha}
        if self._waiting_shown:
            self._waiting_shown = False
            self.message.clear_message()  # "waiting for the bootstrap" is over
        # One row for the lookup of every family; it appears with the next batch of events:
        # select it then. A BEP 44 get or put is listed but not followed: the Items panel
        # shows it, and the lookup the user had here stays in view.
        self.lookups.group(self.controller.lookup_parts(lookup_id))
        if kind not in _NOT_FOLLOWED:
            self._follow = lookup_id
            self._select_followed()
        self._update_buttons()

    def add_events(self, batch: list[ev.Event]) -> None:
        # (a put's row says "putting" until its put round ends: ItemPutFinished)
        events = [e for e in batch if isinstance(e, ev.LookupStarted | ev.LookupQuerySent |
                  ev.LookupResponse | ev.LookupQuerySlow | ev.LookupTimeout |
                  ev.LookupQueryError | ev.PeersFound | ev.LookupFinished |
                  ev.AnnounceFinished | ev.ScrapeFinished | ev.ItemPutFinished)]
        if not events:
            return
        self.lookups.add_events(events)
        self.lookups.set_now(self.controller.now())
        if self._follow is not None:
            self._select_followed()
        shown = self.shown
        if shown is not None and any(
            getattr(e, "lookup_id", None) in shown.parts for e in events
        ):
            self._redraw()

    def _select_followed(self) -> None:
        row = None if self._follow is None else self.lookups.row_of(self._follow)
        if row is None:
            return
        self._follow = None
        self.select_lookup_row(row)

    def select_lookup_row(self, source_row: int) -> None:
        """Show the lookup in ``source_row`` of the history model (and select it)."""
        state = self.lookups.state(source_row)
        if state.kind in MAINTENANCE_KINDS and not self.show_maintenance.isChecked():
            self.show_lookup(state)
            return
        index = self.history_proxy.mapFromSource(self.lookups.index(source_row, 0))
        if index.isValid():
            self.history.selectionModel().setCurrentIndex(
                index,
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            self.history.scrollTo(index)
        self.show_lookup(state)

    def _history_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        source = self.history_proxy.mapToSource(current)
        self.show_lookup(self.lookups.state(source.row()))

    def show_lookup(self, state: LookupState | None) -> None:
        changed = state is not self.shown
        self.shown = state
        if changed:
            self.target_changed.emit(None if state is None else state.target)
        self._redraw()

    def _redraw(self) -> None:
        state = self.shown
        self.graph.set_lookup(state)
        self.peers.set_lookup(state)
        n = self.peers.rowCount()
        swarm = swarm_estimate(state.scrape) if state is not None and state.scrape else ""
        self.peers_title.setText(f"Peers ({n}){' · ' + swarm if swarm else ''}"
                                 if state is not None else "Peers")
        self._fit_peers()
        self.peers_title.setToolTip(
            "BEP 33 estimate of the whole swarm, from the merged Bloom filters of the closest "
            "nodes (each peer counted once per IP address)" if swarm else "")
        self._update_progress()

    def _update_progress(self) -> None:
        state = self.shown
        if state is None:
            self.progress.setText(EMPTY_HINT)
            return
        s = state.summary(None if state.finished else self.controller.now())
        kind = {"get_peers": "get_peers", "find_node": "find_node", "announce": "announce",
                "bootstrap": "bootstrap", "refresh": "refresh"}.get(s.kind, s.kind)
        extra = ""
        if state.kind == "announce" and state.announce_done:
            extra = f" · stored at {len(state.stored_at)} nodes"
        if state.scrape is not None:
            extra += f" · <b>{swarm_estimate(state.scrape)}</b>"
        self.progress.setText(
            f"<b>{kind}</b> ({state.families_text}) {s.target.hex()} · {s.state} · "
            f"queried {s.queried} · "
            f"answered {s.answered} · in flight {s.in_flight} · timed out {s.timed_out} · "
            f"<b>{s.peers} peers</b> · {s.elapsed:.2f} s{extra}"
        )
        self._update_buttons()

    def _update_buttons(self) -> None:
        handle = self.controller.current_lookup
        waiting = self.controller.deferred_lookup is not None
        self.cancel_button.setEnabled(waiting or (handle is not None and not handle.done()))
        self.find_button.setEnabled(self.controller.running)
        has_peers = self.peers.rowCount() > 0
        self.copy_button.setEnabled(has_peers)
        self.export_button.setEnabled(has_peers)

    # --- peers: copy and export ----------------------------------------------------------------
    def copy_peers(self) -> str:
        rows = sorted({self.peers_proxy.mapToSource(i).row()
                       for i in self.peers_table.selectionModel().selectedRows()})
        if not rows:
            rows = list(range(self.peers.rowCount()))
        text = "\n".join(format_addr(self.peers.peer(r).addr) for r in rows)
        copy_text(text)
        return text

    def export_context(self) -> ExportContext | None:
        """What an export says about the lookup shown (None when none is)."""
        state = self.shown
        if state is None:
            return None
        s = state.summary(None if state.finished else self.controller.now())
        # the core's clock is monotonic; the file wants a date
        started = datetime.fromtimestamp(state.started_at + self.wall_offset(), timezone.utc)
        return ExportContext(
            info_hash=state.target, kind=state.kind, started=started, elapsed=s.elapsed,
            state=s.state, queried=s.queried, answered=s.answered,
            params=dict(self.lookup_params(state)), generator=f"dhtviewer {__version__}")

    def lookup_params(self, state: LookupState) -> dict[str, int | float]:
        """The parameters ``state`` ran with: those noted when it started, else the ones of
        the node running now."""
        noted = self._params.get(state.lookup_id)
        if noted is not None:
            return noted
        options = self.controller.options
        if options is None:
            return {}
        return {"k": options.settings.k, "alpha": options.settings.alpha}

    def wall_offset(self) -> float:
        """Wall-clock time minus the events' clock."""
        return time.time() - self.controller.now()

    # --- history kept between runs --------------------------------------------------------------
    def restore_history(self, path: Path) -> int:
        """List the lookups saved in ``path`` by an earlier run; returns how many."""
        restored = load_history(path, self.wall_offset())
        for state, params in restored:
            self._params[state.lookup_id] = params
        self.lookups.add_restored(state for state, _ in restored)
        return len(restored)

    def save_history(self, path: Path) -> int:
        """Write the finished user lookups (the newest, bounded) to ``path``; how many."""
        states = self.lookups.states()
        params = {s.lookup_id: self.lookup_params(s) for s in states}
        return save_history(path, states, self.wall_offset(), params)

    def default_export_path(self) -> Path:
        """The save dialog's suggestion: the last export's folder (else Documents, else home)
        and a name after the info-hash."""
        folder = self.store.export_dir() if self.store is not None else Path.home()
        target = self.shown.target.hex()[:12] if self.shown is not None else "lookup"
        return folder / f"peers-{target}.csv"

    def export(self, path: Path) -> None:
        """Write the peers shown to ``path``: JSON for a .json name, CSV otherwise."""
        context = self.export_context()
        data = (self.peers.to_json(context) if path.suffix.lower() == ".json"
                else self.peers.to_csv(context))
        path.write_text(data, encoding="utf-8")

    def export_dialog(self) -> Path | None:
        if self.peers.rowCount() == 0:
            self.message.show_info("No peers to export: run a lookup first.")
            return None
        name, chosen = QFileDialog.getSaveFileName(
            self, "Export peers", str(self.default_export_path()),
            "CSV (*.csv);;JSON (*.json)",
        )
        if not name:
            return None
        path = Path(name)
        if not path.suffix:
            path = path.with_suffix(".json" if "json" in chosen.lower() else ".csv")
        try:
            self.export(path)
        except OSError as err:
            self.message.show_error(f"cannot write {path}: {err}")
            return None
        if self.store is not None:
            self.store.save_export_dir(path.parent)
        self.message.show_info(f"{self.peers.rowCount()} peers written to {path}")
        return path
