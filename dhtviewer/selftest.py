"""``dhtviewer selftest``: the whole application proves itself in a few seconds, offline.

It is how a packaged build (the .deb, the tarball, the Windows and macOS bundles) shows that
nothing is missing from it: the Qt platform plugin opens the main window, the controller starts an
embedded test network of ``NODES`` real DHT nodes on loopback addresses (ephemeral UDP ports, so
it never collides with anything), our node bootstraps from it, finds the peers of an info-hash
the test network announced in advance, and announces a fresh info-hash, which an independent
lookup must then return. One line tells the verdict:

    selftest: OK (testnet of 24 nodes 0.45 s; bootstrap 0.03 s; lookup 0.02 s, 3 peers;
    announce stored at 8 nodes, verified; window shown 0.71 s)

Exit status 0 only if every step worked; otherwise 1 and the line says which step failed. The
whole run is bounded by ``--timeout`` (a watchdog ends the process if even the event loop hangs).

"Window shown" is measured from the start of the process (the kernel's record of it on Linux;
elsewhere from when this module was imported) to the main window's first show event: the time a
user waits after launching the program.

With a display the window really appears (so the system's platform plugin, xcb or wayland, is
tested too); without one, or with ``--offscreen``, Qt's offscreen platform is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dhtviewer import __version__

log = logging.getLogger(__name__)

NODES = 24
"""Size of the embedded test network: enough for real multi-hop lookups, quick to start."""
TESTNET_BASE = "127.0.77.1"
TIME_LIMIT = 60.0
ANNOUNCE_PORT = 51413
WATCHDOG_GRACE = 15.0
"""Seconds past the time limit after which the watchdog ends a hung process."""

_IMPORTED_AT = time.perf_counter()


@dataclass
class Report:
    """What the selftest measured. Times in seconds; None: the step did not get that far."""

    window_shown: float | None = None
    testnet: float | None = None
    bootstrap: float | None = None
    lookup: float | None = None
    peers_found: int = 0
    peers_expected: int = 0
    stored_at: int | None = None
    verified: bool = False
    window: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def verdict(self) -> str:
        """The one line printed at the end."""
        parts: list[str] = []
        if self.testnet is not None:
            parts.append(f"testnet of {NODES} nodes {_secs(self.testnet)}")
        if self.bootstrap is not None:
            parts.append(f"bootstrap {_secs(self.bootstrap)}")
        if self.lookup is not None:
            parts.append(f"lookup {_secs(self.lookup)}, {self.peers_found} peers")
        if self.stored_at is not None:
            check = ", verified" if self.verified else ", not verified"
            parts.append(f"announce stored at {self.stored_at} nodes{check}")
        if self.window_shown is not None:
            parts.append(f"window shown {_secs(self.window_shown)}")
        details = "; ".join(parts)
        if self.ok:
            return f"selftest: OK ({details})"
        suffix = f" ({details})" if details else ""
        return f"selftest: FAILED: {'; '.join(self.failures)}{suffix}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "version": __version__,
            "window": self.window,
            "window_shown_s": _round(self.window_shown),
            "testnet_s": _round(self.testnet),
            "bootstrap_s": _round(self.bootstrap),
            "lookup_s": _round(self.lookup),
            "peers_found": self.peers_found,
            "peers_expected": self.peers_expected,
            "announce_stored_at": self.stored_at,
            "announce_verified": self.verified,
            "failures": list(self.failures),
        }


def _secs(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def process_age() -> float:
    """Seconds since this process started: from /proc on Linux (10 ms resolution, and it
    includes the interpreter's and the bundle's own start-up), else since this module loaded."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            stat = f.read()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        # Field 22 (starttime) counts clock ticks since boot; the command name (field 2) may
        # hold spaces and parentheses, so count from the last ')'.
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED_AT


def choose_platform(environ: dict[str, str], platform: str, offscreen: bool) -> str | None:
    """The QT_QPA_PLATFORM to set, or None to leave Qt's choice: offscreen when asked, or on a
    Unix-like system other than macOS with neither an X11 nor a Wayland display."""
    if offscreen:
        return "offscreen"
    if environ.get("QT_QPA_PLATFORM"):
        return None
    if platform.startswith(("win", "darwin")):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return "offscreen"


