"""BEP 44 on the storage side: the answers to ``get`` and ``put``.

``get``: our id, a write token bound to the asker's IP and the target, the closest contacts
(of the families asked for, as ``find_node``), and the item if we store one: ``v`` for an
immutable item; ``k``, ``seq``, ``sig`` and ``v`` for a mutable one, except when the asker's
``seq`` shows it already has that one or newer (then ``seq`` alone, as the BEP allows).

``put``: checked in the order libtorrent checks, so both refuse the same put with the same code:
value size (205), salt size (207), the token for this target (203), then the store's rules
(signature 206, ``cas`` 301, ``seq`` 302; ``item_store.py``). Invalid bencoding in ``v`` was
already refused by the decoder (203). A stored item is reported as ``ItemStored``.

The rules themselves are two plain functions, ``item_fields`` (what a get reply carries) and
``accept_put`` (check and store a put), so that other storage nodes answer exactly as ours: the
simulated Mainline's nodes (``simnet/items.py``) call them with their own stores and tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from dhtviewer.dht import events as ev
from dhtviewer.dht.counters import Counters
from dhtviewer.dht.item_store import ItemStore, StoredItem
from dhtviewer.dht.items import (
    PROTOCOL_ERROR,
    Item,
    ItemError,
    check_salt,
    check_value_size,
)
from dhtviewer.dht.messages import Addr, ErrorMessage, GetQuery, Message, PutQuery, Response
from dhtviewer.dht.responder import Responder
from dhtviewer.dht.tokens import TokenIssuer

__all__ = ["ItemFields", "ItemService", "accept_put", "item_fields"]


class ItemFields(TypedDict, total=False):
    """The BEP 44 keys of a ``get`` reply (``v`` bencoded)."""

    v: bytes
    k: bytes
    seq: int
    sig: bytes


def item_fields(item: Item | None, seq: int | None) -> ItemFields:
    """The item fields of a ``get`` reply for the stored ``item`` (None: nothing stored),
    given the asker's ``seq`` (None: it has none)."""
    if item is None:
        return {}
    if item.public_key is None:
        return {"v": item.value}
    if seq is not None and item.seq <= seq:
        return {"seq": item.seq}  # "nothing newer than what you have"
    return {"v": item.value, "k": item.public_key, "seq": item.seq, "sig": item.signature}


def accept_put(
    q: PutQuery,
    ip: str,
    now: float,
    store: ItemStore,
    token_ok: Callable[[bytes, bytes, str, float], bool],
) -> tuple[Item, StoredItem | None, bool]:
    """Check ``q`` from ``ip`` in libtorrent's order (module docstring) and store it:
    ``(item, entry, new)``: the entry stored (None when storage is off), ``new`` when the
    target was not stored before. ``token_ok(token, target, ip, now)`` checks the write token.
    Raises ``ItemError`` with the BEP 44 code when the put must be refused (store unchanged)."""
    check_value_size(q.v)
    if q.k is not None:
        check_salt(q.salt)
        item = Item(q.v, q.k, q.seq or 0, q.sig or b"", q.salt)
    else:
        item = Item(q.v)
    target = item.target
    if not token_ok(q.token, target, ip, now):
        raise ItemError(PROTOCOL_ERROR, "invalid token")
    known = target in store
    entry = store.put(item, now, cas=q.cas, putter=ip)
    return item, entry, not known


class ItemService:
    def __init__(
        self,
        *,
        responder: Responder,
        store: ItemStore,
        tokens: TokenIssuer,
        counters: Counters,
        emit: Callable[[ev.Event], None],
    ) -> None:
        self.responder = responder
        self.store = store
        self.tokens = tokens
        self.counters = counters
        self.emit = emit

    def register(self) -> None:
        self.responder.register(GetQuery.method, self.get_reply, builtin=True)
        self.responder.register(PutQuery.method, self.put_reply, builtin=True)

    def get_reply(self, q: GetQuery, addr: Addr, now: float) -> Response:
        v4, v6 = self.responder.closest_nodes(q.target, q.want, addr, now)
        token = self.tokens.issue(addr[0], q.target, now)
        item = self.store.get(q.target, now)
        fields: dict[str, object] = {"nodes": v4, "nodes6": v6, "token": token}
        if item is not None:
            self.counters.item_gets_served += 1
            fields.update(item_fields(item, q.seq))
        return self.responder.response(q, addr, **fields)

    def put_reply(self, q: PutQuery, addr: Addr, now: float) -> Message:
        try:
            item, entry, new = accept_put(q, addr[0], now, self.store, self._token_ok)
        except ItemError as err:
            self.counters.puts_refused += 1
            return ErrorMessage(q.tid, err.code, err.reason)
        if entry is not None:
            self.counters.items_stored += 1
            stored = entry.item
            self.emit(
                ev.ItemStored(
                    item.target,
                    stored.public_key,
                    stored.seq if stored.mutable else None,
                    len(stored.value),
                    addr,
                    new,
                    now,
                )
            )
        return self.responder.response(q, addr)

    def _token_ok(self, token: bytes, target: bytes, ip: str, now: float) -> bool:
        if self.tokens.verify(token, ip, target, now):
            return True
        self.counters.bad_tokens += 1
        return False
