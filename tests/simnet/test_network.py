"""Simnet without sockets, on an injected clock: what simulated nodes answer, joined clients in
their answers, misbehaving nodes, malformed input and the scenarios' Sybils. (The network's own
traffic: test_traffic.py; churn: test_churn.py.)"""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    PingQuery,
    Response,
    SampleInfohashesQuery,
)
from dhtviewer.dht.node_id import _bep42_crc
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.addresses import RESERVED_SUBNETS, ip_text
from dhtviewer.simnet.network import ANSWERS_BADLY, Simnet
from dhtviewer.simnet.options import ECLIPSE_SYBILS, parse_scenarios
from dhtviewer.simnet.profile import REALISTIC
from dhtviewer.simnet.scenarios import FAKE_PEERS
from tests.support.simnet_kit import CLIENT, CLIENT_ID, PORT, T0, ask, good, make, reply


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
    sw = net.swarms
    ih, storers, peers = sw.info_hash(0), sw.storers(0), sw.peers(0)
    assert len(peers) == REALISTIC.swarm_max_peers
    # The storers are the 8 answering nodes closest to the info-hash.
    assert storers == net.index.true_closest(int.from_bytes(ih, "big"), 8, ANSWERS_BADLY)
    r = reply(ask(net, storers[0], GetPeersQuery(b"g1", CLIENT_ID, info_hash=ih)))
    assert isinstance(r, Response) and r.token and len(r.nodes) == 8
    assert len(r.values) == 50 and set(r.values) <= set(peers)
    other = next(p for p in range(net.index.n) if p not in storers)
    r = reply(ask(net, other, GetPeersQuery(b"g2", CLIENT_ID, info_hash=ih)))
    assert isinstance(r, Response) and not r.values and r.token
    # A small swarm is handed out whole.
    rank = sw.count - 1
    r = reply(ask(net, sw.storers(rank)[3], GetPeersQuery(b"g3", CLIENT_ID,
                                                          info_hash=sw.info_hash(rank))))
    assert isinstance(r, Response) and list(r.values) == sw.peers(rank)


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
    sw = net.swarms
    with51 = [p for p in sw.storers(0) if net.supports_bep51(p)]
    without = next(p for p in range(net.index.n) if not net.supports_bep51(p))
    r = reply(ask(net, with51[0], SampleInfohashesQuery(b"s1", CLIENT_ID, target=bytes(20))))
    assert isinstance(r, Response) and r.interval == 21600 and r.num and r.num >= 1
    assert sw.info_hash(0) in r.samples
    assert set(r.samples) == {sw.info_hash(k) for k in sw.stored_ranks(with51[0])}
    e = reply(ask(net, without, SampleInfohashesQuery(b"s2", CLIENT_ID, target=bytes(20))))
    assert isinstance(e, ErrorMessage) and e.code == 204


def test_a_crawl_meets_a_realistic_share_of_nodes_with_samples() -> None:
    # The default: one swarm per two nodes, each stored by the 8 closest answering nodes, so
    # an answering BEP 51 node holds about 5 (not almost always none).
    net = make(20_000, REALISTIC, swarms=None)
    nums = []
    for pos in range(0, net.index.n, 37):
        if net.index.flags[pos] & ANSWERS_BADLY or not net.supports_bep51(pos):
            continue
        out = ask(net, pos, SampleInfohashesQuery(b"s3", CLIENT_ID, target=bytes(20)),
                  src=("127.0.130.3", 4000))
        r = reply(out) if out else None  # 1% are lost
        if isinstance(r, Response):
            nums.append(r.num or 0)
            assert len(r.samples) == min(20, r.num or 0)
    assert len(nums) > 100
    with_samples = sum(1 for x in nums if x) / len(nums)
    assert 0.9 < with_samples < 1.0
    assert 4.0 < sum(nums) / len(nums) < 7.0


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
    assert 0.20 < silent / n < 0.26  # dead + away + read-only (+ the few not joined yet)
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


def test_eclipse_sybils_surround_the_target_and_hide_the_swarm() -> None:
    base = make()
    ih = base.swarms.info_hash(0)
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
    ih = net.swarms.info_hash(0)
    sybil = next(p for p, (c, _) in net.clusters_of.items() if c.target == ih)
    r = reply(ask(net, sybil, GetPeersQuery(b"p1", CLIENT_ID, info_hash=ih)))
    assert isinstance(r, Response) and len(r.values) == FAKE_PEERS
    assert not set(r.values) & set(net.swarms.peers(0))
    # The fake peers live where no node does (one reserved /24), however large the network.
    ips = [int.from_bytes(bytes(int(x) for x in host.split(".")), "big") for host, _ in r.values]
    assert len({ip >> 8 for ip in ips}) == 1
    for ip in ips:
        assert net.index.at_ip(ip) < 0
        assert net.plan.first <= ip < net.plan.first + (RESERVED_SUBNETS << 8)


@pytest.mark.parametrize(
    ("spec", "message"),
    [(["eclipse"], "target"), (["eclipse:xyz"], "eclipse"), (["flood"], "rate"),
     (["flood:-1"], "must be"), (["churn:abc"], "not a number"), (["storm"], "unknown")],
)
def test_bad_scenarios_are_refused(spec: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_scenarios(spec)


def test_closest_says_which_ids_fail_bep42() -> None:
    net = make(5000, REALISTIC)
    rows = net.closest(bytes(20), 200)
    fails = sum(1 for r in rows if not r["bep42"])
    assert 0.35 < fails / len(rows) < 0.65  # the profile's half
    for r in rows[:40]:  # against the core's CRC (without its exemption of loopback)
        node_id = bytes.fromhex(str(r["id"]))
        crc = _bep42_crc(str(r["addr"]).rsplit(":", 1)[0], node_id[19])
        valid = node_id[:2] == (crc >> 16).to_bytes(2, "big") and (
            node_id[2] & 0xF8 == (crc >> 8) & 0xF8)
        assert r["bep42"] == valid


def test_a_serving_process_reports_clients_once_a_second_with_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = make()
    net.become_server(0)
    pos = good(net)
    for i in range(5):  # one client, five queries within a second: one report
        ask(net, pos, PingQuery(b"r" + bytes([i]), CLIENT_ID), now=T0 + 0.1 * i)
    assert [type(m).__name__ for m in net.uplink] == ["Heard"]
    ask(net, pos, PingQuery(b"r9", CLIENT_ID), now=T0 + 1.2)  # a second later: the count
    assert len(net.uplink) == 2 and net.uplink[1].queries == 5
    assert len(net.members) == 0  # the coordinator decides who is a member
    monkeypatch.setattr("dhtviewer.simnet.network.MAX_REPORTED", 100)
    for i in range(1000):  # a flood from forged sources
        ask(net, pos, PingQuery(b"ff", CLIENT_ID), src=(f"127.0.{140 + i // 250}.{i % 250}", 9))
    assert len(net._reported) <= 100
    assert len(net.uplink) == 1002
