"""KeyPicker: choose the ed25519 key a mutable BEP 44 item is signed with.

It lists the key files of the key folder (``net/keys.py``: ``keys`` in the user state
directory), always offering ``default.key`` there, created (mode 0600, as every key made here)
at the first put that uses it. "New…" creates another key under a name; "Open…" takes a key
file from anywhere. A file that cannot be used (wrong size, readable by others) is reported by
``seed``/``public_key`` as a ``KeyFileError`` whose message says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht.items import SEED_BYTES, public_key_of
from dhtviewer.net.keys import KeyFileError, create_key, load_key, load_or_create_key
from dhtviewer.ui.panels.common import ValueField, muted_label

__all__ = ["DEFAULT_KEY_NAME", "KeyPicker", "key_name_error"]

DEFAULT_KEY_NAME = "default.key"


def key_name_error(name: str, key_dir: Path) -> str | None:
    """Why ``name`` cannot be a new key file in ``key_dir`` (None if it can)."""
    if not name.strip():
        return "give the key a name"
    if name != name.strip() or name.startswith(".") or "/" in name or os.sep in name:
        return "a key name is a plain file name (no folders, not starting with a dot)"
    if (key_dir / name).exists():
        return f"a key named {name!r} already exists"
    return None


class KeyPicker(QWidget):
    changed = Signal()
    """Another key was chosen (or created)."""

    def __init__(self, key_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key_dir = key_dir
        self.combo = QComboBox(self)
        # long names and paths must not widen the panel: the list shows them whole
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(14)
        self.combo.setToolTip(f"The key that signs the item (a 32-byte ed25519 seed; kept in "
                              f"{key_dir}, readable by you only)")
        self.combo.currentIndexChanged.connect(self._chosen)
        self.new_button = QPushButton("New…", self)
        self.new_button.setToolTip("Create a key (one key can publish many items, one per salt)")
        self.new_button.clicked.connect(self._new_dialog)
        self.open_button = QPushButton("Open…", self)
        self.open_button.setToolTip("Use a key file from elsewhere (32 bytes, mode 0600)")
        self.open_button.clicked.connect(self._open_dialog)
        self.info = muted_label("", self)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # the chosen key's public key, in a field: 64 hex digits in a label would set the
        # panel's minimum width
        self.key_row = QWidget(self)
        self.key_field = ValueField(self.key_row)
        self.key_field.setToolTip("The public key of the chosen key (part of every mutable "
                                  "item's target)")
        key_row = QHBoxLayout(self.key_row)
        key_row.setContentsMargins(0, 0, 0, 0)
        key_row.addWidget(QLabel("public key", self.key_row))
        key_row.addWidget(self.key_field, 1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.new_button)
        row.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addWidget(self.key_row)
        self.refresh()

    # --- the list --------------------------------------------------------------------------------
    def refresh(self, select: Path | None = None) -> None:
        """List the key folder again (keeping the choice, or choosing ``select``)."""
        keep = select or self.path()
        paths: list[Path] = []
        try:
            for entry in sorted(self.key_dir.iterdir()):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                if entry.stat().st_size == SEED_BYTES:
                    paths.append(entry)
        except OSError:
            pass  # no folder yet: only the default key, created at the first put
        default = self.key_dir / DEFAULT_KEY_NAME
        if default not in paths:
            paths.insert(0, default)
        if keep is not None and keep not in paths:
            paths.append(keep)  # a key opened from elsewhere
        self.combo.blockSignals(True)
        self.combo.clear()
        for p in paths:
            label = p.name if p.parent == self.key_dir else str(p)
            if not p.exists():
                label += " (new: created at the first put)"
            self.combo.addItem(label, str(p))
        index = self.combo.findData(str(keep)) if keep is not None else -1
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)
        self._chosen()

    def path(self) -> Path | None:
        data = self.combo.currentData()
        return Path(data) if data else None

    def _chosen(self, *_: object) -> None:
        try:
            pk = self.public_key()
        except (KeyFileError, OSError) as err:
            pk, message = None, f"cannot use this key: {err}"
        else:
            message = "" if pk is not None else "a new key is made at the first put"
        self.info.setText(message)
        self.info.setVisible(bool(message))
        self.key_field.setText(pk.hex() if pk is not None else "")
        self.key_row.setVisible(pk is not None)
        self.changed.emit()

    # --- the key ---------------------------------------------------------------------------------
    def public_key(self) -> bytes | None:
        """The chosen key's public key; None while it is a key still to be created.
        ``KeyFileError`` (or ``OSError``) when the file cannot be used."""
        path = self.path()
        if path is None:
            return None
        try:
            return public_key_of(load_key(path))
        except FileNotFoundError:
            return None

    def seed(self) -> tuple[bytes, bool]:
        """The chosen key's seed, creating the key file (mode 0600) if it does not exist yet:
        ``(seed, created)``. ``KeyFileError``/``OSError`` when that fails."""
        path = self.path()
        if path is None:
            raise KeyFileError("no key chosen")
        seed, created = load_or_create_key(path)
        if created:
            self.refresh(select=path)
        return seed, created

    def new_key(self, name: str) -> Path:
        """Create key ``name`` in the key folder and choose it; ``ValueError`` with the reason
        if the name cannot be used, ``OSError`` if the file cannot be written."""
        why = key_name_error(name, self.key_dir)
        if why is not None:
            raise ValueError(why)
        path = self.key_dir / name
        create_key(path)
        self.refresh(select=path)
        return path

    def add_file(self, path: Path) -> None:
        """Choose the key file ``path`` (from anywhere)."""
        self.refresh(select=path)

    # --- dialogs ---------------------------------------------------------------------------------
    def _new_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "New key", "Name of the new key file:")
        if not ok:
            return
        try:
            self.new_key(name)
        except (ValueError, OSError) as err:
            self.info.setText(f"no key created: {err}")

    def _open_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open a key file", str(self.key_dir))
        if name:
            self.add_file(Path(name))
