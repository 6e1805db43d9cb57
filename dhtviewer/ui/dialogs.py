"""Dialogs of the desktop app: preferences (every DHT limit), busy port, about.

The preferences dialog is built from ``DhtSettings`` itself: one editor per field, grouped by
the section comments of the dataclass, with the field's docstring as its tooltip and help text.
A limit added to the core therefore shows up here without touching this file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dhtviewer import __version__
from dhtviewer.dht.settings import DhtSettings, SettingSpec, setting_specs, spec_of


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    section: str
    doc: str


def settings_docs() -> list[FieldDoc]:
    """Every DhtSettings field with its group and help text (field metadata)."""
    return [FieldDoc(s.name, s.info.group.value, s.info.help) for s in setting_specs()]


def _label(name: str) -> str:
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


class PreferencesDialog(QDialog):
    """Edit a DhtSettings; ``settings()`` gives the edited copy. Changes apply at the next
    start of the node (the running core keeps the limits it started with)."""

    def __init__(self, settings: DhtSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._original = settings
        self.editors: dict[str, QWidget] = {}
        content = QWidget()
        column = QVBoxLayout(content)
        groups: dict[str, QFormLayout] = {}
        for fd in settings_docs():
            value = getattr(settings, fd.name)
            editor = self._editor(spec_of(fd.name), value)
            if editor is None:
                continue
            form = groups.get(fd.section)
            if form is None:
                box = QGroupBox(fd.section, content)
                form = groups[fd.section] = QFormLayout(box)
                form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
                column.addWidget(box)
            tip = fd.doc or _label(fd.name)
            editor.setToolTip(f"{tip}\n(default: {getattr(DhtSettings(), fd.name)})")
            label = QLabel(_label(fd.name))
            label.setToolTip(editor.toolTip())
            label.setBuddy(editor)
            form.addRow(label, editor)
            self.editors[fd.name] = editor
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        note = QLabel("Changes apply the next time the node starts. Hover a field for what it "
                      "does.", self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.defaults_button = QPushButton("Restore defaults", self)
        self.defaults_button.setToolTip("Put every limit back to its documented default")
        buttons.addButton(self.defaults_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.defaults_button.clicked.connect(lambda: self.load(DhtSettings()))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        unit = self.fontMetrics().height()
        self.resize(unit * 34, unit * 40)

    @staticmethod
    def _editor(spec: SettingSpec, value: Any) -> QWidget | None:
        if not spec.info.editable:
            return None  # bytes: the client version is not a user setting
        low, high = spec.info.low or 0, spec.info.high or 0
        if isinstance(value, bool):
            box = QCheckBox()
            box.setChecked(value)
            return box
        if isinstance(value, int):
            spin = QSpinBox()
            spin.setRange(int(low), int(high))
            spin.setValue(value)
            spin.setGroupSeparatorShown(True)
            return spin
        if isinstance(value, float):
            dspin = QDoubleSpinBox()
            dspin.setRange(low, high)
            dspin.setDecimals(2)
            dspin.setValue(value)
            dspin.setGroupSeparatorShown(True)
            return dspin
        return None  # bytes: the client version is not a user setting

    def load(self, settings: DhtSettings) -> None:
        for name, editor in self.editors.items():
            value = getattr(settings, name)
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QSpinBox | QDoubleSpinBox):
                editor.setValue(value)

    def settings(self) -> DhtSettings:
        changes: dict[str, Any] = {}
        for name, editor in self.editors.items():
            if isinstance(editor, QCheckBox):
                changes[name] = editor.isChecked()
            elif isinstance(editor, QSpinBox):
                changes[name] = int(editor.value())
            elif isinstance(editor, QDoubleSpinBox):
                changes[name] = float(editor.value())
        return replace(self._original, **changes)


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
