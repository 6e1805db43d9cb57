"""The packaged application, end to end: ``packaging/build.py`` builds the PyInstaller bundle,
the tarball and the .deb once per test session (in a temporary folder, not dist/); the .deb is
unpacked with ``dpkg-deb -x`` into a temporary root and the installed program must answer
``--version`` and pass ``selftest``; the desktop entry and metainfo are validated with
desktop-file-validate / appstreamcli when those tools are installed.

The quick tests at the end check the packaging helpers (Depends parsing, metainfo release, icon
containers) without building anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import pytest

from dhtviewer import __version__

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "io.github.dhtviewer.DhtViewer"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
LINUX = sys.platform.startswith("linux")
HAVE_DPKG = shutil.which("dpkg-deb") is not None

T = TypeVar("T", bound=Callable[..., object])


def e2e(test: T) -> T:
    """Marks of the tests that use the build: slow, a timeout that leaves room for the build
    (the first such test pays for it: ~1.5 min on 2 cores), Linux only."""
    for mark in (
        pytest.mark.slow,
        pytest.mark.timeout(900),
        pytest.mark.skipif(not LINUX, reason="the tarball and .deb are built on Linux"),
    ):
        test = mark(test)
    return test


def load(name: str) -> ModuleType:
    """A script of packaging/ as a module (packaging/ is no package: that name belongs to the
    `packaging` library)."""
    spec = importlib.util.spec_from_file_location(f"dhtviewer_{name}",
                                                  ROOT / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Build:
    info: dict[str, object]
    bundle: Path
    tarball: Path
    deb: Path | None
    seconds: float


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    base = tmp_path_factory.mktemp("package")
    t0 = time.perf_counter()
    if not HAVE_DPKG:
        pytest.skip("dpkg-deb is not installed; the .deb cannot be built")
    cmd = [sys.executable, str(ROOT / "packaging" / "build.py"),
           "--work", str(base / "work"), "--dist", str(base / "dist")]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=840)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seconds = time.perf_counter() - t0
    info = json.loads((base / "dist" / f"dhtviewer-{__version__}-build.json").read_text())
    return Build(info, Path(str(info["bundle"])), Path(str(info["tarball"])),
                 Path(str(info["deb"])), seconds)


@pytest.fixture(scope="session")
def installed(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb unpacked into a temporary root, as dpkg would install it."""
    assert build.deb is not None
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(build.deb), str(root)], check=True)
    return root


