"""Workers: one network served by several processes behaves as one network. Members learned by
one serving process appear in the answers of another's nodes, announces made to nodes of
different processes are one swarm in the ground truth, the control API adds the processes'
counters up, and the node flags (churn) are one shared copy."""

from __future__ import annotations

import os
import random
import socket
import time

import numpy as np
import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import (
    AnnouncePeerQuery,
    FindNodeQuery,
    GetPeersQuery,
    PingQuery,
    Response,
)
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.addresses import AddressPlan
from dhtviewer.simnet.workers import default_workers
from tests.support.simnet_proc import SimnetProcess

CLIENT_IP = "127.0.134.1"


@pytest.fixture(scope="module")
def simnet() -> SimnetProcess:
    with SimnetProcess(["--nodes", "20000", "--profile", "friendly", "--workers", "2",
                        "--ports", "2", "--seed", "5", "--member-rate", "0"]) as sn:
        yield sn


def udp(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.settimeout(5.0)
    return s


def query(s: socket.socket, q: object, to: tuple[str, int]) -> Response:
    s.sendto(krpc.encode(q), to)  # type: ignore[arg-type]
    while True:
        data, src = s.recvfrom(2048)
        msg = krpc.decode(data)
        if src == to and isinstance(msg, Response) and msg.tid == q.tid:  # type: ignore[attr-defined]
            return msg


def nodes_by_port(sn: SimnetProcess, target: bytes) -> dict[int, list[tuple[str, int]]]:
    out: dict[int, list[tuple[str, int]]] = {}
    for n in sn.get(f"/closest?target={target.hex()}&k=16")["nodes"]:
        host, port = n["addr"].rsplit(":", 1)
        out.setdefault(int(port), []).append((host, int(port)))
    return out


def test_two_serving_processes_and_a_coordinator(simnet: SimnetProcess) -> None:
    assert simnet.doc["workers"] == 2 and len(simnet.doc["ports"]) == 2
    stats = simnet.get("/stats")
    assert stats["processes"] == 3 and stats["pss_mb"] > 0
    assert 1 <= default_workers(4) <= 4


def test_a_member_heard_by_one_process_is_listed_by_the_others_nodes(
    simnet: SimnetProcess,
) -> None:
    target = random.Random(3).randbytes(20)
    by_port = nodes_by_port(simnet, target)
    port_a, port_b = simnet.doc["ports"]
    assert by_port.get(port_a) and by_port.get(port_b)
    # Our id: the target with its last bits changed, closer to it than any simulated node.
    my_id = target[:18] + bytes([target[18] ^ 1, target[19]])
    with udp(CLIENT_IP) as s:
        query(s, PingQuery(b"p1", my_id), by_port[port_a][0])  # joins through process A
        deadline = time.monotonic() + 10
        listed = False
        while not listed and time.monotonic() < deadline:
            r = query(s, FindNodeQuery(b"f1", bytes(20), target=target, read_only=True),
                      by_port[port_b][0])
            listed = any(n.id == my_id and n.addr == s.getsockname() for n in r.nodes)
            time.sleep(0.05)
        assert listed, "process B's node never listed the member process A heard"
    closest = simnet.get(f"/closest?target={target.hex()}&k=1")["nodes"][0]
    assert closest["member"] and closest["id"] == my_id.hex()


def test_announces_to_nodes_of_different_processes_are_one_swarm(simnet: SimnetProcess) -> None:
    info_hash = random.Random(4).randbytes(20)
    by_port = nodes_by_port(simnet, info_hash)
    peers = []
    for i, port in enumerate(simnet.doc["ports"]):
        node = by_port[port][0]
        with udp(f"127.0.134.{10 + i}") as s:
            got = query(s, GetPeersQuery(b"g" + bytes([i]), bytes(20), info_hash=info_hash,
                                         read_only=True), node)
            assert got.token
            ok = query(s, AnnouncePeerQuery(b"a" + bytes([i]), bytes(20), info_hash=info_hash,
                                            port=6000 + i, token=got.token, read_only=True),
                       node)
            assert isinstance(ok, Response)
            peers.append(f"127.0.134.{10 + i}:{6000 + i}")
    swarm = simnet.get(f"/swarm?info_hash={info_hash.hex()}")
    assert sorted(swarm["peers"]) == sorted(peers)
    assert len(swarm["stored_at"]) == 2
    assert simnet.get("/stats")["announced_peers"] == 2


def test_counters_are_the_sum_over_processes(simnet: SimnetProcess) -> None:
    before = simnet.get("/stats")["counters"]["queries"]
    target = random.Random(6).randbytes(20)
    by_port = nodes_by_port(simnet, target)
    with udp("127.0.134.30") as s:
        for port, nodes in by_port.items():
            for i, node in enumerate(nodes[:3]):
                query(s, PingQuery(bytes([port & 255, i]), bytes(20), read_only=True), node)
    asked = sum(min(3, len(n)) for n in by_port.values())
    assert simnet.get("/stats")["counters"]["queries"] == before + asked


def test_shared_flags_are_one_copy_across_fork() -> None:
    gen = np.random.default_rng(1)
    plan = AddressPlan.for_nodes(100)
    ips = plan.draw(100, gen)
    index = ix.NodeIndex(ix.random_ids(ips, 0.5, gen), ips, np.full(100, 7000, np.uint16),
                         np.zeros(100, np.uint8), np.zeros(100, np.uint8), plan)
    index.share_flags()
    pid = os.fork()
    if pid == 0:  # the child marks a node away, as the coordinator's churn does
        index.flags[42] |= ix.AWAY
        os._exit(0)
    os.waitpid(pid, 0)
    assert index.flags[42] & ix.AWAY
    assert index.count(ix.AWAY, 0) == 1
