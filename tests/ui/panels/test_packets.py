"""The packet log panel as a user drives it: pause keeps capturing, the counter tells the truth, a
history far longer than what is in memory with a display filter over all of it, query/reply
pairs (RTT, jump between them), packets grouped by address, what a malformed datagram held, and
the datagrams that never reached the log (blocked IPs, the UI's per-tick cap).

Most tests feed the panel synthetic events (deterministic clock); the last one runs it on a live
embedded testnet."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.messages import Addr, FindNodeQuery, GetPeersQuery, NodeInfo, PingQuery, Response
from dhtviewer.ui.capture.store import MB, CaptureLimits
from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
from dhtviewer.ui.models.packets import COL_ADDR, COL_DIR, COL_METHOD, COL_NO, COL_RTT
from dhtviewer.ui.panels.capture_limits import CaptureLimitsDialog
from dhtviewer.ui.panels.packets import PacketLogPanel
from dhtviewer.ui.settings_store import SettingsStore
from tests.support.qt_async import qasync_loop, run, until

pytestmark = pytest.mark.qt
OWN = b"\x01" * 20


def query_and_reply(i: int, at: float, addr: Addr, *, incoming: bool = True,
                    rtt: float = 0.002, method: str = "get_peers") -> list[ev.Event]:
    """A query (from ``addr`` if ``incoming``, else to it) and its reply ``rtt`` later."""
    tid = (i & 0xFFFF).to_bytes(2, "big")
    other = random.Random(hash(addr)).randbytes(20)
    sender = other if incoming else OWN
    q = (GetPeersQuery(tid, sender, info_hash=bytes([i % 256]) * 20) if method == "get_peers"
         else FindNodeQuery(tid, sender, target=bytes([i % 256]) * 20))
    qdata = krpc.encode(q)
    nodes = (NodeInfo(b"\x22" * 20, ("10.0.0.1", 6881)),)
    rdata = krpc.encode(Response(tid, OWN if incoming else other, nodes=nodes, token=b"tk"))
    m = method.encode()
    if incoming:
        return [ev.MessageReceived(addr, "q", m, tid, len(qdata), other, qdata, at),
                ev.MessageSent(addr, "r", m, tid, len(rdata), rdata, at + rtt)]
    return [ev.MessageSent(addr, "q", m, tid, len(qdata), qdata, at),
            ev.MessageReceived(addr, "r", m, tid, len(rdata), other, rdata, at + rtt)]


def flood(pairs: int, start: float = 0.0, base: int = 0) -> list[ev.Event]:
    """``pairs`` incoming queries from 50 addresses, each answered 2 ms later."""
    out: list[ev.Event] = []
    for i in range(pairs):
        addr = (f"127.0.93.{1 + (base + i) % 50}", 40000 + (base + i) % 50)
        out.extend(query_and_reply(base + i, start + i * 0.001, addr))
    return out


@pytest.fixture
def idle(qapp: QApplication) -> Controller:
    return Controller()


@pytest.fixture
def panel(idle: Controller, tmp_path: Path, qtbot: QtBot) -> Iterator[PacketLogPanel]:
    p = PacketLogPanel(idle, capture_dir=tmp_path)
    qtbot.addWidget(p)
    yield p
    p.close_capture()


def settle(p: PacketLogPanel) -> None:
    """Wait until the capture's writer has stored everything and the view took the results."""
    p.capture.wait_idle(10.0)
    p.model.poll()
    p.refresh_status()


def column(p: PacketLogPanel, col: int) -> list[str]:
    m = p.model
    return [str(m.index(r, col).data()) for r in range(m.rowCount())]


def test_pause_freezes_the_view_but_never_the_capture(panel: PacketLogPanel) -> None:
    panel.add_events(flood(50))
    assert panel.model.rowCount() == 100
    panel.pause.setChecked(True)
    panel.add_events(flood(30, start=1.0, base=50))
    assert panel.model.rowCount() == 100  # the view holds still for reading
    text = panel.count.text()
    assert "not kept" not in text and "60 new" in text
    assert panel.capture.kept == 160  # ... while the capture goes on
    panel.pause.setChecked(False)
    assert panel.model.rowCount() == 160
    assert column(panel, COL_NO) == [str(n) for n in range(1, 161)]


