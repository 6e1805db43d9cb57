"""asyncio on a qasync loop inside pytest-qt tests: the GUI's controller and the DHT session
need a running asyncio loop that is also Qt's, exactly as in the application.

``qasync_loop(app)`` (a context manager) builds the loop on pytest-qt's QApplication;
``run(loop, coro)`` runs a coroutine on it (Qt events, timers and sockets are served meanwhile)
with a time bound; ``until(predicate)`` waits, inside such a coroutine, for a condition, also
bounded.

Garbage collection: while the loop is in use, Python's cyclic collector only runs here, in the
GUI thread (as the application arranges too). An embedded testnet runs in a thread of its own,
and a collection started there would destroy unreachable Qt objects outside their thread, which
leaves dangling timers behind and crashes Qt later.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import qasync
from PySide6.QtWidgets import QApplication

T = TypeVar("T")


@contextlib.contextmanager
def qasync_loop(app: QApplication) -> Iterator[qasync.QEventLoop]:
    # Windows closed by a test must not quit the application (and stop the loop under it).
    QApplication.setQuitOnLastWindowClosed(False)
    enabled = gc.isenabled()
    gc.disable()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        gc.collect()
        if enabled:
            gc.enable()


def collect_garbage() -> None:
    """What the automatic collector would do now, done in this (the GUI) thread."""
    threshold = gc.get_threshold()
    counts = gc.get_count()
    for generation in (2, 1, 0):
        if counts[generation] > threshold[generation]:
            gc.collect(generation)
            return


def run(loop: asyncio.AbstractEventLoop, coro: Awaitable[T], timeout: float = 30.0) -> T:
    collect_garbage()
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` every 20 ms until it is true; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g} s: {what or predicate}")
        await asyncio.sleep(0.02)
