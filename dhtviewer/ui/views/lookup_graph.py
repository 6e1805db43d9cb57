"""LookupGraph: the path of one lookup, who referred whom and how close each hop got.

x is the hop depth (seeds from our table are hop 0), y the number of leading bits a node shares
with the target, so a good lookup climbs to the right. An edge joins each node to the node that
referred it; colour tells the outcome of the query; a ring marks the final K closest. Nodes at
the same (hop, bits) are spread evenly sideways so they do not hide each other. All edges are
one line item and each outcome one scatter item, so redrawing a few hundred nodes is a handful
of array copies.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QToolTip, QWidget

from dhtviewer.dht.addresses import format_addr
from dhtviewer.ui.lookup_state import ERROR, OUTCOMES, SLOW, LookupState, PathNode
from dhtviewer.ui.views.theme import Theme, current_theme, qcolor, style_legend, style_plot
from dhtviewer.ui.views.themed_plot import ThemedPlotWidget

CLOSEST_LABEL = "final K closest"
_SYMBOLS = {SLOW: "t", ERROR: "d"}
"""Outcomes with a marker of their own (beside their colour): slow and erring queries stand
out from those merely in flight or timed out."""
_SPREAD = 0.6  # sideways spread of one hop's nodes, in hops
_HOVER_PX = 8.0  # how near (in screen pixels, scaled by the device ratio) a hover must be


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
        plot.setLabel("left", "bits shared with the target")
        plot.showGrid(x=False, y=True, alpha=0.12)
        plot.getAxis("bottom").setTickSpacing(1, 1)
        self._legend = plot.addLegend(offset=(8, 6), colCount=3)
        self._edges = pg.PlotCurveItem(connect="pairs")
        plot.addItem(self._edges)
        self._scatters: dict[str, Any] = {}
        for outcome in OUTCOMES:
            item = pg.ScatterPlotItem(name=outcome, symbol=_SYMBOLS.get(outcome, "o"))
            self._scatters[outcome] = item
            plot.addItem(item)
        self._closest = pg.ScatterPlotItem(name=CLOSEST_LABEL, symbol="o")
        plot.addItem(self._closest)
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

    def _fit(self) -> None:
        plot = self.getPlotItem()
        if not len(self._xy):
            plot.setRange(xRange=(-0.5, 3.5), yRange=(0, 24), padding=0)
            return
        max_depth = float(self._xy[:, 0].max())
        low, high = float(self._xy[:, 1].min()), float(self._xy[:, 1].max())
        span = max(high - low, 8.0)
        # shared bits are whole numbers: integer ticks, never 0.5 steps
        step = next((s for s in (1, 2, 5, 10, 20) if span / s <= 10), 40)
        plot.getAxis("left").setTickSpacing(step, step)
        # headroom on top for the legend
        plot.setRange(
            xRange=(-0.6, max(max_depth, 2.0) + 0.6),
            yRange=(low - 0.06 * span, high + 0.35 * span),  # dots on 0 stay whole
            padding=0,
        )

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

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        vb = self.getPlotItem().getViewBox()
        node = None
        if vb.sceneBoundingRect().contains(scene_pos):
            node = self.node_near(vb.mapSceneToView(scene_pos))
        if node is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(QCursor.pos(), self.tooltip_for(node), self)

    # --- palette -------------------------------------------------------------------------------
    def apply_theme(self, theme: Theme | None = None) -> None:
        t = theme or current_theme()
        self.setBackground(t.background)
        style_plot(self.getPlotItem(), t)
        self._edges.setPen(pg.mkPen(qcolor(t.muted, 150), width=1))
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
