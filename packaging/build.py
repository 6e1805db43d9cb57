"""Build dhtviewer's packages: the PyInstaller bundle, then the Linux tarball and .deb from it.

    python packaging/build.py [--dist DIR] [--work DIR] [--bundle-only] [--reuse-bundle]
                              [--deb-compression zstd|xz]

Steps (``make package`` runs them all):

1. PyInstaller runs ``packaging/dhtviewer.spec`` into ``WORK/bundle/dhtviewer`` (a one-folder
   bundle: the ``dhtviewer`` program and its ``_internal`` folder). On Linux the Python runtime's
   debug symbols are stripped (the pyenv/python.org builds ship them; Qt's wheels do not).
2. ``DIST/dhtviewer-<version>-linux-x86_64.tar.gz``: the bundle in ``dhtviewer-<version>/``, with
   ``share/`` holding the desktop entry, AppStream metainfo, icons and ``doc/dhtviewer/copyright``
   (every bundled component's licence, ``notices.py``), for a per-user install.
3. ``DIST/dhtviewer_<version>_amd64.deb`` (``dpkg-deb --build --root-owner-group``): the bundle in
   ``/opt/dhtviewer``, ``/usr/bin/dhtviewer`` (a symlink to it), the desktop entry, hicolor icons,
   metainfo and ``doc/dhtviewer/copyright`` under ``/usr/share``, maintainer scripts from
   ``packaging/debian``.

The version comes from ``dhtviewer.__version__`` and nowhere else. Sizes and the build time are
printed and written to ``DIST/dhtviewer-<version>-build.json``. ``--bundle-only`` stops after
step 1 (Windows and macOS recipes use it); ``--reuse-bundle`` skips step 1 when a bundle exists.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from notices import copyright_text  # noqa: E402  (packaging/ is no package)

PACKAGING = ROOT / "packaging"
RESOURCES = ROOT / "resources"
APP_ID = "io.github.dhtviewer.DhtViewer"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
INSTALL_DIR = "opt/dhtviewer"
DEB_COMPRESSION = {"zstd": ("zstd", 9), "xz": ("xz", 6)}
"""dpkg-deb compressors. zstd -9 packs the bundle in ~10 s on two cores, xz -6 in ~3 minutes
for a .deb 20% smaller (40 instead of 49 MiB); every dpkg that can run the bundle (glibc 2.35:
Debian 12, Ubuntu 22.04 and later) reads both."""


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from dhtviewer import __version__

    return __version__


def build_date() -> datetime:
    """SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), timezone.utc)
    return datetime.now(timezone.utc)


# --- step 1: the bundle ------------------------------------------------------------------------
def run_pyinstaller(work: Path) -> Path:
    distpath = work / "bundle"
    cmd = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--distpath", str(distpath), "--workpath", str(work / "pyinstaller"),
        str(PACKAGING / "dhtviewer.spec"),
    ]
    print("build: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    bundle = distpath / "dhtviewer"
    if sys.platform.startswith("linux"):
        strip_python_runtime(bundle)
    return bundle


def strip_python_runtime(bundle: Path) -> None:
    """Drop debug sections from libpython and the standard library's extension modules.
    Only ``--strip-debug``: symbol tables stay, and wheels' libraries (some patched by
    auditwheel, where a full strip can break them) are left alone."""
    strip = shutil.which("strip")
    if strip is None:
        print("build: no `strip` found; the Python runtime keeps its debug symbols")
        return
    internal = bundle / "_internal"
    files = [*internal.glob("libpython3*.so*"), *internal.glob("python3*/lib-dynload/*.so")]
    files = [f for f in files if f.is_file() and not f.is_symlink()]
    if files:
        subprocess.run([strip, "--strip-debug", *map(str, files)], check=True)


# --- shared desktop files -------------------------------------------------------------------
def metainfo_with_release(text: str, ver: str, date: datetime) -> str:
    """The metainfo with a <releases> entry for this version (the source file has none, so the
    version stays defined in one place)."""
    release = (f'  <releases>\n    <release version="{ver}" date="{date:%Y-%m-%d}"/>\n'
               "  </releases>\n")
    head, sep, tail = text.rpartition("</component>")
    if not sep:
        raise ValueError("metainfo has no </component>")
    return head + release + sep + tail


def install_share(share: Path, ver: str, date: datetime) -> None:
    """Desktop entry, metainfo and icons into ``share`` (a ``/usr/share`` or ``~/.local/share``)."""
    apps = share / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RESOURCES / f"{APP_ID}.desktop", apps / f"{APP_ID}.desktop")
    meta = share / "metainfo"
    meta.mkdir(parents=True, exist_ok=True)
    text = (RESOURCES / f"{APP_ID}.metainfo.xml").read_text(encoding="utf-8")
    (meta / f"{APP_ID}.metainfo.xml").write_text(metainfo_with_release(text, ver, date),
                                                 encoding="utf-8")
    hicolor = share / "icons" / "hicolor"
    for size in ICON_SIZES:
        d = hicolor / f"{size}x{size}" / "apps"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RESOURCES / "icons" / f"dhtviewer-{size}.png", d / f"{APP_ID}.png")
    d = hicolor / "scalable" / "apps"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RESOURCES / "dhtviewer.svg", d / f"{APP_ID}.svg")
    # Our licence and every bundled component's, with the texts of the versions bundled.
    doc = share / "doc" / "dhtviewer"
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "copyright").write_text(copyright_text(), encoding="utf-8")


