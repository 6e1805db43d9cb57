"""Render the application icon: resources/dhtviewer.svg -> PNGs, a Windows .ico, a macOS .icns.

The picture: the DHT's 160-bit id space drawn as a ring, a few nodes on it, and one lookup's path
(orange) hopping across the ring, each hop closer to the target (the white node).

Writes ``resources/icons/dhtviewer-<N>.png`` for every size in ``SIZES`` (the hicolor sizes of
the .deb), ``dhtviewer.ico`` (16-256 px) and ``dhtviewer.icns`` (16-1024 px). Both containers hold
PNG images, which every Windows since Vista and every macOS since 10.7 read, so no image library
beyond Qt is needed. Qt's SVG renderer runs offscreen: no display is required.

    python packaging/render_icons.py [--check]

``--check`` renders in memory and exits 1 if a committed PNG is missing or has the wrong size
(the images themselves may differ by a few antialiasing bits between Qt versions).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "dhtviewer.svg"
SMALL_SVG = ROOT / "resources" / "dhtviewer-small.svg"
"""The same picture with thicker lines and no grey nodes, for sizes up to SMALL_MAX pixels, where
the full drawing's details would blur into noise."""
SMALL_MAX = 24
OUT = ROOT / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# icns element types holding PNG data, by pixel size (the @2x types share a pixel size).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"icp6", 64), (b"ic12", 64),
    (b"ic07", 128), (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512),
    (b"ic10", 1024),
)


_app: object = None


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn into a transparent ``size`` x ``size`` PNG."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    global _app
    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QGuiApplication([])  # kept for the process: Qt needs one for fonts and painting
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")  # type: ignore[call-overload]  # the stubs want bytes, Qt a str
    buf.close()
    return bytes(data.data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """A .ico file of PNG entries (ICONDIR, one ICONDIRENTRY per size, then the images)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        data = pngs[s]
        dim = 0 if s >= 256 else s  # 0 means 256 in the directory
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def icns(pngs: dict[int, bytes]) -> bytes:
    """An .icns file: 'icns' + total length, then (type, length, PNG) elements."""
    body = b""
    for kind, size in ICNS_TYPES:
        data = pngs[size]
        body += kind + struct.pack(">I", 8 + len(data)) + data
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that every PNG exists with the right size")
    args = parser.parse_args(argv)
    if args.check:
        bad = []
        for s in SIZES:
            path = OUT / f"dhtviewer-{s}.png"
            if not path.exists() or png_size(path.read_bytes()) != (s, s):
                bad.append(path.name)
        for name in ("dhtviewer.ico", "dhtviewer.icns"):
            if not (OUT / name).exists():
                bad.append(name)
        if bad:
            print("render_icons: missing or wrong: " + ", ".join(bad), file=sys.stderr)
            return 1
        return 0
    pngs = {
        s: render_png(SMALL_SVG if s <= SMALL_MAX else SVG, s)
        for s in sorted({*SIZES, *ICO_SIZES, 1024})
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for s in SIZES:
        (OUT / f"dhtviewer-{s}.png").write_bytes(pngs[s])
    (OUT / "dhtviewer.ico").write_bytes(ico({s: pngs[s] for s in ICO_SIZES}))
    (OUT / "dhtviewer.icns").write_bytes(icns(pngs))
    print(f"render_icons: {len(SIZES)} PNGs, dhtviewer.ico and dhtviewer.icns in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
