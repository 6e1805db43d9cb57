"""Real clients join the simulated Mainline over UDP: two libtorrent nodes find a seeded swarm
(and each other's announce), our own lookup reaches the true closest nodes (recall 8/8 on the
friendly profile, checked against ``/closest``), with the subnet rule on loopback it resists
the eclipse scenario, and our BEP 44 puts and gets and BEP 33 scrapes work on its nodes."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.session import DhtSession
from dhtviewer.simnet.swarms import seeded_info_hashes
from tests.support.simnet_proc import SimnetProcess

OUR_IP = "127.0.133.1"
LT_BASE = "127.0.132.1"


@pytest.fixture(scope="module")
def friendly() -> SimnetProcess:
    with SimnetProcess(["--nodes", "20000", "--profile", "friendly", "--seed", "21"]) as sn:
        yield sn


def test_our_lookups_reach_the_true_closest_nodes(friendly: SimnetProcess) -> None:
    swarm = friendly.get("/swarms?limit=1")["swarms"][0]
    targets = [bytes.fromhex(swarm["info_hash"])] + [random.Random(i).randbytes(20)
                                                     for i in range(3)]

    async def lookups() -> list[tuple[bytes, list[str], int]]:
        session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(1))
        await session.start(bootstrap=friendly.routers, timeout=20)
        try:
            out = []
            for target in targets:
                result = await session.find_peers(target, timeout=20)
                out.append((target, [i.hex() for i, _ in result.closest], len(result.peers)))
            return out
        finally:
            await session.stop()

    results = asyncio.run(asyncio.wait_for(lookups(), 90))
    for target, closest, _peers in results:
        truth = [n["id"] for n in friendly.get(f"/closest?target={target.hex()}&k=8")["nodes"]]
        assert closest == truth  # recall 8/8, in order
    # The seeded swarm was found: each storer hands out a window of 50 of its 400 peers.
    assert 50 <= results[0][2] <= swarm["peers"]
    stats = friendly.get("/stats")
    assert stats["members"] >= 1 and stats["counters"]["malformed"] == 0


@pytest.mark.interop
@pytest.mark.timeout(120)
def test_two_libtorrent_nodes_join_and_find_a_seeded_swarm(friendly: SimnetProcess) -> None:
    pytest.importorskip("libtorrent", reason="needs libtorrent (the 'test' extra)")
    from tests.support.libtorrent_net import LibtorrentNet

    swarm = friendly.get("/swarms?limit=3")["swarms"][2]
    info_hash = bytes.fromhex(swarm["info_hash"])
    truth = set(friendly.get(f"/swarm?info_hash={swarm['info_hash']}")["peers"])
    with LibtorrentNet(n=2, base=LT_BASE, seed=3) as net:
        for i in range(2):
            for router in friendly.routers:
                net.add_node(i, router)
        # Wait for the routers' ping replies: a lookup from an empty table ends at once.
        deadline = time.monotonic() + 20
        while min(net.routing_table_sizes()) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(2):
            peers = net.get_peers(i, info_hash, timeout=30)
            assert peers, f"libtorrent node {i} found no peer"
            assert {f"{h}:{p}" for h, p in peers} <= truth
        # What one libtorrent node announces, the other finds through the simulated nodes.
        mine = random.Random(7).randbytes(20)
        net.announce(0, mine, 51413, timeout=10)
        assert friendly.get(f"/swarm?info_hash={mine.hex()}")["peers"] == [f"{LT_BASE}:51413"]
        # Replies of the earlier lookups may still be buffered by the harness: drop them.
        time.sleep(0.5)
        net.alerts(1)
        found = net.get_peers(1, mine, timeout=30)
        assert (LT_BASE, 51413) in found
        members = {m["addr"].rsplit(":", 1)[0] for m in friendly.get("/members")["members"]}
        assert set(net.ips) <= members


def test_our_puts_gets_and_scrapes_on_the_simulated_nodes(friendly: SimnetProcess) -> None:
    """BEP 44 and BEP 33 over UDP: an immutable and a salted mutable put land on simulated
    nodes that speak BEP 44, a get finds them, and a scrape of a seeded swarm estimates its
    true seeds and downloaders (``/swarm``) within the filters' error."""
    from dhtviewer.dht.item_lookup import PutRequest

    swarm = friendly.get("/swarms?limit=1")["swarms"][0]
    info_hash = bytes.fromhex(swarm["info_hash"])
    truth = friendly.get(f"/swarm?info_hash={swarm['info_hash']}")

    async def run() -> tuple[object, ...]:
        session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(2))
        await session.start(bootstrap=friendly.routers, timeout=20)
        try:
            immutable = await session.put_item(PutRequest(b"simnet item"), timeout=20)
            mutable = await session.put_item(
                PutRequest(b"simnet mutable", seed=bytes(range(32)), salt=b"s", seq=3),
                timeout=20)
            got_i = await session.get_item(immutable.target, timeout=20)
            got_m = await session.get_item(mutable.target, b"s", timeout=20)
            scrape = await session.scrape(info_hash, timeout=20)
            return immutable, mutable, got_i, got_m, scrape
        finally:
            await session.stop()

    immutable, mutable, got_i, got_m, scrape = asyncio.run(asyncio.wait_for(run(), 90))
    assert len(immutable.stored_at) >= 6 and not [f for f in immutable.failed
                                                    if "timeout" in f[1]]
    assert len(mutable.stored_at) >= 6
    assert got_i.value == b"11:simnet item" and got_i.holders
    assert got_m.value == b"14:simnet mutable" and got_m.seq == 3
    assert scrape.nodes >= 1
    # 2,048-bit filters of a few hundred addresses: within a few percent, plus rounding
    assert abs(scrape.seeds - truth["seeds"]) <= 0.1 * truth["seeds"] + 2
    assert abs(scrape.downloaders - truth["downloaders"]) <= 0.1 * truth["downloaders"] + 2
    stats = friendly.get("/stats")
    assert stats["items"]["stored"] >= 12 and stats["scrapes"] >= 1


