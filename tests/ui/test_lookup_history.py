"""The lookup history kept between runs: real lookups (simulated network) written and read back
with their paths and peers, bounded, and a damaged file skipped without losing the app."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.node_id import random_id
from dhtviewer.sim import SimNetwork
from dhtviewer.ui import lookup_history as history
from dhtviewer.ui.lookup_history import MAX_SAVED, load_history, save_history
from dhtviewer.ui.lookup_state import LookupState, LookupTracker

OFFSET = 1_700_000_000.0  # wall clock minus the events' clock, as the panel passes it


@pytest.fixture(scope="module")
def lookups() -> list[LookupState]:
    """Finished lookups of a simulated network with dead nodes: get_peers of announced
    info-hashes (peers returned by several nodes), find_node, and an announce."""
    net = SimNetwork(23, loss=0.05)
    net.add_nodes(150)
    net.bootstrap_all()
    net.kill_random(0.2)
    live = net.live_nodes()
    rng = random.Random(4)
    out = []
    for i in range(3):
        info_hash = random_id(rng)
        for j in range(3):
            net.announce(live[j + i], info_hash, 6881 + j)
        out.append(LookupState.from_events(net.lookup(live[10 + i], info_hash).events))
    out.append(LookupState.from_events(net.lookup(live[20], random_id(rng), kind="find_node")
                                       .events))
    return out


def same(a: LookupState, b: LookupState, shift: float) -> None:
    """``b`` is ``a`` read back on a clock ``shift`` seconds behind."""
    assert (a.target, a.kind, a.state) == (b.target, b.kind, b.state)
    sa, sb = a.summary(), b.summary()
    assert (sa.queried, sa.answered, sa.timed_out, sa.peers, sa.closest) == (
        sb.queried, sb.answered, sb.timed_out, sb.peers, sb.closest)
    assert sa.elapsed == pytest.approx(sb.elapsed)
    assert b.started_at + shift == pytest.approx(a.started_at)
    for node in a.nodes.values():
        back = b.nodes[node.addr]
        assert (back.node_id, back.depth, back.referrer, back.prefix_bits, back.outcome,
                back.closest_rank, back.nodes_returned) == (
            node.node_id, node.depth, node.referrer, node.prefix_bits, node.outcome,
            node.closest_rank, node.nodes_returned)
    assert len(b.edges()) == len(a.edges())
    assert list(b.peers) == list(a.peers)
    for addr, peer in a.peers.items():
        assert b.peers[addr].count == peer.count
        assert b.peers[addr].first_seen + shift == pytest.approx(peer.first_seen, abs=1e-3)


def test_lookups_come_back_with_their_paths_and_peers(
    lookups: list[LookupState], tmp_path: Path
) -> None:
    path = tmp_path / "state" / history.FILE_NAME
    params = {lk.lookup_id: {"k": 8, "alpha": 4} for lk in lookups}
    assert save_history(path, lookups, OFFSET, params) == len(lookups)
    # a later run: another clock, the same wall-clock times
    back = load_history(path, OFFSET + 500.0)
    assert [s.lookup_id for s, _ in back] == [-4, -3, -2, -1]  # never a live lookup's id
    assert all(p == {"k": 8, "alpha": 4} for _, p in back)
    assert any(peer.count > 1 for s, _ in back for peer in s.peers.values())
    for original, (restored, _) in zip(lookups, back, strict=True):
        same(original, restored, 500.0)


def test_only_the_newest_finished_user_lookups_are_kept(
    lookups: list[LookupState], tmp_path: Path
) -> None:
    target = lookups[0].target
    tracker = LookupTracker(capacity=500)
    for i in range(MAX_SAVED + 10):
        tracker.apply(ev.LookupStarted(i + 1, target, "get_peers", float(i)))
        tracker.apply(ev.LookupFinished(i + 1, target, "get_peers", (), (), 0, 0, 0.5, False,
                                        i + 0.5))
    tracker.apply(ev.LookupStarted(900, target, "refresh", 99.0))  # maintenance
    tracker.apply(ev.LookupFinished(900, target, "refresh", (), (), 0, 0, 0.1, False, 99.1))
    tracker.apply(ev.LookupStarted(901, target, "get_peers", 100.0))  # still running
    path = tmp_path / history.FILE_NAME
    assert save_history(path, tracker.lookups.values(), OFFSET, {}) == MAX_SAVED
    back = load_history(path, OFFSET)
    assert [s.started_at for s, _ in back] == [float(i) for i in range(10, MAX_SAVED + 10)]
    # a huge lookup is capped
    big = LookupState.from_events([ev.LookupStarted(1, target, "get_peers", 0.0)] + [
        ev.LookupQuerySent(1, random_id(random.Random(i)), (f"10.0.{i // 250}.{i % 250}", 1),
                           None, 0, 0.0) for i in range(history.MAX_NODES + 50)] + [
        ev.LookupFinished(1, target, "get_peers", (), (), 0, 0, 1.0, False, 1.0)])
    save_history(path, [big], OFFSET, {})
    assert len(load_history(path, OFFSET)[0][0].nodes) == history.MAX_NODES


def test_a_missing_or_damaged_history_is_an_empty_one(
    lookups: list[LookupState], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / history.FILE_NAME
    assert load_history(path, OFFSET) == []
    caplog.set_level(logging.WARNING)
    for text in ("{not json", json.dumps({"version": 99, "lookups": []}), "[]"):
        path.write_text(text)
        assert load_history(path, OFFSET) == []
    assert len(caplog.records) == 3
    # one bad record among good ones: the others come back
    save_history(path, lookups[:2], OFFSET, {})
    doc = json.loads(path.read_text())
    doc["lookups"][0]["nodes"][0][6] = "exploded"
    doc["lookups"][1]["kind"] = "bootstrap"  # still a valid kind
    path.write_text(json.dumps(doc))
    back = load_history(path, OFFSET)
    assert [s.target for s, _ in back] == [lookups[1].target]
    assert "record 1 skipped" in caplog.text


def test_a_lookup_of_both_families_comes_back_as_one_record_with_each_familys_path(
    lookups: list[LookupState], tmp_path: Path
) -> None:
    """BEP 32: the IPv4 and IPv6 lookups of one user lookup are one record; restored, it keeps
    both parts, and a host with one id in both DHTs joins no edge across them."""
    a, c = b"\x01" * 20, b"\x02" * 20
    a4, c4, a6, c6 = ("10.0.0.1", 1), ("10.0.0.3", 3), ("::1", 7001), ("::1", 7003)
    target, peer4, peer6 = b"\x03" * 20, ("10.9.9.9", 99), ("::1", 40000)
    tracker = LookupTracker()
    tracker.group((7, 8))
    for e in [
        ev.LookupStarted(7, target, "announce", 10.0, 4),
        ev.LookupStarted(8, target, "announce", 10.0, 6),
        ev.LookupQuerySent(7, a, a4, None, 0, 10.0),
        ev.LookupQuerySent(8, a, a6, None, 0, 10.0),
        ev.LookupResponse(8, a, a6, 0.1, 1, 0, 10.1),
        ev.LookupQuerySent(8, c, c6, a, 1, 10.1),
        ev.LookupResponse(7, a, a4, 0.1, 1, 0, 10.1),
        ev.LookupQuerySent(7, c, c4, a, 1, 10.1),
        ev.LookupResponse(8, c, c6, 0.1, 0, 1, 10.2),
        ev.PeersFound(8, c, (peer6,), 10.2),
        ev.LookupTimeout(7, c, c4, 12.1),
        ev.LookupFinished(8, target, "announce", (peer6,), ((c, c6), (a, a6)), 2, 2, 0.3,
                          False, 10.3, 6),
        ev.PeersFound(7, a, (peer4,), 10.4),
        ev.LookupFinished(7, target, "announce", (peer4,), ((a, a4),), 2, 1, 2.5, False,
                          12.5, 4),
        ev.AnnounceFinished(8, target, 6881, (c6,), (), 12.6),
        ev.AnnounceFinished(7, target, 6881, (a4,), (), 12.7),
    ]:
        tracker.apply(e)
    (dual,) = tracker.lookups.values()
    assert dual.finished and dual.families == (4, 6)
    path = tmp_path / history.FILE_NAME
    save_history(path, [lookups[0], dual], OFFSET, {})
    (single, _), (back, _) = load_history(path, OFFSET + 500.0)
    assert single.families == (4,) and single.lookup_id == -2
    assert back.lookup_id == -1 and sorted(back.parts) == [-3, -1]
    assert back.parts[-1] == 4 and back.families_text == "IPv4+IPv6"
    same(dual, back, 500.0)
    assert {(p.addr, n.addr) for p, n in back.edges()} == {(a4, c4), (a6, c6)}
    c_six, c_four = back.node_by_id(c, 6), back.node_by_id(c, 4)
    assert c_six is not None and c_six.addr == c6 and c_six.outcome == "returned peers"
    assert c_four is not None and c_four.addr == c4 and c_four.outcome == "timed out"
    assert back.announce_done and set(back.stored_at) == {a4, c6}
    # the restored record takes every part's events in the tracker, under its one row
    restored = LookupTracker()
    restored.add_oldest([back])
    assert restored.get(-3) is back and restored.get(-1) is back


def test_slow_queries_error_replies_and_the_scrape_estimate_come_back(tmp_path: Path) -> None:
    """Every outcome the graph draws survives a relaunch: a slow query that answered late, one
    that then timed out, one still slow when the lookup settled (abandoned), an error reply
    with its text; and a scrape's BEP 33 estimate beside the peers."""
    target, rng = b"\x05" * 20, random.Random(9)
    late, lost, abandoned, erring, giver = (random_id(rng) for _ in range(5))
    addr = {n: (f"10.1.0.{i + 1}", 6881) for i, n in enumerate(
        (late, lost, abandoned, erring, giver))}
    peer = ("10.9.0.1", 51413)
    original = LookupState.from_events([
        ev.LookupStarted(3, target, "get_peers", 20.0),
        *(ev.LookupQuerySent(3, n, addr[n], None, 0, 20.0) for n in addr),
        ev.LookupQuerySlow(3, late, addr[late], 20.8),
        ev.LookupQuerySlow(3, lost, addr[lost], 20.8),
        ev.LookupQuerySlow(3, abandoned, addr[abandoned], 20.8),
        ev.LookupQueryError(3, erring, addr[erring], "error 202: Server Error", 20.1),
        ev.LookupResponse(3, giver, addr[giver], 0.05, 0, 1, 20.05),
        ev.PeersFound(3, giver, (peer,), 20.05),
        ev.LookupResponse(3, late, addr[late], 1.5, 3, 0, 21.5),
        ev.LookupTimeout(3, lost, addr[lost], 22.0),
        ev.LookupFinished(3, target, "get_peers", (peer,), ((giver, addr[giver]),), 5, 2, 2.1,
                          False, 22.1),
        ev.ScrapeFinished(3, target, 12.4, 30.7, 8, 1, False, False, 22.4),
    ])
    outcomes = {n: original.nodes[a].outcome for n, a in addr.items()}
    assert outcomes == {late: "answered", lost: "timed out", abandoned: "abandoned",
                        erring: "error reply", giver: "returned peers"}
    path = tmp_path / history.FILE_NAME
    save_history(path, [original], OFFSET, {})
    ((back, _),) = load_history(path, OFFSET + 60.0)
    same(original, back, 60.0)
    assert {n: back.nodes[a].slow for n, a in addr.items()} == {
        n: original.nodes[a].slow for n, a in addr.items()}
    assert back.nodes[addr[late]].slow and not back.nodes[addr[giver]].slow
    assert back.nodes[addr[erring]].error == "error 202: Server Error"
    assert back.scrape is not None and original.scrape is not None
    assert (back.scrape.seeds, back.scrape.downloaders, back.scrape.nodes, back.scrape.legacy,
            back.scrape.saturated, back.scrape.cancelled) == (12.4, 30.7, 8, 1, False, False)
    # a record written before slow queries existed (its last node field null) still loads
    doc = json.loads(path.read_text())
    for node in doc["lookups"][0]["nodes"]:
        node[11] = None
    del doc["lookups"][0]["scrape"]
    path.write_text(json.dumps(doc))
    ((old, _),) = load_history(path, OFFSET)
    assert not any(n.slow for n in old.nodes.values()) and old.scrape is None
    assert old.nodes[addr[erring]].outcome == "error reply"
