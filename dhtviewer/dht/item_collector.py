"""What a BEP 44 ``get`` lookup keeps from the replies: the newest valid item, who holds it,
and why any other answer was rejected.

Every item a node returns is checked before it counts (BEP 44: the requesting node SHOULD verify
hash and signature): an immutable value must hash to the target; a mutable item's key and salt
must hash to the target and its signature must verify. The salt is not in the reply (the BEP
leaves it out on purpose), so the requester's salt is used: a get with the wrong salt shows
every mutable item as rejected with "SHA-1 of key and salt does not match the target", which is
exactly what a user needs to see. For mutable items the highest ``seq`` wins; the nodes that
returned it (or only its ``seq``, when asked with ``seq``) are its holders.
"""

from __future__ import annotations

from dataclasses import dataclass

from dhtviewer.dht.items import Item, ItemError
from dhtviewer.dht.messages import Addr, Response

__all__ = ["ItemCollector", "ItemRejection"]


@dataclass(frozen=True, slots=True)
class ItemRejection:
    """An item a node returned and we refused, and why."""

    node_id: bytes
    addr: Addr
    reason: str


class ItemCollector:
    def __init__(self, target: bytes, salt: bytes = b"", max_rejections: int = 64) -> None:
        self.target = target
        self.salt = salt
        self.best: Item | None = None
        self.holders: list[Addr] = []
        """Nodes that returned ``best`` (or its seq without a value)."""
        self.rejections: list[ItemRejection] = []
        self.max_rejections = max_rejections
        self.rejected = 0

    def offer(self, node_id: bytes, addr: Addr, r: Response) -> Item | None:
        """The reply of ``node_id`` to our ``get``; returns the item it carried if that item is
        valid (whether or not it is the newest), None if it had none or it was rejected."""
        if r.v is None:
            if r.seq is not None and self.best is not None and r.seq == self.best.seq:
                self._hold(addr)  # answered a get with seq: "I have that one, nothing newer"
            return None
        if r.k is None:
            item = Item(r.v)
        else:
            if r.seq is None or r.sig is None:
                self._reject(node_id, addr, "mutable item without 'seq' or 'sig'")
                return None
            item = Item(r.v, r.k, r.seq, r.sig, self.salt)
        try:
            item.check_for(self.target)
        except ItemError as err:
            self._reject(node_id, addr, err.reason)
            return None
        best = self.best
        if best is None or (item.mutable and item.seq > best.seq):
            self.best = item
            self.holders = [addr]
        elif item.seq == best.seq and item.value == best.value:
            self._hold(addr)
        return item

    def _hold(self, addr: Addr) -> None:
        if addr not in self.holders:
            self.holders.append(addr)

    def _reject(self, node_id: bytes, addr: Addr, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < self.max_rejections:
            self.rejections.append(ItemRejection(node_id, addr, reason))
