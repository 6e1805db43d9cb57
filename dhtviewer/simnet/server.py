"""SimnetServer: the simulated network's UDP I/O, on a few wildcard-bound sockets.

Linux delivers a datagram sent to any 127/8 address to a socket bound to ``0.0.0.0`` and the
port. ``IP_PKTINFO`` says which address it was sent to (which simulated node is asked), and on
``sendmsg`` it sets the address the reply leaves from, so one socket per port serves every
node. A wildcard socket would also take datagrams from other machines: every datagram that is
not from *and* to 127/8 is dropped and counted before anything reads it, and nothing is ever
sent to an address outside 127/8. Where the process may (root, ``CAP_NET_RAW``) the sockets
are also bound to the loopback device, so the kernel drops such traffic first.

The hot path, for thousands of queries a second per process:

- readiness from ``epoll``; each wake-up drains up to ``MAX_BATCH`` datagrams per socket
  with ``recvmsg`` (Python has no ``recvmmsg``), sending the delayed replies that fell due
  every ``FLUSH_EVERY`` datagrams so that a long batch does not make them late;
- the kernel's receive timestamp (``SO_TIMESTAMPNS``) is the moment a query arrived: a reply is
  due at that moment plus its simulated round-trip time, so time spent queued in the socket
  buffer counts against the reply's accuracy instead of being hidden;
- delayed replies wait in a heap of (due, seq, ...) tuples; the loop sleeps until the earliest
  (``SLACK``);
- lateness (how far from its due time a reply left, early or late) goes into a histogram
  (``lateness.py``).

One process (``--workers 0``) runs one server over every port, for the whole network
(``Role.WHOLE``), with the control API's requests run on its loop between batches
(``LoopCalls``). With workers (``workers.py``), each serving process runs one over its own
ports, and a coordinator that sends the network's own queries shares the sending half
(``Sender``).
"""

from __future__ import annotations

import contextlib
import heapq
import pickle
import select
import socket
import struct
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from dhtviewer.simnet.control import LoopCalls
from dhtviewer.simnet.lateness import LatenessHistogram
from dhtviewer.simnet.links import Answer, Ask, MemberJoined, MemberLeft
from dhtviewer.simnet.network import Outgoing, Simnet
from dhtviewer.simnet.questions import Question, answer

__all__ = [
    "IP_PKTINFO",
    "Sender",
    "SimnetServer",
    "link_pair",
    "loopback_only",
    "open_sockets",
    "read_messages",
    "send_message",
]

IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)
SO_TIMESTAMPNS: int = getattr(socket, "SO_TIMESTAMPNS", 35)
_SO_BINDTODEVICE: int = getattr(socket, "SO_BINDTODEVICE", 25)
_SO_RCVBUFFORCE: int = getattr(socket, "SO_RCVBUFFORCE", 33)
_PKTINFO_LEN = 12  # struct in_pktinfo: ifindex, spec_dst, addr
_PKTINFO = struct.Struct("=I4sI")
_MSG_TRUNC = int(socket.MSG_TRUNC)  # the enum's & costs microseconds per datagram
_IPPROTO_IP = int(socket.IPPROTO_IP)
_SOL_SOCKET = int(socket.SOL_SOCKET)
_TIMESPEC = struct.Struct("qq")
_ANC_SIZE = socket.CMSG_SPACE(_PKTINFO_LEN) + socket.CMSG_SPACE(16)
RECV_SIZE = 2048
"""Bytes read per datagram. KRPC messages are under 1.5 KB; a longer datagram is truncated
(``MSG_TRUNC``), counted as oversized and dropped."""
MAX_BATCH = 256
FLUSH_EVERY = 16
RECV_BUFFER = 8 << 20
SEND_BUFFER = 4 << 20
MAX_SLEEP = 0.05
SLACK = 0.0005
"""A delayed reply leaves when it is due within this many seconds: ``epoll`` sleeps in whole
milliseconds (rounded up), so aiming half a millisecond early centres the error on zero, and
replies due close together leave in one wake-up. Lateness is measured as the absolute error."""
RATE_PERIOD = 1.0
"""Seconds over which the per-second rates of ``/stats`` are measured."""
LINK_BUFFER = 4 << 20
"""Socket buffer of the links between serving processes and the coordinator."""


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
    """A process's own I/O counters (the network's are in ``Simnet.counters``)."""

    datagrams: int = 0
    non_loopback: int = 0
    """Datagrams not from and to 127/8: dropped unread (the loopback guard)."""
    oversized: int = 0
    send_dropped: int = 0
    sent: int = 0
    wakeups: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def send_message(link: socket.socket, msg: object) -> bool:
    """Send one pickled message on a ``SOCK_SEQPACKET`` link; False if it would block."""
    try:
        link.send(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
    except (BlockingIOError, InterruptedError):
        return False
    return True


def read_messages(link: socket.socket, limit: int = 1024) -> tuple[list[Any], bool]:
    """Messages waiting on ``link`` (up to ``limit``), and whether the other end is gone."""
    out: list[Any] = []
    for _ in range(limit):
        try:
            data = link.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return out, False
        except OSError:
            return out, True
        if not data:
            return out, True
        out.append(pickle.loads(data))
    return out, False


def link_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected, non-blocking ``SOCK_SEQPACKET`` sockets with large buffers."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b):
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LINK_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LINK_BUFFER)
        s.setblocking(False)
    return a, b


