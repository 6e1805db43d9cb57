"""Helpers for the tests of ``dhtviewer.simnet`` without sockets: a small network on an
injected clock, a query and its reply, a member answering what the network sends it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import GetPeersQuery, Message, Query, Response
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.network import Outgoing, Simnet, SimnetConfig
from dhtviewer.simnet.options import parse_scenarios
from dhtviewer.simnet.profile import FRIENDLY, Profile

PORT = 7000
CLIENT = ("127.0.130.1", 5555)
CLIENT_ID = bytes(range(20))
T0 = 1000.0


def make(nodes: int = 3000, profile: Profile = FRIENDLY, scenarios: list[str] | None = None,
         member_rate: float | None = None, swarms: int | None = 50, **kw: Any) -> Simnet:
    config = SimnetConfig(nodes=nodes, seed=1, profile=replace(profile, swarms=swarms, **kw),
                          scenarios=parse_scenarios(scenarios or []), member_rate=member_rate)
    return Simnet(config, [PORT], T0)


def ask(net: Simnet, pos: int, q: Query, src: tuple[str, int] = CLIENT,
        now: float = T0) -> list[Outgoing]:
    net.outbox = []
    net.receive(krpc.encode(q), src, net.index.ip(pos), PORT, now)
    out, net.outbox = net.outbox, []
    return out


def reply(out: list[Outgoing]) -> Message:
    assert len(out) == 1
    return krpc.decode(out[0].data)


def good(net: Simnet) -> int:
    """A position that answers properly (not silent, not misbehaving)."""
    bad = ix.SILENT | ix.ERRORING | ix.MALFORMED | ix.SYBIL
    return next(p for p in range(net.index.n) if not net.index.flags[p] & bad)


def drive(net: Simnet, seconds: float, step: float = 0.01, answer: bool = True) -> list[Outgoing]:
    """Run the network's clock; the member answers every query. Returns what was sent."""
    sent: list[Outgoing] = []
    now = T0
    steps = round(seconds / step)
    for _ in range(steps):
        now += step
        net.tick(now)
        out, net.outbox = net.outbox, []
        for o in out:
            sent.append(o)
            if not answer or o.dst != CLIENT:
                continue
            q = krpc.decode(o.data)
            if isinstance(q, Query):
                r = Response(q.tid, CLIENT_ID, token=b"tok" if isinstance(q, GetPeersQuery)
                             else None)
                net.receive(krpc.encode(r), CLIENT, o.src_ip, o.src_port, now)
    return sent


