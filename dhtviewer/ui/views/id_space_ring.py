"""IdSpaceRing: the routing table drawn as a ring of XOR distance from us, on a log scale.

Drawn linearly (an id's angle = id / 2**160 of a turn), every node of bucket 8 or deeper would
sit within 1.4 degrees of our own id, and a real table is mostly such nodes. So the angle is the
distance instead: our id at the top, and going clockwise a node sits by how many leading bits it
shares with us (its bucket), then by its exact distance within the bucket (log2 of the XOR
distance); every bucket gets the same arc, the closest nodes right after us, the far half of
the id space (bucket 0) last, just before us again. Ticks mark where each bucket starts, its
number sits in the middle of its arc. Nodes are dots coloured by state, drawn in three lanes
(good on the ring, questionable and bad a little inside) so a bad node cannot hide a good one.
Our id and the current lookup target are marked with labelled ticks, the labels beside the
lines they name. All sizes derive from the font height, so the drawing scales with the DPI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QFontMetricsF, QHelpEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.node_id import ID_BITS
from dhtviewer.ui.views.theme import Theme, current_theme, qcolor

if TYPE_CHECKING:
    from dhtviewer.dht.routing_table import NodeSnapshot, RoutingSnapshot

_LANES = {"good": 0, "questionable": 1, "bad": 2}
_US_GAP = 0.6
"""Arc (in buckets) left empty between the deepest bucket and our own id."""


def closeness(ident: bytes, own: bytes) -> float:
    """160 - log2(XOR distance): in (b, b + 1] for an id sharing exactly b leading bits with
    ``own`` (so its bucket is the integer part, rounded up), 161 for ``own`` itself."""
    d = int.from_bytes(ident, "big") ^ int.from_bytes(own, "big")
    return ID_BITS + 1.0 if d == 0 else ID_BITS - math.log2(d)


def distance_angle(ident: bytes, own: bytes, depth: int) -> float:
    """Angle (degrees, 0 at the top, growing clockwise) of ``ident`` on a ring of ``depth``
    buckets: each bucket gets one of the ``depth + _US_GAP`` equal arcs of a turn, from the
    deepest (right after us) to bucket 0 (just before us). The deepest bucket holds every id
    closer than its start too: its arc is halved again for each further bit shared with us, so
    those spread toward us instead of piling up."""
    depth = max(depth, 1)
    span = depth + _US_GAP
    near = closeness(ident, own) - (depth - 1)  # > 0 in the deepest bucket
    # level in [0, depth): 0 = next to us, depth = the far end of bucket 0
    level = depth - (depth - 1 + near) if near <= 0 else 2.0 ** -near
    return 360.0 * (_US_GAP / 2 + level) / span


def bucket_start_angle(bucket: int, depth: int) -> float:
    """Where bucket ``bucket``'s arc begins (its closest end)."""
    depth = max(depth, 1)
    return 360.0 * (_US_GAP / 2 + depth - min(bucket + 1, depth)) / (depth + _US_GAP)


