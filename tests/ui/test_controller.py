"""The controller on a real embedded testnet (loopback 127.0.60.x, ephemeral ports): life cycle,
batched delivery, busy port, stalled bootstrap, operations refused while stopped, events
forwarded, and errors of async tasks reaching the log instead of vanishing. Its user lookups and
the announce check have tests of their own (test_user_lookups, test_announce_check)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest
import qasync

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.messages import Response
from dhtviewer.dht.node_id import bep42_valid
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.session import StateChanged
from dhtviewer.ui import controller as controller_mod
from dhtviewer.ui.controller import (
    CUSTOM,
    Controller,
    StartOptions,
)
from dhtviewer.ui.event_batcher import TICK_MS
from dhtviewer.ui.panels.network import NetworkPanel
from tests.support.controller_kit import NODE_ID, Recorder, tn_options
from tests.support.qt_async import run, until

pytestmark = pytest.mark.qt


def test_start_runs_the_testnet_and_reaches_ready_then_stop_tears_both_down(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    rec = Recorder(ctl)

    async def scenario() -> None:
        assert await ctl.start(tn_options()) is True
        await until(lambda: ctl.state == "ready", what="ready")
        await until(lambda: rec.snapshots and rec.snapshots[-1].size > 0, what="a snapshot")
        assert ctl.testnet is not None and ctl.testnet.n == 24
        assert rec.testnets and set(rec.testnets[0]) == set(ctl.testnet.announced)
        assert ctl.node_id() == NODE_ID
        assert ctl.local_address() is not None and ctl.local_address()[0] == "127.0.0.1"
        await ctl.stop()

    run(loop, scenario())
    assert ctl.state == "stopped" and not ctl.running
    assert ctl.testnet is None and rec.testnets[-1] is None
    seen = [s for s, _ in rec.states]
    assert seen[0] == "starting" and "bootstrapping" in seen and "ready" in seen
    assert seen[-1] == "stopped"


def test_a_starting_testnet_shows_its_progress(loop: qasync.QEventLoop, ctl: Controller) -> None:
    # a large testnet sat on "Starting..." for seconds; now: nodes started, then bootstrapped
    panel = NetworkPanel(ctl)
    shown: list[tuple[str, int, str]] = []
    ctl.state_changed.connect(
        lambda state, detail: shown.append((detail, panel.progress.value(),
                                            panel.progress.text())) if state == "starting"
        else None)

    async def scenario() -> None:
        await ctl.start(tn_options(80, testnet_base="127.0.60.110"))

    run(loop, scenario())
    details = [d for d, _, _ in shown]
    assert any("nodes started" in d for d in details)
    if ipv6_loopback_available():  # dual stack: each host's IPv6 node counts too
        assert any("80 dual-stack hosts (160 nodes): " in d for d in details)
        assert any("160 of 160 nodes bootstrapped" in d for d in details)
    else:
        assert any("80 of 80 nodes bootstrapped" in d for d in details)
    assert any("test announces done" in d for d in details)
    values = [v for _, v, _ in shown]
    assert values == sorted(values) and values[-1] >= 95
    assert any("%" in text for _, _, text in shown)
    assert ctl.start_progress is None and ctl.state in ("bootstrapping", "ready")


def test_events_arrive_in_order_and_in_at_most_ten_batches_a_second(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    rec = Recorder(ctl)
    received: list[Any] = []

    async def scenario() -> float:
        await ctl.start(tn_options())
        await until(lambda: ctl.state == "ready")
        assert ctl.session is not None
        ctl.session.subscribe(received.append)  # the session's own, unbatched order
        started = time.monotonic()
        node = ctl.session.node
        assert node is not None
        while time.monotonic() - started < 1.5:  # a busy node: lookups back to back
            if len(node.lookups) < node.settings.max_lookups // 2:  # stay under the cap
                ctl.find_node(bytes([int(time.monotonic() * 1000) % 256]) * 20)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the last tick
        return time.monotonic() - started

    elapsed = run(loop, scenario())
    times = [t for t, _ in rec.batches]
    window = [t for t in times if times[0] <= t]
    assert len(received) > 200  # thousands of messages would do too; this is plenty
    # one delivery per 100 ms tick at most (one spare for the edges of the window)
    assert len(window) <= elapsed / (TICK_MS / 1000) + 2
    # (no minimum gap between two deliveries: a periodic timer that fired late once fires the
    # next tick on schedule, so two deliveries can be closer than 100 ms on a loaded machine;
    # the rate bound above is the contract)
    delivered = rec.events()
    first = next(i for i, e in enumerate(delivered) if e is received[0])
    seen = delivered[first:]
    # nothing lost, nothing reordered (the newest few may still wait for the next tick)
    assert seen == received[: len(seen)]
    assert len(received) - len(seen) == ctl.batcher.pending


def test_stop_and_start_twice_keeps_working(loop: qasync.QEventLoop, ctl: Controller) -> None:
    rec = Recorder(ctl)

    async def scenario() -> None:
        for _ in range(2):
            await ctl.start(tn_options(16))
            await until(lambda: ctl.state == "ready")
            await ctl.stop()
            assert ctl.state == "stopped" and ctl.testnet is None

    run(loop, scenario())
    # Into "ready" twice (while ready, the detail may change: each family reports its own).
    names = [s for s, _ in rec.states]
    readies = [s for prev, s in zip(["stopped", *names[:-1]], names, strict=True)
               if s == "ready" and prev != "ready"]
    assert len(readies) == 2


def test_start_while_running_is_ignored_and_restart_switches(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    async def scenario() -> None:
        await ctl.start(tn_options(16))
        await until(lambda: ctl.state == "ready")
        assert ctl.start(tn_options(16)) is None
        first = ctl.local_address()
        await ctl.restart(tn_options(8, testnet_base="127.0.60.100"))
        await until(lambda: ctl.state == "ready")
        assert ctl.testnet is not None and ctl.testnet.n == 8
        assert ctl.local_address() != first

    run(loop, scenario())


def test_busy_port_is_reported_with_a_free_one_and_nothing_left_running(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    rec = Recorder(ctl)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]

        async def scenario() -> bool | None:
            return await ctl.start(tn_options(8, port=busy))  # type: ignore[misc]

        assert run(loop, scenario()) is False
    assert ctl.state == "stopped" and ctl.testnet is None and ctl.session is None
    host, port, free = rec.ports[0]
    assert (host, port) == ("127.0.0.1", busy)
    assert free and free != busy
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", free))  # it really is free


def test_a_bootstrap_nobody_answers_is_reported_as_stalled(
    loop: qasync.QEventLoop, ctl: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller_mod, "STALL_SECONDS", 0.3)
    rec = Recorder(ctl)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.60.250", 0))  # receives, never answers
        where = f"127.0.60.250:{silent.getsockname()[1]}"

        async def scenario() -> None:
            await ctl.start(
                StartOptions(mode=CUSTOM, custom=(where,), bind_host="127.0.0.1", port=0)
            )
            await until(lambda: rec.stalled, timeout=5, what="the stall report")

        run(loop, scenario())
    assert ctl.state == "bootstrapping"
    assert "No bootstrap router answered" in rec.stalled[0]


def test_operations_without_a_running_node_explain_instead_of_failing(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    rec = Recorder(ctl)

    async def scenario() -> None:
        assert ctl.find_peers(b"\x01" * 20) is None
        assert ctl.find_node(b"\x01" * 20) is None
        assert ctl.announce(b"\x01" * 20, 1) is None
        assert ctl.ping(("127.0.0.1", 1)) is None
        assert ctl.rebootstrap() is None
        assert ctl.get_item(b"\x01" * 20) is None
        assert ctl.put_item(PutRequest(b"v")) is None
        assert ctl.stored_items() == []

    run(loop, scenario())
    assert len(rec.errors) == 7
    assert all("not running" in e for e in rec.errors)


def test_an_exception_inside_an_async_task_reaches_the_log_and_the_error_signal(
    loop: qasync.QEventLoop, ctl: Controller, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(ctl)
    pings: list[tuple[str, bool, str]] = []
    ctl.ping_finished.connect(lambda a, ok, t: pings.append((a, ok, t)))

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("socket exploded")

    async def scenario() -> None:
        await ctl.start(tn_options(8))
        await until(lambda: ctl.state == "ready")
        assert ctl.session is not None and ctl.testnet is not None
        await ctl.ping(ctl.testnet.addrs[0])  # type: ignore[misc]
        ctl.session.ping = broken  # type: ignore[method-assign]
        await ctl.ping(ctl.testnet.addrs[0])  # type: ignore[misc]

    with caplog.at_level(logging.ERROR, logger="dhtviewer"):
        run(loop, scenario())
    assert pings and pings[0][1] is True and "answered in" in pings[0][2]
    assert any("socket exploded" in e for e in rec.errors)
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed and failed[0].exc_info is not None
    assert "socket exploded" in str(failed[0].exc_info[1])


def test_external_address_and_state_changes_are_forwarded(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    rec = Recorder(ctl)
    external: list[tuple[str, int]] = []
    ctl.external_address_changed.connect(lambda ip, votes: external.append((ip, votes)))

    async def scenario() -> None:
        await ctl.start(tn_options())
        await until(lambda: external, what="the external address")
        # The newest state change may still wait for the next 100 ms delivery (and "ready" is
        # not the last change: each family reports its own progress in the detail).
        await until(
            lambda: ctl.state == "ready" and any(
                isinstance(e, StateChanged) and e.new == "ready" for e in rec.events()),
            what="the ready state to be delivered",
        )
        # Checked here, with no await since the wait: the session may move on (bootstrapping
        # to ready) as soon as the loop runs again.
        state_events = [e for e in rec.events() if isinstance(e, StateChanged)]
        assert state_events and state_events[-1].new == ctl.state

    run(loop, scenario())
    assert external[-1][0] == "127.0.0.1" and external[-1][1] >= 1
    assert any(isinstance(e, ev.NodeAdded) for e in rec.events())


def test_a_new_node_id_reaches_the_routing_views(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    """Responders in three networks (raw sockets here) agree on a public address our id does
    not match: the node takes a BEP 42 id, and the routing views get a snapshot around it."""
    rec = Recorder(ctl)
    public = "81.4.19.7"
    socks = []
    for i in range(3):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.61.{10 + i}", 0))
        sock.setblocking(False)
        socks.append(sock)

    async def answer(sock: socket.socket) -> None:
        lp = asyncio.get_running_loop()
        data, addr = await lp.sock_recvfrom(sock, 2048)
        reply = Response(krpc.decode(data).tid, bytes([0xA0 + len(rec.snapshots) % 16]) * 20,
                         external_ip=(public, addr[1]))
        await lp.sock_sendto(sock, krpc.encode(reply), addr)

    async def scenario() -> bytes:
        # No network to bootstrap from: only the three responders vote on our address (on a
        # testnet, its nodes would outvote them with the loopback address they see).
        await ctl.start(StartOptions(mode=CUSTOM, custom=(), bind_host="127.0.0.1", port=0,
                                     node_id=NODE_ID))
        await until(lambda: ctl.running, what="running")
        session = ctl.session
        assert session is not None
        for sock in socks:
            responder = asyncio.create_task(answer(sock))
            await session.ping(sock.getsockname(), timeout=5)
            await responder
        new = session.node_id
        assert new != NODE_ID and bep42_valid(new, public)
        await until(lambda: any(snap.family == 4 and snap.own_id == new
                                for snap in rec.snapshots),
                    what="an IPv4 snapshot around the new id")
        return new

    try:
        new = run(loop, scenario())
    finally:
        for sock in socks:
            sock.close()
    changed = [e for e in rec.events() if isinstance(e, ev.NodeIdChanged)]
    assert [(e.old_id, e.new_id, e.external_ip, e.family) for e in changed] == [
        (NODE_ID, new, public, 4)]
    assert ctl.node_id() == new
