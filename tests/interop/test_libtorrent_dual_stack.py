"""Dual stack (BEP 32) against libtorrent 2.1 on loopback: sixteen libtorrent sessions, each
listening on its own 127.0.74.x and on ::1, so each runs an IPv4 and an IPv6 DHT node (as
libtorrent does on a dual-stack host), and our dual-stack ``DhtSession`` on 127.0.75.1 and ::1.

What a user relies on: told only IPv4 addresses, our IPv6 node still joins, because our IPv4
node asks libtorrent for IPv6 contacts while it bootstraps (``want`` n4+n6) and libtorrent
answers them from its IPv6 node; each of our tables holds its own family only; a lookup finds
the peers libtorrent announced in both DHTs; libtorrent finds what we announced in both.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.session import DhtSession

pytest.importorskip("libtorrent", reason="interop tests need libtorrent (the 'test' extra)")

from tests.interop.test_libtorrent_interop import (
    LoopThread,
    Ours,
    lt_announce,
    lt_get_peers,
    start_session,
)
from tests.support.libtorrent_net import LibtorrentNet

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(90),
    pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback"),
]

NODES = 16
LT_BASE = "127.0.74.1"
OUR_IP = "127.0.75.1"
# Every libtorrent IPv6 node is on ::1, so per-IP rules (and libtorrent's 5 packets/s ban of
# one address) would treat the whole IPv6 half, and us, as one host.
LT_SETTINGS = {"dht_block_ratelimit": 10_000}


@pytest.fixture(scope="module")
def net() -> Iterator[LibtorrentNet]:
    with LibtorrentNet(n=NODES, base=LT_BASE, seed=74, ipv6=True,
                       extra_settings=LT_SETTINGS) as network:
        yield network


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def ours(net: LibtorrentNet, loop: LoopThread) -> Iterator[Ours]:
    # Our rate limit would treat every libtorrent IPv6 node as one querier (all on ::1).
    session = DhtSession(DhtSettings(rate_limit=False), bind=(OUR_IP, 0),
                         rng=random.Random(75))
    # IPv4 addresses only: the IPv6 node has to learn its contacts through IPv4 (BEP 32).
    running = start_session(loop, session, net.addrs[:3])
    loop.run(lambda: session.wait_ready(30, every_family=True), timeout=35)
    yield running
    loop.run(session.stop)


def test_our_ipv6_node_joins_through_libtorrents_answers_to_want(
    ours: Ours, net: LibtorrentNet
) -> None:
    session = ours.session
    assert ours.loop.call(lambda: session.families) == (4, 6)
    snap4 = ours.loop.call(lambda: session.routing_snapshot(4))
    snap6 = ours.loop.call(lambda: session.routing_snapshot(6))
    entries4 = [n for b in snap4.buckets for n in b.nodes]
    entries6 = [n for b in snap6.buckets for n in b.nodes]
    assert len(entries4) >= DhtSettings().k and len(entries6) >= DhtSettings().k
    assert {n.addr for n in entries4} <= set(net.addrs)
    assert {n.addr for n in entries6} <= set(net.addrs6)  # libtorrent's IPv6 nodes only
    assert all(n.version is not None and n.version.startswith(b"LT") for n in entries6)
    # The IPv6 contacts came in libtorrent's answers to our IPv4 queries (nodes6).
    handed = ours.of_type(ev.OtherFamilyContacts)
    assert any(e.family == 6 and {n.addr for n in e.nodes} & set(net.addrs6) for e in handed)
    asked = [e for e in ours.of_type(ev.MessageSent)
             if e.kind == "q" and ":" not in e.addr[0] and b"4:wantl2:n42:n6e" in e.data]
    assert asked


def test_peers_libtorrent_announced_in_both_dhts_are_found_in_both(
    ours: Ours, net: LibtorrentNet
) -> None:
    info_hash = random.Random(1).randbytes(20)
    assert lt_announce(net, 5, info_hash, 6881) >= 1  # libtorrent announces in each DHT
    result = ours.loop.run(lambda: ours.session.find_peers(info_hash, timeout=10))
    four, six = result.family(4), result.family(6)
    assert four is not None and six is not None
    assert (net.addrs[5][0], 6881) in four.peers
    assert ("::1", 6881) in six.peers
    assert set(result.peers) == set(four.peers) | set(six.peers)


def test_libtorrent_finds_what_we_announced_in_both_dhts(
    ours: Ours, net: LibtorrentNet
) -> None:
    info_hash = random.Random(2).randbytes(20)
    result = ours.loop.run(lambda: ours.session.announce(info_hash, 45100, timeout=10))
    stored = result.stored_by_family()
    assert stored[4] >= 1 and stored[6] >= 1
    assert set(result.stored_at) <= set(net.addrs) | set(net.addrs6)
    # libtorrent's get_peers reports the first replies that carry peers (its two DHTs answer
    # at their own pace): ask again until both families' peers came in, a bounded number of
    # times.
    wanted = {(OUR_IP, 45100), ("::1", 45100)}
    seen: set[tuple[str, int]] = set()
    for _ in range(5):
        seen |= set(lt_get_peers(net, 9, info_hash))
        if wanted <= seen:
            break
    assert wanted <= seen
