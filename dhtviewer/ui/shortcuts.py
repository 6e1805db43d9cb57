"""WindowShortcuts: the window's own shortcuts keep working while a text field has the focus.

A line edit claims some keys for itself before the window's shortcuts see them: on X11, Ctrl+E
moves the cursor to the end of the line (an Emacs binding), so Export (Ctrl+E) did nothing while
the focus was in the lookup field, which is where it always is after a search. Qt asks the
focused widget first with a ShortcutOverride event; this filter answers "not yours" for the keys
of the window's actions, and should a field take such a key all the same (a style or input
method that claims it earlier), it triggers the action from the key press itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QWidget


class WindowShortcuts(QObject):
    """Installed on text fields; ``actions`` are the window actions whose shortcuts win."""

    def __init__(self, actions: Iterable[QAction], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._actions = list(actions)

    def watch(self, fields: Iterable[QWidget]) -> None:
        for field in fields:
            field.installEventFilter(self)

    def action_for(self, event: QKeyEvent) -> QAction | None:
        """The action whose shortcut ``event`` is, if any."""
        pressed = QKeySequence(event.keyCombination())
        for action in self._actions:
            if any(s.matches(pressed) == QKeySequence.SequenceMatch.ExactMatch
                   for s in action.shortcuts() if not s.isEmpty()):
                return action
        return None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) or not isinstance(
            event, QKeyEvent
        ):
            return False
        action = self.action_for(event)
        if action is None:
            return False
        if kind == QEvent.Type.ShortcutOverride:
            event.ignore()  # not the field's: the shortcut goes to the window's action
            return True
        if action.isEnabled():  # the field took the key all the same
            action.trigger()
        return True
