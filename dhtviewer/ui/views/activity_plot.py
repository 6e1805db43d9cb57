"""ActivityPlot: what a BEP 51 crawl brings in, minute by minute.

Bars: info-hashes sampled per minute (repeats included); line: info-hashes seen for the first
time per minute. While a crawl explores, the two are close; as it keeps meeting what it has
already seen, the line falls away from the bars, which is what the population estimate reads.
x is minutes before now (the current, partial minute at 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from dhtviewer.ui.views.theme import Theme, current_theme, qcolor, style_legend, style_plot
from dhtviewer.ui.views.themed_plot import ThemedPlotWidget

_HEADROOM = 1.1
_MIN_PLOT = 6.0
"""The legend shows only if the bars keep this many font heights below it; a shorter plot (the
view in a 1024x700 window) drops it: the caption under the plot says what bars and line are."""


class ActivityPlot(ThemedPlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "minutes ago")
        plot.setLabel("left", "per minute")
        plot.showGrid(y=True, alpha=0.15)
        # the legend above the plot, in the plot's own layout: inside it, it covered the oldest
        # minutes' bars
        plot.layout.removeItem(plot.titleLabel)
        plot.titleLabel.hide()
        self._unit = QFontMetricsF(self.font()).height()
        self._legend = pg.LegendItem(colCount=2, horSpacing=int(self._unit), verSpacing=-2)
        self._legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        plot.layout.addItem(self._legend, 0, 1)
        self._legend_shown = True
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.8, name="sampled")
        plot.addItem(self._bars)
        self._new = pg.PlotDataItem(name="new (first seen)", symbol="o", symbolSize=5)
        plot.addItem(self._new)
        self._legend.addItem(self._bars, "sampled")
        self._legend.addItem(self._new, "new (first seen)")
        self._x = np.zeros(0)
        self._samples = np.zeros(0)
        self._fresh = np.zeros(0)
        self.apply_theme()
        self.set_minutes([], 0.0)
        self._ready = True

    def set_minutes(self, per_minute: Sequence[tuple[float, int, int]], now: float) -> None:
        """``per_minute``: (minute start, wall seconds; samples; new info-hashes), oldest
        first; ``now``: wall seconds."""
        data = np.array(per_minute, dtype=float).reshape(-1, 3)
        current = now - now % 60
        self._x = (data[:, 0] - current) / 60.0
        self._samples = data[:, 1]
        self._fresh = data[:, 2]
        self._bars.setOpts(x=self._x, height=self._samples, width=0.8)
        self._new.setData(x=self._x, y=self._fresh)
        low = min(-10.0, float(self._x.min()) - 0.6) if len(self._x) else -10.0
        high = float(self._samples.max()) if len(self._samples) else 0.0
        self.getPlotItem().setRange(xRange=(low, 0.6), yRange=(0, max(10.0, high) * _HEADROOM),
                                    padding=0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if getattr(self, "_ready", False) and self.plotItem is not None:
            # before the layout runs for the new size: the legend's row and the bars below it
            legend = self._legend.boundingRect().height() if self._legend_shown else 0.0
            axis = 3.0 * self._unit  # the bottom axis: ticks and title
            self._show_legend(event.size().height() - legend - axis >= _MIN_PLOT * self._unit)
        super().resizeEvent(event)

    def bar_count(self) -> int:
        return len(self._x)

    def apply_theme(self, theme: Theme | None = None) -> None:
        t = theme or current_theme()
        self.setBackground(t.background)
        style_plot(self.getPlotItem(), t)
        self._bars.setOpts(brush=pg.mkBrush(qcolor(t.traffic_in, 150)),
                           pen=pg.mkPen(qcolor(t.traffic_in, 220)))
        self._new.setPen(pg.mkPen(t.traffic_out, width=2))
        self._new.setSymbolBrush(pg.mkBrush(t.traffic_out))
        self._new.setSymbolPen(pg.mkPen(t.traffic_out))
        style_legend(self._legend, t)
