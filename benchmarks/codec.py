"""Codec benchmark: encode/decode time per KRPC message, the cost of our strictness layer over
bencode.py, and the share of a serving node's CPU that the codec takes.

Three messages: a ping query, a find_node reply with 8 nodes, a get_peers reply with 50 peers
(plus the token and the 8 nodes our node always adds). For each:

- ``krpc``: our typed codec (``krpc.encode(msg)`` / ``krpc.decode(data)``, with validation and
  compact node/peer parsing: what the node really runs; common queries take the exact-layout
  fast path, replies are written directly);
- ``bencoding``: the codec of record on the equivalent dict: bencode.py behind our strictness
  layer (``bencoding.decode`` = the canonical-form check, then bencode.py);
- ``check``: the strictness layer's pass alone (``bencoding._check``);
- ``bencode.py``: the library alone on the same dict (``Bencode(encoding=None)``, bytes kept).

The load share feeds one DhtNode (no sockets) a stream of find_node and get_peers queries from
many addresses, as a flood would, and measures the codec's part two ways: cProfile self time in
``bencoding``/``krpc``/``compact``, and, without a profiler, the time to decode the same queries
and encode the same replies divided by the time the node took for everything.

Every time here is CPU time of this process (``time.process_time``), so other processes
competing for the CPU inflate the figures less than wall time would.
"""

from __future__ import annotations

import cProfile
import pstats
import random
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

import bencode

from benchmarks.common import BenchResult, Table, check_size, ms
from dhtviewer.dht import bencoding, krpc
from dhtviewer.dht.messages import (
    Addr,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    NodeInfo,
    PingQuery,
    Response,
)
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import random_id
from dhtviewer.dht.settings import CLIENT_VERSION, DhtSettings

NAME = "codec"
TITLE = "KRPC codec: time per message, and the codec's share of a serving node's CPU"

_REF = bencode.Bencode(encoding=None)
_CODEC_FILES = ("bencoding.py", "krpc.py", "compact.py", "common_queries.py", "decoder.py",
                "encoder.py")
"""Files whose self time is the codec's: ours under dhtviewer/dht/, bencode.py's under
bencodepy/."""

# size -> (timing budget per measurement in seconds, repeats, queries in the load stream)
_PARAMS = {"tiny": (0.02, 2, 1500), "medium": (0.1, 3, 10000), "full": (0.2, 5, 40000)}


def _public_ip(rng: random.Random) -> str:
    # 1.0.0.0 - 99.255.255.255 minus the private 10/8: plain public unicast.
    while True:
        a = rng.randrange(1, 100)
        if a != 10:
            return f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def sample_messages(rng: random.Random) -> dict[str, Message]:
    tid = b"\x12\x34"
    me = random_id(rng)
    nodes = tuple(NodeInfo(random_id(rng), (_public_ip(rng), rng.randrange(1024, 65536)))
                  for _ in range(8))
    peers = tuple((_public_ip(rng), rng.randrange(1024, 65536)) for _ in range(50))
    return {
        "ping query": PingQuery(tid, me, version=CLIENT_VERSION),
        "find_node reply, 8 nodes": Response(
            tid, me, nodes=nodes, external_ip=("1.2.3.4", 6881), version=CLIENT_VERSION
        ),
        "get_peers reply, 50 peers": Response(
            tid, me, nodes=nodes, values=peers, token=rng.randbytes(8),
            external_ip=("1.2.3.4", 6881), version=CLIENT_VERSION,
        ),
    }


def _per_op(fn: Callable[[], object], budget: float, repeats: int) -> float:
    """CPU seconds per call: best of ``repeats`` runs of about ``budget`` seconds each."""
    timer = timeit.Timer(fn, timer=time.process_time)
    number = 1
    while True:
        if timer.timeit(number) >= budget / 4 or number >= 1 << 20:
            break
        number *= 4
    return min(timer.repeat(repeats, number)) / number


