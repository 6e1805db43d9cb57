"""RoutingPanel: the routing table three ways — bucket chart, node table, id-space ring.

Fed by the controller's routing snapshots (at most ten a second), one per address family: a
dual-stack node has an IPv4 and an IPv6 table (BEP 32), and the IPv4 / IPv6 switch picks the one
shown (the other keeps its latest snapshot). Clicking a bucket's bar filters the table to that
bucket; the table's context menu pings a node, runs a find_node lookup of its id, or copies its
id or address.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.families import FAMILIES, family_name
from dhtviewer.dht.messages import Addr
from dhtviewer.dht.routing_table import NodeSnapshot, RoutingSnapshot
from dhtviewer.ui.controller import STOPPED, Controller
from dhtviewer.ui.models.nodes import (
    COL_ADDR,
    COL_BEP42,
    COL_BUCKET,
    COL_ID,
    COL_RTT,
    COL_SEEN,
    COL_STATE,
    COL_VERSION,
    NODE_ROLE,
    NodesModel,
    NodesProxy,
)
from dhtviewer.ui.panels.common import copy_text, muted_label, setup_table
from dhtviewer.ui.views.id_space_ring import IdSpaceRing
from dhtviewer.ui.views.lazy import LazyBucketChart


class RoutingPanel(QWidget):
    ping_requested = Signal(object)
    """Addr of the node to ping."""
    find_node_requested = Signal(object)
    """Node id (bytes) to run a find_node lookup for."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.snapshot: RoutingSnapshot | None = None
        """The snapshot shown (of ``family``)."""
        self.snapshots: dict[int, RoutingSnapshot] = {}
        """The latest snapshot of each family."""
        self.family = 4
        """The address family shown."""
        self._sized = False
        # built after the window's first frame (pyqtgraph is slow to import)
        self.chart = LazyBucketChart(self)
        self.chart.setToolTip("")  # per-bar tooltips come from the chart itself
        self.chart.bucket_clicked.connect(self.filter_bucket)
        self.model = NodesModel(self)
        self.proxy = NodesProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        setup_table(self.table)
        self.table.sortByColumn(COL_BUCKET, Qt.SortOrder.DescendingOrder)
        self.table.setToolTip("Every node in the routing table; right-click for ping, "
                              "find_node and copy")
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        unit = self.fontMetrics().horizontalAdvance("0")
        # ids are elided in the middle: the prefix (bucket) and the tail both stay readable
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        widths = {COL_ID: 19, COL_ADDR: 19, COL_STATE: 12, COL_RTT: 9, COL_SEEN: 16,
                  COL_VERSION: 9, COL_BEP42: 7, COL_BUCKET: 7}
        for col, chars in widths.items():
            self.table.setColumnWidth(col, unit * chars)
        self.ring = IdSpaceRing(self)
        self.ring.setToolTip("Every known node by its XOR distance from our id, on a log scale: "
                             "from us at the top, clockwise through the buckets from the "
                             "deepest (closest) to bucket 0 (the far half of the id space).\n"
                             "Ticks start each bucket; the lookup target is marked. Hover a dot "
                             "for the node.")

        self.family_buttons: dict[int, QToolButton] = {}
        self.family_group = QButtonGroup(self)
        self.family_group.setExclusive(True)
        for fam in FAMILIES:
            button = QToolButton(self)
            button.setText(family_name(fam))
            button.setCheckable(True)
            button.setChecked(fam == self.family)
            button.setEnabled(False)
            button.setToolTip(f"Show the {family_name(fam)} routing table (BEP 32: the IPv4 "
                              "and IPv6 DHTs are separate networks, with a table each)")
            self.family_group.addButton(button, fam)
            self.family_buttons[fam] = button
        self.family_group.idClicked.connect(self.show_family)
        self.summary = QLabel("No routing table yet: start the node.", self)
        self.summary.setToolTip("Size of the routing table")
        self.filter_label = muted_label("", self)
        self.show_all = QToolButton(self)
        self.show_all.setText("Show all buckets")
        self.show_all.setToolTip("Remove the bucket filter (set by clicking a bar)")
        self.show_all.clicked.connect(lambda: self.filter_bucket(None))
        self.show_all.hide()
        head = QHBoxLayout()
        for button in self.family_buttons.values():
            head.addWidget(button)
        head.addWidget(self.summary, 1)
        head.addWidget(self.filter_label)
        head.addWidget(self.show_all)
        hint = muted_label("Click a bar to list that bucket's nodes.", self)

        table_box = QWidget(self)
        vbox = QVBoxLayout(table_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addLayout(head)
        vbox.addWidget(self.table, 1)
        chart_box = QWidget(self)
        vbox = QVBoxLayout(chart_box)
        vbox.setContentsMargins(0, 0, 0, 0)
        vbox.addWidget(self.chart, 1)
        vbox.addWidget(hint)
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(chart_box)
        left.addWidget(table_box)
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.ring)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        controller.routing_changed.connect(self.set_snapshot)
        controller.state_changed.connect(self._state_changed)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if not self._sized and self.width() > 200:
            # the ring's size hint would take half the width; the tables need it more
            self._sized = True
            w = self.splitter.width()
            self.splitter.setSizes([int(w * 0.64), w - int(w * 0.64)])

    # --- data ----------------------------------------------------------------------------------
    def set_snapshot(self, snapshot: RoutingSnapshot) -> None:
        """Keep ``snapshot`` as its family's latest; draw it if that family is shown (or if
        nothing of the shown family has come: a node of the other family only)."""
        fam = snapshot.family
        self.snapshots[fam] = snapshot
        button = self.family_buttons[fam]
        button.setEnabled(True)
        button.setText(f"{family_name(fam)} · {snapshot.size}")
        if fam != self.family and self.family in self.snapshots:
            return
        if fam != self.family:
            self.family = fam
            button.setChecked(True)
        self._draw(snapshot)

    def show_family(self, family: int) -> None:
        """Show the routing table of ``family`` (4 or 6), as its latest snapshot."""
        if family == self.family:
            return
        self.family = family
        self.family_buttons[family].setChecked(True)
        self.filter_bucket(None)  # bucket numbers of one table mean nothing in the other
        snapshot = self.snapshots.get(family)
        if snapshot is not None:
            self._draw(snapshot)

    def _draw(self, snapshot: RoutingSnapshot) -> None:
        self.snapshot = snapshot
        self.chart.set_snapshot(snapshot)
        self.model.apply_snapshot(snapshot)
        self.ring.set_nodes(snapshot)
        good = snapshot.good_count
        self.summary.setText(
            f"{family_name(snapshot.family)}: {snapshot.size} nodes in {snapshot.depth} "
            f"buckets · {good} good · K = {snapshot.k}"
        )

    def clear(self, why: str) -> None:
        """Show no table of any family (``why`` in the summary line); the family shown stays
        chosen for the next run."""
        self.snapshot = None
        self.snapshots.clear()
        for fam, button in self.family_buttons.items():
            # the next run may not have this family (the settings changed): no stale count
            button.setText(family_name(fam))
            button.setEnabled(False)
        self.chart.set_snapshot(None)
        self.model.clear()
        self.ring.set_nodes(None)
        self.summary.setText(why)

    def _state_changed(self, state: str, _detail: str) -> None:
        # a stopped node has no table: the last snapshot would contradict the status bar
        if state == STOPPED and (self.snapshot is not None or self.snapshots):
            self.clear("No routing table: the node is stopped.")

    def set_target(self, target: bytes | None) -> None:
        self.ring.set_target(target)

    def filter_bucket(self, index: int | None) -> None:
        self.proxy.set_bucket(index)
        if index is None:
            self.filter_label.setText("")
            self.show_all.hide()
        else:
            self.filter_label.setText(f"showing bucket {index} ({self.proxy.rowCount()} nodes)")
            self.show_all.show()

    # --- context menu --------------------------------------------------------------------------
    def node_at(self, index: QModelIndex) -> NodeSnapshot | None:
        if not index.isValid():
            return None
        node = self.proxy.data(index, NODE_ROLE)
        return node if isinstance(node, NodeSnapshot) else None

    def _context_menu(self, pos: QPoint) -> None:
        node = self.node_at(self.table.indexAt(pos))
        if node is None:
            return
        menu = self.menu_for(node)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def menu_for(self, node: NodeSnapshot) -> QMenu:
        menu = QMenu(self)
        addr: Addr = node.addr
        ping = QAction(f"Ping {format_addr(addr)}", menu)
        ping.setToolTip("Send a KRPC ping and report the round-trip time")
        ping.triggered.connect(lambda: self.ping_requested.emit(addr))
        find = QAction("Find node (lookup of this id)", menu)
        find.setToolTip("Run a find_node lookup toward this node's id and draw its path")
        find.triggered.connect(lambda: self.find_node_requested.emit(node.id))
        copy_id = QAction("Copy id", menu)
        copy_id.triggered.connect(lambda: copy_text(node.id.hex()))
        copy_addr = QAction("Copy address", menu)
        copy_addr.triggered.connect(lambda: copy_text(format_addr(addr)))
        for action in (ping, find):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(copy_id)
        menu.addAction(copy_addr)
        menu.setToolTipsVisible(True)
        running = self.controller.running
        ping.setEnabled(running)
        find.setEnabled(running)
        return menu
