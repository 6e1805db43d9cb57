"""The log panel: records of the dhtviewer and asyncio loggers appear, warnings and errors are
counted (with tracebacks kept), and uninstalling restores the loggers."""

from __future__ import annotations

import logging

import pytest
from pytestqt.qtbot import QtBot

from dhtviewer.ui.log_panel import LogPanel

pytestmark = pytest.mark.qt


def test_records_reach_the_panel_with_tracebacks_and_counts(qtbot: QtBot) -> None:
    panel = LogPanel()
    logger = logging.getLogger("dhtviewer.test")
    before = logging.getLogger("dhtviewer").level
    panel.install()
    counts: list[int] = []
    panel.errors_changed.connect(counts.append)
    try:
        logger.info("node started")
        logger.debug("not shown at Info")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("a task failed")
        logging.getLogger("asyncio").error("loop trouble")
        qtbot.waitUntil(lambda: len(panel.lines) == 3, timeout=2000)
    finally:
        panel.uninstall()
    texts = [t for _, t in panel.lines]
    assert "node started" in texts[0] and "test" in texts[0]
    assert "a task failed" in texts[1] and "ValueError: boom" in texts[1]
    assert "loop trouble" in texts[2]
    assert panel.total_errors == 2 and counts[-1] == 2
    assert "2 warnings or errors" in panel.summary.text()
    panel.mark_seen()
    assert counts[-1] == 0
    assert logging.getLogger("dhtviewer").level == before
    assert panel.handler not in logging.getLogger("dhtviewer").handlers
    logger.error("after uninstall")
    qtbot.wait(20)
    assert len(panel.lines) == 3


def test_level_filter_and_clear(qtbot: QtBot) -> None:
    panel = LogPanel()
    panel.level.setCurrentIndex(2)  # Warning
    panel.append(logging.INFO, "t", "hidden")
    panel.append(logging.WARNING, "t", "shown")
    assert [t for _, t in panel.lines] == ["t  shown"]
    panel.clear()
    assert panel.lines == [] and panel.total_errors == 0 and panel.plain_text() == ""
