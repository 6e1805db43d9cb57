"""The lookups the user asks for (UserLookups), through the controller on a real embedded
testnet (loopback 127.0.60.x, ephemeral ports): get_peers, scrape and BEP 44 get/put followed to
their results, ids that never repeat across Stop/Start, cancelling the current lookup, a lookup
that waits for the bootstrap or is refused with the reason, the lookup cap explained."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import qasync

from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.net.handles import ItemResult, PutResult
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet
from dhtviewer.ui.controller import CUSTOM, Controller, StartOptions
from tests.support.controller_kit import Recorder, tn_options
from tests.support.qt_async import run, until

pytestmark = pytest.mark.qt


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


def test_get_and_put_lookups_take_app_wide_ids_across_stop_and_start(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    """BEP 44 lookups draw from the one operation-id counter as peer lookups do: no id (of any
    family's part) comes twice in the app's life, so the Items panel and the lookup history
    never mix a new get or put with an older one."""
    started: list[int] = []
    items: list[Any] = []
    ctl.lookup_started.connect(lambda lid, _kind, _t: started.append(lid))
    ctl.item_finished.connect(items.append)
    parts: list[int] = []

    async def one_run(put_first: bool) -> None:
        await ctl.start(tn_options(16))
        await until(lambda: ctl.state == "ready")
        before = len(items)
        handle = (ctl.put_item(PutRequest(b"ids", seed=bytes(range(32))))
                  if put_first else ctl.find_peers(b"\x31" * 20))
        assert handle is not None
        parts.extend(handle.lookup_ids)
        get = ctl.get_item(PutRequest(b"ids", seed=bytes(range(32))).target)
        assert get is not None
        parts.extend(get.lookup_ids)
        await until(lambda: len(items) >= before + 1 + put_first, what="the get")
        await ctl.stop()

    run(loop, one_run(True))
    run(loop, one_run(False))
    assert len(started) == 4 and started == sorted(started)
    assert len(parts) == len(set(parts)), "an operation id came twice"
    # the second session's ids start after every id of the first
    assert min(parts[len(parts) // 2:]) > max(parts[:len(parts) // 2])


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


def test_a_lookup_asked_for_with_an_empty_table_waits_for_the_bootstrap(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    # Asked while no node is known, a lookup would have nobody to ask and "finish" at once
    # having queried no one: it waits for the bootstrap and says so, then starts.
    rec = Recorder(ctl)
    deferred: list[tuple[str, object]] = []
    started: list[tuple[int, str, object]] = []
    finished: list[Any] = []
    ctl.lookup_deferred.connect(lambda text, target: deferred.append((text, target)))
    ctl.lookup_started.connect(lambda *args: started.append(args))
    ctl.lookup_finished.connect(finished.append)
    target = b"\x5a" * 20
    net = LocalTestnet(8, "127.0.60.200", port=0, seed=3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent, BackgroundTestnet(net):
        silent.bind(("127.0.60.251", 0))
        where = f"127.0.60.251:{silent.getsockname()[1]}"

        async def scenario() -> None:
            await ctl.start(
                StartOptions(mode=CUSTOM, custom=(where,), bind_host="127.0.0.1", port=0)
            )
            assert ctl.state == "bootstrapping"
            assert ctl.find_peers(target) is None
            assert ctl.deferred_lookup is not None and not started
            await asyncio.sleep(0.5)  # ticks go by: still nobody to ask, still waiting
            assert ctl.deferred_lookup is not None and not started
            ctl.rebootstrap([f"{ip}:{port}" for ip, port in net.bootstrap_addrs])
            await until(lambda: started, what="the lookup to start")
            await until(lambda: finished, what="the lookup to finish")

        run(loop, scenario())
    assert deferred and "Waiting for the bootstrap" in deferred[0][0]
    assert deferred[0][1] == target
    assert started[0][1:] == ("get_peers", target) and ctl.deferred_lookup is None
    assert finished[0].queried > 0
    assert not rec.errors


def test_a_lookup_with_an_empty_table_and_no_bootstrap_is_refused_with_the_reason(
    loop: qasync.QEventLoop, ctl: Controller
) -> None:
    rec = Recorder(ctl)
    refused: list[str] = []
    ctl.lookup_refused.connect(refused.append)

    async def scenario() -> None:
        await ctl.start(StartOptions(mode=CUSTOM, custom=(), bind_host="127.0.0.1", port=0))
        assert ctl.state == "idle"
        assert ctl.find_node(b"\x01" * 20) is None
        families.extend(ctl.session.families if ctl.session is not None else ())

    families: list[int] = []
    run(loop, scenario())
    assert ctl.deferred_lookup is None and ctl.current_lookup is None
    empty = ("the routing tables (IPv4 and IPv6) are empty" if families == [4, 6]
             else "the routing table is empty")  # every family's: nobody to ask in either DHT
    assert refused and f"{empty} and the node is not bootstrapping" in refused[0]
    assert refused == rec.errors


def test_a_waiting_lookup_can_be_cancelled(loop: qasync.QEventLoop, ctl: Controller) -> None:
    deferred: list[tuple[str, object]] = []
    ctl.lookup_deferred.connect(lambda text, target: deferred.append((text, target)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.60.252", 0))
        where = f"127.0.60.252:{silent.getsockname()[1]}"

        async def scenario() -> None:
            await ctl.start(
                StartOptions(mode=CUSTOM, custom=(where,), bind_host="127.0.0.1", port=0)
            )
            assert ctl.find_peers(b"\x02" * 20) is None and ctl.deferred_lookup is not None
            assert ctl.cancel_lookup() is True
            # stopped on the loop: the IPv6 node, waiting for contacts, must not wake after it
            await ctl.shutdown()

        run(loop, scenario())
    assert ctl.deferred_lookup is None and deferred[-1] == ("", None)


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
