"""DhtSession against a real 20-node LocalTestnet on 127.0.11.x (in a background thread, over
real UDP): bootstrap to ready, lookups that find the announced peers, announce seen by another
session, ping, persistence across stop/start, bootstrap retries and clean failures."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.families import AddressFamilies
from dhtviewer.dht.messages import FindNodeQuery, NodeInfo, Response
from dhtviewer.dht.node_id import bep42_valid
from dhtviewer.dht.routing_table import RoutingTable
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net import stack as stack_mod
from dhtviewer.net.session import (
    BootstrapError,
    DhtSession,
    PortInUseError,
    SessionClosedError,
    SessionEvent,
    StateChanged,
    private_network,
)
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet
from tests.support.raw_peer import RawPeer

T = TypeVar("T")
DEAD = ("127.0.11.250", 9)  # nothing listens there
# Read-only test sessions (BEP 43) stay out of the testnet's routing tables, so a stopped one
# does not leave a dead contact that slows later lookups; short timeouts bound the cost anyway.
QUICK = DhtSettings(read_only=True, short_timeout=0.2, hard_timeout=1.0)
FAST = replace(QUICK, short_timeout=0.1, hard_timeout=0.3)


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


@pytest.fixture(scope="module")
def testnet() -> Iterator[LocalTestnet]:
    with BackgroundTestnet(LocalTestnet(20, "127.0.11.1", port=0, seed=11)) as net:
        yield net


def state(s: DhtSession) -> str:
    """The state as plain text (mypy would narrow the Literal across awaits otherwise)."""
    return s.state


def boot(net: LocalTestnet) -> list[str | tuple[str, int]]:
    return list(net.bootstrap_addrs)


def test_start_reaches_ready_with_a_local_network_allowed(testnet: LocalTestnet) -> None:
    async def go() -> None:
        s = DhtSession(QUICK, bind=("127.0.11.201", 0))
        seen: list[SessionEvent] = []
        s.subscribe(seen.append)
        assert state(s) == "stopped"
        await s.start(boot(testnet), timeout=10)
        try:
            assert state(s) == "ready"
            addr = s.local_address
            assert addr is not None and addr[0] == "127.0.11.201" and addr[1] > 0
            assert s.node is not None and s.node.settings.allow_local  # switched on for us
            assert s.stats()["good_nodes"] >= 8
            assert sum(len(b.nodes) for b in s.routing_snapshot().buckets) >= 8
            changes = [(e.old, e.new) for e in seen
                       if isinstance(e, StateChanged) and e.old != e.new]
            assert changes[:2] == [("stopped", "bootstrapping"), ("bootstrapping", "ready")]
            assert any(isinstance(e, ev.NodeAdded) for e in seen)  # core events too
        finally:
            await s.stop()
        assert state(s) == "stopped" and s.local_address is None

    run(go)


def test_find_peers_finds_every_announced_peer(testnet: LocalTestnet) -> None:
    assert testnet.announced and all(testnet.announced.values())

    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.202", 0)) as s:
            await s.start(boot(testnet), timeout=10)
            for info_hash, peers in testnet.announced.items():
                result = await s.find_peers(info_hash, timeout=10)
                assert set(peers) <= set(result.peers)
                assert not result.cancelled
                assert result.responded >= 1 and result.queried >= result.responded
                assert len(result.closest) >= 1 and result.info_hash == info_hash

    run(go)


def test_lookup_events_can_be_followed_live(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))

    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.203", 0)) as s:
            await s.start(boot(testnet), timeout=10)
            handle = s.start_find_peers(info_hash)
            kinds = []
            found: set[tuple[str, int]] = set()
            async for event in handle:
                kinds.append(type(event).__name__)
                if isinstance(event, ev.PeersFound):
                    found.update(event.peers)
            assert kinds[0] == "LookupStarted" and kinds[-1] == "LookupFinished"
            assert "LookupQuerySent" in kinds and "LookupResponse" in kinds
            result = await handle.result()
            assert found == set(result.peers) and set(peers) <= found
            # The generator form yields the same story.
            names = [type(e).__name__ async for e in s.lookup_progress(info_hash)]
            assert names[0] == "LookupStarted" and names[-1] == "LookupFinished"

    run(go)


def test_announce_is_found_by_another_session(testnet: LocalTestnet) -> None:
    info_hash = bytes.fromhex("aa" * 20)

    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.204", 0)) as a, DhtSession(
            QUICK, bind=("127.0.11.205", 0)
        ) as b:
            await asyncio.gather(a.start(boot(testnet), timeout=10),
                                 b.start(boot(testnet), timeout=10))
            announced = await a.announce(info_hash, 45678, timeout=10)
            assert len(announced.stored_at) >= 1
            assert set(announced.stored_at) <= set(testnet.addrs)
            implied = await a.announce(info_hash, 0, implied_port=True, timeout=10)
            assert implied.stored_at
            result = await b.find_peers(info_hash, timeout=10)
            a_addr = a.local_address
            assert a_addr is not None
            assert ("127.0.11.204", 45678) in result.peers
            assert a_addr in result.peers  # implied_port: our UDP port

    run(go)


def test_ping(testnet: LocalTestnet) -> None:
    async def go() -> None:
        async with DhtSession(FAST, bind=("127.0.11.206", 0)) as s:
            await s.start([], wait=False)
            assert state(s) == "idle"
            target = testnet.addrs[4]
            result = await s.ping(target, timeout=5)
            assert result.id == testnet.nodes[4].node_id
            assert result.addr == target and 0 < result.rtt < 5
            assert result.version is not None and len(result.version) == 4
            result = await s.ping(f"{target[0]}:{target[1]}")  # text is resolved too
            assert result.id == testnet.nodes[4].node_id
            with pytest.raises(TimeoutError, match=r"no answer from 127\.0\.11\.250:9"):
                await s.ping(DEAD, timeout=0.3)

    run(go)


def test_a_full_session_answers_queries() -> None:
    async def go() -> None:
        async with DhtSession(DhtSettings(), bind=("127.0.11.214", 0)) as server, DhtSession(
            FAST, bind=("127.0.11.215", 0)
        ) as client:
            await server.start([], wait=False)
            await client.start([], wait=False)
            addr = server.local_address
            assert addr is not None
            assert (await client.ping(addr, timeout=5)).id == server.node_id
            # ...while a read-only one stays silent (BEP 43).
            client_addr = client.local_address
            assert client_addr is not None
            with pytest.raises(TimeoutError):
                await server.ping(client_addr, timeout=0.3)

    run(go)


def test_packet_events_are_built_only_while_a_subscriber_wants_them() -> None:
    async def go() -> None:
        async with DhtSession(DhtSettings(), bind=("127.0.11.216", 0)) as server, DhtSession(
            FAST, bind=("127.0.11.217", 0)
        ) as client:
            quiet: list[SessionEvent] = []
            loud: list[SessionEvent] = []
            server.subscribe(quiet.append, traffic=False)
            await server.start([], wait=False)
            await client.start([], wait=False)
            node, addr = server.node, server.local_address
            assert node is not None and addr is not None
            assert not node.traffic_events  # nobody watches packets: none are built
            await client.ping(addr, timeout=5)
            unsubscribe = server.subscribe(loud.append)
            assert node.traffic_events
            await client.ping(addr, timeout=5)
            unsubscribe()
            assert not node.traffic_events
            await client.ping(addr, timeout=5)
            traffic = (ev.MessageReceived, ev.MessageSent)
            assert not any(isinstance(e, traffic) for e in quiet)
            # the one ping while `loud` listened: the query in, the reply out
            assert [type(e) for e in loud if isinstance(e, traffic)][:2] == [
                ev.MessageReceived, ev.MessageSent
            ]
            assert sum(isinstance(e, ev.MessageReceived) and e.kind == "q" for e in loud) == 1
            assert any(isinstance(e, StateChanged) for e in quiet)  # the rest still arrives

    run(go)


def test_stop_start_keeps_identity_and_contacts(testnet: LocalTestnet, tmp_path: Path) -> None:
    path = tmp_path / "state.json"

    async def go() -> None:
        s = DhtSession(QUICK, bind=("127.0.11.207", 0), state_path=path)
        node_id = s.node_id
        await s.start(boot(testnet), timeout=10)
        await s.stop()
        saved = json.loads(path.read_text())["families"]["4"]  # the testnet is IPv4 only
        assert saved["node_id"] == node_id.hex() and len(saved["nodes"]) >= 8
        # The same object restarts; a new one restores from the file, without any bootstrap
        # address: the saved contacts are enough.
        await s.start(boot(testnet), timeout=10)
        assert s.node_id == node_id and state(s) == "ready"
        await s.stop()
        fresh = DhtSession(QUICK, bind=("127.0.11.207", 0), state_path=path)
        assert fresh.node_id == node_id and fresh.load_warning is None
        await fresh.start([], timeout=10)
        assert fresh.state == "ready"
        await fresh.stop()

    run(go)


def test_lookup_ids_never_repeat_across_restarts_and_sessions(testnet: LocalTestnet) -> None:
    async def go() -> list[int]:
        ids: list[int] = []
        s = DhtSession(QUICK, bind=("127.0.11.209", 0))
        for _ in range(2):  # the same session restarted
            await s.start(boot(testnet), timeout=10)
            handle = s.start_find_node(bytes(20))
            await handle.result(10)
            ids.append(handle.lookup_id)
            await s.stop()
        # a new session continuing where the first stopped (the desktop app's Stop/Start)
        nxt = DhtSession(QUICK, bind=("127.0.11.209", 0), first_op_id=s.next_op_id)
        await nxt.start(boot(testnet), timeout=10)
        handle = nxt.start_find_node(bytes(20))
        await handle.result(10)
        ids.append(handle.lookup_id)
        await nxt.stop()
        return ids

    ids = run(go)
    assert len(set(ids)) == 3 and ids == sorted(ids)


def test_busy_port_raises_port_in_use(testnet: LocalTestnet) -> None:
    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.208", 0)) as first:
            await first.start([], wait=False)
            addr = first.local_address
            assert addr is not None
            second = DhtSession(QUICK, bind=addr)
            with pytest.raises(PortInUseError, match=f"UDP port {addr[1]} on 127.0.11.208"):
                await second.start([], wait=False)
            assert second.state == "stopped"

    run(go)


def test_bootstrap_retries_with_backoff_then_recovers(
    testnet: LocalTestnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_mod, "RETRY_FIRST", 0.05)

    async def go() -> None:
        async with DhtSession(FAST, bind=("127.0.11.209", 0)) as s:
            details: list[str] = []
            s.subscribe(lambda e: details.append(e.detail) if isinstance(e, StateChanged) else None)
            with pytest.raises(TimeoutError, match="bootstrap did not finish within 2 s"):
                await s.start([DEAD], timeout=2.0)
            assert state(s) == "bootstrapping"
            retries = [d for d in details if "no bootstrap node answered" in d]
            assert len(retries) >= 2  # it kept trying
            assert "retrying in 0.05 s" in retries[0] and "retrying in 0.1 s" in retries[1]
            await s.bootstrap(boot(testnet), wait=True, timeout=10)
            assert state(s) == "ready"

    run(go)


def test_lookup_timeout_returns_the_partial_result_cancelled() -> None:
    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.210", 0)) as s:
            await s.start([DEAD], wait=False)
            result = await s.find_peers(b"\x01" * 20, timeout=0.2)
            assert result.cancelled and result.peers == ()
            assert s.node is not None and not s.node.lookups.get(result.lookup_id)

    run(go)


def test_stop_fails_what_still_waits() -> None:
    async def go() -> None:
        s = DhtSession(QUICK, bind=("127.0.11.211", 0))
        await s.start([], wait=False)
        ping = asyncio.create_task(s.ping(DEAD, timeout=10))
        await asyncio.sleep(0.05)
        await s.stop()
        with pytest.raises(SessionClosedError):
            await ping
        await s.stop()  # twice is fine

    run(go)


def test_operations_need_a_started_session() -> None:
    async def go() -> None:
        s = DhtSession(QUICK, bind=("127.0.11.212", 0))
        with pytest.raises(RuntimeError, match="not running"):
            await s.find_peers(b"\x01" * 20)
        with pytest.raises(ValueError, match="20 bytes"):
            DhtSession(node_id=b"short")

    run(go)


def test_unresolvable_bootstrap_list_is_an_error_when_waiting() -> None:
    async def go() -> None:
        s = DhtSession(QUICK, bind=("127.0.11.213", 0))
        with pytest.raises(BootstrapError, match="invalid host name 'bad host'"):
            await s.start(["bad host:1"])
        assert state(s) == "stopped"

    run(go)


@pytest.mark.parametrize(
    ("bind_host", "contacts", "private"),
    [
        ("127.0.0.1", [], True),
        ("0.0.0.0", [("127.0.1.1", 6881), ("10.0.0.2", 6881)], True),
        ("0.0.0.0", [("127.0.1.1", 6881), ("67.215.246.10", 6881)], False),
        ("0.0.0.0", [], False),
        ("::", [("::1", 6881)], True),
    ],
)
def test_local_addresses_are_allowed_only_on_a_private_network(
    bind_host: str, contacts: list[tuple[str, int]], private: bool
) -> None:
    assert private_network(bind_host, contacts) is private


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_sessions_bootstrap_and_announce_over_loopback() -> None:
    async def go() -> None:
        only6 = DhtSettings(address_families=AddressFamilies.IPV6)
        async with DhtSession(only6, bind=("::1", 0)) as a, DhtSession(
            replace(FAST, address_families=AddressFamilies.IPV6), bind=("::1", 0)
        ) as b:
            await a.start([], wait=False)
            a_addr = a.local_address
            assert a_addr is not None and a_addr[0] == "::1" and a.families == (6,)
            await b.start([f"[::1]:{a_addr[1]}"], timeout=10)
            assert state(b) == "ready" and b.families == (6,)
            assert (await b.ping(a_addr, timeout=5)).id == a.node_id
            stored = await b.announce(b"\x01" * 20, 1234, timeout=10)
            assert stored.stored_at == (a_addr,)

    run(go)


# --- BEP 44, 33, 51 through the session -------------------------------------------------------
def test_put_then_get_items_between_two_sessions(testnet: LocalTestnet) -> None:
    from dhtviewer.dht.item_lookup import PutRequest
    from dhtviewer.dht.items import Item

    seed = bytes(range(32))

    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.210", 0)) as a, DhtSession(
            QUICK, bind=("127.0.11.211", 0)
        ) as b:
            await asyncio.gather(a.start(boot(testnet), timeout=10),
                                 b.start(boot(testnet), timeout=10))
            put = await a.put_item(PutRequest(b"hello"), timeout=10)
            assert len(put.stored_at) == 8 and put.failed == () and put.seq is None
            assert put.target == Item.immutable(b"hello").target
            got = await b.get_item(put.target, timeout=10)
            assert got.found and got.value == b"5:hello" and got.holders
            mutable = await a.put_item(PutRequest(b"v1", seed=seed, salt=b"s"), timeout=10)
            assert mutable.seq == 1 and len(mutable.stored_at) == 8
            newer = await b.put_item(PutRequest(b"v2", seed=seed, salt=b"s"), timeout=10)
            assert newer.seq == 2
            latest = await a.get_item(mutable.target, b"s", timeout=10)
            assert latest.value == b"2:v2" and latest.seq == 2 and latest.rejected == 0
            wrong = await a.get_item(mutable.target, b"pepper", timeout=10)
            assert not wrong.found and wrong.rejected >= 1
            # The testnet's nodes stored them (server side of our own code).
            missing = await b.get_item(b"\x99" * 20, timeout=10)
            assert not missing.found and missing.lookup.responded >= 1

    run(go)


def test_scrape_counts_the_announced_peers(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))

    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.212", 0)) as s:
            await s.start(boot(testnet), timeout=10)
            result = await s.scrape(info_hash, timeout=10)
            assert not result.cancelled and result.nodes >= 1
            assert set(peers) <= set(result.lookup.peers)
            distinct_ips = {ip for ip, _ in peers}
            assert round(result.seeds + result.downloaders) == len(distinct_ips)

    run(go)


def test_sample_and_crawl_the_testnet(testnet: LocalTestnet, tmp_path: Path) -> None:
    from dhtviewer.net.sample_store import SampleStore

    async def go() -> None:
        async with DhtSession(QUICK, bind=("127.0.11.213", 0)) as s:
            await s.start(boot(testnet), timeout=10)
            one = await s.sample(testnet.addrs[0], timeout=5)
            assert one.error is None and one.num is not None and one.interval is not None
            store = SampleStore(tmp_path / "samples.sqlite3")
            recorder = s.start_crawl(store, rate=50.0)
            deadline = asyncio.get_running_loop().time() + 10
            while recorder.figures().supporting < len(testnet.addrs):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            stopped = s.stop_crawl()
            assert stopped is recorder and s.crawl is None
            fig = recorder.figures()
            announced = set(testnet.announced)
            assert fig.distinct >= len(announced) and fig.replies >= len(testnet.addrs)
            assert announced <= set(store.info_hashes())
            assert store.totals().nodes_supporting >= len(testnet.addrs)
            store.close()

    run(go)


def test_a_new_bep42_id_is_saved_at_once_and_kept_across_restarts(tmp_path: Path) -> None:
    """Three responders (over real UDP) agree that our address is a public one our id does not
    match: the node takes a BEP 42 id for it, and the session writes it to the state file at
    once (not only at a clean stop) and restarts with it."""
    path = tmp_path / "state.json"
    public = "81.4.19.7"

    async def answer(sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        data, addr = await loop.sock_recvfrom(sock, 2048)
        query = krpc.decode(data)
        reply = Response(query.tid, bytes([sock.getsockname()[1] % 251]) * 20,
                         external_ip=(public, addr[1]))
        await loop.sock_sendto(sock, krpc.encode(reply), addr)

    async def go() -> None:
        socks = []
        for i in range(3):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.11.{230 + i}", 0))
            sock.setblocking(False)
            socks.append(sock)
        try:
            s = DhtSession(QUICK, bind=("127.0.11.229", 0), state_path=path)
            old = s.node_id
            await s.start([], wait=False)
            for sock in socks:
                responder = asyncio.create_task(answer(sock))
                await s.ping(sock.getsockname(), timeout=5)
                await responder
            new = s.node_id
            assert new != old and bep42_valid(new, public) and s.external_ip == public
            saved = json.loads(path.read_text())["families"]["4"]
            assert saved["node_id"] == new.hex()  # saved already
            await s.stop()
            await s.start([], wait=False)
            assert s.node_id == new
            await s.stop()
            assert DhtSession(QUICK, state_path=path).node_id == new
        finally:
            for sock in socks:
                sock.close()


# --- dual stack (BEP 32): an IPv4 and an IPv6 DHT side by side on loopback -----------------------
DUAL_SEED = 32


@pytest.fixture(scope="module")
def dual_testnet() -> Iterator[LocalTestnet]:
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    net = LocalTestnet(24, "127.0.14.1", port=0, seed=DUAL_SEED, ipv6=True)
    with BackgroundTestnet(net) as running:
        yield running


def _queried(events: list[SessionEvent], lookup_id: int) -> set[tuple[str, int]]:
    return {e.addr for e in events if isinstance(e, ev.LookupQuerySent)
            and e.lookup_id == lookup_id}


def test_dual_stack_session_runs_two_separate_dhts(dual_testnet: LocalTestnet) -> None:
    """Separate tables, one lookup per family merged for the user, announce in both, and
    state saved per family."""
    net = dual_testnet
    info_hash, peers = next(iter(net.announced.items()))
    assert {p[0] for p in peers} & {"::1"} and any(":" not in p[0] for p in peers)
    mine = bytes.fromhex("ab" * 20)

    async def go(path: Path) -> None:
        async with DhtSession(FAST, bind=("127.0.14.200", 0), state_path=path) as s, \
                DhtSession(QUICK, bind=("127.0.14.201", 0)) as other:
            seen: list[SessionEvent] = []
            s.subscribe(seen.append)
            await asyncio.gather(s.start(boot(net), timeout=10), other.start(boot(net), timeout=10))
            await asyncio.gather(s.wait_ready(10, every_family=True),
                                 other.wait_ready(10, every_family=True))
            assert s.families == (4, 6)
            local = s.local_addresses
            assert local[4][0] == "127.0.14.200" and local[6][0] == "::1"
            # Two tables, each of its own family only.
            t4, t6 = s.routing_snapshot(4), s.routing_snapshot(6)
            assert t4.family == 4 and t6.family == 6 and t4.size >= 8 and t6.size >= 8
            assert all(":" not in n.addr[0] for b in t4.buckets for n in b.nodes)
            assert all(n.addr[0] == "::1" for b in t6.buckets for n in b.nodes)
            stats = s.stats()
            assert stats["routing_nodes_v4"] == t4.size and stats["routing_nodes_v6"] == t6.size
            # One lookup per family; the user sees the peers of both.
            result = await s.find_peers(info_hash, timeout=10)
            assert set(peers) <= set(result.peers) and not result.cancelled
            four, six = result.family(4), result.family(6)
            assert four is not None and six is not None and four.lookup_id != six.lookup_id
            assert four.peers and all(":" not in p[0] for p in four.peers)
            assert six.peers and all(p[0] == "::1" for p in six.peers)
            assert all(":" not in a[0] for a in _queried(seen, four.lookup_id))
            assert all(a[0] == "::1" for a in _queried(seen, six.lookup_id))
            started = {e.lookup_id: e.family for e in seen if isinstance(e, ev.LookupStarted)}
            assert started[four.lookup_id] == 4 and started[six.lookup_id] == 6
            # Announce in both DHTs; another session finds us in both.
            announced = await s.announce(mine, 45000, timeout=10)
            by_family = announced.stored_by_family()
            assert by_family[4] >= 1 and by_family[6] >= 1
            found = await other.find_peers(mine, timeout=10)
            assert {("127.0.14.200", 45000), ("::1", 45000)} <= set(found.peers)
        saved = json.loads(path.read_text())["families"]
        assert set(saved) == {"4", "6"}
        assert all(":" not in n[1] for n in saved["4"]["nodes"]) and saved["4"]["nodes"]
        assert all(n[1] == "::1" for n in saved["6"]["nodes"]) and saved["6"]["nodes"]

    with tempfile.TemporaryDirectory() as tmp:
        run(lambda: go(Path(tmp) / "state.json"))


def test_dual_stack_answers_want_for_the_other_family(dual_testnet: LocalTestnet) -> None:
    """BEP 32 ``want``: an IPv4 query asking for n6 gets the IPv6 node's contacts."""
    net = dual_testnet
    target = bytes.fromhex("42" * 20)

    async def go() -> None:
        server_settings = replace(FAST, read_only=False)
        async with DhtSession(server_settings, bind=("127.0.14.202", 0)) as s:
            await s.start(boot(net), timeout=10)
            await s.wait_ready(10, every_family=True)
            addrs = s.local_addresses
            loop = asyncio.get_running_loop()
            with RawPeer(b"\x07" * 20, "127.0.14.203") as v4, RawPeer(b"\x08" * 20, "::1") as v6:
                only6 = await loop.run_in_executor(None, v4.ask, addrs[4], FindNodeQuery(
                    b"", b"\x07" * 20, target=target, want=frozenset({b"n6"})))
                both = await loop.run_in_executor(None, v6.ask, addrs[6], FindNodeQuery(
                    b"", b"\x08" * 20, target=target, want=frozenset({b"n4", b"n6"})))
                plain = await loop.run_in_executor(None, v4.ask, addrs[4], FindNodeQuery(
                    b"", b"\x07" * 20, target=target))
            table4, table6 = s.nodes[4].table, s.nodes[6].table

            def of(table: RoutingTable, nodes: tuple[NodeInfo, ...]) -> bool:
                # The tables keep growing while we ask: each contact was in it when asked.
                return len(nodes) == 8 and all(table.get(n.id) is not None for n in nodes)

            assert isinstance(only6, Response) and not only6.nodes and of(table6, only6.nodes6)
            assert all(n.addr[0] == "::1" for n in only6.nodes6)
            assert isinstance(both, Response) and of(table4, both.nodes)
            assert of(table6, both.nodes6)
            assert isinstance(plain, Response) and of(table4, plain.nodes) and not plain.nodes6

    run(go)


