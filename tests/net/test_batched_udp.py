"""BatchedDatagramTransport hands the protocol everything the socket holds (bounded per call),
queues sends when the kernel buffer is full (bounded too), and falls back to the loop's own
transport where readiness callbacks do not exist. All traffic stays on 127.0.0.0/8 and ::1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest

from dhtviewer.net.batched_udp import (
    BatchedDatagramTransport,
    SendQueueFull,
    create_batched_endpoint,
)
from dhtviewer.net.transport import bind_udp


class Recorder:
    """A protocol that records every callback."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[bytes, Any]]] = []
        self.single: list[tuple[bytes, Any]] = []
        self.errors: list[Exception] = []
        self.made: list[asyncio.BaseTransport] = []
        self.lost: list[Exception | None] = []
        self.arrived = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)

    def datagrams_received(self, batch: list[tuple[bytes, Any]]) -> None:
        self.batches.append(list(batch))
        self.arrived.set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.single.append((data, addr))
        self.arrived.set()

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    @property
    def datagrams(self) -> list[bytes]:
        return [d for b in self.batches for d, _ in b] + [d for d, _ in self.single]


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))  # type: ignore[arg-type]


def client(ip: str = "127.0.11.2", family: int = socket.AF_INET) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.005)


def endpoint(
    sock: socket.socket | None = None, **bounds: int
) -> tuple[Recorder, BatchedDatagramTransport, socket.socket]:
    """A Recorder on a (not yet started) transport over ``sock``, by default a fresh socket on
    127.0.11.1."""
    if sock is None:
        sock = bind_udp("127.0.11.1", 0, socket.AF_INET)
    proto = Recorder()
    return proto, BatchedDatagramTransport(asyncio.get_running_loop(), sock, proto, **bounds), sock


def test_everything_waiting_arrives_in_one_call_in_order() -> None:
    async def go() -> None:
        proto, tr, sock = endpoint()
        c = client()
        try:
            # Queue ten datagrams before the loop gets a chance to read any of them.
            for i in range(10):
                c.sendto(b"%d" % i, sock.getsockname())
            tr.start()
            assert proto.made == [tr]
            await until(lambda: len(proto.datagrams) == 10)
            assert proto.datagrams == [b"%d" % i for i in range(10)]
            assert len(proto.batches) == 1  # one readiness callback, one call, one flush
            assert proto.batches[0][0][1] == c.getsockname()
            assert (tr.batches, tr.datagrams) == (1, 10)
        finally:
            c.close()
            tr.close()

    run(go)


def test_a_batch_is_bounded_and_the_rest_follows_on_the_next_turn() -> None:
    async def go() -> None:
        proto, tr, sock = endpoint(max_batch=4)
        c = client()
        try:
            for i in range(10):
                c.sendto(b"%d" % i, sock.getsockname())
            tr.start()
            await until(lambda: len(proto.datagrams) == 10)
            assert [len(b) for b in proto.batches] == [4, 4, 2]
            assert proto.datagrams == [b"%d" % i for i in range(10)]
        finally:
            c.close()
            tr.close()

    run(go)


def test_ipv6_addresses_reach_the_protocol_as_ip_port_pairs() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    async def go() -> None:
        loop = asyncio.get_running_loop()
        proto = Recorder()
        try:
            sock = bind_udp("::1", 0, socket.AF_INET6)
            c = client("::1", socket.AF_INET6)
        except OSError:
            pytest.skip("::1 is not usable here")
        tr = BatchedDatagramTransport(loop, sock, proto)
        tr.start()
        try:
            c.sendto(b"six", sock.getsockname()[:2])
            await until(lambda: len(proto.datagrams) == 1)
            assert proto.batches[0][0] == (b"six", c.getsockname()[:2])
            tr.sendto(b"back", proto.batches[0][0][1])
            assert c.recv(100) == b"back"
        finally:
            c.close()
            tr.close()

    run(go)


