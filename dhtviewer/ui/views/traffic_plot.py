"""TrafficPlot: what the node sends and receives, from a ``TrafficStats``.

Four plots in one grid: messages per second by method (solid in, dashed out) over the last
minutes, bytes per second in and out, the RTT histogram of lookup answers and pings, and the
network-size estimate over time (one dot per lookup, the rolling median and its quartile band).
A line of text above them gives the totals and the malformed, error and dropped counts.

Per-second counts of a few messages are mostly Poisson noise, so the rate lines show a trailing
average over ``SMOOTH_SECONDS``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from dhtviewer.ui.traffic_stats import IN, OUT, TrafficStats
from dhtviewer.ui.views.theme import Theme, current_theme, qcolor, style_legend, style_plot

if TYPE_CHECKING:
    from dhtviewer.ui.traffic_stats import FloatArray

SMOOTH_SECONDS = 5
_HEADROOM = 1.45  # y range above the highest line, so the legend does not cover it


def smooth(values: FloatArray, width: int = SMOOTH_SECONDS) -> FloatArray:
    """Trailing moving average (the first points average over what exists)."""
    if width <= 1 or not len(values):
        return values
    sums = np.cumsum(np.concatenate(([0.0], values)))
    counts = np.minimum(np.arange(1, len(values) + 1), width)
    ends = np.arange(1, len(values) + 1)
    out: FloatArray = (sums[ends] - sums[np.maximum(ends - width, 0)]) / counts
    return out


def si_count(value: float) -> str:
    """A count with an SI suffix: 2000 -> "2k", 1500000 -> "1.5M"."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def log_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Ticks at 1, 2 and 5 times each power of ten between 10**low and 10**high, as
    (log10 value, label); only the powers of ten when that would be too many."""
    decades = range(math.floor(low), math.ceil(high) + 1)
    steps = (1, 2, 5) if high - low < 3 else (1,)
    ticks = [
        (math.log10(m * 10.0**d), si_count(m * 10.0**d)) for d in decades for m in steps
    ]
    return [(v, label) for v, label in ticks if low <= v <= high]


class TrafficPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stats: TrafficStats | None = None
        self._method_colors: dict[str, int] = {}
        self._rate_curves: dict[tuple[str, str], Any] = {}
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.canvas = pg.GraphicsLayoutWidget(self)
        layout = QVBoxLayout(self)
        margin = self.fontMetrics().height() // 3
        layout.setContentsMargins(margin, margin, margin, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.canvas, 1)

        c = self.canvas
        self.rates_plot = c.addPlot(row=0, col=0, title="messages by method (solid in, dashed out)")
        self.bytes_plot = c.addPlot(row=0, col=1, title="traffic")
        self.rtt_plot = c.addPlot(row=1, col=0, title="RTT of answers")
        self.size_plot = c.addPlot(row=1, col=1, title="network size estimate")
        for plot in (self.rates_plot, self.bytes_plot, self.rtt_plot, self.size_plot):
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.showGrid(y=True, alpha=0.15)
        self.rates_plot.setLabel("bottom", "seconds ago")
        self.rates_plot.setLabel("left", f"messages/s ({SMOOTH_SECONDS} s average)")
        self._rates_legend = self.rates_plot.addLegend(offset=(6, 2), colCount=3)
        self.bytes_plot.setLabel("bottom", "seconds ago")
        self.bytes_plot.setLabel("left", f"rate ({SMOOTH_SECONDS} s average)", units="B/s")
        self._bytes_legend = self.bytes_plot.addLegend(offset=(6, 2), colCount=2)
        self._bytes_in = self.bytes_plot.plot(name="in")
        self._bytes_out = self.bytes_plot.plot(name="out")
        self.rtt_plot.setLabel("bottom", "RTT (ms; the last bar: this or slower)")
        self.rtt_plot.setLabel("left", "answers")
        self._rtt_bars = pg.BarGraphItem(x=[], height=[], width=1.0)
        self.rtt_plot.addItem(self._rtt_bars)
        self.size_plot.setLabel("bottom", "minutes ago")
        self.size_plot.setLabel("left", "nodes")
        self._size_legend = self.size_plot.addLegend(offset=(6, 2), colCount=3)
        self._size_low = pg.PlotDataItem()
        self._size_high = pg.PlotDataItem()
        self._size_band = pg.FillBetweenItem(self._size_low, self._size_high)
        self._size_points = pg.PlotDataItem(pen=None, symbol="o", name="one lookup")
        self._size_median = pg.PlotDataItem(name="median, quartile band")
        for item in (self._size_low, self._size_high, self._size_band):
            self.size_plot.addItem(item)
        self.size_plot.addItem(self._size_points)
        self.size_plot.addItem(self._size_median)
        self.apply_theme()
        self.set_stats(None)
        self._ready = True

    def set_stats(self, stats: TrafficStats | None) -> None:
        """Redraw from ``stats`` (None clears)."""
        self._stats = stats
        stats = stats or TrafficStats()
        t = current_theme()
        x = stats.seconds_axis()
        left = -float(stats.shown_seconds())
        seen = set()
        top = 0.0
        for direction in (IN, OUT):
            for method in stats.methods(direction):
                key = (direction, method)
                seen.add(key)
                curve = self._rate_curves.get(key) or self._new_rate_curve(key, t)
                y = smooth(stats.rate_series(direction, method))
                top = max(top, float(y.max(initial=0.0)))
                curve.setData(x, y)
        for key, curve in self._rate_curves.items():
            if key not in seen:
                curve.setData([], [])
        self.rates_plot.setRange(
            xRange=(left, 0.0), yRange=(0.0, max(top, 1.0) * _HEADROOM), padding=0.01
        )
        b_in, b_out = smooth(stats.bytes_series(IN)), smooth(stats.bytes_series(OUT))
        self._bytes_in.setData(x, b_in)
        self._bytes_out.setData(x, b_out)
        top = max(float(b_in.max(initial=0.0)), float(b_out.max(initial=0.0)), 100.0)
        self.bytes_plot.setRange(xRange=(left, 0.0), yRange=(0.0, top * _HEADROOM), padding=0.01)

        edges, counts = stats.rtt_histogram()
        width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
        self._rtt_bars.setOpts(x=edges[:-1] + width / 2, height=counts, width=width * 0.9)
        self.rtt_plot.setRange(
            xRange=(0.0, float(edges[-1])), yRange=(0.0, max(float(counts.max(initial=0)), 1.0)),
            padding=0.03,
        )

        self._draw_size(stats)
        self.summary.setText(self._summary_text(stats))

    def _new_rate_curve(self, key: tuple[str, str], t: Theme) -> Any:
        direction, method = key
        color_index = self._method_colors.setdefault(method, len(self._method_colors))
        style = Qt.PenStyle.SolidLine if direction == IN else Qt.PenStyle.DashLine
        pen = pg.mkPen(t.series_color(color_index), width=1.5, style=style)
        # one legend entry per method (its first curve); the title explains solid/dashed
        named = all(m != method for _, m in self._rate_curves)
        curve = self.rates_plot.plot(pen=pen, name=method if named else None)
        if named:
            style_legend(self._rates_legend, t)
        self._rate_curves[key] = curve
        return curve

    def _draw_size(self, stats: TrafficStats) -> None:
        # Estimates spread over a decade or more, so y is log10(nodes) on a linear axis with
        # 1-2-5 ticks (pyqtgraph's own log axis crowds its labels over short ranges).
        series = stats.size_series()
        points = stats.size_estimates()
        if not len(series.at):
            for item in (self._size_points, self._size_median, self._size_low, self._size_high):
                item.setData([], [])
            self.size_plot.getAxis("left").setTicks(None)
            self.size_plot.setRange(xRange=(-20.0, 0.0), yRange=(2.0, 7.0), padding=0)
            return
        now = stats.now
        minutes = (series.at - now) / 60.0
        values = np.log10(np.array([p.estimate for p in points]))
        self._size_points.setData(np.array([(p.at - now) / 60.0 for p in points]), values)
        self._size_median.setData(minutes, np.log10(series.median))
        self._size_low.setData(minutes, np.log10(series.low))
        self._size_high.setData(minutes, np.log10(series.high))
        low, high = float(values.min()), float(values.max())
        span = max(high - low, 0.5)
        top = high + 0.45 * span  # the top part is left for the legend
        self.size_plot.getAxis("left").setTicks([log_ticks(low - 0.05 * span, top)])
        self.size_plot.setRange(
            xRange=(min(float(minutes[0]), -1.0), 0.0),
            yRange=(low - 0.05 * span, top),
            padding=0.02,
        )

    @staticmethod
    def _summary_text(stats: TrafficStats) -> str:
        tot = stats.totals
        parts = [
            f"in {tot.get('messages in', 0):,} messages, {tot.get('bytes in', 0):,} B",
            f"out {tot.get('messages out', 0):,} messages, {tot.get('bytes out', 0):,} B",
            f"malformed {tot.get('malformed', 0):,}",
            f"errors in {tot.get('errors in', 0):,} / out {tot.get('errors out', 0):,}",
            f"dropped responses {tot.get('dropped responses', 0):,}",
        ]
        latest = stats.latest_size()
        if latest is not None:
            median, low, high = latest
            parts.append(f"network ≈ {median:,.0f} nodes ({low:,.0f} – {high:,.0f})")
        return "  ·  ".join(parts)

    def rate_curve_count(self) -> int:
        """Curves currently showing data (one per direction and method seen)."""
        return sum(1 for c in self._rate_curves.values() if c.xData is not None and len(c.xData))

    # --- palette -------------------------------------------------------------------------------
    def apply_theme(self, theme: Theme | None = None) -> None:
        t = theme or current_theme()
        self.canvas.setBackground(t.background)
        for plot in (self.rates_plot, self.bytes_plot, self.rtt_plot, self.size_plot):
            style_plot(plot, t)
        for (direction, method), curve in self._rate_curves.items():
            style = Qt.PenStyle.SolidLine if direction == IN else Qt.PenStyle.DashLine
            color = t.series_color(self._method_colors[method])
            curve.setPen(pg.mkPen(color, width=1.5, style=style))
        self._bytes_in.setPen(pg.mkPen(t.traffic_in, width=1.5))
        self._bytes_out.setPen(pg.mkPen(t.traffic_out, width=1.5, style=Qt.PenStyle.DashLine))
        self._rtt_bars.setOpts(brush=pg.mkBrush(t.series_color(0)), pen=pg.mkPen(t.background))
        self._size_points.setSymbolBrush(pg.mkBrush(qcolor(t.muted, 170)))
        self._size_points.setSymbolPen(None)
        self._size_points.setSymbolSize(5)
        self._size_median.setPen(pg.mkPen(t.target, width=2))
        for edge in (self._size_low, self._size_high):
            edge.setPen(pg.mkPen(None))
        self._size_band.setBrush(pg.mkBrush(qcolor(t.target, 60)))
        for legend in (self._rates_legend, self._bytes_legend, self._size_legend):
            style_legend(legend, t)

    def changeEvent(self, event: QEvent) -> None:
        # Qt sends palette changes while the base class is still being constructed
        ready = getattr(self, "_ready", False)
        if ready and event.type() in (
            QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange
        ):
            self.apply_theme()
            if self._stats is not None:
                self.set_stats(self._stats)
        super().changeEvent(event)