class Sender:
    """The sending half: datagrams from simulated addresses, now or when due, with their
    lateness; rates for ``/stats``."""

    def __init__(self, net: Simnet, sockets: list[socket.socket],
                 clock: Callable[[], float] = time.time) -> None:
        self.net = net
        self.sockets = sockets
        self._by_port = {s.getsockname()[1]: s for s in sockets}
        self._clock = clock
        self._heap: list[tuple[float, int, Outgoing]] = []
        self._seq = 0
        self.stats = ServerStats()
        self.lateness = LatenessHistogram()
        self.rates: dict[str, float] = {}
        self._rate_base: tuple[float, int, int, int] | None = None

    def _dispatch(self, now: float) -> None:
        """Send what the network produced that is due; queue the rest."""
        outbox = self.net.outbox
        if not outbox:
            return
        self.net.outbox = []
        heap = self._heap
        for out in outbox:
            if out.due <= now:
                self._send(out)
            else:
                self._seq += 1
                heapq.heappush(heap, (out.due, self._seq, out))

    def _flush(self, now: float) -> None:
        heap = self._heap
        due = now + SLACK
        while heap and heap[0][0] <= due:
            _, _, out = heapq.heappop(heap)
            self._send(out)

    def _send(self, out: Outgoing) -> None:
        src_ip = out.src_ip
        # The loopback guard (``loopback_only``, inlined: this runs for every datagram).
        if src_ip >> 24 != 127 or not out.dst[0].startswith("127."):
            self.stats.non_loopback += 1  # never: every destination came from a guarded packet
            return
        sock = self._by_port.get(out.src_port)
        if sock is None:
            self.stats.send_dropped += 1
            return
        info = _PKTINFO.pack(0, src_ip.to_bytes(4, "big"), 0)
        try:
            sock.sendmsg([out.data], [(_IPPROTO_IP, IP_PKTINFO, info)], 0, out.dst)
        except OSError:
            self.stats.send_dropped += 1
            return
        self.stats.sent += 1
        if out.reply:
            self.lateness.add(abs(self._clock() - out.due))

    def _sample_rates(self, now: float) -> None:
        c = self.net.counters
        base = self._rate_base
        current = (now, c.queries, self.stats.sent, c.background_sent)
        if base is None:
            self._rate_base = current
            return
        dt = now - base[0]
        if dt < RATE_PERIOD:
            return
        self.rates = {
            "queries_in_per_s": (current[1] - base[1]) / dt,
            "datagrams_out_per_s": (current[2] - base[2]) / dt,
            "background_per_s": (current[3] - base[3]) / dt,
        }
        self._rate_base = current

    def pending_replies(self) -> int:
        return len(self._heap)

    def run(self, should_stop: Callable[[], bool]) -> None:
        """The loop, until ``should_stop()``."""
        raise NotImplementedError

    def answer(self, question: Question, args: tuple[Any, ...]) -> Any:
        """This process's part of the answer to a control API question."""
        return answer(self.net, self, question, args, self._clock())

    def ask(self, question: Question, args: tuple[Any, ...]) -> Future[list[Any]]:
        """The answers of every part of the network (here: this one; see ``control.Part``)."""
        future: Future[list[Any]] = Future()
        future.set_result([self.answer(question, args)])
        return future


