"""The application entry: the no-display check (one line, exit 2, before Qt is touched) and a
whole run of the real program in a subprocess: started from the command line, bootstrapped from
a loopback testnet (127.0.63.x), closed by Ctrl-C with its node state saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dhtviewer.dht.addresses import format_addr
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet
from dhtviewer.ui.app import EXIT_NO_DISPLAY, NO_DISPLAY_MESSAGE, display_problem

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("env", "platform", "problem"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"DISPLAY": ""}, "freebsd14", True),
        ({}, "win32", False),
        ({}, "darwin", False),
    ],
)
def test_display_problem(env: dict[str, str], platform: str, problem: bool) -> None:
    assert (display_problem(env, platform) is not None) is problem


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland check")
def test_without_a_display_one_line_and_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "dhtviewer"], env=_env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_NO_DISPLAY
    assert result.stderr.strip() == NO_DISPLAY_MESSAGE
    assert "xvfb-run -a dhtviewer" in result.stderr and "`lookup`" in result.stderr
    assert result.stdout == ""


@pytest.mark.qt
@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is delivered differently")
def test_the_real_app_runs_and_ctrl_c_saves_the_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    net = LocalTestnet(8, "127.0.63.1", port=0, seed=3)
    with BackgroundTestnet(net):
        cmd = [sys.executable, "-m", "dhtviewer", "-v", "--bind", "127.0.0.1:0",
               "--state-file", str(state)]
        for addr in net.bootstrap_addrs:
            cmd += ["--bootstrap", format_addr(addr)]
        env = _env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
                   XDG_CONFIG_HOME=str(tmp_path / "config"))
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 45
            assert proc.stderr is not None
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line:
                    break
                lines.append(line)
                if "DHT session ready" in line:
                    break
            assert any("DHT session ready" in ln for ln in lines), "".join(lines)
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    output = "".join(lines) + (rest or "")
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    doc = json.loads(state.read_text())
    assert doc["families"]["4"]["nodes"]  # the contacts it learned, saved at exit
    # the window's settings went to the (redirected) user config, without the bind address
    conf = tmp_path / "config" / "dhtviewer" / "dhtviewer.conf"
    assert conf.exists()
    text = conf.read_text()
    assert "geometry" in text and "bind_host" not in text
