"""The soname -> package table the start-up check and the .deb's Depends share."""

from __future__ import annotations

from dhtviewer.system_libs import PACKAGES, Packages, install_commands, packages_for
from dhtviewer.ui.platform_check import XCB_SONAMES


def test_every_library_of_the_xcb_plugin_has_a_package_everywhere() -> None:
    for soname in XCB_SONAMES:
        p = PACKAGES[soname]
        assert p.apt and p.dnf and p.pacman, soname


def test_packages_are_merged_and_sorted_per_manager() -> None:
    pkgs, unknown = packages_for(["libxcb-shm.so.0", "libxcb-xkb.so.1", "libnope.so.1"])
    assert pkgs == Packages("libxcb-shm0 libxcb-xkb1", "libxcb", "libxcb")
    assert unknown == ["libnope.so.1"]


def test_install_commands() -> None:
    assert install_commands(["libGL.so.1", "libEGL.so.1"]) == (
        "sudo apt install libegl1 libgl1  (Fedora: sudo dnf install libglvnd-egl libglvnd-glx; "
        "Arch: sudo pacman -S libglvnd)")
    assert install_commands(["libnope.so.1"]) == ""


def test_the_readme_lines_install_every_library_the_check_can_name() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### System libraries", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    text = block.replace("\\\n", " ")
    lines = {m.group(1): set(m.group(2).split())
             for m in re.finditer(r"sudo (apt install|dnf install|pacman -S) ([^\n#]+)", text)}
    wanted = [*XCB_SONAMES, "libdbus-1.so.3", "libwayland-client.so.0",
              "libwayland-cursor.so.0", "libwayland-egl.so.1"]
    assert {PACKAGES[s].apt for s in wanted} <= lines["apt install"]
    assert {PACKAGES[s].dnf for s in wanted} <= lines["dnf install"]
    assert {PACKAGES[s].pacman for s in wanted} <= lines["pacman -S"]
