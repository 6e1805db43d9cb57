"""The main window as a user drives it, on an embedded testnet (127.0.61.x, ephemeral ports):
start, look up a pre-announced info-hash, announce and verify, bad input, stop/start, the busy
port and stalled bootstrap prompts, keyboard shortcuts, tooltips, and closing (node state and
settings saved, settings restored)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import (
    QEvent,
    QKeyCombination,
    QObject,
    QSettings,
    QSize,
    QStandardPaths,
    Qt,
)
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QToolButton,
    QWidget,
)

from dhtviewer.dht import events as ev
from dhtviewer.net.state_store import load_state
from dhtviewer.ui import controller as controller_mod
from dhtviewer.ui.controller import CUSTOM, TESTNET, Controller, StartOptions
from dhtviewer.ui.main_window import MainWindow, _nodes_text
from dhtviewer.ui.settings_store import SettingsStore
from tests.support.qt_async import qasync_loop, run, until

pytestmark = pytest.mark.qt
BASE = "127.0.61.1"


@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


def make_window(tmp_path: Path, n: int = 24, mode: str = TESTNET, save_testnet: bool = False,
                **kw: object) -> MainWindow:
    """A window on settings in ``tmp_path``; the testnet's node state is only saved with
    ``save_testnet`` (a restart would otherwise begin by pinging the old, gone contacts)."""
    store = SettingsStore(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(Controller(), store, state_path=tmp_path / "state.json",
                        testnet_state_path=tmp_path / "testnet-state.json" if save_testnet
                        else None,
                        testnet_base=BASE, testnet_seed=1)
    options = StartOptions(mode=mode, testnet_nodes=n, bind_host="127.0.0.1", port=0)
    window.apply_command_line(StartOptions(**{**{f: getattr(options, f) for f in
                                                 options.__dataclass_fields__}, **kw}),
                              mode=True, bind=True)
    window.resize(1400, 900)
    window.show()
    return window


async def close(window: MainWindow) -> None:
    window.close()
    await until(lambda: window.is_closed, what="the window to close")


@pytest.fixture
def window(loop: qasync.QEventLoop, tmp_path: Path) -> Iterator[MainWindow]:
    w = make_window(tmp_path)
    yield w
    if not w.is_closed:
        run(loop, close(w))


@pytest.fixture(scope="module")
def idle_window(loop: qasync.QEventLoop, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[MainWindow]:
    """One window, never started, shared by the tests that only look at it."""
    w = make_window(tmp_path_factory.mktemp("idle"))
    yield w
    run(loop, close(w))


async def started(w: MainWindow) -> None:
    task = w.start_node()
    assert task is not None
    await task
    await until(lambda: w.controller.state == "ready", what="ready")


def test_start_fills_the_routing_views_and_the_bars_sum_to_the_table_size(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    async def scenario() -> None:
        await started(window)
        await until(lambda: window.routing.snapshot is not None
                    and window.routing.snapshot.size > 0, what="a routing snapshot")
        # let the table settle, then compare one snapshot against everything drawn from it
        await until(lambda: window.controller.session is not None and
                    window.routing.snapshot.size == window.controller.session.node.routing_size(),
                    what="the snapshot to catch up")

    run(loop, scenario())
    snap = window.routing.snapshot
    assert snap is not None
    assert window.routing.chart.stack_heights().sum() == snap.size
    assert window.routing.model.rowCount() == snap.size
    assert window.routing.ring.node_count() == snap.size
    assert f"{snap.size} nodes" in window.routing.summary.text()
    assert window.network.node_id.text() == window.controller.node_id().hex()
    assert window.network.progress.value() == 100
    assert "ready" in window.windowTitle()
    # Two DHTs (a dual-stack testnet, BEP 32): the status bar counts each family's nodes.
    stats = window._stats
    text = window.status_nodes.text()
    assert text.startswith("good nodes IPv4 ") and " · IPv6 " in text
    assert f"/ {int(stats['routing_nodes_v6'])}" in text.split(" · ")[1]


def test_status_bar_node_counts_per_family() -> None:
    one = {"good_nodes": 3.0, "routing_nodes": 5.0, "routing_nodes_v4": 5.0, "good_nodes_v4": 3.0}
    assert _nodes_text(one) == "good nodes 3 / 5"
    both = {**one, "good_nodes": 5.0, "routing_nodes": 9.0, "routing_nodes_v6": 4.0,
            "good_nodes_v6": 2.0}
    assert _nodes_text(both) == "good nodes IPv4 3 / 5 · IPv6 2 / 4"
    assert _nodes_text({}) == "good nodes 0 / 0"


def test_lookup_of_preannounced_info_hashes_draws_the_path_and_lists_the_peers(
    loop: qasync.QEventLoop, tmp_path: Path
) -> None:
    # 64 nodes, as `make demo`: our table then knows about half of them, so lookups have hops
    window = make_window(tmp_path, n=64)
    edges: list[int] = []

    async def scenario() -> None:
        await started(window)
        net = window.controller.testnet
        assert net is not None
        for info_hash, peers in net.announced.items():
            # the testnet list fills the lookup field, Enter starts the lookup
            window.network.set_testnet(net.announced)
            row = list(net.announced).index(info_hash)
            window.network._infohash_clicked(window.network.testnet_list.item(row))
            assert window.lookup.query.text() == info_hash.hex()
            window.lookup.query.returnPressed.emit()
            await until(lambda ih=info_hash: window.lookup.shown is not None
                        and window.lookup.shown.target == ih and window.lookup.shown.finished,
                        what="the lookup to finish")
            await until(lambda p=peers: window.lookup.peers.rowCount() >= len(p))
            graph = window.lookup.graph
            assert graph.point_count() == window.lookup.shown.queried > 0
            assert graph.closest_count() > 0
            edges.append(graph.edge_count())
            model = window.lookup.peers
            assert set(peers) <= {model.peer(r).addr for r in range(model.rowCount())}
            assert "done" in window.lookup.progress.text()

    try:
        run(loop, scenario())
    finally:
        run(loop, close(window))
    # the paths have hops (edges from referrer to referred); how many depends on which nodes
    # we knew already, so not every lookup has them
    assert max(edges) > 0
    assert window.store.recent_infohashes()[0] == window.lookup.query.text()


def test_double_clicking_a_testnet_info_hash_looks_it_up(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    async def scenario() -> bytes:
        await started(window)
        await until(lambda: window.network.testnet_list.count() > 0, what="the testnet list")
        item = window.network.testnet_list.item(1)
        target = bytes.fromhex(item.data(Qt.ItemDataRole.UserRole))
        rect = window.network.testnet_list.visualItemRect(item)
        window.raise_dock("network")
        window.docks["network"].widget().ensureWidgetVisible(window.network.testnet_list)
        # a double-click is a click, then the second press (as a mouse sends them)
        viewport = window.network.testnet_list.viewport()
        for click in (QTest.mouseClick, QTest.mouseDClick):
            click(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                  rect.center())
        await until(lambda: window.lookup.shown is not None
                    and window.lookup.shown.target == target and window.lookup.shown.finished,
                    what="the lookup of the double-clicked info-hash")
        return target

    target = run(loop, scenario())
    assert window.lookup.query.text() == target.hex()
    assert window.store.recent_infohashes()[0] == target.hex()
    assert window.lookup.peers.rowCount() > 0


def test_history_reselection_redraws_graph_and_peers(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    async def scenario() -> list[bytes]:
        await started(window)
        net = window.controller.testnet
        assert net is not None
        targets = list(net.announced)[:2]
        for ih in targets:
            window.lookup.set_query(ih.hex())
            assert window.lookup.start_lookup()
            await until(lambda ih=ih: window.lookup.shown is not None
                        and window.lookup.shown.target == ih and window.lookup.shown.finished)
        return targets

    first, _second = run(loop, scenario())
    history = window.lookup.history
    proxy = window.lookup.history_proxy
    rows = {proxy.data(proxy.index(r, 0)): r for r in range(proxy.rowCount())}
    history.selectRow(rows[first.hex()])
    assert window.lookup.shown is not None and window.lookup.shown.target == first
    assert window.lookup.graph.point_count() == window.lookup.shown.queried
    peers = {window.lookup.peers.peer(r).addr for r in range(window.lookup.peers.rowCount())}
    assert set(window.controller.testnet.announced[first]) <= peers
    assert window.routing.ring._target == first


def test_announce_is_verified_by_an_independent_lookup(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    panel = window.announce

    async def scenario() -> None:
        await started(window)
        panel.set_query("magnet:?xt=urn:btih:" + "ab" * 20)
        panel.port.setValue(6999)
        assert panel.start_announce()
        assert not panel.announce_button.isEnabled()
        await until(lambda: panel.status in ("verified", "not found"), what="verification")

    run(loop, scenario())
    assert panel.status == "verified"
    assert "Verified" in panel.verify_label.text() and "127.0.0.1:6999" in panel.verify_label.text()
    stored = [panel.nodes.topLevelItem(i).text(1) for i in range(panel.nodes.topLevelItemCount())]
    assert stored and all("stored" in s for s in stored)
    assert panel.announce_button.isEnabled()


def test_invalid_infohash_shows_an_inline_error_and_starts_nothing(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    async def scenario() -> int:
        await started(window)
        before = window.lookup.lookups.rowCount()
        for text in ("abc", "g" * 40, "magnet:?xt=urn:btmh:1220" + "00" * 31, ""):
            window.lookup.set_query(text)
            window.lookup.find_button.click()
            assert window.lookup.message.isVisible() and window.lookup.message.is_error
            assert window.controller.current_lookup is None
        window.lookup.set_query("abc")
        window.lookup.start_lookup()
        return before

    before = run(loop, scenario())
    # no user lookup appeared (maintenance lookups may have, but they are not get_peers)
    kinds = [window.lookup.lookups.state(r).kind
             for r in range(before, window.lookup.lookups.rowCount())]
    assert "get_peers" not in kinds
    assert "40 hex" in window.lookup.message.text()
    window.lookup.query.textEdited.emit("a")
    assert not window.lookup.message.isVisible()


def test_stop_and_start_twice_from_the_window(loop: qasync.QEventLoop, window: MainWindow) -> None:
    async def scenario() -> None:
        for _ in range(2):
            await started(window)
            assert not window.start_action.isEnabled() and window.stop_action.isEnabled()
            window.stop_action.trigger()
            await until(lambda: window.controller.state == "stopped"
                        and window.start_action.isEnabled(), what="Start enabled again")
            assert not window.stop_action.isEnabled()
            assert window.network.start_button.isEnabled()
            assert window.network.progress.value() == 0

    run(loop, scenario())


def test_a_lookup_after_stop_and_start_shows_its_own_path_and_peers(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    """Lookup ids restart with each session; the history keeps the earlier session's lookups,
    so a new lookup must not be confused with an old one of the same session-local id."""

    async def look_up(info_hash: bytes) -> None:
        window.lookup.set_query(info_hash.hex())
        assert window.lookup.start_lookup()
        await until(lambda: window.lookup.shown is not None
                    and window.lookup.shown.target == info_hash and window.lookup.shown.finished,
                    what="the lookup to finish and show")

    async def scenario() -> tuple[bytes, list[tuple[str, int]]]:
        await started(window)
        net = window.controller.testnet
        assert net is not None
        first = next(iter(net.announced))
        await look_up(first)
        window.stop_action.trigger()
        await until(lambda: window.controller.state == "stopped"
                    and window.start_action.isEnabled(), what="stopped")
        await started(window)
        net = window.controller.testnet
        assert net is not None
        second, peers = list(net.announced.items())[1]
        await look_up(second)
        await until(lambda: window.lookup.peers.rowCount() >= len(peers), what="the peers")
        return second, peers

    second, peers = run(loop, scenario())
    lookups = window.lookup.lookups
    ids = [lookups.state(r).lookup_id for r in range(lookups.rowCount())]
    assert len(ids) == len(set(ids)), "a lookup id came twice in the history"
    # dual stack: each family's lookup has its own id, from the one space across Stop/Start
    parts = [p for r in range(lookups.rowCount()) for p in lookups.state(r).parts]
    assert len(parts) == len(set(parts)), "a family's lookup id came twice in the history"
    shown = window.lookup.shown
    assert shown is not None and shown.target == second
    session = window.controller.session
    assert session is not None and shown.families == session.families
    table = window.lookup.peers
    listed = {table.peer(r).addr for r in range(table.rowCount())}
    assert listed == set(shown.peers) and set(peers) <= listed
    assert window.lookup.peers_title.text() == f"Peers ({len(shown.peers)})"
    assert window.lookup.graph.point_count() == shown.queried
    current = window.lookup.history.currentIndex()
    assert current.isValid() and current.data() == second.hex()


def test_stop_clears_the_routing_views_and_the_external_address(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    async def scenario() -> None:
        await started(window)
        await until(lambda: window.routing.snapshot is not None
                    and window.routing.snapshot.size > 0, what="a routing snapshot")
        await until(lambda: window.network.external_label.text() != "not known yet",
                    what="the external address from the testnet's votes")
        window.stop_action.trigger()
        await until(lambda: window.controller.state == "stopped", what="stopped")
        await asyncio.sleep(0.3)  # a few ticks: nothing may bring the old table back

    run(loop, scenario())
    routing = window.routing
    assert routing.model.rowCount() == 0 and routing.ring.node_count() == 0
    # no family's table is kept, and the switch shows no count of a stopped node
    assert not routing.snapshots
    assert [b.text() for b in routing.family_buttons.values()] == ["IPv4", "IPv6"]
    assert not any(b.isEnabled() for b in routing.family_buttons.values())
    assert routing.chart.stack_heights().size == 0
    assert "0 nodes" not in routing.summary.text() and "stopped" in routing.summary.text()
    assert window.status_nodes.text() == "good nodes 0 / 0"
    assert window.network.external_label.text() == "not known yet"
    assert window.controller.external_address() is None


def test_shortcuts_focus_the_lookup_cancel_and_export(
    loop: qasync.QEventLoop, window: MainWindow, tmp_path: Path
) -> None:
    assert window.find_action.shortcut() == QKeySequence("Ctrl+L")
    assert window.cancel_action.shortcut() == QKeySequence("Esc")
    assert window.export_action.shortcut() == QKeySequence("Ctrl+E")
    assert window.quit_action.shortcut() == QKeySequence("Ctrl+Q")

    async def scenario() -> None:
        await started(window)
        window.raise_dock("routing")
        window.activateWindow()
        window.find_action.trigger()
        await until(lambda: window.lookup.query.hasFocus(), what="focus on the lookup field")
        handle = window.controller.find_peers(b"\x33" * 20)
        assert handle is not None
        window.cancel_action.trigger()
        await until(lambda: handle.done())
        info_hash = next(iter(window.controller.testnet.announced))
        window.lookup.set_query(info_hash.hex())
        window.lookup.start_lookup()
        await until(lambda: window.lookup.shown is not None and window.lookup.shown.finished
                    and window.lookup.peers.rowCount() > 0)

    before = time.time()
    run(loop, scenario())
    shown = window.lookup.shown
    assert shown is not None
    window.lookup.export(tmp_path / "peers.csv")
    window.lookup.export(tmp_path / "peers.json")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "peers.csv").read_text())))
    doc = json.loads((tmp_path / "peers.json").read_text())
    records = doc["peers"]
    assert len(rows) == len(records) == window.lookup.peers.rowCount()
    assert {(r["ip"], int(r["port"])) for r in rows} == {(r["ip"], r["port"]) for r in records}
    # the files say which lookup found the peers, when, and with which parameters
    settings = window.dht_settings
    assert doc["info_hash"] == shown.target.hex() and doc["kind"] == "get_peers"
    assert doc["parameters"] == {"k": settings.k, "alpha": settings.alpha}
    assert doc["queried"] == shown.queried and doc["state"] == "done"
    began = datetime.fromisoformat(doc["started_utc"].replace("Z", "+00:00"))
    assert before - 1 <= began.timestamp() <= time.time()
    assert all(r["info_hash"] == shown.target.hex() and r["kind"] == "get_peers"
               and int(r["k"]) == settings.k and int(r["alpha"]) == settings.alpha
               and r["lookup_started_utc"] == doc["started_utc"] for r in rows)
    assert all(r["first_seen_utc"] >= doc["started_utc"] for r in rows)
    copied = window.lookup.copy_peers()
    assert copied.count("\n") == len(rows) - 1
    assert QApplication.clipboard().text() == copied


def test_the_export_dialog_opens_in_the_last_export_folder(
    loop: qasync.QEventLoop, idle_window: MainWindow, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = idle_window
    lookup = window.lookup
    lookup.peers.add_events([ev.PeersFound(7, b"\x01" * 20, (("192.0.2.7", 6881),), 1.0)])
    offered: list[str] = []
    answers = iter([str(tmp_path / "first" / "peers"), str(tmp_path / "second.json")])

    def dialog(_parent: object, _title: str, suggested: str, _filters: str) -> tuple[str, str]:
        offered.append(suggested)
        return next(answers), "CSV (*.csv)"

    monkeypatch.setattr("dhtviewer.ui.panels.lookup.QFileDialog.getSaveFileName", dialog)
    (tmp_path / "first").mkdir()
    try:
        assert lookup.export_dialog() == tmp_path / "first" / "peers.csv"
        assert lookup.export_dialog() == tmp_path / "second.json"
    finally:
        lookup.peers.clear()
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    # first in the user's documents (or home), never the working folder; then where the last
    # export went, also after a relaunch
    assert Path(offered[0]).parent in (Path(documents), Path.home())
    assert Path(offered[1]).parent == tmp_path / "first"
    assert Path(offered[0]).name == "peers-lookup.csv"
    again = SettingsStore(window.store.q)
    assert again.export_dir() == tmp_path


class ClaimsCtrlE(QObject):
    """What QLineEdit does on X11: it claims Ctrl+E (move to the end of the line) when Qt asks
    the focused widget whether a key is its own (the offscreen platform has no such binding)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.keyCombination() == QKeyCombination(
                    Qt.KeyboardModifier.ControlModifier, Qt.Key.Key_E)):
            event.accept()
            return True
        return False