def normalise_modes(root: Path) -> None:
    """0755 for folders and executables, 0644 for everything else (Debian policy)."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir() or path.stat().st_mode & 0o111:
            path.chmod(0o755)
        else:
            path.chmod(0o644)


# --- step 2: the tarball ---------------------------------------------------------------------
def make_tarball(bundle: Path, work: Path, dist: Path, ver: str, date: datetime) -> Path:
    top = f"dhtviewer-{ver}"
    share = work / "tar-share"
    shutil.rmtree(share, ignore_errors=True)
    install_share(share, ver, date)
    normalise_modes(share)
    mtime = int(date.timestamp())

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = mtime
        return info

    out = dist / f"dhtviewer-{ver}-linux-x86_64.tar.gz"
    # gzip level 6: nearly the size of 9 in half the time; fixed mtime for reproducibility
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6,
                                               mtime=mtime) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(bundle, arcname=top, filter=owned_by_root, recursive=False)
        for path in sorted(bundle.rglob("*")):
            tar.add(path, arcname=f"{top}/{path.relative_to(bundle)}", filter=owned_by_root,
                    recursive=False)
        for path in sorted(share.rglob("*")):
            tar.add(path, arcname=f"{top}/share/{path.relative_to(share)}",
                    filter=owned_by_root, recursive=False)
    return out


# --- step 3: the .deb ------------------------------------------------------------------------
def installed_size_kib(root: Path) -> int:
    """What dpkg shows as Installed-Size: file sizes rounded up to KiB, plus 1 KiB per folder
    and symlink (dpkg-gencontrol's rule)."""
    total = 0
    for path in root.rglob("*"):
        if "DEBIAN" in path.relative_to(root).parts:
            continue
        if path.is_symlink() or path.is_dir():
            total += 1
        else:
            total += (path.stat().st_size + 1023) // 1024
    return total


def make_deb(
    bundle: Path, work: Path, dist: Path, ver: str, date: datetime, compression: str = "zstd"
) -> tuple[Path, int]:
    """Build the .deb; returns its path and the installed size in KiB."""
    if shutil.which("dpkg-deb") is None:
        raise SystemExit("build: dpkg-deb is needed for the .deb (apt-get install dpkg)")
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / INSTALL_DIR, symlinks=True)
    bindir = root / "usr" / "bin"
    bindir.mkdir(parents=True)
    # PyInstaller's program finds its _internal folder through /proc/self/exe, so a symlink works
    (bindir / "dhtviewer").symlink_to(f"/{INSTALL_DIR}/dhtviewer")
    install_share(root / "usr" / "share", ver, date)
    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    normalise_modes(root)
    size = installed_size_kib(root)
    control = (PACKAGING / "debian" / "control.in").read_text(encoding="utf-8")
    control = control.replace("@VERSION@", ver).replace("@INSTALLED_SIZE@", str(size))
    (control_dir / "control").write_text(control, encoding="utf-8")
    (control_dir / "control").chmod(0o644)
    for script in ("postinst", "postrm"):
        shutil.copyfile(PACKAGING / "debian" / script, control_dir / script)
        (control_dir / script).chmod(0o755)
    out = dist / f"dhtviewer_{ver}_amd64.deb"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(int(date.timestamp()))}
    kind, level = DEB_COMPRESSION[compression]
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", f"-Z{kind}", f"-z{level}",
                    str(root), str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
    return out, size


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "package",
                        help="intermediate files (PyInstaller's cache, staging)")
    parser.add_argument("--bundle-only", action="store_true",
                        help="stop after the PyInstaller bundle")
    parser.add_argument("--reuse-bundle", action="store_true",
                        help="skip PyInstaller if WORK/bundle/dhtviewer exists")
    parser.add_argument("--deb-compression", choices=sorted(DEB_COMPRESSION), default="zstd",
                        help="zstd (default, fast) or xz (smaller, slow)")
    args = parser.parse_args(argv)
    ver = version()
    date = build_date()
    work, dist = args.work.resolve(), args.dist.resolve()
    work.mkdir(parents=True, exist_ok=True)
    dist.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bundle = work / "bundle" / "dhtviewer"
    if not (args.reuse_bundle and (bundle / "_internal").is_dir()):
        bundle = run_pyinstaller(work)
    t_bundle = time.perf_counter() - t0
    bundle_bytes = tree_size(bundle)
    info: dict[str, object] = {
        "version": ver,
        "bundle": str(bundle),
        "bundle_bytes": bundle_bytes,
        "bundle_seconds": round(t_bundle, 1),
    }
    lines = [f"bundle {bundle}: {mib(bundle_bytes)}, built in {t_bundle:.0f} s"]
    if not args.bundle_only:
        if not sys.platform.startswith("linux"):
            raise SystemExit("build: the tarball and .deb are built on Linux; "
                             "use --bundle-only here (see packaging/README.md)")
        tarball = make_tarball(bundle, work, dist, ver, date)
        deb, installed_kib = make_deb(bundle, work, dist, ver, date, args.deb_compression)
        info.update({
            "tarball": str(tarball),
            "tarball_bytes": tarball.stat().st_size,
            "deb": str(deb),
            "deb_bytes": deb.stat().st_size,
            "installed_kib": installed_kib,
        })
        lines.append(f"tarball {tarball}: {mib(tarball.stat().st_size)}")
        lines.append(f"deb {deb}: {mib(deb.stat().st_size)}, "
                     f"installed size {mib(installed_kib * 1024)}")
    total = time.perf_counter() - t0
    info["total_seconds"] = round(total, 1)
    (dist / f"dhtviewer-{ver}-build.json").write_text(json.dumps(info, indent=1) + "\n")
    for line in lines:
        print(f"build: {line}")
    print(f"build: done in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
