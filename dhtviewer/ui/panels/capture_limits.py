"""CaptureLimitsDialog: how much the packet log's capture keeps (packets, MB of capture file),
with where the file is and what it holds now."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.ui.capture.store import MB, MB_RANGE, PACKETS_RANGE, CaptureLimits, PacketCapture
from dhtviewer.ui.panels.common import muted_label


class CaptureLimitsDialog(QDialog):
    def __init__(self, capture: PacketCapture, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Packet log limits")
        self.capture = capture
        limits = capture.limits
        self.packets = QSpinBox(self)
        self.packets.setRange(*PACKETS_RANGE)
        self.packets.setSingleStep(100_000)
        self.packets.setGroupSeparatorShown(True)
        self.packets.setSuffix(" packets")
        self.packets.setValue(limits.max_packets)
        self.packets.setToolTip("The capture keeps at most this many packets; the oldest go "
                                "first")
        self.megabytes = QSpinBox(self)
        self.megabytes.setRange(*MB_RANGE)
        self.megabytes.setSingleStep(64)
        self.megabytes.setGroupSeparatorShown(True)
        self.megabytes.setSuffix(" MB")
        self.megabytes.setValue(limits.max_bytes // MB)
        self.megabytes.setToolTip("The capture file (with its write-ahead log) stays below "
                                  "this size; the oldest packets go first")
        form = QFormLayout()
        form.addRow("Keep at most", self.packets)
        form.addRow("Capture file at most", self.megabytes)
        where = str(capture.path) if capture.path is not None else "in memory (no file)"
        now = QLabel(f"Now: {capture.kept:,} packets, {capture.disk_bytes / MB:.1f} MB "
                     f"on disk.", self)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(now)
        layout.addWidget(muted_label(
            f"The capture file is {where}; it is deleted when the window closes. At 3,000 "
            "packets a second (a flood) 1,000,000 packets last about 5 minutes and take about "
            "200 MB.", self))
        if capture.error:
            layout.addWidget(muted_label(capture.error, self))
        layout.addWidget(buttons)

    def limits(self) -> CaptureLimits:
        return replace(self.capture.limits, max_packets=self.packets.value(),
                       max_bytes=self.megabytes.value() * MB)
