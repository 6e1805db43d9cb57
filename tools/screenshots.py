"""Screenshots of the real application, for the README: ``make screenshots``.

Starts the main window offscreen on a network, crawls it with BEP 51 (the Activity view) while
it looks up the network's info-hashes with a BEP 33 scrape, announces one of our own, puts and
gets a BEP 44 item (and has another node put one on ours) and lets traffic accumulate, then
saves PNGs of the whole window and of each view into resources/screenshots/. Settings, keys and
the sample database go to a temporary folder, so the user's own are neither read nor changed.

The network is the simulated Mainline (``--simnet N``, default 1,000,000 nodes, realistic
profile: what the README shows, a network at the real one's scale; building it takes a few
seconds in a child process) or an embedded local testnet of 64 nodes (``--testnet``: quick,
and all it needs is loopback).

Usage: QT_QPA_PLATFORM=offscreen python tools/screenshots.py [OUTPUT_DIR] [--dark]
       [--simnet N | --testnet] [--size WxH] [--crawl-minutes M]
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
SIMNET_NODES = 1_000_000
TESTNET_BASE = "127.0.90.1"
TRAFFIC_SECONDS = 25.0
SIMNET_READY = 300.0
"""Seconds the simulated network (a million nodes: build and bootstrap) may take to be ready."""
SIMNET_SWARMS = 12
"""Seeded swarms of the simulated network looked up (the most popular ones)."""
NODE_ID = "5d1f0c7a3b9e48f2a6c1d0e9b8a7f6e5d4c3b2a1"  # fixed, so the pictures are reproducible
NEIGHBOUR_IP = "127.0.90.250"
CRAWL_RATE = 40.0
CRAWL_MINUTES = 3.0
"""How long the Activity view's crawl runs before its picture (it starts with the node)."""


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


async def neighbour_puts(controller: Controller, nodes: int) -> None:
    """Another node joins and puts an item whose target is near our id, so that our node is
    among the closest and stores it (the Items view's "stored on this node")."""
    from dhtviewer.dht.item_lookup import PutRequest
    from dhtviewer.dht.items import Item
    from dhtviewer.dht.node_id import distance
    from dhtviewer.net.session import DhtSession

    ours, local = controller.node_id(), controller.local_address()
    assert ours is not None and local is not None
    tries = min(1 << 19, 64 * max(nodes, 64))  # closer than the K-th closest node, about
    value = min((b"hello from a neighbour, note %d" % i for i in range(tries)),
                key=lambda v: distance(Item.immutable(v).target, ours))
    other = DhtSession(bind=(NEIGHBOUR_IP, 0), rng=random.Random(9))
    await other.start(bootstrap=[local], timeout=30)
    try:
        await other.put_item(PutRequest(value), timeout=30)
    finally:
        await other.stop()


async def items_view(window: MainWindow, controller: Controller, nodes: int,
                     timeout: float) -> None:
    """A salted mutable item put, then got (the Items view shows the get)."""
    items = window.items
    items.mutable.setChecked(True)
    items.salt.setText("status")
    items.value_format.setCurrentIndex(items.value_format.findData("json"))
    items.value.setPlainText('{"name": "dhtviewer", "tags": ["bep44", "demo"], "version": 1}')
    items.start_put()
    await until(lambda: items.handle is not None and items.handle.done(), timeout, "the put")
    items._get_put_target()
    items.start_get()
    await until(lambda: items.handle is not None and items.handle.done(), timeout, "the get")
    await neighbour_puts(controller, nodes)
    await until(lambda: items.stored.rowCount() > 0, 10, "the neighbour's item")


