"""The Items panel's models: what each node did with a put or a get, and the items stored on
our node."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester

from dhtviewer.dht.item_store import StoredItem
from dhtviewer.dht.items import Item
from dhtviewer.net.handles import ItemResult, LookupResult, PutResult
from dhtviewer.ui.models.items import ItemNodesModel, StoredItemsModel
from dhtviewer.ui.models.nodes import SORT_ROLE

pytestmark = pytest.mark.qt
A, B, C = ("10.0.0.1", 6881), ("10.0.0.2", 6881), ("10.0.0.3", 6881)
T = b"\x11" * 20
LOOKUP = LookupResult(T, (), 8, 8, (), 0.3, "put", False, 4)
SEED = bytes(range(32))


def texts(model: ItemNodesModel) -> list[tuple[str, str]]:
    return [(model.data(model.index(r, 0)), model.data(model.index(r, 1)))
            for r in range(model.rowCount())]


def test_put_rows_say_where_it_was_stored_and_why_not(qtmodeltester: ModelTester) -> None:
    model = ItemNodesModel()
    qtmodeltester.check(model)
    model.set_put(PutResult(T, None, None, (A, B), ((C, "error 302: seq is too low"),), LOOKUP))
    assert texts(model) == [("10.0.0.1:6881", "✓ stored"), ("10.0.0.2:6881", "✓ stored"),
                            ("10.0.0.3:6881", "✗ error 302: seq is too low")]
    assert model.node(2).ok is False
    good = model.data(model.index(0, 1), Qt.ItemDataRole.ForegroundRole)
    bad = model.data(model.index(2, 1), Qt.ItemDataRole.ForegroundRole)
    assert good.color() != bad.color()
    qtmodeltester.check(model)


def test_get_rows_list_holders_then_rejected_copies() -> None:
    model = ItemNodesModel()
    result = ItemResult(T, b"1:x", b"k" * 32, 3, b"s" * 64, (A,), 2,
                        ("invalid signature",), LOOKUP)
    model.set_get(result, {B: "invalid signature", A: "ignored: it is a holder"})
    assert texts(model) == [("10.0.0.1:6881", "✓ returned the item (seq 3)"),
                            ("10.0.0.2:6881", "✗ rejected: invalid signature")]
    model.clear()
    assert model.rowCount() == 0


def test_stored_items_show_kind_seq_size_age_and_value(qtmodeltester: ModelTester) -> None:
    model = StoredItemsModel()
    immutable = Item.immutable(b"hello")
    mutable = Item.signed(SEED, {b"n": 7}, 5, b"salt")
    rows = [
        (immutable.target, StoredItem(immutable, 100.0, 110.0, 2, {"10.0.0.1"})),
        (mutable.target, StoredItem(mutable, 100.0, 150.0, 1, {"10.0.0.1", "10.0.0.2"})),
    ]
    model.set_items(rows, now=160.0)
    qtmodeltester.check(model)

    def row(r: int) -> list[str]:
        return [model.data(model.index(r, c)) for c in range(model.columnCount())]

    assert row(0) == [immutable.target.hex(), "immutable", "—", "7", "1", "50", "hello"]
    assert row(1) == [mutable.target.hex(), "mutable", "5", str(len(mutable.value)), "2", "10",
                      '{"n": 7}']
    assert model.data(model.index(0, 2), SORT_ROLE) < model.data(model.index(1, 2), SORT_ROLE)
    tip = model.data(model.index(1, 0), Qt.ItemDataRole.ToolTipRole)
    assert mutable.public_key is not None and mutable.public_key.hex() in tip
