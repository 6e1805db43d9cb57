"""Each panel on its own: input validation, what it shows, what it asks the controller for, and
Qt's model tester on the proxies the panels put in front of the models. A node runs on an
embedded testnet (127.0.62.x, ephemeral ports) for the panels that need live data."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from dhtviewer.dht import events as ev
from dhtviewer.net.session import DEFAULT_BOOTSTRAP
from dhtviewer.ui.controller import CUSTOM, MAINLINE, TESTNET, Controller, StartOptions
from dhtviewer.ui.models.nodes import COL_ADDR, COL_BUCKET, SORT_ROLE
from dhtviewer.ui.panels.announce import AnnouncePanel
from dhtviewer.ui.panels.lookup import LookupPanel
from dhtviewer.ui.panels.network import NetworkPanel, validate_hostports
from dhtviewer.ui.panels.routing import RoutingPanel
from dhtviewer.ui.panels.traffic import TrafficPanel
from tests.support.controller_kit import running_controller
from tests.support.qt_async import run, until

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def node(loop: qasync.QEventLoop) -> Iterator[Controller]:
    """A running node; the panels are created per test and fed by it."""
    yield from running_controller(loop, StartOptions(
        mode=TESTNET, testnet_nodes=24, testnet_base="127.0.62.1", testnet_seed=2,
        bind_host="127.0.0.1", port=0,
    ))


@pytest.fixture
def idle(qapp: QApplication) -> Controller:
    """A controller whose node is not running."""
    return Controller()


# --- network panel ---------------------------------------------------------------------------
def test_validate_hostports_names_the_bad_lines() -> None:
    good, errors = validate_hostports(["router.example:6881", "", "nope:99999", "[::1]:7"])
    assert good == ["router.example:6881", "[::1]:7"]
    assert len(errors) == 1 and errors[0].startswith("line 3:")


def test_network_panel_defaults_to_mainline_with_the_four_routers(idle: Controller) -> None:
    panel = NetworkPanel(idle)
    assert panel.current_mode() == MAINLINE
    assert panel.router_texts() == list(DEFAULT_BOOTSTRAP)
    assert panel.port.value() == 6881
    assert panel.testnet_nodes.value() == 64
    options = panel.options()
    assert options is not None and options.routers == DEFAULT_BOOTSTRAP


def test_network_panel_validates_the_custom_list_inline(idle: Controller) -> None:
    panel = NetworkPanel(idle)
    panel.set_mode(CUSTOM)
    assert panel.options() is None  # empty list
    panel.custom.setPlainText("192.0.2.1:6881\nthis is not an address:x")
    assert panel.options() is None
    assert panel.custom_message.is_error and "line 2" in panel.custom_message.text()
    panel.custom.setPlainText("192.0.2.1:6881\n[2001:db8::2]:6882\n")
    options = panel.options()
    assert options is not None and options.custom == ("192.0.2.1:6881", "[2001:db8::2]:6882")
    assert not panel.custom_message.is_error


def test_network_panel_router_edits_are_validated(idle: Controller) -> None:
    panel = NetworkPanel(idle)
    panel.routers.item(0).setText("bad host:port")
    assert panel.options() is None and panel.routers_message.is_error
    panel.reset_routers.click()
    assert panel.options() is not None and not panel.routers_message.is_error
    panel.routers.setCurrentRow(0)
    panel.remove_router.click()
    assert len(panel.router_texts()) == 3


def test_network_panel_refuses_a_bad_bind_address(idle: Controller) -> None:
    panel = NetworkPanel(idle)
    panel.bind_host.setText("300.1.2.3")
    assert panel.options() is None
    assert panel.bind_message.is_error


def test_network_panel_lists_testnet_info_hashes_and_emits_the_clicked_one(
    idle: Controller, qtbot: QtBot
) -> None:
    panel = NetworkPanel(idle)
    announced = {b"\xaa" * 20: [("127.0.0.5", 40000)], b"\xbb" * 20: []}
    panel.set_testnet(announced)
    assert panel.testnet_list.count() == 2
    # a click fills the lookup field, a double-click (activation) asks for the lookup
    with qtbot.waitSignal(panel.infohash_chosen) as blocker:
        panel.testnet_list.itemClicked.emit(panel.testnet_list.item(1))
    assert blocker.args == ["bb" * 20]
    with qtbot.waitSignal(panel.infohash_lookup_requested) as blocker:
        panel.testnet_list.itemActivated.emit(panel.testnet_list.item(0))
    assert blocker.args == ["aa" * 20]
    panel.set_testnet(None)
    assert panel.testnet_list.count() == 0


def test_network_panel_wraps_long_addresses_instead_of_widening(
    idle: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a dual-stack node lists two sockets, two external addresses and per-family counts; the
    # side panel keeps its width (at 1024x700 it has no more)
    panel = NetworkPanel(idle)
    panel.show()
    narrow = panel.minimumSizeHint().width()
    monkeypatch.setattr(idle, "local_addresses", lambda: {
        4: ("203.0.113.200", 6881), 6: ("2001:db8:1234:5678:9abc:def0:1234:5678", 6881)})
    panel._state_changed("ready", "IPv4 ready: 16 good nodes after 0.1 s; IPv6 ready: 16 good "
                                  "nodes after 0.1 s")
    assert "[2001:db8:1234:5678:9abc:def0:1234:5678]:6881" in panel.local_label.text()
    panel._stats_changed({"routing_nodes": 12345, "good_nodes": 12000,
                          "routing_nodes_v4": 6000, "routing_nodes_v6": 6345})
    panel._external_changed("203.0.113.200", 12)
    panel._external_changed("2001:db8:1234:5678:9abc:def0:1234:5678", 9)
    for label in (panel.local_label, panel.external_label, panel.nodes_label):
        # each line wraps: it asks for less than its text's width on one line
        one_line = label.fontMetrics().horizontalAdvance(label.text())
        assert label.minimumSizeHint().width() < one_line, label.text()
    assert panel.minimumSizeHint().width() <= narrow


def test_network_panel_shows_the_running_node(node: Controller) -> None:
    panel = NetworkPanel(node)
    panel._state_changed(node.state, node.detail)
    assert panel.node_id.text() == node.node_id().hex()
    assert "127.0.0.1:" in panel.local_label.text()
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    assert "[::1]:" in panel.local_label.text()  # the IPv6 socket of a dual-stack node
    panel._stats_changed({"routing_nodes": 12, "good_nodes": 9})
    assert panel.nodes_label.text() == "12 nodes, 9 good"
    panel._stats_changed({"routing_nodes": 12, "good_nodes": 9, "routing_nodes_v4": 7,
                          "routing_nodes_v6": 5})
    assert panel.nodes_label.text() == "12 nodes, 9 good (IPv4 7, IPv6 5)"
    panel._external_changed("203.0.113.9", 5)
    assert panel.external_label.text().startswith("203.0.113.9 (5 votes)")
    panel._external_changed("2001:db8::9", 2)  # each family's own address
    assert panel.external_label.text().startswith("203.0.113.9 (5 votes) · 2001:db8::9 (2 votes)")


# --- lookup panel ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0123", "expected 40 hex characters, got 4"),
        ("z" * 40, "invalid hex character 'z' at position 1"),
        ("z" * 12, "expected 40 hex or 32 base32"),
        ("magnet:?dn=name", "no xt parameter"),
        ("magnet:?xt=urn:btmh:1220" + "ab" * 31, "expected 64 hex characters after 1220"),
    ],
)
def test_lookup_panel_explains_bad_input_and_starts_nothing(
    idle: Controller, text: str, message: str
) -> None:
    panel = LookupPanel(idle)
    panel.set_query(text)
    assert panel.start_lookup() is False
    assert panel.message.is_error and message in panel.message.text()
    assert idle.current_lookup is None


def test_lookup_panel_accepts_hex_base32_and_magnet_but_needs_a_running_node(
    idle: Controller,
) -> None:
    panel = LookupPanel(idle)
    for text in ("ab" * 20, "A" * 32, "magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=x"):
        panel.set_query(text)
        assert panel.start_lookup() is False
        assert "not running" in panel.message.text()


def test_lookup_panel_follows_a_lookup_and_the_proxies_pass_the_model_tester(
    loop: qasync.QEventLoop, node: Controller, qtbot: QtBot
) -> None:
    panel = LookupPanel(node)
    searched: list[str] = []
    panel.searched.connect(searched.append)
    history_tester = ModelTester(qtbot)
    history_tester.check(panel.history_proxy, force_py=True)
    peers_tester = ModelTester(qtbot)
    peers_tester.check(panel.peers_proxy, force_py=True)
    assert node.testnet is not None
    info_hash = next(iter(node.testnet.announced))

    async def scenario() -> None:
        panel.set_query(info_hash.hex().upper())
        assert panel.start_lookup()
        await until(lambda: panel.shown is not None and panel.shown.finished
                    and panel.shown.target == info_hash)
        # a maintenance lookup is hidden in the history until asked for
        node.rebootstrap()
        await until(lambda: any(panel.lookups.state(r).kind == "bootstrap"
                                for r in range(panel.lookups.rowCount())))

    run(loop, scenario())
    assert searched == [info_hash.hex().upper()]
    assert panel.peers.rowCount() == len(node.testnet.announced[info_hash])
    assert panel.peers_title.text() == f"Peers ({panel.peers.rowCount()})"
    assert "done" in panel.progress.text() and "queried" in panel.progress.text()
    # One row for the lookup in both families (a dual-stack testnet: BEP 32).
    kinds = {panel.history_proxy.index(r, 1).data().split(" · ")[0]
             for r in range(panel.history_proxy.rowCount())}
    assert "bootstrap" not in kinds and "get_peers" in kinds
    assert panel.history_proxy.rowCount() == 1
    assert panel.history_proxy.index(0, 1).data() == "get_peers · IPv4+IPv6"
    assert panel.shown is not None and panel.shown.families == (4, 6)
    panel.show_maintenance.setChecked(True)
    kinds = {panel.history_proxy.index(r, 1).data().split(" · ")[0]
             for r in range(panel.history_proxy.rowCount())}
    assert "bootstrap" in kinds
    # newest first
    started = [panel.history_proxy.index(r, 2).data(SORT_ROLE)
               for r in range(panel.history_proxy.rowCount())]
    assert started == sorted(started, reverse=True)
    panel.peers_table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    ports = [panel.peers_proxy.index(r, 1).data(SORT_ROLE)
             for r in range(panel.peers_proxy.rowCount())]
    assert ports == sorted(ports, reverse=True)


def test_lookup_panel_says_a_lookup_waits_for_the_bootstrap_and_lets_it_be_cancelled(
    loop: qasync.QEventLoop,
) -> None:
    c = Controller()
    panel = LookupPanel(c)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.62.251", 0))
        where = f"127.0.62.251:{silent.getsockname()[1]}"

        async def scenario() -> None:
            await c.start(  # type: ignore[misc]
                StartOptions(mode=CUSTOM, custom=(where,), bind_host="127.0.0.1", port=0))
            panel.set_query("ab" * 20)
            assert panel.start_lookup()
            assert "Waiting for the bootstrap" in panel.message.text()
            assert not panel.message.isHidden() and not panel.message.is_error
            assert panel.cancel_button.isEnabled()
            panel.cancel_button.click()
            assert panel.message.isHidden() and not panel.cancel_button.isEnabled()
            await c.shutdown()

        run(loop, scenario())


def test_lookup_panel_looks_up_a_v2_magnet_by_its_truncated_hash_and_says_so(
    loop: qasync.QEventLoop, node: Controller
) -> None:
    panel = LookupPanel(node)
    v2 = bytes(range(100, 132))

    async def scenario() -> None:
        panel.set_query(f"magnet:?xt=urn:btmh:1220{v2.hex()}&dn=a+v2+torrent")
        assert panel.start_lookup()
        await until(lambda: panel.shown is not None and panel.shown.target == v2[:20])

    run(loop, scenario())
    assert not panel.message.is_error and not panel.message.isHidden()
    assert "BitTorrent v2" in panel.message.text() and v2[:20].hex() in panel.message.text()
    node.cancel_lookup()


def test_lookup_panel_lists_items_lookups_without_switching_to_them(idle: Controller) -> None:
    # a get or put started in the Items panel is shown there; the lookup the user had in this
    # panel stays in view (it is listed in the history all the same)
    panel = LookupPanel(idle)
    for lookup_id, kind in ((7, "get"), (8, "put")):
        idle.lookup_started.emit(lookup_id, kind, b"\x11" * 20)
        assert panel._follow is None, kind
    idle.lookup_started.emit(9, "get_peers", b"\x22" * 20)
    assert panel._follow == 9
    # the put's row ends as the put does, not at its lookup phase ("putting" for ever)
    target, stored = b"\x11" * 20, ("127.0.0.9", 6881)
    panel.add_events([ev.LookupStarted(8, target, "put", 1.0),
                      ev.LookupFinished(8, target, "put", (), (), 4, 4, 0.1, False, 1.1)])
    row = panel.lookups.row_of(8)
    assert row is not None and panel.lookups.state(row).state == "putting"
    panel.add_events([ev.ItemPutFinished(8, target, None, None, (stored,), (), 1.3)])
    assert panel.lookups.state(row).state == "stored"


def test_lookup_panel_scrape_shows_the_swarm_estimate_beside_the_peers(
    loop: qasync.QEventLoop, node: Controller
) -> None:
    panel = LookupPanel(node)
    assert node.testnet is not None
    info_hash, peers = list(node.testnet.announced.items())[1]
    scrapes: list[object] = []
    node.scrape_finished.connect(scrapes.append)

    async def scenario() -> None:
        panel.scrape.setChecked(True)
        panel.set_query(info_hash.hex())
        assert panel.start_lookup()
        await until(lambda: panel.shown is not None and panel.shown.target == info_hash
                    and panel.shown.scrape is not None)
        await until(lambda: bool(scrapes))

    run(loop, scenario())
    assert panel.shown is not None and panel.shown.scrape is not None
    estimate = panel.shown.scrape
    assert not estimate.cancelled and estimate.nodes >= 1
    # a testnet's peers announce without seed=1: all downloaders, one per distinct address
    assert round(estimate.seeds) == 0
    assert round(estimate.downloaders) == len({ip for ip, _ in peers})
    title = panel.peers_title.text()
    assert title.startswith(f"Peers ({len(peers)}) · swarm ≈ 0 seeds, ")
    assert "downloaders (BEP 33" in panel.progress.text()
    assert getattr(scrapes[0], "info_hash", None) == info_hash
    # the title wraps rather than widen the peers side; with room, it holds on one line
    title_line = panel.peers_title.fontMetrics().height()
    panel.resize(1600, 700)
    panel.show()
    QApplication.processEvents()
    assert panel.peers_title.height() < 2 * title_line
    assert panel.graph.width() >= 1600 // 2
    panel.resize(700, 600)
    QApplication.processEvents()
    assert panel.minimumSizeHint().width() <= 700
    panel.hide()
    # without the box ticked, a plain get_peers lookup: no estimate
    panel.scrape.setChecked(False)

    async def plain() -> None:
        assert panel.start_lookup()
        await until(lambda: panel.shown is not None and panel.shown.finished
                    and panel.shown.scrape is None)

    run(loop, plain())
    assert "BEP 33" not in panel.peers_title.text()


# --- announce panel --------------------------------------------------------------------------
def test_announce_panel_validates_and_implied_port_disables_the_port(idle: Controller) -> None:
    panel = AnnouncePanel(idle)
    panel.set_query("xyz")
    assert panel.start_announce() is False and panel.message.is_error
    panel.implied.setChecked(True)
    assert not panel.port.isEnabled()
    panel.set_query("ab" * 20)
    assert panel.start_announce() is False and "not running" in panel.message.text()


def test_announce_panel_reports_stored_nodes_and_verification(
    loop: qasync.QEventLoop, node: Controller
) -> None:
    panel = AnnouncePanel(node)

    async def scenario() -> None:
        panel.set_query("ef" * 20)
        panel.implied.setChecked(True)
        assert panel.start_announce()
        assert panel.status == "announcing"
        await until(lambda: panel.status in ("verified", "not found"))

    run(loop, scenario())
    assert panel.status == "verified"
    local = node.local_address()
    assert local is not None and f"127.0.0.1:{local[1]}" in panel.verify_label.text()
    assert panel.nodes.topLevelItemCount() > 0
    assert "stored the announce." in panel.status_label.text()


# --- routing panel ---------------------------------------------------------------------------
def test_routing_panel_filters_by_clicked_bucket_and_offers_node_actions(
    loop: qasync.QEventLoop, node: Controller, qtbot: QtBot
) -> None:
    panel = RoutingPanel(node)
    tester = ModelTester(qtbot)
    tester.check(panel.proxy, force_py=True)
    pings: list[tuple[str, bool, str]] = []
    node.ping_finished.connect(lambda a, ok, t: pings.append((a, ok, t)))
    started: list[str] = []
    node.lookup_started.connect(lambda _i, kind, _t: started.append(kind))
    panel.ping_requested.connect(node.ping)
    panel.find_node_requested.connect(node.find_node)

    async def scenario() -> None:
        await until(lambda: panel.snapshot is not None and panel.snapshot.size > 0)

    run(loop, scenario())
    snap = panel.snapshot
    assert snap is not None
    bucket = max(snap.buckets, key=lambda b: len(b.nodes))
    panel.chart.bucket_clicked.emit(bucket.index)
    assert panel.proxy.rowCount() == len(bucket.nodes)
    assert all(panel.proxy.index(r, COL_BUCKET).data(SORT_ROLE) == bucket.index
               for r in range(panel.proxy.rowCount()))
    assert f"bucket {bucket.index}" in panel.filter_label.text()
    assert panel.show_all.isVisibleTo(panel)
    panel.show_all.click()
    assert panel.proxy.rowCount() == panel.model.rowCount()

    target = panel.node_at(panel.proxy.index(0, 0))
    assert target is not None
    menu = panel.menu_for(target)
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts[0].startswith("Ping") and texts[1].startswith("Find node")
    assert {"Copy id", "Copy address"} <= set(texts)

    async def act() -> None:
        menu.actions()[0].trigger()
        menu.actions()[1].trigger()
        await until(lambda: pings and started)

    run(loop, act())
    assert pings[0][1] is True and started == ["find_node"]
    next(a for a in menu.actions() if a.text() == "Copy id").trigger()
    assert QApplication.clipboard().text() == target.id.hex()


# --- traffic (the packet log is tested in tests/ui/panels/test_packets.py) ---------------
def test_traffic_panel_counts_and_redraws_at_most_once_a_second(
    loop: qasync.QEventLoop, node: Controller
) -> None:
    panel = TrafficPanel(node)
    panel.show()

    async def scenario() -> None:
        for _ in range(3):
            node.find_node(b"\x10" * 20)
            await until(lambda: node.current_lookup is None or node.current_lookup.done())
        await until(lambda: panel.stats.totals.get("messages out", 0) > 0)

    draws_before = panel.draws
    run(loop, scenario())
    assert panel.stats.totals["messages in"] > 0
    assert panel.plot.rate_curve_count() > 0 or panel.draws == draws_before
    assert panel.draws - draws_before <= 3  # three lookups in well under three seconds
    rin, rout = panel.messages_per_second()
    assert rin >= 0 and rout >= 0
    panel.close()


def test_logging_does_not_need_a_panel(caplog: pytest.LogCaptureFixture) -> None:
    # the controller logs through the standard logging module; nothing here depends on Qt
    with caplog.at_level(logging.INFO, logger="dhtviewer"):
        logging.getLogger("dhtviewer.ui.controller").info("hello")
    assert caplog.records[-1].getMessage() == "hello"


def test_routing_panel_switches_between_the_ipv4_and_ipv6_tables(
    loop: qasync.QEventLoop, node: Controller, qtbot: QtBot
) -> None:
    """A dual-stack node has two routing tables (BEP 32); the switch picks the one drawn."""
    panel = RoutingPanel(node)
    qtbot.addWidget(panel)

    async def scenario() -> None:
        await until(lambda: {4, 6} <= set(panel.snapshots)
                    and all(s.size > 0 for s in panel.snapshots.values()))

    run(loop, scenario())
    assert panel.family == 4 and panel.family_buttons[4].isChecked()
    assert all(b.isEnabled() for b in panel.family_buttons.values())
    four = panel.snapshot
    assert four is not None and four.family == 4
    assert panel.summary.text().startswith("IPv4:")
    assert panel.family_buttons[6].text() == f"IPv6 · {panel.snapshots[6].size}"
    panel.chart.bucket_clicked.emit(0)
    panel.family_buttons[6].click()
    six = panel.snapshot
    assert six is not None and six.family == 6 and panel.family == 6
    assert panel.summary.text().startswith(f"IPv6: {six.size} nodes")
    assert panel.model.rowCount() == six.size and panel.ring.node_count() == six.size
    addrs = {panel.model.index(r, COL_ADDR).data() for r in range(panel.model.rowCount())}
    assert addrs and all(a.startswith("[::1]:") for a in addrs)
    assert not panel.show_all.isVisibleTo(panel)  # a bucket filter of one table is dropped
    # A new IPv4 snapshot is kept for later but does not replace what is shown.
    node.routing_changed.emit(four)
    assert panel.snapshot is six and panel.snapshots[4] is four
    panel.family_buttons[4].click()
    assert panel.snapshot is four and panel.model.rowCount() == four.size
