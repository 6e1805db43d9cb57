"""The packet log under a flood, as a user sees it: ``python tools/packet_flood.py``.

Starts the real main window on an embedded local testnet, raises the Packet log and, once the
node is ready, floods the node from a child process on loopback: a crowd of well-behaved
querying addresses (get_peers and find_node), a few addresses that send far faster than the
per-IP budget (they get blocked, and their datagrams are then dropped before parsing), and a
few that send malformed datagrams. The flood is bounded in time (``--seconds``) and count.
Meanwhile it records the event-loop lag (a task sleeping 10 ms, how late it wakes), the
controller's tick (the 100 ms batch with every slot it triggers) and the RSS, then saves a PNG
of the window at each ``--size`` and prints one JSON line of figures.

Run it under Xvfb to see the real window (``xvfb-run -a -s "-screen 0 1920x1200x24" python
tools/packet_flood.py --out DIR``); QT_QPA_PLATFORM=offscreen works too. Settings go to a
temporary file, so the user's own are neither read nor changed. Every datagram stays on
127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TESTNET_BASE = "127.0.91.1"
CROWD_BASE = "127.0.93.1"
FLOODER_BASE = "127.0.94.1"
GARBAGE_BASE = "127.0.95.1"
LAG_PERIOD = 0.010
MALFORMED = (
    b"this is not bencode \x00\x01\x02\xff",
    b"d1:ad2:id20:abcdefghij",  # truncated
    b"d1:q4:ping1:t2:xy1:y1:qe",  # a query without its arguments: answered with error 203
    b"li1ei2ee",
    b"d1:y1:q1:t2:zz1:q9:find_node1:ad2:id3:abc6:target20:01234567890123456789ee",
)


def _flood(target: tuple[str, int], rate: float, seconds: float, crowd: int, flooders: int,
           flooder_rate: float, garbage: int, garbage_rate: float, seed: int,
           out: Any) -> None:
    """Child process: send the mix open-loop for ``seconds``; read and discard the replies."""
    from dhtviewer.dht import krpc
    from dhtviewer.dht.messages import FindNodeQuery, GetPeersQuery
    from dhtviewer.dht.node_id import random_id
    from dhtviewer.net.testnet import loopback_range

    rng = random.Random(seed)
    socks: list[socket.socket] = []
    plans: list[tuple[float, int, bytes | None]] = []  # (queries/s, socket index, fixed data)

    def open_sock(ip: str) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        s.setblocking(False)
        socks.append(s)
        return len(socks) - 1

    crowd_rate = max(0.0, rate - flooders * flooder_rate - garbage * garbage_rate)
    for ip in loopback_range(CROWD_BASE, crowd):
        plans.append((crowd_rate / max(1, crowd), open_sock(ip), None))
    for ip in loopback_range(FLOODER_BASE, flooders):
        plans.append((flooder_rate, open_sock(ip), None))
    for ip in loopback_range(GARBAGE_BASE, garbage):
        plans.append((garbage_rate, open_sock(ip), MALFORMED[len(plans) % len(MALFORMED)]))
    ids = [random_id(rng) for _ in socks]
    sent = received = 0
    limit = int(rate * seconds * 1.2) + 100  # bounded in count as well as in time
    start = time.perf_counter()
    due = [start + rng.random() / max(r, 1e-9) for r, _, _ in plans]
    seq = 0
    while True:
        now = time.perf_counter()
        if now - start >= seconds or sent >= limit:
            break
        for i, (r, si, fixed) in enumerate(plans):
            if r <= 0 or due[i] > now:
                continue
            due[i] += 1.0 / r
            seq += 1
            tid = (seq & 0xFFFF).to_bytes(2, "big")
            if fixed is not None:
                data = fixed
            elif seq % 2:
                data = krpc.encode(GetPeersQuery(tid, ids[si], info_hash=random_id(rng)))
            else:
                data = krpc.encode(FindNodeQuery(tid, ids[si], target=random_id(rng)))
            try:
                socks[si].sendto(data, target)
                sent += 1
            except OSError:
                pass
        for s in socks:
            while True:
                try:
                    s.recv(65536)
                    received += 1
                except OSError:
                    break
        time.sleep(0.001)
    for s in socks:
        s.close()
    out.send({"sent": sent, "replies": received, "seconds": time.perf_counter() - start})


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, int(p * len(v)))]

    return {"n": len(v), "p50_ms": 1000 * q(0.5), "p99_ms": 1000 * q(0.99),
            "max_ms": 1000 * v[-1]}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from PySide6.QtCore import QSettings

    from dhtviewer.ui import controller as ctl
    from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
    from dhtviewer.ui.main_window import MainWindow
    from dhtviewer.ui.settings_store import SettingsStore

    ticks: list[float] = []
    lags: list[float] = []
    recording = False
    original_tick = ctl.Controller._tick

    def timed_tick(self: Any) -> None:
        t0 = time.perf_counter()
        original_tick(self)
        if recording:
            ticks.append(time.perf_counter() - t0)

    ctl.Controller._tick = timed_tick  # type: ignore[method-assign]

    home = Path(tempfile.mkdtemp(prefix="dhtviewer-flood-"))
    store = SettingsStore(QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat))
    controller = Controller()
    window = MainWindow(controller, store, testnet_base=TESTNET_BASE, testnet_seed=7,
                        state_path=home / "state.json")
    window.apply_command_line(
        StartOptions(mode=TESTNET, testnet_nodes=args.nodes, bind_host="127.0.0.1", port=0),
        mode=True, bind=True,
    )
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.size]
    window.resize(*sizes[0])
    window.show()
    window.raise_dock("packets")

    async def lag_monitor() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(LAG_PERIOD)
            if recording:
                lags.append(max(0.0, loop.time() - t0 - LAG_PERIOD))

    result: dict[str, Any] = {}
    monitor = asyncio.ensure_future(lag_monitor())
    try:
        window.start_node()
        await _until(lambda: controller.state == "ready", 60, "the node to be ready")
        local = controller.local_address()
        assert local is not None
        window.raise_dock("packets")
        panel = window.packets
        if args.max_packets and hasattr(panel, "set_limits"):
            from dataclasses import replace

            panel.set_limits(replace(panel.capture.limits, max_packets=args.max_packets))
        if args.addresses:
            panel.show_addresses()
        await asyncio.sleep(1.0)
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_flood, args=(
            (local[0], local[1]), args.rate, args.seconds, args.crowd, args.flooders,
            args.flooder_rate, args.garbage, args.garbage_rate, 11, child))
        rss0 = _rss_mb()
        proc.start()
        recording = True
        t0 = time.monotonic()
        rss_peak = rss0
        rss_samples: list[tuple[float, float]] = []
        next_sample = 0.0
        shot_at = args.seconds * 0.75
        shots: list[str] = []
        acted = False
        filter_at: float | None = None
        filter_s: float | None = None
        while proc.is_alive() and time.monotonic() - t0 < args.seconds + 30:
            await asyncio.sleep(0.25)
            rss_peak = max(rss_peak, _rss_mb())
            if time.monotonic() - t0 >= next_sample:
                rss_samples.append((round(time.monotonic() - t0, 1), round(_rss_mb(), 1)))
                next_sample += max(1.0, args.seconds / 20)
            if not acted and time.monotonic() - t0 >= shot_at - 3.0:
                # what a user reading the log does: filter, then pause to read
                acted = True
                if args.filter:
                    filter_at = time.monotonic()
                    window.packets.filter.setText(args.filter)
                    window.packets.apply_filter()
                if args.pause:
                    window.packets.pause.setChecked(True)
            if (filter_at is not None and filter_s is None
                    and not getattr(window.packets.model, "filtering", False)):
                filter_s = time.monotonic() - filter_at
            if not shots and time.monotonic() - t0 >= shot_at:
                shots = await _shots(window, sizes, Path(args.out), args.prefix)
        recording = False
        flood = parent.recv() if parent.poll(5) else {}
        proc.join(10)
        if not shots:
            shots = await _shots(window, sizes, Path(args.out), args.prefix)
        flood_lag, flood_tick = _summary(lags), _summary(ticks)
        scan: dict[str, Any] = {}
        if args.scan:
            scan = await _scan(panel, args.scan)
        result = {
            "rss_samples": rss_samples,
            "filter_during_flood_s": filter_s,
            "scan": scan,
            "flood": flood,
            "lag": flood_lag,
            "tick": flood_tick,
            "rss_before_mb": rss0,
            "rss_peak_mb": rss_peak,
            "count_label": panel.count.text(),
            "dropped_events": getattr(controller, "dropped_events", None),
            "node_stats": {k: controller.session.stats().get(k) for k in (
                "packets_in", "packets_out", "dropped_blocked", "malformed", "rate_limited",
                "events_dropped")} if controller.session is not None else {},
            "shots": shots,
            "load": os.getloadavg(),
        }
        capture = getattr(panel, "capture", None)
        if capture is not None:  # the on-disk capture (after issue 12)
            capture.wait_idle(10.0)
            panel.model.poll()
            panel.refresh_status()
            result.update(capture_disk_bytes=capture.disk_bytes, capture_kept=capture.kept,
                          capture_memory_rows=capture.memory_rows(), capture_lost=capture.lost,
                          count_label=panel.count.text(), drops_label=panel.drops.text())
    finally:
        monitor.cancel()
        window.close()
        await _until(lambda: window.is_closed, 20, "the window to close")
    return result


async def _scan(panel: Any, text: str) -> dict[str, Any]:
    """Run a filter over the whole capture: how long until every match is shown, and how late
    the event loop was meanwhile."""
    panel.capture.wait_idle(30.0)
    panel.pause.setChecked(False)
    kept = panel.capture.kept
    t0 = time.monotonic()
    panel.filter.setText(text)
    panel.apply_filter()
    loop = asyncio.get_running_loop()
    scan_lags: list[float] = []
    while panel.model.filtering and time.monotonic() - t0 < 120:
        a = loop.time()
        await asyncio.sleep(LAG_PERIOD)
        scan_lags.append(max(0.0, loop.time() - a - LAG_PERIOD))
    return {"filter": text, "rows_scanned": kept, "seconds": time.monotonic() - t0,
            "matches": panel.model.rowCount(), "lag": _summary(scan_lags)}


async def _shots(window: Any, sizes: list[tuple[int, ...]], out: Path,
                 prefix: str) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    panel = window.packets
    for w, h in sizes:
        window.resize(w, h)
        await asyncio.sleep(1.0)
        rows = panel.table.model().rowCount()
        if rows and not panel.table.selectionModel().hasSelection():
            panel.table.selectRow(max(0, rows - 8))
        await asyncio.sleep(0.3)
        dock = window.docks["packets"].widget()
        for name, widget in (("window", window), ("dock", dock)):
            saved.append(_save(widget, out / f"{prefix}-{name}-{w}x{h}.png"))
        if hasattr(panel, "show_addresses"):  # the views added by issue 12
            panel.show_addresses()
            await asyncio.sleep(1.5)
            saved.append(_save(dock, out / f"{prefix}-addresses-{w}x{h}.png"))
            panel.tabs.setCurrentWidget(panel.packets_page)
            text = panel.filter.text()
            panel.filter.setText("rtt >= 0")  # our queries and their replies
            panel.apply_filter()
            await asyncio.sleep(1.0)
            rows = panel.model.rowCount()
            if rows:
                panel.table.selectRow(max(0, rows - 6))
                panel.goto_pair()
            await asyncio.sleep(0.3)
            saved.append(_save(dock, out / f"{prefix}-pair-{w}x{h}.png"))
            panel.filter.setText(text)
            panel.apply_filter()
    return saved


def _save(widget: Any, path: Path) -> str:
    if not widget.grab().save(str(path)):
        raise OSError(f"cannot write {path}")
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="flood-shots", help="folder for the PNGs")
    parser.add_argument("--prefix", default="packets")
    parser.add_argument("--size", action="append", default=[],
                        help="WxH of the window for a screenshot (repeatable)")
    parser.add_argument("--nodes", type=int, default=64, help="testnet size")
    parser.add_argument("--rate", type=float, default=1500.0, help="datagrams/s in total")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--crowd", type=int, default=300, help="well-behaved addresses")
    parser.add_argument("--flooders", type=int, default=3)
    parser.add_argument("--flooder-rate", type=float, default=40.0)
    parser.add_argument("--garbage", type=int, default=5)
    parser.add_argument("--garbage-rate", type=float, default=4.0)
    parser.add_argument("--filter", default="", help="display filter typed before the shots")
    parser.add_argument("--pause", action="store_true", help="pause the log before the shots")
    parser.add_argument("--profile", action="store_true", help="cProfile to stderr")
    parser.add_argument("--max-packets", type=int, default=0,
                        help="the capture's packet bound for this run (0: the default)")
    parser.add_argument("--addresses", action="store_true",
                        help="show the Addresses tab during the flood (recounted every 2 s)")
    parser.add_argument("--scan", default="",
                        help="after the flood, run this filter over the whole capture and time it")
    args = parser.parse_args()
    if not args.size:
        args.size = ["1920x1080", "1024x700"]
    if args.seconds > 900:
        parser.error("--seconds: at most 900")

    import qasync
    from PySide6.QtWidgets import QApplication

    from dhtviewer.ui.app import collect_garbage_in_gui_thread

    app = QApplication(sys.argv[:1])
    QApplication.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    gc_timer = collect_garbage_in_gui_thread()
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    with loop:
        result = loop.run_until_complete(_run(args))
    if profile is not None:
        import pstats

        profile.disable()
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(40)
    gc_timer.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
