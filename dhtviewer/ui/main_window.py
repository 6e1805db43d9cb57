"""MainWindow: the docks, menus, toolbar and status bar around the panels.

Layout: the network (bootstrap) and announce panels on the left; routing table, lookup, traffic,
packet log, items (BEP 44) and activity (BEP 51) as tabbed docks filling the rest; the log panel
below them. Every dock can be moved, floated, closed and brought back from the View menu; the
layout, the window geometry and the network settings persist with QSettings. A banner under
the toolbar tells, in plain words, when the node cannot reach the DHT, and offers the local
testnet instead.

The plots (pyqtgraph, slow to import) are placeholders when the window first paints; they are
built right after that first frame, one per turn of the event loop, the visible one first.

Closing the window stops the node (its state is saved) before the window really goes: the close
event is refused once, the shutdown runs on the event loop, then the window closes itself and
emits ``closed``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QKeySequence,
    QPaintEvent,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QStyle,
    QToolBar,
)

from dhtviewer import __version__
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.keys import default_key_dir
from dhtviewer.net.sample_store import SAMPLE_DB_NAME, default_sample_db_path
from dhtviewer.ui.controller import (
    CUSTOM,
    MAINLINE,
    SIMNET,
    STARTING,
    STOPPED,
    STOPPING,
    TESTNET,
    Controller,
    StartOptions,
)
from dhtviewer.ui.dialogs import PortBusyDialog, PreferencesDialog, about_text
from dhtviewer.ui.dock_split import DockSplit
from dhtviewer.ui.log_panel import LogPanel
from dhtviewer.ui.lookup_history import FILE_NAME as HISTORY_FILE_NAME
from dhtviewer.ui.panels.activity import ActivityPanel
from dhtviewer.ui.panels.announce import AnnouncePanel
from dhtviewer.ui.panels.items import ItemsPanel
from dhtviewer.ui.panels.lookup import LookupPanel
from dhtviewer.ui.panels.network import MODE_LABELS, NetworkPanel
from dhtviewer.ui.panels.packets import PacketLogPanel
from dhtviewer.ui.panels.routing import RoutingPanel
from dhtviewer.ui.panels.traffic import TrafficPanel
from dhtviewer.ui.settings_store import SettingsStore
from dhtviewer.ui.shortcuts import WindowShortcuts
from dhtviewer.ui.views.lazy import LazyView
from dhtviewer.ui.views.theme import current_theme
from dhtviewer.ui.window_chrome import Banner, app_icon, scrollable

log = logging.getLogger(__name__)
STATUS_MESSAGE_MS = 8000
VIEWS_FALLBACK_MS = 1000
"""Build the plots this long after the first show even if no paint was reported (a window
shown minimized, a platform that paints late)."""


SCROLLED_DOCKS = frozenset({"network", "announce"})


def _format_uptime(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _nodes_text(stats: dict[str, float]) -> str:
    """"good nodes 40 / 60", or per family when both run: "IPv4 40 / 60 · IPv6 38 / 55"."""
    families = [f for f in (4, 6) if f"routing_nodes_v{f}" in stats]
    if len(families) < 2:
        good, size = int(stats.get("good_nodes", 0)), int(stats.get("routing_nodes", 0))
        return f"good nodes {good} / {size}"
    parts = [
        f"IPv{f} {int(stats.get(f'good_nodes_v{f}', 0))} / {int(stats[f'routing_nodes_v{f}'])}"
        for f in families
    ]
    return "good nodes " + " · ".join(parts)


def _format_count(n: float) -> str:
    for factor, suffix in ((1e9, " billion"), (1e6, " million"), (1e3, "k")):
        if n >= factor:
            return f"{n / factor:.3g}{suffix}"
    return f"{n:.0f}"


class MainWindow(QMainWindow):
    closed = Signal()
    """Emitted once the node has stopped and the window is gone."""

    def __init__(
        self,
        controller: Controller,
        store: SettingsStore,
        *,
        state_path: Path | None = None,
        testnet_state_path: Path | None = None,
        testnet_base: str = "127.0.1.1",
        testnet_seed: int | None = None,
        node_id: bytes | None = None,
    ) -> None:
        """``state_path``: node state of the Mainline/Custom modes; ``testnet_state_path`` of
        the testnet mode (None: not saved, the testnet is gone at the next run anyway).
        ``testnet_base``/``testnet_seed``/``node_id``: fixed for tests and screenshots."""
        super().__init__()
        self.controller = controller
        self.store = store
        self.state_path = state_path
        self.testnet_state_path = testnet_state_path
        self.history_path = (state_path.parent / HISTORY_FILE_NAME if state_path is not None
                             else None)
        """The lookup history kept between runs, beside the node state (None: not kept)."""
        self.testnet_base = testnet_base
        self.testnet_seed = testnet_seed
        self.node_id = node_id
        self.forced_mode = ""
        """The mode chosen on the command line, if any (not remembered as the user's)."""
        self.forced_bind = False
        self._command_line: StartOptions | None = None
        self._banner_error = False
        self._shown_once = False
        self._painted = False
        self._layout_restored = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self.dht_settings: DhtSettings = store.dht_settings()
        self.port_dialog: PortBusyDialog | None = None
        self.preferences: PreferencesDialog | None = None
        self._closing = False
        self._closed = False
        self.setWindowTitle("dhtviewer")
        self.setWindowIcon(app_icon())
        self.setObjectName("main_window")
        self.setDockOptions(QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AnimatedDocks)
        self.setDocumentMode(True)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.network = NetworkPanel(controller)
        self.announce = AnnouncePanel(controller)
        self.routing = RoutingPanel(controller)
        self.lookup = LookupPanel(controller, store=store)
        self.traffic = TrafficPanel(controller)
        # BEP 44 keys and the BEP 51 sample database live beside the node state
        state_dir = state_path.parent if state_path is not None else None
        self.items = ItemsPanel(
            controller, key_dir=state_dir / "keys" if state_dir else default_key_dir())
        self.activity = ActivityPanel(
            controller,
            db_path=state_dir / SAMPLE_DB_NAME if state_dir else default_sample_db_path(),
            rate=self.dht_settings.crawl_rate)
        # the packet capture file lives beside the node state (deleted when the window closes)
        self.packets = PacketLogPanel(
            controller, capture_dir=state_path.parent if state_path is not None else None,
            store=store)
        self.log_panel = LogPanel()
        self.log_panel.install()

        self.docks: dict[str, QDockWidget] = {}
        for name, title, widget, tip in (
            ("network", "Network", self.network, "Start the node and see its state"),
            ("announce", "Announce", self.announce, "Announce a torrent and verify it"),
            ("routing", "Routing table", self.routing, "K-buckets, nodes and the id space"),
            ("lookup", "Lookup", self.lookup, "Find peers and watch the lookup's path"),
            ("traffic", "Traffic", self.traffic, "Message rates, bytes, RTTs, network size"),
            ("packets", "Packet log", self.packets, "Every datagram, decoded"),
            ("items", "Items", self.items, "Store and fetch data in the DHT (BEP 44)"),
            ("activity", "Activity", self.activity,
             "Crawl the DHT for the info-hashes nodes store (BEP 51)"),
            ("log", "Log", self.log_panel, "Messages and errors of the application"),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            # forms scroll when the window is short rather than set its minimum height (or,
            # below it, paint over each other)
            dock.setWidget(scrollable(widget) if name in SCROLLED_DOCKS else widget)
            dock.setToolTip(tip)
            dock.toggleViewAction().setToolTip(f"Show or hide the {title} panel")
            self.docks[name] = dock
        self._default_layout()

        self._build_banner()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        # after the toolbars, or "Reset layout" would lose them (and the banner's own row)
        self._default_state = self.saveState()
        self._connect()
        # Export, Find, Pause and Quit work from inside a text field too (Ctrl+E is a line
        # edit's "end of line" on X11)
        self.shortcuts = WindowShortcuts(
            [self.export_action, self.find_action, self.pause_action, self.quit_action,
             self.preferences_action], self)
        self.shortcuts.watch([*self.findChildren(QLineEdit), *self.findChildren(QPlainTextEdit)])
        # the side panels' width and the log's height kept in pixels as the room changes
        self.split = DockSplit(self, self.docks["network"], self.docks["lookup"],
                               self.docks["log"])
        unit = self.fontMetrics().height()
        self.resize(unit * 95, unit * 58)
        self._restore()

    # ======================================================================== layout ==
    def _default_layout(self) -> None:
        d = self.docks
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["network"])
        self.splitDockWidget(d["network"], d["announce"], Qt.Orientation.Vertical)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d["lookup"])
        for name in ("routing", "traffic", "packets", "items", "activity"):
            self.tabifyDockWidget(d["lookup"], d[name])
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, d["log"])
        for dock in d.values():
            dock.show()
        d["lookup"].raise_()

    def _default_sizes(self) -> None:
        """Dock proportions for the window's current size (docks only take sizes once the
        window is laid out, hence after the first show)."""
        d = self.docks
        w, h = max(self.width(), 800), max(self.height(), 500)
        unit = self.fontMetrics().height()
        # the network panel as tall as it wants (Start/Stop and the state in view), up to 62 %
        network = min(self.network.sizeHint().height() + unit * 5, int(h * 0.62))
        self.resizeDocks([d["network"], d["announce"]], [network, h - network],
                         Qt.Orientation.Vertical)
        if self.split.applies():
            self.split.set(min(int(w * 0.26), unit * 34), int(h * 0.2))

    def _first_sizes(self) -> None:
        """The default proportions, or the restored layout if it is a sound one: a layout
        saved while the views were squeezed (the log or the side panels taking most of the
        window) is not worth keeping."""
        if self._layout_restored:
            if not (self.split.applies() and self.split.squeezed()):
                self.split.remember()
                return
            log.info("restored layout squeezed the views; using the default proportions")
        self._default_sizes()

    def reset_layout(self) -> None:
        showing = self.banner.showing
        self.restoreState(self._default_state)
        self._place_banner(showing)
        for dock in self.docks.values():
            dock.show()
        self.docks["lookup"].raise_()
        self._default_sizes()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.banner.updateGeometry()  # its text wraps to the window's width

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            QTimer.singleShot(0, self._first_sizes)
            QTimer.singleShot(VIEWS_FALLBACK_MS, self, self._realize_next_view)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            # the first frame is on screen (this event is part of it): now the plots
            self._painted = True
            QTimer.singleShot(0, self, self._realize_next_view)

    # ======================================================================== plots ==
    def pending_views(self) -> list[LazyView[Any]]:
        """The plot placeholders whose view is not built yet, the visible ones first."""
        pending = [v for v in self.findChildren(LazyView) if not v.is_realized]
        return sorted(pending, key=lambda v: not v.isVisible())

    def realize_views(self) -> None:
        """Build every plot now (screenshots, tests); the window does it after its first frame."""
        for view in self.pending_views():
            view.realize()

    def _realize_next_view(self) -> None:
        # one view per turn of the event loop, so the node and the painting keep going between
        pending = self.pending_views()
        if pending:
            pending[0].realize()
        if len(pending) > 1:
            QTimer.singleShot(0, self, self._realize_next_view)

    def raise_dock(self, name: str) -> None:
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    def _build_banner(self) -> None:
        self.banner = Banner(self)
        bar = QToolBar("Notice", self)
        bar.setObjectName("banner_bar")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.toggleViewAction().setVisible(False)
        bar.addWidget(self.banner)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.banner.toolbar = bar
        bar.hide()

    def _place_banner(self, showing: bool) -> None:
        """The banner in a row of its own under the main toolbar (a restored layout may have
        put it beside the toolbar, where it wraps over many lines), shown or not."""
        bar = self.banner.toolbar
        assert bar is not None
        self.removeToolBar(bar)
        self.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.setVisible(showing)

    # ======================================================================= actions ==
    def _action(self, text: str, tip: str, slot: object,
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
                icon: QStyle.StandardPixmap | None = None) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.start_action = self._action("&Start", "Start the node and bootstrap it",
                                         self.start_node, None, sp.SP_MediaPlay)
        self.stop_action = self._action("S&top", "Stop the node (its state is saved)",
                                        self.stop_node, None, sp.SP_MediaStop)
        self.rebootstrap_action = self._action(
            "&Re-bootstrap", "Ask the bootstrap nodes again for our neighbours",
            self.rebootstrap, None, sp.SP_BrowserReload)
        self.preferences_action = self._action(
            "&Preferences…", "Every DHT limit (K, alpha, timeouts, caps, rate limits)",
            self.open_preferences, QKeySequence.StandardKey.Preferences,
            sp.SP_FileDialogDetailedView)
        self.export_action = self._action("&Export peers…", "Save the peers found as CSV or JSON",
                                          self.lookup.export_dialog, "Ctrl+E",
                                          sp.SP_DialogSaveButton)
        self.quit_action = self._action("&Quit", "Stop the node and close dhtviewer", self.close,
                                        "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.find_action = self._action("&Find peers…", "Focus the lookup field",
                                        self.focus_lookup, "Ctrl+L", sp.SP_FileDialogContentsView)
        self.cancel_action = self._action("&Cancel lookup", "Stop the running lookup",
                                          self.controller.cancel_lookup, "Esc", sp.SP_BrowserStop)
        self.pause_action = self._action("&Pause packet log",
                                         "Hold the packet log still for reading (the capture "
                                         "goes on)", self.packets.pause.toggle, "Ctrl+P",
                                         sp.SP_MediaPause)
        self.reset_layout_action = self._action("&Reset layout", "Put every panel back in place",
                                                self.reset_layout)
        self.about_action = self._action("&About dhtviewer", "Version and what this is",
                                         self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self.export_action)
        file.addSeparator()
        file.addAction(self.quit_action)
        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addAction(self.reset_layout_action)
        node = bar.addMenu("&Node")
        for action in (self.start_action, self.stop_action, self.rebootstrap_action):
            node.addAction(action)
        node.addSeparator()
        node.addAction(self.preferences_action)
        lookup = bar.addMenu("&Lookup")
        lookup.addAction(self.find_action)
        lookup.addAction(self.cancel_action)
        lookup.addAction(self.export_action)
        lookup.addSeparator()
        lookup.addAction(self.pause_action)
        helpm = bar.addMenu("&Help")
        helpm.addAction(self.about_action)
        for menu in (file, view, node, lookup, helpm):
            menu.setToolTipsVisible(True)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main toolbar", self)
        bar.setObjectName("main_toolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        unit = self.fontMetrics().height()
        bar.setIconSize(QSize(unit, unit))
        for action in (self.start_action, self.stop_action, self.rebootstrap_action):
            bar.addAction(action)
        bar.addSeparator()
        bar.addAction(self.find_action)
        bar.addAction(self.cancel_action)
        bar.addAction(self.export_action)
        bar.addSeparator()
        bar.addAction(self.preferences_action)
        assert self.banner.toolbar is not None
        self.insertToolBar(self.banner.toolbar, bar)
        self.toolbar = bar
        self._place_banner(False)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_state = QLabel(self)
        self.status_state.setToolTip("Node state")
        self.status_nodes = QLabel(self)
        self.status_nodes.setToolTip("Good nodes / nodes in the routing table, per address "
                                     "family (the IPv4 and IPv6 DHTs are separate networks)")
        self.status_rate = QLabel(self)
        self.status_rate.setToolTip("Messages per second received / sent (5 s average)")
        self.status_size = QLabel(self)
        self.status_size.setToolTip("DHT size estimated from the distances of the closest "
                                    "nodes found by recent lookups (median, quartiles)")
        self.status_uptime = QLabel(self)
        self.status_uptime.setToolTip("Time since the node started")
        for w in (self.status_state, self.status_nodes, self.status_rate, self.status_size,
                  self.status_uptime):
            w.setContentsMargins(6, 0, 6, 0)
            sb.addPermanentWidget(w)
        self._stats: dict[str, float] = {}
        self._update_status()

    # ======================================================================= wiring ==
    def _connect(self) -> None:
        c = self.controller
        c.state_changed.connect(self._state_changed)
        c.stats_changed.connect(self._stats_changed)
        c.port_in_use.connect(self._port_in_use)
        c.bootstrap_stalled.connect(self._bootstrap_stalled)
        c.error.connect(self._error)
        c.ping_finished.connect(lambda _addr, _ok, text: self.show_status(text))
        c.lookup_started.connect(self._lookup_started)
        self.network.start_requested.connect(self.start_node)
        self.network.stop_requested.connect(self.stop_node)
        self.network.rebootstrap_requested.connect(self.rebootstrap)
        self.network.infohash_chosen.connect(self._infohash_chosen)
        self.network.infohash_lookup_requested.connect(self._infohash_lookup)
        self.routing.ping_requested.connect(c.ping)
        self.routing.find_node_requested.connect(self._find_node)
        self.lookup.target_changed.connect(self.routing.set_target)
        self.lookup.searched.connect(self._searched)
        self.activity.lookup_requested.connect(self._lookup_requested)
        self.log_panel.errors_changed.connect(self._log_errors)
        self.docks["log"].visibilityChanged.connect(self._log_visibility)
        self._state_changed(c.state, c.detail)

    def _restore(self) -> None:
        geometry = self.store.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.store.window_state()
        if state is not None:
            self._layout_restored = self.restoreState(state)
            if not self._layout_restored:
                log.info("saved window layout not restored; using the default one")
            self._place_banner(False)  # a notice of the last run does not come back
        self.network.set_options(self.store.network())
        self.lookup.set_recent(self.store.recent_infohashes())
        self.log_panel.set_level(self.store.log_level())
        if self.history_path is not None:
            self.lookup.restore_history(self.history_path)

    def save_settings(self) -> None:
        self.store.save_window(self.saveGeometry(), self.saveState())
        options = self.network.options()
        if options is None:  # invalid entries are not worth keeping; the rest is
            options = replace(self.store.network(), bind_host=self.network.bind_host.text(),
                              port=self.network.port.value())
        # a mode chosen on the command line (--testnet) is not the user's saved choice
        save_mode = options.mode != self.forced_mode
        self.store.save_network(self._without_command_line(options), save_mode=save_mode,
                                save_bind=not self.forced_bind)
        self.store.save_dht_settings(self.dht_settings)
        self.store.save_log_level(self.log_panel.current_level())
        self.store.sync()
        if self.history_path is not None:
            try:
                self.lookup.save_history(self.history_path)
            except OSError as err:
                log.warning("cannot save the lookup history to %s: %s", self.history_path, err)

    def apply_command_line(self, options: StartOptions, *, mode: bool, bind: bool) -> None:
        """Show ``options`` (given on the command line) in the network panel. What the command
        line chose (the ``mode`` and its size or list, the ``bind`` address) is not saved as
        the user's choice; what the user edits in the panel meanwhile is."""
        self.network.set_options(options)
        self.forced_mode = options.mode if mode else ""
        self.forced_bind = bind
        self._command_line = options

    def _without_command_line(self, options: StartOptions) -> StartOptions:
        """``options`` with the stored values back where they are the command line's."""
        cli, stored = self._command_line, self.store.network()
        if cli is None or not self.forced_mode:
            return options
        changes: dict[str, Any] = {}
        if self.forced_mode == TESTNET and options.testnet_nodes == cli.testnet_nodes:
            changes["testnet_nodes"] = stored.testnet_nodes
        elif self.forced_mode == SIMNET and options.simnet_nodes == cli.simnet_nodes:
            changes["simnet_nodes"] = stored.simnet_nodes
        elif self.forced_mode == CUSTOM and options.custom == cli.custom:
            changes["custom"] = stored.custom
        return replace(options, **changes)

    # ======================================================================= node ==
    def start_options(self) -> StartOptions | None:
        options = self.network.options()
        if options is None:
            self.raise_dock("network")
            self.show_status("Fix the bootstrap settings first (see the Network panel).")
            return None
        local = options.mode in (TESTNET, SIMNET)  # gone at the next run: not saved by default
        state = self.testnet_state_path if local else self.state_path
        return replace(options, settings=self.dht_settings, state_path=state,
                       testnet_base=self.testnet_base, testnet_seed=self.testnet_seed,
                       node_id=self.node_id)

    def start_node(self) -> asyncio.Task[bool | None] | None:
        options = self.start_options()
        if options is None:
            return None
        self.banner.hide_banner()
        return self.controller.start(options)

    def stop_node(self) -> None:
        self.controller.stop()

    def rebootstrap(self) -> None:
        """Re-bootstrap from the list as the Network panel shows it now (it may have been
        edited since the start)."""
        options = self.network.options()
        self.controller.rebootstrap(options.bootstrap_spec() if options is not None else None)

    def start_testnet_instead(self) -> None:
        self.network.set_mode(TESTNET)
        options = self.start_options()
        if options is not None:
            self.controller.restart(options)

    def _state_changed(self, state: str, detail: str) -> None:
        c = self.controller
        running, busy = c.running, c.busy
        self.start_action.setEnabled(not running and not busy)
        self.stop_action.setEnabled(running or (busy and state == STARTING))
        self.rebootstrap_action.setEnabled(running and state not in ("idle", STOPPING))
        mode = c.options.mode if c.options is not None else self.network.current_mode()
        label = dict(MODE_LABELS).get(mode, mode)
        if mode == TESTNET and c.options is not None:
            label += f" ({c.options.testnet_nodes} nodes)"
        elif mode == SIMNET and c.options is not None:
            label += f" ({c.options.simnet_nodes:,} nodes)"
        self.setWindowTitle(f"dhtviewer — {label} — {state}")
        # the stalled-bootstrap notice ("keeps trying") holds while the node tries; an error
        # stays until dismissed or the next start
        if state in ("ready", STOPPED) and self.banner.showing and not self._banner_error:
            self.banner.hide_banner()
        self._update_status()

    def _stats_changed(self, stats: dict[str, float]) -> None:
        self._stats = stats
        self._update_status()

    def _update_status(self) -> None:
        c = self.controller
        t = current_theme()
        color = {"ready": t.good, "bootstrapping": t.questionable, STARTING: t.questionable,
                 STOPPING: t.questionable}.get(c.state, t.muted)
        self.status_state.setText(f"<span style='color:{color}'>●</span> {c.state}")
        s = self._stats if c.running else {}
        self.status_nodes.setText(_nodes_text(s))
        rin, rout = self.traffic.messages_per_second()
        self.status_rate.setText(f"↓ {rin:.0f} ↑ {rout:.0f} msg/s")
        size = self.traffic.network_size()
        self.status_size.setText(
            "network size: —" if size is None
            else f"network ≈ {_format_count(size[0])} nodes"
        )
        self.status_uptime.setText(f"uptime {_format_uptime(s.get('uptime', 0.0))}")

    def _port_in_use(self, host: str, port: int, free: int) -> None:
        dialog = PortBusyDialog(host, port, free, self)
        self.port_dialog = dialog

        def done() -> None:
            self.port_dialog = None
            if dialog.chosen_port:
                self.network.port.setValue(dialog.chosen_port)
                self.start_node()

        dialog.finished.connect(done)
        dialog.open()

    def _bootstrap_stalled(self, why: str) -> None:
        self._banner_error = False
        mode = self.controller.options.mode if self.controller.options else MAINLINE
        if mode == TESTNET:
            self.banner.show_message(why)
            return
        self.banner.show_message(
            f"<b>Cannot reach the DHT.</b> {why} The node keeps trying in the background.",
            "Start a local testnet instead", self.start_testnet_instead,
            "Stop this node and run an offline DHT of a few dozen nodes on this computer",
        )

    def _error(self, message: str) -> None:
        self.show_status(message)
        if not self.controller.running and not self.controller.busy:
            self._banner_error = True
            self.banner.show_message(message, error=True)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, STATUS_MESSAGE_MS)

    def _log_visibility(self, visible: bool) -> None:
        if visible:
            self.log_panel.mark_seen()

    def _log_errors(self, count: int) -> None:
        self.docks["log"].setWindowTitle(f"Log ({count} new)" if count else "Log")

    # ======================================================================= lookups ==
    def focus_lookup(self) -> None:
        self.raise_dock("lookup")
        self.lookup.focus_query()

    def _infohash_chosen(self, text: str) -> None:
        self.lookup.set_query(text)
        if not self.announce.query.text():
            self.announce.set_query(text)
        self.focus_lookup()

    def _infohash_lookup(self, text: str) -> None:
        self._infohash_chosen(text)
        self.lookup.start_lookup()  # a refusal (node stopped) shows in the lookup panel

    def _lookup_requested(self, text: str) -> None:
        self.lookup.set_query(text)
        self.focus_lookup()
        self.lookup.start_lookup()  # a refusal (node stopped) shows in the lookup panel

    def _find_node(self, target: bytes) -> None:
        if self.controller.find_node(target) is not None:
            self.raise_dock("lookup")

    def _lookup_started(self, _lookup_id: int, kind: str, _target: object) -> None:
        if kind in ("get_peers", "scrape", "find_node"):
            self.raise_dock("lookup")

    def _searched(self, text: str) -> None:
        self.lookup.set_recent(self.store.add_recent_infohash(text))

    # ======================================================================= dialogs ==
    def open_preferences(self) -> PreferencesDialog:
        dialog = PreferencesDialog(self.dht_settings, self)
        self.preferences = dialog

        def accepted() -> None:
            self.dht_settings = dialog.settings()
            self.store.save_dht_settings(self.dht_settings)
            if self.controller.running:
                self.show_status("Preferences saved; they apply when the node next starts.")

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog

    def show_about(self) -> None:
        QMessageBox.about(self, f"About dhtviewer {__version__}", about_text())

    # ======================================================================= closing ==
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closed:
            event.accept()
            return
        event.ignore()
        if self._closing:
            return
        self._closing = True
        self.save_settings()
        self.show_status("Stopping the node and saving its state…")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop()
        self._shutdown_task = loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        started = time.monotonic()
        try:
            await self.controller.shutdown()
        except Exception:
            log.exception("stopping the node failed")
        finally:
            log.info("shut down in %.2f s", time.monotonic() - started)
            self.packets.close_capture()
            self.activity.crawl.shutdown()
            self.log_panel.uninstall()
            self._closed = True
            self.close()
            self.closed.emit()

    @property
    def is_closed(self) -> bool:
        return self._closed
