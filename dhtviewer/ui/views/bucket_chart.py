"""BucketChart: the routing table as a bar chart, one stacked bar per bucket.

x is the bucket index (bits shared with our id), the bar stacks good / questionable / bad nodes,
a thin bar beside it shows the replacement cache, and a dashed line marks K, a full bucket.
Hovering a bucket shows its counts (answering Qt's tooltip event too, so the dock's generic
tooltip does not replace them); clicking one emits ``bucket_clicked`` (the nodes table then
filters on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, Signal
from PySide6.QtGui import QCursor, QHelpEvent
from PySide6.QtWidgets import QToolTip, QWidget

from dhtviewer.ui.views.theme import Theme, current_theme, qcolor, style_legend, style_plot
from dhtviewer.ui.views.themed_plot import ThemedPlotWidget

if TYPE_CHECKING:
    from dhtviewer.dht.routing_table import BucketSnapshot, RoutingSnapshot

STACK_WIDTH = 0.62
REPLACEMENT_WIDTH = 0.18
_STACK_OFFSET = -0.1  # the stack sits a little left, the replacement bar to its right
_REPLACEMENT_OFFSET = 0.33
STATES = ("good", "questionable", "bad")


def bucket_counts(bucket: BucketSnapshot) -> tuple[int, int, int]:
    """(good, questionable, bad) nodes of a bucket."""
    return bucket.good, bucket.questionable, bucket.bad


class BucketChart(ThemedPlotWidget):
    bucket_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._snapshot: RoutingSnapshot | None = None
        self._counts = np.zeros((0, 3))
        self._replacements = np.zeros(0)
        self._indices: list[int] = []
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.setLabel("bottom", "bucket (bits shared with our id)")
        plot.setLabel("left", "nodes")
        for side in ("left", "bottom"):
            # whole buckets and nodes: pyqtgraph's SI prefixes would label a near-empty chart
            # "(x0.001)"
            plot.getAxis(side).enableAutoSIPrefix(False)
        plot.showGrid(y=True, alpha=0.25)
        self._legend = plot.addLegend(offset=(-8, 6), colCount=4)
        self._stacks = [
            pg.BarGraphItem(x=[], height=[], width=STACK_WIDTH, name=state) for state in STATES
        ]
        self._repl = pg.BarGraphItem(x=[], height=[], width=REPLACEMENT_WIDTH, name="replacements")
        for item in (*self._stacks, self._repl):
            plot.addItem(item)
        self._k_line = pg.InfiniteLine(angle=0, movable=False, label="K = {value:.0f}",
                                       labelOpts={"position": 0.03, "anchors": [(0, 1), (0, 1)]})
        plot.addItem(self._k_line)
        self._k_line.hide()
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.apply_theme()
        self._ready = True

    # --- data ----------------------------------------------------------------------------------
    def set_snapshot(self, snapshot: RoutingSnapshot | None) -> None:
        self._snapshot = snapshot
        buckets: Sequence[BucketSnapshot] = () if snapshot is None else snapshot.buckets
        self._indices = [b.index for b in buckets]
        self._counts = np.array([bucket_counts(b) for b in buckets], dtype=float).reshape(-1, 3)
        self._replacements = np.array([b.replacements for b in buckets], dtype=float)
        x = np.array(self._indices, dtype=float)
        bottom = np.zeros(len(x))
        for col, item in enumerate(self._stacks):
            item.setOpts(x=x + _STACK_OFFSET, y0=bottom.copy(), height=self._counts[:, col])
            bottom += self._counts[:, col]
        self._repl.setOpts(x=x + _REPLACEMENT_OFFSET, y0=np.zeros(len(x)),
                           height=self._replacements)
        k = snapshot.k if snapshot is not None else 0
        self._k_line.setVisible(snapshot is not None)
        self._k_line.setValue(k)
        top = max([k, *bottom.tolist(), *self._replacements.tolist(), 1.0])
        n = max(len(x), 1)
        # bucket indices are whole numbers: one tick per bucket, or every 2nd/5th when many
        step = 1 if n <= 16 else 2 if n <= 32 else 5
        self.getPlotItem().getAxis("bottom").setTickSpacing(step, step)
        # headroom above the tallest bar for the legend
        self.getPlotItem().setRange(xRange=(-0.7, n - 0.3), yRange=(0, top * 1.45), padding=0)

    def stack_heights(self) -> np.ndarray:
        """Per bucket: total bar height (good + questionable + bad) as drawn."""
        total = np.zeros(len(self._indices))
        for item in self._stacks:
            total += np.asarray(item.opts["height"], dtype=float)
        return total

    def replacement_heights(self) -> np.ndarray:
        return np.asarray(self._repl.opts["height"], dtype=float)

    # --- interaction ---------------------------------------------------------------------------
    def bucket_at(self, x: float) -> int | None:
        """The bucket whose column contains view x coordinate ``x``."""
        index = round(x)
        return index if index in self._indices and abs(x - index) <= 0.5 else None

    def tooltip_for(self, index: int) -> str:
        row = self._indices.index(index)
        good, questionable, bad = (int(v) for v in self._counts[row])
        return (
            f"bucket {index}\n{good} good, {questionable} questionable, {bad} bad\n"
            f"{int(self._replacements[row])} in the replacement cache"
        )

    def _view_x(self, scene_pos: QPointF) -> float | None:
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        return float(vb.mapSceneToView(scene_pos).x())

    def tooltip_at(self, scene_pos: QPointF) -> str | None:
        """The tooltip of the bucket under ``scene_pos``, if any."""
        x = self._view_x(scene_pos)
        index = None if x is None else self.bucket_at(x)
        return None if index is None else self.tooltip_for(index)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self._show_tooltip(self.tooltip_at(scene_pos), QCursor.pos())

    def viewportEvent(self, event: QEvent) -> bool:
        # Qt's tooltip event: answered here, over a bar or not, or it would travel up to the
        # dock and its generic tooltip would replace the bucket's
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            self._show_tooltip(self.tooltip_at(self.mapToScene(event.pos())), event.globalPos())
            event.accept()
            return True
        return bool(super().viewportEvent(event))

    def _show_tooltip(self, text: str | None, where: QPoint) -> None:
        if text is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(where, text, self)

    def _on_mouse_clicked(self, event: Any) -> None:
        x = self._view_x(event.scenePos())
        index = None if x is None else self.bucket_at(x)
        if index is not None:
            self.bucket_clicked.emit(index)

    # --- palette -------------------------------------------------------------------------------
    def apply_theme(self, theme: Theme | None = None) -> None:
        t = theme or current_theme()
        self.setBackground(t.background)
        style_plot(self.getPlotItem(), t)
        edge = pg.mkPen(t.background, width=1)
        for item, color in zip(self._stacks, (t.good, t.questionable, t.bad), strict=True):
            item.setOpts(brush=pg.mkBrush(color), pen=edge)
        self._repl.setOpts(brush=pg.mkBrush(qcolor(t.replacement, 200)), pen=edge)
        self._k_line.setPen(pg.mkPen(t.k_line, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine))
        self._k_line.label.setColor(t.k_line)
        style_legend(self._legend, t)
