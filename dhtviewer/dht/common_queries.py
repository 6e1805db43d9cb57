"""A fast decoder for the three queries a DHT node serves most, in their usual byte layout.

Almost every query a node receives is a ping, find_node or get_peers written exactly as the
common clients write it: canonical bencode with the keys ``a`` (``id`` and the target or
info-hash), ``q``, optionally ``ro`` (BEP 43 read-only, as 1), ``t``, optionally ``v``, and
``y``, nothing else. For those, reading the
fields at their fixed offsets is several times cheaper than the general decoder (which builds
a dict tree, then validates it); decoding was the largest single cost of serving a query.

``decode_common_query`` accepts only that exact layout (one regular expression), so whatever
it returns is what the general decoder returns for the same bytes (the tests check this on
generated, captured and mutated datagrams). Anything else, including every malformed datagram,
gets ``None`` and goes through the general path, which decides and explains.
"""

from __future__ import annotations

import re

from dhtviewer.dht.messages import FindNodeQuery, GetPeersQuery, PingQuery, Query

__all__ = ["HEAD", "decode_common_query"]

HEAD = b"d1:ad2:id20:"
"""How every such query starts: the dict, the ``a`` dict and the querier's 20-byte ``id``."""

# Each alternative below is an exact bencode layout: fixed-length strings with their length
# prefixes spelled out, keys in canonical order, nothing optional but ``v``. A regex cannot tie
# a length prefix to the bytes that follow in general, so transaction ids of 1 to 4 bytes (what
# clients use) are listed one by one, and ``v`` is the 4 bytes every client sends.
_LAYOUT = re.compile(
    rb"d1:ad2:id20:(.{20})"
    rb"(?:6:target20:(.{20})e1:q9:find_node"
    rb"|9:info_hash20:(.{20})e1:q9:get_peers"
    rb"|e1:q4:ping)"
    rb"(2:roi1e)?"
    rb"1:t(?:2:(..)|4:(....)|1:(.)|3:(...))"
    rb"(?:1:v4:(....))?"
    rb"1:y1:qe",
    re.DOTALL,
)


def decode_common_query(data: bytes) -> Query | None:
    """The query in ``data`` if it has the common layout (see the module docstring), else None."""
    m = _LAYOUT.fullmatch(data)
    if m is None:
        return None
    sender, target, info_hash, ro, t2, t4, t1, t3, version = m.groups()
    tid = t2 or t4 or t1 or t3  # exactly one matched, and none is empty
    read_only = ro is not None
    if target is not None:
        return FindNodeQuery(tid, sender, target=target, version=version, read_only=read_only)
    if info_hash is not None:
        return GetPeersQuery(tid, sender, info_hash=info_hash, version=version,
                             read_only=read_only)
    return PingQuery(tid, sender, version=version, read_only=read_only)
