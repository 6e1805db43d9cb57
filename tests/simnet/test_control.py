"""The control API: ground truth, clear 4xx errors for bad requests (never a crash), every read
of the network on its serving loop, and 503 when the loop does not answer."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from dhtviewer.simnet.control import ControlApi, LoopBackend, LoopCalls
from dhtviewer.simnet.network import Simnet, SimnetConfig
from dhtviewer.simnet.profile import REALISTIC
from dhtviewer.simnet.server import SimnetServer


@pytest.fixture(scope="module")
def api() -> ControlApi:
    net = Simnet(SimnetConfig(nodes=5000, seed=2, profile=REALISTIC), [7000], 100.0)
    return ControlApi(net, clock=lambda: 101.0)


def test_closest_is_the_true_k_closest_answering_nodes(api: ControlApi) -> None:
    target = "ab" * 20
    status, body = api.handle("GET", f"/closest?target={target}&k=5")
    assert status == 200 and body["k"] == 5 and len(body["nodes"]) == 5
    t = int(target, 16)
    index = api.net.index
    expect = index.true_closest(t, 5, 1 | 2 | 4 | 8 | 16)
    assert [n["id"] for n in body["nodes"]] == [index.node_id(j).hex() for j in expect]
    dists = [int(n["id"], 16) ^ t for n in body["nodes"]]
    assert dists == sorted(dists)


def test_swarms_swarm_size_stats_members_routers(api: ControlApi) -> None:
    status, body = api.handle("GET", "/swarms?limit=3")
    assert status == 200 and body["count"] == 2500 and len(body["swarms"]) == 3  # nodes / 2
    sizes = [s["peers"] for s in body["swarms"]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == REALISTIC.swarm_max_peers
    ih = body["swarms"][0]["info_hash"]
    status, swarm = api.handle("GET", f"/swarm?info_hash={ih}")
    assert status == 200 and len(swarm["peers"]) == sizes[0] and len(swarm["stored_at"]) == 8
    status, size = api.handle("GET", "/size")
    assert size["nodes"] == 5000 and 0.7 * 5000 < size["responsive"] < 0.8 * 5000
    assert size["responsive"] < size["online"] < size["nodes"]
    status, stats = api.handle("GET", "/stats")
    assert status == 200 and stats["nodes"] == 5000 and stats["rss_mb"] > 0
    assert api.handle("GET", "/members")[1]["members"] == []
    assert len(api.handle("GET", "/routers")[1]["routers"]) == 4


@pytest.mark.parametrize(
    ("method", "path", "status", "fragment"),
    [
        ("GET", "/closest", 400, "missing parameter 'target'"),
        ("GET", "/closest?target=12", 400, "target"),
        ("GET", "/closest?target=" + "g" * 40, 400, "target"),
        ("GET", "/closest?target=" + "a" * 40 + "&k=0", 400, "k must be in"),
        ("GET", "/closest?target=" + "a" * 40 + "&k=-3", 400, "integer"),
        ("GET", "/closest?target=" + "a" * 40 + "&k=9999999", 400, "k must be in"),
        ("GET", "/closest?target=" + "a" * 40 + "&target=" + "b" * 40, 400, "2 times"),
        ("GET", "/closest?target=" + "a" * 40 + "&evil=1", 400, "unknown parameter"),
        ("GET", "/swarm?info_hash=" + "0" * 40, 400, "no swarm"),
        ("GET", "/swarms?limit=x", 400, "integer"),
        ("GET", "/nothing", 404, "no such resource"),
        ("POST", "/stats", 405, "not allowed"),
        ("GET", "/closest?" + "&".join(f"a{i}=1" for i in range(50)), 400, "bad request"),
    ],
)
def test_bad_requests_get_a_json_error(api: ControlApi, method: str, path: str, status: int,
                                       fragment: str) -> None:
    got, body = api.handle(method, path)
    assert got == status and fragment in body["error"]


def test_over_http(api: ControlApi) -> None:
    httpd = api.serve(0)
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        with urllib.request.urlopen(base + "/size", timeout=5) as r:
            assert r.status == 200 and json.load(r)["nodes"] == 5000
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/closest?target=zz", timeout=5)
        assert err.value.code == 400 and "target" in json.load(err.value)["error"]
        req = urllib.request.Request(base + "/size", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 405
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_requests_touch_the_network_only_on_its_loop() -> None:
    # The HTTP handlers run in their own threads; the network's state belongs to the serving
    # loop (announces expire there): every read must happen on the loop's thread.
    net = Simnet(SimnetConfig(nodes=3000, seed=3, profile=REALISTIC), [7000], 100.0)
    calls = LoopCalls()
    server = SimnetServer(net, [], calls=calls)
    seen: set[int] = set()
    for name in ("closest", "size"):
        original = getattr(net, name)

        def spy(*args: Any, _original: Any = original) -> Any:
            seen.add(threading.get_ident())
            return _original(*args)

        setattr(net, name, spy)
    original_peers = net.swarms.announced_peers

    def spy_peers(*args: Any) -> Any:
        seen.add(threading.get_ident())
        return original_peers(*args)

    net.swarms.announced_peers = spy_peers  # type: ignore[method-assign]
    stop = threading.Event()
    loop_thread = threading.Thread(target=server.run, args=(stop.is_set,))
    loop_thread.start()
    try:
        api = ControlApi(net, LoopBackend(calls, server))
        ih = net.swarms.info_hash(0).hex()
        for path in (f"/closest?target={ih}", "/size", f"/swarm?info_hash={ih}", "/stats"):
            status, body = api.handle("GET", path)
            assert status == 200, body
        assert seen == {loop_thread.ident}
    finally:
        stop.set()
        loop_thread.join(5)
        calls.close()


def test_a_stalled_loop_gets_503_not_a_hang() -> None:
    net = Simnet(SimnetConfig(nodes=1000, seed=3, profile=REALISTIC), [7000], 100.0)
    calls = LoopCalls()  # nobody runs it
    try:
        api = ControlApi(net, LoopBackend(calls, SimnetServer(net, []), timeout=0.2))
        status, body = api.handle("GET", "/size")
        assert status == 503 and "did not answer" in body["error"]
    finally:
        calls.close()
