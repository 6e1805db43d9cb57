"""``dhtviewer simnet`` as a process: the JSON line, a clean exit on SIGTERM, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.simnet_proc import SimnetProcess


def test_ready_line_then_clean_exit_on_sigterm() -> None:
    sn = SimnetProcess(["--nodes", "3000", "--ports", "2", "--seed", "4"])
    started = time.monotonic()
    with sn:
        waited = time.monotonic() - started
        doc = sn.doc
        assert doc["nodes"] == 3000 and doc["profile"] == "realistic"
        assert len(doc["routers"]) == 4 and len(doc["ports"]) == 2
        assert all(r.startswith("127.") and not r.startswith("127.0.") for r in doc["routers"])
        assert doc["control"].startswith("127.0.0.1:")
        assert doc["rss_mb"] > 0 and doc["pss_mb"] > 0 and doc["workers"] == 2
        # build_s counts the interpreter's start-up too (more than the network's building),
        # and no more than we waited for the line (its clocks tick in 10 ms).
        assert 0 < doc["network_s"] < doc["build_s"] <= waited + 0.05
        assert sn.get("/size")["nodes"] == 3000
    assert sn.proc is None  # closed by the context manager


def test_sigterm_exit_status_is_zero() -> None:
    sn = SimnetProcess(["--nodes", "1000"])
    sn.__enter__()
    assert sn.close() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "--nodes must be at least 1"),
        (["--base", "10.0.0.0"], "127.0.0.0/8"),
        (["--base", "127.0.3.0"], "127.0.0.0/16"),
        (["--scenario", "storm"], "unknown scenario"),
        (["--scenario", "flood"], "flood needs a rate"),
        (["--member-rate", "-1"], "--member-rate"),
        (["--ports", "0"], "--ports"),
        (["--nodes", "30000000"], "do not fit"),
        (["--profile", "hostile"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "dhtviewer", "simnet", "--nodes", "100", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert proc.stdout == ""
