"""Reply datagrams of the simulated nodes, written straight to bytes.

A simulated node answers from precomputed pieces: its 20-byte id and compact node records come
from the index's record buffer, ``values`` entries are prebuilt per swarm, and the fixed parts
of the bencoding are constants. Building a reply is then one ``join``, several times cheaper
than making a ``dht.messages.Response`` and encoding it, and it has to be: the serving process
answers tens of thousands of queries per second on one core. The output is byte-identical to
``dht.krpc.encode`` of the same ``Response`` (the tests check this), so the protocol's one
definition stays ``dht/krpc.py``; errors and queries, which are rare here, use it directly.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["response"]


def _bstr(b: bytes) -> bytes:
    return b"%d:%s" % (len(b), b)


def response(
    tid: bytes,
    node_id: bytes,
    external_ip: bytes | None,
    version: bytes | None,
    *,
    nodes: bytes | None = None,
    token: bytes | None = None,
    values: Sequence[bytes] = (),
    interval: int | None = None,
    num: int | None = None,
    samples: bytes | None = None,
    scrape: tuple[bytes, bytes] | None = None,
    k: bytes | None = None,
    seq: int | None = None,
    sig: bytes | None = None,
    v: bytes | None = None,
) -> bytes:
    """A KRPC response. ``external_ip``: the asker's compact address (BEP 42 ``ip``);
    ``nodes``: concatenated compact node records; ``values``: bencoded items (``6:...``);
    ``samples``: concatenated info-hashes (BEP 51, with ``interval`` and ``num``); ``scrape``:
    the BEP 33 ``(BFsd, BFpe)`` filters; ``k``, ``seq``, ``sig``, ``v`` (already bencoded): a
    BEP 44 item."""
    out = [b"d2:ip6:" + external_ip if external_ip is not None else b"d", b"1:rd"]
    # keys of r in canonical order: BFpe BFsd id interval k nodes num samples seq sig token v
    # values
    if scrape is not None:
        out += (b"4:BFpe", _bstr(scrape[1]), b"4:BFsd", _bstr(scrape[0]))
    out += (b"2:id20:", node_id)
    if interval is not None:
        out.append(b"8:intervali%de" % interval)
    if k is not None:
        out += (b"1:k", _bstr(k))
    if nodes:
        out += (b"5:nodes", _bstr(nodes))
    if num is not None:
        out.append(b"3:numi%de" % num)
    if samples is not None or num is not None:
        out += (b"7:samples", _bstr(samples or b""))
    if seq is not None:
        out.append(b"3:seqi%de" % seq)
    if sig is not None:
        out += (b"3:sig", _bstr(sig))
    if token is not None:
        out += (b"5:token", _bstr(token))
    if v is not None:
        out += (b"1:v", v)
    if values:
        out += (b"6:valuesl", *values, b"e")
    out += (b"e1:t", _bstr(tid))
    if version is not None:
        out += (b"1:v", _bstr(version))
    out.append(b"1:y1:re")
    return b"".join(out)