def test_the_counter_tells_shown_kept_and_captured(idle: Controller, tmp_path: Path,
                                                   qtbot: QtBot) -> None:
    p = PacketLogPanel(idle, capture_dir=tmp_path, limits=CaptureLimits(max_packets=1000))
    qtbot.addWidget(p)
    try:
        events = flood(700)
        pings = []
        for i in range(10):  # ten pings among them, answered
            tid = (60000 + i).to_bytes(2, "big")
            data = krpc.encode(PingQuery(tid, b"\x33" * 20))
            pings.append(ev.MessageReceived(("127.0.8.8", 9), "q", b"ping", tid, len(data),
                                            b"\x33" * 20, data, 5.0 + i))
        p.add_events(events + pings)
        settle(p)
        assert p.capture.kept == 1000 and p.capture.captured == 1410
        p.filter.setText("method == ping")
        p.apply_filter()
        settle(p)
        assert p.model.rowCount() == 10
        text = p.count.text()
        assert "10 shown" in text and "1,000 kept" in text and "1,410 captured" in text
    finally:
        p.close_capture()


def test_history_beyond_memory_with_a_filter_over_all_of_it(idle: Controller, tmp_path: Path,
                                                             qtbot: QtBot) -> None:
    p = PacketLogPanel(idle, capture_dir=tmp_path,
                       limits=CaptureLimits(max_packets=100_000, memory_rows=500))
    qtbot.addWidget(p)
    try:
        rare = query_and_reply(7, 0.0005, ("198.51.100.7", 6881))
        p.add_events(rare)
        for k in range(10):  # 20,000 more packets, in ticks as the controller hands them
            p.add_events(flood(1000, start=1.0 + k, base=k * 1000))
        settle(p)
        assert p.model.rowCount() == 20_002
        assert p.capture.memory_rows() <= 500 + 2000  # the rest is on disk only
        assert p.model.index(0, COL_ADDR).data() == "198.51.100.7:6881"  # read back from disk
        p.filter.setText("198.51.100.7")
        p.apply_filter()
        settle(p)
        assert p.model.rowCount() == 2
        assert column(p, COL_NO) == ["1", "2"]
        p.table.selectRow(0)
        assert "get_peers" in p.detail.toPlainText()
        # new packets are filtered as they come
        p.add_events(query_and_reply(9, 30.0, ("198.51.100.7", 6881)))
        settle(p)
        assert p.model.rowCount() == 4
    finally:
        p.close_capture()


def test_bad_filter_says_what_is_wrong_and_keeps_the_view(panel: PacketLogPanel) -> None:
    panel.add_events(flood(5))
    panel.filter.setText("size >> 3")
    panel.apply_filter()
    assert panel.filter_message.isVisibleTo(panel) and "size" in panel.filter_message.text()
    assert panel.model.rowCount() == 10
    panel.filter.setText("size > 100")
    panel.apply_filter()
    settle(panel)
    assert not panel.filter_message.isVisibleTo(panel)


def test_query_and_reply_are_paired_with_rtt_and_jump(panel: PacketLogPanel) -> None:
    a, b = ("127.0.5.1", 6881), ("127.0.5.2", 6882)
    events = [
        *query_and_reply(1, 1.0, a, incoming=False, rtt=0.025),
        *query_and_reply(2, 2.0, b, incoming=True, rtt=0.0005),
    ]
    lone = krpc.encode(PingQuery(b"zz", OWN))
    events.append(ev.MessageSent(b, "q", b"ping", b"zz", len(lone), lone, 3.0))
    # interleave: the reply to our query comes after the other conversation started
    panel.add_events([events[0], events[2], events[1], events[3], events[4]])
    assert column(panel, COL_NO) == ["1", "2", "3", "4", "5"]
    assert column(panel, COL_RTT) == ["25.00", "", "25.00", "", ""]  # ms, on both rows
    panel.table.selectRow(0)  # our query to a
    assert panel.goto_pair()
    assert panel.table.currentIndex().row() == 2
    assert panel.model.index(2, COL_DIR).data() == "in"
    assert "reply" in panel.pair_label.text().lower() or "query" in panel.pair_label.text().lower()
    assert panel.goto_pair()
    assert panel.table.currentIndex().row() == 0
    panel.table.selectRow(4)
    assert not panel.goto_pair()  # unanswered
    assert "no reply" in panel.pair_label.text().lower()
    panel.filter.setText("unanswered")
    panel.apply_filter()
    settle(panel)
    assert column(panel, COL_NO) == ["5"]


