"""BEP 44 get and put through the core, on a 200-node simulated network: immutable and mutable
(with salt) items are stored on the K closest and found again; seq handling, cas, refusals and
rejections are reported the way a user needs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.items import Item
from dhtviewer.dht.node_id import distance
from dhtviewer.sim import SimNetwork
from dhtviewer.sim.network import SimNode

SEED = bytes(range(32))


@pytest.fixture(scope="module")
def net() -> Iterator[SimNetwork]:
    network = SimNetwork(44)
    network.add_nodes(200)
    network.bootstrap_all()
    yield network


def run(net: SimNetwork, node: SimNode, start: object, kind: type) -> object:
    events = net.watch(node)
    events.clear()
    lid = net.call(node, start)  # type: ignore[arg-type]
    assert net.run_until(
        lambda: any(isinstance(e, kind) and e.lookup_id == lid for e in events), 120
    )
    return next(e for e in events if isinstance(e, kind) and e.lookup_id == lid)


def put(net: SimNetwork, node: SimNode, req: PutRequest) -> ev.ItemPutFinished:
    done = run(net, node, lambda d, now: d.put_item(req, now), ev.ItemPutFinished)
    assert isinstance(done, ev.ItemPutFinished)
    return done


def get(net: SimNetwork, node: SimNode, target: bytes, salt: bytes = b"") -> ev.ItemGetFinished:
    done = run(net, node, lambda d, now: d.get_item(target, now, salt=salt), ev.ItemGetFinished)
    assert isinstance(done, ev.ItemGetFinished)
    return done


def true_closest(net: SimNetwork, target: bytes, k: int = 8) -> set[tuple[str, int]]:
    live = sorted(net.live_nodes(), key=lambda sn: distance(sn.node_id, target))
    return {sn.addr for sn in live[:k]}


def test_immutable_put_then_get(net: SimNetwork) -> None:
    a, b = net.nodes[0], net.nodes[100]
    req = PutRequest([b"hello", 44])
    done = put(net, a, req)
    assert done.target == Item.immutable([b"hello", 44]).target and done.seq is None
    assert set(done.stored_at) == true_closest(net, done.target)
    assert done.failed == ()
    got = get(net, b, done.target)
    assert got.value == b"l5:helloi44ee" and got.public_key is None and got.rejected == 0
    assert got.holders and set(got.holders) <= set(done.stored_at)
    # An immutable get stops at its first copy: far fewer than K holders needed.
    assert len(got.holders) >= 1


def test_mutable_put_with_salt_seq_grows_and_get_finds_the_newest(net: SimNetwork) -> None:
    a, b = net.nodes[1], net.nodes[150]
    first = put(net, a, PutRequest(b"one", seed=SEED, salt=b"salt"))
    assert first.seq == 1 and len(first.stored_at) == 8
    again = put(net, a, PutRequest(b"one", seed=SEED, salt=b"salt"))
    assert again.seq == 1 and len(again.stored_at) == 8  # same value: a refresh
    second = put(net, b, PutRequest(b"two", seed=SEED, salt=b"salt"))
    assert second.seq == 2 and len(second.stored_at) == 8
    got = get(net, net.nodes[42], second.target, b"salt")
    assert got.value == b"3:two" and got.seq == 2 and len(got.holders) == 8
    assert got.signature == Item.signed(SEED, b"two", 2, b"salt").signature


def test_an_old_seq_is_refused_with_302_everywhere(net: SimNetwork) -> None:
    node = net.nodes[2]
    put(net, node, PutRequest(b"new", seed=SEED, salt=b"seq", seq=5))
    stale = put(net, node, PutRequest(b"old", seed=SEED, salt=b"seq", seq=3))
    assert stale.stored_at == () and len(stale.failed) == 8
    assert all(why.startswith("error 302") for _, why in stale.failed)


def test_wrong_salt_rejections_say_why(net: SimNetwork) -> None:
    done = put(net, net.nodes[3], PutRequest(b"v", seed=SEED, salt=b"right"))
    events = net.watch(net.nodes[60])
    got = get(net, net.nodes[60], done.target, b"wrong")
    assert got.value is None and got.rejected >= 1
    assert got.reasons == ("SHA-1 of key and salt does not match the target",)
    rejected = [e for e in events if isinstance(e, ev.ItemRejected)]
    assert len(rejected) == got.rejected


def test_get_of_a_missing_item_ends_empty(net: SimNetwork) -> None:
    got = get(net, net.nodes[4], b"\x42" * 20)
    assert got.value is None and got.holders == () and got.rejected == 0


def test_bad_requests_fail_at_the_call() -> None:
    with pytest.raises(ValueError):
        PutRequest(b"x" * 1000)
    with pytest.raises(ValueError):
        PutRequest(b"x", seed=SEED, salt=b"s" * 65)
    with pytest.raises(ValueError):
        PutRequest(b"x", salt=b"s")  # salt without a key
    with pytest.raises(ValueError):
        PutRequest(b"x", seed=b"short")


def test_cancel_during_the_put_round_reports_what_is_known(net: SimNetwork) -> None:
    node = net.nodes[5]
    events = net.watch(node)
    events.clear()
    lid = net.call(node, lambda d, now: d.put_item(PutRequest(b"c"), now))
    assert net.run_until(
        lambda: any(isinstance(e, ev.LookupFinished) and e.lookup_id == lid for e in events), 60
    )
    net.call(node, lambda d, now: d.cancel_lookup(lid, now))
    done = [e for e in events if isinstance(e, ev.ItemPutFinished)]
    assert len(done) == 1
    assert all(why == "cancelled" for _, why in done[0].failed)
