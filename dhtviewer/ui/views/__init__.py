"""Views of the desktop app: pure widgets that draw the snapshots and states handed to them.

BucketChart (routing table per bucket), LookupGraph (one lookup's path), TrafficPlot (traffic,
RTTs, network size), IdSpaceRing (the id space with every known node); colours from ``theme``;
``lazy`` holds the placeholders the panels show until the pyqtgraph views are built.

The names are loaded on first access (PEP 562), so that importing one light module of this
package (``theme``, ``lazy``) does not import pyqtgraph and numpy with the plots.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhtviewer.ui.views.bucket_chart import BucketChart
    from dhtviewer.ui.views.id_space_ring import IdSpaceRing
    from dhtviewer.ui.views.lookup_graph import LookupGraph
    from dhtviewer.ui.views.traffic_plot import TrafficPlot

_MODULES = {
    "BucketChart": "bucket_chart",
    "IdSpaceRing": "id_space_ring",
    "LookupGraph": "lookup_graph",
    "TrafficPlot": "traffic_plot",
}

__all__ = ["BucketChart", "IdSpaceRing", "LookupGraph", "TrafficPlot"]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
