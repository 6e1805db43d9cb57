"""Item models of the Activity view (BEP 51): the nodes that answered ``sample_infohashes`` and
the most frequently sampled info-hashes, refreshed from the sample database.

A refresh replaces every row (a few hundred at most). When only the order or the counts
changed, rows are matched by key (node id, info-hash) and Qt's persistent indexes follow them to
their new row, so a selected info-hash stays selected while its rank changes; when rows came or
went the model is reset and the view selects the same key again (``row_of``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, Qt

from dhtviewer.dht.addresses import format_addr
from dhtviewer.net.sample_store import SampledInfohash, SamplerNode
from dhtviewer.ui.models.base import RIGHT_ALIGNED, RowTableModel
from dhtviewer.ui.models.nodes import SORT_ROLE, monospace_font

__all__ = ["SamplerNodesModel", "TopInfohashesModel"]

RowT = TypeVar("RowT")


class _KeyedRows(RowTableModel[RowT], Generic[RowT]):
    """Rows replaced wholesale, persistent indexes moved by key."""

    def __init__(self, key: Callable[[RowT], Hashable], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._key = key
        self._mono = monospace_font()

    def set_rows(self, rows: Sequence[RowT]) -> None:
        """Show ``rows``."""
        rows = list(rows)
        old = [self._key(r) for r in self._rows]
        new = [self._key(r) for r in rows]
        if old == new:
            # only the rows whose figures moved (times are absolute: unchanged rows stay so)
            changed = [i for i, (a, b) in enumerate(zip(self._rows, rows, strict=True)) if a != b]
            self._rows = rows
            self._emit_rows_changed(changed)
        elif len(old) == len(new) and set(old) == set(new):
            # the same rows in another order: move the persistent indexes with their rows
            self.layoutAboutToBeChanged.emit()
            where = {k: i for i, k in enumerate(new)}
            moved = self.persistentIndexList()
            self._rows = rows
            self.changePersistentIndexList(
                moved, [self.index(where[old[i.row()]], i.column()) for i in moved])
            self.layoutChanged.emit()
        else:
            self.beginResetModel()
            self._rows = rows
            self.endResetModel()

    def row_of(self, key: Hashable) -> int | None:
        return next((i for i, r in enumerate(self._rows) if self._key(r) == key), None)

    def row(self, row: int) -> RowT:
        return self._rows[row]


def _clock(t: float) -> str:
    """Wall time ``t`` as local time of day (the table shows when, the tooltip the date)."""
    return time.strftime("%H:%M:%S", time.localtime(t))


N_ADDR, N_NUM, N_INTERVAL, N_SAMPLES, N_REPLIES, N_SEEN, N_ID = range(7)


class SamplerNodesModel(_KeyedRows[SamplerNode]):
    HEADERS = ("Address", "Stores", "Interval (s)", "Samples", "Replies", "Last seen", "Node id")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda n: n.node_id, parent)

    def _value(self, n: SamplerNode, col: int) -> str | int | float:
        if col == N_ID:
            return n.node_id.hex()
        if col == N_ADDR:
            return format_addr(n.addr)
        if col == N_NUM:
            return -1 if n.num is None else n.num
        if col == N_INTERVAL:
            return -1 if n.interval is None else n.interval
        if col == N_SAMPLES:
            return n.samples
        if col == N_REPLIES:
            return n.replies
        return n.last_seen

    def _cell(self, n: SamplerNode, row: int, col: int, role: int) -> Any:
        if role == SORT_ROLE:
            return self._value(n, col)
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(n, col)
            if value == -1 and col in (N_NUM, N_INTERVAL):
                return "—"
            if col == N_SEEN:
                return _clock(n.last_seen)
            return f"{value:,}" if isinstance(value, int) else value
        if role == Qt.ItemDataRole.FontRole and col == N_ID:
            return self._mono
        if role == Qt.ItemDataRole.TextAlignmentRole and N_NUM <= col <= N_SEEN:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ToolTipRole and col == N_NUM:
            return "How many info-hashes the node says it stores (BEP 51 num)"
        return None


I_HASH, I_NODES, I_TIMES, I_FIRST, I_LAST = range(5)


class TopInfohashesModel(_KeyedRows[SampledInfohash]):
    HEADERS = ("Info-hash", "Nodes", "Samples", "First seen", "Last seen")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda s: s.info_hash, parent)

    def _value(self, s: SampledInfohash, col: int) -> str | int | float:
        if col == I_HASH:
            return s.info_hash.hex()
        if col == I_NODES:
            return s.nodes
        if col == I_TIMES:
            return s.times
        if col == I_FIRST:
            return s.first_seen
        return s.last_seen

    def _cell(self, s: SampledInfohash, row: int, col: int, role: int) -> Any:
        if role == SORT_ROLE:
            return self._value(s, col)
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(s, col)
            return _clock(value) if isinstance(value, float) else str(value)
        if role == Qt.ItemDataRole.FontRole and col == I_HASH:
            return self._mono
        if role == Qt.ItemDataRole.TextAlignmentRole and col != I_HASH:
            return RIGHT_ALIGNED
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == I_HASH:
                return f"{s.info_hash.hex()}\ndouble-click to look it up"
            if col == I_NODES:
                return "Distinct nodes that returned it in a sample"
        return None
