"""Key files: 32-byte seeds, owner-only permissions, atomic creation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dhtviewer.dht.items import public_key_of
from dhtviewer.net.keys import (
    KeyFileError,
    create_key,
    load_key,
    load_or_create_key,
    public_key_hex,
)

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def test_create_then_load(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "mine.key"
    seed, created = load_or_create_key(path)
    assert created and len(seed) == 32 and path.read_bytes() == seed
    again, created = load_or_create_key(path)
    assert again == seed and not created
    assert public_key_hex(seed) == public_key_of(seed).hex()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


@posix
def test_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "k"
    create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(path)


def test_create_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k"
    first = create_key(path, bytes(32))
    with pytest.raises(FileExistsError):
        create_key(path, bytes(range(32)))
    assert load_key(path) == first


def test_bad_files(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    short.chmod(0o600)
    with pytest.raises(KeyFileError, match="32-byte"):
        load_key(short)
    with pytest.raises(FileNotFoundError):
        load_key(tmp_path / "missing")
    with pytest.raises(KeyFileError):
        load_key(tmp_path)
    with pytest.raises(ValueError):
        create_key(tmp_path / "x", b"short")
