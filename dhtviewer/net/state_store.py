"""The node's persistent state: its id, its last known external address and its routing contacts.

Saved as a small JSON file so that a restarted node keeps its place in the id space and can
bootstrap from its old contacts without the public routers. Writes are atomic (temporary file in
the same directory, fsync, ``os.replace``), so a crash mid-write leaves the previous file intact.
Loading never raises on a bad file: a corrupt one is moved aside (``state.json.corrupt-<time>``)
for inspection, a ``StateLoadWarning`` says what happened, and the node starts fresh.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node_id import ID_BYTES

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
STATE_FILE_NAME = "state.json"
STALE_TEMP_SECONDS = 60.0  # a save takes milliseconds; older temp files are orphans
# A state file is a few kilobytes; anything far larger is not ours and is not parsed.
_MAX_FILE_BYTES = 16 * 1024 * 1024


class StateLoadWarning(UserWarning):
    """The state file could not be used. ``backup`` is where the bad file was moved (None if it
    could not be moved)."""

    def __init__(self, message: str, path: Path, backup: Path | None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.backup = backup


@dataclass(slots=True)
class SavedState:
    """What a session restores at start. Empty (all None / no nodes) for a first run."""

    node_id: bytes | None = None
    external_ip: str | None = None
    nodes: list[NodeInfo] = field(default_factory=list)
    skipped: int = 0
    """Node entries in the file that were malformed and ignored."""



def default_state_path() -> Path:
    """``<user state dir>/dhtviewer/state.json`` (platformdirs: XDG on Linux, AppData on
    Windows, Library on macOS)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("dhtviewer", appauthor=False)) / STATE_FILE_NAME


def save_state(path: str | os.PathLike[str], state: Mapping[str, object]) -> None:
    """Atomically write ``state`` (``DhtNode.export_state()`` shape: ``node_id`` hex,
    ``external_ip``, ``nodes`` as ``[[id_hex, ip, port], ...]``). Creates the directory.
    Raises ``OSError`` if the file cannot be written; the previous file is then untouched."""
    target = Path(path)
    if target.exists() and not target.is_file():
        # /dev/null, a FIFO...: replacing it with our file would break it for everyone
        raise OSError(f"{target} is not a regular file; not replaced")
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": FORMAT_VERSION, "saved_at": time.time(), **state}
    data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # Without fsync the rename can reach the disk before the data, and a power cut
            # would leave an empty file where a good one was.
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    _remove_stale_temps(target)


def _remove_stale_temps(target: Path) -> None:
    """A process killed mid-save leaves its temporary file behind; the next save removes those
    (only old ones: a concurrent save by another process may be writing a fresh one)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not possible, and not needed, on Windows."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_state(path: str | os.PathLike[str]) -> tuple[SavedState, StateLoadWarning | None]:
    """The saved state, or an empty one. A missing file is normal (first run, no warning). An
    unreadable or corrupt file yields an empty state and a warning; a corrupt file is moved
    aside so the next save does not destroy the evidence."""
    p = Path(path)
    if p.exists() and not p.is_file():
        # /dev/null and the like hold no state, and are never moved aside
        return SavedState(), _warn(f"cannot read state file {p}: not a regular file", p, None)
    try:
        size = p.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise ValueError(f"file is {size} bytes, too large for a state file")
        raw = p.read_bytes()
    except FileNotFoundError:
        return SavedState(), None
    except OSError as err:
        # Unreadable (permissions, a directory...): leave it where it is, start fresh.
        return SavedState(), _warn(f"cannot read state file {p}: {err}", p, None)
    except ValueError as err:
        return SavedState(), _warn(f"corrupt state file {p}: {err}", p, _move_aside(p))
    try:
        return _decode(raw), None
    except ValueError as err:
        return SavedState(), _warn(f"corrupt state file {p}: {err}", p, _move_aside(p))


def _warn(message: str, path: Path, backup: Path | None) -> StateLoadWarning:
    if backup is not None:
        message += f"; moved to {backup.name}"
    message += "; starting with a fresh state"
    log.warning("%s", message)
    return StateLoadWarning(message, path, backup)


def _move_aside(p: Path) -> Path | None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = p.with_name(f"{p.name}.corrupt-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = p.with_name(f"{p.name}.corrupt-{stamp}-{n}")
    try:
        os.replace(p, backup)
    except OSError as err:
        log.warning("cannot move corrupt state file %s aside: %s", p, err)
        return None
    return backup


def _decode(raw: bytes) -> SavedState:
    """Parse and validate; ``ValueError`` (json.JSONDecodeError is one) for any bad shape."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text ({err.reason})") from err
    return parse_state(doc)


def parse_state(doc: object) -> SavedState:
    """A ``SavedState`` from the file's JSON document, or from ``DhtNode.export_state()``.
    Raises ``ValueError`` naming the first problem with its shape."""
    if not isinstance(doc, dict):
        raise ValueError("top level is not a JSON object")
    version = doc.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported format version {version!r}")
    node_id = _node_id(doc.get("node_id"))
    ext = doc.get("external_ip")
    if ext is not None and not (isinstance(ext, str) and _is_ip(ext)):
        raise ValueError(f"external_ip is not an IP address: {ext!r}")
    nodes_doc = doc.get("nodes", [])
    if not isinstance(nodes_doc, list):
        raise ValueError("nodes is not a list")
    nodes: list[NodeInfo] = []
    skipped = 0
    for item in nodes_doc:
        # One odd contact is not worth discarding the rest: skip it and count it.
        info = _node_info(item)
        if info is None:
            skipped += 1
        else:
            nodes.append(info)
    return SavedState(node_id, ext, nodes, skipped)


def _node_id(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("node_id is not a string")
    try:
        node_id = bytes.fromhex(value)
    except ValueError:
        raise ValueError("node_id is not hex") from None
    if len(node_id) != ID_BYTES:
        raise ValueError(f"node_id has {len(node_id)} bytes, expected {ID_BYTES}")
    return node_id


def _node_info(item: object) -> NodeInfo | None:
    if not (isinstance(item, list) and len(item) == 3):
        return None
    id_hex, ip, port = item
    if not (isinstance(id_hex, str) and isinstance(ip, str) and isinstance(port, int)):
        return None
    if isinstance(port, bool) or not 0 < port < 65536 or not _is_ip(ip):
        return None
    try:
        node_id = bytes.fromhex(id_hex)
    except ValueError:
        return None
    if len(node_id) != ID_BYTES:
        return None
    return NodeInfo(node_id, (ip, port))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
