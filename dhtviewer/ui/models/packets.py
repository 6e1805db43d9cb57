"""PacketsModel: the packet log, a bounded ring buffer of the datagrams sent and received.

Rows come from MessageSent, MessageReceived and MalformedReceived events; the oldest rows are
dropped past ``capacity``. The one-line summary is computed only when a row is first shown (most
rows scroll by unseen), and ``decoded(row)`` pretty-prints a whole message for the detail pane.
``PacketsProxy`` filters by free text, method and direction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt

from dhtviewer.dht import bencoding, krpc
from dhtviewer.dht import events as ev
from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.messages import Addr
from dhtviewer.ui.models.base import RIGHT_ALIGNED, Index, RowTableModel
from dhtviewer.ui.models.nodes import (
    SORT_ROLE,
    addr_sort_key,
    filter_change,
    format_version,
    monospace_font,
)

COL_TIME, COL_DIR, COL_ADDR, COL_TYPE, COL_METHOD, COL_TID, COL_SIZE, COL_SUMMARY = range(8)
HEADERS = ("Time (s)", "Dir", "Address", "Type", "Method", "TID", "Size", "Summary")
_KINDS = {"q": "query", "r": "response", "e": "error"}
_MAX_DEPTH = 16  # deeper than KRPC needs: the detail pane shows odd messages too


@dataclass(slots=True)
class PacketRow:
    at: float
    direction: str
    """"in" or "out"."""
    addr: Addr
    type: str
    """"query", "response", "error" or "malformed"."""
    method: str
    tid: bytes
    size: int
    data: bytes
    note: str = ""
    """Why a malformed datagram was rejected."""
    summary: str | None = None
    """Computed on first use."""


def _row_of(event: ev.Event) -> PacketRow | None:
    if isinstance(event, ev.MessageSent | ev.MessageReceived):
        direction = "out" if isinstance(event, ev.MessageSent) else "in"
        kind = _KINDS.get(event.kind, event.kind)
        method = event.method.decode("ascii", "replace")
        return PacketRow(
            event.at, direction, event.addr, kind, method, event.tid, event.size, event.data
        )
    if isinstance(event, ev.MalformedReceived):
        note = f"{event.reason} (error {event.code}{', replied' if event.replied else ''})"
        return PacketRow(event.at, "in", event.addr, "malformed", "", b"", event.size, b"", note)
    return None


# --- display of raw bencoded data -----------------------------------------------------------------
def _text(value: bytes) -> str:
    """Printable ASCII as a quoted string, anything else as hex."""
    if value and all(0x20 <= b < 0x7F for b in value):
        return '"' + value.decode("ascii") + '"'
    return f"{value.hex()} ({len(value)} bytes)"


def _compact_addr(value: bytes) -> str | None:
    """A BEP 5/32 compact peer (6 or 18 bytes) as text."""
    if len(value) == 6:
        ip = str(ipaddress.IPv4Address(value[:4]))
    elif len(value) == 18:
        ip = str(ipaddress.IPv6Address(value[:16]))
    else:
        return None
    return format_addr((ip, int.from_bytes(value[-2:], "big")))


def _compact_nodes(value: bytes, entry: int) -> list[str] | None:
    if not value or len(value) % entry:
        return None
    out = []
    for i in range(0, len(value), entry):
        chunk = value[i : i + entry]
        out.append(f"{chunk[:20].hex()}  {_compact_addr(chunk[20:])}")
    return out


def _pretty(value: object, indent: int, key: bytes | None = None) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k in sorted(value, key=lambda k: k if isinstance(k, bytes) else b""):
            name = k.decode("ascii", "replace") if isinstance(k, bytes) else repr(k)
            sub = _pretty(value[k], indent + 1, k if isinstance(k, bytes) else None)
            if len(sub) == 1:
                lines.append(f"{pad}{name}: {sub[0].strip()}")
            else:
                lines.append(f"{pad}{name}:")
                lines.extend(sub)
        return lines or [pad + "{}"]
    if isinstance(value, list):
        if key == b"values":
            addrs = [_compact_addr(v) if isinstance(v, bytes) else None for v in value]
            if all(addrs):
                return [f"{pad}{a}" for a in addrs] or [pad + "[]"]
        lines = []
        for item in value:
            lines.extend(_pretty(item, indent, None))
        return lines or [pad + "[]"]
    if isinstance(value, bytes):
        if key in (b"nodes", b"nodes6"):
            nodes = _compact_nodes(value, 26 if key == b"nodes" else 38)
            if nodes is not None:
                return [f"{pad}{n}" for n in nodes]
        if key == b"ip":
            addr = _compact_addr(value)
            if addr is not None:
                return [pad + addr]
        if key == b"v" and len(value) == 4:
            return [f"{pad}{format_version(value)} ({value.hex()})"]
        return [pad + _text(value)]
    return [pad + repr(value)]


def _describe(data: bytes) -> str | None:
    """The codec's one-line description, or None if the message does not decode."""
    try:
        return krpc.describe(krpc.decode(data))
    except Exception:  # untrusted bytes: any failure just means "no summary", never a crash
        return None


