"""Typed KRPC messages: what ``krpc.decode`` returns and ``krpc.encode`` takes.

Queries carry the method's arguments as typed fields. Responses are method-agnostic, as on the wire
(a KRPC response does not name its method): every optional field a known method may return is here.
Unknown keys are ignored by the decoder (forward compatibility); an unknown query method decodes to
``UnknownQuery`` so the node can answer it with error 204.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

NO_FIELDS: Mapping[bytes, object] = MappingProxyType({})
"""The empty ``args``/``extra`` of messages that carry none (shared, read-only)."""



def _no_fields() -> Mapping[bytes, object]:
    return NO_FIELDS


Addr = tuple[str, int]
"""An (ip, port) pair; ip is a textual IPv4 or IPv6 address (no brackets)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A contact: a node id (20 bytes) and its UDP address."""

    id: bytes
    addr: Addr


# Error codes (BEP 5).
GENERIC_ERROR = 201
SERVER_ERROR = 202
PROTOCOL_ERROR = 203
METHOD_UNKNOWN = 204


@dataclass(frozen=True, slots=True)
class Query:
    """Fields common to every query.

    ``tid``: transaction id, opaque bytes chosen by the querier.
    ``sender_id``: the querier's 20-byte node id (``a.id``).
    ``version``: the ``v`` key if present (client code + version), else None.
    ``read_only``: BEP 43 ``ro=1``; such a node must not enter routing tables.
    """

    tid: bytes
    sender_id: bytes
    version: bytes | None = field(default=None, kw_only=True)
    read_only: bool = field(default=False, kw_only=True)

    method = b""


@dataclass(frozen=True, slots=True)
class PingQuery(Query):
    method = b"ping"


@dataclass(frozen=True, slots=True)
class FindNodeQuery(Query):
    target: bytes = b""
    want: frozenset[bytes] = frozenset()
    """BEP 32 ``want`` entries (b"n4", b"n6"); empty = the address family of the query."""

    method = b"find_node"


@dataclass(frozen=True, slots=True)
class GetPeersQuery(Query):
    info_hash: bytes = b""
    want: frozenset[bytes] = frozenset()
    bootstrap: bool = False
    """libtorrent's ``bs=1`` (a bootstrap lookup); informational."""
    scrape: bool = False
    """BEP 33 ``scrape=1``: add the seed and downloader Bloom filters of the swarm."""
    noseed: bool = False
    """BEP 33 ``noseed=1``: prefer peers that are not seeds in ``values``."""

    method = b"get_peers"


@dataclass(frozen=True, slots=True)
class AnnouncePeerQuery(Query):
    info_hash: bytes = b""
    port: int = 0
    token: bytes = b""
    implied_port: bool = False
    """If set, the peer's port is the UDP source port of this query, not ``port``."""
    seed: bool | None = None

    method = b"announce_peer"


@dataclass(frozen=True, slots=True)
class SampleInfohashesQuery(Query):
    """BEP 51."""

    target: bytes = b""
    want: frozenset[bytes] = frozenset()

    method = b"sample_infohashes"


@dataclass(frozen=True, slots=True)
class GetQuery(Query):
    """BEP 44 ``get``: the item stored under ``target``. ``seq``: only send a mutable item's
    value if its sequence number is greater than this."""

    target: bytes = b""
    seq: int | None = None
    want: frozenset[bytes] = frozenset()

    method = b"get"


@dataclass(frozen=True, slots=True)
class PutQuery(Query):
    """BEP 44 ``put``. ``v``: the value, *bencoded* (raw bytes, as hashed and signed).
    Immutable when ``k`` is None; mutable items carry ``k`` (32-byte ed25519 public key),
    ``seq``, ``sig`` (64 bytes), an optional ``salt`` and an optional ``cas`` (the seq the put
    expects to replace)."""

    token: bytes = b""
    v: bytes = b""
    k: bytes | None = None
    seq: int | None = None
    sig: bytes | None = None
    salt: bytes = b""
    cas: int | None = None

    method = b"put"


@dataclass(frozen=True, slots=True)
class UnknownQuery(Query):
    """A query for a method the codec has no type for: answered with 204 unless a handler is
    registered for it (``Responder.register``), and the way custom queries are sent. ``args``:
    the ``a`` dict without ``id``, as decoded (bencode values: bytes, int, list, dict)."""

    name: bytes = b""
    args: Mapping[bytes, object] = field(default_factory=_no_fields, compare=False)

    @property
    def method_name(self) -> bytes:
        return self.name


@dataclass(frozen=True, slots=True)
class Response:
    """Any KRPC response.

    ``sender_id``: responder's id (``r.id``). ``nodes``/``nodes6``: compact contacts (BEP 5/32).
    ``values``: compact peers (IPv4 and IPv6 mixed, decoded by length). ``token``: for a later
    announce_peer. ``external_ip``: BEP 42 top-level ``ip``: our address as the responder saw it.
    ``port``: libtorrent's ``r.p``. BEP 51 fields: ``interval``, ``num``, ``samples``.
    BEP 44 fields of a ``get`` reply: ``v`` (the value, *bencoded*), ``k``, ``seq``, ``sig``.
    BEP 33 fields of a scrape: ``bf_seeds`` (``BFsd``), ``bf_peers`` (``BFpe``), 256 bytes each.
    ``extra``: the other keys of ``r`` (custom methods, extensions), as decoded; encoded as given.
    ``partial_records``: set by the decoder, never encoded: records of ``nodes``/``nodes6``/
    ``values`` left out because they were cut short or had no peer's length (the others were
    used, as deployed clients do).
    """

    tid: bytes
    sender_id: bytes
    nodes: tuple[NodeInfo, ...] = ()
    nodes6: tuple[NodeInfo, ...] = ()
    values: tuple[Addr, ...] = ()
    token: bytes | None = None
    external_ip: Addr | None = None
    version: bytes | None = None
    read_only: bool = False
    port: int | None = None
    interval: int | None = None
    num: int | None = None
    samples: tuple[bytes, ...] = ()
    v: bytes | None = None
    k: bytes | None = None
    seq: int | None = None
    sig: bytes | None = None
    bf_seeds: bytes | None = None
    bf_peers: bytes | None = None
    extra: Mapping[bytes, object] = field(default_factory=_no_fields, compare=False)
    partial_records: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """A KRPC error (``y=e``): ``e=[code, message]``. Extra keys (libtorrent adds ``r``) ignored."""

    tid: bytes
    code: int
    message: str
    version: bytes | None = None


Message = Query | Response | ErrorMessage


def method_of(msg: Message) -> bytes:
    """The method name of a query (including unknown ones); b"" for responses and errors."""
    if isinstance(msg, UnknownQuery):
        return msg.name
    if isinstance(msg, Query):
        return type(msg).method
    return b""