# --- load share -----------------------------------------------------------------------------------
def _serving_node(rng: random.Random, info_hashes: list[bytes]) -> DhtNode:
    """A node as a busy public one looks: a full routing table, a peer store with swarms."""
    settings = DhtSettings(rate_limit=False)
    node = DhtNode(rng=rng, now=0.0, settings=settings)
    table = node.table
    for _ in range(400):
        table.heard_from(random_id(rng), (_public_ip(rng), rng.randrange(1024, 65536)), 0.0,
                         responded=True)
    for ih in info_hashes:
        for _ in range(60):
            node.store.add(ih, (_public_ip(rng), rng.randrange(1024, 65536)), 0.0)
    node.drain_events()
    node.datagrams_to_send()
    return node


def query_stream(rng: random.Random, count: int, info_hashes: list[bytes],
                 sources: int = 2000) -> list[tuple[bytes, Addr]]:
    """``count`` encoded queries: half find_node (random targets), half get_peers (half of those
    for stored info-hashes), from ``sources`` distinct addresses, each with its own id."""
    senders = [(random_id(rng), (_public_ip(rng), rng.randrange(1024, 65536)))
               for _ in range(sources)]
    out: list[tuple[bytes, Addr]] = []
    for i in range(count):
        sid, addr = senders[i % sources]
        tid = i.to_bytes(4, "big")[-2:]
        q: Message
        if i % 2:
            q = FindNodeQuery(tid, sid, target=random_id(rng), version=b"LT\x02\x01")
        else:
            ih = rng.choice(info_hashes) if i % 4 == 0 else random_id(rng)
            q = GetPeersQuery(tid, sid, info_hash=ih, version=b"LT\x02\x01")
        out.append((krpc.encode(q), addr))
    return out


def _drive(node: DhtNode, stream: list[tuple[bytes, Addr]],
           sink: list[tuple[bytes, Addr]] | None = None) -> None:
    now = 1.0
    for data, addr in stream:
        now += 0.0001
        node.receive(data, addr, now)
        out = node.datagrams_to_send()
        if sink is not None:
            sink.extend(out)
        node.drain_events()
        deadline = node.next_deadline()
        if deadline is not None and deadline <= now:
            node.handle_timer(now)
            node.datagrams_to_send()
            node.drain_events()


def load_share(count: int, seed: int = 7) -> dict[str, Any]:
    """Feed one node ``count`` queries; where its CPU goes (see the module docstring)."""
    clock = time.process_time
    rng = random.Random(seed)
    info_hashes = [random_id(rng) for _ in range(64)]
    stream = query_stream(rng, count, info_hashes)

    # 1. Profiled: where the node's CPU goes, and how often it calls the codec.
    node = _serving_node(random.Random(seed + 1), info_hashes)
    prof = cProfile.Profile(clock)
    prof.enable()
    _drive(node, stream)
    prof.disable()
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())  # tottime
    by_file: dict[str, float] = {f: 0.0 for f in _CODEC_FILES}
    calls = {"encode": 0, "decode": 0}
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        path = filename.replace("\\", "/")
        base = path.rsplit("/", 1)[-1]
        if base in by_file and ("/dht/" in path or "/bencodepy/" in path):
            by_file[base] += tottime
            if base == "krpc.py" and func in calls:
                calls[func] += ncalls
        rows.append((tottime, cumtime, ncalls, f"{_short_path(filename)}:{line}({func})"))
    rows.sort(reverse=True)

    # 2. Unprofiled, on a fresh node: the node's whole handling, then the codec work alone on
    # the same traffic, as many times as the node called it.
    node = _serving_node(random.Random(seed + 1), info_hashes)
    sent: list[tuple[bytes, Addr]] = []
    t0 = clock()
    _drive(node, stream, sent)
    node_s = clock() - t0
    replies = [krpc.decode(d) for d, _ in sent]
    t0 = clock()
    for data, _ in stream:
        krpc.decode(data)
    decode_s = clock() - t0
    t0 = clock()
    for msg in replies:
        krpc.encode(msg)
    encode_s = clock() - t0
    codec_s = (decode_s * calls["decode"] / max(1, len(stream))
               + encode_s * calls["encode"] / max(1, len(sent)))
    return {
        "queries": count,
        "replies": len(sent),
        "node_seconds": node_s,
        "node_queries_per_s": count / node_s,
        "node_us_per_query": node_s / count * 1e6,
        "decode_seconds": decode_s,
        "encode_seconds": encode_s,
        "node_encode_calls": calls["encode"],
        "node_decode_calls": calls["decode"],
        "codec_share_unprofiled": codec_s / node_s,
        "profile_total_seconds": total,
        "codec_share_profiled": sum(by_file.values()) / total if total else 0.0,
        "profile_share_by_file": {f: v / total for f, v in by_file.items()} if total else {},
        "hot_spots": [
            {"function": name, "tottime_share": tt / total, "cumtime_share": ct / total,
             "calls": n}
            for tt, ct, n, name in rows[:15]
        ],
    }


