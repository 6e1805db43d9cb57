"""DhtProtocol drives a node exactly by the driving contract, and nothing inside the node, a
subscriber or the socket can stop it. A scripted fake node stands in for DhtNode."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr
from dhtviewer.net.transport import (
    DhtProtocol,
    PortInUseError,
    bind_udp,
    open_udp,
)

T = TypeVar("T")
PEER: Addr = ("127.0.10.2", 7000)


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


class FakeNode:
    """Records calls; every receive queues an echo datagram and a MessageReceived event."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Addr, float]] = []
        self.timer_calls: list[float] = []
        self.out: list[tuple[bytes, Addr]] = []
        self.events: list[ev.Event] = []
        self.deadline: float | None = None
        self.fail_receive = False
        self.stuck_deadline = False

    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        self.received.append((data, addr, now))
        if self.fail_receive:
            raise RuntimeError("core bug")
        self.out.append((b"echo:" + data, addr))
        self.events.append(ev.MessageReceived(addr, "q", b"ping", b"t", len(data), None, data, now))

    def handle_timer(self, now: float) -> None:
        self.timer_calls.append(now)
        if not self.stuck_deadline:
            self.deadline = None

    def next_deadline(self) -> float | None:
        return self.deadline

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self.out = self.out, []
        return out

    def drain_events(self) -> list[ev.Event]:
        out, self.events = self.events, []
        return out


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.closing = False
        self.fail_for: set[Addr] = set()

    def sendto(self, data: bytes, addr: Any) -> None:
        if addr in self.fail_for:
            raise OSError("Address family not supported")
        self.sent.append((data, addr))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> Any:
        return None


def connect(node: FakeNode) -> tuple[DhtProtocol, FakeTransport]:
    proto = DhtProtocol(node)
    tr = FakeTransport()
    proto.connection_made(tr)  # type: ignore[arg-type]
    return proto, tr


def test_datagram_is_received_answered_and_its_events_dispatched() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)
        seen: list[ev.Event] = []
        proto.subscribe(seen.append)
        before = asyncio.get_running_loop().time()
        proto.datagram_received(b"hello", PEER)
        assert node.received[0][:2] == (b"hello", PEER)
        assert node.received[0][2] >= before  # the loop's clock
        assert tr.sent == [(b"echo:hello", PEER)]
        assert [type(e) for e in seen] == [ev.MessageReceived]

    run(go)


def test_a_batch_goes_to_the_node_datagram_by_datagram_and_is_flushed_once() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)
        flushes = 0
        drain = node.datagrams_to_send

        def counting_drain() -> list[tuple[bytes, Addr]]:
            nonlocal flushes
            flushes += 1
            return drain()

        node.datagrams_to_send = counting_drain  # type: ignore[method-assign]
        proto.datagrams_received([(b"a", PEER), (b"b", PEER), (b"c", ("127.0.10.3", 1))])
        assert [(d, a) for d, a, _ in node.received] == [
            (b"a", PEER), (b"b", PEER), (b"c", ("127.0.10.3", 1))
        ]
        times = [t for _, _, t in node.received]
        assert times == sorted(times)  # each at its own loop.time()
        assert flushes == 1
        assert tr.sent == [(b"echo:a", PEER), (b"echo:b", PEER), (b"echo:c", ("127.0.10.3", 1))]

    run(go)


def test_a_node_failure_inside_a_batch_spares_the_rest_of_it() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)
        real = node.receive

        def receive(data: bytes, addr: Addr, now: float) -> None:
            node.fail_receive = data == b"boom"
            real(data, addr, now)

        node.receive = receive  # type: ignore[method-assign]
        proto.datagrams_received([(b"boom", PEER), (b"fine", PEER)])
        assert proto.counters["node_errors"] == 1
        assert (b"echo:fine", PEER) in tr.sent

    run(go)


def test_ipv6_socket_addresses_reach_the_node_as_ip_port() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, _ = connect(node)
        proto.datagram_received(b"x", ("2001:db8::5", 6881, 0, 0))
        assert node.received[0][1] == ("2001:db8::5", 6881)

    run(go)


def test_unsubscribe_stops_delivery() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, _ = connect(node)
        seen: list[ev.Event] = []
        unsubscribe = proto.subscribe(seen.append)
        proto.datagram_received(b"1", PEER)
        unsubscribe()
        unsubscribe()  # harmless twice
        proto.datagram_received(b"2", PEER)
        assert len(seen) == 1

    run(go)


