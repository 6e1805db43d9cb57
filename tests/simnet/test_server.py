"""The serving process over real UDP on loopback: replies leave from the asked node's address,
malformed datagrams are dropped and counted, the loopback guard, and the background queries a
joined client receives (at the configured rate, within 20%)."""

from __future__ import annotations

import socket
import time

import pytest

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import PingQuery, Query, Response
from dhtviewer.simnet.server import loopback_only
from tests.support.simnet_proc import SimnetProcess

CLIENT_IP = "127.0.131.1"


def test_loopback_guard() -> None:
    assert loopback_only("127.0.0.1", (127 << 24) | 5)
    assert loopback_only("127.64.1.2", (127 << 24) | (64 << 16) | 9)
    assert not loopback_only("10.0.0.1", (127 << 24) | 5)  # from elsewhere
    assert not loopback_only("192.168.1.7", (127 << 24) | 5)
    assert not loopback_only("127.0.0.1", (10 << 24) | 5)  # to a non-loopback address
    assert not loopback_only("::1", (127 << 24) | 5)


@pytest.fixture(scope="module")
def simnet() -> SimnetProcess:
    with SimnetProcess(["--nodes", "5000", "--profile", "friendly", "--member-rate", "100",
                        "--seed", "8"]) as sn:
        yield sn


def udp(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.settimeout(2.0)
    return s


def test_replies_leave_from_the_node_that_was_asked(simnet: SimnetProcess) -> None:
    with udp("127.0.131.9") as s:
        for host, port in simnet.routers:
            s.sendto(krpc.encode(PingQuery(b"p1", bytes(20), read_only=True)), (host, port))
            data, src = s.recvfrom(2048)
            assert src == (host, port)
            r = krpc.decode(data)
            assert isinstance(r, Response) and r.external_ip == s.getsockname()


def test_malformed_datagrams_are_dropped_and_counted(simnet: SimnetProcess) -> None:
    before = simnet.get("/stats")["counters"]["malformed"]
    host, port = simnet.routers[0]
    with udp("127.0.131.8") as s:
        s.settimeout(0.3)
        for junk in (b"", b"\xff" * 100, b"d1:ad2:id3:abcee", b"i-0e", b"le" * 300):
            s.sendto(junk, (host, port))
        with pytest.raises(TimeoutError):
            s.recvfrom(2048)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if simnet.get("/stats")["counters"]["malformed"] == before + 5:
            break
        time.sleep(0.05)
    assert simnet.get("/stats")["counters"]["malformed"] == before + 5


def test_a_joined_client_gets_background_queries_at_the_configured_rate(
    simnet: SimnetProcess,
) -> None:
    client_id = bytes(range(20))
    host, port = simnet.routers[1]
    with udp(CLIENT_IP) as s:
        s.sendto(krpc.encode(PingQuery(b"j1", client_id)), (host, port))
        received: list[float] = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, src = s.recvfrom(2048)
            except TimeoutError:
                break
            msg = krpc.decode(data)
            if isinstance(msg, Query):
                assert src[0].startswith("127.") and not src[0].startswith("127.0.")
                received.append(time.monotonic())
                s.sendto(krpc.encode(Response(msg.tid, client_id)), src)
    # Count over 3 s after the first second (the schedule starts within half an interval).
    start = received[0] + 0.5
    n = sum(1 for t in received if start <= t < start + 3.0)
    assert 0.8 * 300 <= n <= 1.2 * 300
    members = simnet.get("/members")["members"]
    mine = next(m for m in members if m["addr"].startswith(CLIENT_IP))
    assert mine["background_answered"] >= 0.9 * mine["background_sent"] - 5
