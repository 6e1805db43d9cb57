"""Can Qt's xcb platform plugin load here? Asked before the QApplication exists.

Since Qt 6.5 the xcb plugin (X11) needs system libraries that many desktops, minimal installs,
WSL and containers lack (libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1...). Qt then aborts
with a message naming only the first one. When xcb is the platform Qt will pick, this finds the
plugin where Qt will look for it (``QT_PLUGIN_PATH``, then Qt's own plugin path, which is right
in a virtualenv and in the PyInstaller bundle alike), asks which libraries it cannot resolve
(all of them: ``ldd`` on the plugin, which follows its Qt libraries too; without ``ldd``,
loading each library the plugin needs with ctypes), and makes one line that names them and the
apt, dnf and pacman commands that install them (``system_libs.py``). The resolver is injectable,
so tests can simulate a machine without the libraries.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from dhtviewer.system_libs import install_commands, packages_for

__all__ = [
    "EXIT_MISSING_LIBRARIES",
    "XCB_SONAMES",
    "find_xcb_plugin",
    "ldd_missing",
    "missing_message",
    "plugin_dirs",
    "probe_missing",
    "xcb_problem",
    "xcb_will_be_used",
]

EXIT_MISSING_LIBRARIES = 2

XCB_SONAMES = (
    "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-util.so.1", "libxcb-image.so.0",
    "libxcb-keysyms.so.1", "libxcb-randr.so.0", "libxcb-render-util.so.0", "libxcb-shm.so.0",
    "libxcb-sync.so.1", "libxcb-xfixes.so.0", "libxcb-render.so.0", "libxcb-shape.so.0",
    "libxcb-xkb.so.1", "libxcb.so.1", "libX11-xcb.so.1", "libX11.so.6", "libxkbcommon.so.0",
    "libxkbcommon-x11.so.0", "libGL.so.1", "libEGL.so.1", "libfontconfig.so.1",
    "libfreetype.so.6", "libglib-2.0.so.0", "libgthread-2.0.so.0",
)
"""The system libraries the xcb plugin and libQt6XcbQpa link (PySide6 6.6-6.11, read with
``objdump -p``): probed one by one when ``ldd`` is not available."""

Resolver = Callable[[Path], "list[str] | None"]
"""plugin file -> the sonames it cannot resolve ([] when all load; None when it cannot tell)."""

_UNIX = ("linux", "freebsd", "openbsd", "netbsd")


def xcb_will_be_used(environ: Mapping[str, str], platform: str) -> bool:
    """Whether Qt will pick the xcb plugin: asked for in QT_QPA_PLATFORM (first of its list),
    or nothing asked and an X11 display without a Wayland session."""
    if not platform.startswith(_UNIX):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "").strip()
    if asked:
        return asked.split(";")[0].split(":")[0].strip() == "xcb"
    if not environ.get("DISPLAY"):
        return False
    # In a Wayland session Qt 6 prefers its wayland plugin (XWayland's DISPLAY is set too).
    wayland = environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def plugin_dirs(environ: Mapping[str, str]) -> list[Path]:
    """Where Qt looks for plugins, in its order: QT_PLUGIN_PATH, then its own plugin path
    (QLibraryInfo: the PySide6 package, or the bundle's copy of it), then the PySide6 package
    folder (if QtCore itself cannot be imported)."""
    dirs = [Path(p) for p in environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    try:
        from PySide6.QtCore import QLibraryInfo

        dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
    except ImportError:
        pass
    try:
        import PySide6

        dirs.append(Path(PySide6.__file__).parent / "Qt" / "plugins")
    except (ImportError, TypeError):
        pass
    return list(dict.fromkeys(dirs))


def find_xcb_plugin(dirs: Iterable[Path]) -> Path | None:
    for d in dirs:
        plugin = d / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def ldd_missing(plugin: Path) -> list[str] | None:
    """The sonames ``ldd`` reports "not found" for ``plugin`` (transitively); None when ``ldd``
    is not there or cannot read the file."""
    try:
        proc = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=20,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0 and "=>" not in proc.stdout:
        return None
    found = re.findall(r"^\s*(\S+)\s+=>\s+not found", proc.stdout, re.MULTILINE)
    return list(dict.fromkeys(found))


def probe_missing(sonames: Sequence[str] = XCB_SONAMES) -> list[str]:
    """The ``sonames`` the dynamic loader cannot load (ctypes; a library that loads stays
    loaded, as it would a moment later for Qt)."""
    missing = []
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(soname)
    return missing


def _default_resolver(plugin: Path) -> list[str] | None:
    missing = ldd_missing(plugin)
    return probe_missing() if missing is None else missing


def missing_message(sonames: Sequence[str], wayland_available: bool = False) -> str:
    """The one line that names the missing libraries and what installs them."""
    _pkgs, unknown = packages_for(sonames)
    line = (f"dhtviewer: Qt's xcb platform plugin (X11) cannot load, these libraries are "
            f"missing: {', '.join(sonames)}.")
    install = install_commands(sonames)
    if install:
        line += f" Install them with: {install}."
    if unknown:
        own = [s for s in unknown if s.startswith(("libQt6", "libicu", "libpyside6", "libshib"))]
        if own:
            line += " Qt's own libraries are missing too: reinstall dhtviewer."
        else:
            line += f" No package is known here for {', '.join(unknown)}."
    if wayland_available:
        line += " Or run it on Wayland: QT_QPA_PLATFORM=wayland dhtviewer."
    return line


def xcb_problem(environ: Mapping[str, str] | None = None, platform: str | None = None, *,
                dirs: Sequence[Path] | None = None,
                resolver: Resolver | None = None) -> str | None:
    """The line to print (then exit 2) when Qt will use xcb and its plugin cannot load; None
    when all is well, or when it cannot be told (no plugin found, no way to resolve)."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if not xcb_will_be_used(env, plat):
        return None
    plugin = find_xcb_plugin(plugin_dirs(env) if dirs is None else dirs)
    if plugin is None:
        return None  # Qt will say it has no xcb plugin; nothing more precise to add
    missing = (resolver or _default_resolver)(plugin)
    if not missing:
        return None
    return missing_message(missing, wayland_available=bool(env.get("WAYLAND_DISPLAY")))
