"""LookupGraph: the path of one lookup, who referred whom and how close each hop got.

x is the hop depth (seeds from our table are hop 0), y the number of leading bits a node shares
with the target, so a good lookup climbs to the right. An edge joins each node to the node that
referred it; colour tells the outcome of the query (slow queries are also triangles, error
replies diamonds); a ring marks the final K closest. Nodes at
the same (hop, bits) are spread evenly sideways so they do not hide each other. All edges are
one line item and each outcome one scatter item, so redrawing a few hundred nodes is a handful
of array copies.

The y axis fits the nodes and never passes 160 bits. A node that is the target itself (a
find_node of a known id shares all 160 bits) would squash every other point into a line at the
bottom: it is drawn just above the others instead, past a dotted axis break, at a tick that
reads "160". The legend sits above the plot, outside the data, in as many columns as fit; a
graph too short for it and a readable plot (a small panel's) drops it, and each point's tooltip
names its outcome. Tick labels are spaced by the plot's height in pixels so they never
overlap. Hover tooltips answer Qt's tooltip event too, so a parent's generic tooltip does not
replace them.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF
from PySide6.QtGui import QCursor, QFontMetricsF, QHelpEvent, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.node_id import ID_BITS
from dhtviewer.ui.lookup_state import ERROR, OUTCOMES, SLOW, LookupState, PathNode
from dhtviewer.ui.views.theme import Theme, current_theme, qcolor, style_legend, style_plot
from dhtviewer.ui.views.themed_plot import ThemedPlotWidget

CLOSEST_LABEL = "final K closest"
Y_LABEL = "bits shared with the target"
SHORT_Y_LABEL = "shared bits"
"""The y axis's title where the plot is too short for the long one."""
_SYMBOLS = {SLOW: "t", ERROR: "d"}
"""Outcomes with a marker of their own (beside their colour): slow and erring queries stand
out from those merely in flight or timed out."""
_SPREAD = 0.6  # sideways spread of one hop's nodes, in hops
_HOVER_PX = 8.0  # how near (in screen pixels, scaled by the device ratio) a hover must be
_MIN_SPAN = 8.0  # the y range shows at least this many bits
_BREAK_GAP = 12  # an exact match this many bits above the rest goes past an axis break
_TICK_STEPS = (1, 2, 5, 10, 20, 40)
_EMPTY_BITS = (0.0, 20.0)  # y range of an empty graph
_LABEL_SPACING = 1.8  # tick labels at least this many font heights apart
_LEGEND_ROW = 1.45  # height of a legend row, in font heights
_MIN_PLOT = 7.0  # the legend shows only if the plot keeps this many font heights


def tick_step(span: float, pixels: float, label_px: float) -> int:
    """The smallest whole-bit tick step that keeps labels ``label_px`` apart over ``pixels``
    (at most 10 ticks when the height is not known yet)."""
    most = pixels / label_px if pixels > 0 else 10.0
    return next((s for s in _TICK_STEPS if span / s <= max(most, 1.0)), _TICK_STEPS[-1] * 2)


def layout(nodes: list[PathNode]) -> npt.NDArray[np.float64]:
    """(x, y) per node: x the hop, y the shared bits (0 while unknown). Nodes with the same
    (hop, bits) are spread evenly sideways, ordered by a hash of their id so the order stays put
    as the lookup grows."""
    xy = np.array([(n.depth, n.prefix_bits or 0) for n in nodes], dtype=float).reshape(-1, 2)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, n in enumerate(nodes):
        groups.setdefault((n.depth, n.prefix_bits or 0), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: zlib.crc32(_key(nodes[i])))
        step = _SPREAD / len(members)
        for j, i in enumerate(members):
            xy[i, 0] += (j + 0.5) * step - _SPREAD / 2
    return xy


def _key(node: PathNode) -> bytes:
    return node.node_id if node.node_id is not None else f"{node.addr[0]}:{node.addr[1]}".encode()


def _fmt_rtt(rtt: float | None) -> str:
    return "—" if rtt is None else f"{rtt * 1000:.0f} ms"


