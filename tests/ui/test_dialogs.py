"""The busy-port dialog names the port and offers a free one; About names the version.
(Preferences: test_preferences.py.)"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from dhtviewer.ui.dialogs import PortBusyDialog, about_text

pytestmark = pytest.mark.qt


def test_port_busy_dialog_names_the_port_and_offers_a_free_one(qapp: QApplication) -> None:
    dialog = PortBusyDialog("0.0.0.0", 6881, 6882)
    assert "6881" in dialog.text() and "6882" in dialog.informativeText()
    assert dialog.use_button is not None
    dialog.use_button.click()
    assert dialog.chosen_port == 6882
    none_free = PortBusyDialog("0.0.0.0", 6881, 0)
    assert none_free.use_button is None and "another port" in none_free.informativeText()


def test_about_names_the_version() -> None:
    from dhtviewer import __version__

    assert __version__ in about_text()