def run(timeout: float = TIME_LIMIT, offscreen: bool = False, as_json: bool = False,
        verbose: bool = False, screenshot: str | None = None) -> int:
    """Run the selftest, print the verdict (or one JSON object), return the exit status.
    ``screenshot``: save a PNG of the window as it looks after the announce."""
    chosen = choose_platform(dict(os.environ), sys.platform, offscreen)
    if chosen is not None:
        os.environ["QT_QPA_PLATFORM"] = chosen
    qt_messages: list[str] = []
    from dhtviewer.ui.platform_check import xcb_problem

    problem = xcb_problem()
    if problem is not None:
        # Qt would abort the process on the missing libraries: say which, and fail cleanly.
        report = Report()
        report.fail(problem.removeprefix("dhtviewer: "))
    else:
        watchdog = _start_watchdog(timeout + WATCHDOG_GRACE)
        try:
            report = _run_in_qt(timeout, qt_messages, verbose, screenshot)
        finally:
            watchdog.cancel()
    if as_json:
        print(json.dumps(report.as_dict()), flush=True)
    else:
        print(report.verdict(), flush=True)
    if not report.ok and qt_messages and not verbose:
        print("Qt said:\n  " + "\n  ".join(qt_messages[-10:]), file=sys.stderr)
    return 0 if report.ok else 1


def _start_watchdog(seconds: float) -> threading.Timer:
    def expire() -> None:
        print(f"selftest: FAILED: hung for {seconds:.0f} s; the watchdog ends the process",
              flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def _run_in_qt(timeout: float, qt_messages: list[str], verbose: bool,
               screenshot: str | None) -> Report:
    report = Report()
    try:
        import qasync
        from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    except ImportError as err:
        report.fail(f"the desktop libraries cannot be loaded: {err}")
        return report

    def on_qt_message(kind: QtMsgType, _context: object, message: str) -> None:
        # Offscreen Qt chatters (propagateSizeHints, missing fonts dir); keep it for a failure.
        qt_messages.append(message)
        if verbose or kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            print(f"qt: {message}", file=sys.stderr)

    qInstallMessageHandler(on_qt_message)

    async def bounded() -> None:
        try:
            await asyncio.wait_for(_selftest(report, screenshot), timeout)
        except TimeoutError:
            report.fail(f"timed out after {timeout:g} s ({_stage(report)})")

    try:
        # The same set-up as the application's (dhtviewer.ui.app): qasync's loop for this
        # thread only, not as the policy, so the test network's thread gets a plain loop.
        from PySide6.QtWidgets import QApplication

        from dhtviewer.ui.settings_store import APPLICATION, ORGANIZATION

        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setOrganizationName(ORGANIZATION)
        app.setApplicationName(APPLICATION)
        # The window closes itself after stopping the node; the loop must outlive it.
        QApplication.setQuitOnLastWindowClosed(False)
        if not verbose:
            # The log panel raises the logger to INFO for itself; the terminal gets only the
            # verdict (and warnings).
            for handler in logging.getLogger().handlers:
                if handler.level == logging.NOTSET:
                    handler.setLevel(logging.WARNING)
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(bounded())
    except Exception as err:  # a crash in a step: report it as the failure it is
        log.debug("selftest crashed", exc_info=True)
        report.fail(f"{type(err).__name__}: {err}")
    finally:
        qInstallMessageHandler(None)
    return report


def _stage(report: Report) -> str:
    """Which step was running when time ran out."""
    if report.window_shown is None:
        return "while opening the window"
    if report.bootstrap is None:
        return "while starting the test network and bootstrapping"
    if report.lookup is None:
        return "during the lookup"
    return "during the announce"


async def _selftest(report: Report, screenshot: str | None) -> None:
    import tempfile
    from dataclasses import replace

    from PySide6.QtCore import QSettings

    from dhtviewer.ui.controller import TESTNET, Controller
    from dhtviewer.ui.main_window import MainWindow
    from dhtviewer.ui.settings_store import SettingsStore

    problems = _ErrorWatch(report)
    controller = Controller()
    controller.error.connect(lambda message: report.fail(f"the window reported: {message}"))
    with tempfile.TemporaryDirectory(prefix="dhtviewer-selftest-") as tmp:
        # A throw-away settings file: the user's saved layout and network choice stay untouched.
        settings = QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat)
        store = SettingsStore(settings)
        window = MainWindow(controller, store, state_path=None, testnet_state_path=None,
                            testnet_base=TESTNET_BASE)
        report.window = type(window).__name__
        try:
            shown = _first_show(window)
            window.show()
            await shown
            report.window_shown = process_age()
            # What `dhtviewer --testnet N` does: the network panel set to the test network.
            options = replace(store.network(), mode=TESTNET, testnet_nodes=NODES,
                              bind_host="127.0.0.1", port=0)
            window.apply_command_line(options, mode=True, bind=True)
            await _exercise(controller, report, window.start_node)
            if screenshot:
                await asyncio.sleep(0.3)  # one more batch of events drawn (100 ms ticks)
                if not window.grab().save(screenshot):
                    report.fail(f"cannot save the screenshot to {screenshot}")
        finally:
            await _close(window, controller)
            problems.restore()
            settings.sync()


