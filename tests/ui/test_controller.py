"""The controller on a real embedded testnet (loopback 127.0.60.x, ephemeral ports): life cycle,
batched delivery, lookups, announce verification, busy port, stalled bootstrap, and errors of
async tasks reaching the log instead of vanishing."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.messages import Response
from dhtviewer.dht.node_id import bep42_valid
from dhtviewer.net.handles import ItemResult, PutResult
from dhtviewer.net.session import StateChanged
from dhtviewer.ui import controller as controller_mod
from dhtviewer.ui.controller import (
    CUSTOM,
    TESTNET,
    AnnounceVerification,
    Controller,
    StartOptions,
    find_free_port,
)
from tests.support.qt_async import qasync_loop, run, until

pytestmark = pytest.mark.qt
NODE_ID = bytes(range(20))


def tn_options(n: int = 24, **changes: Any) -> StartOptions:
    base = StartOptions(
        mode=TESTNET,
        testnet_nodes=n,
        testnet_base="127.0.60.1",
        testnet_seed=1,
        bind_host="127.0.0.1",
        port=0,
        node_id=NODE_ID,
    )
    return StartOptions(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


class Recorder:
    """Everything a controller emits, with the time of each ``events`` batch."""

    def __init__(self, c: Controller) -> None:
        self.batches: list[tuple[float, list[Any]]] = []
        self.states: list[tuple[str, str]] = []
        self.snapshots: list[Any] = []
        self.testnets: list[Any] = []
        self.errors: list[str] = []
        self.stalled: list[str] = []
        self.ports: list[tuple[str, int, int]] = []
        c.events.connect(lambda b: self.batches.append((time.monotonic(), b)))
        c.state_changed.connect(lambda s, d: self.states.append((s, d)))
        c.routing_changed.connect(self.snapshots.append)
        c.testnet_changed.connect(self.testnets.append)
        c.error.connect(self.errors.append)
        c.bootstrap_stalled.connect(self.stalled.append)
        c.port_in_use.connect(lambda h, p, f: self.ports.append((h, p, f)))

    def events(self) -> list[Any]:
        return [e for _, b in self.batches for e in b]


@pytest.fixture
def ctl(loop: qasync.QEventLoop) -> Iterator[Controller]:
    c = Controller()
    yield c
    run(loop, c.shutdown())


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
    assert len(window) <= elapsed / (controller_mod.TICK_MS / 1000) + 2
    # (no minimum gap between two deliveries: a periodic timer that fired late once fires the
    # next tick on schedule, so two deliveries can be closer than 100 ms on a loaded machine;
    # the rate bound above is the contract)
    delivered = rec.events()
    first = next(i for i, e in enumerate(delivered) if e is received[0])
    seen = delivered[first:]
    # nothing lost, nothing reordered (the newest few may still wait for the next tick)
    assert seen == received[: len(seen)]
    assert len(received) - len(seen) == len(ctl._pending)


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


def test_items_and_a_scrape_through_the_controller(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    """BEP 44 put and get, and a BEP 33 scrape, each announced with ``lookup_started`` and
    ended with its own signal; the items a node puts on us are readable."""
    started: list[tuple[int, str]] = []
    items: list[Any] = []
    scrapes: list[Any] = []
    ctl.lookup_started.connect(lambda lid, kind, _t: started.append((lid, kind)))
    ctl.item_finished.connect(items.append)
    ctl.scrape_finished.connect(scrapes.append)

    async def scenario() -> None:
        await ctl.start(tn_options())
        await until(lambda: ctl.state == "ready")
        assert ctl.testnet is not None and ctl.stored_items() == []
        put = ctl.put_item(PutRequest(b"controller", seed=bytes(range(32)), salt=b"s"))
        assert put is not None and ctl.current_lookup is None  # Esc cancels lookups only
        await until(lambda: items, what="the put")
        get = ctl.get_item(put.target, b"s")
        assert get is not None
        await until(lambda: len(items) == 2, what="the get")
        info_hash, _peers = next(iter(ctl.testnet.announced.items()))
        scrape = ctl.find_peers(info_hash, scrape=True)
        assert scrape is not None and scrape.kind == "scrape" and ctl.current_lookup is scrape
        await until(lambda: scrapes, what="the scrape")

    run(loop, scenario())
    assert [kind for _, kind in started] == ["put", "get", "scrape"]
    put_result, get_result = items
    families = len(ctl.session.nodes) if ctl.session is not None else 1
    # the K closest of each DHT (a dual-stack testnet has two: BEP 32)
    assert isinstance(put_result, PutResult) and len(put_result.stored_at) == 8 * families
    assert isinstance(get_result, ItemResult) and get_result.value == b"10:controller"
    assert get_result.seq == 1 and get_result.lookup.lookup_id == started[1][0]
    assert scrapes[0].nodes >= 1 and not scrapes[0].cancelled


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


def test_cancel_lookup_cancels_the_current_one_only(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    results: list[Any] = []
    ctl.lookup_finished.connect(results.append)

    async def scenario() -> None:
        await ctl.start(tn_options())
        await until(lambda: ctl.state == "ready")
        assert ctl.cancel_lookup() is False  # nothing running
        handle = ctl.find_peers(b"\x42" * 20)
        assert handle is not None
        assert ctl.cancel_lookup() is True
        await until(lambda: results)

    run(loop, scenario())
    assert results[0].cancelled
    assert ctl.current_lookup is None


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


def test_find_free_port_skips_the_busy_one() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        free = find_free_port("127.0.0.1", busy - 1, tries=1)
        assert free != busy and free > 0


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


def test_too_many_lookups_is_explained_not_raised(loop: qasync.QEventLoop, ctl: Controller) -> None:
    rec = Recorder(ctl)

    async def scenario() -> None:
        await ctl.start(tn_options())
        await until(lambda: ctl.state == "ready")
        assert ctl.session is not None and ctl.session.node is not None
        node = ctl.session.node
        # fill every lookup slot with lookups that cannot finish (a silent address)
        while len(node.lookups) < node.settings.max_lookups:
            node.start_lookup(
                bytes([len(node.lookups)]) * 20, ctl.session.now(), seeds=[("127.0.0.1", 9)]
            )
        assert ctl.find_peers(b"\x01" * 20) is None

    run(loop, scenario())
    assert rec.errors and "lookups already running" in rec.errors[-1]


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
