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


def broken_bundle(bundle: Path, root: Path) -> Path:
    """A copy of a PyInstaller one-folder ``bundle`` (the program and ``_internal``) under
    ``root`` whose xcb plugin and libQt6XcbQpa ask for the renamed libraries; everything else is
    a symbolic link into the original (links inside the bundle are copied as links, so they stay
    inside the copy). Returns the copy's program."""
    qt = Path("_internal", "PySide6", "Qt")
    patched = {qt / "lib" / "libQt6XcbQpa.so.6", qt / "plugins" / "platforms" / "libqxcb.so"}
    _shadow(bundle, root / bundle.name, Path(), patched)
    program = root / bundle.name / "dhtviewer"
    program.unlink()
    program.write_bytes((bundle / "dhtviewer").read_bytes())  # /proc/self/exe must be the copy
    program.chmod(0o755)
    return program


def _shadow(src: Path, dst: Path, rel: Path, patched: set[Path]) -> None:
    dst.mkdir(parents=True)
    on_the_way = {p for f in patched for p in f.parents}
    for entry in src.iterdir():
        here = rel / entry.name
        target = dst / entry.name
        if entry.is_symlink():
            target.symlink_to(entry.readlink())
        elif here in patched:
            target.write_bytes(_patched(entry.read_bytes()))
            target.chmod(0o755)
        elif here in on_the_way:
            _shadow(entry, target, here, patched)
        else:
            target.symlink_to(entry)
