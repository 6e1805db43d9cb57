"""BatchedDatagramTransport: a UDP transport that reads datagrams in batches.

asyncio's own datagram transport reads one datagram per readiness callback, so every datagram
pays a full turn of the event loop (a poll, a handle, a context switch into the protocol), and
the protocol flushes after each one. A DHT node under load receives thousands of small
datagrams a second; handing it everything the socket holds (up to ``max_batch``) in one call
lets it answer the whole batch and re-arm its timer once. That turn of the loop, not the
protocol, was a third of a serving node's CPU.

The transport is driven by ``loop.add_reader``/``add_writer``, which both asyncio's selector
loop and qasync's Qt loop provide. ``create_batched_endpoint`` falls back to the standard
``loop.create_datagram_endpoint`` on a loop without them (the Windows proactor); the protocol
then sees one datagram per ``datagram_received`` call, exactly as before.

Sending goes straight to ``socket.sendto``. When the kernel's buffer is full the datagram waits
in a bounded queue that drains when the socket is writable again; beyond that bound
``sendto`` raises ``SendQueueFull`` (UDP may drop, and a node that cannot send should shed
load, not grow without limit).
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable
from typing import Any, Protocol, cast

from dhtviewer.dht.messages import Addr

DEFAULT_MAX_BATCH = 64
"""Datagrams read per readiness callback. Bounds how long one callback holds the loop (a GUI
shares it): 64 queries take a few milliseconds to answer."""
DEFAULT_MAX_SEND_QUEUE = 4096
"""Datagrams waiting for a writable socket before ``sendto`` refuses more."""
RECEIVE_SIZE = 65536
"""Bytes read per datagram: the largest UDP payload, so nothing is truncated silently (the node
decides what is too large and counts it)."""

Batch = list[tuple[bytes, Addr]]


class BatchProtocol(Protocol):
    """What the transport calls back, an ``asyncio.DatagramProtocol`` plus one method."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def datagrams_received(self, batch: Batch) -> None: ...
    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None: ...
    def error_received(self, exc: Exception) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...


class SendQueueFull(BlockingIOError):
    """``sendto`` found the socket's buffer and the transport's queue both full."""


class BatchedDatagramTransport(asyncio.DatagramTransport):
    """A datagram transport over a bound, non-blocking UDP socket that it owns."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: BatchProtocol,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_send_queue: int = DEFAULT_MAX_SEND_QUEUE,
    ) -> None:
        super().__init__()
        if max_batch < 1 or max_send_queue < 0:
            raise ValueError("max_batch must be >= 1 and max_send_queue >= 0")
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._max_batch = max_batch
        self._max_send_queue = max_send_queue
        # IPv4 sockets already report (ip, port); IPv6 ones add flowinfo and scope id.
        self._v6 = sock.family == socket.AF_INET6
        self._queue: collections.deque[tuple[bytes, Addr]] = collections.deque()
        self._closing = False
        self._extra = {"socket": sock, "sockname": sock.getsockname(), "peername": None}
        self.batches = 0
        """Readiness callbacks that delivered at least one datagram."""
        self.datagrams = 0
        """Datagrams delivered to the protocol."""

    def start(self) -> None:
        """Tell the protocol it is connected and start reading (``add_reader`` may raise
        ``NotImplementedError`` on a loop without readiness callbacks)."""
        self._loop.add_reader(self._fd, self._read_ready)
        try:
            self._protocol.connection_made(self)
        except BaseException:
            self._loop.remove_reader(self._fd)
            raise

    # --- reading ---------------------------------------------------------------------------------
    def _read_ready(self) -> None:
        if self._closing:
            return
        batch: Batch = []
        recv = self._sock.recvfrom
        v6 = self._v6
        for _ in range(self._max_batch):
            try:
                data, sockaddr = recv(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # Windows reports an ICMP "port unreachable" on the next read; the socket stays
                # usable and the next wake-up reads on. (Not `continue`: an error that repeats
                # would be reported max_batch times per wake-up.)
                self._protocol.error_received(exc)
                break
            batch.append((data, (sockaddr[0], sockaddr[1]) if v6 else sockaddr))
        if batch and not self._closing:  # error_received may have closed us
            self.batches += 1
            self.datagrams += len(batch)
            self._protocol.datagrams_received(batch)

    # --- writing ---------------------------------------------------------------------------------
    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send one datagram to ``addr`` now, or queue it if the socket's buffer is full.
        Raises what ``socket.sendto`` raises for a bad address (``OSError``, ``TypeError``),
        ``SendQueueFull`` when the queue is at its bound, and nothing after ``close``."""
        if self._closing:
            return
        if addr is None:
            raise ValueError("a destination address is required (the socket is unconnected)")
        if not self._queue:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._fd, self._write_ready)
        if len(self._queue) >= self._max_send_queue:
            raise SendQueueFull("UDP send queue full")
        self._queue.append((bytes(data), addr))

    def _write_ready(self) -> None:
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return  # still full: wait for the next writable callback
            except OSError as exc:
                self._protocol.error_received(exc)
            queue.popleft()
        self._loop.remove_writer(self._fd)

    def get_write_buffer_size(self) -> int:
        return sum(len(d) for d, _ in self._queue)

    # --- lifetime --------------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading and writing, drop what is queued, close the socket; the protocol's
        ``connection_lost(None)`` follows on the next turn of the loop."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        self._queue.clear()
        # Unconditionally: with max_send_queue=0 a writer is registered with an empty queue,
        # and a registration outliving the socket would break the next user of its fd number.
        self._loop.remove_writer(self._fd)
        self._loop.call_soon(self._finish_close)

    def abort(self) -> None:
        self.close()

    def _finish_close(self) -> None:
        try:
            self._protocol.connection_lost(None)
        finally:
            self._sock.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)


async def create_batched_endpoint(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], BatchProtocol],
    sock: socket.socket,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> tuple[asyncio.DatagramTransport, BatchProtocol]:
    """Drive ``protocol_factory()`` over ``sock`` (bound, non-blocking) with a
    ``BatchedDatagramTransport``, or with the loop's own datagram transport where the loop has
    no ``add_reader``."""
    protocol = protocol_factory()
    transport = BatchedDatagramTransport(loop, sock, protocol, max_batch=max_batch)
    try:
        transport.start()
    except NotImplementedError:
        transport._closing = True
        std_transport, _ = await loop.create_datagram_endpoint(
            lambda: cast(asyncio.DatagramProtocol, protocol), sock=sock
        )
        return std_transport, protocol
    return transport, protocol
