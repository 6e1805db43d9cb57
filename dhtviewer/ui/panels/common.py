"""Small helpers shared by the panels: inline messages, info-hash inputs, fields showing a long
value to copy, copy to clipboard, compact tables."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QWidget,
)

from dhtviewer.infohash import InfohashError, parse_infohash_note
from dhtviewer.ui.models.nodes import monospace_font
from dhtviewer.ui.views.theme import current_theme


class InlineMessage(QLabel):
    """A one-line message under an input: an error (theme's "bad" colour) or a hint (muted);
    hidden when empty so it takes no room."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.is_error = False
        self.hide()

    def show_error(self, text: str) -> None:
        self._show(text, error=True)

    def show_info(self, text: str) -> None:
        self._show(text, error=False)

    def _show(self, text: str, error: bool) -> None:
        self.is_error = error
        t = current_theme()
        color = t.bad if error else t.muted
        self.setStyleSheet(f"color: {color};")
        self.setText(("✗ " if error else "") + text)
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.is_error = False
        self.setText("")
        self.hide()


class ValueField(QLineEdit):
    """A long value to read and copy (a target, a public key): read-only, frameless, fixed-width
    font. Unlike a label, whose longest word sets the panel's minimum width (64 hex digits are
    wider than a 1024-pixel window's side of a panel), it scrolls when short, and copying it
    gives the value exactly."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setFrame(False)
        self.setFont(monospace_font())
        self.setStyleSheet("QLineEdit { background: transparent; }")
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("0") * 12)

    def setText(self, text: str | None, /) -> None:
        super().setText(text)
        self.setCursorPosition(0)  # the start in view when it does not fit


def mark_invalid(widget: QWidget, invalid: bool) -> None:
    """A red frame on an input holding invalid text."""
    widget.setStyleSheet(f"border: 1px solid {current_theme().bad};" if invalid else "")


def query_field(
    parent: QWidget,
    placeholder: str,
    tooltip: str,
    on_enter: Callable[[], object],
    on_edit: Callable[[], object],
) -> QLineEdit:
    """A clearable one-line input calling ``on_enter`` on Enter and ``on_edit`` on user edits."""
    field = QLineEdit(parent)
    field.setPlaceholderText(placeholder)
    field.setToolTip(tooltip)
    field.setClearButtonEnabled(True)
    field.returnPressed.connect(on_enter)
    field.textEdited.connect(on_edit)
    return field


def clear_query_error(query: QLineEdit, message: InlineMessage) -> None:
    """Drop the inline message and the red frame of an input (e.g. once the user edits it)."""
    message.clear_message()
    mark_invalid(query, False)


def parse_query(query: QLineEdit, message: InlineMessage, running: bool) -> bytes | None:
    """The info-hash in ``query`` if it parses and the node is ``running``; else None, with the
    reason in ``message`` (and ``query`` framed red when it does not parse). A hash that is not
    the text's own (a v2 magnet's truncated SHA-256 hash) is accepted with a note saying so."""
    try:
        info_hash, note = parse_infohash_note(query.text())
    except InfohashError as err:
        message.show_error(str(err))
        mark_invalid(query, True)
        return None
    if not running:
        message.show_error("The node is not running: start it in the Network panel.")
        return None
    clear_query_error(query, message)
    if note is not None:
        message.show_info(f"{note}: {info_hash.hex()}.")
    return info_hash


def copy_text(text: str) -> None:
    clipboard = QGuiApplication.clipboard()
    if clipboard is not None:
        clipboard.setText(text)


def setup_table(view: QTableView, sortable: bool = True) -> None:
    """Compact rows, row selection, alternating colours, last column stretched."""
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.setSortingEnabled(sortable)
    view.setWordWrap(False)
    view.setCornerButtonEnabled(False)
    vh = view.verticalHeader()
    vh.setVisible(False)
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vh.setDefaultSectionSize(int(view.fontMetrics().height() * 1.45))
    hh = view.horizontalHeader()
    hh.setStretchLastSection(True)
    hh.setHighlightSections(False)
    hh.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


def muted_label(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText,
                     palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText))
    label.setPalette(palette)
    label.setWordWrap(True)
    return label
