"""Item models of the Items panel (BEP 44): what each node did with our get or put, and the
items other nodes stored on our own node.

``ItemNodesModel`` has one row per node a get or put heard from: for a put, the nodes that
stored the item and those that refused it or did not answer (with the reason: a KRPC error such
as "302 seq is lower..." or "timeout"); for a get, the nodes that returned the newest item and
those whose copy was rejected (with the check it failed). ``StoredItemsModel`` lists the items
on our node, as ``DhtSession.stored_items`` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QBrush, QColor

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.messages import Addr
from dhtviewer.item_format import value_text
from dhtviewer.net.handles import ItemResult, PutResult
from dhtviewer.ui.models.base import RIGHT_ALIGNED, RowTableModel
from dhtviewer.ui.models.nodes import SORT_ROLE, monospace_font
from dhtviewer.ui.views.theme import current_theme

__all__ = ["ItemNode", "ItemNodesModel", "StoredItemsModel"]


@dataclass(frozen=True, slots=True)
class ItemNode:
    """One node's part in a get or put: ``ok`` (stored it / returned it) and what happened."""

    addr: Addr
    ok: bool
    result: str


class ItemNodesModel(RowTableModel[ItemNode]):
    HEADERS = ("Node", "Result")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._mono = monospace_font()

    def set_put(self, result: PutResult) -> None:
        rows = [ItemNode(a, True, "✓ stored") for a in result.stored_at]
        rows += [ItemNode(a, False, f"✗ {why}") for a, why in result.failed]
        self._set(rows)

    def set_get(self, result: ItemResult, rejections: dict[Addr, str]) -> None:
        seq = f" (seq {result.seq})" if result.seq is not None else ""
        rows = [ItemNode(a, True, f"✓ returned the item{seq}") for a in result.holders]
        rows += [ItemNode(a, False, f"✗ rejected: {why}") for a, why in rejections.items()
                 if a not in result.holders]
        self._set(rows)

    def clear(self) -> None:
        self._set([])

    def node(self, row: int) -> ItemNode:
        return self._rows[row]

    def _set(self, rows: list[ItemNode]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def _cell(self, item: ItemNode, row: int, col: int, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return format_addr(item.addr) if col == 0 else item.result
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            t = current_theme()
            return QBrush(QColor(t.good if item.ok else t.bad))
        if role == Qt.ItemDataRole.FontRole and col == 0:
            return self._mono
        if role == Qt.ItemDataRole.ToolTipRole and col == 1:
            return item.result
        return None


COL_TARGET, COL_KIND, COL_SEQ, COL_SIZE, COL_PUTTERS, COL_AGE, COL_VALUE = range(7)
_NUMERIC = (COL_SEQ, COL_SIZE, COL_PUTTERS, COL_AGE)


class StoredItemsModel(RowTableModel[tuple[bytes, StoredItem]]):
    """Items on our node; "Refreshed" is in seconds before ``now`` (the core's clock)."""

    HEADERS = ("Target", "Kind", "Seq", "Size (B)", "Putters", "Refreshed (s ago)", "Value")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._mono = monospace_font()
        self._now = 0.0

    def set_items(self, items: list[tuple[bytes, StoredItem]], now: float) -> None:
        self.beginResetModel()
        self._rows = list(items)
        self._now = now
        self.endResetModel()

    def _value(self, target: bytes, entry: StoredItem, col: int) -> str | int | float:
        item = entry.item
        if col == COL_TARGET:
            return target.hex()
        if col == COL_KIND:
            return "mutable" if item.mutable else "immutable"
        if col == COL_SEQ:
            return item.seq if item.mutable else -1
        if col == COL_SIZE:
            return len(item.value)
        if col == COL_PUTTERS:
            return len(entry.putters)
        if col == COL_AGE:
            return max(0.0, self._now - entry.refreshed_at)
        return value_text(item.value, limit=200)

    def _cell(self, row_item: tuple[bytes, StoredItem], row: int, col: int, role: int) -> Any:
        target, entry = row_item
        if role == SORT_ROLE:
            return self._value(target, entry, col)
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(target, entry, col)
            if col == COL_SEQ and value == -1:
                return "—"
            return f"{value:.0f}" if isinstance(value, float) else str(value)
        if role == Qt.ItemDataRole.FontRole and col == COL_TARGET:
            return self._mono
        if role == Qt.ItemDataRole.TextAlignmentRole and col in _NUMERIC:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_VALUE:
                return value_text(entry.item.value)
            if col == COL_TARGET and entry.item.public_key is not None:
                return f"{target.hex()}\npublic key {entry.item.public_key.hex()}"
        return None
