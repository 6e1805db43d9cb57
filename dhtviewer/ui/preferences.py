"""The Preferences dialog: every DHT limit, built from the settings' own metadata.

Each ``DhtSettings`` field carries its label, unit, group, range and help text as data
(``dht/settings.py``), so this dialog has nothing to parse and nothing to keep in step: the
groups are the pages (a list on the left), each row shows the human label, the value with its
unit and the first sentence of the help; the whole help, the default and the range show below
for the field being edited or hovered. A search box filters every page at once. Values are typed
and checked as they are typed against the same ranges the command line uses: a bad one gets its
message under the field (and OK waits until it is fixed), never a generic error at the next
start. Each page restores its own defaults. Changes apply the next time the node starts.
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht.settings import (
    DhtSettings,
    SettingGroup,
    SettingsError,
    SettingSpec,
    editable_specs,
    format_value,
    parse_value,
)

__all__ = ["PreferencesDialog"]

_ERROR_STYLE = "color: #d0342c;"


def first_sentence(text: str) -> str:
    """The help's first sentence (the row's one-line description): up to the first full stop
    that a capital letter follows, so "(0: none kept)." or "e.g. 5" do not cut it short."""
    start = 0
    while (cut := text.find(". ", start)) > 0:
        if text[cut + 2 : cut + 3].isupper():
            return text[: cut + 1]
        start = cut + 2
    return text


def _ui_message(spec: SettingSpec, reason: str) -> str:
    """A settings error as the dialog says it, under the field: "Must be 1..64 nodes (got 0)";
    a rule between two fields names both by their labels."""
    if reason.startswith(f"{spec.name} must"):
        text = reason.removeprefix(f"{spec.name} ")
    else:
        text = reason
        for other in editable_specs():
            text = text.replace(f"{other.name} (", f"{other.info.label} (")
    return text[:1].upper() + text[1:]


class _Row(QWidget):
    """One setting: label, editor, unit, its one-line description and its error message."""

    hovered = Signal(str)

    def __init__(self, spec: SettingSpec, label_width: int, parent: QWidget) -> None:
        super().__init__(parent)
        self.spec = spec
        info = spec.info
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 4, 0, 4)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(1)
        self.label = QLabel(info.label, self)
        self.label.setMinimumWidth(label_width)
        self.editor: QCheckBox | QLineEdit
        if spec.kind is bool:
            self.editor = QCheckBox(self)
        else:
            line = QLineEdit(self)
            line.setAlignment(Qt.AlignmentFlag.AlignRight)
            line.setMaximumWidth(self.fontMetrics().horizontalAdvance("0") * 12)
            self.editor = line
        self.label.setBuddy(self.editor)
        self.unit = QLabel(info.unit, self)
        self.description = QLabel(first_sentence(info.help), self)
        self.description.setWordWrap(True)
        palette = self.description.palette()  # secondary text: the text colour, faded
        faded = palette.color(QPalette.ColorRole.WindowText)
        faded.setAlpha(175)
        palette.setColor(QPalette.ColorRole.WindowText, faded)
        self.description.setPalette(palette)
        small = QFont(self.description.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.9))
        self.description.setFont(small)
        self.error = QLabel(self)
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        grid.addWidget(self.label, 0, 0)
        grid.addWidget(self.editor, 0, 1)
        grid.addWidget(self.unit, 0, 2)
        grid.setColumnStretch(3, 1)
        grid.addWidget(self.error, 1, 1, 1, 3)
        grid.addWidget(self.description, 2, 0, 1, 4)
        tip = f"{info.help}\n\n{_default_and_range(spec)}"
        for w in (self.label, self.editor, self.description):
            w.setToolTip(tip)
        self.editor.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.FocusIn, QEvent.Type.Enter):
            self.hovered.emit(self.spec.name)
        return False

    def enterEvent(self, event: Any) -> None:
        self.hovered.emit(self.spec.name)
        super().enterEvent(event)

    def show_value(self, value: object) -> None:
        if isinstance(self.editor, QCheckBox):
            self.editor.setChecked(bool(value))
        else:
            self.editor.setText(format_value(value))

    def value(self) -> Any:
        """The typed value, checked; SettingsError when it is not acceptable."""
        if isinstance(self.editor, QCheckBox):
            return self.editor.isChecked()
        return parse_value(self.spec, self.editor.text())

    def matches(self, words: list[str]) -> bool:
        info = self.spec.info
        haystack = " ".join((info.label, self.spec.name, self.spec.name.replace("_", " "),
                             info.help, info.unit)).casefold()
        return all(w in haystack for w in words)


def _default_and_range(spec: SettingSpec) -> str:
    unit = f" {spec.info.unit}" if spec.info.unit else ""
    text = f"Default: {format_value(spec.default)}{unit}"
    if spec.range_text():
        text += f"; accepted: {spec.range_text()}{unit}"
    return text + f". Key for --set and --config: {spec.name}"


class _Page(QScrollArea):
    """The rows of one group, and the button that restores their defaults."""

    def __init__(self, group: SettingGroup, rows: list[_Row], parent: QWidget) -> None:
        super().__init__(parent)
        self.group = group
        self.rows = rows
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget(self)
        column = QVBoxLayout(content)
        title = QLabel(f"<b>{html.escape(group.value)}</b>", content)
        column.addWidget(title)
        for row in rows:
            row.setParent(content)
            column.addWidget(row)
        self.empty = QLabel("No setting of this page matches the search.", content)
        self.empty.setEnabled(False)
        self.empty.hide()
        column.addWidget(self.empty)
        column.addStretch(1)
        self.defaults_button = QPushButton(f"Restore defaults of “{group.value}”", content)
        self.defaults_button.setToolTip(
            f"Put every setting of this page ({group.value}) back to its documented default")
        self.defaults_button.setSizePolicy(QSizePolicy.Policy.Maximum,
                                           QSizePolicy.Policy.Fixed)
        column.addWidget(self.defaults_button)
        self.setWidget(content)


class PreferencesDialog(QDialog):
    """Edit a DhtSettings; ``settings()`` gives the edited copy (call it once every value is
    valid: OK is enabled only then). Changes apply at the next start of the node."""

    def __init__(self, settings: DhtSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._original = settings
        specs = editable_specs()
        label_width = max(self.fontMetrics().horizontalAdvance(s.info.label) for s in specs)
        self.rows: dict[str, _Row] = {}
        self.editors: dict[str, QCheckBox | QLineEdit] = {}
        self.errors: dict[str, str] = {}
        """Field name -> the message shown under it (only fields with a problem)."""
        self.shown_help = ""
        """The field whose help the pane below shows."""

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search settings (name, words of the help, unit)…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)

        self.groups = QListWidget(self)
        self.stack = QStackedWidget(self)
        self.pages: dict[SettingGroup, _Page] = {}
        widest = 0
        for group in SettingGroup:
            rows = [_Row(s, label_width, self) for s in specs if s.info.group is group]
            if not rows:
                continue
            for row in rows:
                self.rows[row.spec.name] = row
                self.editors[row.spec.name] = row.editor
                row.hovered.connect(self._show_help)
                if isinstance(row.editor, QCheckBox):
                    row.editor.toggled.connect(lambda _on, n=row.spec.name: self._edited(n))
                else:
                    row.editor.textChanged.connect(lambda _t, n=row.spec.name: self._edited(n))
            page = _Page(group, rows, self)
            page.defaults_button.clicked.connect(lambda _c=False, g=group: self.restore_group(g))
            self.pages[group] = page
            self.stack.addWidget(page)
            item = QListWidgetItem(group.value, self.groups)
            item.setData(Qt.ItemDataRole.UserRole, group)
            widest = max(widest, self.fontMetrics().horizontalAdvance(group.value))
        self.groups.setFixedWidth(widest + 48)
        self.groups.currentRowChanged.connect(self._page_chosen)

        self.help_view = QLabel(self)
        self.help_view.setWordWrap(True)
        self.help_view.setTextFormat(Qt.TextFormat.RichText)
        self.help_view.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.help_view.setFrameShape(QFrame.Shape.StyledPanel)
        self.help_view.setMargin(6)
        lines = self.fontMetrics().lineSpacing()
        self.help_view.setMinimumHeight(lines * 5 + 12)
        self.no_match = QLabel(self)
        self.no_match.setEnabled(False)
        self.no_match.hide()

        self.summary = QLabel(self)
        self.summary.setStyleSheet(_ERROR_STYLE)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert ok is not None
        self.ok_button: QAbstractButton = ok
        self.defaults_button = QPushButton("Restore all defaults", self)
        self.defaults_button.setToolTip("Put every setting of every page back to its default")
        buttons.addButton(self.defaults_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.defaults_button.clicked.connect(lambda: self.load(DhtSettings()))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        middle = QHBoxLayout()
        middle.addWidget(self.groups)
        right = QVBoxLayout()
        right.addWidget(self.no_match)
        right.addWidget(self.stack, 1)
        middle.addLayout(right, 1)
        note = QLabel("Changes apply the next time the node starts.", self)
        note.setEnabled(False)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addLayout(middle, 1)
        layout.addWidget(self.help_view)
        layout.addWidget(note)
        layout.addLayout(bottom)

        self.load(settings)
        self.groups.setCurrentRow(0)
        self._show_help(specs[0].name)
        self._fit_to_screen()

    # --- values -----------------------------------------------------------------------------
    def load(self, settings: DhtSettings) -> None:
        """Show the values of ``settings`` in every field."""
        for name, row in self.rows.items():
            row.show_value(getattr(settings, name))
        self._validate()

    def restore_group(self, group: SettingGroup) -> None:
        """Put the fields of ``group`` back to their defaults (the other pages keep theirs)."""
        for row in self.pages[group].rows:
            row.show_value(row.spec.default)
        self._validate()

    def settings(self) -> DhtSettings:
        """The edited settings; SettingsError when a field holds a value that is not
        acceptable (OK is disabled then)."""
        changes = {name: row.value() for name, row in self.rows.items()}
        return replace(self._original, **changes)

    def error_of(self, name: str) -> str:
        """The message shown under field ``name`` ("" when its value is fine)."""
        return self.errors.get(name, "")

    # --- checking as one types ----------------------------------------------------------------
    def _edited(self, name: str) -> None:
        self._show_help(name)
        self._validate()

    def _validate(self) -> None:
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        for name, row in self.rows.items():
            try:
                changes[name] = row.value()
            except SettingsError as err:
                errors[name] = _ui_message(row.spec, str(err))
        if not errors:
            try:
                replace(self._original, **changes)
            except SettingsError as err:  # fine alone, not together (timeouts)
                for name, reason in err.problems:
                    if name in self.rows:
                        errors[name] = _ui_message(self.rows[name].spec, reason)
        self.errors = errors
        defaults = {s.name: s.default for s in editable_specs()}
        for name, row in self.rows.items():
            message = errors.get(name, "")
            row.error.setText(message)
            row.error.setVisible(bool(message))
            font = row.label.font()
            font.setBold(name in changes and changes[name] != defaults[name])
            row.label.setFont(font)
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for i in range(self.groups.count()):
            item = self.groups.item(i)
            group = item.data(Qt.ItemDataRole.UserRole)
            bad = any(r.spec.name in errors for r in self.pages[group].rows)
            item.setIcon(warn if bad else QIcon())
        count = len(errors)
        self.summary.setText("" if not count else
                             f"{count} value{'s' if count > 1 else ''} to fix before OK")
        self.ok_button.setEnabled(not errors)

    # --- search and navigation -------------------------------------------------------------------
    def _filter(self, text: str) -> None:
        words = text.casefold().split()
        first_visible = -1
        for i in range(self.groups.count()):
            item = self.groups.item(i)
            group = item.data(Qt.ItemDataRole.UserRole)
            page = self.pages[group]
            shown = 0
            for row in page.rows:
                visible = row.matches(words)
                row.setVisible(visible)
                shown += visible
            page.empty.setVisible(shown == 0)
            item.setHidden(shown == 0)
            item.setText(f"{group.value} ({shown})" if words and shown else group.value)
            if shown and first_visible < 0:
                first_visible = i
        self.no_match.setText(f"No setting matches “{html.escape(text.strip())}”."
                              if first_visible < 0 else "")
        self.no_match.setVisible(first_visible < 0)
        self.stack.setVisible(first_visible >= 0)
        current = self.groups.currentItem()
        if first_visible >= 0 and (current is None or current.isHidden()):
            self.groups.setCurrentRow(first_visible)
        matches = self.visible_settings()
        if matches and self.shown_help not in matches:
            self._show_help(matches[0])  # the help of a match, not of a hidden field

    def visible_settings(self) -> list[str]:
        """Names of the settings the search leaves visible (all without a search)."""
        words = self.search.text().casefold().split()
        return [name for name, row in self.rows.items() if row.matches(words)]

    def _page_chosen(self, index: int) -> None:
        if index >= 0:
            self.stack.setCurrentIndex(index)

    def _show_help(self, name: str) -> None:
        row = self.rows.get(name)
        if row is None:
            return
        spec = row.spec
        self.help_view.setText(
            f"<b>{html.escape(spec.info.label)}</b><br>{html.escape(spec.info.help)}"
            f"<br><span style='color: gray'>{html.escape(_default_and_range(spec))}</span>"
        )
        self.shown_help = name

    def _fit_to_screen(self) -> None:
        unit = self.fontMetrics().height()
        width, height = unit * 52, unit * 50
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry()
            width = min(width, int(room.width() * 0.95))
            height = min(height, int(room.height() * 0.92))
        self.resize(width, height)
