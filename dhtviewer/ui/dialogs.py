"""Small dialogs of the desktop app: busy port, about. (Preferences, built from the DHT settings'
metadata, has its own module, ``preferences.py``, re-exported here.)
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

from dhtviewer import __version__
from dhtviewer.ui.preferences import PreferencesDialog

__all__ = ["PortBusyDialog", "PreferencesDialog", "about_text"]


class PortBusyDialog(QMessageBox):
    """Names the busy port and offers a free one. ``chosen_port`` is set when accepted."""

    def __init__(self, host: str, port: int, free_port: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.port = port
        self.free_port = free_port
        self.chosen_port: int | None = None
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("UDP port in use")
        self.setText(f"UDP port {port} is already in use on {host}.")
        self.setInformativeText(
            "Another BitTorrent client or a second dhtviewer probably holds it. "
            + (f"Port {free_port} is free: use it instead?" if free_port
               else "Pick another port in the Network panel.")
        )
        self.use_button: QPushButton | None = None
        if free_port:
            self.use_button = self.addButton(f"Use port {free_port}",
                                             QMessageBox.ButtonRole.AcceptRole)
            self.use_button.setToolTip(f"Start the node on UDP port {free_port}")
            self.setDefaultButton(self.use_button)
        cancel = self.addButton(QMessageBox.StandardButton.Cancel)
        cancel.setToolTip("Leave the node stopped")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.buttonClicked.connect(self._clicked)

    def _clicked(self, button: Any) -> None:
        if button is self.use_button:
            self.chosen_port = self.free_port


def about_text() -> str:
    return (
        f"<h3>dhtviewer {__version__}</h3>"
        "<p>A BitTorrent Mainline DHT node (BEP 5, 32, 42, 43) with a live view of what it "
        "does: its routing table, the path of each lookup, the peers found and the traffic.</p>"
        "<p>Try it offline: <i>Node ▸ Start</i> in <i>Local testnet</i> mode runs a small DHT "
        "on loopback addresses, with a few info-hashes already announced.</p>"
    )
