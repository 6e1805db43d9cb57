"""Which distribution package provides a shared library the Qt platform plugins load from the
system, on Debian/Ubuntu (apt), Fedora (dnf) and Arch (pacman).

One table for two users: the start-up check that names what to install when Qt's xcb plugin
cannot load (``ui/platform_check.py``), and the packaging script that writes the .deb's
``Depends`` (``packaging/find_depends.py``, for the libraries its build machine lacks). The
Debian names were read with ``dpkg -S`` on Debian 12; the others are the packages that ship the
same sonames on Fedora and Arch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PACKAGES", "Packages", "install_commands", "packages_for"]


@dataclass(frozen=True, slots=True)
class Packages:
    """The package that ships one library, per package manager ("" where unknown)."""

    apt: str
    dnf: str
    pacman: str


def _p(apt: str, dnf: str, pacman: str) -> Packages:
    return Packages(apt, dnf, pacman)


PACKAGES: dict[str, Packages] = {
    # the xcb platform plugin and libQt6XcbQpa
    "libxcb-cursor.so.0": _p("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": _p("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-keysyms.so.1": _p("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-image.so.0": _p("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-render-util.so.0": _p("libxcb-render-util0", "xcb-util-renderutil",
                                  "xcb-util-renderutil"),
    "libxcb-util.so.1": _p("libxcb-util1", "xcb-util", "xcb-util"),
    "libxcb-randr.so.0": _p("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-shm.so.0": _p("libxcb-shm0", "libxcb", "libxcb"),
    "libxcb-sync.so.1": _p("libxcb-sync1", "libxcb", "libxcb"),
    "libxcb-xfixes.so.0": _p("libxcb-xfixes0", "libxcb", "libxcb"),
    "libxcb-render.so.0": _p("libxcb-render0", "libxcb", "libxcb"),
    "libxcb-shape.so.0": _p("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-xkb.so.1": _p("libxcb-xkb1", "libxcb", "libxcb"),
    "libxcb-glx.so.0": _p("libxcb-glx0", "libxcb", "libxcb"),
    "libxcb.so.1": _p("libxcb1", "libxcb", "libxcb"),
    "libxkbcommon.so.0": _p("libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    "libxkbcommon-x11.so.0": _p("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libX11-xcb.so.1": _p("libx11-xcb1", "libX11-xcb", "libx11"),
    "libX11.so.6": _p("libx11-6", "libX11", "libx11"),
    "libXau.so.6": _p("libxau6", "libXau", "libxau"),
    "libXdmcp.so.6": _p("libxdmcp6", "libXdmcp", "libxdmcp"),
    # OpenGL (libglvnd), fonts, GLib and D-Bus, which Qt GUI itself links
    "libGL.so.1": _p("libgl1", "libglvnd-glx", "libglvnd"),
    "libEGL.so.1": _p("libegl1", "libglvnd-egl", "libglvnd"),
    "libOpenGL.so.0": _p("libopengl0", "libglvnd-opengl", "libglvnd"),
    "libGLX.so.0": _p("libglx0", "libglvnd-glx", "libglvnd"),
    "libGLdispatch.so.0": _p("libglvnd0", "libglvnd", "libglvnd"),
    "libfontconfig.so.1": _p("libfontconfig1", "fontconfig", "fontconfig"),
    "libfreetype.so.6": _p("libfreetype6", "freetype", "freetype2"),
    "libglib-2.0.so.0": _p("libglib2.0-0", "glib2", "glib2"),
    "libgthread-2.0.so.0": _p("libglib2.0-0", "glib2", "glib2"),
    "libdbus-1.so.3": _p("libdbus-1-3", "dbus-libs", "dbus"),
    # the wayland platform plugin
    "libwayland-client.so.0": _p("libwayland-client0", "libwayland-client", "wayland"),
    "libwayland-cursor.so.0": _p("libwayland-cursor0", "libwayland-cursor", "wayland"),
    "libwayland-egl.so.1": _p("libwayland-egl1", "libwayland-egl", "wayland"),
    # ldd names the loader without "=>"
    "ld-linux-x86-64.so.2": _p("libc6", "glibc", "glibc"),
}
"""soname -> the package that ships it on each distribution family."""


def packages_for(sonames: Iterable[str]) -> tuple[Packages, list[str]]:
    """The packages (each manager's names, sorted, no repeats, joined by spaces) that provide
    ``sonames``, and the sonames none of them is known for."""
    known = [PACKAGES[s] for s in sonames if s in PACKAGES]
    unknown = [s for s in sonames if s not in PACKAGES]

    def names(pick: str) -> str:
        return " ".join(sorted({getattr(p, pick) for p in known if getattr(p, pick)}))

    return Packages(names("apt"), names("dnf"), names("pacman")), unknown


def install_commands(sonames: Iterable[str]) -> str:
    """One line: the apt command that installs what provides ``sonames``, then the dnf and
    pacman ones; "" when no package is known for any of them."""
    pkgs, _unknown = packages_for(sonames)
    if not pkgs.apt:
        return ""
    return (f"sudo apt install {pkgs.apt}  (Fedora: sudo dnf install {pkgs.dnf}; "
            f"Arch: sudo pacman -S {pkgs.pacman})")
