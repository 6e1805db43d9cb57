"""NetworkPanel: where the node is started (bootstrap) and what it is doing.

Four modes: the public Mainline DHT (the well-known routers, as an editable list), a local
testnet run inside the app (its pre-announced info-hashes are listed: a click fills the lookup
field, a double-click or Enter looks it up), a simulated Mainline of up to millions of nodes
(``dhtviewer simnet`` in a child process: size, profile and attack scenarios; its most popular
seeded swarms are listed, likewise), and a custom HOST:PORT list validated as typed. Bind
address and port, Start / Stop / Re-bootstrap. On top, the state with a progress bar toward
"ready" (or, while a testnet is built, through its start); below, the node's identity: id (with
copy), local and external address (BEP 42 votes), routing table size.

The panel only asks; the main window turns ``start_requested`` into a controller call with the
panel's ``options()`` (plus preferences and state file).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht.addresses import format_addr, host_family, parse_hostport
from dhtviewer.dht.messages import Addr
from dhtviewer.net.session import DEFAULT_BOOTSTRAP, DEFAULT_PORT
from dhtviewer.simnet.options import ScenarioError, parse_scenarios
from dhtviewer.ui.controller import (
    CUSTOM,
    MAINLINE,
    MAX_SIMNET_NODES,
    READY_GOOD_NODES,
    SIMNET,
    SIMNET_NODES,
    STARTING,
    STOPPING,
    TESTNET,
    Controller,
    StartOptions,
)
from dhtviewer.ui.models.nodes import monospace_font
from dhtviewer.ui.panels.common import InlineMessage, copy_text, mark_invalid, muted_label
from dhtviewer.ui.views.theme import current_theme

_SIMNET_HINT = ("Start the node to build the simulated network (a child process); its "
                "popular swarms are then listed here to try lookups at once.")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?")
MODE_LABELS = ((MAINLINE, "Mainline DHT"), (TESTNET, "Local testnet"),
               (SIMNET, "Simulated Mainline"), (CUSTOM, "Custom"))
_SIMNET_PROFILES = (("realistic", "Realistic (latency, loss, dead nodes, churn)"),
                    ("friendly", "Friendly (no loss, no dead nodes, no latency)"))
EXTERNAL_UNKNOWN = "not known yet"
_STATE_TEXT = {
    "stopped": "Stopped",
    STARTING: "Starting…",
    "bootstrapping": "Bootstrapping",
    "ready": "Ready",
    "idle": "Idle (no bootstrap address)",
    STOPPING: "Stopping…",
}


def validate_hostports(lines: list[str]) -> tuple[list[str], list[str]]:
    """(valid entries, one error per bad line naming it). Blank lines are skipped."""
    good, errors = [], []
    for n, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            parse_hostport(text, DEFAULT_PORT)
        except ValueError as err:
            errors.append(f"line {n}: {err}")
        else:
            good.append(text)
    return good, errors


def bind_host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a bind address (None if it can): an IP address, or a host name."""
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if ":" in host or all(c.isdigit() or c == "." for c in host):
        return f"{host!r} is not a valid IP address"
    if not _HOSTNAME.fullmatch(host):
        return f"{host!r} is neither an IP address nor a host name"
    return None


