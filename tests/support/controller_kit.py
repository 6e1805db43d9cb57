"""The GUI controller on an embedded testnet, for the tests of the controller and of the parts
it delegates to (user lookups, the announce check): start options for a small loopback
testnet (127.0.60.x, ephemeral ports) and a recorder of what the controller emits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
from tests.support.qt_async import qasync_loop, run, until

NODE_ID = bytes(range(20))


@pytest.fixture(scope="module")
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as lp:
        yield lp


@pytest.fixture
def ctl(loop: qasync.QEventLoop) -> Iterator[Controller]:
    c = Controller()
    yield c
    run(loop, c.shutdown())


def running_controller(loop: qasync.QEventLoop, options: StartOptions) -> Iterator[Controller]:
    """A fixture's body: a Controller started on ``options`` and ready, shut down after."""
    c = Controller()

    async def start() -> None:
        await c.start(options)  # type: ignore[misc]
        await until(lambda: c.state == "ready")

    run(loop, start())
    yield c
    run(loop, c.shutdown())


def tn_options(n: int = 24, **changes: Any) -> StartOptions:
    base = StartOptions(
        mode=TESTNET,
        testnet_nodes=n,
        testnet_base="127.0.60.1",
        testnet_seed=1,
        bind_host="127.0.0.1",
        port=0,
        node_id=NODE_ID,
    )
    return StartOptions(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


class Recorder:
    """Everything a controller emits, with the time of each ``events`` batch."""

    def __init__(self, c: Controller) -> None:
        self.batches: list[tuple[float, list[Any]]] = []
        self.states: list[tuple[str, str]] = []
        self.snapshots: list[Any] = []
        self.testnets: list[Any] = []
        self.errors: list[str] = []
        self.stalled: list[str] = []
        self.ports: list[tuple[str, int, int]] = []
        c.events.connect(lambda b: self.batches.append((time.monotonic(), b)))
        c.state_changed.connect(lambda s, d: self.states.append((s, d)))
        c.routing_changed.connect(self.snapshots.append)
        c.testnet_changed.connect(self.testnets.append)
        c.error.connect(self.errors.append)
        c.bootstrap_stalled.connect(self.stalled.append)
        c.port_in_use.connect(lambda h, p, f: self.ports.append((h, p, f)))

    def events(self) -> list[Any]:
        return [e for _, b in self.batches for e in b]
