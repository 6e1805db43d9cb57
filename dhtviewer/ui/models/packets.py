"""PacketsModel: the packet log's table, a lazy view of a ``PacketCapture``.

The model holds no rows, only which capture numbers (seqs) it shows: a range of them without a
filter, a sorted array of the matching ones with a filter. A cell asks the capture for its row
when the view paints it (the newest rows are in memory, older ones are read back from the file a
page at a time), so a million-row capture costs the view nothing more than the rows on screen.

Paused, the view stops taking new rows (the capture goes on, and the rows come in on resume);
evicted rows leave the top of the view either way. A filter is run by SQLite on the capture's
writer thread (``start_filter``): over the history (its chunks arrive newest first through
``poll``) and over each batch as it is written (those matches are appended), so filtering costs
the GUI thread nothing per packet.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QObject, Qt, QTimer
from PySide6.QtGui import QColor

from dhtviewer.ui.capture import dissect
from dhtviewer.ui.capture.filter import Filter
from dhtviewer.ui.capture.records import Direction, Kind, Packet, format_ms
from dhtviewer.ui.capture.store import PacketCapture
from dhtviewer.ui.capture.writer import AddressesResult, LiveChunk, ScanChunk
from dhtviewer.ui.models.base import RIGHT_ALIGNED, ROOT, Index
from dhtviewer.ui.models.nodes import format_addr, monospace_font
from dhtviewer.ui.views.theme import current_theme

(COL_NO, COL_TIME, COL_DIR, COL_ADDR, COL_TYPE, COL_METHOD, COL_TID, COL_RTT, COL_SIZE,
 COL_SUMMARY) = range(10)
HEADERS = ("No.", "Time (s)", "Dir", "Address", "Type", "Method", "TID", "RTT (ms)", "Size",
           "Summary")
HEADER_TIPS = (
    "Capture number: packets are numbered as they are captured",
    "Seconds since the first packet of the capture",
    "in: received; out: sent",
    "The remote address",
    "query, response, error, malformed (did not decode) or unsolicited (a reply to nothing "
    "we asked)",
    "The KRPC method (of the query a reply answers)",
    "Transaction id, hexadecimal: a reply carries its query's",
    "Milliseconds from our query to the remote's reply, on both rows of the pair (Ctrl+. "
    "jumps between a query and its reply)",
    "Bytes of the datagram",
    "What the message says",
)
_RIGHT = {COL_NO, COL_TIME, COL_RTT, COL_SIZE}
_DISPLAY = Qt.ItemDataRole.DisplayRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_FONT = Qt.ItemDataRole.FontRole
_COLOR = Qt.ItemDataRole.ForegroundRole
_TIP = Qt.ItemDataRole.ToolTipRole
_ROLES = frozenset((_DISPLAY, _ALIGN, _FONT, _COLOR, _TIP))
_BAD = (Kind.MALFORMED, Kind.ERROR, Kind.UNSOLICITED)
POLL_MS = 100
"""While a filter is on, how often its results are taken."""


class PacketsModel(QAbstractTableModel):
    """See the module docstring."""

    def __init__(self, capture: PacketCapture, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.capture = capture
        self.paused = False
        self._filter: Filter | None = None
        self._first = self._end = capture.first_seq  # without a filter: seqs [first, end)
        self._matches: array[int] = array("q")  # with a filter: the seqs shown, ascending
        self._frontier = capture.next_seq
        """The view takes the rows below this (it stops moving while paused)."""
        self._job: int | None = None  # the capture's filter job
        self._scanning = False
        self._held: list[array[int]] = []  # matches that came while paused
        self._scan_range = (0, 0)
        self._scan_left = 0  # the scan has yet to cover [lo, left)
        self.listeners: list[Callable[[list[AddressesResult]], None]] = []
        """Called by ``poll`` with the per-address results (the addresses view)."""
        self._waiting = False
        self._mono = monospace_font()
        self._bad = QColor(current_theme().bad)
        self._memo: tuple[int, Packet] | None = None  # the row painted last: its ten cells
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    # --- what is shown -------------------------------------------------------------------------
    @property
    def filter(self) -> Filter | None:
        return self._filter

    @property
    def filtering(self) -> bool:
        """A scan of the history is under way."""
        return self._scanning

    def scan_progress(self) -> float:
        lo, hi = self._scan_range
        return 1.0 if hi <= lo else (hi - self._scan_left) / (hi - lo)

    @property
    def frontier(self) -> int:
        """The view shows no row from this seq on (the capture's next one, unless paused)."""
        return self._frontier

    def new_while_paused(self) -> int:
        return self.capture.next_seq - self._frontier if self.paused else 0

    def seq_at(self, row: int) -> int:
        return self._matches[row] if self._filter is not None else self._first + row

    def row_of(self, seq: int) -> int | None:
        """The row showing ``seq``, None if it is not shown."""
        if self._filter is None:
            return seq - self._first if self._first <= seq < self._end else None
        i = bisect_left(self._matches, seq)
        return i if i < len(self._matches) and self._matches[i] == seq else None

    def packet(self, row: int) -> Packet | None:
        return self.capture.packet(self.seq_at(row))

    def detail(self, row: int) -> str:
        p = self.packet(row)
        if p is None:
            return "(this packet left the capture: the ring keeps the newest ones)"
        return dissect.detail(p, self.capture.time_origin or 0.0)

    # --- feeding -------------------------------------------------------------------------------
    def set_filter(self, where: Filter | None) -> None:
        """Show the rows matching ``where`` (all for None): the capture's writer scans the
        history in the background, newest first, and matches each batch written from now on."""
        cap = self.capture
        self.beginResetModel()
        self._filter = where
        self._matches = array("q")
        self._held = []
        self._first = cap.first_seq
        self._end = max(self._first, self._frontier)
        self.endResetModel()
        self._scanning = where is not None
        self._scan_range = (self._first, self._end)
        self._scan_left = self._end
        if where is not None or self._job is not None:
            # one job: the writer keeps a single filter, a new one replaces it (None stops it)
            job = cap.start_filter(where, self._first, self._end)
            self._job = job if where is not None else None
        self._update_timer()
        self.sync()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            self._frontier = self.capture.next_seq
            return
        held, self._held = self._held, []
        for seqs in held:
            self._append(seqs)
        self.sync()

    def clear(self) -> None:
        """Empty the capture and the view."""
        self.beginResetModel()
        self.capture.clear()
        self._first = self._end = self._frontier = self.capture.next_seq
        self._matches = array("q")
        self._held = []
        self._scanning = False
        self.endResetModel()

    def sync(self) -> None:
        """Follow the capture: evicted rows leave the top; new ones come in unless paused
        (with a filter, they come as the writer matches them: ``poll``)."""
        cap = self.capture
        first = cap.first_seq
        if self._filter is not None:
            k = bisect_left(self._matches, first)
            if k:
                self.beginRemoveRows(ROOT, 0, k - 1)
                del self._matches[:k]
                self.endRemoveRows()
        elif self._first < first:
            gone = min(first, self._end) - self._first
            if gone > 0:
                self.beginRemoveRows(ROOT, 0, gone - 1)
                self._first += gone
                self.endRemoveRows()
            self._first = first
            self._end = max(self._end, first)
        if not self.paused:
            self._frontier = cap.next_seq
        if self._filter is None and self._frontier > self._end:
            self.beginInsertRows(ROOT, self._end - self._first, self._frontier - 1 - self._first)
            self._end = self._frontier
            self.endInsertRows()

    def poll(self) -> None:
        """Take the capture's finished work (filter results, per-address counts), then sync."""
        results = self.capture.poll()
        addresses: list[AddressesResult] = []
        for r in results:
            if isinstance(r, ScanChunk):
                self._take_chunk(r)
            elif isinstance(r, LiveChunk):
                if r.job != self._job:
                    continue
                if self.paused:
                    self._hold(r.seqs)
                else:
                    self._append(r.seqs)
            else:
                addresses.append(r)
        if addresses:
            for listener in self.listeners:
                listener(addresses)
        self.sync()
        self._update_timer()

    def expect_results(self, waiting: bool) -> None:
        """Keep polling while a per-address job runs (``waiting``), or not."""
        self._waiting = waiting
        self._update_timer()

    def _update_timer(self) -> None:
        # with a filter, the writer's matches of new rows come in all the time
        if self._filter is not None or self._waiting:
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()

    def _hold(self, seqs: array[int]) -> None:
        """Matches that came while paused (shown on resume); those evicted meanwhile go."""
        held, first = self._held, self.capture.first_seq
        held.append(seqs)
        while held and held[0][-1] < first:
            held.pop(0)

    def _append(self, seqs: array[int]) -> None:
        low = max(self.capture.first_seq, self._matches[-1] + 1 if self._matches else 0)
        if seqs and seqs[0] < low:
            seqs = seqs[bisect_left(seqs, low):]
        if not seqs:
            return
        n = len(self._matches)
        self.beginInsertRows(ROOT, n, n + len(seqs) - 1)
        self._matches.extend(seqs)
        self.endInsertRows()

    def _take_chunk(self, chunk: ScanChunk) -> None:
        if chunk.job != self._job or not self._scanning:
            return  # a filter that was replaced
        self._scan_left = chunk.lo
        if chunk.done:
            self._scanning = False
        first = self.capture.first_seq
        seqs = chunk.seqs
        if seqs and seqs[0] < first:
            seqs = seqs[bisect_left(seqs, first):]
        if not seqs:
            return
        self.beginInsertRows(ROOT, 0, len(seqs) - 1)
        self._matches[0:0] = seqs
        self.endInsertRows()

    # --- Qt model interface --------------------------------------------------------------------
    def rowCount(self, parent: Index = ROOT) -> int:
        if parent.isValid():
            return 0
        return len(self._matches) if self._filter is not None else self._end - self._first

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called for every role of every visible cell at each repaint: cheap checks first.
        if role not in _ROLES or not index.isValid():
            return None
        col = index.column()
        if role == _ALIGN:
            return RIGHT_ALIGNED if col in _RIGHT else None
        if role == _FONT:
            return self._mono if col == COL_TID else None
        if role == _TIP and col != COL_SUMMARY:
            return None
        row = index.row()
        count = len(self._matches) if self._filter is not None else self._end - self._first
        if not 0 <= row < count:
            return None
        seq = self.seq_at(row)
        memo = self._memo
        p: Packet | None
        if memo is not None and memo[0] == seq:
            p = memo[1]
        else:
            p = self.capture.packet(seq)
            self._memo = (seq, p) if p is not None else None
        if role == _DISPLAY:
            if p is None:
                return str(seq) if col == COL_NO else ""
            return self._display(p, col)
        if p is None:
            return None
        if role == _COLOR:
            return self._bad if p.kind in _BAD else None
        return dissect.summary(p)  # the Summary's tooltip: the whole line

    def _display(self, p: Packet, col: int) -> str:
        if col == COL_NO:
            return str(p.seq)
        if col == COL_TIME:
            return f"{p.at - (self.capture.time_origin or 0.0):.3f}"
        if col == COL_DIR:
            return p.direction.value
        if col == COL_ADDR:
            return format_addr(p.addr)
        if col == COL_TYPE:
            return p.kind.value
        if col == COL_METHOD:
            return p.method
        if col == COL_TID:
            return p.tid.hex()
        if col == COL_RTT:
            return format_ms(p.rtt)
        if col == COL_SIZE:
            return str(p.size)
        return dissect.summary(p)


def direction_filter(direction: Direction | None) -> Filter | None:
    """The Dir selector as a filter term."""
    return None if direction is None else Filter("dir = ?", (direction.value,))


def method_filter(method: str | None) -> Filter | None:
    return None if not method else Filter("method = ?", (method,))