class StuffedSocket(socket.socket):
    """A real UDP socket whose send buffer reports full while ``full`` is set."""

    full = False

    def sendto(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        if self.full:
            raise BlockingIOError("send buffer full")
        return super().sendto(data, *args)


def test_sends_wait_in_order_while_the_buffer_is_full_and_the_queue_is_bounded() -> None:
    async def go() -> None:
        sock = StuffedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.11.1", 0))
        sock.setblocking(False)
        _, tr, _ = endpoint(sock, max_send_queue=3)
        tr.start()
        c = client()
        c.settimeout(5)
        dest = c.getsockname()
        try:
            tr.sendto(b"now", dest)
            assert c.recv(100) == b"now"  # nothing queued: straight to the socket
            sock.full = True
            for word in (b"a", b"b", b"c"):
                tr.sendto(word, dest)
            assert tr.get_write_buffer_size() == 3
            with pytest.raises(SendQueueFull):
                tr.sendto(b"d", dest)
            await asyncio.sleep(0.02)  # writable callbacks keep failing: nothing is lost
            assert tr.get_write_buffer_size() == 3
            sock.full = False
            await until(lambda: tr.get_write_buffer_size() == 0)
            assert [c.recv(100) for _ in range(3)] == [b"a", b"b", b"c"]
            tr.sendto(b"after", dest)  # the queue drained: straight to the socket again
            assert c.recv(100) == b"after"
        finally:
            c.close()
            tr.close()

    run(go)


def test_a_bad_destination_raises_to_the_caller() -> None:
    async def go() -> None:
        _, tr, _ = endpoint()
        tr.start()
        try:
            with pytest.raises(OSError):
                tr.sendto(b"x", ("::1", 6881))  # IPv6 destination on an IPv4 socket
            with pytest.raises(ValueError):
                tr.sendto(b"x")  # unconnected: a destination is required
        finally:
            tr.close()

    run(go)


class FailingSocket(socket.socket):
    """recvfrom raises ``errors`` once each (like Windows' ICMP reports) before reading."""

    errors: ClassVar[list[OSError]] = []

    def recvfrom(self, *args: Any) -> Any:  # type: ignore[override]
        if self.errors:
            raise self.errors.pop(0)
        return super().recvfrom(*args)


def test_a_socket_error_is_reported_and_reading_goes_on() -> None:
    async def go() -> None:
        sock = FailingSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.11.1", 0))
        sock.setblocking(False)
        sock.errors = [ConnectionResetError("port unreachable"), OSError("again")]
        proto, tr, _ = endpoint(sock)
        wakeups = 0
        read_ready = tr._read_ready

        def counting() -> None:
            nonlocal wakeups
            wakeups += 1
            read_ready()

        tr._read_ready = counting  # type: ignore[method-assign]
        tr.start()
        c = client()
        try:
            c.sendto(b"after the error", sock.getsockname())
            await until(lambda: len(proto.datagrams) == 1)
            assert [type(e) for e in proto.errors] == [ConnectionResetError, OSError]
            assert proto.datagrams == [b"after the error"]
            # one report per wake-up, so a lasting error cannot flood the protocol
            assert wakeups == 3
        finally:
            c.close()
            tr.close()

    run(go)


def test_a_protocol_that_closes_on_an_error_gets_nothing_more() -> None:
    async def go() -> None:
        sock = FailingSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.11.1", 0))
        sock.setblocking(False)
        proto, tr, _ = endpoint(sock)
        sock.errors = [OSError("fatal")]
        proto.error_received = lambda exc: tr.close()  # type: ignore[method-assign]
        c = client()
        try:
            c.sendto(b"too late", sock.getsockname())
            tr.start()
            await until(lambda: proto.lost == [None])
            assert proto.batches == []
        finally:
            c.close()

    run(go)


def test_close_unregisters_the_writer_even_with_nothing_queued() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        sock = StuffedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.11.1", 0))
        sock.setblocking(False)
        _, tr, _ = endpoint(sock, max_send_queue=0)
        tr.start()
        fd = sock.fileno()
        sock.full = True
        with pytest.raises(SendQueueFull):
            tr.sendto(b"x", ("127.0.11.2", 9))
        tr.close()
        assert loop.remove_writer(fd) is False  # nothing left registered for the fd number
        assert loop.remove_reader(fd) is False

    run(go)


def test_close_stops_reading_and_sending_and_reports_connection_lost() -> None:
    async def go() -> None:
        proto, tr, sock = endpoint()
        tr.start()
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("socket") is sock
        tr.close()
        tr.close()  # harmless twice
        assert tr.is_closing()
        tr.sendto(b"late", ("127.0.11.2", 9))  # dropped quietly
        await until(lambda: proto.lost == [None])
        assert sock.fileno() == -1

    run(go)


def test_a_loop_without_add_reader_falls_back_to_its_own_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()

        def no_readers(*args: object) -> None:
            raise NotImplementedError

        monkeypatch.setattr(loop, "add_reader", no_readers)
        proto = Recorder()
        sock = bind_udp("127.0.11.1", 0, socket.AF_INET)
        tr, got = await create_batched_endpoint(loop, lambda: proto, sock)
        assert got is proto
        assert not isinstance(tr, BatchedDatagramTransport)
        c = client()
        try:
            c.sendto(b"one", sock.getsockname())
            await asyncio.wait_for(proto.arrived.wait(), 5)
            assert proto.single == [(b"one", c.getsockname())]
            assert proto.batches == []
        finally:
            c.close()
            tr.close()

    run(go)


def test_rejects_nonsense_bounds() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        sock = bind_udp("127.0.11.1", 0, socket.AF_INET)
        try:
            with pytest.raises(ValueError):
                BatchedDatagramTransport(loop, sock, Recorder(), max_batch=0)
        finally:
            sock.close()

    run(go)
