"""ThemedPlotWidget: a pyqtgraph plot that follows the desktop's light/dark palette, and whose
legend (above the plot) can be dropped when the plot is too short for it.

The plots restyle themselves in ``apply_theme``; this base calls it again whenever Qt reports a
palette change, once the subclass is fully built.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent

from dhtviewer.ui.views.theme import Theme


class ThemedPlotWidget(pg.PlotWidget):  # type: ignore[misc]  # pyqtgraph is untyped
    """Subclasses implement ``apply_theme`` and set ``_ready`` at the end of ``__init__``; one
    with a legend in its layout (row 0, column 1) sets ``_legend`` and ``_legend_shown``."""

    _legend: Any = None
    _legend_shown = False

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

    def _show_legend(self, show: bool) -> None:
        # out of the plot's layout when hidden (a hidden layout item still takes its room)
        if show == self._legend_shown or self._legend is None:
            return
        self._legend_shown = show
        layout = self.getPlotItem().layout
        if show:
            layout.addItem(self._legend, 0, 1)
        else:
            layout.removeItem(self._legend)
        self._legend.setVisible(show)

    @property
    def legend_shown(self) -> bool:
        """Whether the legend is drawn (it is dropped when the plot is too short for it)."""
        return self._legend_shown
