"""DhtProtocol: the asyncio datagram protocol that drives one sans-IO DhtNode over a UDP socket.

It follows the node's driving contract to the letter: every datagram goes to ``node.receive``,
every API call goes through ``run``, and after each of them (after each batch of datagrams, see
``batched_udp``) ``flush`` sends what the node queued, hands the node's events to subscribers
and re-arms a single ``loop.call_at`` timer for the node's next deadline. The clock is
``loop.time()``, the same monotonic clock every ``at`` in the events refers to.

Robustness rule: nothing that happens inside the node, a subscriber or the socket may stop the
transport. Exceptions are logged and counted in ``counters``; the protocol keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

from dhtviewer.dht.addresses import format_host, sockaddr_to_addr
from dhtviewer.dht.events import Event
from dhtviewer.dht.messages import Addr
from dhtviewer.net.batched_udp import Batch, create_batched_endpoint

log = logging.getLogger(__name__)

T = TypeVar("T")
EventCallback = Callable[[Event], None]

# Windows reports socket errors as WSA codes in ``winerror``; errno holds them only on POSIX.
_WSAEADDRINUSE = 10048
_WSAEACCES = 10013
_RECEIVE_BUFFER = 1 << 20  # absorbs bursts of replies when many lookups run at once

# If the node's deadline is still due right after handle_timer (a core bug, or a deadline that
# cannot be served yet), firing again at once would spin the loop; wait this long instead.
STALL_DELAY = 0.05


class DrivenNode(Protocol):
    """The part of ``dhtviewer.dht.node.DhtNode`` the transport needs (a fake suffices in tests)."""

    def receive(self, data: bytes, addr: Addr, now: float) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]: ...
    def drain_events(self) -> list[Event]: ...


class DhtProtocol(asyncio.DatagramProtocol):
    """Connects ``node`` to a datagram transport. Create it through
    ``loop.create_datagram_endpoint(lambda: DhtProtocol(node), sock=...)``."""

    def __init__(self, node: DrivenNode, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.node = node
        self.loop = loop or asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._subscribers: list[EventCallback] = []
        # qasync's call_at returns a plain Handle without when(): remember the time ourselves.
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        self.counters: dict[str, int] = {
            "node_errors": 0,
            "subscriber_errors": 0,
            "send_errors": 0,
            "socket_errors": 0,
            "timer_stalls": 0,
            "timer_errors": 0,
            "dropped_after_close": 0,
        }

    # --- subscribers -----------------------------------------------------------------------------
    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every node event; returns a function that unsubscribes.
        Callbacks run synchronously on the loop and must be quick."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            # Identity, not equality: the same bound method may be subscribed twice.
            for i, cb in enumerate(self._subscribers):
                if cb is callback:
                    del self._subscribers[i]
                    return

        return unsubscribe

    # --- asyncio callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.flush()  # anything queued before the socket existed, and the first timer

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        # From the loop's own transport (the fallback of create_batched_endpoint): a batch of one.
        self.datagrams_received([(data, sockaddr_to_addr(addr))])

    def datagrams_received(self, batch: Batch) -> None:
        """Several datagrams at once (from ``BatchedDatagramTransport``): each goes to the node
        at its own ``loop.time()``, then one flush sends all the replies."""
        receive = self.node.receive
        clock = self.loop.time
        for data, addr in batch:
            try:
                receive(data, addr, clock())
            except Exception:
                self._node_failed("receive")
        self.flush()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the query will time out in the node anyway.
        self.counters["socket_errors"] += 1
        log.debug("socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    # --- driving ---------------------------------------------------------------------------------
    def run(self, call: Callable[[float], T]) -> T:
        """Run an API call on the node (``call(now)``), then flush. Exceptions from the call
        propagate to the caller (they are the API's answer, e.g. a ValueError); what the node
        queued before raising is still flushed."""
        try:
            return call(self.loop.time())
        finally:
            self.flush()

    def flush(self) -> None:
        """Send the node's datagrams, dispatch its events and re-arm the timer."""
        try:
            out = self.node.datagrams_to_send()
            events = self.node.drain_events()
        except Exception:
            self._node_failed("drain")
            out, events = [], []
        self._send(out)
        for event in events:
            self._dispatch(event)
        try:
            self._arm()
        except Exception:  # a loop that refuses call_at (closed): nothing left to drive
            self.counters["timer_errors"] += 1
            log.exception("cannot arm the DHT timer")

    def close(self) -> None:
        """Stop the timer and close the socket (``closed`` resolves when it is gone)."""
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()
        elif not self.closed.done():
            self.closed.set_result(None)

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    # --- internals -------------------------------------------------------------------------------
    def _send(self, out: list[tuple[bytes, Addr]]) -> None:
        tr = self.transport
        if tr is None or tr.is_closing():
            self.counters["dropped_after_close"] += len(out)
            return
        for data, addr in out:
            try:
                tr.sendto(data, addr)
            except Exception as exc:
                # A wrong-family or unresolvable address must not stop the other datagrams.
                self.counters["send_errors"] += 1
                log.debug("cannot send %d bytes to %s: %s", len(data), addr, exc)

    def _dispatch(self, event: Event) -> None:
        for cb in tuple(self._subscribers):  # a callback may unsubscribe itself
            try:
                cb(event)
            except Exception:
                self.counters["subscriber_errors"] += 1
                log.exception("event subscriber %r failed on %s", cb, type(event).__name__)

    def _arm(self) -> None:
        if self.transport is None:
            return
        try:
            deadline = self.node.next_deadline()
        except Exception:
            self._node_failed("next_deadline")
            deadline = None
        timer = self._timer
        if timer is not None:
            if deadline == self._timer_when and not timer.cancelled():
                return  # most datagrams leave the deadline unchanged; keep the handle
            timer.cancel()
            self._timer = None
        if deadline is not None:
            self._schedule(deadline)

    def _schedule(self, when: float) -> None:
        self._timer_when = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        try:
            self.node.handle_timer(now)
        except Exception:
            self._node_failed("handle_timer")
        self.flush()
        timer = self._timer
        if timer is not None and self._timer_when <= now:
            self.counters["timer_stalls"] += 1
            timer.cancel()
            self._schedule(now + STALL_DELAY)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _node_failed(self, where: str) -> None:
        self.counters["node_errors"] += 1
        log.exception("DHT node failed in %s; the transport keeps running", where)


class BindError(OSError):
    """The UDP socket could not be bound; ``str()`` is a one-line message naming host and port."""

    def __init__(self, message: str, host: str, port: int, code: int | None = None) -> None:
        super().__init__(code, message)
        self.message = message
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return self.message


class PortInUseError(BindError):
    """Another socket already holds the UDP port (another DHT client, or a second dhtviewer)."""


def bind_udp(host: str, port: int, family: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``(host, port)``; ``BindError``/``PortInUseError``
    with a readable message on failure. IPv6 sockets are IPv6-only: one node speaks one family,
    and a dual-stack socket would report IPv4 peers as ``::ffff:a.b.c.d``."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        with contextlib.suppress(OSError):  # the default buffer works, bursts just lose more
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        where = format_host(host)
        code = err.errno
        if code == errno.EADDRINUSE or getattr(err, "winerror", None) == _WSAEADDRINUSE:
            raise PortInUseError(
                f"UDP port {port} on {where} is already in use", host, port, code
            ) from None
        if code == errno.EACCES or getattr(err, "winerror", None) == _WSAEACCES:
            msg = f"permission denied binding UDP port {port} on {where}"
        elif code == errno.EADDRNOTAVAIL:
            msg = f"cannot bind UDP {where}:{port}: address not available on this machine"
        else:
            msg = f"cannot bind UDP {where}:{port}: {err.strerror or err}"
        raise BindError(msg, host, port, code) from None
    return sock


async def open_udp(node: DrivenNode, host: str, port: int, family: int) -> DhtProtocol:
    """Bind ``(host, port)`` and start driving ``node`` on it, reading datagrams in batches."""
    return await serve_udp(node, bind_udp(host, port, family))


async def serve_udp(node: DrivenNode, sock: socket.socket) -> DhtProtocol:
    """Start driving ``node`` on the bound socket ``sock`` (``bind_udp``), reading datagrams
    in batches. The socket is closed if that fails."""
    loop = asyncio.get_running_loop()
    proto = DhtProtocol(node, loop)
    try:
        await create_batched_endpoint(loop, lambda: proto, sock)
    except BaseException:
        sock.close()
        raise
    return proto
