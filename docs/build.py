"""Build the API reference (HTML, with pdoc) of dhtviewer's library API into a folder.

    python docs/build.py build/docs          # what `make docs` runs

The package page carries the guide (docs/guide.md, included by the package docstring); the
others are generated from the docstrings of the modules below and their submodules. Any warning
(an annotation pdoc cannot resolve, a broken include) fails the build: tests/test_docs.py builds
it this way so that the reference cannot rot.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

MODULES = (
    "dhtviewer",
    "dhtviewer.api",
    "dhtviewer.blocking",
    "dhtviewer.arguments",
    "dhtviewer.infohash",
    "dhtviewer.dht",
    "dhtviewer.net",
)
"""The library's modules (with their submodules); the app's own (ui, cli, simnet...) stay out."""


def build(out: Path) -> list[Path]:
    """Write the reference to ``out`` (emptied first); the HTML pages written. Raises on any
    warning."""
    import pdoc
    import pdoc.render

    from dhtviewer import __version__

    if out.exists():
        shutil.rmtree(out)
    pdoc.render.configure(
        docformat="restructuredtext",
        footer_text=f"dhtviewer {__version__}",
        show_source=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdoc.pdoc(*MODULES, output_directory=out)
    return sorted(out.rglob("*.html"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder (emptied first)")
    args = parser.parse_args()
    pages = build(args.out)
    print(f"{len(pages)} pages in {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