class _ErrorWatch:
    """Exceptions raised in Qt slots (sys.excepthook) or lost in unawaited tasks (the loop's
    exception handler) fail the selftest: the window would only have logged them."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.loop = asyncio.get_running_loop()
        self.previous_hook = sys.excepthook
        self.previous_handler = self.loop.get_exception_handler()
        sys.excepthook = self._hook
        self.loop.set_exception_handler(self._handler)

    def _hook(self, kind: type[BaseException], value: BaseException, tb: Any) -> None:
        self.report.fail(f"the window raised {kind.__name__}: {value}")
        self.previous_hook(kind, value, tb)

    def _handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        what = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message")
        self.report.fail(f"unhandled error in the event loop: {what}")
        loop.default_exception_handler(context)

    def restore(self) -> None:
        sys.excepthook = self.previous_hook
        self.loop.set_exception_handler(self.previous_handler)


async def _close(window: Any, controller: Any) -> None:
    """Close the window the way a user does: it stops the node, then emits ``closed``."""
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_closed() -> None:
        if not closed.done():
            closed.set_result(None)

    window.closed.connect(on_closed)
    window.close()
    try:
        await asyncio.wait_for(closed, 10)
    except TimeoutError:
        await controller.shutdown()
        raise


def _first_show(window: Any) -> asyncio.Future[None]:
    """A future resolved by the window's first show event."""
    from PySide6.QtCore import QEvent, QObject

    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    class ShowWatcher(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Show and not fut.done():
                fut.set_result(None)
            return False

    watcher = ShowWatcher(window)
    window.installEventFilter(watcher)
    return fut


async def _exercise(controller: Any, report: Report, start: Callable[[], Any]) -> None:
    """Start the node (``start``: the window's Start button), then bootstrap, look up and
    announce through the controller, as the window's panels do."""
    t0 = time.perf_counter()
    task = start()
    if task is None or not await task:
        report.fail(f"the node did not start: {controller.detail}")
        return
    t1 = time.perf_counter()
    report.testnet = t1 - t0
    session, net = controller.session, controller.testnet
    try:
        await session.wait_ready()
    except TimeoutError:
        report.fail(f"bootstrap did not finish: {session.state_detail}")
        return
    report.bootstrap = time.perf_counter() - t1

    announced = {ih: peers for ih, peers in net.announced.items() if peers}
    if not announced:
        report.fail("the test network announced nothing to look up")
        return
    info_hash, expected = next(iter(announced.items()))
    report.peers_expected = len(expected)
    t2 = time.perf_counter()
    handle = controller.find_peers(info_hash)
    if handle is None:
        report.fail(f"the lookup did not start: {controller.detail}")
        return
    result = await handle.result()
    report.lookup = time.perf_counter() - t2
    found = set(result.peers) & set(expected)
    report.peers_found = len(found)
    if not found:
        report.fail(f"the lookup found none of the {len(expected)} announced peers "
                    f"({result.responded} of {result.queried} nodes answered)")

    stored: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_announce(result: Any) -> None:
        if not stored.done():
            stored.set_result(result)

    controller.announce_finished.connect(on_announce)
    fresh = random.Random().getrandbits(160).to_bytes(20, "big")
    announce = controller.announce(fresh, ANNOUNCE_PORT)
    if announce is None:
        report.fail(f"the announce did not start: {controller.detail}")
        return
    check = await announce
    with contextlib.suppress(asyncio.CancelledError):
        outcome = await stored
        report.stored_at = len(outcome.stored_at)
    if not report.stored_at:
        report.fail("no node stored the announce")
    report.verified = bool(check is not None and check.verified)
    if not report.verified:
        detail = check.detail if check is not None else "the verification did not run"
        report.fail(f"the announce was not verified: {detail}")
