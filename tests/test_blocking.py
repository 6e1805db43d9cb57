"""BlockingDht against a 16-node LocalTestnet on 127.0.151.x: the calls without ``await`` from
any thread, the refusal to deadlock on its own thread, Ctrl-C cancelling what waits, lookups and
events as plain iterators, and a clean shutdown (thread joined, sockets closed) whether it is
closed, left by a ``with`` block or dropped."""

from __future__ import annotations

import _thread
import gc
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from dhtviewer import BlockingDht, Dht, DhtSettings, events
from dhtviewer.dht.messages import Addr, Query
from dhtviewer.net.session import SessionEvent
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet

QUICK = DhtSettings(
    read_only=True, short_timeout=0.2, hard_timeout=1.0, address_families="ipv4"  # type: ignore[arg-type]
)


@pytest.fixture(scope="module")
def testnet() -> Iterator[LocalTestnet]:
    with BackgroundTestnet(LocalTestnet(16, "127.0.151.1", port=0, seed=151)) as net:
        yield net


def blocking(net: LocalTestnet, host: str, settings: DhtSettings = QUICK,
             **kw: object) -> BlockingDht:
    return Dht.blocking(settings, bootstrap=net.bootstrap_addrs, bind=(host, 0), **kw)


def dht_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dhtviewer-dht"]


def port_is_free(addr: Addr) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(addr)
        except OSError:
            return False
    return True


def test_the_async_calls_without_await(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))
    with blocking(testnet, "127.0.151.200") as dht:
        assert dht.state == "ready"
        result = dht.find_peers(info_hash.hex(), timeout=10)
        assert set(peers) <= set(result.peers)
        assert dht.ping(testnet.addrs[2], timeout=5).id == testnet.nodes[2].node_id
        assert dht.find_node(testnet.nodes[5].node_id).closest[0][0] == testnet.nodes[5].node_id
        assert dht.routing_snapshot().buckets and dht.stats()["good_nodes"] >= 8
        with pytest.raises(ValueError, match="info_hash must be 20 bytes"):
            dht.find_peers(b"short")
        with pytest.raises(TimeoutError):
            dht.ping(("127.0.151.250", 9), timeout=0.3)


def test_calls_from_many_threads_at_once(testnet: LocalTestnet) -> None:
    announced = list(testnet.announced.items())
    with blocking(testnet, "127.0.151.201") as dht:

        def work(i: int) -> bool:
            info_hash, peers = announced[i % len(announced)]
            pong = dht.ping(testnet.addrs[i % 16], timeout=5)
            found = dht.find_peers(info_hash, timeout=10)
            return pong.id == testnet.nodes[i % 16].node_id and set(peers) <= set(found.peers)

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(work, range(16)))


def test_a_call_from_the_dht_thread_raises_instead_of_deadlocking(
    testnet: LocalTestnet,
) -> None:
    info_hash = next(iter(testnet.announced))
    with blocking(testnet, "127.0.151.202") as dht:
        errors: list[BaseException] = []
        started: list[int] = []

        def on_event(event: SessionEvent) -> None:
            try:
                dht.find_peers(info_hash)
            except RuntimeError as err:
                errors.append(err)
            # What works there: the async API's synchronous calls.
            started.append(dht.aio.start_find_node(info_hash).lookup_id)

        unsubscribe = dht.subscribe(on_event, kinds=events.PingFinished)
        dht.ping(testnet.addrs[0], timeout=5)
        unsubscribe()
        assert errors and "would wait for itself forever" in str(errors[0])
        assert started and started[0] > 0
        refused: list[BaseException] = []
        ran = threading.Event()

        def close_from_inside(now: float) -> None:
            try:
                dht.close()
            except RuntimeError as err:
                refused.append(err)
            ran.set()

        dht.call_later(0.0, close_from_inside)
        assert ran.wait(5)
        assert refused and "own thread" in str(refused[0])
        assert not dht.closed