def test_ipv6_joins_through_contacts_learned_over_ipv4(dual_testnet: LocalTestnet) -> None:
    """Given only IPv4 bootstrap addresses, the IPv6 node still bootstraps: the IPv4 node asks
    for IPv6 contacts too while it bootstraps (``want`` n4+n6) and hands them over."""
    net = dual_testnet
    v4_only = [a for a in net.bootstrap_addrs if ":" not in a[0]]

    async def go() -> None:
        async with DhtSession(FAST, bind=("127.0.14.204", 0)) as s:
            sent: list[SessionEvent] = []
            s.subscribe(sent.append)
            await s.start(v4_only, timeout=10)
            await s.wait_ready(10, every_family=True)
            assert s.nodes[6].routing_size() >= 8
            leaked = [e for e in sent if isinstance(e, ev.OtherFamilyContacts)]
            assert any(e.family == 6 for e in leaked)  # IPv6 contacts learned over IPv4
            wants = [e for e in sent if isinstance(e, ev.MessageSent) and e.kind == "q"
                     and e.method == b"find_node" and ":" not in e.addr[0]]
            assert any(b"4:wantl2:n42:n6e" in e.data for e in wants)  # asked while bootstrapping
            # Once both tables are full, a lookup asks each family for its own contacts only.
            handle = s.start_find_node(bytes.fromhex("55" * 20))
            await handle.result(10)
            ids = set(handle.lookup_ids)
            mine = [e for e in sent if isinstance(e, ev.MessageSent) and e.kind == "q"
                    and e.method == b"find_node" and e.at >= handle.events[0].at
                    and e.addr in {q.addr for q in handle.events
                                   if isinstance(q, ev.LookupQuerySent) and q.lookup_id in ids}]
            assert mine and not any(b"4:want" in e.data for e in mine)

    run(go)


