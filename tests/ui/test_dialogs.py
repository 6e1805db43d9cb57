"""The preferences dialog shows every DHT limit with its documentation and edits a copy; the
busy-port dialog names the port and offers a free one."""

from __future__ import annotations

from dataclasses import fields

import pytest
from PySide6.QtWidgets import QApplication, QCheckBox, QDoubleSpinBox, QSpinBox

from dhtviewer.dht.settings import DhtSettings
from dhtviewer.ui.dialogs import PortBusyDialog, PreferencesDialog, about_text, settings_docs

pytestmark = pytest.mark.qt


def test_settings_docs_cover_every_field_with_its_section_and_docstring() -> None:
    docs = {d.name: d for d in settings_docs()}
    assert list(docs) == [f.name for f in fields(DhtSettings)]
    assert docs["k"].section == "Routing table"
    assert "Nodes per routing-table bucket" in docs["k"].doc
    assert docs["alpha"].section == "Queries and lookups"
    assert docs["per_ip_rate"].section == "Abuse protection"
    documented = [d for d in docs.values() if d.doc]
    assert len(documented) >= len(docs) - 2


def test_preferences_has_an_editor_per_limit_and_returns_the_edits(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    numeric = [f.name for f in fields(DhtSettings)
               if isinstance(getattr(DhtSettings(), f.name), bool | int | float)]
    assert sorted(dialog.editors) == sorted(numeric)
    assert "client_version" not in dialog.editors
    assert "Nodes per routing-table bucket" in dialog.editors["k"].toolTip()
    k = dialog.editors["k"]
    timeout = dialog.editors["hard_timeout"]
    limit = dialog.editors["rate_limit"]
    assert isinstance(k, QSpinBox) and isinstance(timeout, QDoubleSpinBox)
    assert isinstance(limit, QCheckBox)
    k.setValue(20)
    timeout.setValue(2.5)
    limit.setChecked(False)
    edited = dialog.settings()
    assert (edited.k, edited.hard_timeout, edited.rate_limit) == (20, 2.5, False)
    dialog.defaults_button.click()
    assert dialog.settings() == DhtSettings()


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
