"""Screenshots of the dual-stack (BEP 32) views: the routing view with its IPv4 / IPv6 switch and
the status bar's per-family node counts, at 1024x700 and at 1920x1080.

Starts the real main window on an embedded dual-stack local testnet (every host with an IPv4
node on 127.0.91.x and an IPv6 node on ::1), waits until both families are ready, runs one
lookup, then saves the whole window with the routing view raised, once per family, into
OUTPUT_DIR as ``dual-stack-<small|large>-ipv4.png`` and ``...-ipv6.png`` (each path is printed
with the size the window really had). Settings go to a
temporary file, so the user's own are neither read nor changed.

Usage: xvfb-run -a python tools/dual_stack_shots.py [OUTPUT_DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QStyleFactory

from dhtviewer.ui.app import collect_garbage_in_gui_thread
from dhtviewer.ui.controller import TESTNET, Controller, StartOptions
from dhtviewer.ui.main_window import MainWindow
from dhtviewer.ui.settings_store import SettingsStore

SIZES = {"small": (1024, 700), "large": (1920, 1080)}
"""Window sizes asked for; "small" comes out at the window's minimum size when that is larger."""
NODES = 48
TESTNET_BASE = "127.0.91.1"
NODE_ID = "5d1f0c7a3b9e48f2a6c1d0e9b8a7f6e5d4c3b2a1"  # fixed, so the pictures are reproducible


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def shoot(out: Path) -> list[tuple[Path, str]]:
    settings_file = Path(tempfile.mkdtemp(prefix="dhtviewer-shots-")) / "settings.ini"
    store = SettingsStore(QSettings(str(settings_file), QSettings.Format.IniFormat))
    controller = Controller()
    window = MainWindow(controller, store, testnet_base=TESTNET_BASE, testnet_seed=11,
                        node_id=bytes.fromhex(NODE_ID))
    window.apply_command_line(
        StartOptions(mode=TESTNET, testnet_nodes=NODES, bind_host="127.0.0.1", port=0),
        mode=True, bind=True,
    )
    window.resize(*SIZES["small"])
    window.show()
    saved: list[tuple[Path, str]] = []
    try:
        window.start_node()
        await until(lambda: controller.state == "ready", 30, "the node to be ready")
        session = controller.session
        assert session is not None and controller.testnet is not None
        await session.wait_ready(30, every_family=True)
        info_hash = next(iter(controller.testnet.announced))
        window.lookup.set_query(info_hash.hex())
        window.lookup.start_lookup()
        await until(lambda: window.lookup.shown is not None and window.lookup.shown.finished,
                    15, "the lookup")
        await until(lambda: {4, 6} <= set(window.routing.snapshots), 10, "both tables")
        window.realize_views()
        for size, (w, h) in SIZES.items():
            window.resize(w, h)
            window.raise_dock("routing")
            for family in (4, 6):
                window.routing.show_family(family)
                await asyncio.sleep(1.2)  # a stats tick and a snapshot tick, then paint
                path = out / f"dual-stack-{size}-ipv{family}.png"
                if not window.grab().save(str(path)):
                    raise OSError(f"cannot write {path}")
                saved.append((path, f"{window.width()}x{window.height()}"))
    finally:
        window.close()
        await until(lambda: window.is_closed, 15, "the window to close")
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="resources/screenshots/issue-11")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setStyle(QStyleFactory.create("Fusion"))
    QApplication.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    gc_timer = collect_garbage_in_gui_thread()
    with loop:
        saved = loop.run_until_complete(shoot(out))
    gc_timer.stop()
    for path, size in saved:
        print(f"{path} ({size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
