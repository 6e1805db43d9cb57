"""LocalTestnet: address layout, a 50-node network that starts fast and is well connected, the
announced peers, determinism, and clean failure on a busy address (127.0.12.x - 127.0.13.x)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.testnet import (
    WAVE,
    BackgroundTestnet,
    LocalTestnet,
    Phase,
    TestnetProgress,
    loopback_range,
)
from dhtviewer.net.transport import PortInUseError

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


def test_addresses_step_the_last_octet_then_the_one_before() -> None:
    assert loopback_range("127.0.1.1", 3) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
    # .255 and .0 are skipped: they look like broadcast/network addresses to some tools.
    assert loopback_range("127.0.1.253", 4) == [
        "127.0.1.253",
        "127.0.1.254",
        "127.0.2.1",
        "127.0.2.2",
    ]


@pytest.mark.parametrize(
    ("base", "n", "message"),
    [
        ("10.0.0.1", 2, "must be in 127.0.0.0/8"),
        ("::1", 2, "must be IPv4"),
        ("localhost", 2, "must be IPv4"),
        ("127.255.255.250", 10, "run past the end of 127.0.0.0/8"),
    ],
)
def test_bad_address_ranges_are_refused(base: str, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loopback_range(base, n)
    with pytest.raises(ValueError, match=message):
        LocalTestnet(n, base)


def test_fifty_nodes_start_quickly_connected_and_seeded_with_peers() -> None:
    async def go() -> None:
        net = LocalTestnet(50, "127.0.12.1", port=0, seed=5)
        t0 = time.perf_counter()
        await net.start()
        elapsed = time.perf_counter() - t0
        try:
            # A couple of seconds on an idle machine; the bound leaves room for a loaded CI box.
            assert elapsed < 20, f"50-node testnet took {elapsed:.1f} s"
            assert len(net.addrs) == 50 and len({a[0] for a in net.addrs}) == 50
            assert net.addrs[0][0] == "127.0.12.1" and net.addrs[49][0] == "127.0.12.50"
            assert net.bootstrap_addrs == net.addrs[:3]
            k = net.settings.k
            assert min(node.routing_size() for node in net.nodes) >= k
            assert net.settings.allow_local
            assert len(net.announced) == 3
            for info_hash, peers in net.announced.items():
                assert len(info_hash) == 20
                assert 1 <= len(peers) <= 3
                assert all(ip in {a[0] for a in net.addrs} for ip, _ in peers)
            stats = net.stats()
            assert stats["nodes"] == 50
            # Each announce was stored by several of the nodes closest to its info-hash.
            assert stats["stored_peers"] >= sum(len(p) for p in net.announced.values())
        finally:
            await net.stop()
        await net.stop()  # idempotent
        assert net.addrs == []

    run(go)


def test_same_seed_same_network() -> None:
    async def ids(seed: int) -> tuple[list[bytes], list[bytes]]:
        net = LocalTestnet(6, "127.0.13.1", port=0, seed=seed)
        await net.start()
        try:
            return [n.node_id for n in net.nodes], sorted(net.announced)
        finally:
            await net.stop()

    first = run(lambda: ids(3))
    assert run(lambda: ids(3)) == first
    assert run(lambda: ids(4)) != first


def test_a_single_node_testnet_works() -> None:
    async def go() -> None:
        net = LocalTestnet(1, "127.0.13.20", port=0, seed=1, announced=2)
        await net.start()
        try:
            assert len(net.addrs) == 1 and net.bootstrap_addrs == net.addrs
            assert all(peers == [] for peers in net.announced.values())  # nobody to store it
        finally:
            await net.stop()

    run(go)


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_a_dual_stack_testnet_runs_two_separate_dhts() -> None:
    async def go() -> None:
        net = LocalTestnet(16, "127.0.13.60", port=0, seed=6, ipv6=True)
        await net.start()
        try:
            assert len(net.addrs6) == 16 and all(a[0] == "::1" for a in net.addrs6)
            assert len({a[1] for a in net.addrs6}) == 16  # one port per IPv6 node on ::1
            assert net.bootstrap_addrs == [*net.addrs[:3], *net.addrs6[:3]]
            for four, six in zip(net.nodes, net.nodes6, strict=True):
                assert four.node_id == six.node_id  # BEP 32: one id in both DHTs
                assert all(":" not in e.addr[0] for e in four.table) and len(four.table) >= 8
                assert all(e.addr[0] == "::1" for e in six.table) and len(six.table) >= 8
            for peers in net.announced.values():  # each announcer announced in both
                assert sum(p[0] == "::1" for p in peers) == sum(":" not in p[0] for p in peers)
                assert peers
        finally:
            await net.stop()

    run(go)


def test_busy_address_fails_cleanly_and_releases_what_it_bound() -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.13.33", 0))
    port = holder.getsockname()[1]

    async def go() -> None:
        net = LocalTestnet(5, "127.0.13.31", port=port)
        with pytest.raises(PortInUseError, match=f"UDP port {port} on 127.0.13.33"):
            await net.start()
        assert not net.started

    try:
        run(go)
        for ip in ("127.0.13.31", "127.0.13.32"):  # bound before the failure, now free again
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, port))
            s.close()
    finally:
        holder.close()


def test_background_testnet_serves_from_its_own_thread() -> None:
    with BackgroundTestnet(LocalTestnet(4, "127.0.13.40", port=0, seed=2)) as net:
        addr = net.addrs[0]
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(5)
        try:
            # A raw KRPC ping (bencoded) gets a response from the node in the other thread.
            client.sendto(b"d1:ad2:id20:" + b"x" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe", addr)
            data, _ = client.recvfrom(2048)
            assert b"1:y1:r" in data and b"1:t2:aa" in data
        finally:
            client.close()
    # Stopped on exit: the address can be bound again.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(addr)
    s.close()


def test_start_reports_its_progress_from_the_testnet_thread() -> None:
    reports: list[tuple[str, TestnetProgress]] = []
    net = LocalTestnet(20, "127.0.13.60", port=0, seed=3, announced=2, announcers=2,
                       on_progress=lambda p: reports.append((threading.current_thread().name, p)))
    with BackgroundTestnet(net):
        pass
    assert {name for name, _ in reports} == {"dhtviewer-testnet"}  # the caller hands it over
    progress = [p for _, p in reports]
    phases = [p.phase for p in progress]
    assert phases == sorted(phases, key=[Phase.BINDING, Phase.JOINING, Phase.ANNOUNCING].index)
    bound = [p.done for p in progress if p.phase == Phase.BINDING]
    assert bound == list(range(1, 21))
    joined = [p.done for p in progress if p.phase == Phase.JOINING]
    assert joined == sorted(joined) and joined[-1] == 20 and len(joined) >= 20 // WAVE
    announced = [(p.done, p.total) for p in progress if p.phase == Phase.ANNOUNCING]
    assert announced[0] == (0, 4) and announced[-1] == (4, 4)
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert progress[-1].describe() == "4 of 4 test announces done"


def test_a_failing_progress_callback_does_not_stop_the_testnet() -> None:
    def broken(_progress: TestnetProgress) -> None:
        raise RuntimeError("display gone")

    with BackgroundTestnet(LocalTestnet(5, "127.0.13.90", port=0, seed=1,
                                        on_progress=broken)) as net:
        assert len(net.addrs) == 5 and net.announced


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_a_dual_stack_start_counts_the_ipv6_nodes_in_its_progress() -> None:
    reports: list[TestnetProgress] = []
    net = LocalTestnet(10, "127.0.13.120", port=0, seed=4, announced=2, announcers=2,
                       ipv6=True, on_progress=reports.append)
    with BackgroundTestnet(net):
        pass
    assert net.node_count == 20
    bound = [(p.done, p.total) for p in reports if p.phase == Phase.BINDING]
    assert bound == [(i, 20) for i in range(1, 21)]  # each host's IPv4 and IPv6 socket
    joined = [(p.done, p.total) for p in reports if p.phase == Phase.JOINING]
    # both families join side by side: one count over both, to every node of each
    assert joined == sorted(joined) and joined[-1] == (20, 20)
    announced = [(p.done, p.total) for p in reports if p.phase == Phase.ANNOUNCING]
    assert announced[-1] == (8, 8)  # 2 info-hashes x 2 announcers x 2 DHTs
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