@pytest.mark.parametrize("claimed_first", [False, True])
def test_ctrl_e_exports_while_the_lookup_field_has_the_focus(
    loop: qasync.QEventLoop, idle_window: MainWindow, claimed_first: bool
) -> None:
    window = idle_window
    field = window.lookup.query
    claimer = ClaimsCtrlE()
    if claimed_first:
        # the field's claim comes before the window's filter sees the key
        field.installEventFilter(claimer)
    else:
        field.removeEventFilter(window.shortcuts)
        field.installEventFilter(claimer)
        field.installEventFilter(window.shortcuts)
    triggered: list[bool] = []

    def seen() -> None:
        triggered.append(True)

    window.export_action.triggered.connect(seen)
    try:
        window.raise_dock("lookup")
        window.activateWindow()
        field.setFocus()
        run(loop, until(lambda: field.hasFocus() and window.isActiveWindow(), what="focus"))
        QTest.keyClick(field, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
        assert triggered, "Ctrl+E did not reach Export"
        # no peers yet: the export says so instead of opening a dialog
        assert "No peers to export" in window.lookup.message.text()
        # the field's other keys are its own
        field.setText("abc")
        field.setCursorPosition(0)
        QTest.keyClick(field, Qt.Key.Key_End)
        assert field.cursorPosition() == 3
    finally:
        field.removeEventFilter(claimer)
        window.export_action.triggered.disconnect(seen)
        window.lookup.set_query("")


def test_closing_stops_the_node_and_saves_state_and_settings(
    loop: qasync.QEventLoop, tmp_path: Path
) -> None:
    window = make_window(tmp_path, save_testnet=True)

    async def scenario() -> None:
        await started(window)
        window.lookup.set_query("cd" * 20)
        window.lookup.start_lookup()
        window.docks["traffic"].raise_()
        await close(window)

    run(loop, scenario())
    assert window.controller.state == "stopped" and window.controller.testnet is None
    saved, warning = load_state(tmp_path / "testnet-state.json")
    assert warning is None and saved.node_id == window.controller.node_id()
    assert saved.nodes  # the routing table's contacts
    ini = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert ini.value("window/geometry") is not None and ini.value("window/state") is not None
    assert json.loads(ini.value("lookup/recent")) == ["cd" * 20]
    # the testnet mode came from the command line: not remembered as the user's choice
    assert ini.value("network/mode") is None

    # a new window restores the layout and the recent info-hashes
    store = SettingsStore(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    again = MainWindow(Controller(), store)
    assert again._layout_restored
    assert again.lookup.recent.stringList() == ["cd" * 20]
    again.close()
    run(loop, until(lambda: again.is_closed))


def test_a_relaunch_keeps_the_lookup_history_the_log_level_and_an_edited_custom_list(
    loop: qasync.QEventLoop, tmp_path: Path
) -> None:
    window = make_window(tmp_path)  # --testnet on the command line
    window.store.save_network(StartOptions(mode=CUSTOM, custom=("192.0.2.1:6881",)))

    async def scenario() -> tuple[bytes, list[tuple[str, int]]]:
        await started(window)
        net = window.controller.testnet
        assert net is not None
        info_hash, peers = next(iter(net.announced.items()))
        window.lookup.set_query(info_hash.hex())
        assert window.lookup.start_lookup()
        await until(lambda: window.lookup.shown is not None and window.lookup.shown.finished
                    and window.lookup.peers.rowCount() >= len(peers), what="the lookup")
        return info_hash, peers

    info_hash, peers = run(loop, scenario())
    shown = window.lookup.shown
    assert shown is not None
    queried = shown.queried
    # edited during the --testnet run, while the mode stays the command line's
    window.network.custom.setPlainText("198.51.100.7:6881\n198.51.100.8:7000")
    window.log_panel.level.setCurrentIndex(window.log_panel.level.findData(logging.DEBUG))
    run(loop, close(window))

    store = SettingsStore(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    again = MainWindow(Controller(), store, state_path=tmp_path / "state.json")
    try:
        saved = store.network()
        assert saved.custom == ("198.51.100.7:6881", "198.51.100.8:7000")
        assert saved.mode == CUSTOM  # the command line's testnet is not the user's mode
        assert again.log_panel.current_level() == logging.DEBUG
        lookups = again.lookup.lookups
        rows = [r for r in range(lookups.rowCount()) if lookups.state(r).target == info_hash]
        assert len(rows) == 1
        again.lookup.select_lookup_row(rows[0])
        restored = again.lookup.shown
        assert restored is not None and restored.finished and restored.lookup_id < 0
        assert restored.queried == queried
        listed = {again.lookup.peers.peer(r).addr for r in range(again.lookup.peers.rowCount())}
        assert set(peers) <= listed
        assert again.lookup.graph.point_count() == queried
    finally:
        again.close()
        run(loop, until(lambda: again.is_closed))


def test_network_settings_chosen_in_the_panel_persist(
    loop: qasync.QEventLoop, tmp_path: Path
) -> None:
    store = SettingsStore(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(Controller(), store)
    window.network.set_mode(CUSTOM)
    window.network.custom.setPlainText("192.0.2.1:6881\n[2001:db8::1]:7000")
    window.network.port.setValue(7001)
    run(loop, close(window))
    restored = SettingsStore(QSettings(str(tmp_path / "settings.ini"),
                                       QSettings.Format.IniFormat)).network()
    assert restored.mode == CUSTOM and restored.port == 7001
    assert restored.custom == ("192.0.2.1:6881", "[2001:db8::1]:7000")


def test_a_busy_port_offers_a_free_one_and_starts_there(
    loop: qasync.QEventLoop, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        window = make_window(tmp_path, n=8, port=busy)

        async def scenario() -> None:
            window.start_node()
            await until(lambda: window.port_dialog is not None, what="the port dialog")
            dialog = window.port_dialog
            assert dialog is not None
            assert str(busy) in dialog.text()
            assert dialog.use_button is not None
            dialog.use_button.click()
            await until(lambda: window.controller.state == "ready", what="ready on a free port")

        try:
            run(loop, scenario())
            local = window.controller.local_address()
            assert local is not None and local[1] not in (busy, 0)
            assert window.network.port.value() == local[1]
            # what went wrong is in the log panel too
            assert any(f"{busy}" in text and level >= 30 for level, text in
                       window.log_panel.lines)
        finally:
            run(loop, close(window))


def test_a_stalled_bootstrap_shows_a_banner_offering_the_local_testnet(
    loop: qasync.QEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller_mod, "STALL_SECONDS", 0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.61.250", 0))
        window = make_window(tmp_path, n=8, mode=CUSTOM,
                             custom=(f"127.0.61.250:{silent.getsockname()[1]}",))

        async def scenario() -> None:
            await window.start_node()  # type: ignore[misc]
            await until(lambda: window.banner.showing, what="the banner")
            assert "Cannot reach the DHT" in window.banner.text.text()
            assert window.banner.action.isVisible()
            window.banner.action.click()
            await until(lambda: window.controller.state == "ready"
                        and window.controller.testnet is not None, what="the testnet")

        try:
            run(loop, scenario())
            assert window.network.current_mode() == TESTNET
            assert not window.banner.showing
        finally:
            run(loop, close(window))


def test_the_stalled_bootstrap_banner_goes_when_the_node_stops(
    loop: qasync.QEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller_mod, "STALL_SECONDS", 0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.61.251", 0))
        window = make_window(tmp_path, n=8, mode=CUSTOM,
                             custom=(f"127.0.61.251:{silent.getsockname()[1]}",))

        async def scenario() -> None:
            await window.start_node()  # type: ignore[misc]
            await until(lambda: window.banner.showing, what="the banner")
            assert "keeps trying" in window.banner.text.text()
            window.stop_action.trigger()
            await until(lambda: window.controller.state == "stopped", what="stopped")

        try:
            run(loop, scenario())
            assert not window.banner.showing  # it no longer "keeps trying"
        finally:
            run(loop, close(window))


def settle(loop: qasync.QEventLoop, seconds: float = 0.3) -> None:
    run(loop, asyncio.sleep(seconds))


def fully_visible(widget: QWidget) -> bool:
    return widget.isVisible() and widget.visibleRegion().boundingRect().size() == widget.size()


def test_every_view_is_usable_at_1024x700(loop: qasync.QEventLoop, window: MainWindow) -> None:
    async def scenario() -> None:
        await started(window)
        info_hash = next(iter(window.controller.testnet.announced))  # type: ignore[union-attr]
        window.lookup.set_query(info_hash.hex())
        window.lookup.start_lookup()  # a long progress line: the 40-hex target and counters
        await until(lambda: window.lookup.shown is not None and window.lookup.shown.finished
                    and window.lookup.peers.rowCount() > 0, what="the lookup")

    run(loop, scenario())
    window.resize(1024, 700)
    settle(loop)
    # the window takes the size asked for (its minimum used to be 1275x857) and leaves room
    # for a title bar and a panel on a 1024x700 screen
    assert window.size() == QSize(1024, 700)
    assert window.minimumSizeHint().width() <= 1000 and window.minimumSizeHint().height() <= 640
    # the docks on screen (a tab behind another is "visible" but off the window)
    docked = [d for d in window.docks.values()
              if d.isVisible() and not d.isFloating() and not d.visibleRegion().isEmpty()]
    for dock in docked:
        # no dock is squeezed below what it needs, which is when docks paint over each other
        assert dock.width() >= dock.minimumSizeHint().width(), dock.objectName()
        assert dock.height() >= dock.minimumSizeHint().height(), dock.objectName()
    rects = [(d.objectName(), d.geometry()) for d in docked]
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1:]:
            assert not ra.intersects(rb), (a, b)
    lookup = window.lookup
    for button in (lookup.find_button, lookup.cancel_button, lookup.copy_button,
                   lookup.export_button):
        assert fully_visible(button), button.text()
    # the node's state and its controls without scrolling the side panel
    network = window.network
    for widget in (network.progress, network.start_button, network.stop_button):
        assert fully_visible(widget), widget
    # every column of the peers table in view
    header = lookup.peers_table.horizontalHeader()
    last = lookup.peers.columnCount() - 1
    right = header.sectionViewportPosition(last) + header.sectionSize(last)
    assert right <= lookup.peers_table.viewport().width()
    assert header.sectionSize(last) >= header.fontMetrics().horizontalAdvance("First seen (s)")
    assert lookup.graph.height() >= 150
    # every tab of the views, in turn
    for name in ("routing", "traffic", "packets", "items", "activity", "lookup"):
        window.raise_dock(name)
        settle(loop, 0.1)
        assert window.size() == QSize(1024, 700), name
        dock = window.docks[name]
        assert dock.widget().width() >= dock.widget().minimumSizeHint().width(), name


def test_the_window_keeps_its_size_and_the_views_get_the_room(
    loop: qasync.QEventLoop, idle_window: MainWindow
) -> None:
    window = idle_window
    window.reset_layout()
    window.resize(1024, 700)
    settle(loop)
    lookup, log = window.docks["lookup"], window.docks["log"]
    banner_bar, toolbar = window.banner.toolbar, window.toolbar
    assert banner_bar is not None
    text = ("<b>Cannot reach the DHT.</b> No bootstrap router answered within 6 seconds. You "
            "may be offline, or a firewall may block UDP traffic. The node keeps trying in the "
            "background.")
    window.banner.show_message(text, "Start a local testnet instead", lambda: None)
    settle(loop)
    assert window.size() == QSize(1024, 700)  # it grew by 100 px, and never shrank back

    def banner_in_its_own_row() -> None:
        assert banner_bar.isVisible()
        assert banner_bar.geometry().top() >= toolbar.geometry().bottom()
        # not wrapped over five lines beside the toolbar
        assert banner_bar.height() <= 4 * window.fontMetrics().height()

    banner_in_its_own_row()
    window.reset_layout()  # with the banner showing
    settle(loop)
    banner_in_its_own_row()
    assert window.size() == QSize(1024, 700)
    window.banner.hide_banner()
    settle(loop)
    assert window.size() == QSize(1024, 700)
    window.raise_dock("routing")
    settle(loop, 0.1)
    assert window.size() == QSize(1024, 700)  # opening the Routing tab widened it by 43 px
    window.raise_dock("lookup")
    # a larger window: the views get the extra room, not the log
    before_lookup, before_log = lookup.height(), log.height()
    window.resize(1600, 1000)
    settle(loop)
    assert abs(log.height() - before_log) <= 2
    assert lookup.height() - before_lookup >= 280
    assert window.docks["network"].width() <= 0.45 * window.width()
    window.resize(1024, 700)
    settle(loop)
    assert abs(lookup.height() - before_lookup) <= 2 and abs(log.height() - before_log) <= 2


def test_a_relaunch_restores_a_sound_layout_without_the_last_notice(
    loop: qasync.QEventLoop, tmp_path: Path
) -> None:
    ini = str(tmp_path / "settings.ini")

    def launch() -> MainWindow:
        w = MainWindow(Controller(), SettingsStore(QSettings(ini, QSettings.Format.IniFormat)))
        w.resize(1200, 800)
        w.show()
        settle(loop)
        return w

    first = launch()
    first.banner.show_message("Cannot reach the DHT.", "Start a local testnet instead",
                              lambda: None)
    settle(loop)
    # the views squeezed under a log taking most of the height
    d = first.docks
    first.resizeDocks([d["lookup"], d["log"]], [150, 600], Qt.Orientation.Vertical)
    settle(loop)
    assert d["log"].height() > d["lookup"].height()
    run(loop, close(first))

    again = launch()
    assert again._layout_restored
    assert not again.banner.showing and again.banner.toolbar is not None
    assert not again.banner.toolbar.isVisible()  # an empty notice beside the toolbar, before
    d = again.docks
    assert d["log"].height() < 0.45 * (d["lookup"].height() + d["log"].height())
    run(loop, close(again))

    # a layout saved by an older version (with the banner beside the toolbar) is dropped
    QSettings(ini, QSettings.Format.IniFormat).setValue("window/layout_version", 1)
    old = launch()
    assert not old._layout_restored
    run(loop, close(old))


def test_every_control_has_a_tooltip(idle_window: MainWindow) -> None:
    window = idle_window
    missing = []
    panels = [window.network, window.announce, window.routing, window.lookup, window.traffic,
              window.packets, window.items, window.activity, window.log_panel]
    kinds = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)
    for panel in panels:
        for widget in panel.findChildren(QWidget):
            if not isinstance(widget, kinds) or isinstance(widget, QHeaderView):
                continue
            if isinstance(widget, QLineEdit) and isinstance(widget.parent(),
                                                            QComboBox | QAbstractSpinBox):
                continue  # the editor inside a combo or spin box shares its tooltip
            if not widget.toolTip() and widget.isVisibleTo(panel):
                missing.append(f"{type(panel).__name__}: {type(widget).__name__} "
                               f"{getattr(widget, 'text', lambda: '')()!r}")
    for button in window.toolbar.findChildren(QToolButton):
        action = button.defaultAction()
        if action is not None and not action.toolTip():
            missing.append(f"toolbar: {action.text()}")
    assert not missing, missing


def test_menus_hold_the_actions_the_issue_names(idle_window: MainWindow) -> None:
    window = idle_window
    menus = {m.title().replace("&", ""): [a.text().replace("&", "") for a in m.actions()]
             for m in (a.menu() for a in window.menuBar().actions()) if m is not None}
    assert {"File", "View", "Node", "Help"} <= set(menus)
    assert "Export peers…" in menus["File"] and "Quit" in menus["File"]
    assert {"Start", "Stop", "Re-bootstrap", "Preferences…"} <= set(menus["Node"])
    assert {"Network", "Routing table", "Lookup", "Traffic", "Packet log", "Items", "Activity",
            "Log"} <= set(menus["View"])
    assert any(t.startswith("About") for t in menus["Help"])


def test_keys_and_samples_live_beside_the_node_state(idle_window: MainWindow) -> None:
    window = idle_window
    assert window.state_path is not None
    assert window.items.key.key_dir == window.state_path.parent / "keys"
    assert window.activity.crawl.db_path == window.state_path.parent / "samples.sqlite3"
    assert window.activity.rate.value() == window.dht_settings.crawl_rate


def test_an_info_hash_chosen_in_the_activity_view_is_looked_up(
    loop: qasync.QEventLoop, window: MainWindow
) -> None:
    async def scenario() -> None:
        await started(window)
        assert window.controller.testnet is not None
        info_hash = next(iter(window.controller.testnet.announced))
        window.activity.lookup_requested.emit(info_hash.hex())
        await until(lambda: window.lookup.shown is not None
                    and window.lookup.shown.target == info_hash, what="the lookup")

    run(loop, scenario())
    assert window.docks["lookup"].widget().isVisible()


def test_view_menu_toggles_docks(idle_window: MainWindow) -> None:
    window = idle_window
    dock = window.docks["traffic"]
    dock.toggleViewAction().trigger()
    assert dock.isHidden()
    dock.toggleViewAction().trigger()
    assert not dock.isHidden()
    window.docks["log"].close()
    window.reset_layout()
    assert all(not d.isHidden() for d in window.docks.values())
    assert window.docks["lookup"].widget().isVisible()
    assert Qt.DockWidgetArea.LeftDockWidgetArea == window.dockWidgetArea(window.docks["network"])
