"""Every script in examples/ runs to success against the local test network it starts itself
(loopback only), as a user would run it: a subprocess, bounded in time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

EXPECTED = {
    "find_peers_blocking.py": r"3 peers for [0-9a-f]{40}",
    "crawl_id_space.py": r"found 6\d of the test network's 64 nodes",
    "echo_query.py": r"echo from [0-9a-f]{16}…: b'hello, DHT'.*\n.*203 echo needs",
    "wide_buckets.py": r"far buckets: \d+ nodes by default, \d+ with the wide policy",
    "bep51_sample.py": r"3 of the 3 announced info-hashes seen",
    "sans_io.py": r"find_node settled in \d+ virtual ms.*\(the target\)",
}
"""What each example prints when it worked (it also exits 0 only then)."""


def test_every_example_is_run() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    assert re.search(EXPECTED[name], proc.stdout), proc.stdout


def test_examples_document_how_to_run_them() -> None:
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert text.startswith('"""'), path.name
        assert f"python examples/{path.name}" in text, path.name
        assert "/work/" not in text and "/tmp/" not in text
