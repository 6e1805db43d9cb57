"""BEP 44 on the simulated Mainline: the items clients put on simulated nodes.

A simulated node that supports BEP 44 answers ``get`` with a write token (the network's
``TokenIssuer``, bound to the asker's IP, the target and the node, as for ``get_peers``), its
closest contacts and the item it stores under the target, and answers ``put`` by the rules our
own node applies: the checks and their order and codes are ``dht/item_service.py``'s
(``accept_put``, ``item_fields``) over a ``dht/item_store.py`` store, so a put refused by one is
refused by the other with the same code (205, 207, 203 invalid token, 206, 301, 302). The
handlers (``network.answer_get``/``answer_put``) call this module. With several serving
processes each holds the items of its own nodes (a node lives on one port, a port in one
process, and its get and the put that follows reach the same one).

Bounds. A node's store is created at its first put and holds at most ``ITEMS_PER_NODE`` items
(the item store's own eviction picks the victim); over the whole network at most
``MAX_ITEMS`` items are kept, past which the store of the node least recently put to is
dropped (its items are gone, as after a restart). At ~1.3 KB an item, that is under 30 MB
whatever the clients put. Items expire as in ``ItemStore`` (2 h after their last put).

Support: libtorrent (its documentation lists BEP 44) and mldht. Transmission's jech/dht does not
speak BEP 44 (its nodes answer 204, method unknown), and neither, here, do uTorrent and the
rest: no documentation of their support was at hand (a working figure).
"""

from __future__ import annotations

from collections import OrderedDict

from dhtviewer.dht.item_service import ItemFields, accept_put, item_fields
from dhtviewer.dht.item_store import ItemStore
from dhtviewer.dht.items import ItemError
from dhtviewer.dht.messages import PutQuery
from dhtviewer.dht.tokens import TokenIssuer
from dhtviewer.simnet.profile import CLIENTS

__all__ = ["ITEMS_PER_NODE", "ITEM_CLIENTS", "MAX_ITEMS", "NodeItems"]

ITEM_CLIENTS = frozenset({"libtorrent 2.0", "libtorrent 1.2", "mldht"})
"""Client families (``profile.CLIENTS`` names) whose nodes answer ``get`` and ``put``."""
ITEMS_PER_NODE = 64
MAX_ITEMS = 20_000


class NodeItems:
    """The item stores of the simulated nodes (created at a node's first put). ``clients``:
    the client family of each node position."""

    def __init__(self, clients: bytes) -> None:
        self._clients = clients
        self._supported = tuple(c.name in ITEM_CLIENTS for c in CLIENTS)
        self.stores: OrderedDict[int, ItemStore] = OrderedDict()
        """Node position -> its store, least recently put to first."""
        self.stats: dict[str, int] = {"gets": 0, "served": 0, "puts": 0, "stored": 0,
                                      "refused": 0, "stores_dropped": 0}
        self._total = 0

    def supports(self, pos: int) -> bool:
        return self._supported[self._clients[pos]]

    @staticmethod
    def token(tokens: TokenIssuer, ip: str, target: bytes, node_id: bytes, now: float) -> bytes:
        """The write token node ``node_id`` gives ``ip`` for ``target``."""
        return tokens.issue(ip, target + node_id, now)

    def get(self, pos: int, target: bytes, seq: int | None, now: float) -> ItemFields:
        """The item fields of node ``pos``'s answer to a get of ``target`` (``item_fields``:
        empty when it stores nothing)."""
        self.stats["gets"] += 1
        store = self.stores.get(pos)
        item = store.get(target, now) if store is not None else None
        if item is not None:
            self.stats["served"] += 1
        return item_fields(item, seq)

    def put(self, pos: int, node_id: bytes, q: PutQuery, ip: str, now: float,
            tokens: TokenIssuer) -> None:
        """Store ``q`` at node ``pos`` (asked from ``ip``; its token checked with ``tokens``);
        ``ItemError`` when it is refused."""
        self.stats["puts"] += 1
        store = self.stores.get(pos)
        fresh = store is None
        if store is None:
            store = ItemStore(max_items=ITEMS_PER_NODE)

        def token_ok(token: bytes, target: bytes, ip: str, now: float) -> bool:
            return tokens.verify(token, ip, target + node_id, now)

        before = len(store)
        try:
            accept_put(q, ip, now, store, token_ok)
        except ItemError:
            self.stats["refused"] += 1
            raise
        self.stats["stored"] += 1
        if fresh:
            self.stores[pos] = store
        else:
            self.stores.move_to_end(pos)
        self._total += len(store) - before
        if self._total > MAX_ITEMS:
            self._bound()

    def _bound(self) -> None:
        # The running total misses what expired meanwhile: count exactly before dropping.
        total = sum(len(s) for s in self.stores.values())
        while total > MAX_ITEMS and len(self.stores) > 1:
            _, dropped = self.stores.popitem(last=False)
            total -= len(dropped)
            self.stats["stores_dropped"] += 1
        self._total = total

    def holders(self, target: bytes, now: float) -> list[int]:
        """Node positions that store ``target`` (ground truth)."""
        return [pos for pos, store in self.stores.items() if store.get(target, now) is not None]

    def item_count(self) -> int:
        return sum(len(s) for s in self.stores.values())
