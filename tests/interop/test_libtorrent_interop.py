"""Interoperability with libtorrent 2.1, the reference Mainline DHT implementation, on loopback.

Thirty real libtorrent DHT nodes (tests/support/libtorrent_net.py) on 127.0.70.x and our
``DhtSession`` on 127.0.71.1 form one network. Each test checks one thing a user relies on when
our node meets real clients: they accept us into their routing tables, we find the peers they
announce and they find ours, each side accepts the other's tokens, pings and BEP 51 samples work
both ways.

Our session runs on its own event loop in a background thread. The harness calls block (they
wait for libtorrent alerts), and our node must keep answering libtorrent while they do.

Alerts are read straight from a libtorrent session only when the harness has no helper for them,
and each alert is used right after ``pop_alerts`` returned it: the binding hands out pointers
that the next ``pop_alerts`` of that session frees.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.messages import (
    Addr,
    AnnouncePeerQuery,
    GetPeersQuery,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
)
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.session import DhtSession, SessionEvent

pytest.importorskip("libtorrent", reason="interop tests need libtorrent (the 'test' extra)")

import libtorrent as lt

from tests.support.libtorrent_net import LibtorrentNet

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

T = TypeVar("T")

NODES = 30
LT_BASE = "127.0.70.1"
OUR_IP = "127.0.71.1"
MUTE_IP = "127.0.71.2"  # a session that answers but never sends a query
SILENT_IP = "127.0.71.3"  # a socket that never answers (control)
READ_ONLY_IP = "127.0.71.4"  # a BEP 43 read-only session
RAW_IP = "127.0.71.9"  # raw KRPC from this test
BOOTSTRAP_FROM = 3
# Samples are recomputed on every request instead of once per 6 hours, so a sample taken
# after an announce reflects it.
LT_SETTINGS = {"dht_sample_infohashes_interval": 0}


class LoopThread:
    """An asyncio event loop in a daemon thread, driven from the (blocking) test thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="interop-loop", daemon=True
        )
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
        """Run the coroutine ``make()`` on the loop; raise TimeoutError after ``timeout``."""

        async def bounded() -> T:
            return await asyncio.wait_for(make(), timeout)

        future = asyncio.run_coroutine_threadsafe(bounded(), self.loop)
        return future.result(timeout + 5)

    def call(self, fn: Callable[[], T]) -> T:
        """Run the plain function ``fn`` on the loop thread (session state lives there)."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class Ours:
    """Our running session, the loop it lives on and every event it published."""

    loop: LoopThread
    session: DhtSession
    addr: Addr
    events: list[SessionEvent]

    def of_type(self, kind: type[T]) -> list[T]:
        return [e for e in list(self.events) if isinstance(e, kind)]

    def stats(self) -> dict[str, float]:
        return self.loop.call(self.session.stats)


def start_session(loop: LoopThread, session: DhtSession, bootstrap: list[Addr]) -> Ours:
    events: list[SessionEvent] = []
    # The callback runs on the loop thread; list.append is atomic, readers take a copy.
    loop.call(lambda: session.subscribe(events.append))
    loop.run(lambda: session.start(bootstrap=bootstrap, timeout=15))
    addr = loop.call(lambda: session.local_address)
    assert addr is not None
    return Ours(loop, session, addr, events)


@pytest.fixture(scope="module")
def net() -> Iterator[LibtorrentNet]:
    with LibtorrentNet(n=NODES, base=LT_BASE, seed=70, extra_settings=LT_SETTINGS) as network:
        yield network


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def ours(net: LibtorrentNet, loop: LoopThread) -> Iterator[Ours]:
    session = DhtSession(bind=(OUR_IP, 0), rng=random.Random(71))
    running = start_session(loop, session, net.addrs[:BOOTSTRAP_FROM])
    yield running
    loop.run(session.stop)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Info-hashes differ per test (seeded by its name), so tests never see each other's peers."""
    return random.Random(request.node.name)


def index_of(net: LibtorrentNet, addr: Addr) -> int:
    return net.addrs.index(addr)


