"""LogPanel: the application's log inside the window, so that no error goes unseen.

A ``logging.Handler`` forwards records of the ``dhtviewer`` and ``asyncio`` loggers to the panel
through a Qt signal (safe from any thread). Warnings and errors are coloured and counted; the
count shows in the dock title until the user looks. The text is bounded (oldest lines dropped).
"""

from __future__ import annotations

import html
import logging
import time

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.ui.views.theme import current_theme

MAX_LINES = 5000
WATCHED_LOGGERS = ("dhtviewer", "asyncio")
LEVELS = (("Debug", logging.DEBUG), ("Info", logging.INFO), ("Warning", logging.WARNING),
          ("Error", logging.ERROR))


class _Bridge(QObject):
    record = Signal(int, str, str)  # level, time + logger text, message (with traceback)


class QtLogHandler(logging.Handler):
    """Sends formatted records to ``bridge.record``."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.bridge = _Bridge()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            name = record.name.removeprefix("dhtviewer.")
            head = f"{stamp}.{int(record.msecs):03d} {record.levelname:<7} {name}"
            self.bridge.record.emit(record.levelno, head, message)
        except Exception:  # a log handler must never raise into the code that logs
            self.handleError(record)


class LogPanel(QWidget):
    """``errors_changed(count)``: warnings and errors since the last ``mark_seen()``."""

    errors_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setToolTip("What the node and the application report; errors in red")
        self.level = QComboBox(self)
        for label, value in LEVELS:
            self.level.addItem(label, value)
        self.level.setCurrentIndex(1)
        self.level.setToolTip("Show messages of this level and above")
        self.level.currentIndexChanged.connect(self._level_changed)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setToolTip("Empty the log view")
        self.clear_button.clicked.connect(self.clear)
        self.summary = QLabel(self)
        self.summary.setToolTip("Warnings and errors since the log was last cleared")

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show:", self))
        bar.addWidget(self.level)
        bar.addStretch(1)
        bar.addWidget(self.summary)
        bar.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        margin = self.fontMetrics().height() // 4
        layout.setContentsMargins(margin, margin, margin, margin)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)

        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(self.append, Qt.ConnectionType.QueuedConnection)
        self._installed: list[tuple[logging.Logger, int]] = []
        self.unseen_errors = 0
        self.total_errors = 0
        self.lines: list[tuple[int, str]] = []
        """(level, text) of every line kept (bounded like the view); tests and export read it."""
        self._update_summary()

    # --- logging wiring ------------------------------------------------------------------------
    def install(self, level: int = logging.INFO) -> None:
        """Attach the handler to the watched loggers (and let their INFO records through)."""
        if self._installed:
            return
        for name in WATCHED_LOGGERS:
            logger = logging.getLogger(name)
            self._installed.append((logger, logger.level))
            logger.addHandler(self.handler)
            if name == "dhtviewer" and (logger.level == logging.NOTSET or logger.level > level):
                logger.setLevel(level)
        self.handler.setLevel(min(level, self.level.currentData()))

    def uninstall(self) -> None:
        for logger, old_level in self._installed:
            logger.removeHandler(self.handler)
            logger.setLevel(old_level)
        self._installed.clear()

    def current_level(self) -> int:
        return int(self.level.currentData())

    def set_level(self, level: int) -> None:
        """Show messages of ``level`` and above (one of ``LEVELS``; others are ignored)."""
        index = self.level.findData(level)
        if index >= 0:
            self.level.setCurrentIndex(index)

    def _level_changed(self) -> None:
        level = int(self.level.currentData())
        self.handler.setLevel(level)
        for logger, _ in self._installed:
            if logger.name == "dhtviewer" and logger.level > level:
                logger.setLevel(level)

    # --- content -------------------------------------------------------------------------------
    def append(self, level: int, head: str, message: str) -> None:
        if level < int(self.level.currentData()):
            return
        t = current_theme()
        color = t.bad if level >= logging.ERROR else t.questionable if level >= logging.WARNING \
            else None
        text = f"{head}  {message}"
        self.lines.append((level, text))
        del self.lines[:-MAX_LINES]
        escaped = html.escape(text).replace("\n", "<br>")
        if color is None:
            self.text.appendHtml(f"<span style='white-space:pre'>{escaped}</span>")
        else:
            self.text.appendHtml(f"<span style='white-space:pre; color:{color}'>{escaped}</span>")
        if level >= logging.WARNING:
            self.unseen_errors += 1
            self.total_errors += 1
            self._update_summary()
            self.errors_changed.emit(self.unseen_errors)

    def log(self, level: int, message: str) -> None:
        """Add a line directly (messages of the UI itself)."""
        stamp = time.strftime("%H:%M:%S")
        self.append(level, f"{stamp}     {logging.getLevelName(level):<7} ui", message)

    def mark_seen(self) -> None:
        if self.unseen_errors:
            self.unseen_errors = 0
            self.errors_changed.emit(0)

    def clear(self) -> None:
        self.text.clear()
        self.lines.clear()
        self.total_errors = 0
        self._update_summary()
        self.mark_seen()

    def plain_text(self) -> str:
        return "\n".join(text for _, text in self.lines)

    def _update_summary(self) -> None:
        n = self.total_errors
        self.summary.setText("no warnings" if n == 0 else f"{n} warning{'s' if n != 1 else ''}"
                             " or error" + ("s" if n != 1 else ""))
