"""State persistence: round trip, atomic replacement, and a bad file never stopping the node."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from dhtviewer.dht.messages import NodeInfo
from dhtviewer.net import state_store
from dhtviewer.net.state_store import (
    StateLoadWarning,
    default_state_path,
    load_state,
    parse_state,
    save_state,
)

NODE_ID = bytes(range(20))
STATE = {
    "node_id": NODE_ID.hex(),
    "external_ip": "203.0.113.7",
    "nodes": [["11" * 20, "198.51.100.1", 6881], ["22" * 20, "2001:db8::1", 51413]],
}


def backups(directory: Path) -> list[Path]:
    return sorted(directory.glob("state.json.corrupt-*"))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "state.json"
    save_state(path, STATE)
    saved, warning = load_state(path)
    assert warning is None
    assert saved.node_id == NODE_ID
    assert saved.family(4).external_ip == "203.0.113.7"
    assert saved.nodes == [
        NodeInfo(b"\x11" * 20, ("198.51.100.1", 6881)),
        NodeInfo(b"\x22" * 20, ("2001:db8::1", 51413)),
    ]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_missing_file_is_a_first_run(tmp_path: Path) -> None:
    saved, warning = load_state(tmp_path / "state.json")
    assert warning is None
    assert saved.node_id is None and saved.nodes == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "Expecting value"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"node_id": "zz"}', "node_id is not hex"),
        (b'{"node_id": "abcd"}', "node_id has 2 bytes"),
        (b'{"version": 99}', "unsupported format version 99"),
        (b'{"external_ip": "not an ip"}', "external_ip is not an IP address"),
        (b'{"nodes": {}}', "nodes is not a list"),
    ],
)
def test_corrupt_file_is_moved_aside_and_reported(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    saved, warning = load_state(path)
    assert saved.node_id is None and saved.nodes == []
    assert isinstance(warning, StateLoadWarning)
    assert reason in warning.message
    assert "starting with a fresh state" in warning.message
    [backup] = backups(tmp_path)
    assert warning.backup == backup
    assert backup.read_bytes() == content  # the evidence is kept
    assert not path.exists()


def test_file_truncated_mid_write_is_recovered_from(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, STATE)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    saved, warning = load_state(path)
    assert warning is not None and saved.node_id is None
    # A second corrupt file gets its own backup name instead of overwriting the first.
    path.write_bytes(good[:10])
    load_state(path)
    assert len(backups(tmp_path)) == 2


def test_failed_write_never_replaces_a_good_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    save_state(path, STATE)
    good = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="No space left"):
        save_state(path, {**STATE, "nodes": []})
    assert path.read_bytes() == good
    assert list(tmp_path.iterdir()) == [path]  # the partial temporary file was removed


def test_leftover_temporary_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, STATE)
    (tmp_path / ".state.json.abc123.tmp").write_bytes(b'{"node_id": "trunc')
    saved, warning = load_state(path)
    assert warning is None and saved.node_id == NODE_ID


def test_bad_node_entries_are_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    doc = {
        "node_id": NODE_ID.hex(),
        "nodes": [
            ["11" * 20, "198.51.100.1", 6881],
            ["11" * 19, "198.51.100.2", 6881],  # short id
            ["33" * 20, "not-an-ip", 6881],
            ["44" * 20, "198.51.100.4", 0],
            ["55" * 20, "198.51.100.5", True],
            "garbage",
        ],
    }
    path.write_text(json.dumps(doc))
    saved, warning = load_state(path)
    assert warning is None
    assert [n.addr for n in saved.nodes] == [("198.51.100.1", 6881)]
    assert saved.skipped == 5


def test_unreadable_file_is_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()  # reading a directory fails with an OSError
    saved, warning = load_state(path)
    assert warning is not None and warning.backup is None
    assert "cannot read state file" in warning.message
    assert path.is_dir() and saved.nodes == []


def test_parse_state_accepts_a_node_export() -> None:
    saved = parse_state(STATE)
    assert saved.node_id == NODE_ID and len(saved.nodes) == 2


def test_default_path_is_in_the_user_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = default_state_path()
    assert path.name == "state.json"
    assert path.parent.name == "dhtviewer"
    if sys.platform.startswith("linux"):
        assert path.parent.parent == tmp_path


def test_save_removes_temp_files_left_by_a_killed_save(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    orphan = tmp_path / ".state.json.abc123.tmp"
    orphan.write_bytes(b'{"half": ')
    old = time.time() - state_store.STALE_TEMP_SECONDS - 5
    os.utime(orphan, (old, old))
    fresh = tmp_path / ".state.json.def456.tmp"  # another process may be mid-save right now
    fresh.write_bytes(b"{")
    state_store.save_state(target, {"node_id": "00" * 20, "external_ip": None, "nodes": []})
    assert not orphan.exists()
    assert fresh.exists()
    assert target.exists()


# --- per address family (format 2) ------------------------------------------------------------
def test_each_family_keeps_its_own_id_address_and_contacts(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    id6 = bytes(range(1, 21))
    doc = state_store.state_document([
        {"family": 4, "node_id": NODE_ID.hex(), "external_ip": "203.0.113.7",
         "nodes": [["11" * 20, "198.51.100.1", 6881]]},
        {"family": 6, "node_id": id6.hex(), "external_ip": "2001:db8::7",
         "nodes": [["22" * 20, "2001:db8::1", 51413], ["33" * 20, "198.51.100.9", 1]]},
    ])
    save_state(path, doc)
    on_disk = json.loads(path.read_text())
    assert on_disk["version"] == 2 and set(on_disk["families"]) == {"4", "6"}
    saved, warning = load_state(path)
    assert warning is None
    four, six = saved.family(4), saved.family(6)
    assert (four.node_id, four.external_ip) == (NODE_ID, "203.0.113.7")
    assert (six.node_id, six.external_ip) == (id6, "2001:db8::7")
    assert four.nodes == [NodeInfo(b"\x11" * 20, ("198.51.100.1", 6881))]
    # An IPv4 contact in the IPv6 list does not belong there: skipped and counted.
    assert six.nodes == [NodeInfo(b"\x22" * 20, ("2001:db8::1", 51413))] and saved.skipped == 1
    assert saved.node_id == NODE_ID  # the session's id when it starts fresh: IPv4's


def test_a_format_1_file_is_split_by_family(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, **STATE}))
    saved, warning = load_state(path)
    assert warning is None
    assert saved.family(4).node_id == saved.family(6).node_id == NODE_ID
    assert saved.family(4).external_ip == "203.0.113.7" and saved.family(6).external_ip is None
    assert saved.family(4).nodes == [NodeInfo(b"\x11" * 20, ("198.51.100.1", 6881))]
    assert saved.family(6).nodes == [NodeInfo(b"\x22" * 20, ("2001:db8::1", 51413))]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"families": []}, "families is not an object"),
        ({"families": {"5": {}}}, "unknown address family '5'"),
        ({"families": {"4": {"external_ip": "2001:db8::1"}}}, "not an IPv4 address"),
        ({"families": {"6": {"node_id": "zz"}}}, r"families\[6\]\.node_id is not hex"),
    ],
)
def test_bad_family_sections_are_named(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_state(doc)


def test_a_device_given_as_state_file_is_neither_moved_nor_replaced(tmp_path: Path) -> None:
    """``--state-file /dev/null`` (no persistence, as many tools take it) must leave the device
    alone: moving it aside or replacing it (as root) would break it for the whole machine. A
    FIFO stands in for the device here."""
    fifo = tmp_path / "null"
    os.mkfifo(fifo)
    saved, warning = load_state(fifo)
    assert saved.nodes == [] and warning is not None and warning.backup is None
    assert "not a regular file" in str(warning)
    with pytest.raises(OSError, match="not a regular file"):
        save_state(fifo, {"node_id": "00" * 20, "external_ip": None, "nodes": []})
    assert fifo.is_fifo() and list(tmp_path.iterdir()) == [fifo]
