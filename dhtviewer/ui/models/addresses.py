"""AddressesModel: the packet log grouped by address (Wireshark's "Endpoints"), one row per
remote address with its packet counts, bytes, unanswered queries and mean RTT.

The rows come whole from a per-address query of the capture (``PacketCapture.start_addresses``,
run by its writer thread over every kept packet that the display filter shows); ``set_rows``
replaces them, keeping each address on its row where it can so a selection survives a refresh.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt

from dhtviewer.ui.capture.records import format_ms
from dhtviewer.ui.capture.writer import AddressStats
from dhtviewer.ui.models.base import RIGHT_ALIGNED, RowTableModel
from dhtviewer.ui.models.nodes import SORT_ROLE, addr_sort_key, format_addr, monospace_font

HEADERS = ("Address", "Node id", "Packets", "In", "Out", "Queries in", "Queries out",
           "Responses", "Errors", "Malformed", "Unanswered", "Bytes in", "Bytes out",
           "RTT (ms)", "First (s)", "Last (s)")
COL_ADDR, COL_ID = 0, 1
COL_RTT, COL_FIRST, COL_LAST = 13, 14, 15
TIPS = {
    COL_ID: "The node id this address sent (\"n ids\": it changed its id)",
    10: "Queries (either way) that got no reply",
    COL_RTT: "Mean milliseconds from our query to its reply",
    COL_FIRST: "Seconds since the capture started",
    COL_LAST: "Seconds since the capture started",
}


class AddressesModel(RowTableModel[AddressStats]):
    """Rows as the query returned them (busiest first); sort with a proxy on SORT_ROLE."""

    HEADERS = HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.time_origin = 0.0
        self.truncated = False
        """More addresses matched than the rows shown."""
        self._mono = monospace_font()

    def set_rows(self, rows: list[AddressStats], truncated: bool = False) -> None:
        self.truncated = truncated
        old = {(r.ip, r.port): i for i, r in enumerate(self._rows)}
        if [(r.ip, r.port) for r in rows] == list(old):
            self._rows[:] = rows
            self._emit_rows_changed(range(len(rows)))
            return
        self.beginResetModel()
        self._rows[:] = rows
        self.endResetModel()

    def stats(self, row: int) -> AddressStats:
        return self._rows[row]

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal
                and section in TIPS):
            return TIPS[section]
        return super().headerData(section, orientation, role)

    def _cell(self, s: AddressStats, row: int, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(s, col)
        if role == SORT_ROLE:
            if col == COL_ADDR:
                return addr_sort_key((s.ip, s.port))
            if col == COL_ID:
                return (s.node_id or b"").hex()
            value = self._value(s, col)
            return -1.0 if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole and col > COL_ID:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.FontRole and col == COL_ID:
            return self._mono
        return None

    def _value(self, s: AddressStats, col: int) -> float | None:
        values = (s.packets, s.packets_in, s.packets_out, s.queries_in, s.queries_out,
                  s.responses, s.errors, s.malformed, s.unanswered, s.bytes_in, s.bytes_out)
        if 2 <= col < COL_RTT:
            return float(values[col - 2])
        if col == COL_RTT:
            return None if s.rtt is None else s.rtt * 1000
        if col == COL_FIRST:
            return s.first - self.time_origin
        return s.last - self.time_origin

    def _display(self, s: AddressStats, col: int) -> str:
        if col == COL_ADDR:
            return format_addr((s.ip, s.port))
        if col == COL_ID:
            if s.node_id is None:
                return ""
            text = s.node_id.hex()[:12] + "…"
            return text + (f" ({s.ids} ids)" if s.ids > 1 else "")
        value = self._value(s, col)
        if value is None:
            return ""
        if col == COL_RTT:
            return format_ms(s.rtt)
        if col in (COL_FIRST, COL_LAST):
            return f"{value:.3f}"
        return f"{int(value)}"
