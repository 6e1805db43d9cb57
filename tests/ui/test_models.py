"""The Qt item models: Qt's model tester on realistic data, diff updates, filters, exports."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import random
from datetime import datetime, timezone

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, Qt
from pytestqt.modeltest import ModelTester

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import random_id, random_id_with_prefix
from dhtviewer.dht.routing_table import BucketSnapshot, NodeSnapshot, RoutingSnapshot
from dhtviewer.ui.lookup_state import LookupState
from dhtviewer.ui.models import (
    SORT_ROLE,
    LookupsModel,
    NodesModel,
    NodesProxy,
    PeersModel,
)
from dhtviewer.ui.models import nodes as nodes_mod
from dhtviewer.ui.models.nodes import format_version
from dhtviewer.ui.models.peers import ExportContext

pytestmark = pytest.mark.qt
DISPLAY = Qt.ItemDataRole.DisplayRole
VERSIONS = (b"LT\x02\x01", b"UT\x03\x05", None, b"DV\x00\x01")
STATES = ("good", "good", "good", "questionable", "bad")


def make_snapshot(seed: int = 1, depth: int = 6, taken_at: float = 1000.0) -> RoutingSnapshot:
    rng = random.Random(seed)
    own = random_id(rng)
    buckets = []
    for index in range(depth):
        nodes = tuple(
            NodeSnapshot(
                id=random_id_with_prefix(rng, own, index),
                addr=(f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.0.{n + 1}", 6881 + n),
                state=rng.choice(STATES),
                rtt=rng.choice((None, rng.uniform(0.02, 0.9))),
                last_seen=taken_at - rng.uniform(0, 900),
                version=rng.choice(VERSIONS),
                bep42_ok=rng.random() < 0.7,
                failures=rng.randint(0, 2),
                bucket=index,
            )
            for n in range(rng.randint(2, 8))
        )
        buckets.append(BucketSnapshot(index, nodes, rng.randint(0, 8), taken_at - 10))
    return RoutingSnapshot(own, 4, 8, tuple(buckets), taken_at)


def replace_nodes(
    snap: RoutingSnapshot, bucket: int, nodes: tuple[NodeSnapshot, ...]
) -> RoutingSnapshot:
    buckets = list(snap.buckets)
    old = buckets[bucket]
    buckets[bucket] = BucketSnapshot(old.index, nodes, old.replacements, old.last_changed)
    return RoutingSnapshot(snap.own_id, snap.family, snap.k, tuple(buckets), snap.taken_at)


class SignalLog(QObject):
    """Records the structural signals a model emits."""

    def __init__(self, model: NodesModel | PeersModel | LookupsModel) -> None:
        super().__init__()
        self.log: list[str] = []
        model.rowsInserted.connect(lambda *_: self.log.append("insert"))
        model.rowsRemoved.connect(lambda *_: self.log.append("remove"))
        model.dataChanged.connect(lambda *_: self.log.append("changed"))
        model.modelReset.connect(lambda *_: self.log.append("reset"))


def check_model(tester: ModelTester, model: QAbstractItemModel) -> None:
    """Attach Qt's model tester; it keeps checking every later change of the model."""
    tester.check(model)  # type: ignore[no-untyped-call]  # pytest-qt leaves check() unannotated


def cell(model: NodesModel | PeersModel | LookupsModel, row: int, col: int) -> str:
    return str(model.data(model.index(row, col), DISPLAY))


# --- nodes -------------------------------------------------------------------------------------
def test_format_version_letters_then_the_clients_version() -> None:
    assert format_version(b"LT\x02\x01") == "LT 2.1"
    # uTorrent's two bytes are one 16-bit build number (seen as "UT 180.69" before).
    assert format_version(b"UT\xb4\x45") == "UT 46149"
    assert format_version(b"TR\x00\x05") == "TR 5"
    assert format_version(b"XX\x01\x02\x03") == "XX 1.2.3"
    assert format_version(None) == "—"
    assert format_version(b"L") == "—"
    assert format_version(b"\x00\x01\x02\x03") == "0001 515"


def test_nodes_model_passes_model_tester_with_readable_cells(qtmodeltester: ModelTester) -> None:
    model = NodesModel()
    check_model(qtmodeltester, model)
    snap = make_snapshot()
    model.apply_snapshot(snap)
    assert model.rowCount() == snap.size
    node = model.node(0)
    assert cell(model, 0, nodes_mod.COL_ID) == node.id.hex()
    assert cell(model, 0, nodes_mod.COL_VERSION) == format_version(node.version)
    assert cell(model, 0, nodes_mod.COL_BEP42) in ("✓", "✗")
    assert cell(model, 0, nodes_mod.COL_SEEN) == f"{snap.taken_at - node.last_seen:.0f}"
    expected_rtt = "—" if node.rtt is None else f"{node.rtt * 1000:.0f}"
    assert cell(model, 0, nodes_mod.COL_RTT) == expected_rtt
    font = model.data(model.index(0, nodes_mod.COL_ID), Qt.ItemDataRole.FontRole)
    assert font.fixedPitch()
    # later snapshots keep passing the tester (it stays attached to the model)
    model.apply_snapshot(make_snapshot(seed=2))
    model.apply_snapshot(make_snapshot(seed=2, taken_at=1010.0))
    model.clear()


