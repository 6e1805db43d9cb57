"""Qt item models of the desktop app: routing-table nodes, found peers, packet log (and its
per-address view), lookups.

Each is a QAbstractTableModel fed by plain method calls (``apply_snapshot``, ``add_events``,
``set_lookup``) with core events or routing snapshots; none of them touches the DHT itself.
"""

from dhtviewer.ui.models.addresses import AddressesModel
from dhtviewer.ui.models.lookups import LookupsModel
from dhtviewer.ui.models.nodes import NODE_ROLE, SORT_ROLE, NodesModel, NodesProxy
from dhtviewer.ui.models.packets import PacketsModel
from dhtviewer.ui.models.peers import PeersModel

__all__ = [
    "NODE_ROLE",
    "SORT_ROLE",
    "AddressesModel",
    "LookupsModel",
    "NodesModel",
    "NodesProxy",
    "PacketsModel",
    "PeersModel",
]
