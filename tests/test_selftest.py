"""``dhtviewer selftest``: the verdict line and exit status a packaged build is judged by.

The end-to-end runs start the real command in a subprocess (its own QApplication, offscreen),
exactly as a user or the package test runs it; the rest checks the pieces in-process."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dhtviewer import __version__, cli
from dhtviewer.selftest import NODES, Report, choose_platform, process_age

ROOT = Path(__file__).resolve().parents[1]


def selftest(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("QT_QPA_PLATFORM", None)  # --offscreen must be enough on its own
    return subprocess.run(
        [sys.executable, "-m", "dhtviewer", "selftest", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
    )


# --- end to end ----------------------------------------------------------------------------------
@pytest.mark.qt
def test_selftest_passes_with_one_ok_line() -> None:
    result = selftest("--offscreen")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("selftest: OK (")
    assert f"testnet of {NODES} nodes" in line
    for part in ("bootstrap", "lookup", "peers;", "announce stored at", "verified",
                 "window shown"):
        assert part in line, line
    assert "Traceback" not in result.stderr


@pytest.mark.qt
def test_selftest_json_reports_every_step_on_the_real_window(tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    result = selftest("--offscreen", "--json", "--screenshot", str(shot))
    assert result.returncode == 0, result.stdout + result.stderr
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 400 and height >= 300  # the whole main window, not an empty grab
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["failures"] == []
    assert doc["version"] == __version__
    assert doc["window"] == "MainWindow"
    assert doc["peers_expected"] >= 1
    assert 1 <= doc["peers_found"] <= doc["peers_expected"]
    assert doc["announce_stored_at"] >= 1
    assert doc["announce_verified"] is True
    for key in ("window_shown_s", "testnet_s", "bootstrap_s", "lookup_s"):
        assert 0 < doc[key] < 60, (key, doc[key])


@pytest.mark.qt
def test_selftest_that_runs_out_of_time_fails_and_says_where() -> None:
    t0 = time.perf_counter()
    result = selftest("--offscreen", "--timeout", "0.2")
    assert result.returncode == 1
    assert time.perf_counter() - t0 < 30
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("selftest: FAILED: timed out after 0.2 s (")
    assert "Traceback" not in result.stderr


# --- command line ---------------------------------------------------------------------------------
def test_selftest_arguments() -> None:
    args = cli.build_parser().parse_args(["selftest"])
    assert (args.command, args.timeout, args.offscreen, args.json) == ("selftest", 60.0, False,
                                                                       False)
    args = cli.build_parser().parse_args(["selftest", "--timeout", "5", "--offscreen", "--json"])
    assert (args.timeout, args.offscreen, args.json) == (5.0, True, True)


def test_selftest_rejects_a_bad_timeout_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["selftest", "--timeout", "-1"])
    assert exit_info.value.code == 2
    assert "must be positive" in capsys.readouterr().err


# --- pieces ---------------------------------------------------------------------------------------
def test_verdict_of_a_full_run() -> None:
    report = Report(window_shown=0.912, testnet=0.45, bootstrap=0.031, lookup=0.1, peers_found=3,
                    peers_expected=3, stored_at=8, verified=True, window="MainWindow")
    assert report.ok
    assert report.verdict() == (
        f"selftest: OK (testnet of {NODES} nodes 0.45 s; bootstrap 0.03 s; lookup 0.10 s, "
        "3 peers; announce stored at 8 nodes, verified; window shown 0.91 s)"
    )


def test_verdict_names_every_failure_and_keeps_what_was_measured() -> None:
    report = Report(window_shown=1.5, testnet=0.5, bootstrap=0.2, lookup=0.3, peers_found=0,
                    peers_expected=3, stored_at=0)
    report.fail("the lookup found none of the 3 announced peers")
    report.fail("no node stored the announce")
    assert not report.ok
    line = report.verdict()
    assert line.startswith("selftest: FAILED: the lookup found none of the 3 announced peers; "
                           "no node stored the announce (")
    assert "announce stored at 0 nodes, not verified" in line
    assert line.endswith("window shown 1.50 s)")
    assert report.as_dict()["ok"] is False


def test_verdict_of_a_run_that_stopped_before_measuring_anything() -> None:
    report = Report()
    report.fail("the desktop libraries cannot be loaded: no module named PySide6")
    assert report.verdict() == ("selftest: FAILED: the desktop libraries cannot be loaded: "
                                "no module named PySide6")


@pytest.mark.parametrize(
    ("environ", "platform", "offscreen", "expected"),
    [
        ({}, "linux", False, "offscreen"),  # a server or CI: no display at all
        ({"DISPLAY": ":0"}, "linux", False, None),  # a desktop: test the real platform plugin
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False, None),
        ({"DISPLAY": ":0"}, "linux", True, "offscreen"),  # asked for
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", False, None),  # the user's choice stands
        ({}, "win32", False, None),
        ({}, "darwin", False, None),
    ],
)
def test_platform_choice(environ: dict[str, str], platform: str, offscreen: bool,
                         expected: str | None) -> None:
    assert choose_platform(environ, platform, offscreen) == expected


def test_process_age_counts_from_the_start_of_the_process() -> None:
    # A fresh interpreter measures its own age at once: small, but more than nothing.
    code = "from dhtviewer.selftest import process_age; print(process_age())"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    age = float(out.stdout)
    assert 0 <= age <= wall + 0.05
    # This test process has been running at least since this test began.
    assert process_age() >= time.perf_counter() - t0
