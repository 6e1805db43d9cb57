"""NodesModel: the routing table as a table (one row per node), fed by routing snapshots.

Each ``apply_snapshot`` is diffed against the current rows: departed nodes are removed, new ones
appended and changed ones reported with one ``dataChanged``, so views keep their selection and
scroll position. ``NodesProxy`` sorts (on raw values, not display text) and filters by bucket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase

from dhtviewer.dht.addresses import format_addr as format_addr  # re-exported for the views
from dhtviewer.ui.models.base import RIGHT_ALIGNED, Index, RowTableModel
from dhtviewer.ui.views.theme import current_theme

if TYPE_CHECKING:
    from dhtviewer.dht.routing_table import NodeSnapshot, RoutingSnapshot

SORT_ROLE = int(Qt.ItemDataRole.UserRole)
"""Role giving a cell's raw value (number or sortable string) for sorting and filtering."""
NODE_ROLE = SORT_ROLE + 1
"""Role giving the row's NodeSnapshot."""

COL_ID, COL_ADDR, COL_STATE, COL_RTT, COL_SEEN, COL_VERSION, COL_BEP42, COL_BUCKET = range(8)
HEADERS = ("ID", "Address", "State", "RTT (ms)", "Last seen (s ago)", "Client", "BEP 42", "Bucket")
_NUMERIC = (COL_RTT, COL_SEEN, COL_BUCKET)
NONE_TEXT = "—"
_STATE_ORDER = {"good": 0, "questionable": 1, "bad": 2}


# Clients whose two version bytes are a major and a minor number (libtorrent packs
# major << 8 | minor into them). For every other client the two bytes are read as one
# big-endian number, which is what libtorrent's "client identification" note says the field
# is: uTorrent puts its 16-bit build number there (b"UT\xb4\x45" is build 46149, not "180.69").
_DOTTED_CLIENTS = frozenset({b"LT"})


def format_version(version: bytes | None) -> str:
    """A KRPC ``v`` value as text: the client letters, then the version (b"LT\x02\x01" ->
    "LT 2.1", b"UT\xb4\x45" -> "UT 46149"); longer values show their remaining bytes dotted;
    "—" when absent or too short to mean anything."""
    if not version or len(version) < 2:
        return NONE_TEXT
    letters = version[:2]
    name = letters.decode("ascii") if all(0x20 < b < 0x7F for b in letters) else letters.hex()
    rest = version[2:]
    if not rest:
        return name
    if len(rest) == 2 and letters not in _DOTTED_CLIENTS:
        return f"{name} {int.from_bytes(rest, 'big')}"
    return f"{name} {'.'.join(str(b) for b in rest)}"


def addr_sort_key(addr: tuple[str, int]) -> str:
    """A string that sorts addresses numerically (IPv4 before IPv6, then by port)."""
    try:
        ip = ipaddress.ip_address(addr[0])
    except ValueError:
        return f"9{addr[0]}:{addr[1]:05d}"
    return f"{ip.version}{ip.packed.hex():0>32}{addr[1]:05d}"


def monospace_font() -> QFont:
    """The system's fixed-width font; some platforms (offscreen, minimal) report a font without
    a family there, so fixed pitch is also requested explicitly."""
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if not font.fixedPitch():
        font.setFamilies(["monospace"])
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setFixedPitch(True)
    return font


def filter_change(proxy: QSortFilterProxyModel, change: Callable[[], None]) -> None:
    """Apply ``change`` to a proxy's row filter and refilter (begin/endFilterChange where Qt
    has them, 6.9+; invalidateRowsFilter, deprecated there, on older versions)."""
    if hasattr(proxy, "beginFilterChange"):
        proxy.beginFilterChange()
        change()
        proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)
    else:  # pragma: no cover - older PySide6
        change()
        proxy.invalidateRowsFilter()


