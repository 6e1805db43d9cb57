"""SettingsStore: what the app remembers survives a round trip through a real QSettings file,
and whatever a hand-edited or damaged file holds never breaks the start-up."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QSettings

from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.session import DEFAULT_BOOTSTRAP
from dhtviewer.ui.capture.store import MB, CaptureLimits
from dhtviewer.ui.controller import CUSTOM, MAINLINE, TESTNET, StartOptions
from dhtviewer.ui.settings_store import MAX_RECENT, SettingsStore

pytestmark = pytest.mark.qt


def store_at(path: Path) -> SettingsStore:
    return SettingsStore(QSettings(str(path), QSettings.Format.IniFormat))


def test_a_fresh_store_gives_the_defaults(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    net = s.network()
    assert net.mode == MAINLINE and net.routers == DEFAULT_BOOTSTRAP
    assert net.port == 6881 and net.bind_host == "0.0.0.0" and net.testnet_nodes == 64
    assert s.geometry() is None and s.window_state() is None
    assert s.recent_infohashes() == [] and s.dht_settings() == DhtSettings()


def test_network_round_trip_including_one_element_lists(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    options = StartOptions(mode=CUSTOM, routers=("only.one:6881",), custom=("192.0.2.7:1",),
                           testnet_nodes=12, bind_host="::", port=0)
    s.save_network(options)
    s.sync()
    back = store_at(tmp_path / "s.ini").network()
    assert (back.mode, back.routers, back.custom, back.testnet_nodes, back.bind_host, back.port) \
        == (CUSTOM, ("only.one:6881",), ("192.0.2.7:1",), 12, "::", 0)


def test_a_mode_or_bind_from_the_command_line_is_not_saved(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    s.save_network(StartOptions(mode=CUSTOM, custom=("192.0.2.1:1",), port=7000))
    s.save_network(StartOptions(mode=TESTNET, custom=("192.0.2.9:9",), port=0), save_mode=False,
                   save_bind=False)
    back = s.network()
    assert back.mode == CUSTOM and back.port == 7000
    assert back.custom == ("192.0.2.9:9",)  # the list is the user's, whatever the mode


def test_log_level_round_trip_and_a_bad_value_falls_back_to_info(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    assert s.log_level() == logging.INFO
    s.save_log_level(logging.DEBUG)
    s.sync()
    assert store_at(tmp_path / "s.ini").log_level() == logging.DEBUG
    s.q.setValue("log/level", 7)
    assert s.log_level() == logging.INFO


def test_window_layout_round_trip_and_version_guard(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    s.save_window(QByteArray(b"geo"), QByteArray(b"state"))
    assert s.geometry() == QByteArray(b"geo") and s.window_state() == QByteArray(b"state")
    s.q.setValue("window/layout_version", 0)  # a layout saved by an older version
    assert s.window_state() is None and s.geometry() == QByteArray(b"geo")


def test_recent_infohashes_most_recent_first_without_duplicates_and_bounded(
    tmp_path: Path,
) -> None:
    s = store_at(tmp_path / "s.ini")
    for i in range(MAX_RECENT + 5):
        s.add_recent_infohash(f"{i:040x}")
    s.add_recent_infohash(f"{10:040x}")
    recent = s.recent_infohashes()
    assert len(recent) == MAX_RECENT
    assert recent[0] == f"{10:040x}" and recent[1] == f"{MAX_RECENT + 4:040x}"
    assert len(set(recent)) == len(recent)


def test_dht_settings_keep_only_changes_and_ignore_bad_values(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    changed = replace(DhtSettings(), k=16, alpha=6, hard_timeout=7.5, rate_limit=False)
    s.save_dht_settings(changed)
    assert s.dht_settings() == changed
    assert set(json.loads(s.q.value("dht/overrides"))) == {
        "k", "alpha", "hard_timeout", "rate_limit"}
    s.q.setValue("dht/overrides", '{"k": "many", "alpha": true, "hard_timeout": 3, "nope": 1}')
    loaded = s.dht_settings()
    assert loaded.k == DhtSettings().k and loaded.alpha == DhtSettings().alpha
    assert loaded.hard_timeout == 3.0
    s.q.setValue("dht/overrides", "not json")
    assert s.dht_settings() == DhtSettings()


def test_stored_dht_settings_out_of_range_or_unknown_warn_and_use_the_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = store_at(tmp_path / "s.ini")
    s.q.setValue("dht/overrides", json.dumps({
        "k": 0, "alpha": 3, "per_ip_burst": 0.0, "max_reply_bytes": 10,
        "client_version": "XX", "no_such_limit": 5, "hard_timeout": 2.0,
    }))
    with caplog.at_level(logging.WARNING):
        loaded = s.dht_settings()
    assert loaded == replace(DhtSettings(), alpha=3, hard_timeout=2.0)
    text = caplog.text
    assert "k=0: k must be 1..64 nodes (got 0); the default is used" in text
    assert "per_ip_burst must be 1..1000000 queries" in text
    assert "max_reply_bytes must be 576..65507 bytes (got 10)" in text
    assert "unknown setting 'no_such_limit'" in text
    assert "client_version is not a user setting" in text


def test_stored_dht_settings_that_contradict_each_other_fall_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = store_at(tmp_path / "s.ini")
    s.q.setValue("dht/overrides", json.dumps({"hard_timeout": 0.5, "k": 10}))
    with caplog.at_level(logging.WARNING):
        loaded = s.dht_settings()
    assert loaded == replace(DhtSettings(), k=10)
    assert "must not exceed hard_timeout" in caplog.text


def test_damaged_values_fall_back_to_defaults(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    s.q.setValue("network/mode", "warp")
    s.q.setValue("network/port", "sixty")
    s.q.setValue("network/routers", "[1, 2]")
    s.q.setValue("network/testnet_nodes", 10**9)
    s.q.setValue("lookup/recent", "{")
    net = s.network()
    assert net.mode == MAINLINE and net.port == 6881 and net.routers == DEFAULT_BOOTSTRAP
    assert net.testnet_nodes == 1000
    assert s.recent_infohashes() == []


def test_packet_log_limits_round_trip_and_stay_in_range(tmp_path: Path) -> None:
    s = store_at(tmp_path / "s.ini")
    assert s.packet_log_limits() == CaptureLimits()
    s.save_packet_log_limits(CaptureLimits(max_packets=3_000_000, max_bytes=512 * MB))
    s.sync()
    back = store_at(tmp_path / "s.ini").packet_log_limits()
    assert (back.max_packets, back.max_bytes) == (3_000_000, 512 * MB)
    s.q.setValue("packets/max_packets", 0)  # an edited file: clamped, never a crash
    s.q.setValue("packets/max_mb", "lots")
    assert s.packet_log_limits().max_packets == 1000
    assert s.packet_log_limits().max_bytes == CaptureLimits().max_bytes
