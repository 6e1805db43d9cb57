"""A raw KRPC endpoint for interop tests: send hand-built queries, and answer like a polite
empty node.

A socket that sends queries but never answers them makes real clients wait: libtorrent puts
even a BEP 43 read-only querier into its lookups (its own put and get traversals then wait out
the hard timeout on it). This endpoint answers every query it receives on a background thread,
with a well-formed reply of a node that knows nothing (``id``, an empty ``nodes`` and a
``token``), so it never slows anybody down; replies to our own queries are handed to ``ask``.
Everything is bounded: ``ask`` raises TimeoutError, ``close`` joins the thread.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import replace
from types import TracebackType

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import Addr, Message, Query, Response

__all__ = ["RawPeer"]


class RawPeer:
    def __init__(self, node_id: bytes, host: str = "127.0.0.1", read_only: bool = True) -> None:
        self.node_id = node_id
        self.read_only = read_only
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.1)
        self.addr: Addr = tuple(self.sock.getsockname()[:2])  # type: ignore[assignment]
        self._replies: dict[bytes, queue.Queue[tuple[bytes, Addr]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next_tid = 1
        self.answered = 0
        self._thread = threading.Thread(target=self._run, name="raw-peer", daemon=True)
        self._thread.start()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def tid(self) -> bytes:
        with self._lock:
            tid = self._next_tid.to_bytes(2, "big")
            self._next_tid = self._next_tid % 65535 + 1
        return tid

    def ask(self, addr: Addr, q: Query, timeout: float = 3.0) -> Message:
        """Send ``q`` (its tid replaced by a fresh one; BEP 43 ``ro`` set unless disabled) to
        ``addr`` and return the decoded reply."""
        q = replace(q, tid=self.tid(), read_only=self.read_only or q.read_only)
        box: queue.Queue[tuple[bytes, Addr]] = queue.Queue()
        with self._lock:
            self._replies[q.tid] = box
        try:
            self.sock.sendto(krpc.encode(q), addr)
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    data, source = box.get(timeout=remaining)
                except queue.Empty:
                    break
                if source[:2] == addr:
                    return krpc.decode(data)
        finally:
            with self._lock:
                self._replies.pop(q.tid, None)
        raise TimeoutError(f"no reply from {addr[0]}:{addr[1]} within {timeout}s")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            try:
                msg = krpc.decode(data)
            except krpc.KrpcError:
                continue
            if isinstance(msg, Query):
                reply = Response(msg.tid, self.node_id, token=b"raw-peer", nodes=())
                try:
                    self.sock.sendto(krpc.encode(reply), source)
                    self.answered += 1
                except OSError:
                    pass
                continue
            with self._lock:
                box = self._replies.get(msg.tid)
            if box is not None:
                box.put((data, source))