class IdSpaceRing(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._nodes: list[NodeSnapshot] = []
        self._angles: list[float] = []
        self._own_id: bytes | None = None
        self._depth = 1
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
        self._own_id = snaps[0].own_id if snaps else None
        self._depth = max((len(s.buckets) for s in snaps), default=1)
        own = self._own_id
        self._angles = [] if own is None else [self.angle_of(n.id) for n in self._nodes]
        self.update()

    def set_target(self, target: bytes | None) -> None:
        self._target = target
        self.update()

    def node_count(self) -> int:
        return len(self._nodes)

    def angle_of(self, ident: bytes) -> float:
        """The angle ``ident`` is drawn at: 0 (the top) for our own id."""
        if self._own_id is None or ident == self._own_id:
            return 0.0
        return distance_angle(ident, self._own_id, self._depth)

    # --- geometry ------------------------------------------------------------------------------
    def _unit(self) -> float:
        return QFontMetricsF(self.font()).height()

    def _geometry(self) -> tuple[QPointF, float, float]:
        """(centre, ring radius, dot radius)."""
        unit = self._unit()
        rect = QRectF(self.rect())
        # room outside the ring for the markers and the bucket numbers
        label = QFontMetricsF(self.font()).horizontalAdvance("159")
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
        return self._at(center, radius + 1.2 * self._unit(), self.angle_of(ident))

    def target_geometry(self, ident: bytes, text: str = "target") -> tuple[QLineF, QPointF]:
        """The target's dashed line (from inside the ring to past it) and the centre of its
        label, which sits beside the line, not on it."""
        center, radius, _ = self._geometry()
        unit = self._unit()
        angle = self.angle_of(ident)
        inner = radius * 0.55  # clear of the counts in the centre
        line = QLineF(self._at(center, inner, angle), self._at(center, radius + 0.9 * unit, angle))
        # moved across the line by the text box's extent that way (half its width on an
        # upright line, half its height on a level one)
        fm = QFontMetricsF(self.font())
        rad = math.radians(angle)
        across = QPointF(math.cos(rad), math.sin(rad))
        extent = (abs(across.x()) * fm.horizontalAdvance(text) * 0.55
                  + abs(across.y()) * fm.height() * 0.5 + 0.3 * unit)
        along = self._at(center, inner + 0.25 * (radius - inner), angle)
        return line, along + across * extent

    def label_rect(self, at: QPointF, text: str, bold: bool = False) -> QRectF:
        """The box a label centred on ``at`` takes."""
        fm = QFontMetricsF(self.font())
        w = fm.horizontalAdvance(text) * (1.1 if bold else 1.0)
        return QRectF(at.x() - w / 2, at.y() - fm.height() / 2, w, fm.height())

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
            text = text or self.toolTip()  # what the ring shows, rather than the dock's text
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

        # the ring, and a tick where each bucket's arc starts, numbered (every few when many)
        painter.setPen(QPen(qcolor(t.muted), max(1.0, unit * 0.08)))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(center, radius, radius)
        if self._own_id is not None:
            depth = self._depth
            arc = 2 * math.pi * radius / (depth + _US_GAP)
            every = next((k for k in (1, 2, 4, 8, 16) if arc * k >= 2.2 * unit), 32)
            step = 360.0 / (depth + _US_GAP)
            for bucket in range(depth):
                angle = bucket_start_angle(bucket, depth)
                painter.setPen(QPen(qcolor(t.muted), 1.0))
                painter.drawLine(self._at(center, radius - 0.3 * unit, angle),
                                 self._at(center, radius + 0.3 * unit, angle))
                if bucket % every == 0 or bucket == depth - 1:
                    # in the middle of the bucket's arc, beyond the markers (which reach 1.7
                    # units out) so neither hides the other
                    text = str(bucket)
                    off = 1.9 * unit + fm.horizontalAdvance(text) / 2
                    mid = angle + step / 2
                    self._label(painter, fm, self._at(center, radius + off, mid), text, t.muted)

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

        # centre: how many nodes, and when the ring is large enough for them (clear of the
        # markers' labels), what the angle means and a small legend
        painter.setPen(qcolor(t.foreground))
        roomy = radius >= 8 * unit
        self._label(painter, fm, QPointF(center.x(), center.y() - (1.3 * unit if roomy else 0)),
                    f"{len(self._nodes)} nodes", t.foreground)
        if not roomy:
            return
        caption = "clockwise: farther (bucket)"
        if fm.horizontalAdvance(caption) < 1.4 * radius:  # inside the dots' lanes
            self._label(painter, fm, center, caption, t.muted)
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
        angle = self.angle_of(ident)
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
            label_at = self._at(center, radius - 2.0 * unit - 2.6 * self._geometry()[2], angle)
        else:
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            line, label_at = self.target_geometry(ident, text)
            painter.drawLine(line)
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
        painter.setPen(qcolor(color))
        painter.drawText(self.label_rect(at, text, bold), Qt.AlignmentFlag.AlignCenter, text)
        font.setBold(False)
        painter.setFont(font)
