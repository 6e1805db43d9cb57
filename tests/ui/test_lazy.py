"""LazyView: the plots are placeholders until built; what was set on them before is what they
draw once built, anything only the real view has builds it, and a painted placeholder builds
itself. The main window paints its first frame before pyqtgraph or numpy is imported."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtWidgets import QApplication, QLabel, QSplitter, QTableView, QWidget
from pytestqt.qtbot import QtBot

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import random_id, random_id_with_prefix
from dhtviewer.dht.routing_table import BucketSnapshot, NodeSnapshot, RoutingSnapshot
from dhtviewer.sim import SimNetwork
from dhtviewer.ui.lookup_state import LookupState
from dhtviewer.ui.traffic_stats import TrafficStats
from dhtviewer.ui.views.lazy import LazyBucketChart, LazyLookupGraph, LazyTrafficPlot, LazyView

pytestmark = pytest.mark.qt
ROOT = Path(__file__).resolve().parents[2]
PEER = ("1.2.3.4", 6881)


def make_snapshot(seed: int, depth: int = 6) -> RoutingSnapshot:
    rng = random.Random(seed)
    own = random_id(rng)
    buckets = []
    for index in range(depth):
        nodes = tuple(
            NodeSnapshot(id=random_id_with_prefix(rng, own, index), addr=(f"20.0.{index}.{n}", 1),
                         state="good", rtt=0.1, last_seen=1.0, version=None, bep42_ok=True,
                         failures=0, bucket=index)
            for n in range(rng.randint(1, 8))
        )
        buckets.append(BucketSnapshot(index, nodes, 0, 1.0))
    return RoutingSnapshot(own, 4, 8, tuple(buckets), 1.0)


@pytest.fixture(scope="module")
def sim_lookup() -> LookupState:
    net = SimNetwork(11)
    net.add_nodes(60)
    net.bootstrap_all()
    live = net.live_nodes()
    return LookupState.from_events(net.lookup(live[1], random_id(random.Random(2))).events)


class Recorder(QLabel):
    """A stand-in view that notes every call made on it."""

    def __init__(self) -> None:
        super().__init__("real view")
        self.calls: list[tuple[str, object]] = []

    def set_a(self, value: object) -> None:
        self.calls.append(("a", value))

    def set_b(self, value: object) -> None:
        self.calls.append(("b", value))

    def answer(self) -> int:
        return 42


def lazy_recorder(qtbot: QtBot) -> tuple[LazyView[Recorder], list[Recorder]]:
    built: list[Recorder] = []

    def factory() -> Recorder:
        built.append(Recorder())
        return built[-1]

    lazy: LazyView[Recorder] = LazyView(factory)
    qtbot.addWidget(lazy)
    return lazy, built


# --- LazyView ----------------------------------------------------------------------------------
def test_the_last_call_of_each_kind_is_replayed_in_call_order(qtbot: QtBot) -> None:
    lazy, built = lazy_recorder(qtbot)
    lazy.defer("a", lambda v: v.set_a(1))
    lazy.defer("b", lambda v: v.set_b(2))
    lazy.defer("a", lambda v: v.set_a(3))  # replaces the first, and now comes after "b"
    assert not built and not lazy.is_realized
    assert lazy.pending_calls() == ["b", "a"]
    view = lazy.realize()
    assert built == [view] and lazy.is_realized
    assert view.calls == [("b", 2), ("a", 3)]
    assert lazy.pending_calls() == []
    assert lazy.realize() is view and lazy.view is view and len(built) == 1


def test_after_realization_calls_go_straight_through(qtbot: QtBot) -> None:
    lazy, _built = lazy_recorder(qtbot)
    view = lazy.realize()
    lazy.defer("a", lambda v: v.set_a(1))
    lazy.defer("a", lambda v: v.set_a(2))
    assert view.calls == [("a", 1), ("a", 2)] and lazy.pending_calls() == []


def test_anything_only_the_view_has_builds_it(qtbot: QtBot) -> None:
    lazy, built = lazy_recorder(qtbot)
    lazy.defer("b", lambda v: v.set_b("x"))
    with pytest.raises(AttributeError):
        lazy._no_such_thing  # noqa: B018  private names never build the view
    assert not built
    assert lazy.answer() == 42  # forwarded at run time
    assert len(built) == 1 and built[0].calls == [("b", "x")]
    with pytest.raises(AttributeError):
        lazy.no_such_method  # noqa: B018


def test_a_painted_placeholder_builds_its_view_right_after(qtbot: QtBot) -> None:
    lazy, built = lazy_recorder(qtbot)
    lazy.resize(300, 200)
    lazy.show()
    qtbot.waitExposed(lazy)
    qtbot.waitUntil(lambda: lazy.is_realized, timeout=3000)
    view = built[0]
    QApplication.processEvents()
    # the view fills the placeholder: no margins, visible
    assert view.isVisible() and view.geometry() == lazy.rect()


def test_placeholders_are_laid_out_as_the_plots_they_stand_for(qtbot: QtBot) -> None:
    from dhtviewer.ui.views.bucket_chart import BucketChart

    def splitter_with(widget: QWidget) -> QSplitter:
        splitter = QSplitter()
        qtbot.addWidget(splitter)
        splitter.addWidget(widget)
        splitter.addWidget(QTableView())
        splitter.resize(900, 400)
        splitter.show()
        qtbot.waitExposed(splitter)
        return splitter

    real = splitter_with(BucketChart())
    chart = LazyBucketChart()
    lazy = splitter_with(chart)
    before = lazy.sizes()
    qtbot.waitUntil(lambda: chart.is_realized, timeout=3000)
    QApplication.processEvents()
    assert before == lazy.sizes() == real.sizes()


# --- the three plots -------------------------------------------------------------------------
def test_lazy_bucket_chart_draws_what_it_was_given_and_relays_clicks(qtbot: QtBot) -> None:
    chart = LazyBucketChart()
    qtbot.addWidget(chart)
    snap = make_snapshot(seed=3)
    chart.set_snapshot(make_snapshot(seed=5))
    chart.set_snapshot(snap)
    assert not chart.is_realized
    heights = chart.view.stack_heights()
    assert heights.tolist() == [len(b.nodes) for b in snap.buckets]
    clicked: list[int] = []
    chart.bucket_clicked.connect(clicked.append)
    chart.view.bucket_clicked.emit(4)
    assert clicked == [4]


def test_lazy_lookup_graph_draws_the_last_lookup_set(
    qtbot: QtBot, sim_lookup: LookupState
) -> None:
    graph = LazyLookupGraph()
    qtbot.addWidget(graph)
    graph.set_lookup(sim_lookup)
    assert graph.point_count() == sim_lookup.queried > 0  # forwarded
    graph.set_lookup(None)  # built now: straight through
    assert graph.view.point_count() == 0


def test_lazy_traffic_plot_draws_the_stats_as_they_are_when_built(qtbot: QtBot) -> None:
    plot = LazyTrafficPlot()
    qtbot.addWidget(plot)
    stats = TrafficStats(window=60)
    plot.set_stats(stats)
    stats.add_events([
        ev.MessageSent(PEER, "q", b"get_peers", b"t1", 100, b"", 10.2),
        ev.MessageReceived(PEER, "r", b"ping", b"t2", 300, None, b"", 10.4),
        ev.MessageSent(PEER, "q", b"ping", b"t3", 100, b"", 11.1),
    ])
    stats.advance(12.0)
    assert plot.view.rate_curve_count() == 3
    assert "in 1 messages" in plot.view.summary.text()


# --- the window --------------------------------------------------------------------------------
_FIRST_FRAME = """
import json, sys, tempfile, time
from pathlib import Path
import dhtviewer.ui.views.lazy, dhtviewer.ui.views.theme
light = not {"pyqtgraph", "numpy"} & set(sys.modules)
import dhtviewer.ui.main_window as mw
imported = sorted({"pyqtgraph", "numpy"} & set(sys.modules))
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from dhtviewer.ui.controller import Controller
from dhtviewer.ui.settings_store import SettingsStore
app = QApplication([])
at_paint = []
paint = mw.MainWindow.paintEvent
def noting_paint(self, event):
    if not at_paint:
        at_paint.append(sorted({"pyqtgraph", "numpy"} & set(sys.modules)))
    paint(self, event)
mw.MainWindow.paintEvent = noting_paint
ini = Path(tempfile.mkdtemp()) / "settings.ini"
window = mw.MainWindow(Controller(), SettingsStore(QSettings(str(ini), QSettings.Format.IniFormat)))
window.resize(1200, 800)
window.show()
deadline = time.monotonic() + 20
while (not at_paint or window.pending_views()) and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.005)
print(json.dumps({"light": light, "imported": imported, "at_paint": at_paint,
                  "pending": len(window.pending_views()),
                  "after": sorted({"pyqtgraph", "numpy"} & set(sys.modules)),
                  "drawn": window.routing.chart.view.isVisibleTo(window.routing.chart)}))
window.hide()
"""


def test_the_window_paints_before_pyqtgraph_and_numpy_are_imported_then_builds_the_plots(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _FIRST_FRAME], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["light"] is True  # theme and the placeholders do not pull them in
    assert result["imported"] == []  # nor does the window's module
    assert result["at_paint"] == [[]]  # nor building and showing the window
    assert result["pending"] == 0  # then every plot was built, without being asked
    assert result["after"] == ["numpy", "pyqtgraph"] and result["drawn"] is True
