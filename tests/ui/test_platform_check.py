"""The xcb check before Qt starts: when the plugin's system libraries are missing, one line names
all of them and the apt/dnf/pacman packages, and the app (and its selftest) exits cleanly
instead of Qt's abort. Simulated by an injected resolver, and for real on a copy of the plugin
whose libraries name sonames this machine does not have (tests/support/broken_xcb.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dhtviewer.ui.platform_check import (
    EXIT_MISSING_LIBRARIES,
    find_xcb_plugin,
    ldd_missing,
    missing_message,
    plugin_dirs,
    probe_missing,
    xcb_problem,
    xcb_will_be_used,
)
from tests.support.broken_xcb import RENAMED, broken_plugin_dir

ROOT = Path(__file__).resolve().parents[2]
LINUX = sys.platform.startswith("linux")
ISSUE_LIBS = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


@pytest.mark.parametrize(("env", "platform", "used"), [
    ({"DISPLAY": ":0"}, "linux", True),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"},
     "linux", False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb:nograb", "WAYLAND_DISPLAY": "w"}, "linux", True),
    ({}, "linux", False),
    ({"DISPLAY": ":0"}, "freebsd14", True),
    ({"DISPLAY": ":0"}, "darwin", False),
    ({"DISPLAY": ":0"}, "win32", False),
])
def test_only_when_qt_will_use_xcb(env: dict[str, str], platform: str, used: bool) -> None:
    assert xcb_will_be_used(env, platform) is used


def fake_plugin(tmp_path: Path) -> Path:
    (tmp_path / "platforms").mkdir()
    (tmp_path / "platforms" / "libqxcb.so").write_bytes(b"\x7fELF")
    return tmp_path


def test_all_missing_libraries_and_their_packages_in_one_line(tmp_path: Path) -> None:
    seen: list[Path] = []

    def resolver(plugin: Path) -> list[str]:
        seen.append(plugin)
        return ISSUE_LIBS

    line = xcb_problem({"DISPLAY": ":0"}, "linux", dirs=[fake_plugin(tmp_path)],
                       resolver=resolver)
    assert seen == [tmp_path / "platforms" / "libqxcb.so"]
    assert line is not None and "\n" not in line
    assert line == (
        "dhtviewer: Qt's xcb platform plugin (X11) cannot load, these libraries are missing: "
        "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1. Install them with: "
        "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1  "
        "(Fedora: sudo dnf install xcb-util-cursor xcb-util-keysyms xcb-util-wm; "
        "Arch: sudo pacman -S xcb-util-cursor xcb-util-keysyms xcb-util-wm)."
    )


def test_message_for_unknown_libraries_qt_own_ones_and_a_wayland_way_out() -> None:
    line = missing_message(["libxcb-xkb.so.1", "libfoo.so.3"], wayland_available=True)
    assert "sudo apt install libxcb-xkb1 " in line and "dnf install libxcb;" in line
    assert "No package is known here for libfoo.so.3." in line
    assert line.endswith("Or run it on Wayland: QT_QPA_PLATFORM=wayland dhtviewer.")
    own = missing_message(["libQt6XcbQpa.so.6"])
    assert "reinstall dhtviewer" in own and "apt install" not in own


def test_no_line_when_nothing_is_missing_or_nothing_can_be_told(tmp_path: Path) -> None:
    env = {"DISPLAY": ":0"}
    plugins = fake_plugin(tmp_path)
    assert xcb_problem(env, "linux", dirs=[plugins], resolver=lambda p: []) is None
    assert xcb_problem(env, "linux", dirs=[plugins], resolver=lambda p: None) is None
    assert xcb_problem(env, "linux", dirs=[tmp_path / "none"],
                       resolver=lambda p: ISSUE_LIBS) is None
    offscreen = {"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}
    assert xcb_problem(offscreen, "linux", dirs=[plugins], resolver=lambda p: ISSUE_LIBS) is None


def test_the_plugin_is_found_where_qt_looks_first(tmp_path: Path) -> None:
    dirs = plugin_dirs({"QT_PLUGIN_PATH": f"{tmp_path}{os.pathsep}{tmp_path / 'b'}"})
    assert dirs[:2] == [tmp_path, tmp_path / "b"]
    real = find_xcb_plugin(dirs[2:])
    assert real is not None and real.name == "libqxcb.so"  # PySide6's own plugin path
    assert find_xcb_plugin([fake_plugin(tmp_path), *dirs[2:]]) == (
        tmp_path / "platforms" / "libqxcb.so")


def test_ctypes_probe_when_there_is_no_ldd() -> None:
    assert probe_missing(["libc.so.6", "libdhtviewer-none.so.7"]) == ["libdhtviewer-none.so.7"]


needs_ldd = pytest.mark.skipif(not LINUX or shutil.which("ldd") is None,
                               reason="the real check runs ldd on Linux")


@needs_ldd
def test_real_ldd_on_the_installed_plugin_agrees_with_the_check() -> None:
    plugin = find_xcb_plugin(plugin_dirs({}))
    assert plugin is not None
    missing = ldd_missing(plugin)
    assert isinstance(missing, list)
    assert (xcb_problem({"DISPLAY": ":0"}, "linux") is None) == (missing == [])


@needs_ldd
def test_real_ldd_names_every_missing_library_of_a_broken_plugin(tmp_path: Path) -> None:
    plugins = broken_plugin_dir(tmp_path)
    missing = ldd_missing(plugins / "platforms" / "libqxcb.so")
    assert sorted(missing or []) == sorted(n.decode() for n in RENAMED.values())


def app_env(plugins: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
    # an X display that is never connected to: the check must stop the app before Qt does
    env.update(DISPLAY=":97", QT_PLUGIN_PATH=str(plugins), PYTHONPATH=str(ROOT))
    return env


@needs_ldd
def test_the_app_exits_2_with_one_line_instead_of_qts_abort(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dhtviewer"], env=app_env(
        broken_plugin_dir(tmp_path)), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_MISSING_LIBRARIES, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for soname in RENAMED.values():
        assert soname.decode() in lines[0]
    assert lines[0].startswith("dhtviewer: Qt's xcb platform plugin (X11) cannot load")
    assert result.stdout == ""


@needs_ldd
def test_the_selftest_fails_with_the_same_reason(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dhtviewer", "selftest"], env=app_env(
        broken_plugin_dir(tmp_path)), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("selftest: FAILED: Qt's xcb platform plugin (X11) cannot")
    assert "libxcb-cursor.so.9" in result.stdout and "Traceback" not in result.stderr