def test_nodes_model_updates_by_diff_not_reset() -> None:
    model = NodesModel()
    snap = make_snapshot()
    model.apply_snapshot(snap)
    spy = SignalLog(model)
    bucket = snap.buckets[2]
    kept = bucket.nodes[1:]
    changed = dataclasses.replace(kept[0], state="bad")
    newcomer = dataclasses.replace(kept[0], id=b"\x11" * 20)
    model.apply_snapshot(replace_nodes(snap, 2, (changed, *kept[1:], newcomer)))
    assert spy.log == ["remove", "changed", "insert"]
    assert model.rowCount() == snap.size
    ids = {model.node(r).id for r in range(model.rowCount())}
    assert bucket.nodes[0].id not in ids and newcomer.id in ids
    row = next(r for r in range(model.rowCount()) if model.node(r).id == changed.id)
    assert cell(model, row, nodes_mod.COL_STATE) == "bad"
    spy.log.clear()
    model.apply_snapshot(replace_nodes(snap, 2, (changed, *kept[1:], newcomer)))
    assert spy.log == []  # nothing changed, nothing emitted


def test_nodes_proxy_filters_bucket_and_sorts_numerically(qtmodeltester: ModelTester) -> None:
    model = NodesModel()
    proxy = NodesProxy()
    proxy.setSourceModel(model)
    check_model(qtmodeltester, proxy)
    snap = make_snapshot()
    model.apply_snapshot(snap)
    proxy.set_bucket(3)
    assert proxy.rowCount() == len(snap.buckets[3].nodes)
    assert {proxy.index(r, nodes_mod.COL_BUCKET).data() for r in range(proxy.rowCount())} == {"3"}
    proxy.set_bucket(None)
    assert proxy.rowCount() == snap.size
    proxy.sort(nodes_mod.COL_RTT, Qt.SortOrder.AscendingOrder)
    rtts = [proxy.index(r, nodes_mod.COL_RTT).data(SORT_ROLE) for r in range(proxy.rowCount())]
    assert rtts == sorted(rtts)  # numbers, not strings ("90" would sort after "100")
    assert rtts[-1] == float("inf")  # unknown RTTs last


# --- peers -------------------------------------------------------------------------------------
TARGET = bytes(range(20))
N1, N2 = b"\x01" * 20, b"\x02" * 20
P1, P2, P3 = ("5.0.0.1", 1000), ("2001:db8::1", 2000), ("5.0.0.3", 3000)


def lookup_events() -> list[ev.Event]:
    return [
        ev.LookupStarted(3, TARGET, "get_peers", 50.0),
        ev.LookupQuerySent(3, N1, ("1.1.1.1", 1), None, 0, 50.0),
        ev.LookupQuerySent(3, N2, ("1.1.1.2", 1), None, 0, 50.0),
        ev.LookupResponse(3, N1, ("1.1.1.1", 1), 0.1, 0, 2, 50.1),
        ev.PeersFound(3, N1, (P1, P2), 50.1),
        ev.LookupResponse(3, N2, ("1.1.1.2", 1), 0.4, 0, 2, 50.4),
        ev.PeersFound(3, N2, (P3, P1), 50.4),
    ]


def test_peers_model_from_lookup_state_with_counts_and_exports(qtmodeltester: ModelTester) -> None:
    model = PeersModel()
    check_model(qtmodeltester, model)
    events = lookup_events()
    state = LookupState.from_events(events[:5])
    model.set_lookup(state)
    assert model.rowCount() == 2
    spy = SignalLog(model)
    for event in events[5:]:
        state.apply(event)
    model.set_lookup(state)  # same lookup: incremental
    assert spy.log == ["changed", "insert"]
    assert [cell(model, r, 0) for r in range(3)] == ["5.0.0.1", "2001:db8::1", "5.0.0.3"]
    assert cell(model, 0, 2) == "2" and cell(model, 2, 3) == "0.40"
    records = json.loads(model.to_json())
    assert records[0] == {"ip": "5.0.0.1", "port": 1000, "nodes": 2, "first_seen": 0.1}
    lines = model.to_csv().splitlines()
    assert lines[0] == "ip,port,nodes,first_seen" and lines[2] == "2001:db8::1,2000,1,0.1"
    model.set_lookup(None)
    assert model.rowCount() == 0


