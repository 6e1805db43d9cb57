"""Guards the PySide6 pin against the "deallocating None" abort under qasync UDP traffic.

PySide6 6.12.0 drops a reference to None on every void method call. On Python < 3.12 None is
not immortal, so an app that pumps UDP through qasync aborts within seconds. pyproject.toml pins
PySide6 below 6.12 there; these tests fail if an environment slips past the pin.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "support" / "qasync_udp_echo.py"
ROUND_TRIPS = 20_000


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


@pytest.mark.qt
@pytest.mark.parametrize("server", ["asyncio", "batched"])
def test_qasync_udp_round_trips_do_not_crash_the_interpreter(server: str) -> None:
    # A subprocess, because the failure is a fatal abort that would kill pytest itself.
    # "batched" is the transport the app's node runs on (add_reader under qasync).
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(ROUND_TRIPS), "100", server],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert f"round_trips={ROUND_TRIPS} " in result.stdout


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_pyside6_is_below_6_12_on_python_before_3_12() -> None:
    import PySide6

    version = PySide6.__version__
    assert _version_tuple(version) < (6, 12), f"PySide6 {version} aborts under qasync UDP traffic"
