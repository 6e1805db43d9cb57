"""RowTableModel: counts, headers, cell dispatch and the row-change signals its subclasses use."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.modeltest import ModelTester

from dhtviewer.ui.models.base import RowTableModel

pytestmark = pytest.mark.qt
DISPLAY = Qt.ItemDataRole.DisplayRole


class Words(RowTableModel[str]):
    """Two columns: the word and its length; rows fed through the base helpers."""

    HEADERS = ("Word", "Length")

    def _cell(self, item: str, row: int, col: int, role: int) -> Any:
        if role != DISPLAY:
            return None
        return item if col == 0 else f"{len(item)}@{row}"

    def append(self, words: list[str]) -> None:
        self._append_rows(words)

    def remove(self, first: int, last: int) -> None:
        self._remove_rows(first, last)

    def touch(self, rows: list[int], first_col: int = 0, last_col: int | None = None) -> None:
        self._emit_rows_changed(rows, first_col, last_col)


def cells(model: Words) -> list[list[str]]:
    return [
        [model.data(model.index(r, c), DISPLAY) for c in range(model.columnCount())]
        for r in range(model.rowCount())
    ]


def test_counts_and_headers_follow_rows_and_headers() -> None:
    model = Words()
    assert (model.rowCount(), model.columnCount()) == (0, 2)
    model.append(["alpha", "be"])
    assert (model.rowCount(), model.columnCount()) == (2, 2)
    # a flat table: no children under a cell
    assert model.rowCount(model.index(0, 0)) == 0
    assert model.columnCount(model.index(0, 0)) == 0
    horizontal = Qt.Orientation.Horizontal
    assert [model.headerData(s, horizontal) for s in range(2)] == ["Word", "Length"]
    assert model.headerData(2, horizontal) is None
    assert model.headerData(0, Qt.Orientation.Vertical) is None
    assert model.headerData(0, horizontal, Qt.ItemDataRole.ToolTipRole) is None


def test_data_dispatches_valid_cells_only() -> None:
    model = Words()
    model.append(["alpha", "be"])
    assert cells(model) == [["alpha", "5@0"], ["be", "2@1"]]
    assert model.data(QModelIndex(), DISPLAY) is None
    assert model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole) is None


def test_row_helpers_emit_the_signals_views_need(qtmodeltester: ModelTester) -> None:
    model = Words()
    qtmodeltester.check(model)  # type: ignore[no-untyped-call]  # pytest-qt leaves it unannotated
    inserted: list[tuple[int, int]] = []
    removed: list[tuple[int, int]] = []
    changed: list[tuple[int, int, int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    model.dataChanged.connect(
        lambda tl, br, _roles=(): changed.append((tl.row(), tl.column(), br.row(), br.column()))
    )

    model.append([])  # nothing to insert: no signal
    model.append(["a", "bb", "ccc", "dddd"])
    model.append(["eeeee"])
    assert inserted == [(0, 3), (4, 4)]

    model.remove(1, 2)
    assert removed == [(1, 2)]
    assert [row[0] for row in cells(model)] == ["a", "dddd", "eeeee"]

    model.touch([])  # nothing changed: no signal
    model.touch([2, 0])
    model.touch([1], 1, 1)
    assert changed == [(0, 0, 2, 1), (1, 1, 1, 1)]
