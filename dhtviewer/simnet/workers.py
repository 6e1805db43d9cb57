"""Workers: one simulated network served by several processes, one per core.

Answering a query costs tens of microseconds of Python, so one process tops out below the
issue's 10,000 queries a second once the socket work is counted. The network is built once,
then the process forks:

- each **serving process** (``--workers N``) answers the queries to the nodes of its own ports
  (ports are dealt out in turn; a node lives on one port, so everything about a node, its
  tokens and the peers announced to it, stays in one process). The big, read-only part of the
  network (the id index, the swarms) is shared copy-on-write with the parent; the node flags,
  which churn changes, are shared memory (``NodeIndex.share_flags``);
- the parent becomes the **coordinator**: it runs what concerns the whole network (members,
  the queries the network sends them, churn, the control API) and sends from any port (it
  keeps every socket; it reads none).

They talk over ``SOCK_SEQPACKET`` socket pairs (``links.py``): a serving process reports
clients it hears from and their replies to the network's queries; the coordinator tells every
serving process who the members are (their nodes list members in their answers) and asks them
the control API's questions. A serving process that dies ends the network (the coordinator
says which, on stderr, and exits with status 1): a network silently missing a share of its
nodes would mislead.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dhtviewer.simnet.control import LoopCalls
from dhtviewer.simnet.links import Answer, Ask, Heard, MemberJoined, MemberLeft, Reply
from dhtviewer.simnet.network import Simnet
from dhtviewer.simnet.questions import Question
from dhtviewer.simnet.server import (
    MAX_SLEEP,
    Sender,
    SimnetServer,
    link_pair,
    read_messages,
    send_message,
)

__all__ = ["Coordinator", "WorkerError", "WorkerPool", "default_workers", "usable_cores"]

log = logging.getLogger(__name__)
STOP_TIMEOUT = 5.0
"""Seconds a serving process gets to end after SIGTERM before it is killed."""
ASK_TIMEOUT = 30.0
"""An unanswered question is forgotten after this long."""
PARENT_CHECK = 1.0


class WorkerError(RuntimeError):
    """A serving process ended while the network ran."""


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(ports: int) -> int:
    """One serving process per core this process may use, at most one per port."""
    return max(1, min(usable_cores(), ports))


@dataclass
class _Worker:
    index: int
    pid: int
    link: socket.socket
    ports: list[int]
    backlog: deque[object] = field(default_factory=deque)
    """Messages the link could not take yet (sent before anything newer)."""


@dataclass
class _Pending:
    future: Future[list[Any]]
    answers: list[Any]
    waiting: set[int]
    at: float


class WorkerPool:
    """Forks ``count`` serving processes of ``net`` over ``sockets`` (ports dealt in turn)."""

    def __init__(self, net: Simnet, sockets: list[socket.socket], count: int) -> None:
        if not 1 <= count <= len(sockets):
            raise ValueError(f"--workers must be 0..{len(sockets)} (one port each at least), "
                             f"got {count}")
        self.workers: list[_Worker] = []
        net.index.share_flags()
        # Objects made so far are never collected: the collector would otherwise write to
        # every one of them in every process and so copy their pages.
        gc.collect()
        gc.freeze()
        parent = os.getpid()
        for i in range(count):
            mine = sockets[i::count]
            ours, theirs = link_pair()
            pid = os.fork()
            if pid == 0:  # the serving process: never returns
                ours.close()
                for w in self.workers:
                    w.link.close()
                _serve(net, i, mine, theirs, parent)
            theirs.close()
            self.workers.append(_Worker(i, pid, ours, [s.getsockname()[1] for s in mine]))

    def stop(self) -> None:
        """End every serving process (SIGTERM, then SIGKILL after ``STOP_TIMEOUT``)."""
        for w in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for w in self.workers:
            while True:
                try:
                    done, _ = os.waitpid(w.pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(w.pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(w.pid, 0)
                    break
                time.sleep(0.02)
            w.link.close()


def _serve(net: Simnet, worker: int, sockets: list[socket.socket], link: socket.socket,
           parent: int) -> None:
    """The body of a serving process. Ends the process (``os._exit``): it must never return
    into the parent's stack."""
    status = 0
    try:
        stop = [False]

        def on_signal(signum: int, frame: object) -> None:
            stop[0] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        net.become_server(worker)
        checked = [time.monotonic()]

        def should_stop() -> bool:
            if time.monotonic() - checked[0] >= PARENT_CHECK:
                checked[0] = time.monotonic()
                if os.getppid() != parent:
                    return True
            return stop[0]

        SimnetServer(net, sockets, link=link).run(should_stop)
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(status)