def test_a_reply_that_comes_later_updates_the_selected_query(panel: PacketLogPanel) -> None:
    a = ("127.0.5.1", 6881)
    query, reply = query_and_reply(1, 1.0, a, incoming=False, rtt=0.3)
    panel.add_events([query])
    panel.table.selectRow(0)
    assert panel.pair_label.text() == "No reply (yet)" and not panel.pair_button.isEnabled()
    panel.pause.setChecked(True)
    panel.add_events([reply])
    assert panel.pair_label.text() == "Reply: No. 2 after 300.00 ms"
    assert panel.pair_button.isEnabled()
    assert not panel.goto_pair()  # the reply is not in the held view yet
    assert "shows on resume" in panel.pair_label.text()
    panel.pause.setChecked(False)
    assert panel.goto_pair() and panel.table.currentIndex().row() == 1


def test_packets_grouped_by_address(panel: PacketLogPanel, qtbot: QtBot) -> None:
    a, b = ("127.0.5.1", 6881), ("127.0.5.2", 6882)
    events = [*query_and_reply(1, 1.0, a), *query_and_reply(2, 1.5, a, incoming=False),
              *query_and_reply(3, 2.0, b)]
    events.append(ev.MalformedReceived(b, 9, 203, "invalid bencode", False, 2.5, b"garbage!!"))
    panel.add_events(events)
    panel.show_addresses()
    settle(panel)
    conv = panel.addresses
    assert conv.rowCount() == 2
    rows = {conv.index(r, 0).data(): r for r in range(conv.rowCount())}
    ra = rows["127.0.5.1:6881"]
    headers = [conv.headerData(c, Qt.Orientation.Horizontal) for c in range(conv.columnCount())]
    values = {h: conv.index(ra, c).data() for c, h in enumerate(headers)}
    assert values["Packets"] == "4" and values["In"] == "2" and values["Out"] == "2"
    rb = {h: conv.index(rows["127.0.5.2:6882"], c).data() for c, h in enumerate(headers)}
    assert rb["Malformed"] == "1" and rb["Packets"] == "3"
    panel.open_address(ra)  # double-click: the packets of that address
    settle(panel)
    assert panel.tabs.currentWidget() is panel.packets_page
    assert set(column(panel, COL_ADDR)) == {"127.0.5.1:6881"} and panel.model.rowCount() == 4


def test_malformed_datagram_shows_a_bounded_hex_and_ascii_prefix(panel: PacketLogPanel) -> None:
    prefix = b"GARBAGE\x00\xff" + bytes(range(40))
    panel.add_events([ev.MalformedReceived(("127.0.6.6", 1), 5000, 203, "invalid bencode",
                                           False, 1.0, prefix)])
    panel.table.selectRow(0)
    text = panel.detail.toPlainText()
    assert "first 49 of 5,000 bytes" in text
    assert "47 41 52 42 41 47 45 00 ff 00 01" in text  # hex
    assert "GARBAGE.." in text  # and ASCII, unprintable bytes as dots


def test_counts_of_datagrams_that_never_reached_the_log(idle: Controller,
                                                        panel: PacketLogPanel) -> None:
    panel.add_events(flood(3))
    idle.stats_changed.emit({"dropped_blocked": 42, "now": 1.0})
    idle.batcher.dropped = 7
    panel.add_events(flood(3, start=1.0, base=3))
    text = panel.drops.text()
    assert "42" in text and "blocked" in text
    assert "7" in text and "cap" in text


