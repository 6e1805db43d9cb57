"""RowTableModel: the flat-table plumbing the app's item models share.

Every model here is a list of row objects (``_rows``) shown under fixed column titles
(``HEADERS``). This base answers the row/column counts and the horizontal header, and offers
helpers that wrap row inserts, removals and ``dataChanged`` in the signals Qt requires, so each
model only says what a cell shows (``_cell``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()
"""The invisible root: the parent of every row of a flat table."""
RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
"""TextAlignmentRole value for numeric columns."""

RowT = TypeVar("RowT")


class RowTableModel(QAbstractTableModel, Generic[RowT]):
    """A flat table: one row per item of ``_rows``, one column per entry of ``HEADERS``."""

    HEADERS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[RowT] = []

    # --- helpers for subclasses ----------------------------------------------------------------
    def _cell(self, item: RowT, row: int, col: int, role: int) -> Any:
        """What ``data`` returns for ``role`` of column ``col`` of ``item`` (row ``row``); only
        called for valid cells. Subclasses say what their cells show here."""
        raise NotImplementedError

    def _append_rows(self, rows: Sequence[RowT]) -> None:
        """Append ``rows`` (if any) with one beginInsertRows/endInsertRows pair."""
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(ROOT, first, first + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()

    def _remove_rows(self, first: int, last: int) -> None:
        """Remove rows ``first`` to ``last`` inclusive."""
        self.beginRemoveRows(ROOT, first, last)
        del self._rows[first : last + 1]
        self.endRemoveRows()

    def _emit_rows_changed(
        self, rows: Iterable[int], first_col: int = 0, last_col: int | None = None
    ) -> None:
        """One ``dataChanged`` spanning ``rows`` (min to max) and columns ``first_col`` to
        ``last_col`` (default: the last column); nothing when ``rows`` is empty."""
        rows = list(rows)
        if not rows:
            return
        if last_col is None:
            last_col = len(self.HEADERS) - 1
        self.dataChanged.emit(self.index(min(rows), first_col), self.index(max(rows), last_col))

    # --- Qt model interface --------------------------------------------------------------------
    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._cell(self._rows[index.row()], index.row(), index.column(), role)
