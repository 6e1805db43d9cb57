"""The main window as a user drives it, on an embedded testnet (127.0.61.x, ephemeral ports):
start, look up a pre-announced info-hash, announce and verify, bad input, stop/start, the busy
port and stalled bootstrap prompts, keyboard shortcuts, tooltips, and closing (node state and
settings saved, settings restored)."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
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
            window.network._infohash_activated(window.network.testnet_list.item(row))
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
        for text in ("abc", "g" * 40, "magnet:?xt=urn:btmh:1220" + "00" * 32, ""):
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

    run(loop, scenario())
    assert window.lookup.shown is not None
    window.lookup.export(tmp_path / "peers.csv")
    window.lookup.export(tmp_path / "peers.json")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "peers.csv").read_text())))
    records = json.loads((tmp_path / "peers.json").read_text())
    assert len(rows) == len(records) == window.lookup.peers.rowCount()
    assert {(r["ip"], int(r["port"])) for r in rows} == {(r["ip"], r["port"]) for r in records}
    copied = window.lookup.copy_peers()
    assert copied.count("\n") == len(rows) - 1
    assert QApplication.clipboard().text() == copied


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
