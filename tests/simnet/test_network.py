"""Simnet without sockets, on an injected clock: what simulated nodes answer, members and
their background traffic, misbehaving nodes, malformed input, churn and the scenarios."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    Message,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
)
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.addresses import ip_text
from dhtviewer.simnet.network import Outgoing, Simnet, SimnetConfig
from dhtviewer.simnet.options import ECLIPSE_SYBILS, parse_scenarios
from dhtviewer.simnet.profile import FRIENDLY, REALISTIC

PORT = 7000
CLIENT = ("127.0.130.1", 5555)
CLIENT_ID = bytes(range(20))
T0 = 1000.0


def make(nodes: int = 3000, profile=FRIENDLY, scenarios: list[str] | None = None,
         member_rate: float | None = None, **kw: object) -> Simnet:
    config = SimnetConfig(nodes=nodes, seed=1, profile=replace(profile, swarms=50, **kw),
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


@pytest.fixture(scope="module")
def friendly() -> Simnet:
    return make()


def test_ping_find_node_and_bep42_ip(friendly: Simnet) -> None:
    net = friendly
    pos = good(net)
    out = ask(net, pos, PingQuery(b"aa", CLIENT_ID))
    r = reply(out)
    assert isinstance(r, Response) and r.sender_id == net.index.node_id(pos)
    assert r.external_ip == CLIENT and r.tid == b"aa"
    assert out[0].src_ip == net.index.ip(pos) and out[0].dst == CLIENT
    target = random.Random(1).randbytes(20)
    r = reply(ask(net, pos, FindNodeQuery(b"ab", CLIENT_ID, target=target)))
    assert isinstance(r, Response) and len(r.nodes) == 8
    t = int.from_bytes(target, "big")
    expect = [net.index.node_id(j) for j in net.index.known_closest(pos, t)]
    assert [n.id for n in r.nodes] == expect
    for n in r.nodes:  # every record is a real node at its real address
        j = net.index.position_of(n.id)
        assert n.addr == (ip_text(net.index.ip(j)), PORT)


def test_get_peers_finds_a_seeded_swarm_at_its_storers(friendly: Simnet) -> None:
    net = friendly
    swarm = net.swarms.by_size[0]
    storer = swarm.storers[0]
    r = reply(ask(net, storer, GetPeersQuery(b"g1", CLIENT_ID, info_hash=swarm.info_hash)))
    assert isinstance(r, Response) and r.token and len(r.nodes) == 8
    assert 0 < len(r.values) <= 50 and set(r.values) <= set(swarm.peers)
    other = next(p for p in range(net.index.n) if p not in swarm.storers)
    r = reply(ask(net, other, GetPeersQuery(b"g2", CLIENT_ID, info_hash=swarm.info_hash)))
    assert isinstance(r, Response) and not r.values and r.token


def test_announce_needs_the_askers_token_and_is_found_by_others(friendly: Simnet) -> None:
    net = friendly
    pos = good(net)
    ih = random.Random(4).randbytes(20)
    r = reply(ask(net, pos, GetPeersQuery(b"g3", CLIENT_ID, info_hash=ih)))
    assert isinstance(r, Response) and r.token is not None
    bad = reply(ask(net, pos, AnnouncePeerQuery(b"a0", CLIENT_ID, info_hash=ih, port=6000,
                                                token=r.token), src=("127.0.130.2", 5555)))
    assert isinstance(bad, ErrorMessage) and bad.code == 203  # bound to the asker's address
    ok = reply(ask(net, pos, AnnouncePeerQuery(b"a1", CLIENT_ID, info_hash=ih, port=6000,
                                               token=r.token)))
    assert isinstance(ok, Response)
    found = reply(ask(net, pos, GetPeersQuery(b"g4", bytes(20), info_hash=ih),
                      src=("127.0.130.9", 4000)))
    assert isinstance(found, Response) and found.values == ((CLIENT[0], 6000),)
    assert net.swarms.true_peers(ih, T0) == [(CLIENT[0], 6000)]


def test_sample_infohashes_only_from_bep51_clients(friendly: Simnet) -> None:
    net = friendly
    swarm = net.swarms.by_size[0]
    with51 = [p for p in swarm.storers if net.index.flags[p] & ix.BEP51]
    without = next(p for p in range(net.index.n) if not net.index.flags[p] & ix.BEP51)
    r = reply(ask(net, with51[0], SampleInfohashesQuery(b"s1", CLIENT_ID, target=bytes(20))))
    assert isinstance(r, Response) and r.interval == 21600 and r.num and r.num >= 1
    assert swarm.info_hash in r.samples
    e = reply(ask(net, without, SampleInfohashesQuery(b"s2", CLIENT_ID, target=bytes(20))))
    assert isinstance(e, ErrorMessage) and e.code == 204


def test_malformed_datagrams_are_dropped_and_counted(friendly: Simnet) -> None:
    net = friendly
    pos = good(net)
    before = net.counters.malformed
    for junk in (b"", b"hello", b"d1:ad2:id3:abcee", b"i42e", b"l" * 500, b"d1:q4:ping" * 3):
        net.outbox = []
        net.receive(junk, CLIENT, net.index.ip(pos), PORT, T0)
        assert net.outbox == []
    assert net.counters.malformed == before + 6
    # A query with a usable tid but a bad field is answered with error 203, as a real node would.
    net.receive(b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe", CLIENT, net.index.ip(pos), PORT, T0)
    e = reply(net.outbox)
    net.outbox = []
    assert isinstance(e, ErrorMessage) and e.code == 203 and e.tid == b"xy"
    # A datagram to an address no node has is counted, not answered.
    net.receive(krpc.encode(PingQuery(b"zz", CLIENT_ID)), CLIENT, (127 << 24) | 1, PORT, T0)
    assert net.outbox == [] and net.counters.to_unknown >= 1


def test_realistic_nodes_delay_lose_and_misbehave() -> None:
    net = make(20_000, REALISTIC)
    flags = net.index.flags
    delays, lost, silent = [], 0, 0
    for pos in range(0, 20_000, 7):
        out = ask(net, pos, PingQuery(b"pp", CLIENT_ID))
        if flags[pos] & ix.SILENT:
            assert out == []
            silent += 1
        elif not out:
            lost += 1
        else:
            delays.append(out[0].due - T0)
            if flags[pos] & ix.MALFORMED:
                with pytest.raises(krpc.KrpcError):
                    krpc.decode(out[0].data)
            elif flags[pos] & ix.ERRORING:
                assert isinstance(krpc.decode(out[0].data), ErrorMessage)
    n = len(range(0, 20_000, 7))
    assert 0.20 < silent / n < 0.26  # dead + away + read-only
    assert 0.0 < lost / n < 0.03
    delays.sort()
    median = delays[len(delays) // 2]
    assert 0.06 < median < 0.10  # log-normal RTT, median 80 ms
    # The same pair gets (about) the same RTT again.
    pos = good(net)
    a = ask(net, pos, PingQuery(b"p1", CLIENT_ID))[0].due - T0
    b = ask(net, pos, PingQuery(b"p2", CLIENT_ID))[0].due - T0
    assert abs(a - b) < 0.1 * a


def test_a_client_becomes_a_member_and_is_returned_by_its_neighbours(friendly: Simnet) -> None:
    net = make()
    member_id = net.index.node_id(100)[:10] + bytes(10)  # sits among the nodes near 100
    ask(net, 5, PingQuery(b"m1", member_id), src=("127.0.130.5", 6000))
    assert len(net.members) == 1
    # Read-only clients do not join.
    ask(net, 5, PingQuery(b"m2", bytes(20), read_only=True), src=("127.0.130.6", 6000))
    assert len(net.members) == 1
    # Nodes near the member list it when asked for its id.
    target = member_id
    hits = 0
    near = net.index.true_closest(int.from_bytes(target, "big"), 8)
    for pos in near:
        r = reply(ask(net, pos, FindNodeQuery(b"fn", CLIENT_ID, target=target)))
        assert isinstance(r, Response)
        hits += any(n.id == member_id and n.addr == ("127.0.130.5", 6000) for n in r.nodes)
    assert hits >= 6
    assert net.closest(target, 1)[0]["member"] is True


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


def test_members_get_background_queries_at_the_configured_rate() -> None:
    net = make(member_rate=50.0)
    ask(net, 1, PingQuery(b"j1", CLIENT_ID))
    sent = [o for o in drive(net, 10.0) if o.dst == CLIENT]
    assert 0.9 * 500 < len(sent) < 1.1 * 500
    kinds = [type(krpc.decode(o.data)).__name__ for o in sent]
    assert kinds.count("GetPeersQuery") > kinds.count("FindNodeQuery") > kinds.count("PingQuery")
    assert "AnnouncePeerQuery" in kinds  # after a get_peers that returned a token
    m = net.members.by_addr[CLIENT]
    assert m.answered > 0.95 * m.sent - 5
    assert {o.src_ip >> 24 for o in sent} == {127} and len({o.src_ip for o in sent}) > 400


def test_silent_members_are_forgotten() -> None:
    net = make(member_rate=20.0, member_timeout=3.0)
    ask(net, 1, PingQuery(b"j1", CLIENT_ID))
    drive(net, 5.0, answer=False)
    assert len(net.members) == 0


def test_eclipse_sybils_surround_the_target_and_hide_the_swarm() -> None:
    base = make()
    ih = base.swarms.by_size[0].info_hash
    net = make(scenarios=[f"eclipse:{ih.hex()}"])
    t = int.from_bytes(ih, "big")
    closest = net.closest(ih, 8)
    assert all(c["sybil"] for c in closest)
    sybils = [p for p in range(net.index.n) if net.index.flags[p] & ix.SYBIL]
    assert len(sybils) == ECLIPSE_SYBILS
    assert len({net.index.ip(p) >> 8 for p in sybils}) == 1  # one /24
    r = reply(ask(net, sybils[0], GetPeersQuery(b"e1", CLIENT_ID, info_hash=ih)))
    assert isinstance(r, Response) and not r.values
    assert all(net.index.flags[net.index.position_of(n.id)] & ix.SYBIL for n in r.nodes)
    # Honest nodes next to the target refer to the Sybils.
    honest = net.index.true_closest(t, 1, ix.SILENT | ix.SYBIL)[0]
    r = reply(ask(net, honest, FindNodeQuery(b"e2", CLIENT_ID, target=ih)))
    assert isinstance(r, Response)
    assert sum(bool(net.index.flags[net.index.position_of(n.id)] & ix.SYBIL) for n in r.nodes) >= 4


def test_poisoners_hand_out_fake_peers_for_popular_swarms() -> None:
    net = make(scenarios=["poison:2"])
    swarm = net.swarms.by_size[0]
    sybil = next(p for p, (c, _) in net.clusters_of.items() if c.target == swarm.info_hash)
    r = reply(ask(net, sybil, GetPeersQuery(b"p1", CLIENT_ID, info_hash=swarm.info_hash)))
    assert isinstance(r, Response) and r.values
    assert not set(r.values) & set(swarm.peers)


def test_spoof_and_flood_send_forged_and_extra_queries() -> None:
    net = make(member_rate=20.0, scenarios=["spoof:0.5", "flood:200"])
    ask(net, 1, PingQuery(b"j1", CLIENT_ID))
    sent = [o for o in drive(net, 2.0) if o.dst == CLIENT]
    forged = [o for o in sent if net.index.at_ip(o.src_ip) < 0]
    flood_ips = {net.index.ip(p) for p in net.flooders}
    flood = [o for o in sent if o.src_ip in flood_ips]
    assert 5 < len(forged) < 35
    assert 0.8 * 400 < len(flood) < 1.2 * 400
    assert net.counters.to_spoofed > 0  # the member's replies to forged sources went nowhere


def test_churn_moves_nodes_away_and_back() -> None:
    net = make(10_000, REALISTIC, scenarios=["churn:500"], session_seconds=1.0)
    away_before = net.index.count(ix.AWAY, 0)
    drive(net, 3.0, step=0.1, answer=False)
    assert 1000 < net.left < 2000
    assert net.came_back > 0
    assert abs(net.index.count(ix.AWAY, 0) - away_before) < 1000


@pytest.mark.parametrize(
    ("spec", "message"),
    [(["eclipse"], "target"), (["eclipse:xyz"], "eclipse"), (["flood"], "rate"),
     (["flood:-1"], "must be"), (["churn:abc"], "not a number"), (["storm"], "unknown")],
)
def test_bad_scenarios_are_refused(spec: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_scenarios(spec)
