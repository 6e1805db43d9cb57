"""Questions: each process's part of the control API's answers (its counters and memory, the
peers announced to its nodes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.profile import FRIENDLY
from dhtviewer.simnet.questions import Question, answer, memory_mb


def test_stats_and_swarm_answers() -> None:
    net = Simnet(SimnetConfig(nodes=2000, seed=4, profile=FRIENDLY, swarms=20), [7000], 0.0)
    net.counters.queries = 12
    ih = bytes(range(20))
    net.swarms.announce(5, ih, ("127.0.0.9", 6881), 1.0, None)
    net.swarms.announce(5, ih, ("127.0.0.10", 6881), 1.0, True)
    stats = answer(net, None, Question.STATS, (), 2.0)
    assert stats["counters"]["queries"] == 12 and stats["announced_peers"] == 2
    assert stats["role"] == "whole" and stats["pid"] == os.getpid() and stats["pss_mb"] > 0
    assert stats["items"]["puts"] == 0 and stats["scrapes"] == 0
    doc = answer(net, None, Question.SWARM, (ih,), 2.0)
    assert sorted(doc.pop("peers")) == ["127.0.0.10:6881", "127.0.0.9:6881"]
    assert doc == {"holders": [5], "seed_ips": ["127.0.0.10"], "downloader_ips": ["127.0.0.9"]}


def test_memory_of_another_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; x = b'1' * (50 << 20); "
                              "print('ready', flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        mine = memory_mb(child.pid)
        assert mine["rss_mb"] > 50 and mine["peak_rss_mb"] >= mine["rss_mb"]
        assert mine["pss_mb"] > 40
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert memory_mb(child.pid) == {"rss_mb": 0.0, "peak_rss_mb": 0.0, "pss_mb": 0.0}
    with pytest.raises(ValueError):
        answer(None, None, "nothing", (), 0.0)  # type: ignore[arg-type]