def test_the_rows_being_read_stay_in_place_when_the_oldest_leave(
    idle: Controller, tmp_path: Path, qtbot: QtBot
) -> None:
    p = PacketLogPanel(idle, capture_dir=tmp_path, limits=CaptureLimits(max_packets=1000))
    qtbot.addWidget(p)
    p.resize(900, 700)
    p.show()
    try:
        p.add_events(flood(300))
        p.table.scrollTo(p.model.index(300, 0), p.table.ScrollHint.PositionAtTop)
        top = p.model.index(p.table.rowAt(0), COL_NO).data()
        p.add_events(flood(300, start=1.0, base=300))  # 200 of the oldest leave the ring
        assert p.model.rowCount() == 1000
        assert p.model.index(p.table.rowAt(0), COL_NO).data() == top
    finally:
        p.close_capture()


def test_model_passes_qt_model_tester(panel: PacketLogPanel, qtbot: QtBot) -> None:
    tester = ModelTester(qtbot)
    tester.check(panel.model, force_py=True)  # type: ignore[no-untyped-call]
    panel.add_events(flood(20))
    panel.filter.setText("dir == in")
    panel.apply_filter()
    settle(panel)
    assert panel.model.rowCount() == 20
    panel.clear()
    assert panel.model.rowCount() == 0


# --- on a live node ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


def test_live_node_pause_filter_pairs_and_detail(loop: qasync.QEventLoop, qapp: QApplication,
                                                 tmp_path: Path) -> None:
    c = Controller()
    options = StartOptions(mode=TESTNET, testnet_nodes=16, testnet_base="127.0.63.1",
                           testnet_seed=3, bind_host="127.0.0.1", port=0)
    panel = PacketLogPanel(c, capture_dir=tmp_path)

    async def scenario() -> None:
        await c.start(options)  # type: ignore[misc]
        await until(lambda: c.state == "ready")
        c.find_node(b"\x20" * 20)
        await until(lambda: panel.model.rowCount() > 10)
        panel.pause.setChecked(True)
        frozen = panel.model.rowCount()
        c.find_node(b"\x30" * 20)
        await until(lambda: panel.capture.kept > frozen + 5)
        assert panel.model.rowCount() == frozen
        panel.pause.setChecked(False)
        assert panel.model.rowCount() == panel.capture.kept

    try:
        run(loop, scenario())
        panel.filter.setText("method == find_node and dir == out")
        panel.apply_filter()
        settle(panel)
        assert panel.model.rowCount() > 0
        assert set(column(panel, COL_METHOD)) == {"find_node"}
        assert set(column(panel, COL_DIR)) == {"out"}
        panel.table.selectRow(0)
        assert "find_node" in panel.detail.toPlainText()
        answered = [r for r in range(panel.model.rowCount())
                    if panel.model.index(r, COL_RTT).data()]
        assert answered  # our queries got replies, with their round-trip time
    finally:
        run(loop, c.shutdown())
        panel.close_capture()


def test_limits_are_a_setting_applied_at_once(idle: Controller, tmp_path: Path,
                                              qtbot: QtBot) -> None:
    store = SettingsStore(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    p = PacketLogPanel(idle, capture_dir=tmp_path, store=store)
    qtbot.addWidget(p)
    try:
        p.add_events(flood(1500))
        dialog = CaptureLimitsDialog(p.capture, p)
        assert dialog.packets.value() == 1_000_000 and dialog.megabytes.value() == 256
        dialog.packets.setValue(1000)
        dialog.megabytes.setValue(64)
        p.set_limits(dialog.limits())
        assert p.capture.kept == 1000 and p.model.rowCount() == 1000
        assert column(p, COL_NO)[0] == "2001"
        back = store.packet_log_limits()
        assert (back.max_packets, back.max_bytes) == (1000, 64 * MB)
        again = PacketLogPanel(idle, capture_dir=tmp_path, store=store)  # the next launch
        assert again.capture.limits.max_packets == 1000
        again.close_capture()
    finally:
        p.close_capture()
