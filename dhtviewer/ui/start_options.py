"""StartOptions: how the desktop app starts its node (the mode and where it bootstraps from),
and the modes themselves; ``find_free_port`` for the "port in use" offer.

Plain data, no Qt: the settings store reads and writes it, the network panel edits it, the
controller starts from it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from dhtviewer.dht.addresses import socket_family
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.session import DEFAULT_BOOTSTRAP, DEFAULT_PORT

MAINLINE, TESTNET, CUSTOM, SIMNET = "mainline", "testnet", "custom", "simnet"
MODES = (MAINLINE, TESTNET, CUSTOM, SIMNET)
SIMNET_NODES = 1_000_000
"""Default size of the simulated Mainline (``dhtviewer simnet``)."""
MAX_SIMNET_NODES = 10_000_000


@dataclass(frozen=True, slots=True)
class StartOptions:
    """How to start the node. ``routers`` are used in MAINLINE mode, ``custom`` in CUSTOM mode;
    TESTNET mode starts ``testnet_nodes`` nodes from ``testnet_base`` and bootstraps from them.
    ``port`` 0 binds an ephemeral port. ``state_path`` None keeps the node state in memory."""

    mode: str = MAINLINE
    routers: tuple[str, ...] = DEFAULT_BOOTSTRAP
    custom: tuple[str, ...] = ()
    testnet_nodes: int = 64
    testnet_base: str = "127.0.1.1"
    testnet_seed: int | None = None
    simnet_nodes: int = SIMNET_NODES
    simnet_profile: str = "realistic"
    simnet_scenarios: tuple[str, ...] = ()
    """``--scenario`` arguments of the simulated Mainline (eclipse:INFOHASH, poison, ...)."""
    bind_host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    settings: DhtSettings = field(default_factory=DhtSettings)
    state_path: Path | None = None
    node_id: bytes | None = None
    """Our id for this run (tests, screenshots); None: the saved one, or a random one."""

    def bootstrap_spec(self) -> list[str]:
        return list(self.custom if self.mode == CUSTOM else self.routers)


def find_free_port(host: str, near: int, tries: int = 20) -> int:
    """A UDP port free on ``host``: the first of ``near+1 .. near+tries`` that binds, else any
    ephemeral one (0 if even that fails)."""
    family = socket_family(host)
    candidates = [p for p in range(near + 1, near + 1 + tries) if 0 < p < 65536] + [0]
    for port in candidates:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    return 0


def unspecified(host: str) -> bool:
    """``host`` is the wildcard address (or empty): any interface."""
    return host in ("", "0.0.0.0", "::")
