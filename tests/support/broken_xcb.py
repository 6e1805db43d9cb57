"""A copy of PySide6's xcb platform plugin whose libraries name sonames no system has, so the
real check (plugin discovery, ``ldd``, the message, the exit code) can be run on a machine that
has every xcb library installed, without uninstalling anything.

The copy keeps the PySide6 layout (``plugins/platforms/libqxcb.so`` finds ``lib/`` through its
``$ORIGIN/../../lib`` run path): the plugin and libQt6XcbQpa are copied with the names of three
libraries changed in place (same length, so the ELF files stay valid); every other Qt library is
a symbolic link to the real one.
"""

from __future__ import annotations

from pathlib import Path

RENAMED = {
    b"libxcb-cursor.so.0": b"libxcb-cursor.so.9",
    b"libxcb-icccm.so.4": b"libxcb-icccm.so.9",
    b"libxcb-keysyms.so.1": b"libxcb-keysyms.so.9",
}
"""Real soname -> the one the copy asks for instead."""


def qt_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).parent / "Qt"


def _patched(data: bytes) -> bytes:
    for old, new in RENAMED.items():
        assert len(old) == len(new)
        data = data.replace(old + b"\0", new + b"\0")
    return data


def broken_plugin_dir(root: Path) -> Path:
    """Build the copy under ``root``; returns its ``plugins`` folder (for QT_PLUGIN_PATH)."""
    src = qt_dir()
    lib = root / "Qt" / "lib"
    platforms = root / "Qt" / "plugins" / "platforms"
    lib.mkdir(parents=True)
    platforms.mkdir(parents=True)
    for f in (src / "lib").iterdir():
        if f.name == "libQt6XcbQpa.so.6":
            (lib / f.name).write_bytes(_patched(f.read_bytes()))
        else:
            (lib / f.name).symlink_to(f)
    plugin = platforms / "libqxcb.so"
    plugin.write_bytes(_patched((src / "plugins" / "platforms" / "libqxcb.so").read_bytes()))
    plugin.chmod(0o755)
    return root / "Qt" / "plugins"
