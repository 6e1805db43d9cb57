"""Colours shared by every view and model: node states, lookup outcomes, traffic directions.

Two palettes, picked from the lightness of the application's window colour, so the same view reads
well under a dark desktop theme and a light one. Hues follow the Okabe-Ito colour-blind-safe set;
the dark variants are lighter and more saturated so they keep their contrast on a dark background.

Imported by the panels and models as the window is built, so it must stay light: pyqtgraph is
only imported by the two helpers that style its items, which only run once a plot exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtGui import QColor, QGuiApplication, QPalette

from dhtviewer.ui.lookup_state import (
    ABANDONED,
    ANSWERED,
    ERROR,
    IN_FLIGHT,
    RETURNED_PEERS,
    SLOW,
    TIMED_OUT,
)


@dataclass(frozen=True, slots=True)
class Theme:
    """Colours as ``#rrggbb`` strings (pyqtgraph and QColor both accept them)."""

    dark: bool
    background: str
    foreground: str
    muted: str
    """Secondary text, ring outline, grid."""
    good: str
    questionable: str
    bad: str
    replacement: str
    k_line: str
    own_id: str
    target: str
    traffic_in: str
    traffic_out: str
    outcomes: dict[str, str] = field(default_factory=dict)
    series: tuple[str, ...] = ()
    """Distinct colours for per-method lines, used in order."""

    def state_color(self, state: str) -> str:
        """Colour of a routing-table state ("good", "questionable", "bad")."""
        return {"good": self.good, "questionable": self.questionable, "bad": self.bad}.get(
            state, self.muted
        )

    def outcome_color(self, outcome: str) -> str:
        return self.outcomes.get(outcome, self.muted)

    def series_color(self, index: int) -> str:
        return self.series[index % len(self.series)] if self.series else self.foreground


LIGHT = Theme(
    dark=False,
    background="#ffffff",
    foreground="#202020",
    muted="#8a8a8a",
    good="#009e73",
    questionable="#e69f00",
    bad="#d55e00",
    replacement="#7f7fbf",
    k_line="#505050",
    own_id="#cc3d94",
    target="#0060a8",
    traffic_in="#0072b2",
    traffic_out="#d55e00",
    outcomes={
        IN_FLIGHT: "#9a9a9a",
        SLOW: "#e69f00",
        ANSWERED: "#0072b2",
        RETURNED_PEERS: "#009e73",
        TIMED_OUT: "#d55e00",
        ERROR: "#cc79a7",
        ABANDONED: "#c8c8c8",
    },
    series=("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#6a3d9a", "#8c564b"),
)

DARK = Theme(
    dark=True,
    background="#1e1f22",
    foreground="#e4e4e4",
    muted="#8c8f96",
    good="#3ddc97",
    questionable="#f5c04a",
    bad="#ff7b5c",
    replacement="#a3a3f0",
    k_line="#c8c8c8",
    own_id="#ff6ec7",
    target="#6cc4ff",
    traffic_in="#56b4e9",
    traffic_out="#ff9a5c",
    outcomes={
        IN_FLIGHT: "#a0a4ab",
        SLOW: "#f5c04a",
        ANSWERED: "#56b4e9",
        RETURNED_PEERS: "#3ddc97",
        TIMED_OUT: "#ff7b5c",
        ERROR: "#f08cc8",
        ABANDONED: "#5c5f66",
    },
    series=("#56b4e9", "#ff9a5c", "#3ddc97", "#f08cc8", "#f5c04a", "#b0a4ff", "#c9e36b", "#e0a989"),
)


def is_dark(palette: QPalette | None = None) -> bool:
    """True when the window colour is dark (lightness below the midpoint)."""
    if palette is None:
        if QGuiApplication.instance() is None:
            return False
        palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def current_theme(palette: QPalette | None = None) -> Theme:
    """The theme matching ``palette`` (default: the application's current palette)."""
    return DARK if is_dark(palette) else LIGHT


def qcolor(hex_color: str, alpha: int = 255) -> QColor:
    color = QColor(hex_color)
    color.setAlpha(alpha)
    return color


def style_plot(plot: Any, theme: Theme) -> None:
    """Axis lines, tick labels and title of a pyqtgraph PlotItem in the theme's colours."""
    import pyqtgraph as pg  # already loaded: a plot exists

    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(theme.muted))
        axis.setTextPen(pg.mkPen(theme.foreground))
    if plot.titleLabel.text:
        plot.titleLabel.setText(plot.titleLabel.text, color=theme.foreground)


def style_legend(legend: Any, theme: Theme) -> None:
    """Legend text and background; labels are re-rendered, as setting the colour alone does not
    redraw the existing ones."""
    import pyqtgraph as pg  # already loaded: a legend exists

    legend.setLabelTextColor(theme.foreground)
    legend.setBrush(pg.mkBrush(qcolor(theme.background, 200)))
    for _sample, label in legend.items:
        label.setText(label.text, color=theme.foreground)
