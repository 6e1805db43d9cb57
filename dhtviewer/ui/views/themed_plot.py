"""ThemedPlotWidget: a pyqtgraph plot that follows the desktop's light/dark palette.

The plots restyle themselves in ``apply_theme``; this base calls it again whenever Qt reports a
palette change, once the subclass is fully built.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent

from dhtviewer.ui.views.theme import Theme


class ThemedPlotWidget(pg.PlotWidget):  # type: ignore[misc]  # pyqtgraph is untyped
    """Subclasses implement ``apply_theme`` and set ``_ready`` at the end of ``__init__``."""

    def apply_theme(self, theme: Theme | None = None) -> None:
        raise NotImplementedError

    def changeEvent(self, event: QEvent) -> None:
        # Qt sends palette changes while the base class is still being constructed, and
        # pyqtgraph drops the plot item when the widget is closed
        ready = getattr(self, "_ready", False) and self.getPlotItem() is not None
        if ready and event.type() in (
            QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange
        ):
            self.apply_theme()
        super().changeEvent(event)