class LookupGraph(ThemedPlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state: LookupState | None = None
        self._nodes: list[PathNode] = []
        self._xy = np.zeros((0, 2))
        self._edge_count = 0
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "hop")
        plot.setLabel("left", Y_LABEL)
        self._y_label = Y_LABEL
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)  # whole hops and bits, never "(x0.001)"
        plot.showGrid(x=False, y=True, alpha=0.12)
        plot.getAxis("bottom").setTickSpacing(1, 1)
        # the legend above the plot, in the plot's own layout: never over a point
        plot.layout.removeItem(plot.titleLabel)
        plot.titleLabel.hide()
        self._legend = pg.LegendItem(colCount=3, horSpacing=int(self._unit()), verSpacing=-2)
        # its own width, not the plot's: stretched, its columns spread past the right edge
        self._legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        plot.layout.addItem(self._legend, 0, 1)
        self._legend_shown = True
        self._break_at: float | None = None
        self._break_line = pg.InfiniteLine(angle=0, movable=False)
        self._break_line.hide()
        plot.addItem(self._break_line)
        self._edges = pg.PlotCurveItem(connect="pairs")
        plot.addItem(self._edges)
        self._scatters: dict[str, Any] = {}
        for outcome in OUTCOMES:
            item = pg.ScatterPlotItem(name=outcome, symbol=_SYMBOLS.get(outcome, "o"))
            self._scatters[outcome] = item
            plot.addItem(item)
            self._legend.addItem(item, outcome)
        self._closest = pg.ScatterPlotItem(name=CLOSEST_LABEL, symbol="o")
        plot.addItem(self._closest)
        self._legend.addItem(self._closest, CLOSEST_LABEL)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.apply_theme()
        self.set_lookup(None)
        self._ready = True

    # --- data ----------------------------------------------------------------------------------
    def set_lookup(self, state: LookupState | None) -> None:
        """Draw ``state`` (call again after it changed); None clears the graph."""
        self._state = state
        nodes = [] if state is None else list(state.nodes.values())
        self._nodes = nodes
        xy = layout(nodes)
        self._break_at = self._axis_break(xy[:, 1])
        if self._break_at is not None:
            xy[xy[:, 1] >= ID_BITS, 1] = self._break_at + 1.5
        self._xy = xy
        where = {id(n): i for i, n in enumerate(nodes)}
        pairs = [] if state is None else state.edges()
        seg = np.empty((2 * len(pairs), 2))
        for j, (parent, child) in enumerate(pairs):
            seg[2 * j] = xy[where[id(parent)]]
            seg[2 * j + 1] = xy[where[id(child)]]
        self._edge_count = len(pairs)
        self._edges.setData(x=seg[:, 0], y=seg[:, 1], connect="pairs")
        outcomes = np.array([n.outcome for n in nodes], dtype=object)
        for outcome, item in self._scatters.items():
            mask = outcomes == outcome
            item.setData(x=xy[mask, 0], y=xy[mask, 1])
        ranked = np.array([n.closest_rank is not None for n in nodes], dtype=bool)
        if ranked.any():
            self._closest.setData(x=xy[ranked, 0], y=xy[ranked, 1])
        else:
            self._closest.clear()
        self._fit()

    @staticmethod
    def _axis_break(bits: npt.NDArray[np.float64]) -> float | None:
        """Where the axis breaks (y of the dotted line) when exact matches (160 bits) stand far
        above every other node; None otherwise."""
        exact = bits >= ID_BITS
        if not exact.any() or exact.all():
            return None
        rest = float(bits[~exact].max())
        return rest + 1.5 if ID_BITS - rest > _BREAK_GAP else None

    def _fit(self) -> None:
        plot = self.getPlotItem()
        if len(self._xy):
            max_depth = float(self._xy[:, 0].max())
            low, high = float(self._xy[:, 1].min()), float(self._xy[:, 1].max())
        else:
            max_depth, (low, high) = 0.0, _EMPTY_BITS
        span = max(high - low, _MIN_SPAN)
        pad = 0.06 * span
        bottom, top = low - pad, min(high + pad, ID_BITS + pad)  # dots on 0 stay whole
        pixels = float(plot.getViewBox().height())
        step = tick_step(top - bottom, pixels, self._unit() * _LABEL_SPACING)
        axis = plot.getAxis("left")
        if self._break_at is None:
            axis.setTicks(None)
            axis.setTickSpacing(step, step)  # shared bits are whole numbers: no 0.5 steps
            self._break_line.hide()
        else:
            ticks = [(float(v), str(v)) for v in range(0, int(self._break_at), step)
                     if v >= bottom and v <= self._break_at - 0.5 * step]
            ticks.append((self._break_at + 1.5, str(ID_BITS)))
            axis.setTicks([ticks, []])
            self._break_line.setValue(self._break_at)
            self._break_line.show()
        plot.setRange(xRange=(-0.6, max(max_depth, 2.0) + 0.6), yRange=(bottom, top),
                      padding=0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        # (not once pyqtgraph's close() dropped the plot)
        ready = getattr(self, "_ready", False) and self.plotItem is not None
        if ready:
            # before the layout runs for the new size
            self._fit_legend(event.size().width(), event.size().height())
        super().resizeEvent(event)
        if ready:
            self._fit()  # tick spacing follows the height
            self._fit_y_label()

    def _fit_y_label(self) -> None:
        fm = QFontMetricsF(self.font())
        room = float(self.getPlotItem().getViewBox().height())
        label = Y_LABEL if fm.horizontalAdvance(Y_LABEL) * 1.1 <= room else SHORT_Y_LABEL
        if label != self._y_label:
            self._y_label = label
            self.getPlotItem().setLabel("left", label)

    def _unit(self) -> float:
        return QFontMetricsF(self.font()).height()

    def _fit_legend(self, width: int, height: int) -> None:
        """As many legend columns as ``width`` holds (the legend sits above the plot); no
        legend if it would leave the plot too short in ``height``."""
        # the widths the legend's own items take (a label is its text plus the text item's
        # margins; a sample is 20 px in pyqtgraph)
        entries = [(sample.boundingRect().width(), label.item.boundingRect().width())
                   for sample, label in self._legend.items]
        names = [label.text for _sample, label in self._legend.items]
        spacing = self._legend.layout.horizontalSpacing()
        left, _top, right, _bottom = self._legend.layout.getContentsMargins()
        room = width - 3.5 * self._unit()  # the left axis (ticks and title) and a margin

        def needed(cols: int) -> float:
            # entries fill rows left to right; each column as wide as its widest entry
            widths = sum(max(s for s, _ in entries[c::cols]) + max(w for _, w in entries[c::cols])
                         for c in range(cols))
            return float(widths + (2 * cols - 1) * spacing + left + right)

        most = next((c for c in range(len(names), 0, -1) if needed(c) <= room), 1)
        rows = -(-len(names) // most)
        cols = -(-len(names) // rows)  # as few rows as fit, evenly filled (no orphan entry)
        if cols != self._legend.columnCount:
            self._legend.setColumnCount(cols)
        self._show_legend(height - rows * _LEGEND_ROW * self._unit() >= _MIN_PLOT * self._unit())

    def position_of(self, node: PathNode) -> QPointF:
        """Where ``node`` is drawn (data coordinates: hop, shared bits)."""
        row = next(i for i, n in enumerate(self._nodes) if n is node)
        return QPointF(float(self._xy[row, 0]), float(self._xy[row, 1]))

    def point_count(self) -> int:
        return len(self._nodes)

    def edge_count(self) -> int:
        return self._edge_count

    def closest_count(self) -> int:
        return int(sum(1 for n in self._nodes if n.closest_rank is not None))

    # --- hover ---------------------------------------------------------------------------------
    def node_near(self, view_pos: QPointF, max_px: float = _HOVER_PX) -> PathNode | None:
        """The node drawn nearest to ``view_pos`` (data coordinates), if within ``max_px``."""
        if not len(self._xy):
            return None
        px = self.getPlotItem().getViewBox().viewPixelSize()
        sx, sy = max(px[0], 1e-12), max(px[1], 1e-12)
        dx = (self._xy[:, 0] - view_pos.x()) / sx
        dy = (self._xy[:, 1] - view_pos.y()) / sy
        d2 = dx * dx + dy * dy
        best = int(np.argmin(d2))
        limit = max_px * self.devicePixelRatioF()
        return self._nodes[best] if d2[best] <= limit * limit else None

    @staticmethod
    def tooltip_for(node: PathNode) -> str:
        ident = node.node_id.hex() if node.node_id is not None else "(id not known yet)"
        addr = format_addr(node.addr)
        bits = "id unknown" if node.prefix_bits is None else f"{node.prefix_bits} bits shared"
        rtt = _fmt_rtt(node.rtt)
        lines = [ident, addr, f"hop {node.depth}, {bits}", f"{node.outcome}, RTT {rtt}"]
        if node.answered:
            lines.append(f"returned {node.nodes_returned} new nodes, {node.peers_returned} peers")
        if node.error:
            lines.append(f"error: {node.error}")
        if node.closest_rank is not None:
            lines.append(f"#{node.closest_rank + 1} closest")
        return "\n".join(lines)

    def tooltip_at(self, scene_pos: QPointF) -> str | None:
        """The tooltip of the node drawn at ``scene_pos``, if any."""
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        node = self.node_near(vb.mapSceneToView(scene_pos))
        return None if node is None else self.tooltip_for(node)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        _show_tooltip(self, self.tooltip_at(scene_pos), QCursor.pos())

    def viewportEvent(self, event: QEvent) -> bool:
        # Qt's tooltip event: answered here, whether over a node or not, or it would travel up
        # to the dock and its generic tooltip would replace the node's
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            _show_tooltip(self, self.tooltip_at(self.mapToScene(event.pos())), event.globalPos())
            event.accept()
            return True
        return bool(super().viewportEvent(event))

    # --- palette -------------------------------------------------------------------------------
    def apply_theme(self, theme: Theme | None = None) -> None:
        t = theme or current_theme()
        self.setBackground(t.background)
        style_plot(self.getPlotItem(), t)
        self._edges.setPen(pg.mkPen(qcolor(t.muted, 150), width=1))
        self._break_line.setPen(pg.mkPen(t.muted, width=1, style=pg.QtCore.Qt.PenStyle.DotLine))
        size = 9
        for outcome, item in self._scatters.items():
            color = t.outcome_color(outcome)
            item.setPen(pg.mkPen(qcolor(t.background, 200), width=0.8))
            item.setBrush(pg.mkBrush(color))
            item.setSize(size)
        self._closest.setPen(pg.mkPen(t.foreground, width=1.6))
        self._closest.setBrush(pg.mkBrush(None))
        self._closest.setSize(size * 2)
        style_legend(self._legend, t)


def _show_tooltip(widget: QWidget, text: str | None, where: QPoint) -> None:
    if text is None:
        QToolTip.hideText()
    else:
        QToolTip.showText(where, text, widget)
