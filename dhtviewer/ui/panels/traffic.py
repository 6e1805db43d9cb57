"""TrafficPanel: message rates by method, bytes per second, RTTs and the network-size estimate.

Keeps the ``TrafficStats`` fed with every batch of events, and redraws the plots at most once a
second (their bins are whole seconds) and only while the panel is visible.
"""

from __future__ import annotations

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from dhtviewer.dht import events as ev
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.traffic_stats import IN, OUT, TrafficStats
from dhtviewer.ui.views.lazy import LazyTrafficPlot

REDRAW_EVERY = 1.0
_RATE_SECONDS = 5  # messages/s in the status bar: the average of the last complete seconds


class TrafficPanel(QWidget):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.stats = TrafficStats()
        # built after the window's first frame (pyqtgraph is slow to import)
        self.plot = LazyTrafficPlot(self)
        self.plot.setToolTip("Traffic of our node over the last five minutes")
        self._last_draw = -1e9
        self.draws = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        controller.events.connect(self.add_events)
        controller.stats_changed.connect(lambda _stats: self.refresh())

    def add_events(self, batch: list[ev.Event]) -> None:
        self.stats.add_events(batch)
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        now = self.controller.now()
        self.stats.advance(now)
        if not force and (now - self._last_draw < REDRAW_EVERY or not self.isVisible()):
            return
        self._last_draw = now
        self.draws += 1
        self.plot.set_stats(self.stats)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh(force=True)

    def messages_per_second(self) -> tuple[float, float]:
        """(in, out) messages per second, averaged over the last few complete seconds."""
        return (self.stats.recent_rate(IN, _RATE_SECONDS),
                self.stats.recent_rate(OUT, _RATE_SECONDS))

    def network_size(self) -> tuple[float, float, float] | None:
        return self.stats.latest_size()