class NetworkPanel(QWidget):
    start_requested = Signal()
    stop_requested = Signal()
    rebootstrap_requested = Signal()
    infohash_chosen = Signal(str)
    """Hex info-hash picked (clicked) in the testnet or swarm list: fills the lookup field."""
    infohash_lookup_requested = Signal(str)
    """Hex info-hash activated (double-click, Enter) in those lists: look it up now."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._stats: dict[str, float] = {}
        self._externals: dict[int, tuple[str, int]] = {}  # family -> (ip, votes)
        mono = monospace_font()

        # --- mode and its options ------------------------------------------------------------
        self.mode = QComboBox(self)
        for mode, label in MODE_LABELS:
            self.mode.addItem(label, mode)
        self.mode.setToolTip("Mainline DHT: the public network through its well-known routers.\n"
                             "Local testnet: a small DHT on loopback inside the app (offline).\n"
                             "Simulated Mainline: an internet-scale DHT of simulated nodes on "
                             "loopback, in a child process (offline).\n"
                             "Custom: bootstrap from the nodes you list.")
        # the page of the mode shown, the others hidden (a QStackedWidget would be as tall as
        # its tallest page, wrapped hints included, leaving gaps in a short side panel)
        self.pages = QWidget(self)
        pages_layout = QVBoxLayout(self.pages)
        pages_layout.setContentsMargins(0, 0, 0, 0)

        mainline = QWidget()
        self.routers = QListWidget(mainline)
        self.routers.setToolTip("Bootstrap routers (HOST:PORT). Double-click to edit.")
        self.routers.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.routers.setMaximumHeight(self.fontMetrics().height() * 7)
        self.routers.itemChanged.connect(self._validate)
        self.add_router = QToolButton(mainline)
        self.add_router.setText("Add")
        self.add_router.setToolTip("Add a router and edit it")
        self.add_router.clicked.connect(self._add_router)
        self.remove_router = QToolButton(mainline)
        self.remove_router.setText("Remove")
        self.remove_router.setToolTip("Remove the selected router")
        self.remove_router.clicked.connect(self._remove_router)
        self.reset_routers = QToolButton(mainline)
        self.reset_routers.setText("Defaults")
        self.reset_routers.setToolTip("Restore the four well-known routers")
        self.reset_routers.clicked.connect(lambda: self.set_routers(list(DEFAULT_BOOTSTRAP)))
        self.routers_message = InlineMessage(mainline)
        row = QHBoxLayout()
        row.addWidget(self.add_router)
        row.addWidget(self.remove_router)
        row.addWidget(self.reset_routers)
        row.addStretch(1)
        vbox = QVBoxLayout(mainline)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addWidget(self.routers)
        vbox.addLayout(row)
        vbox.addWidget(self.routers_message)

        testnet = QWidget()
        self.testnet_nodes = QSpinBox(testnet)
        self.testnet_nodes.setRange(1, 1000)
        self.testnet_nodes.setValue(64)
        self.testnet_nodes.setSuffix(" nodes")
        self.testnet_nodes.setToolTip("How many DHT nodes the local testnet runs (on 127.0.1.x)")
        self.testnet_list = QListWidget(testnet)
        self.testnet_list.setToolTip("Info-hashes announced in the testnet: double-click one "
                                     "(or press Enter) to look it up; a click fills the lookup "
                                     "field")
        self.testnet_list.setFont(mono)
        self.testnet_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the tooltip has it all
        self.testnet_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.testnet_list.setMaximumHeight(self.fontMetrics().height() * 6)
        self.testnet_list.itemActivated.connect(self._infohash_activated)
        self.testnet_list.itemClicked.connect(self._infohash_clicked)
        self.testnet_hint = muted_label("Start the node to create the testnet; a few info-hashes "
                                        "are announced in it to try lookups at once.", testnet)
        self.testnet_hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Size", self.testnet_nodes)
        vbox = QVBoxLayout(testnet)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addLayout(form)
        vbox.addWidget(self.testnet_hint)
        vbox.addWidget(self.testnet_list)

        simnet = QWidget()
        self.simnet_nodes = QSpinBox(simnet)
        self.simnet_nodes.setRange(1000, MAX_SIMNET_NODES)
        self.simnet_nodes.setSingleStep(100_000)
        self.simnet_nodes.setValue(SIMNET_NODES)
        self.simnet_nodes.setGroupSeparatorShown(True)
        self.simnet_nodes.setSuffix(" nodes")
        self.simnet_nodes.setToolTip("Simulated nodes on 127.64.0.0/10 (1,000,000 take a few "
                                     "seconds and about 400 MB; 10,000,000 about 4 GB)")
        self.simnet_profile = QComboBox(simnet)
        for key, label in _SIMNET_PROFILES:
            self.simnet_profile.addItem(label, key)
        # the labels are long: the combo elides them rather than widen the whole panel
        self.simnet_profile.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.simnet_profile.setMinimumContentsLength(14)
        self.simnet_profile.setToolTip("Realistic: RTT median 80 ms, 1% loss, about 20% of "
                                       "contacts never answer, churn, a client mix.\n"
                                       "Friendly: none of it.")
        self.simnet_scenarios = QLineEdit(simnet)
        self.simnet_scenarios.setPlaceholderText("none (e.g. eclipse:INFOHASH poison flood:200)")
        self.simnet_scenarios.setToolTip(
            "Attack scenarios, separated by spaces: eclipse:INFOHASH (Sybils around a target), "
            "poison[:N] (fake peers for popular swarms), spoof[:SHARE] (forged query sources), "
            "flood:RATE (queries/s at us), churn:RATE (nodes leaving per second)")
        self.simnet_scenarios.textChanged.connect(self._validate)
        self.simnet_message = InlineMessage(simnet)
        self.simnet_list = QListWidget(simnet)
        self.simnet_list.setToolTip("The most popular seeded swarms: double-click one (or press "
                                    "Enter) to look it up; a click fills the lookup field")
        self.simnet_list.setFont(mono)
        self.simnet_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the tooltip has it all
        self.simnet_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.simnet_list.setMaximumHeight(self.fontMetrics().height() * 6)
        self.simnet_list.itemActivated.connect(self._infohash_activated)
        self.simnet_list.itemClicked.connect(self._infohash_clicked)
        self.simnet_hint = muted_label(_SIMNET_HINT, simnet)
        self.simnet_hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Size", self.simnet_nodes)
        form.addRow("Profile", self.simnet_profile)
        form.addRow("Scenarios", self.simnet_scenarios)
        vbox = QVBoxLayout(simnet)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addLayout(form)
        vbox.addWidget(self.simnet_message)
        vbox.addWidget(self.simnet_hint)
        vbox.addWidget(self.simnet_list)

        custom = QWidget()
        self.custom = QPlainTextEdit(custom)
        self.custom.setPlaceholderText("one HOST:PORT per line, e.g.\n192.0.2.10:6881\n"
                                       "[2001:db8::1]:6881")
        self.custom.setToolTip("Bootstrap nodes, one HOST:PORT per line (port 6881 if omitted)")
        self.custom.setMaximumHeight(self.fontMetrics().height() * 7)
        self.custom.textChanged.connect(self._validate)
        self.custom_message = InlineMessage(custom)
        vbox = QVBoxLayout(custom)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addWidget(self.custom)
        vbox.addWidget(self.custom_message)

        for page in (mainline, testnet, simnet, custom):
            pages_layout.addWidget(page)
        self._pages = [mainline, testnet, simnet, custom]  # in MODE_LABELS order
        self.mode.currentIndexChanged.connect(self._mode_changed)

        # --- bind ------------------------------------------------------------------------------
        self.bind_host = QLineEdit("0.0.0.0", self)
        self.bind_host.setToolTip("Local address of the node's UDP socket (0.0.0.0: every "
                                  "interface; a testnet uses 127.0.0.1)")
        self.port = QSpinBox(self)
        self.port.setRange(0, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.port.setToolTip("UDP port of the node (0: any free port)")
        self.port.setSpecialValueText("any")
        self.bind_message = InlineMessage(self)
        bind = QHBoxLayout()
        bind.addWidget(self.bind_host, 3)
        bind.addWidget(QLabel(":", self))
        bind.addWidget(self.port, 1)

        # --- actions ---------------------------------------------------------------------------
        self.start_button = QPushButton("Start", self)
        self.start_button.setToolTip("Start the node and bootstrap it")
        self.start_button.clicked.connect(self._start_clicked)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop the node (its state is saved)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.rebootstrap_button = QPushButton("Re-bootstrap", self)
        self.rebootstrap_button.setToolTip("Ask the bootstrap nodes again for our neighbours")
        self.rebootstrap_button.clicked.connect(self.rebootstrap_requested)
        actions = QHBoxLayout()
        actions.addWidget(self.start_button)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.rebootstrap_button)

        setup = QGroupBox("Bootstrap", self)
        form = QFormLayout(setup)
        form.addRow("Mode", self.mode)
        form.addRow(self.pages)
        form.addRow("Bind", bind)
        form.addRow(self.bind_message)
        form.addRow(actions)

        # --- status ----------------------------------------------------------------------------
        self.state_label = QLabel(self)
        self.state_label.setToolTip("stopped → bootstrapping → ready")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setToolTip(f"Good nodes toward ready ({READY_GOOD_NODES} needed)")
        self.detail = muted_label("", self)
        self.detail.setToolTip("Why the node is in this state")
        self.node_id = QLineEdit(self)
        self.node_id.setReadOnly(True)
        self.node_id.setFont(mono)
        self.node_id.setToolTip("Our node id (160 bits, hex)")
        self.node_id.setPlaceholderText("not started")
        self.copy_id = QToolButton(self)
        self.copy_id.setText("Copy")
        self.copy_id.setToolTip("Copy the node id to the clipboard")
        self.copy_id.clicked.connect(lambda: copy_text(self.node_id.text()))
        id_row = QHBoxLayout()
        id_row.addWidget(self.node_id, 1)
        id_row.addWidget(self.copy_id)
        self.local_label = QLabel("—", self)
        self.local_label.setToolTip("The addresses our UDP sockets are bound to (one per address "
                                    "family)")
        self.local_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a dual-stack node's two sockets (and counts, below) wrap rather than widen the side
        # panel past its room at 1024x700
        self.local_label.setWordWrap(True)
        self.external_label = QLabel(EXTERNAL_UNKNOWN, self)
        self.external_label.setToolTip("Our address as other nodes see it: the IP most "
                                       "responders report in their BEP 42 'ip' field")
        self.external_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.external_label.setWordWrap(True)  # "ip (n votes) · our id matches it (BEP 42)"
        self.nodes_label = QLabel("—", self)
        self.nodes_label.setToolTip("Nodes in the routing table (good ones answered recently)")
        self.nodes_label.setWordWrap(True)
        status = QGroupBox("Node", self)
        form = QFormLayout(status)
        form.addRow("Id", id_row)
        form.addRow("Local", self.local_label)
        form.addRow("External", self.external_label)
        form.addRow("Routing", self.nodes_label)

        # the state and its progress first: in view however short the window (the panel
        # scrolls), through a long start too
        state_row = QHBoxLayout()
        state_row.addWidget(self.state_label)
        state_row.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(state_row)
        layout.addWidget(self.detail)
        layout.addWidget(setup)
        layout.addWidget(status)
        layout.addStretch(1)

        self.set_routers(list(DEFAULT_BOOTSTRAP))
        controller.state_changed.connect(self._state_changed)
        controller.stats_changed.connect(self._stats_changed)
        controller.external_address_changed.connect(self._external_changed)
        controller.testnet_changed.connect(self.set_testnet)
        controller.simnet_changed.connect(self.set_simnet)
        self._mode_changed()
        self._state_changed(controller.state, controller.detail)

    # --- configuration -------------------------------------------------------------------------
    def set_options(self, options: StartOptions) -> None:
        index = self.mode.findData(options.mode)
        self.mode.setCurrentIndex(max(index, 0))
        self.set_routers(list(options.routers))
        self.custom.setPlainText("\n".join(options.custom))
        self.testnet_nodes.setValue(options.testnet_nodes)
        self.simnet_nodes.setValue(options.simnet_nodes)
        self.simnet_profile.setCurrentIndex(max(0, self.simnet_profile.findData(
            options.simnet_profile)))
        self.simnet_scenarios.setText(" ".join(options.simnet_scenarios))
        self.bind_host.setText(options.bind_host)
        self.port.setValue(options.port)
        self._validate()

    def set_routers(self, routers: list[str]) -> None:
        self.routers.blockSignals(True)
        self.routers.clear()
        for router in routers:
            self._router_item(router)
        self.routers.blockSignals(False)
        self._validate()

    def _router_item(self, text: str) -> QListWidgetItem:
        item = QListWidgetItem(text, self.routers)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        return item

    def router_texts(self) -> list[str]:
        return [self.routers.item(i).text().strip() for i in range(self.routers.count())]

    def current_mode(self) -> str:
        return str(self.mode.currentData())

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(max(self.mode.findData(mode), 0))

    def options(self) -> StartOptions | None:
        """The configuration as entered, or None (with the reason shown inline) if invalid."""
        if not self._validate():
            return None
        routers, _ = validate_hostports(self.router_texts())
        custom, _ = validate_hostports(self.custom.toPlainText().splitlines())
        return replace(
            StartOptions(),
            mode=self.current_mode(),
            routers=tuple(routers),
            custom=tuple(custom),
            testnet_nodes=self.testnet_nodes.value(),
            simnet_nodes=self.simnet_nodes.value(),
            simnet_profile=str(self.simnet_profile.currentData()),
            simnet_scenarios=tuple(self.simnet_scenarios.text().split()),
            bind_host=self.bind_host.text().strip() or "0.0.0.0",
            port=self.port.value(),
        )

    def _validate(self) -> bool:
        mode = self.current_mode()
        ok = True
        routers, errors = validate_hostports(self.router_texts())
        bad_color = QColor(current_theme().bad)
        for i in range(self.routers.count()):
            item = self.routers.item(i)
            bad = bool(item.text().strip()) and item.text().strip() not in routers
            item.setForeground(bad_color if bad else self.palette().text())
            item.setToolTip(errors[0] if bad and errors else "")
        if errors:
            self.routers_message.show_error("; ".join(errors))
        elif not routers:
            self.routers_message.show_error("add at least one router")
        else:
            self.routers_message.clear_message()
        if mode == MAINLINE and (errors or not routers):
            ok = False
        custom, errors = validate_hostports(self.custom.toPlainText().splitlines())
        if errors:
            self.custom_message.show_error("; ".join(errors))
        elif not custom:
            self.custom_message.show_info("list at least one HOST:PORT")
        else:
            self.custom_message.show_info(f"{len(custom)} bootstrap address"
                                          f"{'es' if len(custom) != 1 else ''}")
        mark_invalid(self.custom, bool(errors))
        if mode == CUSTOM and (errors or not custom):
            ok = False
        try:
            parse_scenarios(self.simnet_scenarios.text().split())
        except ScenarioError as err:
            self.simnet_message.show_error(f"scenario {err}")
            mark_invalid(self.simnet_scenarios, True)
            if mode == SIMNET:
                ok = False
        else:
            self.simnet_message.clear_message()
            mark_invalid(self.simnet_scenarios, False)
        problem = bind_host_problem(self.bind_host.text().strip())
        bad_host = problem is not None
        if problem is not None:
            self.bind_message.show_error(f"bind address: {problem}")
        else:
            self.bind_message.clear_message()
        mark_invalid(self.bind_host, bad_host)
        return ok and not bad_host

    def _mode_changed(self) -> None:
        current = self.mode.currentIndex()
        for i, page in enumerate(self._pages):
            page.setVisible(i == current)
        self._validate()
        self._update_buttons()

    def _add_router(self) -> None:
        item = self._router_item("host:6881")
        self.routers.setCurrentItem(item)
        self.routers.editItem(item)
        self._validate()

    def _remove_router(self) -> None:
        for item in self.routers.selectedItems():
            self.routers.takeItem(self.routers.row(item))
        self._validate()

    def _start_clicked(self) -> None:
        if self._validate():
            self.start_requested.emit()

    # --- testnet -------------------------------------------------------------------------------
    def set_testnet(self, announced: dict[bytes, list[Addr]] | None) -> None:
        self.testnet_list.clear()
        if not announced:
            self.testnet_hint.setText("Start the node to create the testnet; a few info-hashes "
                                      "are announced in it to try lookups at once.")
            return
        self.testnet_hint.setText("Announced info-hashes — double-click one to look it up:")
        for info_hash, peers in announced.items():
            item = QListWidgetItem(info_hash.hex(), self.testnet_list)
            item.setData(Qt.ItemDataRole.UserRole, info_hash.hex())
            item.setToolTip(f"{info_hash.hex()}\nannounced by "
                            + ", ".join(format_addr(p) for p in peers))

    # --- simulated Mainline ----------------------------------------------------------------
    def set_simnet(self, info: dict[str, object] | None) -> None:
        """The simulated network's ready line and seeded swarms (None: it stopped)."""
        self.simnet_list.clear()
        if not info:
            self.simnet_hint.setText(_SIMNET_HINT)
            return
        nodes = int(str(info.get("nodes", 0)))
        self.simnet_hint.setText(
            f"{nodes:,} nodes built in {float(str(info.get('build_s', 0))):.1f} s "
            f"({float(str(info.get('rss_mb', 0))):.0f} MB) · ground truth at "
            f"http://{info.get('control')}/ · popular swarms, double-click one to look it up:")
        swarms = info.get("swarms")
        for info_hash, peers in swarms if isinstance(swarms, list) else []:
            item = QListWidgetItem(f"{info_hash}  {peers} peers", self.simnet_list)
            item.setData(Qt.ItemDataRole.UserRole, info_hash)
            item.setToolTip(f"{info_hash}\nseeded with {peers} peers")

    def _infohash_clicked(self, item: QListWidgetItem) -> None:
        self.infohash_chosen.emit(str(item.data(Qt.ItemDataRole.UserRole)))

    def _infohash_activated(self, item: QListWidgetItem) -> None:
        self.infohash_lookup_requested.emit(str(item.data(Qt.ItemDataRole.UserRole)))

    # --- status --------------------------------------------------------------------------------
    def _state_changed(self, state: str, detail: str) -> None:
        t = current_theme()
        color = {"ready": t.good, "bootstrapping": t.questionable, STARTING: t.questionable,
                 STOPPING: t.questionable}.get(state, t.muted)
        self.state_label.setText(f"<span style='color:{color}'>●</span> "
                                 f"{_STATE_TEXT.get(state, state)}")
        self.detail.setText(detail)
        if state == STARTING:
            self._externals.clear()  # a new run learns its addresses anew
        c = self.controller
        node_id = c.node_id()
        self.node_id.setText(node_id.hex() if node_id is not None else "")
        self.node_id.setCursorPosition(0)  # the start of the id, not its end
        local = c.local_addresses()  # one socket per address family (BEP 32)
        self.local_label.setText(" · ".join(format_addr(a) for a in local.values()) or "—")
        if c.external_address() is None:
            # learned anew by each run (a testnet's votes say nothing about the Mainline)
            self._externals.clear()
            self.external_label.setText(EXTERNAL_UNKNOWN)
        if state == "stopped":
            self.progress.setValue(0)
            self.progress.setFormat("stopped")
        elif state == "ready":
            self.progress.setValue(100)
            self.progress.setFormat("ready")
        elif state == STARTING and c.start_progress is not None:
            # a testnet being built: nodes started, then bootstrapped (the detail says which)
            self.progress.setValue(int(100 * c.start_progress))
            self.progress.setFormat(f"{_STATE_TEXT[state]} %p%")
        elif state in (STARTING, STOPPING):
            self.progress.setValue(0)
            self.progress.setFormat(_STATE_TEXT[state])
        self._update_buttons()
        self._update_progress()

    def _update_buttons(self) -> None:
        c = self.controller
        running, busy = c.running, c.busy
        self.start_button.setEnabled(not running and not busy)
        self.stop_button.setEnabled(running or (busy and c.state == STARTING))
        self.rebootstrap_button.setEnabled(running and not busy and c.state != "idle")
        for w in (self.mode, self.bind_host, self.port, self.testnet_nodes, self.simnet_nodes,
                  self.simnet_profile, self.simnet_scenarios):
            w.setEnabled(not running and not busy)

    def _stats_changed(self, stats: dict[str, float]) -> None:
        self._stats = stats
        nodes, good = int(stats.get("routing_nodes", 0)), int(stats.get("good_nodes", 0))
        per = [f"IPv{f} {int(stats[f'routing_nodes_v{f}'])}" for f in (4, 6)
               if f"routing_nodes_v{f}" in stats]
        both = f" ({', '.join(per)})" if len(per) > 1 else ""
        self.nodes_label.setText(f"{nodes} nodes, {good} good{both}")
        self._update_progress()

    def _update_progress(self) -> None:
        if self.controller.state != "bootstrapping":
            return
        good = int(self._stats.get("good_nodes", 0))
        need = READY_GOOD_NODES
        self.progress.setValue(int(100 * min(good, need) / need))
        self.progress.setFormat(f"bootstrapping: {min(good, need)} of {need} good nodes")

    def _external_changed(self, ip: str, votes: int) -> None:
        ok = self.controller.bep42_ok()
        bep42 = ("" if ok is None else " · our id matches it (BEP 42)" if ok
                 else " · our id does not match it (BEP 42)")
        # One address per family (each DHT tells its node how it sees it).
        self._externals[host_family(ip)] = (ip, votes)
        parts = [f"{a}" + (f" ({n} votes)" if n else " (saved)")
                 for _, (a, n) in sorted(self._externals.items())]
        self.external_label.setText(" · ".join(parts) + bep42)
