"""Application entry: QApplication, the qasync event loop and the main window.

A placeholder until the real main window lands: it proves the Qt + qasync + asyncio stack starts,
shows the version, and with ``--testnet N`` runs a local test network inside the GUI's loop.

Shutdown order matters under qasync: the asyncio loop only runs while Qt's event loop does, so
network cleanup happens after the window is closed but before the application quits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from dhtviewer import __version__


async def _run(args: argparse.Namespace | None) -> int:
    from PySide6.QtGui import QCloseEvent
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance()
    assert app is not None  # qasync's loop policy created it
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()

    def request_close() -> None:
        if not closed.done():
            closed.set_result(None)

    class MainWindow(QMainWindow):
        def closeEvent(self, event: QCloseEvent) -> None:
            request_close()
            event.accept()

    # Quitting is ours to do, after the cleanup below has used the loop.
    QApplication.setQuitOnLastWindowClosed(False)
    app.aboutToQuit.connect(request_close)
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        # Ctrl-C in the terminal closes the application cleanly (not on Windows).
        loop.add_signal_handler(signal.SIGINT, request_close)

    window = MainWindow()
    window.setWindowTitle("dhtviewer")
    label = QLabel(f"dhtviewer {__version__}")
    label.setMargin(24)
    window.setCentralWidget(label)
    window.resize(480, 160)
    window.show()

    testnet = None
    n = getattr(args, "testnet", None) if args is not None else None
    try:
        if n:
            from dhtviewer.net.addresses import format_addr
            from dhtviewer.net.testnet import LocalTestnet

            testnet = LocalTestnet(n, port=0)
            await testnet.start()
            boot = " ".join(format_addr(a) for a in testnet.bootstrap_addrs)
            label.setText(f"dhtviewer {__version__}\ntestnet: {n} nodes, bootstrap {boot}")
        await closed
    finally:
        if testnet is not None:
            await testnet.stop()
        window.hide()
    return 0


def main(args: argparse.Namespace | None = None) -> int:
    """Run the desktop application until its window closes. ``args``: the command line's
    namespace (``testnet``, ``bind``, ``bootstrap``, ``state_file``, ``verbose``)."""
    import qasync

    try:
        result: int = qasync.run(_run(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
