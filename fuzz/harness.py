"""The fuzzed function, importable without atheris (the regression tests replay inputs with it).

``one_input(data)`` splits ``data`` into up to ``MAX_RECORDS`` datagrams and feeds each to
``krpc.decode`` and to a freshly primed ``DhtNode`` (``tests.hostile.samples.primed_node``: fixed
id, RNG and clock, a ping and a lookup in flight), then fires the node's timer past every
timeout. Anything but ``KrpcError`` out of ``decode``, any exception out of the node, a broken
invariant, an oversized or unparsable datagram sent, or a reply to a query with another
transaction id, is a crash.

Record format, chosen so that a raw datagram is already a valid input (one record from the first
source address): ``[0xff][source index][length: 2 bytes, little endian][payload]``, repeated;
input not starting with 0xff is one whole datagram.
"""

from __future__ import annotations

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import Addr, ErrorMessage, Message, Query, Response
from tests.hostile.invariants import check_invariants
from tests.hostile.samples import SOURCES, T0, primed_node

MAX_RECORDS = 8
STEP = 0.25  # seconds between datagrams: enough to see rate budgets refill a little
MAX_ERROR_REPLY = 256  # an error we send for garbage stays tiny whatever the garbage was
MARK = 0xFF


def records(data: bytes) -> list[tuple[Addr, bytes]]:
    """The (source, datagram) pairs encoded in ``data``."""
    if not data or data[0] != MARK:
        return [(SOURCES[0], data)] if data else []
    out: list[tuple[Addr, bytes]] = []
    pos = 0
    while pos < len(data) and len(out) < MAX_RECORDS:
        if data[pos] != MARK or pos + 4 > len(data):
            out.append((SOURCES[0], data[pos:]))
            break
        src = SOURCES[data[pos + 1] % len(SOURCES)]
        n = int.from_bytes(data[pos + 2 : pos + 4], "little")
        out.append((src, data[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


def check_codec(datagram: bytes) -> Message | None:
    """Decode; a message that decodes must survive an encode/decode round trip unchanged."""
    try:
        msg = krpc.decode(datagram)
    except krpc.KrpcError:
        return None
    again = krpc.decode(krpc.encode(msg))
    assert again == msg, (msg, again)
    return msg


def one_input(data: bytes) -> None:
    node = primed_node()
    now = T0
    limit = node.settings.max_reply_bytes
    for src, datagram in records(data):
        now += STEP
        msg = check_codec(datagram)
        node.receive(datagram, src, now)
        for out, dst in node.datagrams_to_send():
            assert len(out) <= limit, f"sent {len(out)} bytes"
            sent = krpc.decode(out)
            if isinstance(sent, (Response, ErrorMessage)):
                assert dst == src, "a reply went to another address than the query's"
                if isinstance(msg, Query):
                    assert sent.tid == msg.tid, "reply with another transaction id"
            if isinstance(sent, ErrorMessage):
                assert len(out) <= MAX_ERROR_REPLY, f"{len(out)}-byte error reply"
        node.drain_events()
        check_invariants(node, now)
    now += node.settings.hard_timeout + 1
    node.handle_timer(now)
    node.datagrams_to_send()
    node.drain_events()
    check_invariants(node, now)
