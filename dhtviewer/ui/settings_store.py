"""SettingsStore: what the desktop app remembers between runs, kept with QSettings.

Window geometry and dock layout, the network panel (mode, routers, custom list, testnet size,
simulated Mainline size, profile and scenarios, bind address, port), recent info-hashes, the
folder of the last export, the log panel's level, the packet log's limits and the DHT limits
changed in the preferences (only the ones that differ from the defaults are stored, so a new
default in a later version applies). The lookup history is a file of its own
(``lookup_history``), beside the node state.
Lists are stored as JSON text: QSettings' own list handling differs between back ends (an INI
file gives back a plain string for a one-element list).
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from dhtviewer.dht.settings import DhtSettings, SettingsError, check_value, spec_of
from dhtviewer.net.session import DEFAULT_BOOTSTRAP, DEFAULT_PORT
from dhtviewer.ui.capture.store import MB, MB_RANGE, PACKETS_RANGE, CaptureLimits
from dhtviewer.ui.start_options import MAINLINE, MAX_SIMNET_NODES, MODES, SIMNET_NODES, StartOptions

log = logging.getLogger(__name__)

ORGANIZATION = "dhtviewer"
APPLICATION = "dhtviewer"
MAX_RECENT = 20
LAYOUT_VERSION = 2
"""Bumped when the docks change, so an old saved layout is not restored onto new docks.
2: the side panels scroll, the banner has a row of its own (layouts saved by version 1 could
hold the banner beside the toolbar, or views squeezed under a grown log)."""


class SettingsStore:
    """Typed access to a QSettings (default: the per-user native store)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.q = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)

    # --- raw helpers ---------------------------------------------------------------------------
    def _get(self, key: str, default: Any = None) -> Any:
        return self.q.value(key, default)

    def _int(self, key: str, default: int) -> int:
        try:
            return int(self._get(key, default))
        except (TypeError, ValueError):
            return default

    def _str(self, key: str, default: str) -> str:
        value = self._get(key, default)
        return value if isinstance(value, str) else default

    def _list(self, key: str, default: list[str]) -> list[str]:
        raw = self._get(key)
        if not isinstance(raw, str):
            return list(default)
        try:
            value = json.loads(raw)
        except ValueError:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return list(default)
        return value

    def _set_list(self, key: str, value: list[str]) -> None:
        self.q.setValue(key, json.dumps(list(value)))

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._get(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def sync(self) -> None:
        self.q.sync()

    # --- window --------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def window_state(self) -> QByteArray | None:
        if self._int("window/layout_version", 0) != LAYOUT_VERSION:
            return None
        return self._bytes("window/state")

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)
        self.q.setValue("window/layout_version", LAYOUT_VERSION)

    # --- network panel -------------------------------------------------------------------------
    def network(self) -> StartOptions:
        """The saved network configuration (settings and state path not included)."""
        mode = self._str("network/mode", MAINLINE)
        port = self._int("network/port", DEFAULT_PORT)
        profile = self._str("network/simnet_profile", "realistic")
        return StartOptions(
            mode=mode if mode in MODES else MAINLINE,
            routers=tuple(self._list("network/routers", list(DEFAULT_BOOTSTRAP))),
            custom=tuple(self._list("network/custom", [])),
            testnet_nodes=max(1, min(self._int("network/testnet_nodes", 64), 1000)),
            simnet_nodes=max(1000, min(self._int("network/simnet_nodes", SIMNET_NODES),
                                       MAX_SIMNET_NODES)),
            simnet_profile=profile if profile in ("realistic", "friendly") else "realistic",
            simnet_scenarios=tuple(self._list("network/simnet_scenarios", [])),
            bind_host=self._str("network/bind_host", "0.0.0.0"),
            port=port if 0 <= port <= 65535 else DEFAULT_PORT,
        )

    def save_network(self, options: StartOptions, *, save_mode: bool = True,
                     save_bind: bool = True) -> None:
        """``save_mode``/``save_bind`` False keep the stored mode / bind address (when the
        command line chose them for this run only). Everything else is saved as given: a
        Custom list edited during a ``--testnet`` run is the user's (the caller passes the
        stored values for what the command line set, see ``MainWindow.save_settings``)."""
        if save_mode:
            self.q.setValue("network/mode", options.mode)
        self.q.setValue("network/testnet_nodes", options.testnet_nodes)
        self.q.setValue("network/simnet_nodes", options.simnet_nodes)
        self.q.setValue("network/simnet_profile", options.simnet_profile)
        self._set_list("network/simnet_scenarios", list(options.simnet_scenarios))
        self._set_list("network/custom", list(options.custom))
        self._set_list("network/routers", list(options.routers))
        if save_bind:
            self.q.setValue("network/bind_host", options.bind_host)
            self.q.setValue("network/port", options.port)

    # --- recent info-hashes --------------------------------------------------------------------
    def recent_infohashes(self) -> list[str]:
        return self._list("lookup/recent", [])[:MAX_RECENT]

    def add_recent_infohash(self, text: str) -> list[str]:
        """Put ``text`` first (most recent); returns the new list."""
        recent = [r for r in self.recent_infohashes() if r != text]
        recent.insert(0, text)
        recent = recent[:MAX_RECENT]
        self._set_list("lookup/recent", recent)
        return recent

    # --- log panel -----------------------------------------------------------------------------
    def log_level(self) -> int:
        """The log panel's level (a ``logging`` level; INFO unless another was saved)."""
        level = self._int("log/level", logging.INFO)
        return level if level in (logging.DEBUG, logging.INFO, logging.WARNING,
                                  logging.ERROR) else logging.INFO

    def save_log_level(self, level: int) -> None:
        self.q.setValue("log/level", level)

    # --- exports -------------------------------------------------------------------------------
    def export_dir(self) -> Path:
        """Where the next export's save dialog opens: the folder of the last export, else the
        user's Documents folder, else the home folder."""
        last = self._str("export/dir", "")
        if last and Path(last).is_dir():
            return Path(last)
        documents = QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.DocumentsLocation)
        if documents and Path(documents).is_dir():
            return Path(documents)
        return Path.home()

    def save_export_dir(self, folder: Path) -> None:
        self.q.setValue("export/dir", str(folder))

    # --- DHT limits ----------------------------------------------------------------------------
    def dht_settings(self) -> DhtSettings:
        """The stored DHT limits over the defaults. A stored value that is unknown, of the wrong
        type or out of range (an edited file, a range narrowed by a later version) is logged as
        a warning and its default used: it must not stop the node from starting."""
        defaults = DhtSettings()
        raw = self._get("dht/overrides")
        if not isinstance(raw, str):
            return defaults
        try:
            stored = json.loads(raw)
        except ValueError:
            log.warning("ignoring the stored DHT settings: not JSON")
            return defaults
        if not isinstance(stored, dict):
            log.warning("ignoring the stored DHT settings: not a JSON object")
            return defaults
        changes: dict[str, Any] = {}
        for name, value in stored.items():
            try:
                spec = spec_of(name)
                if not spec.info.editable:
                    raise SettingsError([(name, f"{name} is not a user setting")])
                changes[name] = check_value(spec, value)
            except SettingsError as err:
                log.warning("ignoring stored DHT setting %s=%r: %s; the default is used",
                            name, value, err)
        while True:
            try:
                return replace(defaults, **changes)
            except SettingsError as err:
                # values fine alone but not together: drop those named, keep the others
                bad = {name for name, _why in err.problems if name in changes}
                log.warning("ignoring stored DHT settings %s: %s; the defaults are used",
                            ", ".join(sorted(bad)) or "(all)", err)
                if not bad:
                    return defaults
                for name in bad:
                    del changes[name]

    def save_dht_settings(self, settings: DhtSettings) -> None:
        defaults = DhtSettings()
        changed = {
            f.name: getattr(settings, f.name)
            for f in fields(DhtSettings)
            if getattr(settings, f.name) != getattr(defaults, f.name)
            and isinstance(getattr(settings, f.name), bool | int | float | Enum)
        }
        self.q.setValue("dht/overrides", json.dumps(changed))

    # --- packet log ----------------------------------------------------------------------------
    def packet_log_limits(self) -> CaptureLimits:
        """The capture's bounds (packets, MB of capture file), within PACKETS_RANGE/MB_RANGE."""
        d = CaptureLimits()
        packets = self._int("packets/max_packets", d.max_packets)
        mb = self._int("packets/max_mb", d.max_bytes // MB)
        return replace(d, max_packets=min(max(packets, PACKETS_RANGE[0]), PACKETS_RANGE[1]),
                       max_bytes=min(max(mb, MB_RANGE[0]), MB_RANGE[1]) * MB)

    def save_packet_log_limits(self, limits: CaptureLimits) -> None:
        self.q.setValue("packets/max_packets", limits.max_packets)
        self.q.setValue("packets/max_mb", limits.max_bytes // MB)
