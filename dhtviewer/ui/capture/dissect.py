"""What the packet log says about one packet: the one-line summary of its row and the detail
pane's text (the decoded message as a tree, then its bytes in hex and ASCII).

Written by hand because no library dissects KRPC: the decoding itself is the core's
(``krpc.decode``/``describe``, ``bencoding.decode``); this module only lays it out, unpacking the
compact node and peer strings (BEP 5, 32) and the BEP 42 ``ip`` value on the way.
"""

from __future__ import annotations

import ipaddress

from dhtviewer.dht import bencoding, krpc
from dhtviewer.dht.addresses import format_addr
from dhtviewer.ui.capture.records import Direction, Kind, Packet, format_ms
from dhtviewer.ui.models.nodes import format_version

MAX_DEPTH = 16  # deeper than KRPC needs: the detail pane shows odd messages too
HEX_WIDTH = 16
MAX_HEX_BYTES = 4096
"""The hex dump of a larger datagram stops here (the decoded tree above shows it all)."""


def _text(value: bytes) -> str:
    """Printable ASCII as a quoted string, anything else as hex."""
    if value and all(0x20 <= b < 0x7F for b in value):
        return '"' + value.decode("ascii") + '"'
    return f"{value.hex()} ({len(value)} bytes)"


def _compact_addr(value: bytes) -> str | None:
    """A BEP 5/32 compact peer (6 or 18 bytes) as text."""
    if len(value) == 6:
        ip = str(ipaddress.IPv4Address(value[:4]))
    elif len(value) == 18:
        ip = str(ipaddress.IPv6Address(value[:16]))
    else:
        return None
    return format_addr((ip, int.from_bytes(value[-2:], "big")))


def _compact_nodes(value: bytes, entry: int) -> list[str] | None:
    if not value or len(value) % entry:
        return None
    out = []
    for i in range(0, len(value), entry):
        chunk = value[i : i + entry]
        out.append(f"{chunk[:20].hex()}  {_compact_addr(chunk[20:])}")
    return out


def _pretty(value: object, indent: int, key: bytes | None = None) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k in sorted(value, key=lambda k: k if isinstance(k, bytes) else b""):
            name = k.decode("ascii", "replace") if isinstance(k, bytes) else repr(k)
            sub = _pretty(value[k], indent + 1, k if isinstance(k, bytes) else None)
            if len(sub) == 1:
                lines.append(f"{pad}{name}: {sub[0].strip()}")
            else:
                lines.append(f"{pad}{name}:")
                lines.extend(sub)
        return lines or [pad + "{}"]
    if isinstance(value, list):
        if key == b"values":
            addrs = [_compact_addr(v) if isinstance(v, bytes) else None for v in value]
            if all(addrs):
                return [f"{pad}{a}" for a in addrs] or [pad + "[]"]
        lines = []
        for item in value:
            lines.extend(_pretty(item, indent, None))
        return lines or [pad + "[]"]
    if isinstance(value, bytes):
        if key in (b"nodes", b"nodes6"):
            nodes = _compact_nodes(value, 26 if key == b"nodes" else 38)
            if nodes is not None:
                return [f"{pad}{n}" for n in nodes]
        if key == b"ip":
            addr = _compact_addr(value)
            if addr is not None:
                return [pad + addr]
        if key == b"v" and len(value) == 4:
            return [f"{pad}{format_version(value)} ({value.hex()})"]
        return [pad + _text(value)]
    return [pad + repr(value)]


def describe(data: bytes) -> str | None:
    """The codec's one-line description, or None if the message does not decode."""
    try:
        return krpc.describe(krpc.decode(data))
    except Exception:  # untrusted bytes: any failure just means "no summary", never a crash
        return None


def summary(p: Packet) -> str:
    """The row's Summary column (cached on the packet: most rows scroll by unseen)."""
    if p.summary is None:
        if p.kind in (Kind.MALFORMED, Kind.UNSOLICITED):
            p.summary = p.note
        else:
            # only our own and decoded datagrams get here, so this is a can't-happen guard
            p.summary = describe(p.data) or f"{p.size} bytes, does not decode"
    return p.summary


def hexdump(data: bytes, limit: int = MAX_HEX_BYTES) -> list[str]:
    """Offset, bytes in hex and as ASCII (unprintable bytes as dots), 16 to a line."""
    lines = []
    for off in range(0, min(len(data), limit), HEX_WIDTH):
        chunk = data[off : off + HEX_WIDTH]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{off:04x}  {hexes:<{HEX_WIDTH * 3 - 1}}  {text}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit:,} more bytes")
    return lines


def pair_text(p: Packet) -> str:
    """The pairing line of the detail pane."""
    if p.kind is Kind.QUERY:
        if p.peer is None:
            return "No reply (yet)"
        # Only our own queries have a round-trip time; our answer to a query that came in
        # leaves in the same step, so a time there would say nothing (and "?" looked broken).
        if p.rtt is None:
            return f"Reply: No. {p.peer:,}"
        return f"Reply: No. {p.peer:,} after {_ms(p.rtt)}"
    if p.kind in (Kind.RESPONSE, Kind.ERROR) and p.peer is not None:
        if p.rtt is None:
            return f"Reply to the query No. {p.peer:,}"
        return f"Reply to the query No. {p.peer:,} ({_ms(p.rtt)})"
    if p.kind in (Kind.RESPONSE, Kind.ERROR):
        return "The query is not in the capture (sent before it started, or forgotten)"
    return ""


def _ms(seconds: float) -> str:
    return f"{format_ms(seconds)} ms"


def detail(p: Packet, time_origin: float = 0.0) -> str:
    """The whole packet: a heading, the decoded message (bytes in hex unless printable), then
    its bytes."""
    where = "from" if p.direction is Direction.IN else "to"
    what = f"{p.kind.value} {p.method}" if p.method else p.kind.value
    head = [f"No. {p.seq:,}  {what} {where} {format_addr(p.addr)}, {p.size:,} bytes, "
            f"at {p.at - time_origin:.3f} s"]
    if p.kind in (Kind.MALFORMED, Kind.UNSOLICITED):
        head.append(p.note)
        if p.kind is Kind.UNSOLICITED:
            return "\n".join([*head, f"transaction id {p.tid.hex() or '(none)'}"])
        shown = (f"all {len(p.data):,} bytes" if len(p.data) >= p.size
                 else f"the first {len(p.data):,} of {p.size:,} bytes")
        return "\n".join([*head, "", f"Bytes ({shown}):", *hexdump(p.data)])
    description = describe(p.data)
    if description:
        head.append(description)
    pairing = pair_text(p)
    if pairing:
        head.append(pairing)
    try:
        body = _pretty(bencoding.decode(p.data, max_depth=MAX_DEPTH), 0)
    except ValueError as exc:
        body = [f"(not valid bencode: {exc})"]
    return "\n".join([*head, "", *body, "", f"Bytes ({len(p.data):,}):", *hexdump(p.data)])
