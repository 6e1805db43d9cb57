"""LocalNetworks: an embedded testnet started (in its thread) and stopped, with the addresses
to bootstrap from and the testnet's info-hashes announced; its progress shown at most ten times
a second, each phase's first and last report always; a failed start raises with the reason."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from dhtviewer.net.testnet import Phase, TestnetProgress
from dhtviewer.ui.local_networks import LocalNetworkError, LocalNetworks
from dhtviewer.ui.start_options import TESTNET, StartOptions
from tests.support.qt_async import qasync_loop, run

pytestmark = pytest.mark.qt


@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


def test_a_testnet_starts_gives_its_routers_and_stops(loop: qasync.QEventLoop) -> None:
    reports: list[str] = []
    changes: list[Any] = []
    nets = LocalNetworks(reports.append)
    nets.testnet_changed.connect(changes.append)
    options = StartOptions(mode=TESTNET, testnet_nodes=12, testnet_base="127.0.63.1",
                           testnet_seed=2)

    async def scenario() -> list[Any]:
        spec = await nets.start_testnet(options)
        await asyncio.sleep(0)  # progress reports posted from the testnet's thread
        assert nets.testnet is not None and nets.start_progress is None
        routers = set(nets.testnet.bootstrap_addrs)
        await nets.stop()
        return [spec, routers]

    spec, routers = run(loop, scenario())
    assert spec and set(spec) == routers
    assert reports[0].startswith("starting a local testnet of 12 ")
    assert changes[0] and changes[-1] is None and nets.testnet is None
    assert any("of 12" in r and "nodes started" in r for r in reports[1:])


def test_progress_is_throttled_but_each_phase_shows_its_first_and_last(
    loop: qasync.QEventLoop,
) -> None:
    reports: list[str] = []
    nets = LocalNetworks(reports.append)

    class Net:  # what the progress text reads of the testnet being started
        n, node_count, families = 1000, 1000, (4,)

    async def scenario() -> None:
        nets._starting = Net()  # type: ignore[assignment]
        for done in range(1, 1001):  # a thousand binds within a few ms
            nets._testnet_progress(TestnetProgress(Phase.BINDING, done, 1000))
        nets._testnet_progress(TestnetProgress(Phase.JOINING, 1, 1000))
        nets._starting = None
        nets._testnet_progress(TestnetProgress(Phase.JOINING, 2, 1000))  # late: dropped

    run(loop, scenario())
    assert reports[0].endswith("1 of 1,000 nodes started")
    assert reports[1].endswith("1,000 of 1,000 nodes started")
    assert reports[2].endswith("1 of 1,000 nodes bootstrapped") and len(reports) == 3


def test_a_testnet_that_cannot_start_says_why(loop: qasync.QEventLoop) -> None:
    nets = LocalNetworks(lambda _detail: None)
    # 127.0.0.0/8 ends before the 300th host after 127.255.255.0
    options = StartOptions(mode=TESTNET, testnet_nodes=300, testnet_base="127.255.255.0")

    async def scenario() -> None:
        with pytest.raises(LocalNetworkError, match=re.escape(
                "cannot start the local testnet: 300 nodes from 127.255.255.0 run past the end "
                "of 127.0.0.0/8")):
            await nets.start_testnet(options)

    run(loop, scenario())
    assert nets.testnet is None and nets.start_progress is None