def test_ctrl_c_cancels_the_operation_that_waits(testnet: LocalTestnet) -> None:
    # Its only contact is a dead address: everything it starts waits for the 30 s hard timeout.
    settings = replace(QUICK, hard_timeout=30.0, short_timeout=30.0)
    dead = ("127.0.151.250", 9)
    with BlockingDht(settings, bind=("127.0.151.203", 0), autostart=False) as dht:
        with pytest.raises(TimeoutError):
            dht.start([dead], timeout=0.2)  # it keeps trying in the background
        lookup = dht.start_find_peers(b"\x01" * 20)
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            lookup.result()
        timer.join()
        assert lookup.done()  # cancelled on the DHT's thread, not left running
        assert lookup.result().cancelled
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            dht.query(dead, "echo", {"say": b"?"})
        timer.join()
        # Still usable afterwards.
        assert dht.ping(testnet.addrs[1], timeout=5).id == testnet.nodes[1].node_id


def test_lookups_and_events_as_plain_iterators(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))
    with blocking(testnet, "127.0.151.204") as dht:
        lookup = dht.start_find_peers(info_hash)
        seen = list(lookup)
        assert isinstance(seen[0], events.LookupStarted)
        assert isinstance(seen[-1], events.LookupFinished)
        assert lookup.done() and set(peers) <= set(lookup.result().peers)
        with dht.events(events.PingFinished, timeout=10) as stream:
            dht.ping(testnet.addrs[3], timeout=5)
            first = next(iter(stream))
            assert isinstance(first, events.PingFinished) and first.addr == testnet.addrs[3]
        assert list(stream) == []  # closed: the iteration is over
        quiet = dht.events(events.AnnounceReceived, timeout=0.2)
        assert list(quiet) == []  # nothing within its time: it ends by itself


def test_handlers_and_tasks_run_on_the_dht_thread(testnet: LocalTestnet) -> None:
    server_settings = replace(QUICK, read_only=False)
    with blocking(testnet, "127.0.151.205") as client, blocking(
        testnet, "127.0.151.206", server_settings
    ) as server:
        threads: list[str] = []

        def echo(query: Query, addr: Addr) -> dict[bytes, object]:
            threads.append(threading.current_thread().name)
            return {b"echo": b"ok"}

        server.register_handler("echo", echo)
        where = server.local_address
        assert where is not None
        assert client.query(where, "echo").extra == {b"echo": b"ok"}
        done = threading.Event()
        client.call_later(0.05, lambda now: done.set())
        assert done.wait(5)
        assert threads == ["dhtviewer-dht"]


def test_close_stops_the_node_joins_the_thread_and_frees_the_port(
    testnet: LocalTestnet,
) -> None:
    before = len(dht_threads())
    dht = blocking(testnet, "127.0.151.207")
    addr = dht.local_address
    assert addr is not None and not port_is_free(addr)
    assert len(dht_threads()) == before + 1
    dht.close()
    dht.close()  # twice is fine
    assert dht.closed and port_is_free(addr)
    assert len(dht_threads()) == before
    with pytest.raises(RuntimeError, match="closed"):
        dht.find_peers(b"x" * 20)


def test_a_dropped_blocking_dht_shuts_down_when_collected(testnet: LocalTestnet) -> None:
    before = len(dht_threads())
    dht = blocking(testnet, "127.0.151.208")
    addr = dht.local_address
    assert addr is not None
    del dht
    gc.collect()
    assert port_is_free(addr)
    assert len(dht_threads()) == before


def test_a_failed_start_leaves_no_thread_behind(testnet: LocalTestnet) -> None:
    before = len(dht_threads())
    with BlockingDht(QUICK, bind=("127.0.151.209", 0), bootstrap=[], autostart=False) as dht:
        holder = dht.local_address
        assert holder is None and dht.state == "stopped"
        dht.start(testnet.bootstrap_addrs, timeout=10)
        busy = dht.local_address
        assert busy is not None
        with pytest.raises(OSError, match="already in use"):
            BlockingDht(QUICK, bind=busy, bootstrap=testnet.bootstrap_addrs)
    assert len(dht_threads()) == before
