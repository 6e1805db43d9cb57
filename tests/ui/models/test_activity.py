"""The Activity view's models: refreshed wholesale from the sample database, yet a selected
info-hash stays selected while its rank changes."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QItemSelectionModel, QPersistentModelIndex
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from dhtviewer.net.sample_store import SampledInfohash, SamplerNode
from dhtviewer.ui.models.activity import (
    I_HASH,
    I_NODES,
    N_ADDR,
    N_NUM,
    SamplerNodesModel,
    TopInfohashesModel,
)

pytestmark = pytest.mark.qt


def hashes(*ranked: tuple[int, int]) -> list[SampledInfohash]:
    return [SampledInfohash(bytes([b]) * 20, times, times, 100.0, 190.0) for b, times in ranked]


def test_top_rows_keep_their_persistent_indexes_when_reordered(
    qtmodeltester: ModelTester,
) -> None:
    model = TopInfohashesModel()
    qtmodeltester.check(model)
    model.set_rows(hashes((1, 9), (2, 5), (3, 4)))
    qtmodeltester.check(model)
    kept = QPersistentModelIndex(model.index(2, I_HASH))  # info-hash 03..
    assert model.data(model.index(0, I_NODES)) == "9"
    model.set_rows(hashes((3, 12), (1, 9), (2, 5)))
    assert kept.row() == 0 and model.data(model.index(0, I_HASH)) == "03" * 20
    assert model.row_of(b"\x02" * 20) == 2
    # new rows: a reset (the view selects by key again)
    model.set_rows(hashes((4, 20), (3, 12)))
    assert model.rowCount() == 2 and model.row_of(b"\x01" * 20) is None
    assert model.data(model.index(1, 3)) == time.strftime("%H:%M:%S", time.localtime(100.0))
    qtmodeltester.check(model)


def test_selection_follows_the_row_in_a_view(qtbot: QtBot) -> None:
    model = TopInfohashesModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    model.set_rows(hashes((1, 9), (2, 5)))
    view.selectionModel().select(model.index(1, 0), QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
    model.set_rows(hashes((2, 10), (1, 9)))
    rows = view.selectionModel().selectedRows()
    assert [r.row() for r in rows] == [0]


def test_sampler_nodes_show_unknown_num_as_a_dash(qtmodeltester: ModelTester) -> None:
    model = SamplerNodesModel()
    model.set_rows([SamplerNode(b"\x05" * 20, ("10.0.0.5", 6881), True, None, None, 0, 1,
                                150.0),
                    SamplerNode(b"\x06" * 20, ("10.0.0.6", 6881), True, 1234, 21600, 20, 2,
                                199.0)])
    qtmodeltester.check(model)
    assert model.data(model.index(0, N_NUM)) == "—"
    assert model.data(model.index(1, N_NUM)) == "1,234"
    assert model.data(model.index(1, N_ADDR)) == "10.0.0.6:6881"
