"""DockSplit: how the window's room is shared between the side panels, the views and the log.

Qt's dock layout hands a bigger window's extra height to the bottom area (the log) and its
extra width to the side panels, and takes a smaller window's room from everyone: a window made
larger showed a 40 px lookup graph over a huge log, and kept it. So the side panels' width and
the log's height are kept in pixels (as the user last set them by moving a separator, within
bounds) whenever the room for the docks changes (the window resized, the banner shown or
hidden), and the views get the rest. It applies while the three docks are where the default
layout puts them; a user who moves them elsewhere is left alone.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QStyle

MAX_SIDE = 0.45
"""The side panels never take more of the width than this."""
MAX_LOG = 0.4
"""Nor the log more of the height."""


class DockSplit(QObject):
    """Keeps the split of ``window`` between ``side`` (left area), ``views`` (right area) and
    ``bottom`` (bottom area)."""

    def __init__(self, window: QMainWindow, side: QDockWidget, views: QDockWidget,
                 bottom: QDockWidget) -> None:
        super().__init__(window)
        self.window = window
        self.side, self.views, self.bottom = side, views, bottom
        self.split: tuple[int, int] | None = None
        """(side width, log height) to keep, in pixels; None until known."""
        self._room = QSize()
        self._pending = False
        for dock in (side, views, bottom):
            dock.installEventFilter(self)

    def applies(self) -> bool:
        """The three docks are docked where the default layout puts them."""
        a = Qt.DockWidgetArea
        return all(dock.isVisible() and not dock.isFloating()
                   and self.window.dockWidgetArea(dock) == area
                   for dock, area in ((self.side, a.LeftDockWidgetArea),
                                      (self.views, a.RightDockWidgetArea),
                                      (self.bottom, a.BottomDockWidgetArea)))

    def shown_views(self) -> QDockWidget:
        """The views dock on top of its tabs: one behind another tab keeps the geometry it had
        when last shown, which says nothing of the room now."""
        tabs = [self.views, *self.window.tabifiedDockWidgets(self.views)]
        return next((d for d in tabs if d.isVisible() and not d.visibleRegion().isEmpty()),
                    self.views)

    def room(self) -> QSize:
        """The room the side panels and the views share across, and the views and the log
        share down (a tabbed area's tab bar included, separators not)."""
        sep = self.window.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent)
        side, views, bottom = (d.geometry() for d in (self.side, self.shown_views(), self.bottom))
        return QSize(views.right() - side.left() + 1 - sep,
                     bottom.bottom() - views.top() + 1 - sep)

    def squeezed(self) -> bool:
        """The log or the side panels take most of the room (a layout not worth keeping)."""
        views = self.shown_views().height() + self.bottom.height()
        return (self.bottom.height() > 0.45 * views
                or self.side.width() > 0.5 * self.window.width())

    def set(self, side: int, log: int) -> None:
        """Side panels ``side`` px wide, log ``log`` px high (within bounds), the views the
        rest; kept from now on."""
        w = self.window
        room = self.room()
        views = self.shown_views()
        side = max(self.side.minimumSizeHint().width(), min(side, int(room.width() * MAX_SIDE)))
        log = max(self.bottom.minimumSizeHint().height(), min(log, int(room.height() * MAX_LOG)))
        if room.width() <= side or room.height() <= log:
            return  # a layout pass half done: the next resize brings the real room
        w.resizeDocks([self.side, views], [side, room.width() - side],
                      Qt.Orientation.Horizontal)
        w.resizeDocks([views, self.bottom], [room.height() - log, log],
                      Qt.Orientation.Vertical)
        self.split = (side, log)
        self._room = room

    def remember(self) -> None:
        """Keep the split as it is now."""
        if self.applies():
            self.split = (self.side.width(), self.bottom.height())
            self._room = self.room()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and not self._pending:
            # once the layout pass that resized the dock is over
            self._pending = True
            QTimer.singleShot(0, self, self._keep)
        return super().eventFilter(watched, event)

    def _keep(self) -> None:
        self._pending = False
        if self.split is None or not self.applies() or self.room() == self._room:
            self.remember()  # a separator moved (the room did not change): the user's split
        else:
            self.set(*self.split)