def run(program: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_"))}
    return subprocess.run([str(program), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# --- the build -------------------------------------------------------------------------------
@e2e
def test_build_names_and_sizes(build: Build, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.tarball.name == f"dhtviewer-{__version__}-linux-x86_64.tar.gz"
    assert build.deb is not None and build.deb.name == f"dhtviewer_{__version__}_amd64.deb"
    mib = 2**20
    bundle = int(str(build.info["bundle_bytes"]))
    # What is left out shows here: PySide6 alone is 650 MB installed with its add-ons.
    assert 60 * mib < bundle < 260 * mib, bundle / mib
    assert build.tarball.stat().st_size < bundle
    assert build.deb.stat().st_size < bundle
    with capsys.disabled():
        print(f"\npackage: bundle {bundle / mib:.0f} MiB, tarball "
              f"{build.tarball.stat().st_size / mib:.0f} MiB, .deb "
              f"{build.deb.stat().st_size / mib:.0f} MiB, installed "
              f"{int(str(build.info['installed_kib'])) / 1024:.0f} MiB; "
              f"built in {build.seconds:.0f} s")


# --- the .deb --------------------------------------------------------------------------------
def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


@e2e
def test_deb_control_fields(build: Build, installed: Path) -> None:
    assert build.deb is not None
    assert deb_field(build.deb, "Package") == "dhtviewer"
    assert deb_field(build.deb, "Version") == __version__
    assert deb_field(build.deb, "Architecture") == "amd64"
    size_kib = int(deb_field(build.deb, "Installed-Size"))
    unpacked = sum(p.stat().st_size for p in installed.rglob("*")
                   if p.is_file() and not p.is_symlink()) / 1024
    assert unpacked <= size_kib <= unpacked * 1.05 + 1024


@e2e
def test_deb_layout(installed: Path) -> None:
    opt = installed / "opt" / "dhtviewer"
    assert os.access(opt / "dhtviewer", os.X_OK)
    launcher = installed / "usr" / "bin" / "dhtviewer"
    assert launcher.is_symlink() and os.readlink(launcher) == "/opt/dhtviewer/dhtviewer"
    share = installed / "usr" / "share"
    assert (share / "applications" / f"{APP_ID}.desktop").is_file()
    assert (share / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    for size in ICON_SIZES:
        png = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (size, size)
    svg = share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert svg.read_text().lstrip().startswith("<svg")
    # nothing outside /opt/dhtviewer, /usr/bin and /usr/share
    tops = {p.relative_to(installed).parts[:2] for p in installed.rglob("*")
            if len(p.relative_to(installed).parts) >= 2}
    assert tops <= {("opt", "dhtviewer"), ("usr", "bin"), ("usr", "share")}, tops


@e2e
def test_maintainer_scripts_refresh_the_caches(build: Build, tmp_path: Path) -> None:
    assert build.deb is not None
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(build.deb), str(control)], check=True)
    for name in ("postinst", "postrm"):
        script = control / name
        assert os.access(script, os.X_OK), name
        text = script.read_text()
        assert text.startswith("#!/bin/sh")
        subprocess.run(["sh", "-n", str(script)], check=True)
        # each tool is guarded: a system without it must still install and remove cleanly
        for tool in ("update-desktop-database", "gtk-update-icon-cache"):
            assert f"command -v {tool}" in text, (name, tool)


@e2e
def test_bundle_leaves_out_what_the_app_does_not_use(installed: Path) -> None:
    opt = installed / "opt" / "dhtviewer"
    names = [str(p.relative_to(opt)) for p in opt.rglob("*")]
    text = "\n".join(names)
    for unwanted in ("pytest", "hypothesis", "libtorrent", "mypy", "ruff", "PyInstaller",
                     "QtWebEngine", "Qt6Qml", "Qt6Quick", "Qt6Pdf", "Qt6Multimedia", "Qt63D",
                     "Qt6Charts", "Qt6DataVisualization", "Qt6VirtualKeyboard", "Qt6Network",
                     "libqgtk3", "libqeglfs", "libqvnc", "translations"):
        assert unwanted not in text, unwanted
    # the system's own libraries come from the Depends, not from the build machine
    for system_lib in ("libX11.so", "libxcb.so", "libglib-2.0", "libfontconfig", "libGL.so",
                       "libstdc++", "libdbus-1"):
        assert not any(Path(n).name.startswith(system_lib) for n in names), system_lib
    # and what the window needs is there
    for needed in ("libqxcb.so", "libqwayland.so", "libqoffscreen.so", "libqsvg.so"):
        assert needed in text, needed


@e2e
def test_depends_cover_every_system_library_the_bundle_links(build: Build,
                                                             installed: Path) -> None:
    assert build.deb is not None
    find_depends = load("find_depends")
    report = find_depends.analyse(installed / "opt" / "dhtviewer")
    assert not report.unknown, report.unknown
    control = subprocess.run(["dpkg-deb", "-f", str(build.deb)], capture_output=True, text=True,
                             check=True).stdout
    depends = find_depends.control_depends(control)
    assert find_depends.uncovered(report, depends) == []
    floor = find_depends.libc_floor(control)
    assert floor is not None and floor >= report.glibc
    # the Qt platform plugins really are what brings in the X11 libraries
    assert "libxcb-cursor0" in report.packages


@e2e
def test_installed_program_reports_the_version(installed: Path) -> None:
    result = run(installed / "opt" / "dhtviewer" / "dhtviewer", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dhtviewer {__version__}"


@e2e
def test_installed_program_works_through_a_symlink(installed: Path, tmp_path: Path) -> None:
    # /usr/bin/dhtviewer is a symlink into /opt; here one points into the unpacked root instead
    link = tmp_path / "dhtviewer"
    link.symlink_to(installed / "opt" / "dhtviewer" / "dhtviewer")
    result = run(link, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dhtviewer {__version__}"


@e2e
def test_installed_program_passes_its_selftest(installed: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    program = installed / "opt" / "dhtviewer" / "dhtviewer"
    result = run(program, "selftest", "--offscreen", "--json", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["window"] == "MainWindow", doc
    assert doc["peers_found"] >= 1 and doc["announce_stored_at"] >= 1
    with capsys.disabled():
        print(f"\npackage: installed selftest OK, window shown {doc['window_shown_s']} s "
              "after launch")


@e2e
def test_installed_program_puts_and_gets_items(installed: Path, tmp_path: Path) -> None:
    """BEP 44 from the bundle: ed25519 (``cryptography``'s compiled part) signs and verifies,
    the key file is made 0600, and a get finds both items on a local testnet."""
    from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet
    from tests.test_cli import bootstrap_args

    program = installed / "opt" / "dhtviewer" / "dhtviewer"
    key = tmp_path / "k.key"
    with BackgroundTestnet(LocalTestnet(12, "127.0.74.1", port=0, seed=74)) as net:
        boot = bootstrap_args(net)
        docs = []
        for args in (["put", "--immutable", "packaged"],
                     ["put", "--mutable", "--key", str(key), "--salt", "s", "signed"]):
            result = run(program, *args, *boot, "--json", timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
            docs.append(json.loads(result.stdout))
        for doc, salt, value in ((docs[0], [], "packaged"), (docs[1], ["--salt", "s"], "signed")):
            assert doc["stored_at"] >= 1
            got = run(program, "get", doc["target"], *salt, *boot, "--json", timeout=60)
            assert got.returncode == 0, got.stdout + got.stderr
            assert json.loads(got.stdout)["value"] == value
    assert key.stat().st_size == 32 and (key.stat().st_mode & 0o777) == 0o600
    assert docs[1]["seq"] == 1 and len(docs[1]["public_key"]) == 64


@e2e
@pytest.mark.skipif(shutil.which("ldd") is None, reason="the check runs ldd")
def test_installed_program_names_every_missing_xcb_library(installed: Path,
                                                           tmp_path: Path) -> None:
    """The start-up check finds the bundle's own plugin (Qt's plugin path inside the bundle)
    and stops before Qt aborts: shown on a copy whose plugin asks for libraries no system has."""
    from tests.support.broken_xcb import RENAMED, broken_bundle

    program = broken_bundle(installed / "opt" / "dhtviewer", tmp_path)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "QT_", "WAYLAND")) and k != "XDG_SESSION_TYPE"}
    env["DISPLAY"] = ":97"  # never connected to: the check must stop the program first
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "xcb platform plugin" in lines[0], lines
    assert all(name.decode() in lines[0] for name in RENAMED.values())


@e2e
def test_deb_and_tarball_carry_every_bundled_licence(installed: Path,
                                                     unpacked_tarball: Path) -> None:
    deb_copy = installed / "usr" / "share" / "doc" / "dhtviewer" / "copyright"
    tar_copy = unpacked_tarball / "share" / "doc" / "dhtviewer" / "copyright"
    text = deb_copy.read_text(encoding="utf-8")
    assert tar_copy.read_text(encoding="utf-8") == text
    assert text.startswith("Format: https://www.debian.org/doc/packaging-manuals/"
                           "copyright-format/1.0/\n")
    assert "@LICENSE" not in text and "@VERSIONS@" not in text
    for needle in ("BitTorrent Open Source License", "/usr/share/common-licenses/LGPL-3",
                   "PYTHON SOFTWARE FOUNDATION LICENSE", "Copyright (c) 2019, Sam McCormack",
                   "Copyright (c) 2026 the dhtviewer developers", "bencode.py 4.1.0"):
        assert needle in text, needle
    # what the bundle holds is what the file names
    opt = installed / "opt" / "dhtviewer" / "_internal"
    for folder in ("PySide6", "shiboken6", "numpy", "cryptography", "pyqtgraph"):
        assert (opt / folder).is_dir() and f"_internal/{folder}/*" in text, folder


@e2e
@pytest.mark.skipif(not LINUX, reason="sends SIGTERM")
def test_installed_node_serves_metrics(installed: Path, tmp_path: Path) -> None:
    """prometheus_client (and the ssl module it imports) made it into the bundle."""
    import signal
    import urllib.request

    program = installed / "opt" / "dhtviewer" / "dhtviewer"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_"))}
    proc = subprocess.Popen(
        [str(program), "node", "--bind", "127.0.21.250:0", "--bootstrap", "127.0.21.251:9",
         "--state-file", str(tmp_path / "state.json"), "--metrics", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"http://127\.0\.0\.1:\d+/metrics", line)
            url = m.group(0) if m else None
        assert url is not None, proc.stderr.read() if proc.poll() is not None else "no line"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        assert "dhtviewer_info{" in text and "dhtviewer_routing_nodes" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@e2e
def test_desktop_entry_is_valid(installed: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    entry = installed / "usr" / "share" / "applications" / f"{APP_ID}.desktop"
    result = subprocess.run([tool, str(entry)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    text = entry.read_text()
    assert re.search(rf"^Icon={re.escape(APP_ID)}$", text, re.MULTILINE)
    assert re.search(r"^Exec=dhtviewer$", text, re.MULTILINE)


@e2e
def test_metainfo_is_valid_and_names_this_release(installed: Path) -> None:
    meta = installed / "usr" / "share" / "metainfo" / f"{APP_ID}.metainfo.xml"
    assert f'<release version="{__version__}"' in meta.read_text()
    tool = shutil.which("appstreamcli")
    if tool is None:
        pytest.skip("appstreamcli is not installed (apt-get install appstream)")
    result = subprocess.run([tool, "validate", "--no-net", "--strict", str(meta)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the tarball -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def unpacked_tarball(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("tarball")
    with tarfile.open(build.tarball) as tar:
        members = tar.getmembers()
        assert {m.name.split("/")[0] for m in members} == {f"dhtviewer-{__version__}"}
        assert all(m.uid == 0 and m.gid == 0 for m in members)
        tar.extractall(dest, filter="tar")
    return dest / f"dhtviewer-{__version__}"


@e2e
def test_tarball_runs_where_it_is_unpacked(unpacked_tarball: Path) -> None:
    result = run(unpacked_tarball / "dhtviewer", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dhtviewer {__version__}"
    share = unpacked_tarball / "share"
    assert (share / "applications" / f"{APP_ID}.desktop").is_file()
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png").is_file()


# --- packaging helpers (quick, nothing built) ---------------------------------------------------
def test_control_depends_parsing() -> None:
    find_depends = load("find_depends")
    text = ("Package: x\nDepends: libc6 (>= 2.35), libglib2.0-0t64 | libglib2.0-0,\n"
            " libxcb1\nDescription: y\n")
    entries = find_depends.control_depends(text)
    assert entries == [["libc6"], ["libglib2.0-0t64", "libglib2.0-0"], ["libxcb1"]]
    assert find_depends.libc_floor(text) == (2, 35)
    report = find_depends.Report(packages={"libglib2.0-0": {"libglib-2.0.so.0"},
                                           "libx11-6": {"libX11.so.6"}})
    assert find_depends.uncovered(report, entries) == ["libx11-6"]


def test_the_control_template_covers_the_qt_platform_libraries() -> None:
    from dhtviewer.system_libs import PACKAGES
    from dhtviewer.ui.platform_check import XCB_SONAMES

    find_depends = load("find_depends")
    text = (ROOT / "packaging" / "debian" / "control.in").read_text()
    listed = {name for entry in find_depends.control_depends(text) for name in entry}
    # what the app's start-up check would tell a user to install is what the .deb depends on
    assert {PACKAGES[s].apt for s in XCB_SONAMES} <= listed
    wayland = [s for s in PACKAGES if s.startswith("libwayland")]
    assert {PACKAGES[s].apt for s in wayland} <= listed
    # one table: the packaging script reads the app's
    assert {s: p.apt for s, p in PACKAGES.items()} == find_depends.KNOWN_SONAMES


def test_the_licence_and_its_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "the dhtviewer developers" in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', pyproject, re.MULTILINE)
    assert re.search(r'^license-files = \["LICENSE"\]$', pyproject, re.MULTILINE)
    meta = (ROOT / "resources" / f"{APP_ID}.metainfo.xml").read_text()
    assert "<project_license>MIT</project_license>" in meta


def test_the_copyright_template_names_every_runtime_dependency() -> None:
    """A dependency added to pyproject.toml must get its paragraph and licence text, or this
    fails: each one pip installs for the app is named, and its licence text is filled in."""
    notices = load("notices")
    template = (ROOT / "packaging" / "debian" / "copyright.in").read_text()
    dists = notices.runtime_distributions()
    assert {"pyside6_essentials", "bencode.py", "qasync", "pyqtgraph", "cryptography",
            "numpy", "platformdirs"} <= set(dists)
    for key, dist in dists.items():
        if key == "dhtviewer":
            continue
        name = dist.metadata["Name"]
        spelled = {name.lower(), name.lower().replace("_", "-"), name.lower().split("_")[0]}
        assert any(n in template.lower() for n in spelled), name
    filled = notices.copyright_text()
    assert "@LICENSE" not in filled
    for key in ("bencode.py", "qasync", "pycparser", "platformdirs", "cffi", "pyqtgraph"):
        for f in notices.licence_files(dists[key]):
            first = next(line for line in f.read_text().splitlines() if line.strip())
            assert f" {first.strip()}" in filled, (key, first)


def test_metainfo_release_is_added_before_the_end() -> None:
    build_py = load("build")
    from datetime import datetime, timezone

    text = "<component>\n  <id>x</id>\n</component>\n"
    out = build_py.metainfo_with_release(text, "1.2.3", datetime(2025, 1, 2, tzinfo=timezone.utc))
    assert out == ('<component>\n  <id>x</id>\n  <releases>\n'
                   '    <release version="1.2.3" date="2025-01-02"/>\n  </releases>\n'
                   '</component>\n')


def test_icon_containers_hold_every_size() -> None:
    render = load("render_icons")
    pngs = {s: b"\x89PNG\r\n\x1a\n" + bytes([s % 256]) * 20 for s in (16, 32, 64, 128, 256,
                                                                        512, 1024)}
    ico = render.ico({s: pngs[s] for s in (16, 32, 256)})
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind, count) == (0, 1, 3)
    widths = [ico[6 + 16 * i] for i in range(3)]
    assert widths == [16, 32, 0]  # 0 stands for 256
    size, offset = struct.unpack("<II", ico[6 + 16 * 2 + 8: 6 + 16 * 3])
    assert ico[offset: offset + size] == pngs[256]
    icns = render.icns(pngs)
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    kinds, pos = [], 8
    while pos < len(icns):
        kinds.append(icns[pos: pos + 4])
        pos += struct.unpack(">I", icns[pos + 4: pos + 8])[0]
    assert pos == len(icns)
    assert b"ic10" in kinds and b"icp4" in kinds


def test_committed_icons_match_their_sizes() -> None:
    render = load("render_icons")
    assert render.main(["--check"]) == 0
