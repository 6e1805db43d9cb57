"""LocalNetworks: the networks the desktop app runs beside its node for it to join: the
embedded local testnet and the simulated Mainline.

The testnet (``LocalTestnet``) runs on its own asyncio loop in a thread of its own
(``BackgroundTestnet``): its many nodes' traffic must not load the Qt thread, which belongs to
our node and the window; its progress reports are handed over to the Qt thread and shown at
most ten times a second (each phase's first and last always). The simulated Mainline is the
``dhtviewer simnet`` child process (``SimnetChild``: never a thread of the GUI, ended with it).
Each start returns the addresses our node bootstraps from, or raises ``LocalNetworkError`` with
the reason; ``stop`` ends whichever runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from dhtviewer.dht.addresses import format_addr
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.session import BindError
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet, Phase, TestnetProgress
from dhtviewer.simnet.child import SimnetChild, SimnetChildError
from dhtviewer.ui.start_options import StartOptions

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.1
"""Seconds between two progress reports of a starting testnet (each phase's first and last
are always shown)."""


class LocalNetworkError(Exception):
    """A local network could not start; the message says why, in words for the user."""


class LocalNetworks(QObject):
    """See the module docstring. ``report(detail)`` is told, in words, how a start goes."""

    testnet_changed = Signal(object)
    """dict info_hash -> announced peers of the embedded testnet; None when it stopped."""
    simnet_changed = Signal(object)
    """The simulated Mainline's ready line plus "swarms"; None when it stopped (see
    ``Controller.simnet_changed``)."""

    def __init__(self, report: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._report = report
        self.testnet: LocalTestnet | None = None
        """The embedded testnet (it runs in its own thread: read its addresses only)."""
        self._runner: BackgroundTestnet | None = None
        self.simnet: SimnetChild | None = None
        """The simulated Mainline child process."""
        self.start_progress: float | None = None
        """How far the start is (0 to 1) while a testnet starts; None otherwise."""
        self._starting: LocalTestnet | None = None
        self._phase: Phase | None = None
        self._progress_at = -1e9

    # --- the local testnet ----------------------------------------------------------------------
    async def start_testnet(self, options: StartOptions) -> list[Any]:
        """Start the testnet ``options`` describe; its bootstrap addresses."""
        loop = asyncio.get_running_loop()

        def progress(report: TestnetProgress) -> None:
            # called in the testnet's thread: handed over to ours (a thousand nodes take a
            # while, the user sees how far they are)
            loop.call_soon_threadsafe(self._testnet_progress, report)

        # Dual stack (an IPv6 node per host on ::1) when the node joins IPv6 too.
        ipv6 = 6 in options.settings.address_families.families and ipv6_loopback_available()
        try:
            net = LocalTestnet(options.testnet_nodes, options.testnet_base, port=0,
                               seed=options.testnet_seed, ipv6=ipv6, on_progress=progress)
        except ValueError as err:  # a size or first address that does not fit loopback
            raise LocalNetworkError(f"cannot start the local testnet: {err}") from err
        self._report(f"starting a local testnet of {testnet_size(net)}")
        runner = BackgroundTestnet(net)
        self._starting = net
        try:
            await loop.run_in_executor(None, runner.__enter__)
        except (BindError, ValueError, TimeoutError) as err:
            raise LocalNetworkError(f"cannot start the local testnet: {err}") from err
        finally:
            self._starting = None
            self.start_progress = None
        self.testnet, self._runner = net, runner
        self.testnet_changed.emit(dict(net.announced))
        log.info("local testnet: %s from %s", testnet_size(net), format_addr(net.addrs[0]))
        return list(net.bootstrap_addrs)

    def _testnet_progress(self, progress: TestnetProgress) -> None:
        """A progress report of the testnet being started (posted from its thread)."""
        net = self._starting
        if net is None:
            return  # late: the start is over
        now = asyncio.get_running_loop().time()
        changed = progress.phase != self._phase or progress.done == progress.total
        if not changed and now - self._progress_at < PROGRESS_EVERY:
            return  # a thousand binds in a second: a few redraws are enough
        self._phase, self._progress_at = progress.phase, now
        self.start_progress = progress.fraction
        self._report(f"starting a local testnet of {testnet_size(net)}: "
                     f"{progress.describe()}")

    # --- the simulated Mainline -----------------------------------------------------------------
    async def start_simnet(self, options: StartOptions) -> list[Any]:
        """Start the simulated Mainline child; its routers."""
        scen = f", {' '.join(options.simnet_scenarios)}" if options.simnet_scenarios else ""
        self._report(f"building a simulated Mainline of {options.simnet_nodes:,} nodes "
                     f"({options.simnet_profile}{scen})")
        child = SimnetChild(options.simnet_nodes, options.simnet_scenarios,
                            options.simnet_profile)
        try:
            doc = await child.start()
        except (SimnetChildError, OSError) as err:
            raise LocalNetworkError(f"cannot start the simulated Mainline: {err}") from err
        self.simnet = child
        info = dict(doc)
        try:
            swarms = await child.fetch("/swarms?limit=50")
            info["swarms"] = [(s["info_hash"], s["peers"]) for s in swarms["swarms"]]
        except (OSError, ValueError, KeyError) as err:
            log.warning("simulated Mainline: no swarm list (%s)", err)
            info["swarms"] = []
        self.simnet_changed.emit(info)
        log.info("simulated Mainline: %s nodes built in %.1f s (%.0f MB), control API %s",
                 f"{doc.get('nodes', 0):,}", doc.get("build_s", 0.0), doc.get("rss_mb", 0.0),
                 doc.get("control"))
        return list(child.routers)

    # --- both -----------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Stop the testnet and the simulated Mainline, whichever runs."""
        runner, self._runner = self._runner, None
        self.testnet = None
        if runner is not None:
            await asyncio.get_running_loop().run_in_executor(None, runner.__exit__, None, None,
                                                             None)
            self.testnet_changed.emit(None)
        child, self.simnet = self.simnet, None
        if child is not None:
            await child.stop()
            self.simnet_changed.emit(None)


def testnet_size(net: LocalTestnet) -> str:
    """How big ``net`` is, in words."""
    if len(net.families) > 1:
        return f"{net.n:,} dual-stack hosts ({net.node_count:,} nodes)"
    return f"{net.n:,} nodes"