def _short_path(filename: str) -> str:
    f = filename.replace("\\", "/")
    for marker in ("/dhtviewer/", "/lib/python"):
        if marker in f:
            return f.split(marker, 1)[1] if marker == "/dhtviewer/" else f.rsplit("/", 1)[-1]
    return f.rsplit("/", 1)[-1]


# --- entry point ----------------------------------------------------------------------------------
def run(size: str = "full") -> BenchResult:
    check_size(size)
    budget, repeats, stream_len = _PARAMS[size]
    rng = random.Random(2024)
    messages = sample_messages(rng)
    per_msg = Table(
        "CPU time per message (µs; best of repeated runs)",
        ["message", "bytes", "krpc enc", "krpc dec", "bencoding enc", "bencoding dec",
         "check", "bencode.py enc", "bencode.py dec", "layer's share of dec"],
    )
    data: dict[str, Any] = {"messages": {}}
    for label, msg in messages.items():
        wire = krpc.encode(msg)
        plain = bencoding.decode(wire)
        figures = {
            "bytes": len(wire),
            "krpc_encode": _per_op(partial(krpc.encode, msg), budget, repeats),
            "krpc_decode": _per_op(partial(krpc.decode, wire), budget, repeats),
            "bencoding_encode": _per_op(partial(bencoding.encode, plain), budget, repeats),
            "bencoding_decode": _per_op(partial(bencoding.decode, wire), budget, repeats),
            "strict_check": _per_op(partial(bencoding._check, wire, 8), budget, repeats),
            "bencodepy_encode": _per_op(partial(_REF.encode, plain), budget, repeats),
            "bencodepy_decode": _per_op(partial(_REF.decode, wire), budget, repeats),
        }
        data["messages"][label] = figures

        def us(key: str, figures: dict[str, float] = figures) -> float:
            return figures[key] * 1e6

        per_msg.add(
            label, figures["bytes"], us("krpc_encode"), us("krpc_decode"),
            us("bencoding_encode"), us("bencoding_decode"), us("strict_check"),
            us("bencodepy_encode"), us("bencodepy_decode"),
            f"{figures['strict_check'] / figures['bencoding_decode']:.0%}",
        )
    per_msg.notes.append(
        "krpc = typed messages with validation and compact node/peer parsing (what the node "
        "runs); bencoding = bencode.py behind the strictness check; bencode.py = the library "
        "alone; all on raw dicts"
    )

    share = load_share(stream_len)
    data["load"] = share
    load = Table(
        f"Codec share of one node's CPU while serving {share['queries']:,} queries "
        "(find_node / get_peers mix, 2,000 sources, no sockets)",
        ["measure", "value"],
    )
    load.add("node handling, µs per query", share["node_us_per_query"])
    load.add("node capacity, queries/s on one core (no I/O)", share["node_queries_per_s"])
    load.add("codec share, unprofiled estimate", f"{share['codec_share_unprofiled']:.0%}")
    load.add("codec share, cProfile self time", f"{share['codec_share_profiled']:.0%}")
    for f, v in share["profile_share_by_file"].items():
        load.add(f"  of which {f}", f"{v:.0%}")
    load.notes.append(
        f"the node called krpc.encode {share['node_encode_calls']:,} times for "
        f"{share['replies']:,} datagrams sent, krpc.decode {share['node_decode_calls']:,} "
        f"times for {share['queries']:,} received"
    )
    hot = Table("Hot spots of the node under this load (cProfile, self time)",
                ["function", "self %", "cumulative %", "calls"])
    for h in share["hot_spots"][:10]:
        hot.add(h["function"], f"{h['tottime_share']:.1%}", f"{h['cumtime_share']:.1%}",
                h["calls"])
    return BenchResult(NAME, size, [per_msg, load, hot], data,
                       notes=[f"node handling {ms(share['node_seconds']):.0f} ms for the stream"])
