"""The announce check (announce_check.verify_announce) through the controller on a real
embedded testnet: an announce is followed by an independent get_peers lookup that must return
our own peer, on the announced port or, with implied_port, on our UDP port."""

from __future__ import annotations

from typing import Any

import pytest
import qasync

from dhtviewer.ui.announce_check import AnnounceVerification
from dhtviewer.ui.controller import Controller
from tests.support.controller_kit import tn_options
from tests.support.qt_async import run, until

pytestmark = pytest.mark.qt


def test_a_lookup_and_an_announce_that_is_verified(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    finished: list[Any] = []
    announced: list[Any] = []
    ctl.lookup_finished.connect(finished.append)
    ctl.announce_finished.connect(announced.append)

    async def scenario() -> AnnounceVerification | None:
        await ctl.start(tn_options())
        await until(lambda: ctl.state == "ready")
        assert ctl.testnet is not None
        info_hash, peers = next(iter(ctl.testnet.announced.items()))
        handle = ctl.find_peers(info_hash)
        assert handle is not None and ctl.current_lookup is handle
        await until(lambda: finished, what="the lookup")
        assert set(peers) <= set(finished[0].peers)
        task = ctl.announce(bytes(19) + b"\x01", 51413)
        assert task is not None
        return await task

    check = run(loop, scenario())
    assert announced and announced[0].stored_at
    assert check is not None and check.verified
    assert check.matched == (("127.0.0.1", 51413),)
    assert check.expected == ("127.0.0.1", 51413)


def test_implied_port_announce_is_verified_on_our_udp_port(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    async def scenario() -> AnnounceVerification | None:
        await ctl.start(tn_options())
        await until(lambda: ctl.state == "ready")
        task = ctl.announce(b"\x07" * 20, 1, implied_port=True)
        assert task is not None
        return await task

    check = run(loop, scenario())
    local = ctl.local_address()
    assert check is not None and check.verified and local is not None
    assert check.matched[0] == ("127.0.0.1", local[1])
