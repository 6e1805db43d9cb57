"""Application entry: the display check, QApplication, the qasync event loop and the main window.

asyncio runs on the Qt thread (qasync), so the DHT node and the widgets share one loop and need
no locks. The order of shutdown matters: the loop only turns while Qt's does, so the node is
stopped (and its state saved) while the window is closing, and the application quits after.

Without a display, Qt would abort with a long trace; on Linux and the BSDs the environment is
checked first, and one clear line says what to do instead. The same when Qt's xcb plugin lacks
system libraries (``platform_check.py``): one line names them and the packages to install.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

EXIT_NO_DISPLAY = 2
NO_DISPLAY_MESSAGE = (
    "dhtviewer: no display found (DISPLAY and WAYLAND_DISPLAY are unset): run it in a desktop "
    "session or as `xvfb-run -a dhtviewer`; the `lookup` and `announce` subcommands work headless."
)
log = logging.getLogger(__name__)


def display_problem(environ: dict[str, str] | os._Environ[str] | None = None,
                    platform: str | None = None) -> str | None:
    """The message to print when Qt would find no display, else None. Only X11/Wayland
    platforms are checked (Windows and macOS always have one); QT_QPA_PLATFORM set by the user
    (offscreen, vnc, eglfs...) is trusted."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if plat.startswith(("win", "darwin", "cygwin")):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM"):
        return None
    return NO_DISPLAY_MESSAGE


def _quiet_console(verbosity: int) -> None:
    """The log panel wants INFO records of the ``dhtviewer`` logger; the terminal keeps showing
    only warnings unless -v was given."""
    if verbosity > 0:
        return
    for handler in logging.getLogger().handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(logging.WARNING)


def _loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Exceptions of tasks nobody awaited end up here: to the log (panel), never lost.
    exc = context.get("exception")
    message = context.get("message", "unhandled exception in the event loop")
    if isinstance(exc, BaseException):
        log.error("%s", message, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        log.error("%s", message)


def _install_excepthook() -> None:
    """Exceptions raised in Qt slots reach sys.excepthook: log them (the log panel shows them)
    instead of only printing to a terminal nobody watches."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException,
             tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        log.error("unhandled exception in the user interface", exc_info=(kind, value, tb))

    sys.excepthook = hook


def collect_garbage_in_gui_thread(interval_ms: int = 1000) -> Any:
    """Turn Python's automatic cyclic garbage collection off and run it from a Qt timer instead,
    so it always runs in the GUI thread. The embedded testnet runs Python in a thread of its
    own; a collection started there could destroy unreachable Qt objects outside their thread,
    leaving dangling timers that crash Qt later. Returns the timer (keep a reference)."""
    import gc

    from PySide6.QtCore import QTimer

    threshold = gc.get_threshold()
    gc.disable()

    def check() -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > threshold[generation]:
                gc.collect(generation)
                return

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(interval_ms)
    return timer


async def run_window(args: argparse.Namespace | None) -> int:
    """Build the window, start the node as the arguments say, and wait until it closes."""
    from dataclasses import replace

    from PySide6.QtWidgets import QApplication

    from dhtviewer.dht.addresses import format_addr
    from dhtviewer.net.state_store import default_state_path
    from dhtviewer.ui.controller import CUSTOM, SIMNET, TESTNET, Controller
    from dhtviewer.ui.main_window import MainWindow
    from dhtviewer.ui.settings_store import SettingsStore

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception_handler)
    gc_timer = collect_garbage_in_gui_thread()

    testnet_n = getattr(args, "testnet", None)
    simnet_n = getattr(args, "simnet", None)
    state_file = getattr(args, "state_file", None)
    bind = getattr(args, "bind", None)
    bootstrap = getattr(args, "bootstrap", None)
    explicit_state = Path(state_file) if state_file else None

    store = SettingsStore()
    controller = Controller()
    window = MainWindow(
        controller,
        store,
        state_path=explicit_state or default_state_path(),
        # a testnet's contacts are gone at the next run: only keep them when asked to
        testnet_state_path=explicit_state,
    )
    options = store.network()
    forced = False
    if testnet_n:
        options, forced = replace(options, mode=TESTNET, testnet_nodes=int(testnet_n)), True
    elif simnet_n:
        options, forced = replace(options, mode=SIMNET, simnet_nodes=int(simnet_n)), True
    elif bootstrap:
        custom = tuple(format_addr(hp) for hp in bootstrap)
        options, forced = replace(options, mode=CUSTOM, custom=custom), True
    if bind is not None:
        options = replace(options, bind_host=bind[0], port=bind[1])
    if forced or bind is not None:
        window.apply_command_line(options, mode=forced, bind=bind is not None)

    closed: asyncio.Future[None] = loop.create_future()

    def on_closed() -> None:
        if not closed.done():
            closed.set_result(None)

    window.closed.connect(on_closed)
    # Quitting is ours to do, after the node has stopped (the loop must still turn for that).
    QApplication.setQuitOnLastWindowClosed(False)
    app.aboutToQuit.connect(window.close)
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        # Ctrl-C in the terminal closes the window cleanly (not on Windows)
        loop.add_signal_handler(signal.SIGINT, window.close)

    window.show()
    window.start_node()
    await closed
    gc_timer.stop()
    return 0


def main(args: argparse.Namespace | None = None) -> int:
    """Run the desktop application until its window closes. ``args``: the command line's
    namespace (``testnet``, ``simnet``, ``bind``, ``bootstrap``, ``state_file``, ``verbose``)."""
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_DISPLAY
    from dhtviewer.ui.platform_check import EXIT_MISSING_LIBRARIES, xcb_problem

    problem = xcb_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_MISSING_LIBRARIES
    import qasync
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from dhtviewer.ui.settings_store import APPLICATION, ORGANIZATION
    from dhtviewer.ui.window_chrome import DESKTOP_ID

    _quiet_console(int(getattr(args, "verbose", 0) or 0))
    _install_excepthook()
    # fractional scale factors (125 %, 150 %) as they are, not rounded: crisp plots, no clipping
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    # the .desktop file's name: Wayland compositors find the window's icon through it
    QGuiApplication.setDesktopFileName(DESKTOP_ID)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            return int(loop.run_until_complete(run_window(args)))
    except (asyncio.CancelledError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
