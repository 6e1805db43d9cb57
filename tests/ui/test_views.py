"""The views draw exactly the data handed to them: bar heights, graph points and edges, curves,
dots; and they pick their colours from the palette."""

from __future__ import annotations

import math
import os
import random

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QHelpEvent, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip, QWidget
from pytestqt.qtbot import QtBot

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import random_id, random_id_with_prefix
from dhtviewer.dht.routing_table import BucketSnapshot, NodeSnapshot, RoutingSnapshot
from dhtviewer.sim import SimNetwork
from dhtviewer.ui.lookup_state import ANSWERED, ERROR, OUTCOMES, SLOW, LookupState
from dhtviewer.ui.traffic_stats import TrafficStats
from dhtviewer.ui.views import BucketChart, IdSpaceRing, LookupGraph, TrafficPlot
from dhtviewer.ui.views.id_space_ring import bucket_start_angle
from dhtviewer.ui.views.lookup_graph import SHORT_Y_LABEL, Y_LABEL
from dhtviewer.ui.views.theme import DARK, LIGHT, current_theme

pytestmark = pytest.mark.qt


def make_snapshot(seed: int = 3, depth: int = 12) -> RoutingSnapshot:
    rng = random.Random(seed)
    own = random_id(rng)
    buckets = []
    for index in range(depth):
        count = 8 if index < depth - 3 else rng.randint(1, 8)
        nodes = tuple(
            NodeSnapshot(
                id=random_id_with_prefix(rng, own, index),
                addr=(f"20.0.{index}.{n + 1}", 6881),
                state=rng.choice(("good", "good", "questionable", "bad")),
                rtt=rng.uniform(0.02, 0.5),
                last_seen=100.0,
                version=None,
                bep42_ok=True,
                failures=0,
                bucket=index,
            )
            for n in range(count)
        )
        buckets.append(BucketSnapshot(index, nodes, rng.randint(0, 8), 90.0))
    return RoutingSnapshot(own, 4, 8, tuple(buckets), 100.0)


@pytest.fixture(scope="module")
def sim_lookup() -> LookupState:
    """A real get_peers lookup (events from the core) on a simulated network with dead nodes."""
    net = SimNetwork(17, loss=0.05)
    net.add_nodes(200)
    net.bootstrap_all()
    net.kill_random(0.2)
    live = net.live_nodes()
    info_hash = random_id(random.Random(9))
    net.announce(live[0], info_hash, 6881)
    return LookupState.from_events(net.lookup(live[1], info_hash).events)


# --- BucketChart -------------------------------------------------------------------------------
def test_bucket_chart_bars_match_snapshot(qtbot: QtBot) -> None:
    chart = BucketChart()
    qtbot.addWidget(chart)
    snap = make_snapshot()
    chart.set_snapshot(snap)
    heights = chart.stack_heights()
    assert heights.sum() == snap.size
    assert heights.tolist() == [len(b.nodes) for b in snap.buckets]
    assert chart.replacement_heights().tolist() == [b.replacements for b in snap.buckets]
    b = snap.buckets[4]
    assert chart.tooltip_for(4) == (
        f"bucket 4\n{b.good} good, {b.questionable} questionable, {b.bad} bad\n"
        f"{b.replacements} in the replacement cache"
    )
    assert chart.bucket_at(4.3) == 4 and chart.bucket_at(40.0) is None
    chart.set_snapshot(None)
    assert chart.stack_heights().size == 0


def test_bucket_chart_axes_count_whole_buckets_and_nodes_without_a_scale_factor(
    qtbot: QtBot,
) -> None:
    # pyqtgraph's SI prefixes made an empty chart's bucket axis read "(x0.001)"
    chart = BucketChart()
    qtbot.addWidget(chart)
    chart.resize(600, 300)
    chart.show()
    qtbot.waitExposed(chart)
    one = make_snapshot(depth=1)
    for snap in (None, one, make_snapshot(), None):
        chart.set_snapshot(snap)
        QApplication.processEvents()
        for side in ("left", "bottom"):
            axis = chart.getPlotItem().getAxis(side)
            assert axis.autoSIPrefixScale == 1.0 and "(x" not in axis.labelString(), side