@pytest.mark.timeout(180)
def test_a_restricted_client_resists_an_eclipse() -> None:
    # Sixteen Sybils of one /24, with ids sharing 48 bits with the info-hash, surround it: every
    # honest node near it lists them, they refer only to each other and return no peers.
    # A client that applies the subnet rule to loopback too (as one joined to the simulated
    # Mainline does) keeps at most one of them among its closest nodes and still reaches the
    # honest nodes that store the swarm; one that exempts loopback is eclipsed.
    nodes, seed = 20_000, 31
    target = seeded_info_hashes(seed, 3)[2].tobytes()  # the network's third swarm
    args = ["--nodes", str(nodes), "--profile", "friendly", "--seed", str(seed),
            "--scenario", f"eclipse:{target.hex()}", "--member-rate", "0"]
    with SimnetProcess(args) as sn:
        truth = sn.get(f"/closest?target={target.hex()}&k=32")["nodes"]
        sybils = {n["id"] for n in truth if n["sybil"]}
        honest = [n["id"] for n in truth if not n["sybil"]][:8]
        assert len(sybils) == 16 and all(n["sybil"] for n in truth[:8])
        true_peers = set(sn.get(f"/swarm?info_hash={target.hex()}")["peers"])

        async def lookup(restricted: bool, ip: str) -> tuple[list[str], set[str]]:
            settings = DhtSettings(restrict_local_subnets=restricted)
            session = DhtSession(settings, bind=(ip, 0), rng=random.Random(5))
            await session.start(bootstrap=sn.routers, timeout=20)
            try:
                result = await session.find_peers(target, timeout=30)
                return ([i.hex() for i, _ in result.closest],
                        {f"{h}:{p}" for h, p in result.peers})
            finally:
                await session.stop()

        closest, peers = asyncio.run(asyncio.wait_for(lookup(True, "127.0.135.1"), 120))
        eclipsed, _ = asyncio.run(asyncio.wait_for(lookup(False, "127.0.135.2"), 120))
        # Restricted: one Sybil at most, most of the honest closest (the rest hide behind the
        # Sybils in every honest answer), and the swarm's peers. Seen: 1 Sybil, 5 of 8, 113
        # peers. Unrestricted: 8 Sybils, no honest node (peers only if an honest storer was
        # asked on the way).
        assert sum(1 for i in closest if i in sybils) <= 1
        found_honest = len(set(closest) & set(honest))
        assert found_honest >= 4
        assert peers and peers <= true_peers
        assert sum(1 for i in eclipsed if i in sybils) >= 6
        assert len(set(eclipsed) & set(honest)) < found_honest
