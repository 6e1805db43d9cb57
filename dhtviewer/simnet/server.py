"""SimnetServer: the simulated network's UDP I/O, on a few wildcard-bound sockets.

Linux delivers a datagram sent to any 127/8 address to a socket bound to ``0.0.0.0`` and the
port. ``IP_PKTINFO`` says which address it was sent to (which simulated node is asked), and on
``sendmsg`` it sets the address the reply leaves from, so one socket per port serves every
node. A wildcard socket would also take datagrams from other machines: every datagram that is
not from *and* to 127/8 is dropped and counted before anything reads it, and nothing is ever
sent to an address outside 127/8. Where the process may (root, ``CAP_NET_RAW``) the sockets
are also bound to the loopback device, so the kernel drops such traffic first.

The hot path, for tens of thousands of queries a second on one core:

- readiness from ``epoll``; each wake-up drains up to ``MAX_BATCH`` datagrams per socket
  with ``recvmsg`` (Python has no ``recvmmsg``), sending the delayed replies that fell due
  every ``FLUSH_EVERY`` datagrams so that a long batch does not make them late;
- the kernel's receive timestamp (``SO_TIMESTAMPNS``) is the moment a query arrived: a reply is
  due at that moment plus its simulated round-trip time, so time spent queued in the socket
  buffer counts against the reply's accuracy instead of being hidden;
- delayed replies wait in a heap of (due, seq, ...) tuples; the loop sleeps until the earliest;
- lateness (send time minus due time) of recent replies is kept for the p99 in ``/stats``.
"""

from __future__ import annotations

import contextlib
import heapq
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dhtviewer.simnet.network import Outgoing, Simnet

__all__ = ["IP_PKTINFO", "SimnetServer", "loopback_only", "open_sockets"]

IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)
SO_TIMESTAMPNS: int = getattr(socket, "SO_TIMESTAMPNS", 35)
_SO_BINDTODEVICE: int = getattr(socket, "SO_BINDTODEVICE", 25)
_SO_RCVBUFFORCE: int = getattr(socket, "SO_RCVBUFFORCE", 33)
_PKTINFO_LEN = 12  # struct in_pktinfo: ifindex, spec_dst, addr
_ANC_SIZE = socket.CMSG_SPACE(_PKTINFO_LEN) + socket.CMSG_SPACE(16)
RECV_SIZE = 2048
"""Bytes read per datagram. KRPC messages are under 1.5 KB; a longer datagram is truncated
(``MSG_TRUNC``), counted as oversized and dropped."""
MAX_BATCH = 256
FLUSH_EVERY = 16
RECV_BUFFER = 8 << 20
SEND_BUFFER = 4 << 20
LATENESS_WINDOW = 50_000
"""Recent replies whose lateness is kept for the p99."""
MAX_SLEEP = 0.05


def loopback_only(src_host: str, dst_ip: int) -> bool:
    """The loopback guard: True only for a datagram from a 127/8 address (as the kernel
    writes it) to a 127/8 address (``IP_PKTINFO``'s header destination, an int)."""
    return dst_ip >> 24 == 127 and src_host.startswith("127.")


def open_sockets(port: int, count: int) -> list[socket.socket]:
    """``count`` UDP sockets on ``0.0.0.0``: ports ``port`` .. ``port + count - 1``, or
    ephemeral ports for ``port`` 0. Raises ``OSError`` (closing what it opened) when a port is
    busy."""
    out: list[socket.socket] = []
    try:
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.append(s)
            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, b"lo")
            try:
                s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RECV_BUFFER)
            except OSError:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            s.bind(("0.0.0.0", port + i if port else 0))
            s.setblocking(False)
    except OSError:
        for s in out:
            s.close()
        raise
    return out


