"""The licence notices of a packaged build: ``packaging/debian/copyright.in`` filled in with the
licence texts of the exact versions bundled, read from their installed metadata.

The template names every component the bundle holds (Debian's machine-readable copyright
format) and has ``@LICENSE name@`` where a distribution's licence files go (``dhtviewer``: the
repository's LICENSE; ``python``: the Python runtime's LICENSE.txt) and ``@VERSIONS@`` for the
list of bundled distributions and versions. ``runtime_distributions`` is what a user's
``pip install dhtviewer`` pulls in on this machine: the packaging test checks that the
template names each of them.
"""

from __future__ import annotations

import re
import sys
import sysconfig
import textwrap
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "packaging" / "debian" / "copyright.in"


def runtime_distributions(root: str = "dhtviewer") -> dict[str, Distribution]:
    """Every distribution ``root`` needs at run time on this interpreter (requirements followed
    recursively, extras and non-matching markers left out), by lower-case name."""
    from packaging.requirements import Requirement

    seen: dict[str, Distribution] = {}
    todo = [root]
    while todo:
        try:
            dist = distribution(todo.pop())
        except PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower()
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def licence_files(dist: Distribution) -> list[Path]:
    """The licence files a distribution ships (``License-File`` entries), found in its
    metadata folder."""
    names = dist.metadata.get_all("License-File") or []
    files = [Path(str(f)) for f in dist.files or []]
    out = []
    for name in names:
        for f in files:
            if f.as_posix().endswith(("licenses/" + name, ".dist-info/" + name)):
                out.append(Path(str(dist.locate_file(f))))
                break
    return out


def _text_of(name: str) -> str:
    if name == "dhtviewer":
        return (ROOT / "LICENSE").read_text(encoding="utf-8")
    if name == "python":
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        return (stdlib / "LICENSE.txt").read_text(encoding="utf-8", errors="replace")
    files = licence_files(distribution(name))
    if not files:
        raise SystemExit(f"notices: {name} ships no licence file")
    return "\n\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def dep5_block(text: str) -> str:
    """``text`` as the continuation lines of a copyright-format field: one leading space, a
    lone "." for an empty line."""
    lines = [line.rstrip().expandtabs() for line in text.strip("\n").splitlines()]
    return "\n".join(f" {line}" if line else " ." for line in lines)


def copyright_text(template: str | None = None) -> str:
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    dists = runtime_distributions()
    versions = ", ".join(f"{d.metadata['Name']} {d.version}"
                         for key, d in sorted(dists.items()) if key != "dhtviewer")
    listed = textwrap.fill(f"Bundled here: Python {sys.version.split()[0]}, {versions}.", 88,
                           subsequent_indent=" ")
    text = text.replace("@VERSIONS@", listed)
    return re.sub(r"^@LICENSE ([^@]+)@$", lambda m: dep5_block(_text_of(m.group(1))), text,
                  flags=re.MULTILINE)
