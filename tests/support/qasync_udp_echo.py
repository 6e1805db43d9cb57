"""Stress script: many UDP round trips through asyncio running on a qasync (Qt) event loop.

Run as a subprocess by tests/test_pyside_udp_regression.py, because the failure it guards
against is a hard abort of the interpreter ("Fatal Python error: deallocating None"), which
would take the whole pytest process down with it. PySide6 6.12.0 leaks one decref of None per
void method call on Python < 3.12; every datagram costs several such calls (socket notifier
toggles, timers), so enough traffic drives None's refcount to zero.

Usage: ``qasync_udp_echo.py [ROUND_TRIPS] [DEADLINE_S] [asyncio|batched]``: the echo server
runs on qasync's own datagram transport or on ``BatchedDatagramTransport`` (what the app's node
uses). Prints "round_trips=<n>" and exits 0 when all round trips completed, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import cast

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, for dhtviewer

import qasync
from PySide6.QtCore import QCoreApplication

# Several requests in flight at once, like a DHT lookup; small enough not to overrun the
# loopback socket buffers, so no datagram should ever be dropped.
WINDOW = 8


class EchoServer(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # qasync's datagram transport is not an asyncio.DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


class BatchedEchoServer(EchoServer):
    def datagrams_received(self, batch: list[tuple[bytes, tuple[str, int]]]) -> None:
        for data, addr in batch:
            self.transport.sendto(data, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self, total: int, done: asyncio.Future[None]) -> None:
        self.total = total
        self.sent = 0
        self.received = 0
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        for _ in range(min(WINDOW, self.total)):
            self._send()

    def _send(self) -> None:
        self.transport.sendto(self.sent.to_bytes(4, "big") + b"ping")
        self.sent += 1

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        if self.sent < self.total:
            self._send()
        elif self.received >= self.total and not self.done.done():
            self.done.set_result(None)


async def run(total: int, deadline_s: float, server_kind: str) -> int:
    loop = asyncio.get_running_loop()
    server: asyncio.BaseTransport
    if server_kind == "batched":
        from dhtviewer.net.batched_udp import BatchedDatagramTransport
        from dhtviewer.net.transport import bind_udp

        sock = bind_udp("127.0.0.1", 0, socket.AF_INET)
        server = BatchedDatagramTransport(loop, sock, BatchedEchoServer())
        server.start()
    else:
        server, _ = await loop.create_datagram_endpoint(EchoServer, local_addr=("127.0.0.1", 0))
    port = server.get_extra_info("sockname")[1]
    done: asyncio.Future[None] = loop.create_future()
    client_transport, client = await loop.create_datagram_endpoint(
        lambda: Client(total, done), remote_addr=("127.0.0.1", port)
    )
    try:
        await asyncio.wait_for(done, deadline_s)
    except asyncio.TimeoutError:
        pass
    finally:
        client_transport.close()
        server.close()
    return client.received


def main() -> int:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    deadline_s = float(sys.argv[2]) if len(sys.argv) > 2 else 100.0
    server_kind = sys.argv[3] if len(sys.argv) > 3 else "asyncio"
    app = QCoreApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    started = time.monotonic()
    with loop:
        received = loop.run_until_complete(run(total, deadline_s, server_kind))
    print(f"round_trips={received} seconds={time.monotonic() - started:.2f}", flush=True)
    return 0 if received == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