@dataclass(slots=True)
class ServerStats:
    """The server's own counters (the network's are in ``Simnet.counters``)."""

    datagrams: int = 0
    non_loopback: int = 0
    """Datagrams not from and to 127/8: dropped unread (the loopback guard)."""
    oversized: int = 0
    send_dropped: int = 0
    sent: int = 0
    wakeups: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class SimnetServer:
    """Serves ``net`` on ``sockets`` (from ``open_sockets``) until ``should_stop()``."""

    def __init__(self, net: Simnet, sockets: list[socket.socket],
                 clock: Callable[[], float] = time.time) -> None:
        self.net = net
        self.sockets = sockets
        self._by_port = {s.getsockname()[1]: s for s in sockets}
        self._clock = clock
        self._heap: list[tuple[float, int, Outgoing]] = []
        self._seq = 0
        self.stats = ServerStats()
        self.lateness: deque[float] = deque(maxlen=LATENESS_WINDOW)
        self.late_over_5ms = 0
        self.replies_measured = 0
        self.rates: dict[str, float] = {}
        self._rate_base: tuple[float, int, int, int] | None = None

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool]) -> None:
        ep = select.epoll()
        fds = {s.fileno(): s for s in self.sockets}
        for fd in fds:
            ep.register(fd, select.EPOLLIN)
        net = self.net
        clock = self._clock
        try:
            while not should_stop():
                now = clock()
                self._flush(now)
                timeout = MAX_SLEEP
                if self._heap:
                    timeout = min(timeout, self._heap[0][0] - now)
                due = net.next_due()
                if due is not None:
                    timeout = min(timeout, due - now)
                events = ep.poll(max(0.0, timeout))
                self.stats.wakeups += 1
                for fd, _ in events:
                    self._drain(fds[fd])
                now = clock()
                net.tick(now)
                self._dispatch(now)
                self._sample_rates(now)
        finally:
            ep.close()

    def _drain(self, sock: socket.socket) -> None:
        net = self.net
        stats = self.stats
        recv = sock.recvmsg
        port = sock.getsockname()[1]
        clock = self._clock
        for i in range(MAX_BATCH):
            try:
                data, anc, flags, src = recv(RECV_SIZE, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            stats.datagrams += 1
            dst = 0
            arrival = 0.0
            for level, kind, value in anc:
                if kind == IP_PKTINFO and level == socket.IPPROTO_IP:
                    dst = int.from_bytes(value[8:12], "big")
                elif kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                    sec, nsec = struct.unpack("qq", value[:16])
                    arrival = sec + nsec * 1e-9
            # The loopback guard: from and to 127/8 only, or it is not for us.
            if not loopback_only(src[0], dst):
                stats.non_loopback += 1
                continue
            if flags & socket.MSG_TRUNC:
                stats.oversized += 1
                continue
            net.receive(data, src, dst, port, arrival or clock())
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                now = clock()
                self._dispatch(now)
                self._flush(now)

    def _dispatch(self, now: float) -> None:
        """Send what the network produced that is due; queue the rest."""
        outbox = self.net.outbox
        if not outbox:
            return
        self.net.outbox = []
        heap = self._heap
        for out in outbox:
            if out.due <= now:
                self._send(out, now)
            else:
                self._seq += 1
                heapq.heappush(heap, (out.due, self._seq, out))

    def _flush(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, out = heapq.heappop(heap)
            self._send(out, now)

    def _send(self, out: Outgoing, now: float) -> None:
        if not loopback_only(out.dst[0], out.src_ip):
            self.stats.non_loopback += 1  # never: every destination came from a guarded packet
            return
        sock = self._by_port.get(out.src_port)
        if sock is None:
            self.stats.send_dropped += 1
            return
        info = b"\0\0\0\0" + out.src_ip.to_bytes(4, "big") + b"\0\0\0\0"
        try:
            sock.sendmsg([out.data], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, out.dst)
        except OSError:
            self.stats.send_dropped += 1
            return
        self.stats.sent += 1
        if out.reply:
            late = self._clock() - out.due
            self.lateness.append(late)
            self.replies_measured += 1
            if late > 0.005:
                self.late_over_5ms += 1

    # --- figures ----------------------------------------------------------------------------------
    def _sample_rates(self, now: float) -> None:
        c = self.net.counters
        base = self._rate_base
        current = (now, c.queries, self.stats.sent, c.background_sent)
        if base is None:
            self._rate_base = current
            return
        dt = now - base[0]
        if dt < 1.0:
            return
        self.rates = {
            "queries_in_per_s": (current[1] - base[1]) / dt,
            "datagrams_out_per_s": (current[2] - base[2]) / dt,
            "background_per_s": (current[3] - base[3]) / dt,
        }
        self._rate_base = current

    def lateness_ms(self) -> dict[str, Any]:
        """Percentiles of the recent replies' lateness, in milliseconds."""
        data = sorted(self.lateness)
        if not data:
            return {"n": 0, "p50": None, "p99": None, "max": None}

        def pct(q: float) -> float:
            return round(1000 * data[min(len(data) - 1, int(q * (len(data) - 1) + 0.5))], 3)

        return {"n": len(data), "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0),
                "over_5ms_total": self.late_over_5ms, "measured_total": self.replies_measured}

    def pending_replies(self) -> int:
        return len(self._heap)
