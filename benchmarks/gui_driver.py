"""Runs the real desktop application (``dhtviewer.cli.main``) in this process and measures it
from inside, for the ``gui`` benchmark: ``python -m benchmarks.gui_driver MODE JSON``.

The application is started exactly as a user starts it, with command-line arguments that keep
every datagram on loopback (a local testnet, or a loopback bootstrap address). Before that, the
main window's ``show`` is wrapped to note the time and to watch for the first paint of any of
its widgets; then, per MODE:

- ``start``: report when the window was first painted, close it.
- ``run``: the soak, then (with ``flood``) the flood, then close. Soak: once the node is
  ready, start ``lookups`` get_peers lookups through the controller, evenly spread over
  ``seconds``; sample RSS, event-loop lag and UI update time. Flood: put a full routing table
  and peer store into the node (as the ``serving`` benchmark does), report the node's address,
  then measure lag and UI update time between the parent's "start" and "stop" lines on stdin
  (the parent floods the node meanwhile), until "quit".

Results are JSON lines on stdout prefixed with ``RESULT``. Event-loop lag: a task sleeps 10 ms
in a loop and records how late it wakes up. UI update time: the duration of each controller
tick (the 100 ms batch that hands queued events, routing snapshots and stats to the widgets,
whose slots run inside it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from benchmarks.common import cpu_seconds, rss_mb, summary

LAG_PERIOD = 0.010


class _State:
    def __init__(self) -> None:
        self.t_main = time.monotonic()
        self.t_show: float | None = None
        self.t_paint: float | None = None
        self.window: Any = None
        self.lags: list[float] = []
        self.ticks: list[float] = []
        self.recording = False


STATE = _State()


def emit(kind: str, **data: Any) -> None:
    print("RESULT " + json.dumps({"kind": kind, **data}), flush=True)


def _install_hooks(mode: str, params: dict[str, Any]) -> None:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    from dhtviewer.ui import controller as ctl
    from dhtviewer.ui import main_window as mw

    original_tick = ctl.Controller._tick

    def timed_tick(self: Any) -> None:
        t0 = time.perf_counter()
        original_tick(self)
        if STATE.recording:
            STATE.ticks.append(time.perf_counter() - t0)

    ctl.Controller._tick = timed_tick  # type: ignore[method-assign]

    class PaintWatch(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if (
                STATE.t_paint is None
                and event.type() == QEvent.Type.Paint
                and isinstance(obj, QWidget)
                and obj.window() is STATE.window
            ):
                STATE.t_paint = time.monotonic()
            return False

    original_show = mw.MainWindow.show

    def show(self: Any) -> None:
        app = QApplication.instance()
        assert app is not None
        STATE.window = self
        watch = PaintWatch(self)
        app.installEventFilter(watch)
        original_show(self)
        STATE.t_show = time.monotonic()
        # The run itself starts once the loop turns (the window is shown by then).
        QTimer.singleShot(0, lambda: asyncio.ensure_future(_drive(mode, params, watch)))

    mw.MainWindow.show = show  # type: ignore[method-assign]


async def _until_painted(limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while STATE.t_paint is None and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


async def _lag_monitor() -> None:
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(LAG_PERIOD)
        if STATE.recording:
            STATE.lags.append(max(0.0, loop.time() - t0 - LAG_PERIOD))


async def _until_ready(controller: Any, limit: float = 120.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if controller.state == "ready":
            return True
        await asyncio.sleep(0.05)
    return False


def _figures() -> dict[str, Any]:
    return {"lag": summary(STATE.lags), "tick": summary(STATE.ticks),
            "ticks": len(STATE.ticks)}


async def _drive(mode: str, params: dict[str, Any], watch: Any) -> None:
    from PySide6.QtWidgets import QApplication

    window = STATE.window
    try:
        await _until_painted()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(watch)
        emit("shown", t_main=STATE.t_main, t_show=STATE.t_show, t_paint=STATE.t_paint,
             rss_mb=rss_mb())
        if mode == "run":
            await _soak(window.controller, params)
            if params.get("flood"):
                await _flood(window.controller)
    except Exception as err:  # report it; the parent fails the benchmark
        emit("error", error=repr(err))
    finally:
        window.close()


async def _soak(controller: Any, params: dict[str, Any]) -> None:
    ready = await _until_ready(controller)
    seconds = float(params["seconds"])
    lookups = int(params["lookups"])
    testnet = getattr(controller, "testnet", None)
    hashes = list(testnet.announced) if testnet is not None else []
    if not ready or not hashes:
        emit("error", error=f"node not ready ({controller.state}) or no announced info-hash")
        return
    monitor = asyncio.ensure_future(_lag_monitor())
    STATE.recording = True
    t0 = time.monotonic()
    cpu0 = cpu_seconds()
    samples: list[tuple[float, float]] = [(0.0, rss_mb())]
    started = 0
    step = seconds / max(1, lookups)
    sample_every = max(seconds / 20, 0.5)
    next_sample = sample_every
    rng = random.Random(4)
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= seconds:
            break
        while started < lookups and started * step <= elapsed:
            if controller.find_peers(rng.choice(hashes)) is not None:
                started += 1
            else:
                break  # the controller refuses (busy): try again at the next step
        if elapsed >= next_sample:
            samples.append((elapsed, rss_mb()))
            next_sample += sample_every
        await asyncio.sleep(0.05)
    STATE.recording = False
    monitor.cancel()
    samples.append((time.monotonic() - t0, rss_mb()))
    emit("soak", seconds=time.monotonic() - t0, lookups_started=started,
         cpu_percent=100.0 * (cpu_seconds() - cpu0) / max(1e-9, time.monotonic() - t0),
         rss_samples=samples, rss_end_mb=samples[-1][1], rss_peak_mb=max(r for _, r in samples),
         dropped_events=getattr(controller, "dropped_events", None), **_figures())


async def _flood(controller: Any) -> None:
    from benchmarks.serving import fill_node

    await _until_ready(controller, 60.0)
    # Raw capacity, as in the headless pipelined run: the global reply budget would cap it.
    # Settings are the node's from its construction, so the session restarts with them.
    options = controller.options
    await controller.restart(
        replace(options, settings=replace(options.settings, rate_limit=False))
    )
    await _until_ready(controller, 60.0)
    session = controller.session
    node = session.node
    info_hashes = fill_node(node, random.Random(2), session.now())
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    emit("flood_ready", addr=list(session.local_address),
         info_hashes=[h.hex() for h in info_hashes])
    monitor = asyncio.ensure_future(_lag_monitor())
    cpu0 = t0 = 0.0
    while True:
        cmd = await commands.get()
        if cmd == "start":
            STATE.lags.clear()
            STATE.ticks.clear()
            STATE.recording = True
            cpu0, t0 = cpu_seconds(), time.monotonic()
        elif cmd == "stop":
            STATE.recording = False
            wall = time.monotonic() - t0
            emit("flood", cpu_percent=100.0 * (cpu_seconds() - cpu0) / max(1e-9, wall),
                 rss_mb=rss_mb(), dropped_events=getattr(controller, "dropped_events", None),
                 **_figures())
        elif cmd in ("quit", ""):
            break
    monitor.cancel()


def main(argv: list[str]) -> int:
    mode = argv[0]
    params: dict[str, Any] = json.loads(argv[1]) if len(argv) > 1 else {}
    _install_hooks(mode, params)
    limit = float(params.get("limit", 900.0))
    # A hung run must not hang the benchmark: leave hard after the limit.
    threading.Timer(limit, lambda: os._exit(3)).start()
    from dhtviewer.cli import main as cli_main

    code = cli_main(list(params.get("args", [])))
    os._exit(code)  # the watchdog timer thread would otherwise keep the process alive


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
