"""SimnetChild: the application's child process starts, reports its routers, answers the
control API, stops on request, and ends by itself when its parent is gone."""

from __future__ import annotations

import os
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
