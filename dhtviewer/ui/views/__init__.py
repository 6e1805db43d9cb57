"""Views of the desktop app: pure widgets that draw the snapshots and states handed to them.

BucketChart (routing table per bucket), LookupGraph (one lookup's path), TrafficPlot (traffic,
RTTs, network size), IdSpaceRing (the id space with every known node); colours from ``theme``.
"""

from dhtviewer.ui.views.bucket_chart import BucketChart
from dhtviewer.ui.views.id_space_ring import IdSpaceRing
from dhtviewer.ui.views.lookup_graph import LookupGraph
from dhtviewer.ui.views.traffic_plot import TrafficPlot

__all__ = ["BucketChart", "IdSpaceRing", "LookupGraph", "TrafficPlot"]
