"""AddressesModel: one row per address, sortable numbers, stable rows across refreshes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester

from dhtviewer.ui.capture.writer import AddressStats
from dhtviewer.ui.models.addresses import HEADERS, AddressesModel
from dhtviewer.ui.models.nodes import SORT_ROLE

pytestmark = pytest.mark.qt


def stats(ip: str, packets: int, rtt: float | None = None, ids: int = 1) -> AddressStats:
    return AddressStats(ip, 6881, packets, packets // 2, packets - packets // 2, 1, 1, 1, 0, 0,
                        0, 100 * packets, 90 * packets, rtt, 10.0, 12.5, b"\xab" * 20, ids)


def test_rows_sort_by_number_and_show_id_changes(qapp: QApplication,
                                                 qtmodeltester: ModelTester) -> None:
    model = AddressesModel()
    qtmodeltester.check(model)  # type: ignore[no-untyped-call]
    model.time_origin = 10.0
    model.set_rows([stats("10.0.0.1", 9, 0.0123), stats("::1", 30, None, ids=3)])
    values = [model.index(0, c).data() for c in range(len(HEADERS))]
    assert values[:3] == ["10.0.0.1:6881", "abababababab…", "9"]
    assert values[HEADERS.index("RTT (ms)")] == "12.30"
    assert values[HEADERS.index("First (s)")] == "0.000"
    assert model.index(1, 0).data() == "[::1]:6881" and "(3 ids)" in model.index(1, 1).data()
    assert model.index(1, HEADERS.index("RTT (ms)")).data() == ""
    proxy = QSortFilterProxyModel()
    proxy.setSortRole(SORT_ROLE)
    proxy.setSourceModel(model)
    proxy.sort(HEADERS.index("Packets"), Qt.SortOrder.DescendingOrder)
    assert proxy.index(0, 0).data() == "[::1]:6881"
    model.set_rows([stats("10.0.0.1", 10), stats("::1", 31)])  # same addresses: rows updated
    assert model.index(0, 2).data() == "10"
    model.set_rows([])
    assert model.rowCount() == 0
