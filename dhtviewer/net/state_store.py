"""The session's persistent state: for each address family (BEP 32 runs one DHT per family), the
node's id, its last known external address and its routing contacts.

Saved as a small JSON file so that a restarted node keeps its place in the id space and can
bootstrap from its old contacts without the public routers. Format 2 keeps each family apart
(``{"families": {"4": {...}, "6": {...}}}``); a format 1 file (one id, one address, contacts of
both families mixed) is still read: its id serves both families and each contact goes to the
family of its address. Writes are atomic (temporary file in
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dhtviewer.dht.addresses import ip_family
from dhtviewer.dht.families import FAMILIES
from dhtviewer.dht.messages import NodeInfo
from dhtviewer.dht.node_id import ID_BYTES

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
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
class FamilyState:
    """What the node of one address family restores: its id, its external address, its
    contacts (all of that family)."""

    node_id: bytes | None = None
    external_ip: str | None = None
    nodes: list[NodeInfo] = field(default_factory=list)


@dataclass(slots=True)
class SavedState:
    """What a session restores at start, per family. Empty for a first run."""

    families: dict[int, FamilyState] = field(default_factory=dict)
    skipped: int = 0
    """Node entries in the file that were malformed (or of the wrong family) and ignored."""

    def family(self, family: int) -> FamilyState:
        """The state of ``family`` (an empty one when nothing was saved for it)."""
        return self.families.get(family) or FamilyState()

    @property
    def node_id(self) -> bytes | None:
        """The id saved first (IPv4's, else IPv6's): the session's id when it starts fresh."""
        return next((f.node_id for _, f in sorted(self.families.items()) if f.node_id), None)

    @property
    def nodes(self) -> list[NodeInfo]:
        """Every saved contact, IPv4 ones first."""
        return [n for _, f in sorted(self.families.items()) for n in f.nodes]


def state_document(exports: Iterable[Mapping[str, object]]) -> dict[str, object]:
    """The document ``save_state`` writes for the nodes of a session: ``exports`` are their
    ``DhtNode.export_state()`` (each names its ``family``)."""
    families: dict[str, object] = {}
    for export in exports:
        fam = export.get("family")
        if fam not in FAMILIES:
            raise ValueError(f"a node export without a valid family: {fam!r}")
        families[str(fam)] = {k: v for k, v in export.items() if k != "family"}
    return {"families": families}



def default_state_path() -> Path:
    """``<user state dir>/dhtviewer/state.json`` (platformdirs: XDG on Linux, AppData on
    Windows, Library on macOS)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("dhtviewer", appauthor=False)) / STATE_FILE_NAME


def save_state(path: str | os.PathLike[str], state: Mapping[str, object]) -> None:
    """Atomically write ``state`` (``state_document(...)``: ``families`` -> per family
    ``node_id`` hex, ``external_ip``, ``nodes`` as ``[[id_hex, ip, port], ...]``; a single
    ``DhtNode.export_state()`` is accepted too). Creates the directory. Raises ``OSError`` if
    the file cannot be written; the previous file is then untouched."""
    target = Path(path)
    if target.exists() and not target.is_file():
        # /dev/null, a FIFO...: replacing it with our file would break it for everyone
        raise OSError(f"{target} is not a regular file; not replaced")
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": FORMAT_VERSION, "saved_at": time.time(), **state}
    data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
    replace_file(target, data)
    _fsync_dir(target.parent)
    _remove_stale_temps(target)


def replace_file(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it over ``target``:
    readers see the old file or the new one, never half of it. The temporary file is removed
    if anything fails."""
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
    """A ``SavedState`` from the file's JSON document (format 1 or 2), from
    ``state_document(...)`` or from one ``DhtNode.export_state()``. Raises ``ValueError``
    naming the first problem with its shape."""
    if not isinstance(doc, dict):
        raise ValueError("top level is not a JSON object")
    version = doc.get("version", FORMAT_VERSION)
    if version not in _READABLE_VERSIONS:
        raise ValueError(f"unsupported format version {version!r}")
    if "families" not in doc:
        fam = doc.get("family")
        if fam is not None:  # one node's export
            if fam not in FAMILIES:
                raise ValueError(f"family is not 4 or 6: {fam!r}")
            state, skipped = _family_state(doc, fam, "")
            return SavedState({fam: state}, skipped)
        return _mixed_state(doc)
    families = doc["families"]
    if not isinstance(families, dict):
        raise ValueError("families is not an object")
    out: dict[int, FamilyState] = {}
    skipped = 0
    for key, family_doc in families.items():
        fam = {"4": 4, "6": 6}.get(key)
        if fam is None:
            raise ValueError(f"unknown address family {key!r}")
        if not isinstance(family_doc, dict):
            raise ValueError(f"families[{key}] is not an object")
        out[fam], bad = _family_state(family_doc, fam, f"families[{key}].")
        skipped += bad
    return SavedState(out, skipped)


def _family_state(doc: dict[str, object], family: int, where: str) -> tuple[FamilyState, int]:
    """One family's state, and how many of its contacts were skipped."""
    node_id = _node_id(doc.get("node_id"), where)
    ext = _external_ip(doc.get("external_ip"), where)
    if ext is not None and ip_family(ext) != family:
        raise ValueError(f"{where}external_ip is not an IPv{family} address: {ext!r}")
    nodes, skipped = _nodes(doc.get("nodes", []), where)
    mine = [n for n in nodes if ip_family(n.addr[0]) == family]
    return FamilyState(node_id, ext, mine), skipped + len(nodes) - len(mine)


def _mixed_state(doc: dict[str, object]) -> SavedState:
    """Format 1: one id for every family, contacts of both mixed."""
    node_id = _node_id(doc.get("node_id"), "")
    ext = _external_ip(doc.get("external_ip"), "")
    nodes, skipped = _nodes(doc.get("nodes", []), "")
    families: dict[int, FamilyState] = {}
    for fam in FAMILIES:
        mine = [n for n in nodes if ip_family(n.addr[0]) == fam]
        fam_ext = ext if ext is not None and ip_family(ext) == fam else None
        if node_id is not None or mine or fam_ext is not None:
            families[fam] = FamilyState(node_id, fam_ext, mine)
    return SavedState(families, skipped)


def _external_ip(ext: object, where: str) -> str | None:
    if ext is not None and not (isinstance(ext, str) and _is_ip(ext)):
        raise ValueError(f"{where}external_ip is not an IP address: {ext!r}")
    return ext


def _nodes(nodes_doc: object, where: str) -> tuple[list[NodeInfo], int]:
    if not isinstance(nodes_doc, list):
        raise ValueError(f"{where}nodes is not a list")
    nodes: list[NodeInfo] = []
    skipped = 0
    for item in nodes_doc:
        # One odd contact is not worth discarding the rest: skip it and count it.
        info = _node_info(item)
        if info is None:
            skipped += 1
        else:
            nodes.append(info)
    return nodes, skipped


def _node_id(value: object, where: str = "") -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}node_id is not a string")
    try:
        node_id = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{where}node_id is not hex") from None
    if len(node_id) != ID_BYTES:
        raise ValueError(f"{where}node_id has {len(node_id)} bytes, expected {ID_BYTES}")
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