def test_peers_exports_name_the_lookup_its_time_and_parameters() -> None:
    model = PeersModel()
    model.set_lookup(LookupState.from_events(lookup_events()))
    started = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    context = ExportContext(TARGET, "get_peers", started, 0.5, "done", 2, 2,
                            {"k": 8, "alpha": 4}, "dhtviewer test")
    doc = json.loads(model.to_json(context))
    assert doc["info_hash"] == TARGET.hex() and doc["started_utc"] == "2024-05-06T07:08:09.000Z"
    assert doc["parameters"] == {"k": 8, "alpha": 4} and doc["generator"] == "dhtviewer test"
    assert doc["peers"][0] == {"ip": "5.0.0.1", "port": 1000, "nodes": 2, "first_seen": 0.1,
                               "first_seen_utc": "2024-05-06T07:08:09.100Z"}
    rows = list(csv.DictReader(io.StringIO(model.to_csv(context))))
    assert len(rows) == 3
    assert rows[2] == {"info_hash": TARGET.hex(), "ip": "5.0.0.3", "port": "3000", "nodes": "1",
                       "first_seen": "0.4", "first_seen_utc": "2024-05-06T07:08:09.400Z",
                       "kind": "get_peers", "lookup_started_utc": "2024-05-06T07:08:09.000Z",
                       "k": "8", "alpha": "4"}


def test_peers_model_from_events_of_one_lookup() -> None:
    model = PeersModel()
    model.set_lookup(LookupState(3, TARGET, "get_peers", 50.0))
    model.add_events([*lookup_events(), ev.PeersFound(4, N1, (("9.9.9.9", 9),), 51.0)])
    assert model.rowCount() == 3
    assert model.peer(0).count == 2


# --- lookups -----------------------------------------------------------------------------------
def test_lookups_model_history_rows(qtmodeltester: ModelTester) -> None:
    model = LookupsModel(capacity=3)
    check_model(qtmodeltester, model)
    noon = datetime.now().replace(hour=12, minute=0, second=0, microsecond=0).timestamp()
    model.wall_offset = noon - 50.0  # the lookup started at 50.0 on the events' clock
    model.add_events(lookup_events())
    assert model.rowCount() == 1
    assert cell(model, 0, 0) == TARGET.hex()
    assert [cell(model, 0, c) for c in range(1, 7)] == [
        "get_peers · IPv4", "12:00:00", "running", "3", "2", "0.40"
    ]
    model.wall_offset -= 3 * 86400  # a lookup of another day shows its date
    assert cell(model, 0, 2).endswith(" 12:00") and len(cell(model, 0, 2)) == 16
    model.set_now(52.0)
    assert cell(model, 0, 6) == "2.00"
    spy = SignalLog(model)
    model.add_events([
        ev.LookupFinished(3, TARGET, "get_peers", (P1, P2, P3), (), 2, 2, 0.5, False, 50.5)
    ])
    assert spy.log == ["changed"] and cell(model, 0, 3) == "done" and cell(model, 0, 6) == "0.50"
    for lid in range(10, 14):
        model.add_events([ev.LookupStarted(lid, TARGET, "find_node", 60.0 + lid)])
    assert model.rowCount() == 3
    assert [model.state(r).lookup_id for r in range(3)] == [11, 12, 13]
    assert model.row_of(12) == 1 and model.row_of(3) is None
    assert model.index(0, 0).parent() == QModelIndex()


def test_lookups_model_keeps_one_row_per_lookup_id() -> None:
    # a record replaced by a later lookup of the same id leaves; evicting it takes no other row
    model = LookupsModel(capacity=2)
    model.add_events(lookup_events())
    model.add_events([ev.LookupStarted(4, TARGET, "find_node", 51.0),
                      ev.LookupStarted(3, N1, "get_peers", 52.0)])
    assert [(model.state(r).lookup_id, model.state(r).target) for r in range(2)] == [
        (4, TARGET), (3, N1)]
    assert model.row_of(3) == 1 and not model.state(1).peers


def test_a_lookup_in_both_families_is_one_row(qtmodeltester: ModelTester) -> None:
    model = LookupsModel()
    check_model(qtmodeltester, model)
    model.group((20, 21))  # the IPv4 and the IPv6 lookup of one user lookup
    model.add_events([
        ev.LookupStarted(20, TARGET, "get_peers", 1.0, 4),
        ev.LookupStarted(21, TARGET, "get_peers", 1.0, 6),
        ev.PeersFound(21, b"\x01" * 20, (("::1", 7),), 1.1),
        ev.LookupFinished(20, TARGET, "get_peers", (P1,), (), 2, 2, 0.3, False, 1.3, 4),
    ])
    assert model.rowCount() == 1 and model.row_of(21) == 0
    assert cell(model, 0, 1) == "get_peers · IPv4+IPv6"
    assert cell(model, 0, 3) == "running"  # the IPv6 lookup has not finished
    model.add_events([
        ev.LookupFinished(21, TARGET, "get_peers", (("::1", 7),), (), 3, 3, 0.6, False, 1.6, 6)
    ])
    state = model.state(0)
    assert cell(model, 0, 3) == "done" and cell(model, 0, 4) == "2" and cell(model, 0, 6) == "0.60"
    assert set(state.peers) == {P1, ("::1", 7)} and state.families == (4, 6)