async def shoot(out: Path, suffix: str, simnet: int, size: tuple[int, int],
                crawl_minutes: float = CRAWL_MINUTES) -> list[Path]:
    scratch = Path(tempfile.mkdtemp(prefix="dhtviewer-shots-"))
    store = SettingsStore(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))
    controller = Controller()
    window = MainWindow(controller, store, state_path=scratch / "state.json",
                        testnet_base=TESTNET_BASE, testnet_seed=7,
                        node_id=bytes.fromhex(NODE_ID))
    if simnet:
        options = StartOptions(mode=SIMNET, simnet_nodes=simnet, bind_host="127.0.0.1", port=0)
    else:
        options = StartOptions(mode=TESTNET, testnet_nodes=NODES, bind_host="127.0.0.1", port=0)
    window.apply_command_line(options, mode=True, bind=True)
    window.resize(*size)
    window.show()
    saved: list[Path] = []
    lookup_timeout = 40.0 if simnet else 10.0
    try:
        window.start_node()
        await until(lambda: controller.state == "ready", SIMNET_READY if simnet else 30,
                    "the node to be ready")
        if simnet:
            assert controller.simnet is not None
            listing = await controller.simnet.fetch(f"/swarms?limit={SIMNET_SWARMS}")
            announced = [bytes.fromhex(s["info_hash"]) for s in listing["swarms"]]
            network_list = window.network.simnet_list
        else:
            assert controller.testnet is not None
            announced = list(controller.testnet.announced)
            network_list = window.network.testnet_list
        rng = random.Random(5)
        # BEP 51: the Activity view crawls from the start; its picture is taken last
        window.activity.rate.setValue(CRAWL_RATE)
        crawl_started = time.monotonic()
        if crawl_minutes > 0 and not window.activity.start_crawl():
            raise RuntimeError(window.activity.message.text())

        # some traffic for the plots: lookups of random targets (network-size estimates)
        started = time.monotonic()
        while time.monotonic() - started < TRAFFIC_SECONDS:
            controller.find_node(rng.randbytes(20))
            await asyncio.sleep(0.4)
            if rng.random() < 0.3:
                controller.find_peers(rng.choice(announced))
                await asyncio.sleep(0.3)

        window.announce.set_query(announced[1].hex())
        window.announce.port.setValue(51413)
        window.announce.start_announce()
        await until(lambda: window.announce.status in ("verified", "not found"),
                    2 * lookup_timeout, "the announce to be verified")
        await items_view(window, controller, simnet or NODES, 2 * lookup_timeout)

        # one lookup per pre-announced info-hash, as a user clicking through them would;
        # the picture shows the one whose path has the most hops
        best: tuple[int, int, int] | None = None
        window.lookup.scrape.setChecked(True)  # BEP 33: the swarm's estimate beside the peers
        for i, info_hash in enumerate(announced):
            window.lookup.set_query(info_hash.hex())
            window.lookup.start_lookup()
            await until(lambda ih=info_hash: window.lookup.shown is not None  # type: ignore[misc]
                        and window.lookup.shown.target == ih
                        and window.lookup.shown.scrape is not None, lookup_timeout, "the lookup")
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
        network_list.setCurrentRow(best[2])
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
        if crawl_minutes > 0:
            window.raise_dock("activity")
            left = crawl_started + crawl_minutes * 60 - time.monotonic()
            await asyncio.sleep(max(0.0, left))
            window.activity.crawl.request_snapshot()
            await asyncio.sleep(2.0)
            rows = window.activity.top_proxy.rowCount()
            if rows:
                window.activity.top_table.selectRow(min(2, rows - 1))
            await asyncio.sleep(0.5)
            grab("activity", window.docks["activity"].widget())
        window.raise_dock("lookup")
    finally:
        window.close()
        await until(lambda: window.is_closed, 15, "the window to close")
    return saved


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    if not (w.isdigit() and h.isdigit() and 640 <= int(w) <= 4000 and 480 <= int(h) <= 3000):
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (expected WxH, e.g. 1600x1000)")
    return int(w), int(h)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="resources/screenshots")
    parser.add_argument("--dark", action="store_true", help="dark palette (files get -dark)")
    network = parser.add_mutually_exclusive_group()
    network.add_argument("--simnet", type=int, default=SIMNET_NODES, metavar="N",
                         help=f"on a simulated Mainline of N nodes (default {SIMNET_NODES:,})")
    network.add_argument("--testnet", action="store_true",
                         help=f"on a local testnet of {NODES} nodes instead")
    parser.add_argument("--size", type=_size, default=(WIDTH, HEIGHT), metavar="WxH",
                        help=f"window size (default {WIDTH}x{HEIGHT})")
    parser.add_argument("--crawl-minutes", type=float, default=CRAWL_MINUTES, metavar="M",
                        help=f"how long the Activity view crawls before its picture (default "
                        f"{CRAWL_MINUTES:g}; 0: no crawl, no Activity picture)")
    args = parser.parse_args()
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
        saved = loop.run_until_complete(shoot(out, "-dark" if args.dark else "",
                                              0 if args.testnet else args.simnet, args.size,
                                              args.crawl_minutes))
    gc_timer.stop()
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
