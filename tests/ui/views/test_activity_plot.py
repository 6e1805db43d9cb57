"""The Activity plot: one bar per minute with replies, placed in minutes before now."""

from __future__ import annotations

import pytest
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
