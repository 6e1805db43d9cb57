"""SimnetChild: the application's child process starts, reports its routers, answers the
control API, stops on request, and ends by itself when its parent is gone."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from dhtviewer.simnet.child import SimnetChild, SimnetChildError


def test_start_query_stop() -> None:
    child = SimnetChild(3000, profile="friendly", seed=2)
    doc = child.start_blocking(60)
    try:
        assert child.running and doc["nodes"] == 3000 and len(child.routers) == 4
        assert child.get("/size")["nodes"] == 3000
    finally:
        child.stop_blocking()
    assert not child.running


def test_a_bad_argument_is_reported_with_the_childs_reason() -> None:
    child = SimnetChild(3000, scenarios=["storm"])
    with pytest.raises(SimnetChildError, match="unknown scenario"):
        child.start_blocking(60)
    assert not child.running


def test_the_child_ends_when_its_parent_is_gone() -> None:
    # An intermediate process starts the network and exits without stopping it.
    script = (
        "import sys; from dhtviewer.simnet.child import SimnetChild\n"
        "c = SimnetChild(2000, profile='friendly')\n"
        "c.start_blocking(60)\n"
        "print(c._proc.pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=90)
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 10
    alive = True
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
            break
        # A zombie is gone for our purpose (reaped by init eventually).
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                alive = False
                break
        time.sleep(0.1)
    assert not alive


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def test_a_dead_serving_process_ends_the_network_and_the_log_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    child = SimnetChild(3000, profile="friendly", seed=3)
    doc = child.start_blocking(60)
    try:
        assert doc["workers"] >= 1
        assert child._proc is not None
        workers = children_of(child._proc.pid)
        assert len(workers) == doc["workers"]
        with caplog.at_level(logging.WARNING, logger="dhtviewer.simnet.child"):
            os.kill(workers[0], signal.SIGKILL)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                "ended unexpectedly" in r.getMessage() and r.levelno == logging.ERROR
                for r in caplog.records
            ):
                time.sleep(0.05)
        messages = [r.getMessage() for r in caplog.records]
        # The child's own line (read from its stderr) and the application's verdict.
        assert any(f"(pid {workers[0]}," in m and "ended unexpectedly" in m for m in messages)
        assert any(m.startswith("the simulated Mainline ended unexpectedly (exit status 1)")
                   for m in messages)
        assert not child.running
    finally:
        child.stop_blocking()