def raw_exchange(
    sock: socket.socket, queries: dict[bytes, tuple[bytes, Addr]], timeout: float = 3.0
) -> dict[bytes, bytes]:
    """Send each ``tid: (datagram, addr)`` and collect the reply datagrams by tid (bounded)."""
    for data, addr in queries.values():
        sock.sendto(data, addr)
    expected = {tid: addr for tid, (_data, addr) in queries.items()}
    replies: dict[bytes, bytes] = {}
    deadline = time.monotonic() + timeout
    while len(replies) < len(queries) and (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data, source = sock.recvfrom(65536)
        except TimeoutError:
            break
        try:
            tid = krpc.decode(data).tid
        except krpc.KrpcError:
            continue
        if expected.get(tid) == source:
            replies[tid] = data
    return replies


@pytest.fixture
def raw_sock() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((RAW_IP, 0))
    yield sock
    sock.close()


def is_loopback(addr: Addr) -> bool:
    return ipaddress.ip_address(addr[0]).is_loopback and 0 < addr[1] < 65536


def wait_for(check: Callable[[], T | None], timeout: float, step: float = 0.05) -> T | None:
    """Poll ``check`` until it returns something other than None, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def forget_alerts(net: LibtorrentNet) -> None:
    """Drop every alert the harness buffered. Needed before ``net.announce`` and
    ``net.get_peers``: they take buffered alerts of their kind, and replies left over from an
    earlier lookup of the same info_hash would be counted as this one's."""
    for i in range(len(net.sessions)):
        net.alerts(i)


def lt_announce(net: LibtorrentNet, i: int, info_hash: bytes, port: int) -> int:
    forget_alerts(net)
    return net.announce(i, info_hash, port)


def lt_get_peers(net: LibtorrentNet, i: int, info_hash: bytes) -> list[Addr]:
    forget_alerts(net)
    return net.get_peers(i, info_hash, timeout=5.0)


def pop_alert(session: Any, kind: type[T], timeout: float) -> T | None:
    """The first alert of ``kind`` that ``session`` posts within ``timeout`` s, used at once."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        session.wait_for_alert(max(1, int(min(remaining, 0.05) * 1000)))
        for alert in session.pop_alerts():
            if isinstance(alert, kind):
                return alert
    return None


# --- 1. libtorrent fills our routing table --------------------------------------------------------
def test_our_routing_table_fills_with_libtorrent_nodes(ours: Ours, net: LibtorrentNet) -> None:
    snapshot = ours.loop.call(ours.session.routing_snapshot)
    entries = [node for bucket in snapshot.buckets for node in bucket.nodes]
    assert sum(node.state == "good" for node in entries) >= DhtSettings().k
    assert {node.addr for node in entries} <= set(net.addrs)
    assert all(node.version is not None and node.version.startswith(b"LT") for node in entries)
    # Each entry carries the id libtorrent itself answers with.
    for node in entries:
        assert node.id == net.node_id(index_of(net, node.addr))
    # BEP 42: libtorrent reports the address it saw us at, and we believe it.
    assert ours.loop.call(lambda: ours.session.external_ip) == OUR_IP


# --- 2. our lookups find peers libtorrent announced -----------------------------------------------
def test_our_lookup_finds_the_peers_libtorrent_nodes_announced(
    ours: Ours, net: LibtorrentNet, rng: random.Random
) -> None:
    info_hash = rng.randbytes(20)
    announcers = {5: 6881, 11: 6882, 17: 51413}
    for i, port in announcers.items():
        assert lt_announce(net, i, info_hash, port) >= 1
    result = ours.loop.run(lambda: ours.session.find_peers(info_hash, timeout=10))
    assert not result.cancelled
    assert set(result.peers) == {(net.addrs[i][0], port) for i, port in announcers.items()}
    assert result.responded >= 1 and result.queried >= result.responded


def test_our_lookup_finds_a_libtorrent_implied_port_announce(
    ours: Ours, net: LibtorrentNet, rng: random.Random
) -> None:
    info_hash = rng.randbytes(20)
    announcer = 8
    # implied_port: the peer's port is the UDP source port of libtorrent's announce_peer.
    net.sessions[announcer].dht_announce(
        lt.sha1_hash(info_hash), 0, int(lt.announce_flags_t.implied_port)
    )
    wanted = net.addrs[announcer]

    def found() -> tuple[Addr, ...] | None:
        result = ours.loop.run(lambda: ours.session.find_peers(info_hash, timeout=5))
        return result.peers or None

    # The announce runs in libtorrent's thread; look until it has landed (bounded).
    assert wait_for(found, timeout=5, step=0.2) == (wanted,)


# --- 3. libtorrent finds peers we announced (so it accepted our announce with its token) ----------
@pytest.mark.parametrize("implied_port", [False, True], ids=["port", "implied_port"])
def test_libtorrent_finds_the_peer_we_announced(
    ours: Ours, net: LibtorrentNet, rng: random.Random, implied_port: bool
) -> None:
    info_hash = rng.randbytes(20)
    port = 4242
    result = ours.loop.run(
        lambda: ours.session.announce(info_hash, port, implied_port=implied_port, timeout=10)
    )
    assert result.stored_at and set(result.stored_at) <= set(net.addrs)
    assert result.failed == ()
    # libtorrent stores an announce only with a token it issued to that address, so a stored
    # peer proves our announce_peer (token, port, implied_port) satisfied it.
    expected = (OUR_IP, ours.addr[1] if implied_port else port)
    for searcher in (0, 23):
        assert lt_get_peers(net, searcher, info_hash) == [expected]


def test_libtorrent_announces_to_us_with_our_token(ours: Ours, net: LibtorrentNet) -> None:
    # Our own id as the info_hash makes us the closest node, so libtorrent's announce must
    # include us: it takes our token from our get_peers reply and sends it back.
    info_hash = ours.session.node_id
    announcer = 4
    bad_tokens_before = ours.stats()["bad_tokens"]
    seen_before = len(ours.events)
    net.add_node(announcer, ours.addr)
    assert lt_announce(net, announcer, info_hash, 5555) >= 1

    def received() -> list[ev.AnnounceReceived] | None:
        fresh = ours.events[seen_before:]
        hits = [e for e in fresh if isinstance(e, ev.AnnounceReceived) and e.info_hash == info_hash]
        return hits or None

    hits = wait_for(received, timeout=3)
    assert hits is not None, "libtorrent never announced to us"
    assert {(e.peer, e.node_id) for e in hits} == {
        ((net.addrs[announcer][0], 5555), net.node_id(announcer))
    }
    assert ours.stats()["bad_tokens"] == bad_tokens_before


# --- 4. libtorrent queries us and accepts our replies ---------------------------------------------
def test_libtorrent_enters_our_node_from_our_reply_alone(
    net: LibtorrentNet, loop: LoopThread
) -> None:
    # A node that never sends a query (no transaction slot): libtorrent can only learn its id
    # from its replies. (Being listed alone proves nothing for a node that queries libtorrent:
    # two queries get a node entered even if it never answers; see the read-only test.)
    mute = DhtSession(DhtSettings(max_inflight_queries=0), bind=(MUTE_IP, 0), rng=random.Random(2))
    mute_node = start_session(loop, mute, bootstrap=[])
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        silent.bind((SILENT_IP, 0))
        silent_addr: Addr = silent.getsockname()
        j = 12
        net.add_node(j, mute_node.addr)
        net.add_node(j, silent_addr)

        def listed() -> list[tuple[bytes, Addr]] | None:
            live = net.live_nodes(j)
            mine = [entry for entry in live if entry[1] == mute_node.addr]
            return mine or None

        assert wait_for(listed, timeout=5, step=0.1) == [(mute.node_id, mute_node.addr)]
        # The control: libtorrent did query the silent socket, and left it out.
        silent.settimeout(1.0)
        data, source = silent.recvfrom(2048)
        assert source == net.addrs[j] and isinstance(krpc.decode(data), Query)
        assert all(addr != silent_addr for _id, addr in net.live_nodes(j))
        stats = mute_node.stats()
        assert stats["queries_in"] >= 1 and stats["responses_out"] >= 1
        assert stats["queries_out"] == 0
        queried_by = {e.addr for e in mute_node.of_type(ev.MessageReceived) if e.kind == "q"}
        assert net.addrs[j] in queried_by
    finally:
        silent.close()
        loop.run(mute.stop)


def test_libtorrent_keeps_our_read_only_node_out_of_its_table(
    net: LibtorrentNet, loop: LoopThread, raw_sock: socket.socket
) -> None:
    # BEP 43: a node that queries with ro=1 must not enter routing tables. The control: the same
    # queries without ro=1 from a plain socket that never answers do put it in libtorrent's
    # table (libtorrent enters a node it heard two queries from).
    reader = DhtSession(DhtSettings(read_only=True), bind=(READ_ONLY_IP, 0), rng=random.Random(4))
    reader_node = start_session(loop, reader, bootstrap=[])
    try:
        k = 14
        control_id = random.Random(5).randbytes(20)
        for tid in (b"r1", b"r2"):
            pong = loop.run(lambda: reader.ping(net.addrs[k], timeout=3))
            assert pong.version is not None and pong.version.startswith(b"LT")
            control = krpc.encode(PingQuery(tid, control_id))
            assert raw_exchange(raw_sock, {tid: (control, net.addrs[k])})

        def control_listed() -> bool | None:
            return any(addr == raw_sock.getsockname() for _id, addr in net.live_nodes(k)) or None

        assert wait_for(control_listed, timeout=3, step=0.1)
        assert all(addr != reader_node.addr for _id, addr in net.live_nodes(k))
    finally:
        loop.run(reader.stop)


def test_raw_pings_to_libtorrent_and_to_us(ours: Ours, net: LibtorrentNet) -> None:
    theirs = net.direct_ping(net.addrs[3])
    assert theirs[b"y"] == b"r"
    assert len(theirs[b"r"][b"id"]) == 20 and theirs[b"v"].startswith(b"LT")
    assert theirs[b"ip"][:4] == socket.inet_aton("127.0.0.1")

    mine = net.direct_ping(ours.addr)
    assert mine[b"y"] == b"r"
    assert mine[b"r"][b"id"] == ours.session.node_id
    assert mine[b"v"] == DhtSettings().client_version
    # BEP 42: the harness socket's address as we saw it (compact: 4 address bytes + port).
    assert len(mine[b"ip"]) == 6 and mine[b"ip"][:4] == socket.inet_aton("127.0.0.1")
    assert mine[b"ip"] == theirs[b"ip"]  # both saw the same harness socket


def test_our_reply_names_the_exact_address_we_saw(ours: Ours, raw_sock: socket.socket) -> None:
    sent = krpc.encode(PingQuery(b"aa", b"\x01" * 20))
    replies = raw_exchange(raw_sock, {b"aa": (sent, ours.addr)})
    reply = krpc.decode(replies[b"aa"])
    assert isinstance(reply, Response)
    assert reply.external_ip == raw_sock.getsockname()


# --- 5. our ping to libtorrent --------------------------------------------------------------------
def test_our_ping_gets_libtorrents_id_and_version(ours: Ours, net: LibtorrentNet) -> None:
    target = 21
    result = ours.loop.run(lambda: ours.session.ping(net.addrs[target], timeout=3))
    assert result.id == net.node_id(target)
    assert result.version is not None and result.version.startswith(b"LT")
    assert 0 < result.rtt < 1.0
    assert result.addr == net.addrs[target]


# --- 6. BEP 51 sample_infohashes, both ways -------------------------------------------------------
def test_libtorrent_samples_decode_with_our_codec(
    net: LibtorrentNet, raw_sock: socket.socket, rng: random.Random
) -> None:
    info_hash = rng.randbytes(20)
    stored_at = lt_announce(net, 2, info_hash, 7000)
    assert stored_at >= 1
    sender = rng.randbytes(20)
    queries = {
        i.to_bytes(2, "big"): (
            krpc.encode(SampleInfohashesQuery(i.to_bytes(2, "big"), sender, target=info_hash)),
            addr,
        )
        for i, addr in enumerate(net.addrs)
    }
    replies = raw_exchange(raw_sock, queries)
    assert len(replies) == NODES
    holders = 0
    for tid, data in replies.items():
        reply = krpc.decode(data)
        assert isinstance(reply, Response)
        assert reply.sender_id == net.node_id(int.from_bytes(tid, "big"))
        assert reply.interval is not None and reply.interval >= 0
        assert reply.num is not None and reply.num >= len(reply.samples)
        assert reply.version is not None and reply.version.startswith(b"LT")
        # Contacts are whatever libtorrent knows (our sessions and the harness socket too).
        assert reply.nodes and all(is_loopback(n.addr) for n in reply.nodes)
        holders += info_hash in reply.samples
    # Every node that accepted the announce lists the info_hash in its sample.
    assert holders == stored_at


def test_libtorrent_samples_our_store(
    ours: Ours, net: LibtorrentNet, raw_sock: socket.socket, rng: random.Random
) -> None:
    info_hash = rng.randbytes(20)
    me = rng.randbytes(20)
    get_peers = krpc.encode(GetPeersQuery(b"gp", me, info_hash=info_hash))
    reply = krpc.decode(raw_exchange(raw_sock, {b"gp": (get_peers, ours.addr)})[b"gp"])
    assert isinstance(reply, Response) and reply.token
    announce = krpc.encode(
        AnnouncePeerQuery(b"ap", me, info_hash=info_hash, port=6000, token=reply.token)
    )
    stored = krpc.decode(raw_exchange(raw_sock, {b"ap": (announce, ours.addr)})[b"ap"])
    assert isinstance(stored, Response)

    sampler = net.sessions[9]
    sampler.pop_alerts()
    sampler.dht_sample_infohashes(ours.addr, lt.sha1_hash(rng.randbytes(20)))
    alert = pop_alert(sampler, lt.dht_sample_infohashes_alert, timeout=3)
    assert alert is not None, "libtorrent got no sample_infohashes reply from us"
    assert (str(alert.endpoint[0]), int(alert.endpoint[1])) == ours.addr
    samples = {bytes(h.to_bytes()) for h in alert.samples}
    assert info_hash in samples
    assert alert.num_infohashes >= len(samples) >= 1
    # Our reply's compact nodes parse to the libtorrent nodes they name, ids included.
    contacts = [(bytes(n["nid"].to_bytes()), n["endpoint"]) for n in alert.nodes]
    assert len(contacts) == alert.num_nodes >= 1
    for node_id, (ip, port) in contacts:
        addr = (str(ip), int(port))
        assert node_id == net.node_id(index_of(net, addr))
