"""Which Debian packages does a Linux bundle need? Found by looking at the binaries, not guessed.

For every ELF file of the bundle (the program, Python's extension modules, the Qt libraries and
plugins) this reads the libraries it links directly (``DT_NEEDED``, with ``objdump -p``). A
library that is itself in the bundle is fine; any other one comes from the system: ``ldd`` says
where this machine has it, and ``dpkg -S`` which package installed that file. The result is the
set of packages the bundle links directly, which is what ``Depends:`` must cover (their own
dependencies follow from their own packages, as with ``dpkg-shlibdeps``).

A library this machine lacks cannot be looked up with ``dpkg -S``; ``KNOWN_SONAMES`` maps the ones
the Qt plugins need on a desktop but a server image may not have, as established on a machine
that had them installed (the Debian column of ``dhtviewer/system_libs.py``, which the app's own
start-up check uses too).

    python packaging/find_depends.py BUNDLE_DIR [--control CONTROL_FILE] [--json]

It also reports the newest ``GLIBC_x.y`` symbol version the binaries import (``objdump -T``):
the oldest C library the bundle runs on, hence ``libc6 (>= x.y)``.

With ``--control``, checks that every needed package appears in the control file's ``Depends``
(alone or as one of the alternatives of an entry) and that the libc6 floor is high enough, and
exits 1 if not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


def _known_sonames() -> dict[str, str]:
    # One table with the start-up check of the app (dhtviewer/system_libs.py), which names the
    # same libraries to a user who lacks them.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dhtviewer.system_libs import PACKAGES

    return {soname: p.apt for soname, p in PACKAGES.items()}


KNOWN_SONAMES = _known_sonames()
"""Sonames -> Debian packages, for libraries the build machine may not have installed."""


@dataclass
class Report:
    """``packages``: package -> the system libraries (sonames) of it that the bundle links.
    ``unknown``: sonames found neither on this system nor in KNOWN_SONAMES, with who needs them."""

    packages: dict[str, set[str]] = field(default_factory=dict)
    unknown: dict[str, set[str]] = field(default_factory=dict)
    users: dict[str, set[str]] = field(default_factory=dict)
    glibc: tuple[int, int] = (2, 0)
    """The newest GLIBC_x.y symbol version any file uses: the oldest glibc that runs the bundle."""

    def as_dict(self) -> dict[str, object]:
        return {
            "glibc": "{}.{}".format(*self.glibc),
            "packages": {p: sorted(s) for p, s in sorted(self.packages.items())},
            "unknown": {s: sorted(u) for s, u in sorted(self.unknown.items())},
        }


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_files(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p))


def needed(path: Path) -> list[str]:
    """The sonames ``path`` links directly."""
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"^\s*NEEDED\s+(\S+)", out, re.MULTILINE)


def glibc_versions(path: Path) -> set[tuple[int, int]]:
    """The GLIBC_x.y versions of the symbols ``path`` imports."""
    out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True).stdout
    return {(int(a), int(b)) for a, b in re.findall(r"GLIBC_(\d+)\.(\d+)", out)}


def ldd(path: Path) -> dict[str, str | None]:
    """soname -> resolved path on this system (None: not found), transitively, from ``ldd``."""
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    found: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(not found|\S+)", line)
        if m:
            found[m.group(1)] = None if m.group(2) == "not found" else m.group(2)
    return found


def dpkg_owner(path: str) -> str | None:
    """The package that installed ``path`` (tries the /lib <-> /usr/lib aliases of merged-usr
    systems), without its ``:arch`` suffix."""
    real = os.path.realpath(path)
    candidates = []
    for p in (path, real):
        candidates.append(p)
        if p.startswith("/usr/"):
            candidates.append(p[4:])
        else:
            candidates.append("/usr" + p)
    for candidate in dict.fromkeys(candidates):
        proc = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout:
            package = proc.stdout.split(":", 1)[0].split(",")[0].strip()
            return package
    return None


def analyse(bundle: Path) -> Report:
    files = elf_files(bundle)
    in_bundle = {p.name for p in bundle.rglob("*") if p.is_file() or p.is_symlink()}
    report = Report()
    owners: dict[str, str | None] = {}
    for f in files:
        report.glibc = max([report.glibc, *glibc_versions(f)])
        direct = [s for s in needed(f) if s not in in_bundle]
        if not direct:
            continue
        where = ldd(f)
        who = str(f.relative_to(bundle))
        for soname in direct:
            report.users.setdefault(soname, set()).add(who)
            path = where.get(soname)
            if soname not in owners:
                owners[soname] = dpkg_owner(path) if path else None
            package = owners[soname] or KNOWN_SONAMES.get(soname)
            if package is None:
                report.unknown.setdefault(soname, set()).add(who)
            else:
                report.packages.setdefault(package, set()).add(soname)
    return report


def control_depends(text: str) -> list[list[str]]:
    """The ``Depends`` field as a list of entries, each a list of alternative package names."""
    m = re.search(r"^Depends:(.*(?:\n[ \t].*)*)", text, re.MULTILINE)
    if not m:
        return []
    entries = []
    for entry in m.group(1).replace("\n", " ").split(","):
        names = [re.sub(r"\s*\(.*?\)|:any", "", alt).strip() for alt in entry.split("|")]
        if any(names):
            entries.append([n for n in names if n])
    return entries


def uncovered(report: Report, depends: list[list[str]]) -> list[str]:
    """Needed packages that no Depends entry names."""
    listed = {name for entry in depends for name in entry}
    return sorted(p for p in report.packages if p not in listed)


def libc_floor(text: str) -> tuple[int, int] | None:
    """The x.y of ``libc6 (>= x.y)`` in the control text, if any."""
    m = re.search(r"\blibc6\s*\(>=\s*(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the one-folder bundle (dist/dhtviewer)")
    parser.add_argument("--control", type=Path, help="check this DEBIAN/control's Depends")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = analyse(args.bundle)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print("glibc >= {}.{}".format(*report.glibc))
        for package, sonames in sorted(report.packages.items()):
            print(f"{package:28} {' '.join(sorted(sonames))}")
        for soname, users in sorted(report.unknown.items()):
            print(f"UNKNOWN {soname}: needed by {', '.join(sorted(users))}")
    status = 0
    if report.unknown:
        status = 1
    if args.control is not None:
        text = args.control.read_text()
        missing = uncovered(report, control_depends(text))
        if missing:
            print(f"not in Depends of {args.control}: {', '.join(missing)}", file=sys.stderr)
            status = 1
        floor = libc_floor(text)
        if floor is None or floor < report.glibc:
            print("Depends of {} needs libc6 (>= {}.{})".format(args.control, *report.glibc),
                  file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
