"""ItemsPanel: store data in the DHT and read it back (BEP 44), and see what others stored on us.

Put: an immutable item (stored under the SHA-1 of its value) or a mutable one, signed with a
key from the key picker, with an optional salt and a ``seq`` (default: the newest found + 1).
The value is typed as text, hex or JSON (``item_format.parse_value``, as the command line's
``put --format``); the target it will be stored under is shown as it is typed. Get: a target
(40 hex digits) and, for a salted mutable item, its salt. Every input is checked as the button
is pressed, with the reason inline and nothing started.

Results: for a put, which nodes stored it and why the others did not; for a get, the value
(with its seq), who returned it and which copies were rejected and why. The target (and a
mutable item's public key) sit in copyable fields beside the result, not in its text: a label
of 40 or 64 hex digits would set the panel's minimum width past a 1024-pixel window. The
lookup behind it is drawn in a path graph as in the Lookup panel (and listed in that panel's
history). A second tab lists the items other nodes stored on this node.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dhtviewer.dht import events as ev
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.items import MAX_SALT_BYTES, MAX_SEQ, Item, encode_value, mutable_target
from dhtviewer.item_format import (
    TargetError,
    ValueFormat,
    ValueFormatError,
    parse_target,
    parse_value,
    value_json,
)
from dhtviewer.net.handles import ItemResult, LookupHandle, PutResult
from dhtviewer.net.keys import KeyFileError, default_key_dir
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.lookup_state import LookupTracker
from dhtviewer.ui.models.items import ItemNodesModel, StoredItemsModel
from dhtviewer.ui.models.nodes import monospace_font
from dhtviewer.ui.panels.common import (
    InlineMessage,
    ValueField,
    mark_invalid,
    muted_label,
    setup_table,
)
from dhtviewer.ui.panels.key_picker import KeyPicker
from dhtviewer.ui.panels.lookup import sorting_proxy
from dhtviewer.ui.views.lazy import LazyLookupGraph
from dhtviewer.ui.views.theme import current_theme

__all__ = ["ItemsPanel"]

NOT_RUNNING = "The node is not running: start it in the Network panel."
STORED_REFRESH = 5.0
"""Seconds between refreshes of the stored-items table (its ages), besides every new put."""
_ITEM_EVENTS = (ev.LookupStarted, ev.LookupQuerySent, ev.LookupResponse, ev.LookupQuerySlow,
                ev.LookupTimeout, ev.LookupQueryError, ev.LookupFinished, ev.ItemFound,
                ev.ItemRejected, ev.ItemGetFinished, ev.ItemPutFinished)
_FORMAT_TIPS = {
    ValueFormat.TEXT: "Stored as a string of the UTF-8 bytes typed (as the command line does)",
    ValueFormat.HEX: "Stored as a string of the bytes the hex digits spell",
    ValueFormat.JSON: "Integers, strings, lists and objects, stored as their bencoded form; "
                      '{"hex": "..."} is raw bytes',
}


class ItemsPanel(QWidget):
    def __init__(self, controller: Controller, key_dir: Path | None = None,
                 parent: QWidget | None = None) -> None:
        """``key_dir``: where keys are listed and created (default: the user state dir's)."""
        super().__init__(parent)
        self.controller = controller
        self.handle: LookupHandle | None = None
        """The get or put under way (or the last one)."""
        self.tracker = LookupTracker(capacity=20)
        self._mine: set[int] = set()
        self._last_stored_refresh = -1e9
        self._created_key = False
        mono = monospace_font()

        # --- put --------------------------------------------------------------------------------
        put_tab = QWidget(self)
        self.immutable = QRadioButton("Immutable", put_tab)
        self.immutable.setToolTip("Stored under the SHA-1 of its value; it can never change")
        self.mutable = QRadioButton("Mutable", put_tab)
        self.mutable.setToolTip("Signed with your key, stored under SHA-1(public key + salt); "
                                "a put with a higher seq replaces it")
        kinds = QButtonGroup(put_tab)
        kinds.addButton(self.immutable)
        kinds.addButton(self.mutable)
        self.immutable.setChecked(True)
        self.mutable.toggled.connect(self._kind_changed)
        self.key = KeyPicker(key_dir or default_key_dir(), put_tab)
        self.key.changed.connect(self._put_edited)
        self.salt = QLineEdit(put_tab)
        self.salt.setPlaceholderText(f"optional, up to {MAX_SALT_BYTES} bytes")
        self.salt.setToolTip("One key can publish several items, one per salt (taken as the "
                             "UTF-8 bytes typed)")
        self.salt.textEdited.connect(self._put_edited)
        self.seq = QLineEdit(put_tab)
        self.seq.setPlaceholderText("auto: the newest found + 1")
        self.seq.setToolTip("Sequence number; a node keeps the item with the highest")
        self.seq.textEdited.connect(self._put_edited)
        self.value_format = QComboBox(put_tab)
        for fmt in ValueFormat:
            self.value_format.addItem(fmt.name.capitalize() if fmt != ValueFormat.JSON
                                      else "JSON", str(fmt))
            self.value_format.setItemData(self.value_format.count() - 1, _FORMAT_TIPS[fmt],
                                          Qt.ItemDataRole.ToolTipRole)
        self.value_format.setToolTip("How the value below is read")
        self.value_format.currentIndexChanged.connect(self._put_edited)
        self.value_size = muted_label("", put_tab)
        self.value = QPlainTextEdit(put_tab)
        self.value.setPlaceholderText("the value (at most 1000 bytes once bencoded)")
        self.value.setTabChangesFocus(True)
        self.value.textChanged.connect(self._put_edited)
        self.value.setMinimumHeight(self.fontMetrics().height() * 3)
        # fields, not labels: 40 or 64 hex digits in a label set the panel's minimum width
        self.put_target = ValueField(put_tab)
        self.put_target.setText("—")
        self.put_target.setToolTip("Where the item will be stored")
        self.put_button = QPushButton("Put", put_tab)
        self.put_button.setToolTip("Find the closest nodes and store the item on them")
        self.put_button.clicked.connect(self.start_put)
        self.get_this = QPushButton("Get it", put_tab)
        self.get_this.setToolTip("Look this target up (with its salt) in the Get tab")
        self.get_this.clicked.connect(self._get_put_target)
        self.put_message = InlineMessage(put_tab)

        kind_row = QHBoxLayout()
        kind_row.addWidget(self.immutable)
        kind_row.addWidget(self.mutable)
        kind_row.addStretch(1)
        format_row = QHBoxLayout()
        format_row.addWidget(self.value_format)
        format_row.addWidget(self.value_size, 1)
        form = QFormLayout()
        form.addRow("Kind", kind_row)
        form.addRow("Key", self.key)
        form.addRow("Salt", self.salt)
        form.addRow("Seq", self.seq)
        form.addRow("Value", format_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.get_this)
        buttons.addStretch(1)
        buttons.addWidget(self.put_button)
        vbox = QVBoxLayout(put_tab)
        vbox.addLayout(form)
        vbox.addWidget(self.value, 1)
        target_row = QHBoxLayout()
        target_row.addWidget(QLabel("Target", put_tab))
        target_row.addWidget(self.put_target, 1)
        vbox.addLayout(target_row)
        vbox.addWidget(self.put_message)
        vbox.addLayout(buttons)

        # --- get --------------------------------------------------------------------------------
        get_tab = QWidget(self)
        self.target = QLineEdit(get_tab)
        self.target.setPlaceholderText("40 hex digits")
        self.target.setFont(mono)
        self.target.setToolTip("SHA-1 of an immutable value, or of a public key and salt")
        self.target.returnPressed.connect(self.start_get)
        self.target.textEdited.connect(self._get_edited)
        self.get_salt = QLineEdit(get_tab)
        self.get_salt.setPlaceholderText("the salt of a salted mutable item")
        self.get_salt.setToolTip("Not sent: each copy found is checked against the target "
                                 "with it")
        self.get_salt.returnPressed.connect(self.start_get)
        self.get_salt.textEdited.connect(self._get_edited)
        self.get_button = QPushButton("Get", get_tab)
        self.get_button.setToolTip("Look up the newest valid item under the target")
        self.get_button.clicked.connect(self.start_get)
        self.get_message = InlineMessage(get_tab)
        form = QFormLayout()
        form.addRow("Target", self.target)
        form.addRow("Salt", self.get_salt)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.get_button)
        vbox = QVBoxLayout(get_tab)
        vbox.addLayout(form)
        vbox.addWidget(self.get_message)
        vbox.addLayout(buttons)
        vbox.addWidget(muted_label(
            "Every copy a node returns is checked before it counts: an immutable item against "
            "the SHA-1 of its value, a mutable one against its signature and SHA-1(public key "
            "+ salt). Of valid mutable copies the highest seq wins; the others are listed with "
            "why they were rejected.", get_tab))
        vbox.addStretch(1)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(put_tab, "Put")
        self.tabs.addTab(get_tab, "Get")
        self.tabs.setDocumentMode(True)
        self.tabs.setUsesScrollButtons(False)

        # --- result -----------------------------------------------------------------------------
        self.status = QLabel("Nothing put or got yet.", self)
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the get or put under way")
        self.cancel_button.clicked.connect(self.cancel)
        self.result_target = ValueField(self)
        self.result_target.setToolTip("The target of the get or put shown")
        self.result_key = ValueField(self)
        self.result_key.setToolTip("The public key that signed the mutable item found")
        self.found_value = QPlainTextEdit(self)
        self.found_value.setReadOnly(True)
        self.found_value.setPlaceholderText("the value a get finds")
        self.found_value.setToolTip("The value found: text, hex (not UTF-8) or JSON (other "
                                    "bencoded types)")
        # it scrolls: the path graph below keeps its room in a short window
        self.found_value.setMaximumHeight(self.fontMetrics().height() * 5)
        self.found_value.hide()  # shown when a get found something

        self.graph = LazyLookupGraph(self)
        self.graph.setToolTip("")
        self.nodes = ItemNodesModel(self)
        self.nodes_proxy = sorting_proxy(self)
        self.nodes_proxy.setSourceModel(self.nodes)
        self.nodes_table = QTableView(self)
        self.nodes_table.setModel(self.nodes_proxy)
        setup_table(self.nodes_table)
        unit = self.fontMetrics().horizontalAdvance("0")
        self.nodes_table.setColumnWidth(0, unit * 22)
        self.nodes_table.setToolTip("What each node did with the put, or returned to the get")
        self.stored = StoredItemsModel(self)
        self.stored_proxy = sorting_proxy(self)
        self.stored_proxy.setSourceModel(self.stored)
        self.stored_table = QTableView(self)
        self.stored_table.setModel(self.stored_proxy)
        setup_table(self.stored_table)
        for col, chars in enumerate((42, 10, 6, 8, 8, 10)):
            self.stored_table.setColumnWidth(col, unit * chars)
        self.stored_table.setToolTip("Items other nodes put on this node (kept 2 h after "
                                     "their last put)")
        self.result_tabs = QTabWidget(self)
        self.result_tabs.setDocumentMode(True)
        self.result_tabs.setUsesScrollButtons(False)
        self.result_tabs.addTab(self.nodes_table, "Nodes")
        self.result_tabs.addTab(self.stored_table, "Stored on this node")

        # the form on the left; the outcome on the right: status, value, path graph, nodes
        outcome = QWidget(self)
        vbox = QVBoxLayout(outcome)
        vbox.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        vbox.addLayout(row)
        self.result_ids = QFormLayout()
        self.result_ids.setContentsMargins(0, 0, 0, 0)
        self.result_ids.addRow("Target", self.result_target)
        self.result_ids.addRow("Public key", self.result_key)
        vbox.addLayout(self.result_ids)
        self.result_ids.setRowVisible(self.result_target, False)  # until a get or put starts
        self.result_ids.setRowVisible(self.result_key, False)
        vbox.addWidget(self.found_value)
        # the get or put lookup (its axes say what x and y are; its points, their outcome)
        vbox.addWidget(self.graph, 1)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(outcome)
        right.addWidget(self.result_tabs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        controller.events.connect(self.add_events)
        controller.item_finished.connect(self._finished)
        # bound methods, not lambdas: Qt drops them with the panel (the controller outlives it)
        controller.state_changed.connect(self._state_changed)
        controller.stats_changed.connect(self._stats_changed)
        self._kind_changed()
        self._update_buttons()

    # --- put ------------------------------------------------------------------------------------
    def _kind_changed(self) -> None:
        mutable = self.mutable.isChecked()
        for w in (self.key, self.salt, self.seq):
            w.setEnabled(mutable)
        self._put_edited()

    def _put_edited(self, *_: object) -> None:
        """Live feedback: the value's size and the target, or what is wrong (no red frame
        while typing; that waits for Put)."""
        self.put_message.clear_message()
        mark_invalid(self.value, False)
        try:
            raw = encode_value(self._value())
        except ValueFormatError as err:
            self.value_size.setText(f"✗ {err}")
            self.put_target.setText("—")
            return
        self.value_size.setText(f"{len(raw)} of 1000 bytes bencoded")
        if not self.mutable.isChecked():
            self.put_target.setText(Item(raw).target.hex())
            return
        try:
            pk = self.key.public_key()
        except (KeyFileError, OSError):
            pk = None
        salt = self.salt.text().encode("utf-8", "surrogateescape")
        self.put_target.setText(mutable_target(pk, salt).hex() if pk is not None
                                else "— (known once the new key is made)")

    def _value(self) -> object:
        return parse_value(self.value.toPlainText(), str(self.value_format.currentData()))

    def put_request(self) -> PutRequest | None:
        """The put the form describes, or None with the reason inline (and the field framed)."""
        msg = self.put_message
        try:
            value = self._value()
        except ValueFormatError as err:
            msg.show_error(f"Value ({self.value_format.currentText()}): {err}")
            mark_invalid(self.value, True)
            return None
        if not self.mutable.isChecked():
            return PutRequest(value)
        salt = self.salt.text().encode("utf-8", "surrogateescape")
        if len(salt) > MAX_SALT_BYTES:
            msg.show_error(f"The salt is {len(salt)} bytes; at most {MAX_SALT_BYTES}.")
            mark_invalid(self.salt, True)
            return None
        seq: int | None = None
        text = self.seq.text().strip()
        if text:
            if not text.isdigit() or int(text) > MAX_SEQ:
                msg.show_error(f"Seq is a whole number from 0 to 2^63-1, or empty for the "
                               f"newest found + 1 (got {text!r}).")
                mark_invalid(self.seq, True)
                return None
            seq = int(text)
        try:
            seed, created = self.key.seed()
        except (KeyFileError, OSError) as err:
            msg.show_error(f"Key: {err}")
            return None
        self._created_key = created
        return PutRequest(value, seed=seed, salt=salt, seq=seq)

    def start_put(self) -> bool:
        for w in (self.value, self.salt, self.seq):
            mark_invalid(w, False)
        self.put_message.clear_message()
        if not self.controller.running:
            self.put_message.show_error(NOT_RUNNING)
            return False
        self._created_key = False
        request = self.put_request()
        if request is None:
            return False
        self._put_edited()  # the target of a key made just now
        if self._created_key:
            self.put_message.show_info(f"Created key {self.key.path()} (readable by you only).")
        handle = self.controller.put_item(request)
        if handle is None:
            return False
        self._started(handle, "Putting: looking up the closest nodes for their tokens…")
        return True

    def _get_put_target(self) -> None:
        target = self.put_target.text()
        if len(target) != 40:
            self.put_message.show_error("No target yet: type a value (and choose a key).")
            return
        self.target.setText(target)
        self.get_salt.setText(self.salt.text() if self.mutable.isChecked() else "")
        self.tabs.setCurrentIndex(1)
        self._get_edited()

    # --- get ------------------------------------------------------------------------------------
    def _get_edited(self) -> None:
        self.get_message.clear_message()
        mark_invalid(self.target, False)
        mark_invalid(self.get_salt, False)

    def start_get(self) -> bool:
        self._get_edited()
        try:
            target = parse_target(self.target.text())
        except TargetError as err:
            self.get_message.show_error(str(err))
            mark_invalid(self.target, True)
            return False
        salt = self.get_salt.text().encode("utf-8", "surrogateescape")
        if len(salt) > MAX_SALT_BYTES:
            self.get_message.show_error(f"The salt is {len(salt)} bytes; at most "
                                        f"{MAX_SALT_BYTES}.")
            mark_invalid(self.get_salt, True)
            return False
        if not self.controller.running:
            self.get_message.show_error(NOT_RUNNING)
            return False
        handle = self.controller.get_item(target, salt)
        if handle is None:
            return False
        self._started(handle, "Getting…")
        return True

    # --- following ------------------------------------------------------------------------------
    def _started(self, handle: LookupHandle, text: str) -> None:
        self.handle = handle
        # one record for the lookups of every address family (BEP 32)
        self.tracker.group(handle.lookup_ids)
        self._mine = {lid for st in self.tracker.lookups.values() for lid in st.parts}
        self._mine.update(handle.lookup_ids)
        self.status.setText(text)
        self.result_target.setText(handle.target.hex())
        self.result_ids.setRowVisible(self.result_target, True)
        self._show_key(None)
        self.found_value.clear()
        self.found_value.hide()
        self.nodes.clear()
        self.result_tabs.setTabText(0, "Nodes")
        self.graph.set_lookup(None)
        self._update_buttons()

    def cancel(self) -> None:
        if self.handle is not None and not self.handle.done():
            self.handle.cancel()
        self._update_buttons()

    def add_events(self, batch: list[ev.Event]) -> None:
        mine = self._mine
        changed = False
        stored = False
        for e in batch:
            if isinstance(e, ev.ItemStored):
                stored = True
            elif isinstance(e, _ITEM_EVENTS) and getattr(e, "lookup_id", None) in mine:
                changed = self.tracker.apply(e) is not None or changed
        self.tracker.take_evicted()  # _started() forgets the parts of evicted records
        if changed and self.handle is not None:
            state = self.tracker.get(self.handle.lookup_id)
            self.graph.set_lookup(state)
            if state is not None and not state.finished:
                s = state.summary(self.controller.now())
                what = "Putting" if state.kind == "put" else "Getting"
                self.status.setText(f"{what}: queried {s.queried}, answered {s.answered}, "
                                    f"{s.elapsed:.2f} s…")
            elif state is not None and state.kind == "put" and state.put is None:
                self.status.setText(f"Putting to the {len(state.closest)} closest nodes…")
        if stored:
            self.refresh_stored()

    def _finished(self, result: ItemResult | PutResult) -> None:
        handle = self.handle
        if handle is None or result.lookup.lookup_id != handle.lookup_id:
            return
        t = current_theme()
        state = self.tracker.get(handle.lookup_id)
        if state is not None:
            self.graph.set_lookup(state)
        took = f"{result.lookup.elapsed:.2f} s"
        if isinstance(result, PutResult):
            self.nodes.set_put(result)
            n, m = len(result.stored_at), len(result.failed)
            color = t.good if n else t.bad
            seq = f" · seq {result.seq}" if result.seq is not None else ""
            head = (f"✓ Stored at {n} node{'s' if n != 1 else ''}" if n
                    else "✗ No node stored it")
            self.status.setText(
                f"<span style='color:{color}'><b>{head}</b></span>"
                f"{', ' + str(m) + ' did not' if m else ''}{seq} · {took}")
            self._show_key(result.public_key)
        else:
            rejections = state.rejections if state is not None else {}
            self.nodes.set_get(result, rejections)
            if result.value is not None:
                self.found_value.setPlainText(_value_for_display(result.value))
                self.found_value.show()
                seq = f" · seq {result.seq}" if result.seq is not None else ""
                self.status.setText(
                    f"<span style='color:{t.good}'><b>✓ Found</b></span>{seq} · "
                    f"{len(result.holders)} node{'s' if len(result.holders) != 1 else ''} "
                    f"returned it{_rejected(result)} · {took}")
                self._show_key(result.public_key)
            else:
                self.found_value.clear()
                self.found_value.hide()
                why = "cancelled" if result.lookup.cancelled else "nothing found"
                self.status.setText(
                    f"<span style='color:{t.bad}'><b>✗ {why.capitalize()}</b></span>"
                    f"{_rejected(result)} · {took}")
        self.result_tabs.setTabText(0, f"Nodes ({self.nodes.rowCount()})")
        self.result_tabs.setCurrentIndex(0)
        self._update_buttons()

    def _show_key(self, public_key: bytes | None) -> None:
        """The public key of a mutable item's result beside its target (an immutable one has
        none: the row goes)."""
        self.result_key.setText(public_key.hex() if public_key is not None else "")
        self.result_ids.setRowVisible(self.result_key, public_key is not None)

    # --- stored on this node --------------------------------------------------------------------
    def refresh_stored(self) -> None:
        items = self.controller.stored_items()
        self.stored.set_items(items, self.controller.now() if self.controller.running else 0.0)
        self.result_tabs.setTabText(1, f"Stored on this node ({len(items)})")
        self._last_stored_refresh = self.controller.now() if self.controller.running else -1e9

    def _stats_changed(self, stats: dict[str, float]) -> None:
        now = stats.get("now", 0.0)
        if self.isVisible() and now - self._last_stored_refresh >= STORED_REFRESH:
            self.refresh_stored()

    def _state_changed(self, *_: object) -> None:
        self._update_buttons()
        if not self.controller.running:
            self.stored.set_items([], 0.0)
            self.result_tabs.setTabText(1, "Stored on this node")

    def _update_buttons(self) -> None:
        running = self.controller.running
        busy = self.handle is not None and not self.handle.done()
        self.put_button.setEnabled(running and not busy)
        self.get_button.setEnabled(running and not busy)
        self.cancel_button.setEnabled(busy)


def _rejected(result: ItemResult) -> str:
    if not result.rejected:
        return ""
    return f" · {result.rejected} cop{'ies' if result.rejected != 1 else 'y'} rejected: " \
           + "; ".join(result.reasons)


def _value_for_display(raw: bytes) -> str:
    value, encoding = value_json(raw)
    if encoding == "utf-8":
        return str(value)
    if encoding == "hex":
        return f"(not UTF-8: hex) {value}"
    return json.dumps(value, ensure_ascii=False, indent=1)
