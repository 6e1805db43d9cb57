"""ed25519 key files for BEP 44 mutable items: a 32-byte private seed per file.

A key file holds exactly the 32 raw bytes of the seed (the public key and the signatures derive
from it), readable and writable by its owner only. Creating one is atomic (temporary file with
mode 0600 in the same directory, then ``os.replace``), so a crash never leaves a half-written
key. Loading refuses a file of the wrong size and, on POSIX, a file other users may read: a
leaked seed lets anyone overwrite every item published with it. The default location is the
``keys`` folder of the user state directory.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from dhtviewer.dht.items import SEED_BYTES, public_key_of

__all__ = [
    "KeyFileError",
    "create_key",
    "default_key_dir",
    "load_key",
    "load_or_create_key",
    "public_key_hex",
]


class KeyFileError(Exception):
    """A key file that cannot be used: wrong size, unsafe permissions, unreadable."""


def default_key_dir() -> Path:
    """``<user state dir>/dhtviewer/keys``."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("dhtviewer", appauthor=False)) / "keys"


def load_key(path: str | os.PathLike[str]) -> bytes:
    """The 32-byte seed in ``path``. ``KeyFileError`` says what is wrong with the file;
    ``FileNotFoundError`` if there is none."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise KeyFileError(f"{p} is not a regular file")
            if os.name == "posix" and st.st_mode & 0o077:
                raise KeyFileError(
                    f"{p} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                    f"run: chmod 600 {p}"
                )
            seed = fh.read(SEED_BYTES + 1)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise KeyFileError(f"{p} is a directory, not a key file") from None
    except OSError as err:
        raise KeyFileError(f"cannot read {p}: {err.strerror or err}") from None
    if len(seed) != SEED_BYTES:
        raise KeyFileError(
            f"{p} is not a key file: a key file holds a {SEED_BYTES}-byte ed25519 seed"
        )
    return seed


def create_key(path: str | os.PathLike[str], seed: bytes | None = None) -> bytes:
    """Write a new key (``seed``, or 32 bytes from the OS entropy source) to ``path``, which
    must not exist yet (``FileExistsError``); creates the directory (mode 0700). Returns the
    seed."""
    p = Path(path)
    if seed is None:
        seed = os.urandom(SEED_BYTES)
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a seed is {SEED_BYTES} bytes, got {len(seed)}")
    p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        # mkstemp creates the file with mode 0600: the seed is never readable by others.
        with os.fdopen(fd, "wb") as fh:
            fh.write(seed)
            fh.flush()
            os.fsync(fh.fileno())
        # link(2) fails if the target exists: two processes creating the same key cannot
        # overwrite each other's (os.replace would).
        os.link(tmp_name, p)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
    return seed


def load_or_create_key(path: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """The seed in ``path``, creating the file first if there is none. Returns
    ``(seed, created)``."""
    try:
        return load_key(path), False
    except FileNotFoundError:
        pass
    try:
        return create_key(path), True
    except FileExistsError:
        return load_key(path), False  # created meanwhile by someone else


def public_key_hex(seed: bytes) -> str:
    return public_key_of(seed).hex()