def test_dual_stack_families_share_lookup_ids_across_restarts_and_sessions(
    dual_testnet: LocalTestnet,
) -> None:
    """Both families' nodes draw from one id space, which continues after Stop/Start and into
    a session started after this one (the desktop app's Stop/Start): no id names two lookups."""
    net = dual_testnet

    async def go() -> tuple[list[int], int]:
        ids: list[int] = []
        s = DhtSession(QUICK, bind=("127.0.14.210", 0), first_op_id=100)
        assert s.next_op_id == 100
        for _ in range(2):
            await s.start(boot(net), timeout=10)
            await s.wait_ready(10, every_family=True)
            result = await s.find_node(bytes(20), timeout=10)
            four, six = result.family(4), result.family(6)
            assert four is not None and six is not None
            ids += [four.lookup_id, six.lookup_id]
            await s.stop()
        nxt = DhtSession(QUICK, bind=("127.0.14.210", 0), first_op_id=s.next_op_id)
        await nxt.start(boot(net), timeout=10)
        handle = nxt.start_find_node(bytes(20))
        await handle.result(10)
        ids += list(handle.lookup_ids)
        await nxt.stop()
        return ids, s.next_op_id

    ids, after_first = run(go)
    assert len(ids) == 6 and len(set(ids)) == 6  # one id per family's lookup, never reused
    assert min(ids) >= 100 and ids[-2:] == sorted(ids[-2:]) and min(ids[-2:]) >= after_first
