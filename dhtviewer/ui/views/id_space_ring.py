"""IdSpaceRing: the 160-bit id space drawn as a ring, with every routing-table node on it.

An id's angle is id / 2**160 of a full turn, clockwise from the top, so XOR-close ids are close
on the ring (both share their leading bits). Nodes are dots coloured by state, drawn in three
lanes (good on the ring, questionable and bad a little inside) so a bad node cannot hide a good
one. Our own id and the current lookup target are marked with labelled ticks. All sizes derive
from the font height, so the drawing scales with the screen's DPI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QFontMetricsF, QHelpEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.node_id import ID_BITS
from dhtviewer.ui.views.theme import Theme, current_theme, qcolor

if TYPE_CHECKING:
    from dhtviewer.dht.routing_table import NodeSnapshot, RoutingSnapshot

_FULL = float(1 << ID_BITS)
_LANES = {"good": 0, "questionable": 1, "bad": 2}


def id_angle(node_id: bytes) -> float:
    """Angle of an id in degrees, 0 at the top, growing clockwise."""
    return int.from_bytes(node_id, "big") / _FULL * 360.0


class IdSpaceRing(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._nodes: list[NodeSnapshot] = []
        self._angles: list[float] = []
        self._own_id: bytes | None = None
        self._target: bytes | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # --- data ----------------------------------------------------------------------------------
    def set_nodes(self, snapshot: RoutingSnapshot | Sequence[RoutingSnapshot] | None) -> None:
        """Show the nodes of one snapshot or of several (IPv4 and IPv6 tables)."""
        snaps: list[RoutingSnapshot] = []
        if isinstance(snapshot, Sequence):
            snaps = list(snapshot)
        elif snapshot is not None:
            snaps = [snapshot]
        self._nodes = [n for s in snaps for b in s.buckets for n in b.nodes]
        self._angles = [id_angle(n.id) for n in self._nodes]
        self._own_id = snaps[0].own_id if snaps else None
        self.update()

    def set_target(self, target: bytes | None) -> None:
        self._target = target
        self.update()

    def node_count(self) -> int:
        return len(self._nodes)

    # --- geometry ------------------------------------------------------------------------------
    def _unit(self) -> float:
        return QFontMetricsF(self.font()).height()

    def _geometry(self) -> tuple[QPointF, float, float]:
        """(centre, ring radius, dot radius)."""
        unit = self._unit()
        rect = QRectF(self.rect())
        # room outside the ring for the markers and the side tick labels ("0x4…", "0xc…")
        label = QFontMetricsF(self.font()).horizontalAdvance("0xc…")
        margin = label + 2.3 * unit
        radius = max(min(rect.width(), rect.height()) / 2 - margin, unit)
        return rect.center(), radius, max(unit * 0.24, 1.5)

    @staticmethod
    def _at(center: QPointF, radius: float, angle: float) -> QPointF:
        rad = math.radians(angle)
        return QPointF(center.x() + radius * math.sin(rad), center.y() - radius * math.cos(rad))

    def dot_positions(self) -> list[QPointF]:
        center, radius, dot = self._geometry()
        lane = 2.6 * dot
        return [
            self._at(center, radius - lane * _LANES.get(n.state, 2), a)
            for n, a in zip(self._nodes, self._angles, strict=True)
        ]

    def marker_position(self, ident: bytes) -> QPointF:
        """Where the marker of our id or of the target (``ident``) is drawn, outside the ring."""
        center, radius, _ = self._geometry()
        return self._at(center, radius + 1.2 * self._unit(), id_angle(ident))

    def node_at(self, pos: QPointF) -> NodeSnapshot | None:
        """The node whose dot is nearest to ``pos`` (widget coordinates), if near enough."""
        _, _, dot = self._geometry()
        best, best_d2 = None, (dot * 2.5) ** 2
        for node, p in zip(self._nodes, self.dot_positions(), strict=True):
            d2 = (p.x() - pos.x()) ** 2 + (p.y() - pos.y()) ** 2
            if d2 <= best_d2:
                best, best_d2 = node, d2
        return best

    def tooltip_at(self, pos: QPointF) -> str | None:
        node = self.node_at(pos)
        if node is not None:
            addr = format_addr(node.addr)
            rtt = "—" if node.rtt is None else f"{node.rtt * 1000:.0f} ms"
            return f"{node.id.hex()}\n{addr}\n{node.state}, bucket {node.bucket}, RTT {rtt}"
        for label, ident in (("our id", self._own_id), ("lookup target", self._target)):
            if ident is None:
                continue
            p = self.marker_position(ident)
            if (p.x() - pos.x()) ** 2 + (p.y() - pos.y()) ** 2 <= (self._unit()) ** 2:
                return f"{label}\n{ident.hex()}"
        return None

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.tooltip_at(QPointF(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.update()
        return super().event(event)

    def sizeHint(self) -> QSize:
        side = int(self._unit() * 22)
        return QSize(side, side)

    def minimumSizeHint(self) -> QSize:
        side = int(self._unit() * 10)
        return QSize(side, side)

    # --- painting ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        t = current_theme()
        painter = QPainter(self)
        try:
            painter.setRenderHints(
                QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
            )
            painter.fillRect(self.rect(), qcolor(t.background))
            self._paint(painter, t)
        finally:
            painter.end()

    def _paint(self, painter: QPainter, t: Theme) -> None:
        center, radius, dot = self._geometry()
        unit = self._unit()
        fm = QFontMetricsF(self.font())

        # the ring and quarter ticks labelled with the leading hex digit of the ids there
        painter.setPen(QPen(qcolor(t.muted), max(1.0, unit * 0.08)))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(center, radius, radius)
        for quarter in range(4):
            angle = quarter * 90.0
            painter.setPen(QPen(qcolor(t.muted), 1.0))
            painter.drawLine(self._at(center, radius - 0.3 * unit, angle),
                             self._at(center, radius + 0.3 * unit, angle))
            text = f"0x{quarter * 4:x}…"
            # beyond the markers (which reach 1.7 units out), so neither hides the other
            off = 1.9 * unit + (fm.horizontalAdvance(text) / 2 if quarter % 2 else 0.5 * unit)
            self._label(painter, fm, self._at(center, radius + off, angle), text, t.muted)

        # dots: bad first so good ones land on top
        positions = self.dot_positions()
        order = sorted(range(len(self._nodes)), key=lambda i: -_LANES.get(self._nodes[i].state, 2))
        painter.setPen(QPen(qcolor(t.background, 160), max(0.5, unit * 0.04)))
        for i in order:
            painter.setBrush(QBrush(qcolor(t.state_color(self._nodes[i].state), 220)))
            painter.drawEllipse(positions[i], dot, dot)

        if self._target is not None:
            self._marker(painter, fm, center, radius, self._target, "target", t.target, False)
        if self._own_id is not None:
            self._marker(painter, fm, center, radius, self._own_id, "us", t.own_id, True)

        # centre: how many nodes, and a small legend
        painter.setPen(qcolor(t.foreground))
        self._label(painter, fm, center, f"{len(self._nodes)} nodes", t.foreground)
        y = center.y() + 1.3 * unit
        for state in ("good", "questionable", "bad"):
            n = sum(1 for node in self._nodes if node.state == state)
            text = f"{n} {state}"
            w = fm.horizontalAdvance(text) + 1.2 * unit
            x = center.x() - w / 2
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(qcolor(t.state_color(state))))
            painter.drawEllipse(QPointF(x + 0.35 * unit, y), dot, dot)
            painter.setPen(qcolor(t.foreground))
            painter.drawText(QRectF(x + 0.9 * unit, y - unit / 2, w, unit),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            y += unit

    def _marker(
        self,
        painter: QPainter,
        fm: QFontMetricsF,
        center: QPointF,
        radius: float,
        ident: bytes,
        text: str,
        color: str,
        diamond: bool,
    ) -> None:
        unit = self._unit()
        angle = id_angle(ident)
        pen = QPen(qcolor(color), max(1.5, unit * 0.12))
        painter.setPen(pen)
        if diamond:
            tip = self.marker_position(ident)
            s = unit * 0.45
            painter.setBrush(QBrush(qcolor(color)))
            painter.drawPolygon(QPolygonF([
                QPointF(tip.x(), tip.y() - s), QPointF(tip.x() + s, tip.y()),
                QPointF(tip.x(), tip.y() + s), QPointF(tip.x() - s, tip.y()),
            ]))
            painter.drawLine(self._at(center, radius + 0.6 * unit, angle),
                             self._at(center, radius - 0.4 * unit, angle))
        else:
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawLine(self._at(center, radius * 0.35, angle),
                             self._at(center, radius + 0.9 * unit, angle))
        offset = 2.0 if diamond else 1.6
        label_at = self._at(center, radius - offset * unit - 2.6 * self._geometry()[2], angle)
        self._label(painter, fm, label_at, text, color, bold=True)

    def _label(
        self, painter: QPainter, fm: QFontMetricsF, at: QPointF, text: str, color: str,
        bold: bool = False,
    ) -> None:
        if not text:
            return
        font = painter.font()
        font.setBold(bold)
        painter.setFont(font)
        w = fm.horizontalAdvance(text) * (1.1 if bold else 1.0)
        h = fm.height()
        painter.setPen(qcolor(color))
        painter.drawText(QRectF(at.x() - w / 2, at.y() - h / 2, w, h),
                         Qt.AlignmentFlag.AlignCenter, text)
        font.setBold(False)
        painter.setFont(font)