def _key(node: NodeSnapshot) -> tuple[bytes, tuple[str, int]]:
    return (node.id, node.addr)


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers -> inclusive (first, last) runs of consecutive rows."""
    out: list[tuple[int, int]] = []
    for row in rows:
        if out and out[-1][1] == row - 1:
            out[-1] = (out[-1][0], row)
        else:
            out.append((row, row))
    return out


class NodesModel(RowTableModel["NodeSnapshot"]):
    """Rows: the nodes of one or more routing snapshots (e.g. the IPv4 and IPv6 tables)."""

    HEADERS = HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._taken_at = 0.0
        self._theme = current_theme()
        self._mono = monospace_font()

    # --- feeding -------------------------------------------------------------------------------
    def apply_snapshot(self, snapshot: RoutingSnapshot | Sequence[RoutingSnapshot]) -> None:
        """Show exactly the nodes of ``snapshot`` (or of all snapshots in a sequence)."""
        snaps = list(snapshot) if isinstance(snapshot, Sequence) else [snapshot]
        fresh = {_key(n): n for s in snaps for b in s.buckets for n in b.nodes}
        taken_at = max((s.taken_at for s in snaps), default=self._taken_at)
        self._theme = current_theme()

        gone = [row for row, node in enumerate(self._rows) if _key(node) not in fresh]
        for first, last in reversed(_runs(gone)):
            self._remove_rows(first, last)

        changed = taken_at != self._taken_at
        self._taken_at = taken_at
        for row, node in enumerate(self._rows):
            new = fresh.pop(_key(node))
            if new != node:
                self._rows[row] = new
                changed = True
        if changed:
            self._emit_rows_changed(range(len(self._rows)))
        # what is left in ``fresh`` was not in the table yet
        self._append_rows(list(fresh.values()))

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def node(self, row: int) -> NodeSnapshot:
        return self._rows[row]

    # --- Qt model interface --------------------------------------------------------------------
    def _cell(self, node: NodeSnapshot, row: int, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(node, col)
        if role == SORT_ROLE:
            return self._sort_value(node, col)
        if role == NODE_ROLE:
            return node
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node, col)
        if role == Qt.ItemDataRole.FontRole and col == COL_ID:
            return self._mono
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATE:
            return QColor(self._theme.state_color(node.state))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in _NUMERIC:
            return RIGHT_ALIGNED
        return None

    def _display(self, node: NodeSnapshot, col: int) -> str:
        if col == COL_ID:
            return node.id.hex()
        if col == COL_ADDR:
            return format_addr(node.addr)
        if col == COL_STATE:
            return f"{node.state}"
        if col == COL_RTT:
            return NONE_TEXT if node.rtt is None else f"{node.rtt * 1000:.0f}"
        if col == COL_SEEN:
            if node.last_seen is None:
                return NONE_TEXT
            return f"{max(0.0, self._taken_at - node.last_seen):.0f}"
        if col == COL_VERSION:
            return format_version(node.version)
        if col == COL_BEP42:
            return "✓" if node.bep42_ok else "✗"
        return str(node.bucket)

    def _sort_value(self, node: NodeSnapshot, col: int) -> str | float | int:
        if col == COL_ADDR:
            return addr_sort_key(node.addr)
        if col == COL_STATE:
            return _STATE_ORDER.get(node.state, len(_STATE_ORDER))
        if col == COL_RTT:
            return float("inf") if node.rtt is None else float(node.rtt)
        if col == COL_SEEN:
            return float("inf") if node.last_seen is None else self._taken_at - node.last_seen
        if col == COL_BEP42:
            return int(bool(node.bep42_ok))
        if col == COL_BUCKET:
            return int(node.bucket)
        return self._display(node, col)

    def _tooltip(self, node: NodeSnapshot, col: int) -> str | None:
        if col == COL_ID:
            return node.id.hex()
        if col == COL_STATE and node.failures:
            return f"{node.state}: {node.failures} failed queries in a row"
        if col == COL_VERSION and node.version:
            return f"v = {node.version.hex()}"
        if col == COL_BEP42:
            return "id matches the address (BEP 42)" if node.bep42_ok else (
                "id does not match the address (BEP 42)"
            )
        return None


class NodesProxy(QSortFilterProxyModel):
    """Sorts on raw values and optionally shows one bucket only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bucket: int | None = None
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    @property
    def bucket(self) -> int | None:
        return self._bucket

    def set_bucket(self, index: int | None) -> None:
        """Show only the nodes of bucket ``index`` (all nodes for None)."""
        if index != self._bucket:
            filter_change(self, lambda: setattr(self, "_bucket", index))

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self._bucket is not None:
            model = self.sourceModel()
            value = model.data(model.index(source_row, COL_BUCKET, source_parent), SORT_ROLE)
            if value != self._bucket:
                return False
        return super().filterAcceptsRow(source_row, source_parent)
