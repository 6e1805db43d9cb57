"""DockSplit on a plain window with a side, a views and a bottom dock: a resized window gives
its room to the views, a separator the user moves sets the split kept, and docks moved away
from the default places are left alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QTextEdit
from pytestqt.qtbot import QtBot

from dhtviewer.ui.dock_split import DockSplit

pytestmark = pytest.mark.qt


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[tuple[QMainWindow, DockSplit]]:
    w = QMainWindow()
    docks = []
    for area, name in ((Qt.DockWidgetArea.LeftDockWidgetArea, "side"),
                       (Qt.DockWidgetArea.RightDockWidgetArea, "views"),
                       (Qt.DockWidgetArea.BottomDockWidgetArea, "log")):
        dock = QDockWidget(name, w)
        dock.setObjectName(name)
        dock.setWidget(QTextEdit())
        w.addDockWidget(area, dock)
        docks.append(dock)
    w.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    split = DockSplit(w, *docks)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w, split


def settle(qtbot: QtBot) -> None:
    qtbot.wait(50)
    QApplication.processEvents()


def test_a_resized_window_keeps_the_side_and_log_sizes(
    qtbot: QtBot, window: tuple[QMainWindow, DockSplit]
) -> None:
    w, split = window
    split.set(300, 150)
    settle(qtbot)
    assert (split.side.width(), split.bottom.height()) == (300, 150)
    views = split.views.height()
    for size in ((1600, 1100), (1000, 700), (1200, 640)):
        w.resize(*size)
        settle(qtbot)
        assert (split.side.width(), split.bottom.height()) == (300, 150), size
    assert split.views.height() < views  # the shorter window took it from the views
    # within bounds: a tiny window does not give the log most of its height
    w.resize(800, 420)
    settle(qtbot)
    assert split.bottom.height() <= 0.4 * (split.views.height() + split.bottom.height()) + 2


def test_a_moved_separator_is_the_split_kept(
    qtbot: QtBot, window: tuple[QMainWindow, DockSplit]
) -> None:
    w, split = window
    split.set(300, 150)
    settle(qtbot)
    # what a separator drag does: the docks change, the window does not
    w.resizeDocks([split.views, split.bottom], [420, 200], Qt.Orientation.Vertical)
    settle(qtbot)
    log = split.bottom.height()
    assert split.split == (300, log) and log > 150
    w.resize(1400, 900)
    settle(qtbot)
    assert split.bottom.height() == log


def test_squeezed_views_and_docks_moved_elsewhere(
    qtbot: QtBot, window: tuple[QMainWindow, DockSplit]
) -> None:
    w, split = window
    w.resizeDocks([split.views, split.bottom], [150, 450], Qt.Orientation.Vertical)
    settle(qtbot)
    assert split.squeezed()
    split.bottom.setFloating(True)
    settle(qtbot)
    assert not split.applies()
    before = split.split
    w.resize(1300, 800)
    settle(qtbot)
    assert split.split == before  # nothing kept or forced while the log floats


def test_a_view_raised_over_the_first_keeps_the_split_when_the_window_grows(
    qtbot: QtBot, window: tuple[QMainWindow, DockSplit], qtlog: Any
) -> None:
    # the views area holds tabs (Lookup, Routing table, ...): with another tab raised, the
    # first view's dock sits behind it with a stale geometry, which must not be the room
    w, split = window
    other = QDockWidget("routing", w)
    other.setObjectName("routing")
    other.setWidget(QTextEdit())
    w.tabifyDockWidget(split.views, other)
    split.set(300, 150)
    settle(qtbot)
    other.raise_()
    settle(qtbot)
    for size in ((1600, 1000), (1100, 720)):
        w.resize(*size)
        settle(qtbot)
        assert (split.side.width(), split.bottom.height()) == (300, 150), size
    assert not [r for r in qtlog.records if "resizeDocks" in r.message]
