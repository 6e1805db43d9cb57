"""Screenshots of the real application, for the README: ``make screenshots``.

Starts the main window offscreen on an embedded local testnet of 64 nodes, looks up one of the
pre-announced info-hashes (with a BEP 33 scrape), announces one of our own, puts and gets a
BEP 44 item and lets traffic accumulate for a few seconds, then saves PNGs of the whole window
and of each view into resources/screenshots/; last, it restarts the node on a simulated
Mainline (``dhtviewer simnet``, 20,000 nodes) and crawls it with BEP 51 for a few minutes for the
Activity view. Settings, keys and
the sample database go to a temporary folder, so the user's own are neither read nor changed.

Usage: QT_QPA_PLATFORM=offscreen python tools/screenshots.py [OUTPUT_DIR] [--dark] [--size WxH]
       [--crawl-minutes M]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qasync
from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from dhtviewer.ui.app import collect_garbage_in_gui_thread
from dhtviewer.ui.controller import SIMNET, TESTNET, Controller, StartOptions
from dhtviewer.ui.main_window import MainWindow
from dhtviewer.ui.settings_store import SettingsStore

WIDTH, HEIGHT = 1600, 1000
NODES = 64
TESTNET_BASE = "127.0.90.1"
TRAFFIC_SECONDS = 25.0
NODE_ID = "5d1f0c7a3b9e48f2a6c1d0e9b8a7f6e5d4c3b2a1"
SIMNET_NODES = 20_000
"""The Activity view's network: 2,000 seeded swarms over 20,000 simulated nodes, so that most
nodes store some (on 1,000,000 nodes almost every sample would be empty)."""
NEIGHBOUR_IP = "127.0.90.250"
CRAWL_RATE = 40.0
CRAWL_MINUTES = 3.0  # fixed, so the pictures are reproducible


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: "#e4e4e4",
        QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#26282c",
        QPalette.ColorRole.Text: "#e4e4e4", QPalette.ColorRole.Button: "#34363b",
        QPalette.ColorRole.ButtonText: "#e4e4e4", QPalette.ColorRole.Highlight: "#3d6fb4",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#34363b",
        QPalette.ColorRole.ToolTipText: "#e4e4e4", QPalette.ColorRole.PlaceholderText: "#8c8f96",
        QPalette.ColorRole.Link: "#6cc4ff",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7d84"))
    return p


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def neighbour_puts(controller: Controller) -> None:
    """Another node joins the testnet and puts an item whose target is near our id, so that our
    node is among the closest and stores it (the Items view's "stored on this node")."""
    from dhtviewer.dht.item_lookup import PutRequest
    from dhtviewer.dht.items import Item
    from dhtviewer.dht.node_id import distance
    from dhtviewer.net.session import DhtSession

    ours, local = controller.node_id(), controller.local_address()
    assert ours is not None and local is not None
    value = min((f"hello from a neighbour, note {i}".encode() for i in range(3000)),
                key=lambda v: distance(Item.immutable(v).target, ours))
    other = DhtSession(bind=(NEIGHBOUR_IP, 0), rng=random.Random(9))
    await other.start(bootstrap=[local], timeout=15)
    try:
        await other.put_item(PutRequest(value), timeout=15)
    finally:
        await other.stop()


async def crawl_simnet(window: MainWindow, controller: Controller, minutes: float) -> None:
    """Restart the node on a simulated Mainline and crawl it for ``minutes``."""
    window.stop_node()
    await until(lambda: controller.state == "stopped" and not controller.busy, 30, "the stop")
    window.apply_command_line(
        StartOptions(mode=SIMNET, simnet_nodes=SIMNET_NODES, bind_host="127.0.0.1", port=0),
        mode=True, bind=True,
    )
    window.start_node()
    await until(lambda: controller.state == "ready", 120, "the simulated Mainline")
    window.raise_dock("activity")
    window.activity.rate.setValue(CRAWL_RATE)
    if not window.activity.start_crawl():
        raise RuntimeError(window.activity.message.text())
    await asyncio.sleep(minutes * 60)
    window.activity.crawl.request_snapshot()
    await asyncio.sleep(1.5)
    rows = window.activity.top_proxy.rowCount()
    if rows:
        window.activity.top_table.selectRow(min(2, rows - 1))
    await asyncio.sleep(0.5)


async def shoot(out: Path, suffix: str, size: tuple[int, int] = (WIDTH, HEIGHT),
                crawl_minutes: float = CRAWL_MINUTES) -> list[Path]:
    scratch = Path(tempfile.mkdtemp(prefix="dhtviewer-shots-"))
    store = SettingsStore(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))
    controller = Controller()
    window = MainWindow(controller, store, state_path=scratch / "state.json",
                        testnet_base=TESTNET_BASE, testnet_seed=7,
                        node_id=bytes.fromhex(NODE_ID))
    window.apply_command_line(
        StartOptions(mode=TESTNET, testnet_nodes=NODES, bind_host="127.0.0.1", port=0),
        mode=True, bind=True,
    )
    window.resize(*size)
    window.show()
    saved: list[Path] = []
    try:
        window.start_node()
        await until(lambda: controller.state == "ready", 30, "the node to be ready")
        assert controller.testnet is not None
        announced = list(controller.testnet.announced)
        rng = random.Random(5)

        # some traffic for the plots: lookups of random targets (network-size estimates)
        started = time.monotonic()
        while time.monotonic() - started < TRAFFIC_SECONDS:
            controller.find_node(rng.randbytes(20))
            await asyncio.sleep(0.4)
            if rng.random() < 0.3:
                controller.find_peers(rng.choice(announced))
                await asyncio.sleep(0.3)

        # BEP 44: a mutable item with a salt, then a get of it (the Items view)
        items = window.items
        items.mutable.setChecked(True)
        items.salt.setText("status")
        items.value_format.setCurrentIndex(items.value_format.findData("json"))
        items.value.setPlainText('{"name": "dhtviewer", "nodes": 64, "tags": ["bep44", "demo"]}')
        items.start_put()
        await until(lambda: items.handle is not None and items.handle.done(), 20, "the put")
        items._get_put_target()
        items.start_get()
        await until(lambda: items.handle is not None and items.handle.done(), 20, "the get")
        await neighbour_puts(controller)
        await until(lambda: items.stored.rowCount() > 0, 10, "the neighbour's item")

        window.announce.set_query(announced[1].hex())
        window.announce.port.setValue(51413)
        window.announce.start_announce()
        await until(lambda: window.announce.status in ("verified", "not found"), 20,
                    "the announce to be verified")

        # one lookup per pre-announced info-hash, as a user clicking through them would;
        # the picture shows the one whose path has the most hops
        best: tuple[int, int, int] | None = None
        window.lookup.scrape.setChecked(True)
        for i, info_hash in enumerate(announced):
            window.lookup.set_query(info_hash.hex())
            window.lookup.start_lookup()
            await until(lambda ih=info_hash: window.lookup.shown is not None  # type: ignore[misc]
                        and window.lookup.shown.target == ih
                        and window.lookup.shown.scrape is not None, 10, "the lookup")
            shown = window.lookup.shown
            assert shown is not None
            score = (window.lookup.graph.view.edge_count(), shown.max_depth)
            if best is None or score > best[:2]:
                best = (*score, i)
        assert best is not None
        row = window.lookup.lookups.row_of(window.lookup.shown.lookup_id)  # type: ignore[union-attr]
        for r in range(window.lookup.lookups.rowCount()):
            state = window.lookup.lookups.state(r)
            if state.target == announced[best[2]] and state.kind == "get_peers":
                row = r
        assert row is not None
        window.lookup.select_lookup_row(row)
        window.lookup.set_query(announced[best[2]].hex())
        window.network.testnet_list.setCurrentRow(best[2])
        await asyncio.sleep(0.6)

        # the window builds its plots right after its first frame; make sure, as a grab of a
        # placeholder would only show an empty background
        window.realize_views()

        # a few nodes' worth of packet detail
        window.packets.table.selectRow(max(0, window.packets.model.rowCount() - 6))

        def grab(name: str, widget: object) -> None:
            path = out / f"{name}{suffix}.png"
            pixmap = widget.grab()  # type: ignore[attr-defined]
            if not pixmap.save(str(path)):
                raise OSError(f"cannot write {path}")
            saved.append(path)

        window.raise_dock("lookup")
        await asyncio.sleep(0.4)
        grab("main-window", window)
        grab("lookup", window.docks["lookup"].widget())
        for name in ("routing", "traffic", "packets", "items"):
            window.raise_dock(name)
            if name == "traffic":
                window.traffic.refresh(force=True)
            await asyncio.sleep(0.5)
            grab(name, window.docks[name].widget())
        window.raise_dock("lookup")

        # BEP 51 on a network with thousands of swarms: the simulated Mainline
        if crawl_minutes > 0:
            await crawl_simnet(window, controller, crawl_minutes)
            grab("activity", window.docks["activity"].widget())
    finally:
        window.close()
        await until(lambda: window.is_closed, 15, "the window to close")
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="resources/screenshots")
    parser.add_argument("--dark", action="store_true", help="dark palette (files get -dark)")
    parser.add_argument("--crawl-minutes", type=float, default=CRAWL_MINUTES, metavar="M",
                        help=f"how long the Activity view crawls the simulated Mainline "
                        f"(default {CRAWL_MINUTES:g}; 0: no Activity picture)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", metavar="WxH",
                        help=f"window size (default {WIDTH}x{HEIGHT})")
    args = parser.parse_args()
    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size: expected WIDTHxHEIGHT, got {args.size!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setStyle(QStyleFactory.create("Fusion"))
    if args.dark:
        app.setPalette(dark_palette())
    QApplication.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    gc_timer = collect_garbage_in_gui_thread()
    with loop:
        saved = loop.run_until_complete(
            shoot(out, "-dark" if args.dark else "", (w, h), args.crawl_minutes))
    gc_timer.stop()
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
