"""LazyView: a placeholder that stands in for a plot view until the view is worth building.

Importing pyqtgraph and numpy takes about half a second, most of what the window needs before it
can appear. So the panels hold placeholders, the window paints its first frame with them, and
the real views are built (``realize``) right after: by the main window once its first frame is
painted, by a placeholder itself once it has been painted, or on the first use of anything only
the real view has (reading what it draws, for instance).

Until then the state-setting calls are kept, the last one of each method, and replayed in the
order they were made once the view exists: each of them replaces what the view shows, so the
last one is all the view needs. After that the placeholder is a plain frame around the view
(no margins) and every call goes straight through.

``LazyBucketChart``, ``LazyLookupGraph`` and ``LazyTrafficPlot`` are the placeholders of the
three pyqtgraph views, with the views' setters and signals typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from PySide6.QtCore import QSize, QTimer, Signal
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from dhtviewer.ui.views.theme import Theme, current_theme, qcolor

if TYPE_CHECKING:
    from dhtviewer.dht.routing_table import RoutingSnapshot
    from dhtviewer.ui.lookup_state import LookupState
    from dhtviewer.ui.traffic_stats import TrafficStats
    from dhtviewer.ui.views.bucket_chart import BucketChart
    from dhtviewer.ui.views.lookup_graph import LookupGraph
    from dhtviewer.ui.views.traffic_plot import TrafficPlot

V = TypeVar("V", bound=QWidget)

# What pyqtgraph's plot widgets report, so that splitters and docks lay the placeholder out as
# they would the plot.
PLOT_SIZE_HINT = QSize(600, 480)
PLOT_MINIMUM_SIZE_HINT = QSize(68, 68)


class LazyView(QWidget, Generic[V]):
    """Shows the widget ``factory`` returns once ``realize`` is called; ``defer`` the calls
    meant for it until then."""

    def __init__(
        self,
        factory: Callable[[], V],
        parent: QWidget | None = None,
        *,
        size_hint: QSize = PLOT_SIZE_HINT,
        minimum_size_hint: QSize = PLOT_MINIMUM_SIZE_HINT,
        policy: QSizePolicy.Policy = QSizePolicy.Policy.Expanding,
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self._view: V | None = None
        self._pending: dict[str, Callable[[V], object]] = {}
        self._scheduled = False
        self._size_hint = size_hint
        self._minimum_size_hint = minimum_size_hint
        self.setSizePolicy(policy, policy)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    @property
    def is_realized(self) -> bool:
        return self._view is not None

    @property
    def view(self) -> V:
        """The real view (built now if it was not yet)."""
        return self.realize()

    def realize(self) -> V:
        """Build the view if not done yet, replay the calls kept for it, and return it."""
        view = self._view
        if view is None:
            view = self._factory()
            self._view = view  # from here on, calls (also those replayed) go straight through
            self._layout.addWidget(view)
            view.show()  # a child added to a visible widget stays hidden otherwise
            self.setSizePolicy(view.sizePolicy())
            pending, self._pending = self._pending, {}
            for call in pending.values():
                call(view)
            self.updateGeometry()
        return view

    def realize_soon(self) -> None:
        """Realize on the next turn of the event loop (once what is being painted is shown)."""
        if self._view is None and not self._scheduled:
            self._scheduled = True
            QTimer.singleShot(0, self, self.realize)

    def defer(self, key: str, call: Callable[[V], object]) -> None:
        """Run ``call`` on the view; before it exists, keep it, replacing any earlier call
        kept under ``key`` (by convention the method's name), and moving it last."""
        if self._view is not None:
            call(self._view)
            return
        self._pending.pop(key, None)
        self._pending[key] = call

    def pending_calls(self) -> list[str]:
        """Keys of the calls kept for the view, in the order they will be replayed."""
        return list(self._pending)

    # --- before the view exists: an empty plot's background, the same size as the view ---------
    def sizeHint(self) -> QSize:
        return super().sizeHint() if self._view is not None else QSize(self._size_hint)

    def minimumSizeHint(self) -> QSize:
        if self._view is not None:
            return super().minimumSizeHint()
        return QSize(self._minimum_size_hint)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._view is not None:
            super().paintEvent(event)
            return
        painter = QPainter(self)
        try:
            painter.fillRect(event.rect(), qcolor(current_theme().background))
        finally:
            painter.end()
        # painted empty once: build the view right after this frame is on screen
        self.realize_soon()

    if not TYPE_CHECKING:
        # Anything else only the real view has builds it. Hidden from mypy, so that typed code
        # says what it means: the setters of the subclasses below, or ``view``.
        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                raise AttributeError(name)
            return getattr(self.realize(), name)


class LazyBucketChart(LazyView["BucketChart"]):
    bucket_clicked = Signal(int)
    """Re-emitted from the chart: the index of the bucket clicked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self._build, parent)

    def _build(self) -> BucketChart:
        from dhtviewer.ui.views.bucket_chart import BucketChart

        chart = BucketChart()
        chart.bucket_clicked.connect(self.bucket_clicked)
        return chart

    def set_snapshot(self, snapshot: RoutingSnapshot | None) -> None:
        self.defer("set_snapshot", lambda chart: chart.set_snapshot(snapshot))

    def apply_theme(self, theme: Theme | None = None) -> None:
        self.defer("apply_theme", lambda chart: chart.apply_theme(theme))


class LazyLookupGraph(LazyView["LookupGraph"]):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self._build, parent)

    @staticmethod
    def _build() -> LookupGraph:
        from dhtviewer.ui.views.lookup_graph import LookupGraph

        return LookupGraph()

    def set_lookup(self, state: LookupState | None) -> None:
        self.defer("set_lookup", lambda graph: graph.set_lookup(state))

    def apply_theme(self, theme: Theme | None = None) -> None:
        self.defer("apply_theme", lambda graph: graph.apply_theme(theme))


class LazyTrafficPlot(LazyView["TrafficPlot"]):
    def __init__(self, parent: QWidget | None = None) -> None:
        # a text line over a grid of four plots: no preferred size of its own to speak of
        super().__init__(self._build, parent, size_hint=QSize(166, 148),
                         minimum_size_hint=QSize(76, 92), policy=QSizePolicy.Policy.Preferred)

    @staticmethod
    def _build() -> TrafficPlot:
        from dhtviewer.ui.views.traffic_plot import TrafficPlot

        return TrafficPlot()

    def set_stats(self, stats: TrafficStats | None) -> None:
        self.defer("set_stats", lambda plot: plot.set_stats(stats))

    def apply_theme(self, theme: Theme | None = None) -> None:
        self.defer("apply_theme", lambda plot: plot.apply_theme(theme))
