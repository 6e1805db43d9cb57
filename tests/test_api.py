"""The library facade ``Dht`` against a real 32-node LocalTestnet on 127.0.150.x (in a background
thread, over real UDP): the operations with their argument checks, and each extension point
through the public API: a custom KRPC method on both sides, a routing policy whose larger far
buckets show in the routing snapshot, user tasks on the node's clock, subscriptions by event
kind and event streams, and user code that raises kept away from the node."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import TypeVar

import pytest

from dhtviewer import (
    Dht,
    DhtSettings,
    QueryError,
    RoutingPolicy,
    StateChanged,
    UnknownQuery,
    events,
)
from dhtviewer.dht.messages import Addr, Query
from dhtviewer.net.session import SessionEvent
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet

T = TypeVar("T")
# Read-only (BEP 43) clients stay out of the testnet's tables; answering ones are made where a
# test needs a node others query.
QUICK = DhtSettings(
    read_only=True, short_timeout=0.2, hard_timeout=1.0, address_families="ipv4"  # type: ignore[arg-type]
)
ANSWERING = replace(QUICK, read_only=False)
DEAD: Addr = ("127.0.150.250", 9)  # nothing listens there


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


@pytest.fixture(scope="module")
def testnet() -> Iterator[LocalTestnet]:
    with BackgroundTestnet(LocalTestnet(32, "127.0.150.1", port=0, seed=150)) as net:
        yield net


def dht(net: LocalTestnet, host: str, settings: DhtSettings = QUICK, **kw: object) -> Dht:
    return Dht(settings, bootstrap=net.bootstrap_addrs, bind=(host, 0), **kw)  # type: ignore[arg-type]


# --- operations ----------------------------------------------------------------------------------
def test_find_peers_takes_an_info_hash_as_bytes_hex_or_magnet(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))

    async def go() -> None:
        async with dht(testnet, "127.0.150.200") as d:
            assert d.state == "ready" and d.local_address is not None
            for form in (info_hash, info_hash.hex(), f"magnet:?xt=urn:btih:{info_hash.hex()}"):
                result = await d.find_peers(form, timeout=10)
                assert set(peers) <= set(result.peers) and not result.cancelled
                assert result.info_hash == info_hash
            nodes = await d.find_node(testnet.nodes[3].node_id, timeout=10)
            assert nodes.closest[0][0] == testnet.nodes[3].node_id
            pong = await d.ping(testnet.addrs[3], timeout=5)
            assert pong.id == testnet.nodes[3].node_id
            with pytest.raises(TimeoutError):
                await d.ping(DEAD, timeout=0.3)
        assert d.state == "stopped" and d.local_address is None

    run(go)


def test_lookup_progress_is_an_async_iterator(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))

    async def go() -> None:
        async with dht(testnet, "127.0.150.201") as d:
            handle = d.start_find_peers(info_hash)
            seen = [e async for e in handle]
            assert isinstance(seen[0], events.LookupStarted)
            assert isinstance(seen[-1], events.LookupFinished)
            found = {p for e in seen if isinstance(e, events.PeersFound) for p in e.peers}
            assert set(peers) <= found
            assert set((await handle.result()).peers) == found

    run(go)


def test_bad_arguments_are_refused_before_anything_is_sent(testnet: LocalTestnet) -> None:
    async def go() -> None:
        async with dht(testnet, "127.0.150.202") as d:
            sent = d.stats()["queries_out"]
            with pytest.raises(ValueError, match=r"info_hash must be 20 bytes, got 19"):
                await d.find_peers(b"x" * 19)
            with pytest.raises(TypeError, match=r"info_hash must be 20 bytes or a hex"):
                await d.find_peers(1234)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"info_hash: expected 40 hex"):
                await d.find_peers("abc")
            with pytest.raises(ValueError, match=r"target must be 20 bytes"):
                await d.find_node(b"")
            for bad in (-1, math.nan, math.inf):
                with pytest.raises(ValueError, match=r"timeout must be a finite number"):
                    await d.find_peers(b"x" * 20, timeout=bad)
            with pytest.raises(TypeError, match=r"timeout must be a number"):
                await d.find_peers(b"x" * 20, timeout="5")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"port must be 1\.\.65535, got 0"):
                await d.announce(b"x" * 20, 0)
            with pytest.raises(TypeError, match=r"addr must be 'host:port'"):
                await d.ping(6881)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"handler must be callable"):
                d.subscribe("print")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"kinds: .* is not an event class"):
                d.subscribe(print, kinds=[int])
            with pytest.raises(TypeError, match=r"fn must be callable"):
                d.call_later(1.0, None)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"delay must be a finite number"):
                d.call_later(-1.0, print)
            with pytest.raises(ValueError, match=r"interval must be above 0"):
                d.call_every(0, print)
            with pytest.raises(ValueError, match=r"method must not be empty"):
                d.register_handler(b"", lambda q, a: None)
            with pytest.raises(ValueError, match=r"args must not hold 'id'"):
                await d.query(testnet.addrs[0], "echo", {"id": b"x" * 20})
            with pytest.raises(ValueError, match=r"salt and seq are for mutable items"):
                await d.put(b"value", seq=3)
            assert d.stats()["queries_out"] == sent  # nothing went out
            assert d.state == "ready"

    run(go)


def test_put_then_get_an_immutable_item(testnet: LocalTestnet) -> None:
    async def go() -> None:
        async with dht(testnet, "127.0.150.203") as d:
            put = await d.put(b"hello library", timeout=10)
            assert put.stored_at
            got = await d.get(put.target, timeout=10)
            assert got.found and got.value == b"13:hello library"

    run(go)


# --- custom KRPC methods ---------------------------------------------------------------------
def test_a_custom_method_between_two_nodes(
    testnet: LocalTestnet, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(query: Query, addr: Addr) -> dict[bytes, object]:
        assert isinstance(query, UnknownQuery)
        return {b"echo": query.args[b"say"], b"from": addr[0].encode()}

    def refuse(query: Query, addr: Addr) -> None:
        raise QueryError(201, "not today")

    def broken(query: Query, addr: Addr) -> None:
        raise RuntimeError("bug in a user handler")

    async def go() -> None:
        async with dht(testnet, "127.0.150.204") as client, dht(
            testnet, "127.0.150.205", ANSWERING
        ) as server:
            server.register_handler("echo", echo)
            server.register_handler(b"refuse", refuse)
            server.register_handler(b"broken", broken)
            where = server.local_address
            assert where is not None
            reply = await client.query(where, "echo", {"say": b"hi"}, timeout=5)
            assert reply.extra == {b"echo": b"hi", b"from": b"127.0.150.204"}
            assert reply.sender_id == server.node_id
            with pytest.raises(QueryError) as refused:
                await client.query(where, b"refuse", timeout=5)
            assert (refused.value.code, refused.value.message) == (201, "not today")
            with pytest.raises(QueryError) as unknown:
                await client.query(where, b"nobody_knows_me", timeout=5)
            assert unknown.value.code == 204
            with caplog.at_level(logging.ERROR, logger="dhtviewer.api"), pytest.raises(
                QueryError
            ) as failed:
                await client.query(where, b"broken", timeout=5)
            assert failed.value.code == 202  # server error; the server goes on
            assert "bug in a user handler" in caplog.text
            assert server.stats()["handler_errors"] == 1
            assert (await client.query(where, "echo", {"say": b"still"})).extra[b"echo"] == b"still"
            with pytest.raises(TimeoutError, match="no answer to echo"):
                await client.query(DEAD, "echo", {"say": b"?"}, timeout=0.3)
            with pytest.raises(TimeoutError):
                await client.query(DEAD, "echo", {"say": b"?"}, timeout=0)

            def asking() -> bool:
                return any(p.method == b"echo" for node in client.session.nodes.values()
                           for p in node.txns)

            assert not asking()  # each ended with its timeout, in the core too
            waiting = asyncio.ensure_future(client.query(DEAD, "echo", timeout=30))
            while not asking():
                await asyncio.sleep(0.01)
            waiting.cancel()  # cancelling the caller forgets the query in the core
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert not asking()
            # Handlers belong to the session: a restart keeps them.
            await server.stop()
            await server.start()
            where = server.local_address
            assert where is not None
            assert (await client.query(where, "echo", {"say": b"again"})).extra[b"echo"] == (
                b"again"
            )
            server.unregister_handler("echo")
            with pytest.raises(QueryError) as gone:
                await client.query(where, "echo", {"say": b"?"}, timeout=5)
            assert gone.value.code == 204

    run(go)


def test_built_in_methods_are_replaced_only_when_asked(testnet: LocalTestnet) -> None:
    async def go() -> None:
        async with dht(testnet, "127.0.150.206") as client, dht(
            testnet, "127.0.150.207", ANSWERING
        ) as server:
            with pytest.raises(ValueError, match="ping is a built-in method"):
                server.register_handler("ping", lambda q, a: None)
            server.register_handler("ping", lambda q, a: {b"custom": 1}, replace_builtin=True)
            where = server.local_address
            assert where is not None
            assert (await client.query(where, "ping")).extra == {b"custom": 1}
            server.unregister_handler("ping")  # the built-in answer comes back
            assert (await client.ping(where, timeout=5)).id == server.node_id
            assert (await client.query(where, "ping")).extra == {}

    run(go)


# --- routing policy --------------------------------------------------------------------------
class WideFarBuckets(RoutingPolicy):
    """Four times K in the two buckets farthest from our id (they cover 3/4 of the id space)."""

    def bucket_size(self, index: int) -> int:
        return 4 * self.k if index < 2 else self.k


def wide(settings: DhtSettings, family: int) -> RoutingPolicy:
    base = RoutingPolicy.from_settings(settings)
    return WideFarBuckets(**{f: getattr(base, f) for f in base.__dataclass_fields__})


def test_a_routing_policy_with_larger_far_buckets(testnet: LocalTestnet) -> None:
    async def fill(d: Dht) -> int:
        # Lookups of ids all over the space: every node of the testnet answers some of them.
        for node in testnet.nodes:
            await d.find_node(node.node_id, timeout=10)
        snap = d.routing_snapshot()
        return sum(len(b.nodes) for b in snap.buckets[:2])

    async def go() -> None:
        settings = replace(QUICK, k=4)
        async with dht(testnet, "127.0.150.208", settings, routing_policy=wide) as w, dht(
            testnet, "127.0.150.209", settings
        ) as plain:
            wide_far, plain_far = await fill(w), await fill(plain)
            caps = [b.capacity for b in w.routing_snapshot().buckets[:2]]
            assert caps == [16, 16]
            assert all(b.capacity == 4 for b in plain.routing_snapshot().buckets)
            assert plain_far <= 8
            # The testnet has 32 nodes, ~24 of them in the far 3/4 of the space.
            assert wide_far > 8, w.routing_snapshot()
            # The factory runs at every start: the policy survives a restart.
            await w.stop()
            await w.start()
            assert [b.capacity for b in w.routing_snapshot().buckets[:1]] == [16]

    run(go)


# --- tasks on the node's clock ---------------------------------------------------------------
def test_user_tasks_run_on_the_node_clock(
    testnet: LocalTestnet, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        async with dht(testnet, "127.0.150.210") as d:
            failures: list[SessionEvent] = []
            d.subscribe(failures.append, kinds=events.TaskFailed)
            when = d.now() + 0.2
            ran: list[float] = []
            once = d.call_at(when, ran.append, name="once")
            ticks: list[float] = []
            every = d.call_every(0.05, ticks.append, name="tick")
            first = every.next_run
            assert first is not None and first >= when - 0.2
            lookups: list[int] = []

            def start_lookup(now: float) -> None:
                # A task may use the API: it runs on the loop's thread, inside the node's timer.
                lookups.append(d.start_find_node(testnet.nodes[0].node_id).lookup_id)

            d.call_later(0.05, start_lookup)

            def broken(now: float) -> None:
                raise ValueError("bug in a user task")

            bad = d.call_every(0.05, broken, name="broken")
            with caplog.at_level(logging.ERROR, logger="dhtviewer.api"):
                while len(ticks) < 6 or not ran or len(failures) < 2:
                    await asyncio.sleep(0.02)
            assert ran[0] >= when and once.runs == 1 and once.next_run is None
            # Never early, and on a fixed grid: a late run does not push the next ones back.
            assert all(t >= first + i * 0.05 - 1e-9 for i, t in enumerate(ticks))
            assert lookups and lookups[0] > 0
            assert bad.runs >= 2 and bad.errors >= 2 and bad.active  # periodic: kept
            failed = failures[0]
            assert isinstance(failed, events.TaskFailed) and failed.name == "broken"
            assert "bug in a user task" in failed.error and "bug in a user task" in caplog.text
            assert d.stats()["task_errors"] >= 2
            every.cancel()
            bad.cancel()
            count = len(ticks)
            await asyncio.sleep(0.2)
            assert len(ticks) == count and not every.active
            assert once not in d.tasks and every not in d.tasks

    run(go)


def test_tasks_are_kept_across_restarts(testnet: LocalTestnet) -> None:
    async def go() -> None:
        d = dht(testnet, "127.0.150.211")
        ticks: list[float] = []
        due: list[float] = []
        task = d.call_every(0.05, ticks.append)  # before the first start: kept for it
        await d.start()
        try:
            while len(ticks) < 2:
                await asyncio.sleep(0.02)
            later = d.call_later(0.05, due.append)
            await d.stop()
            assert task.active and task.runs >= 2
            stopped_count = len(ticks)
            await asyncio.sleep(0.2)  # ``later`` falls due while stopped
            assert len(ticks) == stopped_count and not due
            await d.start()
            while len(ticks) < stopped_count + 2 or not due:
                await asyncio.sleep(0.02)
            assert later.runs == 1 and task.runs == len(ticks)
        finally:
            await d.stop()

    run(go)


# --- events ----------------------------------------------------------------------------------
def test_subscribe_by_kind_and_packet_events_only_on_demand(testnet: LocalTestnet) -> None:
    info_hash = next(iter(testnet.announced))

    async def go() -> None:
        async with dht(testnet, "127.0.150.212") as d:
            lookups: list[SessionEvent] = []
            unsubscribe = d.subscribe(
                lookups.append, kinds=[events.LookupStarted, events.LookupFinished]
            )
            nodes = d.session.nodes.values()
            assert not any(n.traffic_events for n in nodes)  # nobody asked for packets
            packets: list[SessionEvent] = []
            stop_packets = d.subscribe(packets.append, kinds=events.MessageSent)
            assert all(n.traffic_events for n in nodes)
            handle = d.start_find_peers(info_hash)
            await handle.result(10)
            assert all(isinstance(e, (events.LookupStarted, events.LookupFinished))
                       for e in lookups)  # the node's own refresh lookups are among them
            ours = [type(e) for e in lookups
                    if isinstance(e, (events.LookupStarted, events.LookupFinished))
                    and e.lookup_id in handle.lookup_ids]
            assert ours == [events.LookupStarted, events.LookupFinished]
            assert packets and all(isinstance(e, events.MessageSent) for e in packets)
            stop_packets()
            assert not any(n.traffic_events for n in nodes)
            unsubscribe()
            count = len(lookups)
            await d.find_peers(info_hash, timeout=10)
            assert len(lookups) == count

    run(go)


def test_a_raising_subscriber_is_logged_counted_and_isolated(
    testnet: LocalTestnet, caplog: pytest.LogCaptureFixture
) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("bug in a subscriber")

    async def go() -> None:
        async with dht(testnet, "127.0.150.213") as d:
            d.subscribe(broken)
            after: list[SessionEvent] = []
            d.subscribe(after.append, kinds=[events.LookupFinished])
            with caplog.at_level(logging.ERROR):
                result = await d.find_peers(info_hash, timeout=10)
            assert set(peers) <= set(result.peers)
            # The later subscriber still got its event.
            assert any(isinstance(e, events.LookupFinished) and e.target == info_hash
                       for e in after)
            assert d.stats()["subscriber_errors"] >= 3
            assert "bug in a subscriber" in caplog.text

    run(go)


def test_event_streams_are_bounded_and_drop_the_oldest(testnet: LocalTestnet) -> None:
    info_hash = next(iter(testnet.announced))

    async def go() -> None:
        async with dht(testnet, "127.0.150.214") as d:
            wanted = (events.LookupStarted, events.LookupQuerySent, events.LookupFinished)
            seen: list[SessionEvent] = []  # everything, unbounded, to compare with
            d.subscribe(seen.append, kinds=wanted)
            async with d.events(wanted, maxsize=3) as stream:
                result = await d.find_peers(info_hash, timeout=10)  # nobody reads meanwhile
                # The node's own lookups (refreshes) may add events at any await: take the
                # stream's content and the reference at the same instant, and close it.
                newest = seen[-3:]
                stream.close()
                assert stream.pending() == 3 and stream.dropped == len(seen) - 3 > 0
                assert any(isinstance(e, events.LookupFinished)
                           and e.lookup_id == result.lookup_id for e in seen)
                kept = [await stream.get(1.0) for _ in range(3)]
                assert kept == newest  # the oldest were dropped, the newest kept in order
                with pytest.raises(EOFError):
                    await stream.get(0.05)
            assert stream.closed
            assert d.stats()["events_dropped"] == stream.dropped
            with pytest.raises(ValueError, match="maxsize must be at least 1"):
                d.events(maxsize=0)

    run(go)


def test_state_changes_are_events_too(testnet: LocalTestnet) -> None:
    async def go() -> None:
        d = dht(testnet, "127.0.150.215")
        changes: list[SessionEvent] = []
        d.subscribe(changes.append, kinds=StateChanged)
        async with d:
            pass
        moves = [(e.old, e.new) for e in changes if isinstance(e, StateChanged)]
        assert ("stopped", "bootstrapping") in moves and ("bootstrapping", "ready") in moves
        assert moves[-1][1] == "stopped"

    run(go)
