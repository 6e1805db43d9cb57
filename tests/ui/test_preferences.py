"""The Preferences dialog, built from the settings' metadata: human labels and units, one page
per group, a search over all of them, help that does not depend on the source being there (the
packaged builds have no .py files), defaults restored per page, and values checked as they are
typed with a message under the field (0 for K, alpha or a burst is refused, and says why)."""

from __future__ import annotations

import inspect

import pytest
from PySide6.QtWidgets import QApplication, QCheckBox, QLineEdit

from dhtviewer.dht.families import AddressFamilies
from dhtviewer.dht.settings import DhtSettings, SettingGroup, editable_specs, spec_of
from dhtviewer.ui.preferences import PreferencesDialog, first_sentence

pytestmark = pytest.mark.qt


def text_field(dialog: PreferencesDialog, name: str) -> QLineEdit:
    editor = dialog.editors[name]
    assert isinstance(editor, QLineEdit), name
    return editor


def test_help_texts_do_not_need_the_source(qapp: QApplication,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the PyInstaller bundle, where inspect.getsource finds no .py file."""

    def no_source(obj: object) -> str:
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "getsource", no_source)
    dialog = PreferencesDialog(DhtSettings())
    row = dialog.rows["peer_ttl"]
    assert "last announce" in row.editor.toolTip()
    assert row.description.text() == "A stored peer is forgotten this long after its last announce."
    dialog._show_help("max_reply_bytes")
    assert "no amplification" in dialog.help_view.text()
    assert "Default: 1400 bytes; accepted: 576..65507 bytes" in dialog.help_view.text()
    assert all(r.description.text() for r in dialog.rows.values())


def test_rows_have_human_labels_and_units(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    assert sorted(dialog.rows) == sorted(s.name for s in editable_specs())
    assert "client_version" not in dialog.rows
    for name, label, unit in (("peer_ttl", "Announced peers expire after", "s"),
                              ("enforce_bep42", "Enforce BEP 42 node ids", ""),
                              ("k", "Bucket size (K)", "nodes"),
                              ("max_reply_bytes", "Largest reply", "bytes"),
                              ("per_ip_rate", "Queries per IP", "/s")):
        row = dialog.rows[name]
        assert (row.label.text(), row.unit.text()) == (label, unit)
    # the raw dump the issue saw ("Peer ttl", "Enforce bep42", "Max reply bytes") is gone
    labels = {row.label.text() for row in dialog.rows.values()}
    assert not labels & {"Peer ttl", "Enforce bep42", "Max reply bytes", "K", "Alpha"}


def test_one_page_per_group_in_the_groups_order(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    titles = [dialog.groups.item(i).text() for i in range(dialog.groups.count())]
    assert titles == [g.value for g in SettingGroup]
    for group, page in dialog.pages.items():
        assert [r.spec.name for r in page.rows] == [
            s.name for s in editable_specs() if s.info.group is group]
    dialog.groups.setCurrentRow(4)
    assert dialog.stack.currentWidget() is dialog.pages[SettingGroup.ABUSE]


def test_search_filters_every_page(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    dialog._show_help("k")
    dialog.search.setText("timeout")
    assert dialog.shown_help == "alpha"  # the help below is of a match, not of hidden K
    shown = set(dialog.visible_settings())
    assert {"short_timeout", "hard_timeout", "min_short_timeout", "adaptive_timeout"} <= shown
    assert "k" not in shown and "per_ip_burst" not in shown
    assert dialog.rows["k"].isHidden() and not dialog.rows["hard_timeout"].isHidden()
    visible_groups = [dialog.groups.item(i).text() for i in range(dialog.groups.count())
                      if not dialog.groups.item(i).isHidden()]
    assert visible_groups == ["Queries and lookups (5)"]
    assert dialog.stack.currentWidget() is dialog.pages[SettingGroup.QUERIES]
    dialog.search.setText("bep 42")  # words of the label, in any order
    assert set(dialog.visible_settings()) == {"enforce_bep42", "prefer_bep42", "derive_node_id"}
    dialog.search.setText("max_reply_bytes")  # the key of --set
    assert dialog.visible_settings() == ["max_reply_bytes"]
    dialog.search.setText("nothing like this")
    assert dialog.visible_settings() == [] and "No setting matches" in dialog.no_match.text()
    dialog.search.clear()
    assert len(dialog.visible_settings()) == len(dialog.rows)
    assert not dialog.rows["k"].isHidden()


@pytest.mark.parametrize(("name", "message"), [
    ("k", "Must be 1..64 nodes (got 0)"),
    ("alpha", "Must be 1..64 queries (got 0)"),
    ("per_ip_burst", "Must be 1..1000000 queries (got 0)"),
    ("global_reply_burst", "Must be 1..10000000 replies (got 0)"),
])
def test_zero_is_refused_with_a_message_under_the_field(
    qapp: QApplication, name: str, message: str
) -> None:
    dialog = PreferencesDialog(DhtSettings())
    text_field(dialog, name).setText("0")
    assert dialog.error_of(name) == message
    assert dialog.rows[name].error.text() == message and not dialog.rows[name].error.isHidden()
    assert not dialog.ok_button.isEnabled()
    assert dialog.summary.text() == "1 value to fix before OK"
    group_item = dialog.groups.item(list(dialog.pages).index(spec_of(name).info.group))
    assert not group_item.icon().isNull()  # the page is marked
    text_field(dialog, name).setText("3")
    assert dialog.error_of(name) == "" and dialog.rows[name].error.isHidden()
    assert dialog.ok_button.isEnabled() and group_item.icon().isNull()


def test_typing_mistakes_and_contradictions_are_explained(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    text_field(dialog, "hard_timeout").setText("fast")
    assert dialog.error_of("hard_timeout") == "Must be a number in 0.01..300 (got 'fast')"
    text_field(dialog, "k").setText("8.5")
    assert dialog.error_of("k") == "Must be an integer in 1..64 (got '8.5')"
    assert dialog.summary.text() == "2 values to fix before OK"
    text_field(dialog, "k").setText("8")
    text_field(dialog, "hard_timeout").setText("0.5")  # below the short timeout (1 s)
    why = "Short timeout (1 s) must not exceed Query timeout (0.5 s)"
    assert dialog.error_of("hard_timeout") == why == dialog.error_of("short_timeout")
    assert not dialog.ok_button.isEnabled()
    text_field(dialog, "short_timeout").setText("0.4")
    assert dialog.errors == {} and dialog.ok_button.isEnabled()


def test_the_edits_come_back_typed(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    assert dialog.settings() == DhtSettings()
    text_field(dialog, "k").setText("20")
    text_field(dialog, "hard_timeout").setText("2.5")
    text_field(dialog, "max_stored_peers").setText(" 100_000 ")
    limit = dialog.editors["rate_limit"]
    assert isinstance(limit, QCheckBox)
    limit.setChecked(False)
    edited = dialog.settings()
    assert (edited.k, edited.hard_timeout, edited.max_stored_peers, edited.rate_limit) == (
        20, 2.5, 100_000, False)
    assert dialog.rows["k"].label.font().bold()  # changed from its default
    assert not dialog.rows["alpha"].label.font().bold()
    dialog.defaults_button.click()
    assert dialog.settings() == DhtSettings()


def test_restore_defaults_of_one_page_only(qapp: QApplication) -> None:
    start = DhtSettings(k=16, alpha=8, per_ip_burst=50.0)
    dialog = PreferencesDialog(start)
    assert text_field(dialog, "k").text() == "16" and text_field(dialog, "alpha").text() == "8"
    dialog.pages[SettingGroup.ROUTING].defaults_button.click()
    got = dialog.settings()
    assert (got.k, got.alpha, got.per_ip_burst) == (8, 8, 50.0)
    dialog.pages[SettingGroup.ABUSE].defaults_button.click()
    assert dialog.settings().per_ip_burst == DhtSettings().per_ip_burst
    assert dialog.settings().alpha == 8


def test_values_show_as_people_type_them(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    assert text_field(dialog, "good_period").text() == "900"
    assert text_field(dialog, "min_short_timeout").text() == "0.25"
    assert text_field(dialog, "max_tracked_ips").text() == "10000"


def test_it_fits_a_1024x700_screen(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    screen = dialog.screen().availableGeometry()
    assert dialog.width() <= screen.width() and dialog.height() <= screen.height()
    assert dialog.minimumSizeHint().height() <= 640 and dialog.minimumSizeHint().width() <= 900


def test_first_sentence() -> None:
    assert first_sentence("Candidates kept (0: none kept).") == "Candidates kept (0: none kept)."
    assert first_sentence("One thing. Then another.") == "One thing."
    assert first_sentence("Queries (e.g. pings) count. More.") == "Queries (e.g. pings) count."


def test_the_address_families_are_a_choice_checked_as_typed(qapp: QApplication) -> None:
    dialog = PreferencesDialog(DhtSettings())
    field = text_field(dialog, "address_families")
    assert field.text() == "both"
    field.setText("dual")
    assert dialog.error_of("address_families") == (
        "Must be one of ipv4|ipv6|both (got 'dual')")
    assert not dialog.ok_button.isEnabled()
    field.setText("ipv6")
    assert dialog.errors == {} and dialog.settings().address_families is AddressFamilies.IPV6
