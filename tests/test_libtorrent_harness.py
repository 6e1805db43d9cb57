"""The libtorrent loopback testnet harness works, so interop tests can trust it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

pytest.importorskip("libtorrent", reason="interop tests need libtorrent (the 'test' extra)")

from tests.support.libtorrent_net import LibtorrentNet, loopback_addresses

pytestmark = pytest.mark.interop

NODES = 20


@pytest.fixture(scope="module")
def net() -> Iterator[LibtorrentNet]:
    with LibtorrentNet(n=NODES, base="127.0.50.1") as network:
        yield network


def test_loopback_addresses_are_distinct_and_skip_network_and_broadcast() -> None:
    ips = loopback_addresses("127.0.50.250", 8)
    assert ips == [
        "127.0.50.250", "127.0.50.251", "127.0.50.252", "127.0.50.253", "127.0.50.254",
        "127.0.51.1", "127.0.51.2", "127.0.51.3",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        loopback_addresses("10.0.0.1", 1)


def test_network_forms_quickly_on_distinct_addresses(net: LibtorrentNet) -> None:
    assert net.setup_seconds is not None and net.setup_seconds < 15
    assert len({ip for ip, _port in net.addrs}) == NODES
    sizes = net.routing_table_sizes()
    assert sum(size >= 3 for size in sizes) >= 0.9 * NODES, sizes


def test_announced_peer_is_found_by_another_node(net: LibtorrentNet) -> None:
    info_hash = bytes.fromhex("5a" * 20)
    assert net.announce(2, info_hash, 6881) >= 1
    started = time.monotonic()
    peers = net.get_peers(NODES - 1, info_hash, timeout=5.0)
    assert peers == [(net.addrs[2][0], 6881)]
    assert time.monotonic() - started < 5.0


def test_unknown_info_hash_yields_no_peers(net: LibtorrentNet) -> None:
    assert net.get_peers(1, bytes.fromhex("a5" * 20), timeout=1.0) == []


def test_direct_ping_returns_the_nodes_reply(net: LibtorrentNet) -> None:
    reply = net.direct_ping(net.addrs[4])
    assert reply[b"y"] == b"r"
    assert len(reply[b"r"][b"id"]) == 20
    # BEP 42: libtorrent tells us the address it saw us at (the harness socket on 127.0.0.1).
    assert reply[b"ip"][:4] == bytes([127, 0, 0, 1])


def test_live_nodes_lists_routing_table_entries(net: LibtorrentNet) -> None:
    entries = net.live_nodes(6)
    harness_ips = {ip for ip, _port in net.addrs}
    assert len(entries) >= 3
    assert all(len(node_id) == 20 and addr[0] in harness_ips for node_id, addr in entries)


def test_stopped_node_goes_silent(net: LibtorrentNet) -> None:
    # Runs last in this module: it changes the shared network.
    victim = NODES - 2
    net.direct_ping(net.addrs[victim])
    net.stop([victim])
    with pytest.raises(TimeoutError):
        net.direct_ping(net.addrs[victim], timeout=0.5)
