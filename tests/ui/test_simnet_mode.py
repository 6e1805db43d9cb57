"""The "Simulated Mainline" mode: the controller runs ``dhtviewer simnet`` as a child process,
bootstraps from it and ends it with the node; the network panel offers size, profile and
scenarios, validates the scenarios inline and lists the seeded swarms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from dhtviewer.ui.controller import SIMNET, SIMNET_NODES, TESTNET, Controller, StartOptions
from dhtviewer.ui.panels.network import NetworkPanel
from tests.support.qt_async import qasync_loop, run, until

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


def test_the_controller_runs_the_simnet_as_a_child_and_ends_it(loop: qasync.QEventLoop) -> None:
    ctl = Controller()
    seen: list[Any] = []
    ctl.simnet_changed.connect(seen.append)
    options = StartOptions(mode=SIMNET, simnet_nodes=5000, simnet_profile="friendly",
                           bind_host="127.0.0.1", port=0)

    async def scenario() -> None:
        assert await ctl.start(options) is True  # type: ignore[misc]
        await until(lambda: ctl.state == "ready", timeout=30, what="ready")
        assert ctl.simnet is not None and ctl.simnet.running
        info = seen[0]
        assert info["nodes"] == 5000 and len(info["swarms"]) == 50
        session = ctl.session
        assert session is not None
        assert all(a in session.bootstrap_addrs for a in ctl.simnet.routers)
        # The subnet rule holds on the simulated Mainline as on the real one (not relaxed for
        # loopback as on a local testnet).
        assert session.node is not None and session.node.settings.restrict_local_subnets
        assert session.node.settings.restrict_subnets
        child = ctl.simnet
        await ctl.stop()  # type: ignore[misc]
        assert not child.running

    try:
        run(loop, scenario(), timeout=90)
    finally:
        run(loop, ctl.shutdown())
    assert ctl.simnet is None and seen[-1] is None


def test_a_simnet_that_cannot_start_is_reported(loop: qasync.QEventLoop) -> None:
    ctl = Controller()
    errors: list[str] = []
    ctl.error.connect(errors.append)
    options = StartOptions(mode=SIMNET, simnet_nodes=5000, simnet_scenarios=("storm",),
                           bind_host="127.0.0.1", port=0)
    try:
        assert run(loop, ctl.start(options), timeout=60) is False  # type: ignore[arg-type]
    finally:
        run(loop, ctl.shutdown())
    assert ctl.state == "stopped" and ctl.session is None and ctl.simnet is None
    assert errors and "unknown scenario" in errors[0]


def test_the_panel_offers_the_mode_and_validates_scenarios(qapp: QApplication,
                                                           qtbot: QtBot) -> None:
    panel = NetworkPanel(Controller())
    qtbot.addWidget(panel)
    panel.set_mode(SIMNET)
    assert panel.current_mode() == SIMNET and panel.mode.currentText() == "Simulated Mainline"
    assert panel.simnet_nodes.value() == SIMNET_NODES
    panel.simnet_scenarios.setText("poison flood:200")
    options = panel.options()
    assert options is not None and options.mode == SIMNET
    assert options.simnet_scenarios == ("poison", "flood:200")
    panel.simnet_scenarios.setText("eclipse:nothex")
    assert panel.options() is None
    assert "eclipse" in panel.simnet_message.text()
    # Another mode does not care about a bad scenario it would not use.
    panel.set_mode(TESTNET)
    assert panel.options() is not None
    # The seeded swarms are listed; a click fills the field, a double-click asks for a lookup.
    picked: list[str] = []
    panel.infohash_chosen.connect(picked.append)
    panel.set_simnet({"nodes": 1_000_000, "build_s": 1.2, "rss_mb": 380.0,
                      "control": "127.0.0.1:1", "swarms": [("ab" * 20, 400), ("cd" * 20, 200)]})
    assert panel.simnet_list.count() == 2 and "1,000,000 nodes" in panel.simnet_hint.text()
    looked_up: list[str] = []
    panel.infohash_lookup_requested.connect(looked_up.append)
    panel.simnet_list.itemClicked.emit(panel.simnet_list.item(1))
    assert picked == ["cd" * 20] and not looked_up
    panel.simnet_list.itemActivated.emit(panel.simnet_list.item(0))
    assert looked_up == ["ab" * 20]
    assert panel.simnet_list.item(0).data(Qt.ItemDataRole.UserRole) == "ab" * 20
    panel.set_simnet(None)
    assert panel.simnet_list.count() == 0