class PacketsModel(RowTableModel[PacketRow]):
    """At most ``capacity`` rows, oldest first. While ``paused``, events are dropped (and counted
    in ``dropped_while_paused``) so the rows hold still for reading."""

    HEADERS = HEADERS

    def __init__(self, capacity: int = 5000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.paused = False
        self.dropped_while_paused = 0
        self.time_origin: float | None = None
        """Times are shown in seconds since this (default: the first packet)."""
        self._mono = monospace_font()

    # --- feeding -------------------------------------------------------------------------------
    def add_events(self, events: Iterable[ev.Event]) -> None:
        rows = [row for row in map(_row_of, events) if row is not None]
        if not rows:
            return
        if self.paused:
            self.dropped_while_paused += len(rows)
            return
        if self.time_origin is None:
            self.time_origin = rows[0].at
        rows = rows[-self.capacity :]
        overflow = len(self._rows) + len(rows) - self.capacity
        if overflow > 0:
            self._remove_rows(0, overflow - 1)
        self._append_rows(rows)

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self.dropped_while_paused = 0
        self.endResetModel()

    def packet(self, row: int) -> PacketRow:
        return self._rows[row]

    def summary(self, row: int) -> str:
        packet = self._rows[row]
        if packet.summary is None:
            if packet.type == "malformed":
                packet.summary = packet.note
            else:
                # only our own and decoded datagrams get here, so this is a can't-happen guard
                packet.summary = _describe(packet.data) or f"{packet.size} bytes, does not decode"
        return packet.summary

    def decoded(self, row: int) -> str:
        """The whole message of ``row``, pretty-printed (bytes in hex unless printable)."""
        p = self._rows[row]
        where = "from" if p.direction == "in" else "to"
        what = f"{p.type} {p.method}" if p.method else p.type
        head = [f"{what} {where} {format_addr(p.addr)}, {p.size} bytes"]
        if p.type == "malformed":
            return "\n".join([*head, p.note])
        description = _describe(p.data)
        if description:
            head.append(description)
        try:
            body = _pretty(bencoding.decode(p.data, max_depth=_MAX_DEPTH), 0)
        except ValueError as exc:
            body = [f"(not valid bencode: {exc})", p.data.hex()]
        return "\n".join([*head, "", *body])

    # --- Qt model interface --------------------------------------------------------------------
    def _cell(self, p: PacketRow, row: int, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, p, col)
        if role == SORT_ROLE:
            if col == COL_TIME:
                return p.at
            if col == COL_ADDR:
                return addr_sort_key(p.addr)
            if col == COL_SIZE:
                return p.size
            return self._display(row, p, col)
        if role == Qt.ItemDataRole.FontRole and col == COL_TID:
            return self._mono
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_TIME, COL_SIZE):
            return RIGHT_ALIGNED
        return None

    def _display(self, row: int, p: PacketRow, col: int) -> str:
        if col == COL_TIME:
            return f"{p.at - (self.time_origin or 0.0):.3f}"
        if col == COL_DIR:
            return p.direction
        if col == COL_ADDR:
            return format_addr(p.addr)
        if col == COL_TYPE:
            return p.type
        if col == COL_METHOD:
            return p.method
        if col == COL_TID:
            return p.tid.hex()
        if col == COL_SIZE:
            return str(p.size)
        return self.summary(row)


class PacketsProxy(QSortFilterProxyModel):
    """Filters a PacketsModel by free text (address, method, type, tid, summary; case-insensitive),
    method and direction. Sorting uses raw values."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.text = ""
        self.method: str | None = None
        self.direction: str | None = None

    def set_text(self, text: str) -> None:
        filter_change(self, lambda: setattr(self, "text", text.strip().lower()))

    def set_method(self, method: str | None) -> None:
        filter_change(self, lambda: setattr(self, "method", method or None))

    def set_direction(self, direction: str | None) -> None:
        """"in", "out" or None for both."""
        filter_change(self, lambda: setattr(self, "direction", direction or None))

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, PacketsModel):
            return True
        p = model.packet(source_row)
        if self.direction is not None and p.direction != self.direction:
            return False
        if self.method is not None and p.method != self.method:
            return False
        if self.text:
            haystack = " ".join(
                (format_addr(p.addr), p.method, p.type, p.tid.hex(), model.summary(source_row))
            ).lower()
            if self.text not in haystack:
                return False
        return True