class Coordinator(Sender):
    """The parent's loop (see the module docstring): links to the serving processes, the
    network's own traffic, churn, and the control API's calls."""

    def __init__(self, net: Simnet, sockets: list[socket.socket], pool: WorkerPool,
                 calls: LoopCalls, clock: Callable[[], float] = time.time) -> None:
        super().__init__(net, sockets, clock)
        net.become_coordinator()
        self.pool = pool
        self.calls = calls
        self._pending: dict[int, _Pending] = {}
        self._next_request = 0
        self.failed: str | None = None

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Until ``should_stop()``; raises ``WorkerError`` when a serving process dies."""
        ep = select.epoll()
        links = {w.link.fileno(): w for w in self.pool.workers}
        for fd in links:
            ep.register(fd, select.EPOLLIN)
        ep.register(self.calls.fileno(), select.EPOLLIN)
        net = self.net
        clock = self._clock
        try:
            while not should_stop():
                now = clock()
                timeout = MAX_SLEEP
                due = net.next_due()
                if due is not None:
                    timeout = min(timeout, due - now)
                for fd, _ in ep.poll(max(0.0, timeout)):
                    if fd in links:
                        self._from_worker(links[fd])
                    else:
                        self.calls.run_pending()
                if self.failed is not None:
                    raise WorkerError(self.failed)
                now = clock()
                net.tick(now)
                self._dispatch(now)
                self._broadcast_members()
                self._flush_backlogs()
                self._sample_rates(now)
                self._forget_old_questions(now)
        finally:
            ep.close()

    # --- serving processes --------------------------------------------------------------------
    def _from_worker(self, w: _Worker) -> None:
        messages, gone = read_messages(w.link)
        for msg in messages:
            if isinstance(msg, (Heard, Reply)):
                self.net.from_server(msg)
            elif isinstance(msg, Answer):
                self._answered(w, msg)
        if gone:
            status = "running"
            with contextlib.suppress(ChildProcessError):
                pid, code = os.waitpid(w.pid, os.WNOHANG)
                if pid:
                    status = f"exit status {os.waitstatus_to_exitcode(code)}"
            self.failed = (f"serving process {w.index} (pid {w.pid}, ports "
                           f"{', '.join(map(str, w.ports))}) ended unexpectedly ({status})")

    def _send_to(self, w: _Worker, msg: object) -> None:
        if w.backlog or not send_message(w.link, msg):
            w.backlog.append(msg)

    def _flush_backlogs(self) -> None:
        for w in self.pool.workers:
            while w.backlog and send_message(w.link, w.backlog[0]):
                w.backlog.popleft()

    def _broadcast_members(self) -> None:
        changes = self.net.members.changes
        if not changes:
            return
        self.net.members.changes = []
        for addr, m in changes:
            msg: MemberJoined | MemberLeft = (
                MemberLeft(addr) if m is None
                else MemberJoined(addr, m.ip, m.node_id, m.version, m.first_seen)
            )
            for w in self.pool.workers:
                self._send_to(w, msg)

    # --- the control API's questions ----------------------------------------------------------
    def ask(self, question: Question, args: tuple[Any, ...]) -> Future[list[Any]]:
        future: Future[list[Any]] = Future()
        self._next_request += 1
        request = self._next_request
        pending = _Pending(future, [self.answer(question, args)],
                           {w.index for w in self.pool.workers}, self._clock())
        self._pending[request] = pending
        for w in self.pool.workers:
            self._send_to(w, Ask(request, question, args))
        self._complete(request)
        return future

    def _answered(self, w: _Worker, msg: Answer) -> None:
        pending = self._pending.get(msg.request)
        if pending is None:
            return
        pending.answers.append(msg.body)
        pending.waiting.discard(w.index)
        self._complete(msg.request)

    def _complete(self, request: int) -> None:
        pending = self._pending[request]
        if not pending.waiting:
            del self._pending[request]
            pending.future.set_result(pending.answers)

    def _forget_old_questions(self, now: float) -> None:
        for request in [r for r, p in self._pending.items() if now - p.at > ASK_TIMEOUT]:
            pending = self._pending.pop(request)
            pending.future.set_exception(TimeoutError("a serving process did not answer"))