def test_timer_fires_once_at_the_node_deadline_and_rearms_from_it() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        node = FakeNode()
        proto, _ = connect(node)
        deadline = loop.time() + 0.05
        node.deadline = deadline
        proto.flush()
        await asyncio.sleep(0.01)
        assert node.timer_calls == []
        for _ in range(100):
            if node.timer_calls:
                break
            await asyncio.sleep(0.01)
        assert len(node.timer_calls) == 1
        assert node.timer_calls[0] >= deadline
        await asyncio.sleep(0.1)  # handle_timer cleared the deadline: no second call
        assert len(node.timer_calls) == 1

    run(go)


def test_api_call_through_run_is_flushed_even_when_it_raises() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)

        def call(now: float) -> int:
            node.out.append((b"query", PEER))
            return 7

        assert proto.run(call) == 7
        assert tr.sent == [(b"query", PEER)]

        def failing(now: float) -> int:
            node.out.append((b"partial", PEER))
            raise ValueError("bad argument")

        with pytest.raises(ValueError, match="bad argument"):
            proto.run(failing)
        assert tr.sent[-1] == (b"partial", PEER)

    run(go)


def test_node_exception_is_counted_and_the_transport_keeps_serving() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)
        node.fail_receive = True
        proto.datagram_received(b"boom", PEER)
        node.fail_receive = False
        proto.datagram_received(b"fine", PEER)
        assert proto.counters["node_errors"] == 1
        assert (b"echo:fine", PEER) in tr.sent

    run(go)


def test_failing_subscriber_does_not_starve_the_others() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, _ = connect(node)

        def bad(event: ev.Event) -> None:
            raise KeyError("ui bug")

        seen: list[ev.Event] = []
        proto.subscribe(bad)
        proto.subscribe(seen.append)
        proto.datagram_received(b"x", PEER)
        proto.datagram_received(b"y", PEER)
        assert len(seen) == 2
        assert proto.counters["subscriber_errors"] == 2

    run(go)


def test_send_failure_skips_only_that_datagram() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)
        tr.fail_for.add(("::1", 1))
        node.out = [(b"a", ("::1", 1)), (b"b", PEER)]
        proto.flush()
        assert tr.sent == [(b"b", PEER)]
        assert proto.counters["send_errors"] == 1

    run(go)


def test_socket_errors_are_counted_and_ignored() -> None:
    async def go() -> None:
        proto, _ = connect(FakeNode())
        proto.error_received(ConnectionRefusedError())
        assert proto.counters["socket_errors"] == 1

    run(go)


def test_a_deadline_stuck_in_the_past_does_not_spin_the_loop() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        node = FakeNode()
        node.stuck_deadline = True
        proto, _ = connect(node)
        node.deadline = loop.time() - 1.0
        proto.flush()
        await asyncio.sleep(0.3)
        # Without the stall guard this would be tens of thousands of calls.
        assert 1 <= len(node.timer_calls) <= 10
        assert proto.counters["timer_stalls"] >= 1
        proto.close()

    run(go)


def test_nothing_is_sent_after_close() -> None:
    async def go() -> None:
        node = FakeNode()
        proto, tr = connect(node)
        proto.close()
        node.out = [(b"late", PEER)]
        proto.flush()
        assert tr.sent == []
        assert proto.counters["dropped_after_close"] == 1

    run(go)


def test_real_socket_round_trip_on_loopback() -> None:
    async def go() -> None:
        node = FakeNode()
        proto = await open_udp(node, "127.0.10.1", 0, socket.AF_INET)
        assert proto.transport is not None
        port = proto.transport.get_extra_info("sockname")[1]
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.10.2", 0))
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            client.sendto(b"ping", ("127.0.10.1", port))
            reply = await asyncio.wait_for(loop.sock_recv(client, 100), 5)
            assert reply == b"echo:ping"
            assert node.received[0][1] == client.getsockname()
        finally:
            client.close()
            proto.close()
            await asyncio.wait_for(proto.closed, 5)

    run(go)


def test_busy_port_names_the_port() -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.10.3", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(PortInUseError) as info:
            bind_udp("127.0.10.3", port, socket.AF_INET)
        assert str(info.value) == f"UDP port {port} on 127.0.10.3 is already in use"
        assert isinstance(info.value, OSError)
        assert info.value.port == port
    finally:
        holder.close()
