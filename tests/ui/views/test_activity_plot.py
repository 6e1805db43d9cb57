"""The Activity plot: one bar per minute with replies, placed in minutes before now."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from dhtviewer.ui.views.activity_plot import ActivityPlot

pytestmark = pytest.mark.qt


def test_bars_sit_at_minutes_before_now(qtbot: QtBot) -> None:
    plot = ActivityPlot()
    qtbot.addWidget(plot)
    now = 6000.0 + 30  # half a minute into minute 100
    plot.set_minutes([(5820.0, 40, 30), (5940.0, 25, 5), (6000.0, 10, 1)], now)
    assert plot.bar_count() == 3
    assert list(plot._x) == [-3.0, -1.0, 0.0]
    assert list(plot._fresh) == [30, 5, 1]
    x_range, y_range = plot.getPlotItem().viewRange()
    assert x_range[0] <= -10 and x_range[1] > 0 and y_range[1] >= 40
    plot.set_minutes([], now)
    assert plot.bar_count() == 0


def test_the_legend_sits_above_the_bars_and_goes_when_the_plot_is_short(qtbot: QtBot) -> None:
    """Inside the plot the legend covered the oldest bars; above it, it takes a row the short
    plot of a 1024x700 window cannot spare, so there it goes (the caption says the same)."""
    plot = ActivityPlot()
    qtbot.addWidget(plot)
    plot.resize(640, 300)
    plot.show()
    qtbot.waitExposed(plot)
    plot.set_minutes([(6000.0 - 60 * i, 50, 10) for i in range(10, -1, -1)], 6030.0)
    QApplication.processEvents()
    assert plot.legend_shown
    legend = plot._legend.sceneBoundingRect()
    bars = plot.getPlotItem().getViewBox().sceneBoundingRect()
    assert [label.text for _sample, label in plot._legend.items] == ["sampled",
                                                                      "new (first seen)"]
    assert not legend.intersects(bars) and legend.right() <= plot.width()
    unit = plot.fontMetrics().height()
    plot.resize(640, 6 * unit)
    QApplication.processEvents()
    assert not plot.legend_shown and not plot._legend.isVisible()
    assert plot.getPlotItem().getViewBox().height() >= 2 * unit
    plot.resize(640, 300)
    QApplication.processEvents()
    assert plot.legend_shown and plot._legend.isVisible()
