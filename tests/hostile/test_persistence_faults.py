"""Persistence under faults: a process killed (SIGKILL) in the middle of saving its state never
leaves a corrupt state file, and a corrupt or truncated state file makes ``DhtSession`` warn,
keep the bad file aside as a backup, and start fresh.

``FLOOD_SCALE=full`` (``make flood``) kills the saver more times.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dhtviewer.dht.settings import DhtSettings
from dhtviewer.net.session import DhtSession
from dhtviewer.net.state_store import FORMAT_VERSION, StateLoadWarning, load_state, save_state

ROOT = Path(__file__).resolve().parents[2]
KILLS = 60 if os.environ.get("FLOOD_SCALE", "small") == "full" else 8
NODES = 3000  # ~150 KB of JSON per save: long enough for kills to land mid-write

# Saves the state in a loop, each time with a new generation number, and says when it starts.
SAVER = r"""
import sys
from dhtviewer.net.state_store import save_state
path, nodes = sys.argv[1], int(sys.argv[2])
gen = 0
while True:
    gen += 1
    state = {
        "node_id": f"{gen:040x}",
        "external_ip": "11.0.0.1",
        "nodes": [[f"{(gen * 7919 + i) % 2**160:040x}", f"11.0.{i // 250}.{i % 250 + 1}",
                   1024 + i] for i in range(nodes)],
    }
    save_state(path, state)
    if gen == 1:
        print("saved", flush=True)
"""


def state_doc(n: int = 5) -> dict[str, object]:
    return {
        "node_id": "ab" * 20,
        "external_ip": "11.0.0.9",
        "nodes": [["cd" * 20, f"11.0.9.{i + 1}", 6881] for i in range(n)],
    }


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killing_the_process_mid_save_never_leaves_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rng = random.Random(42)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    generations = set()
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), str(NODES)],
            stdout=subprocess.PIPE, env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"saved"
            time.sleep(rng.uniform(0.0, 0.15))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        state, warning = load_state(path)
        assert warning is None, warning.message
        assert state.node_id is not None and len(state.nodes) == NODES
        generations.add(int.from_bytes(state.node_id, "big"))
    # What survives is always a whole save; only the temporary file of the killed one is left.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.json"]
    assert all(n.startswith(".state.json.") and n.endswith(".tmp") for n in leftovers)
    assert len(generations) > 1  # the kills landed at different points
    print(f"\n{KILLS} kills mid-save: state always loadable; {len(leftovers)} stray temp files")


def bad_files(valid: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "truncated": valid[: len(valid) // 2],
        "truncated_by_one": valid[:-1],
        "garbage": bytes(range(256)) * 4,
        "not_utf8": b'{"node_id": "\xff\xfe"}',
        "wrong_shape": b"[1, 2, 3]",
        "bad_node_id": json.dumps({"version": FORMAT_VERSION, "node_id": "xyz"}).encode(),
        "future_version": json.dumps({"version": FORMAT_VERSION + 1}).encode(),
        "nul_bytes": b"\x00" * 4096,
    }


def test_corrupt_or_truncated_state_warns_keeps_a_backup_and_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "good.json"
    save_state(good, state_doc())
    valid = good.read_bytes()

    async def start_and_stop(path: Path) -> DhtSession:
        session = DhtSession(DhtSettings(read_only=True), bind=("127.0.85.1", 0),
                             state_path=path)
        await session.start(bootstrap=[], wait=False)
        try:
            assert session.state == "idle"  # running, with nothing restored to bootstrap from
            assert session.node is not None and session.node.routing_size() == 0
        finally:
            await session.stop()
        return session

    for name, content in bad_files(valid).items():
        folder = tmp_path / name
        folder.mkdir()
        path = folder / "state.json"
        path.write_bytes(content)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dhtviewer.net.state_store"):
            session = asyncio.run(asyncio.wait_for(start_and_stop(path), 20))
        warning = session.load_warning
        assert isinstance(warning, StateLoadWarning), name
        assert any("state file" in r.getMessage() for r in caplog.records), name
        # The bad file is kept, byte for byte, next to the new one.
        assert warning.backup is not None and warning.backup.read_bytes() == content, name
        assert warning.backup.name.startswith("state.json.corrupt-")
        # Started fresh: a new random id, and stop() saved a good state in place.
        assert session.node_id != bytes.fromhex("ab" * 20)
        state, again = load_state(path)
        assert again is None and state.node_id == session.node_id, name


def test_oversized_state_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with path.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    state, warning = load_state(path)
    assert warning is not None and state.node_id is None
    assert warning.backup is not None and warning.backup.stat().st_size == 64 * 1024 * 1024
    assert not path.exists()
