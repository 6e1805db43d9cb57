"""KRPC wire codec: datagram bytes <-> the typed messages of ``messages.py``.

``decode`` is where untrusted input becomes typed data, so it validates every field the node
relies on and raises ``KrpcError`` - and only ``KrpcError`` - for anything else. The error says
enough for the node to answer a broken *query* with a KRPC error (``tid``, ``query``, ``code``,
a short ``reason``) and for the packet log to show what was wrong.

The policy is "strict about what we use, liberal about the rest": unknown keys are ignored
everywhere (forward compatibility), an unknown method is a valid ``UnknownQuery`` (the node answers
204), error messages are accepted with extra keys (libtorrent adds an ``r`` dict) or a missing
message text, but a field we act on with the wrong type or length is a protocol error (203).

``encode`` writes canonical bencode. ``describe`` renders a one-line summary for the packet log.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from itertools import starmap

from dhtviewer.dht import bencoding, bloom, common_queries, compact, items
from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.messages import (
    NO_FIELDS,
    PROTOCOL_ERROR,
    Addr,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    GetQuery,
    Message,
    NodeInfo,
    PingQuery,
    PutQuery,
    Query,
    Response,
    SampleInfohashesQuery,
    UnknownQuery,
    method_of,
)

__all__ = [
    "MAX_TID_LEN",
    "KrpcError",
    "decode",
    "describe",
    "encode",
    "encode_common_response",
    "value_entry",
]

MAX_TID_LEN = 32
"""Longest accepted transaction id. Clients use 2 to 4 bytes; a longer one is refused (and not
echoed back in an error reply, which would let a small query buy a larger reply)."""

_ID_LEN = 20
_KEY_LEN = 32  # BEP 44 ed25519 public key
_SIG_LEN = 64  # BEP 44 ed25519 signature
_FILTER_LEN = 256  # BEP 33 Bloom filter
_VALUE_DEPTH = 4
"""Nesting a BEP 44 value may use inside a datagram on top of the message's own three levels
(the node's ``max_bencode_depth`` bounds the whole datagram first)."""


class KrpcError(Exception):
    """A datagram that is not a valid KRPC message.

    ``code``: the KRPC error code an answer should carry (203 for every malformation).
    ``reason``: short, human-readable, ASCII; safe to send back in an error reply.
    ``tid``: the transaction id if the message had a usable one, else None.
    ``query``: True if the message identified itself as a query (``y=q``); only queries are
    answered with an error, never responses or errors.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: int = PROTOCOL_ERROR,
        tid: bytes | None = None,
        query: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.tid = tid
        self.query = query


class _Invalid(Exception):
    """Internal: a field failed validation; ``decode`` adds the tid and query flag."""


# --- field readers --------------------------------------------------------------------------------
# Each takes the dict, the key, and raises _Invalid with a reason naming the key.
_Dict = dict[bytes, object]


def _name(key: bytes) -> str:
    return key.decode("ascii", "backslashreplace")


def _type_name(value: object) -> str:
    if isinstance(value, bytes):
        return "a byte string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, list):
        return "a list"
    return "a dict"


def _bytes(d: _Dict, key: bytes) -> bytes:
    value = d.get(key)
    if type(value) is bytes:
        return value
    if value is None:
        raise _Invalid(f"missing '{_name(key)}'")
    raise _Invalid(f"'{_name(key)}' must be a byte string, got {_type_name(value)}")


def _hash(d: _Dict, key: bytes) -> bytes:
    value = _bytes(d, key)
    if len(value) != _ID_LEN:
        raise _Invalid(f"'{_name(key)}' must be 20 bytes, got {len(value)}")
    return value


def _opt_int(d: _Dict, key: bytes) -> int | None:
    value = d.get(key)
    if value is None or type(value) is int:
        return value
    raise _Invalid(f"'{_name(key)}' must be an integer, got {_type_name(value)}")


def _opt_bytes(d: _Dict, key: bytes, length: int | None = None) -> bytes | None:
    if d.get(key) is None:
        return None
    value = _bytes(d, key)
    if length is not None and len(value) != length:
        raise _Invalid(f"'{_name(key)}' must be {length} bytes, got {len(value)}")
    return value


def _item_value(d: _Dict) -> bytes | None:
    """A BEP 44 ``v`` as its bencoded bytes. It must have been canonical on the wire (sorted
    dict keys): its hash and signature are over that form, and the BEP requires refusing
    anything else with 203."""
    if b"v" not in d:
        return None
    value = d[b"v"]
    if not items.canonical(value):
        raise _Invalid("'v' is not canonical bencode (dictionary keys out of order)")
    return bencoding.encode(value)


def _opt_flag(d: _Dict, key: bytes) -> bool:
    # Any non-zero integer is true, as libtorrent reads these flags.
    return bool(_opt_int(d, key))


def _want(d: _Dict) -> frozenset[bytes]:
    value = d.get(b"want")
    if value is None:
        return frozenset()
    if type(value) is not list:
        raise _Invalid(f"'want' must be a list, got {_type_name(value)}")
    for item in value:
        if type(item) is not bytes:
            raise _Invalid(f"'want' entries must be byte strings, got {_type_name(item)}")
    return frozenset(value)


def _port(d: _Dict, key: bytes, *, required: bool) -> int | None:
    value = _opt_int(d, key)
    if value is None:
        if required:
            raise _Invalid(f"missing '{_name(key)}'")
        return None
    if not 0 <= value <= 0xFFFF:
        raise _Invalid(f"'{_name(key)}' must be in 0..65535, got {value}")
    return value


# --- decode ---------------------------------------------------------------------------------------
def decode(data: bytes, *, max_depth: int = 8) -> Message:
    """Decode one datagram. Raises ``KrpcError`` (and nothing else) if it is not valid KRPC."""
    if type(data) is bytes and data[:12] == common_queries.HEAD and max_depth >= 2:
        query = common_queries.decode_common_query(data)
        if query is not None:
            return query
    return decode_general(data, max_depth=max_depth)


def decode_general(data: bytes, *, max_depth: int = 8) -> Message:
    """``decode`` without the fast path for common queries (``common_queries``): every datagram
    through the bencode decoder and the field checks. The tests compare the two."""
    try:
        top = bencoding.decode(data, max_depth)
    except bencoding.BencodeError as err:
        raise KrpcError(f"invalid bencode: {err}") from None
    if type(top) is not dict:
        raise KrpcError(f"message must be a dict, got {_type_name(top)}")
    t = top.get(b"t")
    tid = t if type(t) is bytes and len(t) <= MAX_TID_LEN else None
    y = top.get(b"y")
    try:
        if t is None:
            raise _Invalid("missing 't'")
        if tid is None:
            if type(t) is bytes:
                raise _Invalid(f"'t' longer than {MAX_TID_LEN} bytes")
            raise _Invalid(f"'t' must be a byte string, got {_type_name(t)}")
        v = top.get(b"v")
        # A malformed version string is not worth refusing a message over: treat it as absent.
        version = v if type(v) is bytes else None
        if y == b"q":
            return _decode_query(top, tid, version)
        if y == b"r":
            return _decode_response(top, tid, version)
        if y == b"e":
            return _decode_error(top, tid, version)
        if y is None:
            raise _Invalid("missing 'y'")
        if type(y) is bytes:
            raise _Invalid(f"unknown message type 'y'={y[:16]!r}")
        raise _Invalid(f"'y' must be a byte string, got {_type_name(y)}")
    except _Invalid as err:
        raise KrpcError(str(err), tid=tid, query=y == b"q") from None
    except compact.CompactError as err:
        raise KrpcError(str(err), tid=tid, query=y == b"q") from None


def _decode_query(top: _Dict, tid: bytes, version: bytes | None) -> Query:
    q = _bytes(top, b"q")
    a = top.get(b"a")
    if type(a) is not dict:
        if a is None:
            raise _Invalid("missing 'a'")
        raise _Invalid(f"'a' must be a dict, got {_type_name(a)}")
    sender = _hash(a, b"id")
    # BEP 43 puts ``ro`` at the top level; some clients put it in ``a``: accept both.
    ro = _opt_flag(top, b"ro") or _opt_flag(a, b"ro")
    if q == b"ping":
        return PingQuery(tid, sender, version=version, read_only=ro)
    if q == b"find_node":
        return FindNodeQuery(
            tid, sender, target=_hash(a, b"target"), want=_want(a), version=version, read_only=ro
        )
    if q == b"get_peers":
        return GetPeersQuery(
            tid,
            sender,
            info_hash=_hash(a, b"info_hash"),
            want=_want(a),
            bootstrap=_opt_flag(a, b"bs"),
            scrape=_opt_flag(a, b"scrape"),
            noseed=_opt_flag(a, b"noseed"),
            version=version,
            read_only=ro,
        )
    if q == b"announce_peer":
        info_hash = _hash(a, b"info_hash")
        implied = _opt_flag(a, b"implied_port")
        # With implied_port the port key is ignored by the receiver, so its absence is tolerated.
        port = _port(a, b"port", required=not implied) or 0
        if port == 0 and not implied:
            raise _Invalid("'port' must be in 1..65535 unless implied_port is set, got 0")
        token = _bytes(a, b"token")
        seed = _opt_int(a, b"seed")
        return AnnouncePeerQuery(
            tid,
            sender,
            info_hash=info_hash,
            port=port,
            token=token,
            implied_port=implied,
            seed=None if seed is None else bool(seed),
            version=version,
            read_only=ro,
        )
    if q == b"sample_infohashes":
        return SampleInfohashesQuery(
            tid, sender, target=_hash(a, b"target"), want=_want(a), version=version, read_only=ro
        )
    if q == b"get":
        return GetQuery(
            tid,
            sender,
            target=_hash(a, b"target"),
            seq=_opt_int(a, b"seq"),
            want=_want(a),
            version=version,
            read_only=ro,
        )
    if q == b"put":
        return _decode_put(a, tid, sender, version, ro)
    args = {key: value for key, value in a.items() if key != b"id"}
    return UnknownQuery(tid, sender, name=q, args=args, version=version, read_only=ro)


_RESPONSE_KEYS = frozenset(
    (
        b"id", b"nodes", b"nodes6", b"values", b"token", b"samples", b"p", b"interval", b"num",
        b"v", b"k", b"seq", b"sig", b"BFsd", b"BFpe",
    )
)
"""Keys of ``r`` that ``Response`` has fields for; the others go to ``Response.extra``."""


def _decode_put(a: _Dict, tid: bytes, sender: bytes, version: bytes | None, ro: bool) -> PutQuery:
    token = _bytes(a, b"token")
    v = _item_value(a)
    if v is None:
        raise _Invalid("missing 'v'")
    k = _opt_bytes(a, b"k", _KEY_LEN)
    seq = _opt_int(a, b"seq")
    sig = _opt_bytes(a, b"sig", _SIG_LEN)
    if k is not None:
        # A mutable put: signed over seq (and salt), so both halves must be there.
        if seq is None:
            raise _Invalid("missing 'seq' (a put with 'k' is a mutable put)")
        if sig is None:
            raise _Invalid("missing 'sig' (a put with 'k' is a mutable put)")
    # The salt's length is the storage node's check (error 207), not a decoding error.
    salt = _opt_bytes(a, b"salt") or b""
    return PutQuery(
        tid,
        sender,
        token=token,
        v=v,
        k=k,
        seq=seq if k is not None else None,
        sig=sig if k is not None else None,
        salt=salt if k is not None else b"",
        cas=_opt_int(a, b"cas") if k is not None else None,
        version=version,
        read_only=ro,
    )


def _decode_response(top: _Dict, tid: bytes, version: bytes | None) -> Response:
    r = top.get(b"r")
    if type(r) is not dict:
        if r is None:
            raise _Invalid("missing 'r'")
        raise _Invalid(f"'r' must be a dict, got {_type_name(r)}")
    sender = _hash(r, b"id")
    nodes = r.get(b"nodes")
    nodes6 = r.get(b"nodes6")
    values = r.get(b"values")
    token = r.get(b"token")
    samples = r.get(b"samples")
    ip = top.get(b"ip")
    extra = {key: value for key, value in r.items() if key not in _RESPONSE_KEYS} or NO_FIELDS
    if token is not None and type(token) is not bytes:
        raise _Invalid(f"'token' must be a byte string, got {_type_name(token)}")
    if values is not None and type(values) is not list:
        raise _Invalid(f"'values' must be a list, got {_type_name(values)}")
    if samples is not None:
        samples = _bytes(r, b"samples")
        if len(samples) % _ID_LEN:
            raise _Invalid(f"'samples' length must be a multiple of 20, got {len(samples)}")
    if ip is not None:
        ip = _bytes(top, b"ip")
        if len(ip) not in (compact.PEER4_LEN, compact.PEER6_LEN):
            raise _Invalid(f"'ip' must be 6 or 18 bytes, got {len(ip)}")
    # Cut-short records are left out and counted (``partial_records``), as deployed clients
    # read these fields; only a wrong type is an error.
    raw4 = _bytes(r, b"nodes") if nodes is not None else None
    raw6 = _bytes(r, b"nodes6") if nodes6 is not None else None
    return Response(
        tid,
        sender,
        nodes=compact.decode_nodes(raw4) if raw4 is not None else (),
        nodes6=compact.decode_nodes6(raw6) if raw6 is not None else (),
        values=compact.decode_values(values) if values else (),
        token=token,
        external_ip=compact.decode_peer(ip) if ip is not None else None,
        version=version,
        read_only=_opt_flag(top, b"ro"),
        port=_port(r, b"p", required=False),
        interval=_opt_int(r, b"interval"),
        num=_opt_int(r, b"num"),
        samples=(
            tuple([samples[i : i + _ID_LEN] for i in range(0, len(samples), _ID_LEN)])
            if samples
            else ()
        ),
        v=_item_value(r),
        k=_opt_bytes(r, b"k", _KEY_LEN),
        seq=_opt_int(r, b"seq"),
        sig=_opt_bytes(r, b"sig", _SIG_LEN),
        bf_seeds=_opt_bytes(r, b"BFsd", _FILTER_LEN),
        bf_peers=_opt_bytes(r, b"BFpe", _FILTER_LEN),
        extra=extra,
        partial_records=compact.partial_records(raw4, raw6, values or ()),
    )


def _decode_error(top: _Dict, tid: bytes, version: bytes | None) -> ErrorMessage:
    e = top.get(b"e")
    if type(e) is not list:
        if e is None:
            raise _Invalid("missing 'e'")
        raise _Invalid(f"'e' must be a list, got {_type_name(e)}")
    if not e or type(e[0]) is not int:
        raise _Invalid("'e' must start with an integer error code")
    # The message is informational: a missing or non-string one is tolerated.
    text = e[1] if len(e) > 1 else b""
    message = text.decode("utf-8", "replace") if type(text) is bytes else ""
    return ErrorMessage(tid, e[0], message, version=version)


# --- encode ---------------------------------------------------------------------------------------
def encode(msg: Message, *, version: bytes | None = None) -> bytes:
    """Encode ``msg`` as canonical bencode.

    ``v`` is the message's own ``version`` if set, else ``version``; omitted if both are None.
    Raises ``ValueError`` (``compact.CompactError`` or ``bencoding.BencodeError``) for a value
    that cannot be put on the wire, such as an address that is not an IP address.
    """
    if isinstance(msg, Response):
        return _encode_response(msg, msg.version if msg.version is not None else version)
    top: _Dict = {b"t": msg.tid}
    if isinstance(msg, Query):
        top[b"y"] = b"q"
        top[b"q"] = method_of(msg)
        top[b"a"] = _query_args(msg)
        if msg.read_only:
            top[b"ro"] = 1
    else:
        top[b"y"] = b"e"
        # "replace": a message that came from the wire may hold anything; never fail on it.
        top[b"e"] = [msg.code, msg.message.encode("utf-8", "replace")]
    v = msg.version if msg.version is not None else version
    if v is not None:
        top[b"v"] = v
    return bencoding.encode(top)


def _query_args(msg: Query) -> _Dict:
    a: _Dict = {b"id": msg.sender_id}
    if isinstance(msg, (FindNodeQuery, SampleInfohashesQuery)):
        a[b"target"] = msg.target
        if msg.want:
            a[b"want"] = sorted(msg.want)
    elif isinstance(msg, GetPeersQuery):
        a[b"info_hash"] = msg.info_hash
        if msg.want:
            a[b"want"] = sorted(msg.want)
        if msg.bootstrap:
            a[b"bs"] = 1
        if msg.scrape:
            a[b"scrape"] = 1
        if msg.noseed:
            a[b"noseed"] = 1
    elif isinstance(msg, GetQuery):
        a[b"target"] = msg.target
        if msg.seq is not None:
            a[b"seq"] = msg.seq
        if msg.want:
            a[b"want"] = sorted(msg.want)
    elif isinstance(msg, PutQuery):
        a[b"token"] = msg.token
        # Canonical bytes decode to a value that re-encodes to the very same bytes.
        a[b"v"] = bencoding.decode(msg.v, 100)
        if msg.k is not None:
            a[b"k"] = msg.k
            a[b"seq"] = msg.seq if msg.seq is not None else 0
            a[b"sig"] = msg.sig if msg.sig is not None else b""
            if msg.salt:
                a[b"salt"] = msg.salt
            if msg.cas is not None:
                a[b"cas"] = msg.cas
    elif isinstance(msg, AnnouncePeerQuery):
        a[b"info_hash"] = msg.info_hash
        a[b"port"] = msg.port
        a[b"token"] = msg.token
        if msg.implied_port:
            a[b"implied_port"] = 1
        if msg.seed is not None:
            a[b"seed"] = int(msg.seed)
    elif isinstance(msg, UnknownQuery):
        for key, value in msg.args.items():
            if key != b"id":
                a[key] = value
    return a


def _bstr(b: bytes) -> bytes:
    return b"%d:%s" % (len(b), b)


@lru_cache(maxsize=16384, typed=True)
def _value_entry(host: str, port: int) -> bytes:
    """One ``values`` list item, bencoded (``6:`` + compact peer). Cached: a busy swarm's peers
    go out in reply after reply, and packing them one by one was the bulk of a get_peers
    reply's cost. ``typed`` keeps ``True`` from hitting the entry of port 1."""
    return _bstr(compact.encode_peer((host, port)))


def encode_common_response(
    tid: bytes,
    sender_id: bytes,
    external_ip: Addr | None,
    version: bytes | None,
    nodes: tuple[NodeInfo, ...] = (),
    nodes6: tuple[NodeInfo, ...] = (),
    values: tuple[Addr, ...] = (),
    token: bytes | None = None,
    *,
    nodes_packed: bytes | None = None,
    nodes6_packed: bytes | None = None,
    values_packed: bytes | None = None,
) -> bytes:
    """The bytes of the ``Response`` with these fields (every other field unset): what a node
    answers to find_node and get_peers, written without building the ``Response`` (a serving
    node's hottest path). Byte-identical to ``encode`` of that Response, errors included (the tests
    check both); anything unusual goes through ``encode`` itself. ``nodes_packed`` /
    ``nodes6_packed``: ``nodes`` / ``nodes6`` already packed (what the routing table keeps,
    ``RoutingTable.closest_packed``), used instead of encoding them again; ``values_packed``
    likewise: the ``value_entry`` of each of ``values``, joined (``PeerStore.get_encoded``)."""
    if type(tid) is not bytes or type(sender_id) is not bytes:
        raise bencoding.BencodeError("tid and id must be bytes")
    out = [b"d"]
    if external_ip is not None:
        try:
            host, port = external_ip
            out += (b"2:ip", _value_entry(host, port))
        except (TypeError, ValueError) as err:
            if isinstance(err, compact.CompactError):
                raise
            out += (b"2:ip", _bstr(compact.encode_peer(external_ip)))
    out += (b"1:rd2:id", b"%d:%s" % (len(sender_id), sender_id))
    if nodes:
        packed = compact.encode_nodes(nodes) if nodes_packed is None else nodes_packed
        out += (b"5:nodes", b"%d:%s" % (len(packed), packed))
    if nodes6:
        packed = compact.encode_nodes6(nodes6) if nodes6_packed is None else nodes6_packed
        out += (b"6:nodes6", b"%d:%s" % (len(packed), packed))
    if token is not None:
        token = bytes(token)
        out += (b"5:token", b"%d:%s" % (len(token), token))
    if values:
        out.append(b"6:valuesl")
        if values_packed is not None:
            out.append(values_packed)
        else:
            try:
                out += list(starmap(_value_entry, values))
            except (TypeError, ValueError) as err:
                if isinstance(err, compact.CompactError):
                    raise
                out += [_bstr(p) for p in compact.encode_values(values)]
        out.append(b"e")
    out += (b"e1:t", b"%d:%s" % (len(tid), tid))
    if version is not None:
        version = bytes(version)
        out += (b"1:v", b"%d:%s" % (len(version), version))
    out.append(b"1:y1:re")
    return b"".join(out)


def value_entry(host: str, port: int) -> bytes:
    """One ``values`` entry as the wire carries it (``6:`` + the compact peer, or ``18:``
    for IPv6); ``compact.CompactError`` for an address that cannot be encoded."""
    return _value_entry(host, port)


def _encode_response(msg: Response, v: bytes | None) -> bytes:
    """Responses are what a node sends most (one per query it serves), so they are written
    straight to bytes in the canonical key order instead of going through a dict: about three
    times faster than the generic encoder, and byte-identical to it (the tests check that)."""
    if type(msg.tid) is not bytes or type(msg.sender_id) is not bytes:
        raise bencoding.BencodeError("tid and id must be bytes")
    if msg.extra:
        return _encode_response_generic(msg, v)
    out = [b"d"]
    ip = msg.external_ip
    if ip is not None:
        # The querier's address, as a ``values`` entry is: the same bytes, the same cache.
        try:
            host, port = ip
            out += (b"2:ip", _value_entry(host, port))
        except (TypeError, ValueError) as err:
            if isinstance(err, compact.CompactError):
                raise
            out += (b"2:ip", _bstr(compact.encode_peer(ip)))
    # keys of r, sorted as bytes (upper case first):
    # BFpe BFsd id interval k nodes nodes6 num p samples seq sig token v values
    out.append(b"1:rd")
    if msg.bf_peers is not None:
        out += (b"4:BFpe", _bstr(_sized(msg.bf_peers, _FILTER_LEN, "BFpe")))
    if msg.bf_seeds is not None:
        out += (b"4:BFsd", _bstr(_sized(msg.bf_seeds, _FILTER_LEN, "BFsd")))
    sid = msg.sender_id
    out += (b"2:id", b"%d:%s" % (len(sid), sid))
    if msg.interval is not None:
        out.append(b"8:intervali%de" % _int(msg.interval))
    if msg.k is not None:
        out += (b"1:k", _bstr(_sized(msg.k, _KEY_LEN, "k")))
    if msg.nodes:
        nodes = compact.encode_nodes(msg.nodes)
        out += (b"5:nodes", b"%d:%s" % (len(nodes), nodes))
    if msg.nodes6:
        out += (b"6:nodes6", _bstr(compact.encode_nodes6(msg.nodes6)))
    if msg.num is not None:
        out.append(b"3:numi%de" % _int(msg.num))
    if msg.port is not None:
        out.append(b"1:pi%de" % _int(msg.port))
    # BEP 51 requires ``samples`` in a reply that has ``num``, even when nothing is stored.
    if msg.samples or msg.num is not None:
        for s in msg.samples:
            if len(s) != _ID_LEN:
                raise compact.CompactError(f"a sample must be 20 bytes, got {len(s)}")
        out += (b"7:samples", _bstr(b"".join(msg.samples)))
    if msg.seq is not None:
        out.append(b"3:seqi%de" % _int(msg.seq))
    if msg.sig is not None:
        out += (b"3:sig", _bstr(_sized(msg.sig, _SIG_LEN, "sig")))
    if msg.token is not None:
        token = bytes(msg.token)
        out += (b"5:token", b"%d:%s" % (len(token), token))
    if msg.v is not None:
        # Already bencoded (the item's flattened form); checked, so the datagram stays valid.
        if type(msg.v) is not bytes:
            raise bencoding.BencodeError("v must be the bencoded value (bytes)")
        bencoding.decode(msg.v, 100)
        out += (b"1:v", msg.v)
    if msg.values:
        out.append(b"6:valuesl")
        try:
            # starmap: the cache lookups without a Python-level step per peer; anything but a
            # pair fails the call (TypeError) and is explained below.
            out += list(starmap(_value_entry, msg.values))
        except (TypeError, ValueError) as err:
            if isinstance(err, compact.CompactError):
                raise
            # Not (ip, port) pairs, or unhashable parts: compact explains with a CompactError.
            out += [_bstr(p) for p in compact.encode_values(msg.values)]
        out.append(b"e")
    out.append(b"e")
    if msg.read_only:
        out.append(b"2:roi1e")
    tid = msg.tid
    out += (b"1:t", b"%d:%s" % (len(tid), tid))
    if v is not None:
        v = bytes(v)
        out += (b"1:v", b"%d:%s" % (len(v), v))
    out.append(b"1:y1:re")
    return b"".join(out)


def _encode_response_generic(msg: Response, v: bytes | None) -> bytes:
    """A response with ``extra`` keys: ``r`` is the fast encoder's dict plus them, written by the
    generic encoder (custom methods are rare; the common replies keep the fast path)."""
    bare = bencoding.decode(_encode_response(replace(msg, extra=NO_FIELDS), v))
    assert type(bare) is dict
    r = bare[b"r"]
    assert type(r) is dict
    for key, value in msg.extra.items():
        if key in _RESPONSE_KEYS:
            raise bencoding.BencodeError(f"extra key {key!r} is a Response field")
        r[key] = value
    return bencoding.encode(bare)


def _sized(value: object, length: int, key: str) -> bytes:
    if type(value) is not bytes or len(value) != length:
        raise bencoding.BencodeError(f"'{key}' must be {length} bytes")
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise bencoding.BencodeError(f"expected an integer, got {type(value).__name__}")
    return value


# --- describe -------------------------------------------------------------------------------------
def _short(h: bytes) -> str:
    return h[:4].hex() + "…"


def _text(b: bytes, limit: int = 40) -> str:
    s = b.decode("ascii", "backslashreplace")
    s = s if len(s) <= limit else s[:limit] + "…"
    return _printable(s)


def _printable(s: str) -> str:
    # Peer-supplied text must not break the one-line packet log (newlines, escapes, NULs).
    return s if s.isprintable() else "".join(c if c.isprintable() else "�" for c in s)


def _filter_size(data: bytes | None) -> str:
    return "?" if data is None else f"{bloom.BloomFilter(data).estimate():.0f}"


def _want_text(want: frozenset[bytes]) -> str:
    return " want=" + ",".join(_text(w, 8) for w in sorted(want)) if want else ""


def describe(msg: Message) -> str:
    """One line for the packet log, e.g. ``get_peers info_hash=ab12cd34… want=n4``."""
    if isinstance(msg, ErrorMessage):
        return f"error {msg.code} {_printable(msg.message[:80])}".rstrip()
    if isinstance(msg, Response):
        parts = [f"response id={_short(msg.sender_id)}"]
        if msg.nodes:
            parts.append(f"nodes={len(msg.nodes)}")
        if msg.nodes6:
            parts.append(f"nodes6={len(msg.nodes6)}")
        if msg.values:
            parts.append(f"values={len(msg.values)}")
        if msg.token is not None:
            parts.append("token")
        if msg.samples or msg.num is not None:
            parts.append(f"samples={len(msg.samples)}")
        if msg.num is not None:
            parts.append(f"num={msg.num}")
        if msg.interval is not None:
            parts.append(f"interval={msg.interval}")
        if msg.v is not None:
            parts.append(f"v={len(msg.v)}B")
        if msg.k is not None:
            parts.append(f"k={_short(msg.k)}")
        if msg.seq is not None:
            parts.append(f"seq={msg.seq}")
        if msg.sig is not None:
            parts.append("sig")
        if msg.bf_seeds is not None or msg.bf_peers is not None:
            seeds, peers = _filter_size(msg.bf_seeds), _filter_size(msg.bf_peers)
            parts.append(f"scrape seeds~{seeds} peers~{peers}")
        if msg.external_ip is not None:
            parts.append(f"ip={format_addr(msg.external_ip)}")
        if msg.read_only:
            parts.append("ro")
        return " ".join(parts)
    if isinstance(msg, (FindNodeQuery, SampleInfohashesQuery)):
        text = f"{type(msg).method.decode()} target={_short(msg.target)}{_want_text(msg.want)}"
    elif isinstance(msg, GetPeersQuery):
        text = f"get_peers info_hash={_short(msg.info_hash)}{_want_text(msg.want)}"
        if msg.bootstrap:
            text += " bs"
        if msg.scrape:
            text += " scrape"
        if msg.noseed:
            text += " noseed"
    elif isinstance(msg, GetQuery):
        text = f"get target={_short(msg.target)}"
        if msg.seq is not None:
            text += f" seq>{msg.seq}"
        text += _want_text(msg.want)
    elif isinstance(msg, PutQuery):
        if msg.k is None:
            text = f"put immutable v={len(msg.v)}B"
        else:
            text = f"put mutable k={_short(msg.k)} seq={msg.seq} v={len(msg.v)}B"
            if msg.salt:
                text += f" salt={_text(msg.salt, 16)}"
            if msg.cas is not None:
                text += f" cas={msg.cas}"
    elif isinstance(msg, AnnouncePeerQuery):
        port_text = "implied_port" if msg.implied_port else f"port={msg.port}"
        text = f"announce_peer info_hash={_short(msg.info_hash)} {port_text}"
        if msg.seed is not None:
            text += f" seed={int(msg.seed)}"
    elif isinstance(msg, UnknownQuery):
        text = f"unknown query '{_text(msg.name)}'"
    else:
        text = method_of(msg).decode()
    return text + " ro" if msg.read_only else text