class SimnetServer(Sender):
    """Serves ``net`` on ``sockets`` (from ``open_sockets``) until ``should_stop()``.

    ``link``: with a coordinator (``Role.SERVER``), the socket to it. ``calls``: in one process
    (``Role.WHOLE``), the control API's requests to run on this loop (``fileno()`` readable
    when there are some, ``run_pending()`` runs them)."""

    def __init__(self, net: Simnet, sockets: list[socket.socket],
                 clock: Callable[[], float] = time.time, link: socket.socket | None = None,
                 calls: LoopCalls | None = None) -> None:
        super().__init__(net, sockets, clock)
        self.link = link
        self.calls = calls
        self.link_lost = False

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool]) -> None:
        ep = select.epoll()
        fds = {s.fileno(): s for s in self.sockets}
        for fd in fds:
            ep.register(fd, select.EPOLLIN)
        link_fd = self.link.fileno() if self.link is not None else -1
        if link_fd >= 0:
            ep.register(link_fd, select.EPOLLIN)
        calls_fd = self.calls.fileno() if self.calls is not None else -1
        if calls_fd >= 0:
            ep.register(calls_fd, select.EPOLLIN)
        net = self.net
        clock = self._clock
        try:
            while not should_stop() and not self.link_lost:
                now = clock()
                self._flush(now)
                timeout = MAX_SLEEP
                if self._heap:
                    timeout = min(timeout, self._heap[0][0] - SLACK - now)
                due = net.next_due()
                if due is not None:
                    timeout = min(timeout, due - now)
                events = ep.poll(max(0.0, timeout))
                self.stats.wakeups += 1
                for fd, _ in events:
                    if fd == link_fd:
                        self._from_link()
                    elif fd == calls_fd and self.calls is not None:
                        self.calls.run_pending()
                    else:
                        self._drain(fds[fd])
                now = clock()
                net.tick(now)
                self._dispatch(now)
                self._uplink()
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
                if kind == IP_PKTINFO and level == _IPPROTO_IP:
                    dst = int.from_bytes(value[8:12], "big")
                elif kind == SO_TIMESTAMPNS and level == _SOL_SOCKET:
                    sec, nsec = _TIMESPEC.unpack_from(value)
                    arrival = sec + nsec * 1e-9
            # The loopback guard (``loopback_only``, inlined): from and to 127/8 only, or it
            # is not for us.
            if dst >> 24 != 127 or not src[0].startswith("127."):
                stats.non_loopback += 1
                continue
            if flags & _MSG_TRUNC:
                stats.oversized += 1
                continue
            net.receive(data, src, dst, port, arrival or clock())
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                now = clock()
                self._dispatch(now)
                self._flush(now)

    # --- the link to the coordinator -------------------------------------------------------------
    def _uplink(self) -> None:
        net = self.net
        if not net.uplink:
            return
        pending, net.uplink = net.uplink, []
        if self.link is None:
            return
        for msg in pending:
            if not send_message(self.link, msg):
                net.counters.reports_dropped += 1

    def _from_link(self) -> None:
        assert self.link is not None
        messages, gone = read_messages(self.link)
        for msg in messages:
            if isinstance(msg, (MemberJoined, MemberLeft)):
                self.net.from_coordinator(msg)
            elif isinstance(msg, Ask):
                try:
                    body = self.answer(msg.what, msg.args)
                except Exception as err:  # a bug must not end the serving process
                    body = {"error": f"{type(err).__name__}: {err}"}
                if not send_message(self.link, Answer(msg.request, body)):
                    self.net.counters.reports_dropped += 1
        if gone:
            self.link_lost = True

