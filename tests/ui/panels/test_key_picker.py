"""The key picker: the key folder listed (with default.key offered before it exists), keys made
with mode 0600, names that cannot be keys refused, files from elsewhere taken."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from dhtviewer.dht.items import public_key_of
from dhtviewer.net.keys import KeyFileError, create_key
from dhtviewer.ui.panels.key_picker import DEFAULT_KEY_NAME, KeyPicker, key_name_error

pytestmark = pytest.mark.qt


def labels(picker: KeyPicker) -> list[str]:
    return [picker.combo.itemText(i) for i in range(picker.combo.count())]


def test_default_key_is_offered_and_made_at_first_use(tmp_path: Path, qtbot: QtBot) -> None:
    keys = tmp_path / "keys"
    picker = KeyPicker(keys)
    qtbot.addWidget(picker)
    assert labels(picker) == [f"{DEFAULT_KEY_NAME} (new: created at the first put)"]
    assert picker.public_key() is None and not keys.exists()
    assert "made at the first put" in picker.info.text()
    assert picker.key_row.isHidden() and not picker.info.isHidden()
    seed, created = picker.seed()
    assert created and len(seed) == 32
    key = keys / DEFAULT_KEY_NAME
    if os.name == "posix":
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert labels(picker) == [DEFAULT_KEY_NAME]
    assert picker.public_key() == public_key_of(seed)
    # the key in a field of its own (copied exactly; it never widens the panel)
    assert picker.key_field.text() == public_key_of(seed).hex()
    assert not picker.key_row.isHidden() and picker.info.isHidden()
    assert picker.seed() == (seed, False)


def test_new_keys_are_listed_and_chosen(tmp_path: Path, qtbot: QtBot) -> None:
    keys = tmp_path / "keys"
    create_key(keys / "blog.key")
    (keys / "notes.txt").write_text("not a key")  # wrong size: not listed
    picker = KeyPicker(keys)
    qtbot.addWidget(picker)
    assert labels(picker)[1:] == ["blog.key"]
    changes: list[None] = []
    picker.changed.connect(lambda: changes.append(None))
    made = picker.new_key("work")
    assert picker.path() == made == keys / "work" and changes
    assert "work" in labels(picker)
    with pytest.raises(ValueError, match="already exists"):
        picker.new_key("work")
    for bad, why in (("", "give the key a name"), ("../x", "plain file name"),
                     (".hidden", "plain file name")):
        assert key_name_error(bad, keys) is not None and why in str(key_name_error(bad, keys))


def test_a_key_file_from_elsewhere_and_a_broken_one(tmp_path: Path, qtbot: QtBot) -> None:
    elsewhere = tmp_path / "other" / "mine.key"
    seed = create_key(elsewhere)
    picker = KeyPicker(tmp_path / "keys")
    qtbot.addWidget(picker)
    picker.add_file(elsewhere)
    assert picker.path() == elsewhere and str(elsewhere) in labels(picker)
    assert picker.public_key() == public_key_of(seed)
    broken = tmp_path / "other" / "broken.key"
    broken.write_bytes(b"short")
    broken.chmod(0o600)
    picker.add_file(broken)
    assert "cannot use this key" in picker.info.text()
    assert picker.key_row.isHidden() and picker.key_field.text() == ""
    with pytest.raises(KeyFileError, match="32-byte"):
        picker.seed()
