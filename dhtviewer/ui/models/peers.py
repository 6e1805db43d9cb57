"""PeersModel: the peers a lookup found, with how many nodes returned each and when.

Fed either from a ``LookupState`` (``set_lookup``: the selected lookup; called again with the same
lookup it only appends the new peers and updates counts) or straight from ``PeersFound`` events
(``add_events``). ``to_csv``/``to_json`` export what the table shows; given an ``ExportContext``
they also say which lookup found the peers: the info-hash, when (UTC), with which parameters,
so a file read weeks later still makes sense on its own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from PySide6.QtCore import QObject, Qt

from dhtviewer.dht import events as ev
from dhtviewer.dht.messages import Addr
from dhtviewer.ui.lookup_state import LookupState, PeerRecord
from dhtviewer.ui.models.base import RIGHT_ALIGNED, RowTableModel
from dhtviewer.ui.models.nodes import SORT_ROLE, addr_sort_key

COL_IP, COL_PORT, COL_COUNT, COL_FIRST_SEEN = range(4)
HEADERS = ("Address", "Port", "Nodes", "First seen (s)")


@dataclass(frozen=True, slots=True)
class ExportContext:
    """The lookup behind an export. ``started``: when it started (UTC); ``params``: the lookup
    parameters in force (``k``, ``alpha``, ...); ``generator``: the program and version."""

    info_hash: bytes
    kind: str
    started: datetime
    elapsed: float
    state: str
    queried: int
    answered: int
    params: dict[str, int | float] = field(default_factory=dict)
    generator: str = ""


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


PeerRow = PeerRecord
"""A row: the lookup state's own peer record type (each row is a copy, so the table changes only
through ``PeersModel``)."""


class PeersModel(RowTableModel[PeerRow]):
    """Rows in the order peers were found. "First seen" is in seconds since ``time_origin``
    (the lookup's start when fed by ``set_lookup``, else the first event's time)."""

    HEADERS = HEADERS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._index: dict[Addr, int] = {}
        self.lookup_id: int | None = None
        """Only PeersFound events of this lookup (and of the other families' lookups grouped
        with it) are taken (any lookup when None)."""
        self._parts: frozenset[int] = frozenset()
        self.time_origin: float | None = None

    # --- feeding -------------------------------------------------------------------------------
    def set_lookup(self, state: LookupState | None) -> None:
        """Show the peers of ``state`` (empty for None)."""
        if state is None or state.lookup_id != self.lookup_id:
            self.beginResetModel()
            self._rows.clear()
            self._index.clear()
            self.lookup_id = None if state is None else state.lookup_id
            self._parts = frozenset() if state is None else frozenset(state.parts)
            self.time_origin = None if state is None else state.started_at
            self.endResetModel()
        if state is not None:
            self._merge((r.addr, r.first_seen, r.sources) for r in state.peers.values())

    def add_events(self, events: Iterable[ev.Event]) -> None:
        """Take the peers of PeersFound events (of ``lookup_id`` when set)."""
        found: list[tuple[Addr, float, set[bytes]]] = []
        for event in events:
            if not isinstance(event, ev.PeersFound):
                continue
            if self.lookup_id is not None and event.lookup_id not in self._parts:
                continue
            if self.time_origin is None:
                self.time_origin = event.at
            returned = event.returned or event.peers
            found.extend((addr, event.at, {event.node_id}) for addr in returned)
        self._merge(found)

    def _merge(self, peers: Iterable[tuple[Addr, float, set[bytes]]]) -> None:
        new: list[PeerRow] = []
        changed: list[int] = []
        for addr, first_seen, sources in peers:
            row = self._index.get(addr)
            if row is None:
                self._index[addr] = len(self._rows) + len(new)
                new.append(PeerRow(addr, first_seen, set(sources)))
            elif row >= len(self._rows):  # seen twice in this batch
                new[row - len(self._rows)].sources.update(sources)
            elif not sources <= self._rows[row].sources:
                self._rows[row].sources.update(sources)
                changed.append(row)
        self._emit_rows_changed(changed, COL_COUNT, COL_COUNT)
        self._append_rows(new)

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._index.clear()
        self.time_origin = None
        self.endResetModel()

    def peer(self, row: int) -> PeerRow:
        return self._rows[row]

    def _since_origin(self, row: PeerRow) -> float:
        return row.first_seen - (self.time_origin if self.time_origin is not None else 0.0)

    # --- export --------------------------------------------------------------------------------
    def records(self, context: ExportContext | None = None) -> list[dict[str, Any]]:
        """One dict per peer: ``first_seen`` in seconds after the lookup's start; with a
        ``context``, ``first_seen_utc`` too."""
        out = []
        for r in self._rows:
            since = self._since_origin(r)
            record: dict[str, Any] = {
                "ip": r.addr[0],
                "port": r.addr[1],
                "nodes": r.count,
                "first_seen": round(since, 3),
            }
            if context is not None:
                record["first_seen_utc"] = _utc(context.started + timedelta(seconds=since))
            out.append(record)
        return out

    def to_csv(self, context: ExportContext | None = None) -> str:
        """A row per peer; with a ``context`` every row also names the lookup (info-hash, kind,
        start time) and its parameters, so rows stay meaningful when files are merged."""
        records = self.records(context)
        columns = ["ip", "port", "nodes", "first_seen"]
        if context is not None:
            lookup = {"info_hash": context.info_hash.hex(), "kind": context.kind,
                      "lookup_started_utc": _utc(context.started), **context.params}
            columns = ["info_hash", *columns, "first_seen_utc", "kind", "lookup_started_utc",
                       *context.params]
            records = [{**lookup, **r} for r in records]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()

    def to_json(self, context: ExportContext | None = None) -> str:
        """A list of peers; with a ``context``, an object describing the lookup whose
        ``peers`` are that list."""
        records = self.records(context)
        if context is None:
            return json.dumps(records, indent=2)
        doc = {
            "info_hash": context.info_hash.hex(),
            "kind": context.kind,
            "started_utc": _utc(context.started),
            "elapsed_s": round(context.elapsed, 3),
            "state": context.state,
            "queried": context.queried,
            "answered": context.answered,
            "parameters": context.params,
            "generator": context.generator,
            "peers": records,
        }
        return json.dumps(doc, indent=2)

    # --- Qt model interface --------------------------------------------------------------------
    def _cell(self, peer: PeerRow, row: int, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_IP:
                return peer.addr[0]
            if col == COL_PORT:
                return str(peer.addr[1])
            if col == COL_COUNT:
                return str(peer.count)
            return f"{self._since_origin(peer):.2f}"
        if role == SORT_ROLE:
            if col == COL_IP:
                return addr_sort_key(peer.addr)
            if col == COL_PORT:
                return peer.addr[1]
            if col == COL_COUNT:
                return peer.count
            return self._since_origin(peer)
        if role == Qt.ItemDataRole.TextAlignmentRole and col != COL_IP:
            return RIGHT_ALIGNED
        return None
