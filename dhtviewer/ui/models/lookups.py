"""LookupsModel: the lookup history, one row per lookup, backed by a ``LookupTracker``.

Selecting a row gives the ``LookupState`` the lookup graph and the peers table show. Rows are in
start order; the tracker bounds the history and the model removes the rows it evicts. Lookups
of an earlier run (restored from the saved history) come first. "Started" is the wall-clock
time (the events' clock is monotonic: ``wall_offset`` converts it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt

from dhtviewer.dht import events as ev
from dhtviewer.ui.lookup_state import LookupState, LookupTracker
from dhtviewer.ui.models.base import RIGHT_ALIGNED, RowTableModel
from dhtviewer.ui.models.nodes import SORT_ROLE, monospace_font

COL_TARGET, COL_KIND, COL_STARTED, COL_STATE, COL_PEERS, COL_QUERIED, COL_ELAPSED = range(7)
HEADERS = ("Target", "Kind", "Started", "State", "Peers", "Queried", "Elapsed (s)")
_NUMERIC = (COL_STARTED, COL_PEERS, COL_QUERIED, COL_ELAPSED)


class LookupsModel(RowTableModel[LookupState]):
    """See the module docstring."""

    HEADERS = HEADERS

    def __init__(self, capacity: int = 200, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tracker = LookupTracker(capacity)
        # the rows (``_rows``) hold their states: an evicted state must stay readable until its
        # row is gone
        self._now: float | None = None
        self.wall_offset = time.time() - time.monotonic()
        """Wall-clock time minus the events' clock (``set_now`` keeps it exact)."""
        self._mono = monospace_font()

    # --- feeding -------------------------------------------------------------------------------
    def add_events(self, events: Iterable[ev.Event]) -> None:
        started: list[LookupState] = []
        touched: set[int] = set()
        for event in events:
            state = self.tracker.apply(event)
            if state is None:
                continue
            if isinstance(event, ev.LookupStarted) and state.lookup_id == event.lookup_id:
                started.append(state)
            else:
                touched.add(state.lookup_id)
        # by identity, not id: a replaced record and its successor share the id
        evicted = {id(lk) for lk in self.tracker.take_evicted()}
        if evicted:
            gone = [row for row, lk in enumerate(self._rows) if id(lk) in evicted]
            for row in reversed(gone):  # few rows per batch: one signal pair each is fine
                self._remove_rows(row, row)
        self._emit_rows_changed(
            row for row, lk in enumerate(self._rows)
            if lk.lookup_id in touched and id(lk) not in evicted
        )
        self._append_rows([lk for lk in started if id(lk) not in evicted])

    def add_restored(self, states: Iterable[LookupState]) -> None:
        """Put finished lookups of an earlier run (oldest first) before the rows there are."""
        restored = [s for s in states if s.lookup_id not in self.tracker.lookups]
        if not restored:
            return
        self.beginInsertRows(QModelIndex(), 0, len(restored) - 1)
        self._rows[:0] = restored
        self.endInsertRows()
        self.tracker.add_oldest(restored)
        evicted = {id(lk) for lk in self.tracker.take_evicted()}
        gone = [row for row, lk in enumerate(self._rows) if id(lk) in evicted]
        for row in reversed(gone):
            self._remove_rows(row, row)

    def states(self) -> list[LookupState]:
        """Every lookup listed, oldest first."""
        return list(self._rows)

    def set_now(self, now: float) -> None:
        """Let running lookups show their elapsed time up to ``now`` (core clock)."""
        self._now = now
        self.wall_offset = time.time() - now
        self._emit_rows_changed(
            (row for row, lk in enumerate(self._rows) if not lk.finished), COL_ELAPSED, COL_ELAPSED
        )

    def clear(self) -> None:
        self.beginResetModel()
        self.tracker = LookupTracker(self.tracker.capacity)
        self._rows.clear()
        self.endResetModel()

    def state(self, row: int) -> LookupState:
        return self._rows[row]

    def row_of(self, lookup_id: int) -> int | None:
        return next((r for r, lk in enumerate(self._rows) if lookup_id in lk.parts), None)

    def group(self, lookup_ids: tuple[int, ...]) -> None:
        """One row for these lookups (a user's lookup in each family); see
        ``LookupTracker.group``."""
        self.tracker.group(lookup_ids)

    # --- Qt model interface --------------------------------------------------------------------
    def _cell(self, lk: LookupState, row: int, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_KIND:  # one lookup per address family (BEP 32): say which
                return f"{lk.kind} · {lk.families_text}"
            value = self._value(lk, col)
            if col == COL_STARTED:
                return _clock(float(value))
            if isinstance(value, float):
                return f"{value:.2f}"
            return str(value)
        if role == SORT_ROLE:
            return self._value(lk, col)
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_TARGET:
            return lk.target.hex()
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_STARTED:
            when = datetime.fromtimestamp(float(self._value(lk, col)))
            earlier = " (an earlier run)" if lk.lookup_id < 0 else ""
            return when.strftime("%Y-%m-%d %H:%M:%S") + earlier
        if role == Qt.ItemDataRole.FontRole and col == COL_TARGET:
            return self._mono
        if role == Qt.ItemDataRole.TextAlignmentRole and col in _NUMERIC:
            return RIGHT_ALIGNED
        return None

    def _value(self, lk: LookupState, col: int) -> str | int | float:
        if col == COL_TARGET:
            return lk.target.hex()
        if col == COL_KIND:
            return lk.kind
        if col == COL_STARTED:
            return lk.started_at + self.wall_offset
        if col == COL_STATE:
            return lk.state
        if col == COL_PEERS:
            return len(lk.peers)
        if col == COL_QUERIED:
            return lk.queried
        return lk.elapsed(None if lk.finished else self._now)


def _clock(wall: float) -> str:
    """Local time of day, with the date when it is not today."""
    when = datetime.fromtimestamp(wall)
    if when.date() == datetime.now().date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")