def test_bucket_chart_click_emits_bucket(qtbot: QtBot) -> None:
    chart = BucketChart()
    qtbot.addWidget(chart)
    chart.resize(600, 300)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_snapshot(make_snapshot())
    QApplication.processEvents()
    vb = chart.getPlotItem().getViewBox()
    pos = chart.mapFromScene(vb.mapViewToScene(QPointF(5.0, 3.0)))
    with qtbot.waitSignal(chart.bucket_clicked, timeout=2000) as blocker:
        QTest.mouseClick(chart.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [5]


# --- LookupGraph -------------------------------------------------------------------------------
def test_lookup_graph_one_point_per_query_one_edge_per_referral(
    qtbot: QtBot, sim_lookup: LookupState
) -> None:
    graph = LookupGraph()
    qtbot.addWidget(graph)
    graph.set_lookup(sim_lookup)
    assert graph.point_count() == sim_lookup.queried > 0
    referred = [n for n in sim_lookup.nodes.values() if n.referrer is not None]
    assert graph.edge_count() == len(referred) > 0
    assert graph.closest_count() == len(sim_lookup.closest)
    # y fitted to the data, not 0..160
    bits = [n.prefix_bits or 0 for n in sim_lookup.nodes.values()]
    low, high = graph.getPlotItem().getViewBox().viewRange()[1]
    assert low <= min(bits) and max(bits) <= high < 100
    graph.set_lookup(None)
    assert graph.point_count() == 0 and graph.edge_count() == 0


def test_lookup_graph_hover_finds_the_node(qtbot: QtBot, sim_lookup: LookupState) -> None:
    graph = LookupGraph()
    qtbot.addWidget(graph)
    graph.resize(700, 400)
    graph.show()
    qtbot.waitExposed(graph)
    graph.set_lookup(sim_lookup)
    QApplication.processEvents()
    node = next(n for n in sim_lookup.nodes.values() if n.closest_rank == 0)
    text = LookupGraph.tooltip_for(node)
    assert node.node_id is not None and node.node_id.hex() in text and "#1 closest" in text
    where = graph.position_of(node)
    assert graph.node_near(where) is node
    assert graph.node_near(where + QPointF(1000.0, 0.0)) is None


def path_lookup(target: bytes, bits: list[int]) -> LookupState:
    """A finished find_node lookup of ``target`` whose i-th node shares ``bits[i]`` bits with it
    (160: the target itself), each referred by the previous one."""
    rng = random.Random(8)
    events: list[ev.Event] = [ev.LookupStarted(1, target, "find_node", 0.0)]
    previous = None
    for i, b in enumerate(bits):
        node_id = target if b == 160 else random_id_with_prefix(rng, target, b)
        addr = (f"30.1.0.{i + 1}", 6881)
        events.append(ev.LookupQuerySent(1, node_id, addr, previous, i // 3, i * 0.01))
        events.append(ev.LookupResponse(1, node_id, addr, 0.05, 8, 0, i * 0.01 + 0.05))
        previous = node_id
    return LookupState.from_events(events)


def shown_graph(qtbot: QtBot, width: int = 700, height: int = 400) -> LookupGraph:
    graph = LookupGraph()
    qtbot.addWidget(graph)
    graph.resize(width, height)
    graph.show()
    qtbot.waitExposed(graph)
    return graph


def test_lookup_graph_of_a_known_node_stays_within_160_bits_and_keeps_the_path_readable(
    qtbot: QtBot,
) -> None:
    # find_node of a node in our table: the last hop is the target itself, 160 bits shared
    graph = shown_graph(qtbot)
    target = random_id(random.Random(5))
    state = path_lookup(target, [2, 3, 3, 5, 6, 8, 9, 11, 160])
    graph.set_lookup(state)
    QApplication.processEvents()
    low, high = graph.getPlotItem().getViewBox().viewRange()[1]
    assert high <= 160
    # the other hops spread over most of the height instead of a line at the bottom
    assert (11 - 2) / (high - low) > 0.5
    exact = state.node_by_id(target)
    assert exact is not None
    y = graph.position_of(exact).y()
    others = [graph.position_of(n).y() for n in state.nodes.values() if n is not exact]
    assert max(others) < y <= high
    # ... at a tick that tells the truth
    ticks = graph.getPlotItem().getAxis("left")._tickLevels
    assert ticks is not None and (y, "160") in ticks[0]
    assert "160 bits shared" in LookupGraph.tooltip_for(exact)
    # without an exact match: plain whole-bit ticks again
    graph.set_lookup(path_lookup(target, [2, 3, 150, 160]))
    assert graph.getPlotItem().getAxis("left")._tickLevels is None


def test_lookup_graph_tick_labels_never_overlap_even_when_empty(qtbot: QtBot) -> None:
    graph = shown_graph(qtbot, 500, 230)
    target = random_id(random.Random(6))
    for state in (path_lookup(target, [2, 4, 6]), None, path_lookup(target, range(0, 60, 3))):
        graph.set_lookup(state)  # type: ignore[arg-type]
        QApplication.processEvents()
        axis = graph.getPlotItem().getAxis("left")
        low, high = graph.getPlotItem().getViewBox().viewRange()[1]
        pixels = graph.getPlotItem().getViewBox().height()
        levels = axis.tickValues(low, high, pixels)
        spacing = min(level[0] for level in levels if len(level[1]) > 1)
        assert spacing * pixels / (high - low) >= graph.fontMetrics().height() * 1.2


def test_lookup_graph_legend_sits_outside_the_points(qtbot: QtBot, sim_lookup: LookupState) -> None:
    for width in (360, 520, 700, 940, 1400):
        graph = shown_graph(qtbot, width, 400)
        graph.set_lookup(sim_lookup)
        QApplication.processEvents()
        legend = graph._legend.sceneBoundingRect()
        plot_area = graph.getPlotItem().getViewBox().sceneBoundingRect()
        assert not legend.intersects(plot_area), width
        # every entry readable, wrapped into rows: none past the right edge
        assert legend.right() <= graph.width(), width


def test_lookup_graph_legend_names_every_outcome_with_its_marker(qtbot: QtBot) -> None:
    """The legend is built from the outcomes the lookup state knows: slow queries (triangles)
    and error replies (diamonds) appear in it as they do in the plot."""
    graph = shown_graph(qtbot, 520, 360)
    labels = [label.text for _sample, label in graph._legend.items]
    assert labels == [*OUTCOMES, "final K closest"]
    markers = {label.text: sample.item.opts["symbol"] for sample, label in graph._legend.items}
    assert markers[SLOW] == "t" and markers[ERROR] == "d" and markers[ANSWERED] == "o"
    target, rng = b"\x07" * 20, random.Random(2)
    slow, erring = random_id(rng), random_id(rng)
    state = LookupState.from_events([
        ev.LookupStarted(1, target, "get_peers", 0.0),
        ev.LookupQuerySent(1, slow, ("30.2.0.1", 1), None, 0, 0.0),
        ev.LookupQuerySent(1, erring, ("30.2.0.2", 1), None, 0, 0.0),
        ev.LookupQuerySlow(1, slow, ("30.2.0.1", 1), 0.8),
        ev.LookupQueryError(1, erring, ("30.2.0.2", 1), "error 203: Protocol Error", 0.1),
    ])
    graph.set_lookup(state)
    QApplication.processEvents()
    assert len(graph._scatters[SLOW].data) == 1 and len(graph._scatters[ERROR].data) == 1
    erring_node = state.node_by_id(erring)
    assert erring_node is not None
    assert "error 203: Protocol Error" in LookupGraph.tooltip_for(erring_node)
    legend = graph._legend.sceneBoundingRect()
    assert not legend.intersects(graph.getPlotItem().getViewBox().sceneBoundingRect())


def test_lookup_graph_drops_its_legend_when_too_short_for_it(
    qtbot: QtBot, sim_lookup: LookupState
) -> None:
    """A small panel's graph (the Items panel at 1024x700) keeps its plot: the legend, several
    rows tall when narrow, goes when it would leave the plot a sliver, and comes back."""
    graph = shown_graph(qtbot, 360, 150)
    graph.set_lookup(sim_lookup)
    QApplication.processEvents()
    unit = graph.fontMetrics().height()
    assert not graph.legend_shown and not graph._legend.isVisible()
    assert graph.getPlotItem().getViewBox().height() >= 5 * unit
    # ... and a y title that fits its height
    axis = graph.getPlotItem().getAxis("left")
    assert axis.labelText == SHORT_Y_LABEL
    graph.resize(360, 420)
    QApplication.processEvents()
    assert graph.legend_shown and graph._legend.isVisible()
    assert axis.labelText == Y_LABEL
    legend = graph._legend.sceneBoundingRect()
    assert not legend.intersects(graph.getPlotItem().getViewBox().sceneBoundingRect())
    assert graph.getPlotItem().getViewBox().height() >= 7 * unit


def help_event(view: object, where: QPointF) -> bool:
    """Send Qt's tooltip event at ``where`` (scene coordinates) to a plot; True if accepted."""
    pos = view.mapFromScene(where)  # type: ignore[attr-defined]
    event = QHelpEvent(QEvent.Type.ToolTip, pos, view.viewport().mapToGlobal(pos))  # type: ignore[attr-defined]
    QApplication.sendEvent(view.viewport(), event)  # type: ignore[attr-defined]
    return event.isAccepted()


def test_plot_tooltips_are_not_replaced_by_the_parents_tooltip(
    qtbot: QtBot, sim_lookup: LookupState
) -> None:
    # a dock (here a plain parent) has a generic tooltip; Qt's tooltip event, sent after the
    # hover, must not travel up to it
    parent = QWidget()
    parent.setToolTip("generic dock tooltip")
    qtbot.addWidget(parent)
    graph = LookupGraph(parent)
    chart = BucketChart(parent)
    graph.setGeometry(0, 0, 600, 350)
    chart.setGeometry(0, 350, 600, 300)
    parent.resize(600, 650)
    parent.show()
    qtbot.waitExposed(parent)
    graph.set_lookup(sim_lookup)
    chart.set_snapshot(make_snapshot())
    QApplication.processEvents()
    node = next(n for n in sim_lookup.nodes.values() if n.closest_rank == 0)
    vb = graph.getPlotItem().getViewBox()
    assert help_event(graph, vb.mapViewToScene(graph.position_of(node)))
    assert QToolTip.text() == LookupGraph.tooltip_for(node)
    cvb = chart.getPlotItem().getViewBox()
    assert help_event(chart, cvb.mapViewToScene(QPointF(3.0, 1.0)))
    assert QToolTip.text() == chart.tooltip_for(3)
    # over nothing: no tooltip at all, not the dock's
    assert help_event(graph, vb.mapViewToScene(QPointF(-0.5, 0.0)))
    assert QToolTip.text() != "generic dock tooltip"
    QToolTip.hideText()


def test_lookup_graph_redraws_300_points(qtbot: QtBot) -> None:
    rng = random.Random(4)
    target = random_id(rng)
    events: list[ev.Event] = [ev.LookupStarted(1, target, "get_peers", 0.0)]
    ids: list[bytes] = []
    for i in range(300):
        node_id = random_id_with_prefix(rng, target, min(2 + i // 20, 159))
        referrer = rng.choice(ids[-40:]) if ids and i >= 8 else None
        addr = (f"30.0.{i // 200}.{i % 200 + 1}", 6881)
        events.append(ev.LookupQuerySent(1, node_id, addr, referrer, i // 40, i * 0.01))
        events.append(ev.LookupResponse(1, node_id, addr, 0.05, 8, 0, i * 0.01 + 0.05))
        ids.append(node_id)
    state = LookupState.from_events(events)
    graph = LookupGraph()
    qtbot.addWidget(graph)
    graph.resize(800, 500)
    graph.set_lookup(state)
    image = graph.grab()
    assert not image.isNull()
    assert graph.point_count() == 300 and graph.edge_count() == 292


# --- TrafficPlot -------------------------------------------------------------------------------
def test_traffic_plot_draws_one_curve_per_direction_and_method(qtbot: QtBot) -> None:
    stats = TrafficStats()
    peer = ("1.2.3.4", 6881)
    for i in range(100):
        at = 1000.0 + i
        stats.add_event(ev.MessageSent(peer, "q", b"get_peers", b"t", 90, b"", at))
        stats.add_event(ev.MessageReceived(peer, "r", b"get_peers", b"t", 400, None, b"", at))
        stats.add_event(ev.MessageSent(peer, "q", b"ping", b"t", 50, b"", at))
        stats.add_event(ev.LookupResponse(1, b"\0" * 20, peer, 0.05 + i / 1000, 8, 0, at))
    stats.add_event(ev.MalformedReceived(peer, 12, 203, "junk", False, 1050.0))
    plot = TrafficPlot()
    qtbot.addWidget(plot)
    plot.set_stats(stats)
    assert plot.rate_curve_count() == 3
    assert "malformed 1" in plot.summary.text()
    plot.set_stats(None)
    assert plot.rate_curve_count() == 0


# --- IdSpaceRing -------------------------------------------------------------------------------
def test_id_space_ring_dots_tooltips_and_own_marker(qtbot: QtBot) -> None:
    ring = IdSpaceRing()
    qtbot.addWidget(ring)
    ring.resize(400, 400)
    snap = make_snapshot()
    ring.set_nodes(snap)
    ring.set_target(snap.buckets[0].nodes[0].id)
    assert ring.node_count() == snap.size
    nodes = [n for b in snap.buckets for n in b.nodes]
    first = ring.dot_positions()[0]
    hit = ring.node_at(first)
    assert hit is not None and hit.state == nodes[0].state
    text = ring.tooltip_at(first)
    assert text is not None and "20.0.0." in text
    image = ring.grab().toImage()
    # the own-id diamond is filled with the theme's own-id colour
    marker = ring.marker_position(snap.own_id)
    pixel = image.pixelColor(marker.toPoint())
    assert pixel.name() == QColor(current_theme().own_id).name()
    assert ring.tooltip_at(marker) == f"our id\n{snap.own_id.hex()}"
    ring.set_nodes(None)
    assert ring.node_count() == 0 and ring.node_at(first) is None


def test_id_space_ring_spreads_a_real_table_by_bucket(qtbot: QtBot) -> None:
    # drawn linearly, every node of bucket 8 or deeper sat within 1.4 degrees of our id
    ring = IdSpaceRing()
    qtbot.addWidget(ring)
    ring.resize(500, 500)
    snap = make_snapshot(depth=20)
    ring.set_nodes(snap)
    nodes = [n for b in snap.buckets for n in b.nodes]
    angles = {n.id: ring.angle_of(n.id) for n in nodes}
    deep = [angles[n.id] for n in nodes if n.bucket >= 8]
    assert max(deep) - min(deep) > 120  # a real table spreads over the ring
    # every bucket its own arc, in order: the deepest right after us, bucket 0 last
    for n in nodes:
        end = 360.0 if n.bucket == 0 else bucket_start_angle(n.bucket - 1, len(snap.buckets))
        assert bucket_start_angle(n.bucket, len(snap.buckets)) <= angles[n.id] < end, n.bucket
    assert ring.angle_of(snap.own_id) == 0.0
    # the deepest bucket also holds every closer id: they spread toward us, not pile up
    rng = random.Random(1)
    deepest = [ring.angle_of(random_id_with_prefix(rng, snap.own_id, bits))
               for bits in (19, 20, 21, 24, 40)]
    assert deepest == sorted(deepest, reverse=True) and len(set(deepest)) == 5
    assert deepest[-1] > 0.0 and deepest[0] >= bucket_start_angle(19, 20)
    # and the dots are drawn where the angles say
    center = QPointF(ring.rect().center())
    first = ring.dot_positions()[0]
    drawn = math.degrees(math.atan2(first.x() - center.x(), center.y() - first.y())) % 360
    assert abs(drawn - angles[nodes[0].id]) < 0.5


def test_id_space_ring_writes_target_beside_its_line(qtbot: QtBot) -> None:
    ring = IdSpaceRing()
    qtbot.addWidget(ring)
    snap = make_snapshot(depth=16)
    ring.set_nodes(snap)
    rng = random.Random(2)
    for size in ((420, 420), (300, 560), (700, 380)):
        ring.resize(*size)
        for bits in range(0, 16):
            target = random_id_with_prefix(rng, snap.own_id, bits)
            line, at = ring.target_geometry(target)
            box = ring.label_rect(at, "target", bold=True)
            on_line = [line.pointAt(i / 40) for i in range(41)]
            assert not any(box.contains(p) for p in on_line), (size, bits)


# --- theme -------------------------------------------------------------------------------------
def test_theme_follows_palette_and_views_follow_changes(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    original = app.palette()
    chart = BucketChart()
    qtbot.addWidget(chart)
    try:
        app.setPalette(QPalette(QColor("#f0f0f0")))
        assert current_theme() is LIGHT
        app.setPalette(QPalette(QColor("#202020")))
        assert current_theme() is DARK
        QApplication.processEvents()
        assert chart.backgroundBrush().color().name() == QColor(DARK.background).name()
    finally:
        app.setPalette(original)
