"""The Items panel as a user drives it: every bad input explained inline (nothing started), the
target shown as the value and key are typed, keys created in the key folder with mode 0600, a
mutable put and its get on a live embedded testnet (who stored it, the value found, the lookup
drawn), a refused put and its reasons, and an item another node puts on ours."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from dhtviewer.dht import krpc
from dhtviewer.dht.items import Item, public_key_of
from dhtviewer.dht.messages import Addr, GetQuery, Message, PutQuery, Query, Response
from dhtviewer.net.handles import PutResult
from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
from dhtviewer.ui.panels.items import ItemsPanel
from tests.support.controller_kit import running_controller
from tests.support.qt_async import run, until

pytestmark = pytest.mark.qt
VECTOR_3 = "e5f96f6f38320f0f33959cb4d3d656452117aadb"  # BEP 44 test vector: "Hello World!"


@pytest.fixture(scope="module")
def node(loop: qasync.QEventLoop) -> Iterator[Controller]:
    yield from running_controller(loop, StartOptions(
        mode=TESTNET, testnet_nodes=24, testnet_base="127.0.64.1", testnet_seed=4,
        bind_host="127.0.0.1", port=0,
    ))


@pytest.fixture
def idle(qapp: QApplication) -> Controller:
    return Controller()


def panel_for(controller: Controller, tmp_path: Path, qtbot: QtBot) -> ItemsPanel:
    panel = ItemsPanel(controller, key_dir=tmp_path / "keys")
    qtbot.addWidget(panel)
    return panel


# --- input -----------------------------------------------------------------------------------
def test_the_target_follows_the_value_and_the_format(idle: Controller, tmp_path: Path,
                                                     qtbot: QtBot) -> None:
    panel = panel_for(idle, tmp_path, qtbot)
    panel.value.setPlainText("Hello World!")
    assert panel.put_target.text() == VECTOR_3
    assert panel.value_size.text() == "15 of 1000 bytes bencoded"
    panel.value_format.setCurrentIndex(panel.value_format.findData("hex"))
    assert panel.value_size.text().startswith("✗ not a hex digit")
    assert panel.put_target.text() == "—"
    panel.value.setPlainText("48656c6c6f20576f726c6421")  # "Hello World!" in hex
    assert panel.put_target.text() == VECTOR_3
    panel.value_format.setCurrentIndex(panel.value_format.findData("json"))
    panel.value.setPlainText('"Hello World!"')
    assert panel.put_target.text() == VECTOR_3


@pytest.mark.parametrize(("setup", "message"), [
    ({"format": "json", "value": "[1, 2.5]"}, "Value (JSON): the value[1] is a fraction"),
    ({"value": "x" * 1001}, "more than 1000"),
    ({"mutable": True, "salt": "s" * 65}, "The salt is 65 bytes; at most 64."),
    ({"mutable": True, "seq": "-3"}, "Seq is a whole number"),
    ({"mutable": True, "seq": str(2**63)}, "Seq is a whole number"),
])
def test_bad_put_input_is_explained_inline_and_starts_nothing(
    node: Controller, tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch,
    setup: dict[str, object], message: str,
) -> None:
    panel = panel_for(node, tmp_path, qtbot)
    started: list[object] = []
    monkeypatch.setattr(node, "put_item", started.append)
    if setup.get("mutable"):
        panel.mutable.setChecked(True)
    if "format" in setup:
        panel.value_format.setCurrentIndex(panel.value_format.findData(setup["format"]))
    panel.value.setPlainText(str(setup.get("value", "v")))
    panel.salt.setText(str(setup.get("salt", "")))
    panel.seq.setText(str(setup.get("seq", "")))
    assert panel.start_put() is False
    assert panel.put_message.is_error and message in panel.put_message.text()
    assert not started
    assert not (tmp_path / "keys").exists()  # no key made for a put that did not start


def test_get_input_and_a_stopped_node(idle: Controller, tmp_path: Path, qtbot: QtBot) -> None:
    panel = panel_for(idle, tmp_path, qtbot)
    panel.target.setText("abc")
    assert panel.start_get() is False
    assert "40 hex digits" in panel.get_message.text()
    panel.target.setText(VECTOR_3)
    panel.get_salt.setText("s" * 65)
    assert panel.start_get() is False and "at most 64" in panel.get_message.text()
    panel.get_salt.setText("")
    assert panel.start_get() is False and "not running" in panel.get_message.text()
    panel.value.setPlainText("v")
    assert panel.start_put() is False and "not running" in panel.put_message.text()


def test_an_unsafe_key_file_is_refused_with_what_to_do(node: Controller, tmp_path: Path,
                                                       qtbot: QtBot) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "shared.key").write_bytes(bytes(32))
    (keys / "shared.key").chmod(0o644)
    panel = panel_for(node, tmp_path, qtbot)
    panel.mutable.setChecked(True)
    panel.key.refresh(select=keys / "shared.key")
    panel.value.setPlainText("v")
    assert panel.start_put() is False
    assert "chmod 600" in panel.put_message.text()


# --- live ------------------------------------------------------------------------------------
def test_mutable_put_then_get_on_the_testnet(loop: qasync.QEventLoop, node: Controller,
                                             tmp_path: Path, qtbot: QtBot) -> None:
    panel = panel_for(node, tmp_path, qtbot)
    tester = ModelTester(qtbot)
    tester.check(panel.nodes_proxy, force_py=True)
    panel.mutable.setChecked(True)
    assert panel.put_target.text().startswith("— (known once the new key is made)")
    panel.salt.setText("blog")
    panel.value_format.setCurrentIndex(panel.value_format.findData("json"))
    panel.value.setPlainText('{"title": "first", "n": 1}')

    async def put_and_get() -> None:
        assert panel.start_put()
        assert not panel.put_button.isEnabled() and panel.cancel_button.isEnabled()
        await until(lambda: panel.handle is not None and panel.handle.done()
                    and "Stored at" in panel.status.text(), 20)
        panel._get_put_target()
        assert panel.get_salt.text() == "blog"
        assert panel.start_get()
        await until(lambda: panel.handle is not None and panel.handle.done()
                    and "Found" in panel.status.text(), 20)
        # the events come in the controller's next batch: the graph draws the finished lookup
        await until(lambda: panel.graph.view.closest_count() >= 1)

    run(loop, put_and_get())
    key = tmp_path / "keys" / "default.key"
    assert key.stat().st_size == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "Created key" in panel.put_message.text()
    assert panel.target.text() == panel.put_target.text()
    assert "seq 1" in panel.status.text()
    assert panel.found_value.toPlainText().replace(" ", "").replace("\n", "") == \
        '{"n":1,"title":"first"}'
    assert panel.nodes.rowCount() >= 1 and all(panel.nodes.node(r).ok
                                               for r in range(panel.nodes.rowCount()))
    shown = panel.graph.view
    assert shown.point_count() >= 8 and shown.closest_count() >= 1
    assert panel.result_tabs.tabText(0) == f"Nodes ({panel.nodes.rowCount()})"
    # the target and the signer's public key in fields of their own, copied exactly (in the
    # status text, 40 and 64 hex digits would widen the panel past a 1024-pixel window)
    assert panel.result_target.text() == panel.put_target.text()
    assert panel.result_key.text() == public_key_of(key.read_bytes()).hex()
    assert not panel.result_key.isHidden()
    assert panel.put_target.text() not in panel.status.text()


def test_a_stale_seq_is_refused_by_every_node_with_the_reason(
    loop: qasync.QEventLoop, node: Controller, tmp_path: Path, qtbot: QtBot,
) -> None:
    panel = panel_for(node, tmp_path, qtbot)
    panel.mutable.setChecked(True)
    panel.salt.setText("stale")
    results: list[object] = []
    node.item_finished.connect(results.append)

    async def two_puts() -> None:
        panel.value.setPlainText("v5")
        panel.seq.setText("5")
        assert panel.start_put()
        await until(lambda: len(results) == 1, 20)
        panel.value.setPlainText("v4")
        panel.seq.setText("4")
        assert panel.start_put()
        await until(lambda: len(results) == 2, 20)

    run(loop, two_puts())
    last = results[1]
    assert isinstance(last, PutResult) and not last.stored_at and last.failed
    assert "No node stored it" in panel.status.text()
    reasons = [panel.nodes.node(r).result for r in range(panel.nodes.rowCount())]
    assert reasons and all("302" in r for r in reasons)


def _raw_put(addr: Addr, item: Item) -> Response:
    """Another node's put on ours: a get for the token, then the put (blocking; run off the
    loop's thread)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.64.250", 0))
        s.settimeout(5)
        me = b"\x42" * 20

        def answer(tid: bytes) -> Message:
            while True:  # our node may ping us first (it verifies new contacts): skip that
                msg = krpc.decode(s.recv(2048))
                if not isinstance(msg, Query) and msg.tid == tid:
                    return msg

        s.sendto(krpc.encode(GetQuery(b"g1", me, target=item.target)), addr)
        got = answer(b"g1")
        assert isinstance(got, Response) and got.token is not None
        s.sendto(krpc.encode(PutQuery(b"p1", me, token=got.token, v=item.value)), addr)
        done = answer(b"p1")
        assert isinstance(done, Response), done
        return done


def test_items_other_nodes_put_on_ours_are_listed(loop: qasync.QEventLoop, node: Controller,
                                                  tmp_path: Path, qtbot: QtBot) -> None:
    panel = panel_for(node, tmp_path, qtbot)
    item = Item.immutable(b"left here by a neighbour")
    local = node.local_address()
    assert local is not None

    async def put_on_us() -> None:
        await asyncio.get_running_loop().run_in_executor(None, _raw_put, local, item)
        await until(lambda: panel.stored.rowCount() >= 1)

    run(loop, put_on_us())
    targets = [panel.stored.data(panel.stored.index(r, 0)) for r in range(panel.stored.rowCount())]
    assert item.target.hex() in targets
    row = targets.index(item.target.hex())
    assert panel.stored.data(panel.stored.index(row, 6)) == "left here by a neighbour"
    assert panel.result_tabs.tabText(1).startswith("Stored on this node (")
