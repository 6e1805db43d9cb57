"""Every benchmark of ``benchmarks/`` runs once at its tiny size, so that none of them rots
between two ``make bench`` runs. Figures are never checked (benchmarks do not assert timings):
only that each one produces non-empty tables and a JSON result file the README can be built
from."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from benchmarks.common import Table, percentile
from benchmarks.run import BENCHMARKS, main, run_one

_NEEDS = {"libtorrent": "libtorrent", "gui": "PySide6", "simnet": "libtorrent"}
# These bind many 127.0.x.y addresses, which only Linux routes without configuration.
_LOOPBACK_RANGE = {"serving", "libtorrent", "resources", "gui", "simnet", "dht_extensions"}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_runs_at_tiny_size(name: str, tmp_path: Path) -> None:
    if name in _NEEDS:
        pytest.importorskip(_NEEDS[name])
    if name in _LOOPBACK_RANGE and not sys.platform.startswith("linux"):
        pytest.skip("needs the whole 127.0.0.0/8 on loopback (Linux)")
    result = run_one(name, "tiny", tmp_path)
    assert result.tables, f"{name} produced no table"
    for table in result.tables:
        assert table.rows, f"{name}: table {table.title!r} is empty"
        assert table.title in result.render()
    doc = json.loads((tmp_path / f"{name}.json").read_text())
    assert doc["name"] == name
    assert doc["size"] == "tiny"
    assert doc["machine"]["cores"] >= 1
    assert [t["title"] for t in doc["tables"]] == [t.title for t in result.tables]


def test_runner_lists_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line]
    assert listed == list(BENCHMARKS)


def test_runner_refuses_unknown_names() -> None:
    assert main(["no-such-benchmark", "--size", "tiny"]) == 2


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert math.isnan(percentile([], 50))


def test_table_renders_text_and_markdown() -> None:
    t = Table("title", ["what", "value"])
    t.add("a", 1234.5)
    t.add("b", None)
    with pytest.raises(ValueError):
        t.add("too", "many", "cells")
    text = t.render()
    assert "1,234" in text.splitlines()[3] or "1,235" in text.splitlines()[3]
    assert "| b | - |" in t.render(markdown=True)
