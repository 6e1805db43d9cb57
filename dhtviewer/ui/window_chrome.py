"""Window chrome: the notice banner shown under the toolbar, the application icon, and the
scroll area the side panels sit in."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QToolBar,
    QWidget,
)

from dhtviewer.ui.views.theme import current_theme, qcolor

DESKTOP_ID = "io.github.dhtviewer.DhtViewer"
"""Name of the .desktop file and of the installed icon (resources/)."""


def app_icon() -> QIcon:
    """The application icon: the installed theme icon, else the PNGs of a source checkout
    (resources/icons), else a drawn stand-in."""
    themed = QIcon.fromTheme(DESKTOP_ID)
    if not themed.isNull():
        return themed
    pngs = sorted((Path(__file__).resolve().parents[2] / "resources" / "icons").glob(
        "dhtviewer-*.png"))
    if pngs:
        icon = QIcon()
        for png in pngs:
            icon.addFile(str(png))
        return icon
    return drawn_icon()


def drawn_icon() -> QIcon:
    """The id space as a ring of nodes, one of them ours (no file needed)."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = float(size)
        p.setBrush(QColor("#1e1f22"))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(QRectF(0, 0, s, s), s * 0.18, s * 0.18)
        center, radius = QPointF(s / 2, s / 2), s * 0.32
        p.setPen(QPen(QColor("#8c8f96"), max(1.0, s * 0.045)))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(center, radius, radius)
        colors = ("#3ddc97", "#3ddc97", "#56b4e9", "#3ddc97", "#f5c04a", "#3ddc97", "#56b4e9")
        for i, color in enumerate(colors):
            a = math.radians(20 + i * 47)
            dot = QPointF(center.x() + radius * math.sin(a), center.y() - radius * math.cos(a))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(color))
            p.drawEllipse(dot, s * 0.065, s * 0.065)
        p.setBrush(QColor("#ff6ec7"))
        p.drawEllipse(QPointF(center.x(), center.y() - radius), s * 0.1, s * 0.1)
        p.end()
        icon.addPixmap(pixmap)
    return icon


class Banner(QWidget):
    """A non-modal notice under the toolbar: a message and up to one action, plus Dismiss."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAutoFillBackground(True)
        self.icon = QLabel(self)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.action = QPushButton(self)
        self.dismiss = QPushButton("Dismiss", self)
        self.dismiss.setToolTip("Hide this message")
        self.dismiss.clicked.connect(self.hide_banner)
        layout = QHBoxLayout(self)
        m = self.fontMetrics().height() // 3
        layout.setContentsMargins(m * 2, m, m, m)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action)
        layout.addWidget(self.dismiss)
        self._on_action: Callable[[], object] | None = None
        self.action.clicked.connect(self._act)
        self.toolbar: QToolBar | None = None

    # A toolbar lays its widgets out by their size hints and knows nothing of height-for-width,
    # so a word-wrapped label would be sized for a guessed narrow width: five lines where one
    # or two do. The hints are computed for the row the banner really has (the window's width).
    def _row_width(self) -> int:
        window = self.window()
        return max(window.width() if window is not self else self.width(), 200)

    def sizeHint(self) -> QSize:
        layout = self.layout()
        assert layout is not None
        m = layout.contentsMargins()
        spacing = max(layout.spacing(), 0)
        others = [w for w in (self.icon, self.action, self.dismiss) if not w.isHidden()]
        fixed = sum(w.sizeHint().width() + spacing for w in others)
        width = self._row_width() - self.fontMetrics().height()  # the toolbar's own margins
        text_width = max(width - fixed - m.left() - m.right(), 100)
        height = max([self.text.heightForWidth(text_width)]
                     + [w.sizeHint().height() for w in others])
        return QSize(width, height + m.top() + m.bottom())

    def minimumSizeHint(self) -> QSize:
        return QSize(min(self.sizeHint().width(), 300), self.sizeHint().height())

    def show_message(self, text: str, action: str | None = None,
                     on_action: Callable[[], object] | None = None,
                     tooltip: str = "", error: bool = False) -> None:
        t = current_theme()
        tint = qcolor(t.bad if error else t.questionable, 60 if t.dark else 45)
        self.setStyleSheet(f"#banner {{ background: rgba({tint.red()},{tint.green()},"
                           f"{tint.blue()},{tint.alpha()}); }}")
        style = self.style()
        icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical if error
                                  else QStyle.StandardPixmap.SP_MessageBoxWarning)
        size = self.fontMetrics().height() * 3 // 2
        self.icon.setPixmap(icon.pixmap(size, size))
        self.text.setText(text)
        self.updateGeometry()
        self._on_action = on_action
        self.action.setVisible(action is not None)
        if action is not None:
            self.action.setText(action)
            self.action.setToolTip(tooltip)
        if self.toolbar is not None:
            self.toolbar.show()
        self.show()

    def hide_banner(self) -> None:
        if self.toolbar is not None:
            self.toolbar.hide()

    @property
    def showing(self) -> bool:
        return self.toolbar is not None and self.toolbar.isVisible()

    def _act(self) -> None:
        self.hide_banner()
        if self._on_action is not None:
            self._on_action()


class VerticalScrollArea(QScrollArea):
    """Scrolls its widget vertically when too short; never narrower than the widget needs
    (a horizontal scroll bar in a side panel only hides half of every row)."""

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        hint = super().minimumSizeHint()
        if inner is None:
            return hint
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return QSize(inner.minimumSizeHint().width() + bar + 2 * self.frameWidth(),
                     hint.height())


def scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless ``VerticalScrollArea``."""
    area = VerticalScrollArea()
    area.setObjectName(f"scroll_{widget.objectName() or type(widget).__name__}")
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area
