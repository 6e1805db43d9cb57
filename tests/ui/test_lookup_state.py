"""LookupState and LookupTracker: the per-lookup record behind the path graph and the history."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.kinds import QueryRole
from dhtviewer.dht.node_id import random_id, random_id_with_prefix, shared_prefix_bits
from dhtviewer.sim import SimNetwork
from dhtviewer.ui.lookup_state import (
    ABANDONED,
    ANNOUNCED,
    ANNOUNCING,
    ANSWERED,
    CANCELLED,
    DONE,
    ERROR,
    IN_FLIGHT,
    NOT_STORED,
    PUTTING,
    RETURNED_PEERS,
    RUNNING,
    SLOW,
    STORED,
    TIMED_OUT,
    LookupState,
    LookupTracker,
)

RNG = random.Random(5)
TARGET = random_id(RNG)
A = random_id_with_prefix(RNG, TARGET, 8)
B = random_id_with_prefix(RNG, TARGET, 10)
S = random_id_with_prefix(RNG, TARGET, 4)  # a bootstrap router: asked before its id is known
C = random_id_with_prefix(RNG, TARGET, 20)
D = random_id_with_prefix(RNG, TARGET, 16)
E = random_id_with_prefix(RNG, TARGET, 25)
ADDR = {A: ("1.0.0.1", 6881), B: ("1.0.0.2", 6881), S: ("9.9.9.9", 6881),
        C: ("1.0.0.3", 6881), D: ("1.0.0.4", 6881), E: ("1.0.0.5", 6881)}
P1, P2, P3 = ("5.0.0.1", 1000), ("5.0.0.2", 2000), ("5.0.0.3", 3000)
LID = 7


def scripted_events() -> list[ev.Event]:
    """Seeds A, B (table) and S (router); A refers C and D; C refers E; B times out; C and D
    return peers; E is still in flight when the lookup settles."""
    return [
        ev.LookupStarted(LID, TARGET, "get_peers", 10.0),
        ev.LookupQuerySent(LID, A, ADDR[A], None, 0, 10.0),
        ev.LookupQuerySent(LID, B, ADDR[B], None, 0, 10.0),
        ev.LookupQuerySent(LID, None, ADDR[S], None, 0, 10.0),
        ev.LookupResponse(LID, A, ADDR[A], 0.1, 2, 0, 10.1),
        ev.LookupQuerySent(LID, C, ADDR[C], A, 1, 10.1),
        ev.LookupQuerySent(LID, D, ADDR[D], A, 1, 10.1),
        ev.LookupResponse(LID, S, ADDR[S], 0.2, 0, 0, 10.2),
        ev.LookupResponse(LID, C, ADDR[C], 0.2, 1, 2, 10.3),
        ev.PeersFound(LID, C, (P1, P2), 10.3),
        ev.LookupQuerySent(LID, E, ADDR[E], C, 2, 10.3),
        ev.LookupResponse(LID, D, ADDR[D], 0.25, 0, 2, 10.35),
        ev.PeersFound(LID, D, (P3, P1), 10.35),
        ev.LookupTimeout(LID, B, ADDR[B], 10.4),
        ev.LookupFinished(LID, TARGET, "get_peers", (P1, P2, P3),
                          ((C, ADDR[C]), (D, ADDR[D]), (A, ADDR[A]), (S, ADDR[S])),
                          6, 4, 0.5, False, 10.5),
    ]


def test_path_graph_records_depth_referrer_prefix_and_outcome() -> None:
    state = LookupState.from_events(scripted_events())
    assert list(state.nodes) == [ADDR[A], ADDR[B], ADDR[S], ADDR[C], ADDR[D], ADDR[E]]
    depth = {n.node_id: n.depth for n in state.nodes.values()}
    assert depth == {A: 0, B: 0, S: 0, C: 1, D: 1, E: 2}
    c_node = state.node_by_id(C)
    assert c_node is not None and c_node.referrer == A
    bits = {n.node_id: n.prefix_bits for n in state.nodes.values()}
    assert bits == {A: 8, B: 10, S: 4, C: 20, D: 16, E: 25}
    outcome = {n.node_id: n.outcome for n in state.nodes.values()}
    assert outcome == {A: ANSWERED, B: TIMED_OUT, S: ANSWERED, C: RETURNED_PEERS,
                       D: RETURNED_PEERS, E: ABANDONED}
    edges = {(p.node_id, c.node_id) for p, c in state.edges()}
    assert edges == {(A, C), (A, D), (C, E)}
    c = state.node_by_id(C)
    assert c is not None and c.rtt == pytest.approx(0.2) and c.nodes_returned == 1
    assert c.peers_returned == 2


def test_slow_queries_and_error_replies_have_their_own_outcomes() -> None:
    """A query past the short timeout shows as slow until it ends; an error reply is not a
    timeout (the node is alive), and says what the node answered."""
    events = scripted_events()[:4]  # A, B and S asked
    events += [
        ev.LookupQuerySlow(LID, A, ADDR[A], 10.3),
        ev.LookupQuerySlow(LID, B, ADDR[B], 10.3),
        ev.LookupQueryError(LID, None, ADDR[S], "error 204: method unknown", 10.35),
    ]
    state = LookupState.from_events(events)
    outcome = {n.addr: n.outcome for n in state.nodes.values()}
    assert outcome == {ADDR[A]: SLOW, ADDR[B]: SLOW, ADDR[S]: ERROR}
    assert state.nodes[ADDR[S]].error == "error 204: method unknown"
    s = state.summary()
    assert (s.in_flight, s.timed_out, s.answered) == (2, 0, 0)  # slow ones may still answer
    state.apply(ev.LookupResponse(LID, A, ADDR[A], 1.4, 0, 0, 11.4))  # A answers late
    state.apply(ev.LookupTimeout(LID, B, ADDR[B], 15.0))
    a, b = state.nodes[ADDR[A]], state.nodes[ADDR[B]]
    assert (a.outcome, a.slow, b.outcome, b.slow) == (ANSWERED, True, TIMED_OUT, True)
    assert state.nodes[ADDR[S]].slow is False
    assert IN_FLIGHT not in outcome.values()


def test_resends_and_the_probe_keep_the_node_as_it_was() -> None:
    """A resend to a silent node and the neighbourhood probe to an answered one go to nodes on
    the graph already: neither makes a new path node nor undoes an answer."""
    events = scripted_events()[:5]  # A answered; B and S in flight
    events += [
        ev.LookupQuerySent(LID, B, ADDR[B], None, 0, 10.2, QueryRole.RESEND),
        ev.LookupQuerySent(LID, A, ADDR[A], None, 0, 10.25, QueryRole.PROBE),
    ]
    state = LookupState.from_events(events)
    assert len(state.nodes) == 3
    assert state.nodes[ADDR[A]].outcome == ANSWERED
    assert state.nodes[ADDR[B]].outcome == IN_FLIGHT and state.nodes[ADDR[B]].sent_at == 10.0


def test_a_slow_query_still_open_when_the_lookup_settles_is_abandoned() -> None:
    events = [*scripted_events()[:4], ev.LookupQuerySlow(LID, B, ADDR[B], 10.3)]
    events.append(ev.LookupFinished(LID, TARGET, "get_peers", (), (), 3, 0, 0.5, False, 10.5))
    state = LookupState.from_events(events)
    assert state.nodes[ADDR[B]].outcome == ABANDONED


def test_seed_learns_its_id_from_its_answer() -> None:
    events = scripted_events()
    state = LookupState.from_events(events[:4])
    seed = state.nodes[ADDR[S]]
    assert seed.node_id is None and seed.prefix_bits is None
    state = LookupState.from_events(events[:8])
    seed = state.nodes[ADDR[S]]
    assert seed.node_id == S and seed.prefix_bits == shared_prefix_bits(S, TARGET)
    assert state.node_by_id(S) is seed


def test_peers_counted_per_returning_node_with_first_seen() -> None:
    state = LookupState.from_events(scripted_events())
    assert list(state.peers) == [P1, P2, P3]
    assert state.peers[P1].count == 2 and state.peers[P1].first_seen == 10.3
    assert state.peers[P2].count == 1
    assert state.peers[P3].first_seen == 10.35


def test_summary_while_running_and_after_finish() -> None:
    events = scripted_events()
    running = LookupState.from_events(events[:11])
    s = running.summary()
    assert (s.state, s.queried, s.answered, s.in_flight, s.timed_out) == (RUNNING, 6, 3, 3, 0)
    assert s.elapsed == pytest.approx(0.3)  # up to its latest event
    assert running.elapsed(now=12.0) == pytest.approx(2.0)
    assert running.closest_nodes() == []

    done = LookupState.from_events(events).summary()
    assert (done.state, done.queried, done.answered, done.in_flight, done.timed_out) == (
        DONE, 6, 4, 0, 1
    )
    assert done.peers == 3 and done.elapsed == pytest.approx(0.5)
    state = LookupState.from_events(events)
    assert [n.node_id for n in state.closest_nodes()] == [C, D, A, S]
    assert state.max_depth == 2


def test_announce_and_cancel_states() -> None:
    start = ev.LookupStarted(1, TARGET, "announce", 0.0)
    fin = ev.LookupFinished(1, TARGET, "announce", (), (), 0, 0, 1.0, False, 1.0)
    state = LookupState.from_events([start, fin])
    assert state.state == ANNOUNCING
    state.apply(ev.AnnounceFinished(1, TARGET, 6881, (ADDR[A],), (ADDR[B],), 1.5))
    assert state.state == ANNOUNCED and state.stored_at == (ADDR[A],)
    cancelled = ev.LookupFinished(1, TARGET, "announce", (), (), 0, 0, 1.0, True, 1.0)
    assert LookupState.from_events([start, cancelled]).state == CANCELLED


def test_put_get_and_scrape_outcomes() -> None:
    start = ev.LookupStarted(2, TARGET, "put", 0.0)
    fin = ev.LookupFinished(2, TARGET, "put", (), (), 0, 0, 1.0, False, 1.0)
    rejected = ev.ItemRejected(2, A, ADDR[A], "invalid signature", 0.5)
    state = LookupState.from_events([start, rejected, fin])
    assert state.state == PUTTING and state.rejections == {ADDR[A]: "invalid signature"}
    done = ev.ItemPutFinished(2, TARGET, None, None, (ADDR[C],), ((ADDR[D], "timeout"),), 1.2)
    assert state.apply(done)
    assert state.state == STORED and state.stored_at == (ADDR[C],)
    assert state.put is not None and state.put.failed == ((ADDR[D], "timeout"),)
    nowhere = ev.ItemPutFinished(2, TARGET, None, None, (), ((ADDR[D], "timeout"),), 1.2)
    assert LookupState.from_events([start, fin, nowhere]).state == NOT_STORED

    get = ev.LookupStarted(3, TARGET, "get", 0.0)
    got = ev.ItemGetFinished(3, TARGET, b"1:x", None, None, None, (ADDR[E],), 0, (), False, 1.0)
    state = LookupState.from_events(
        [get, ev.LookupFinished(3, TARGET, "get", (), (), 0, 0, 1.0, False, 1.0), got])
    assert state.state == DONE and state.item is got

    lookup = ev.LookupStarted(4, TARGET, "get_peers", 0.0)
    scrape = ev.ScrapeFinished(4, TARGET, 12.0, 30.5, 8, 1, False, False, 2.0)
    state = LookupState.from_events(
        [lookup, ev.LookupFinished(4, TARGET, "get_peers", (), (), 0, 0, 1.0, False, 1.0), scrape])
    assert state.scrape == scrape and state.state == DONE


def test_events_of_other_lookups_are_ignored() -> None:
    state = LookupState.from_events(scripted_events()[:2])
    assert not state.apply(ev.LookupQuerySent(LID + 1, B, ADDR[B], None, 0, 10.0))
    assert not state.apply(ev.LookupResponse(LID, B, ADDR[B], 0.1, 0, 0, 10.0))  # never asked
    assert state.queried == 1
    with pytest.raises(ValueError):
        LookupState.from_events(scripted_events()[1:])


def test_tracker_routes_events_and_evicts_oldest_finished_first() -> None:
    tracker = LookupTracker(capacity=2)
    for lid in (1, 2):
        tracker.apply(ev.LookupStarted(lid, TARGET, "find_node", float(lid)))
    tracker.apply(ev.LookupFinished(2, TARGET, "find_node", (), (), 0, 0, 1.0, False, 3.0))
    assert tracker.apply(ev.LookupQuerySent(1, A, ADDR[A], None, 0, 3.0)) is tracker.get(1)
    assert tracker.apply(ev.LookupQuerySent(99, A, ADDR[A], None, 0, 3.0)) is None
    assert tracker.apply(ev.MessageSent(ADDR[A], "q", b"ping", b"t", 10, b"", 3.0)) is None
    tracker.apply(ev.LookupStarted(3, TARGET, "find_node", 4.0))
    # 2 finished, so it goes before the older but still running 1
    assert list(tracker.lookups) == [1, 3]
    assert [s.lookup_id for s in tracker.take_evicted()] == [2] and tracker.take_evicted() == []
    first = tracker.get(1)
    tracker.apply(ev.LookupStarted(4, TARGET, "find_node", 5.0))
    assert list(tracker.lookups) == [3, 4] and tracker.take_evicted() == [first]


def test_tracker_replaces_a_lookup_whose_id_comes_again() -> None:
    tracker = LookupTracker()
    old = tracker.apply(ev.LookupStarted(1, TARGET, "get_peers", 1.0))
    tracker.apply(ev.PeersFound(1, A, (("9.9.9.9", 9),), 1.5))
    new = tracker.apply(ev.LookupStarted(1, bytes(20), "get_peers", 9.0))
    assert new is not old and tracker.get(1) is new and not new.peers
    assert tracker.take_evicted() == [old]


def test_real_lookup_on_simulated_network_matches_its_finish_event() -> None:
    net = SimNetwork(11)
    net.add_nodes(150)
    net.bootstrap_all()
    net.kill_random(0.2)
    live = net.live_nodes()
    info_hash = random_id(random.Random(3))
    net.announce(live[0], info_hash, 6881)
    result = net.lookup(live[1], info_hash)
    state = LookupState.from_events(result.events)
    fin = result.finished
    assert state.queried == fin.queried
    assert state.answered == fin.responded
    assert [n.node_id for n in state.closest_nodes()] == [i for i, _ in fin.closest]
    assert set(fin.peers) <= set(state.peers)
    assert (live[0].addr[0], 6881) in state.peers
    # every non-seed node was referred by a node the lookup asked
    assert len(state.edges()) == sum(1 for n in state.nodes.values() if n.depth > 0)
    assert state.in_flight == 0


def test_a_lookup_in_both_families_is_one_record_with_each_familys_paths() -> None:
    """A dual-stack lookup (BEP 32): one record for the IPv4 and the IPv6 lookup. The hosts use
    one id in both DHTs, yet each node's referrer is found in its own family."""
    a6, c6 = ("::1", 7001), ("::1", 7003)
    tracker = LookupTracker()
    tracker.group((LID, LID + 1))
    events: list[ev.Event] = [
        ev.LookupStarted(LID, TARGET, "get_peers", 10.0, 4),
        ev.LookupStarted(LID + 1, TARGET, "get_peers", 10.0, 6),
        ev.LookupQuerySent(LID, A, ADDR[A], None, 0, 10.0),
        ev.LookupQuerySent(LID + 1, A, a6, None, 0, 10.0),
        ev.LookupResponse(LID + 1, A, a6, 0.1, 1, 0, 10.1),
        ev.LookupQuerySent(LID + 1, C, c6, A, 1, 10.1),  # referred by A over IPv6
        ev.LookupResponse(LID, A, ADDR[A], 0.1, 1, 0, 10.1),
        ev.LookupQuerySent(LID, C, ADDR[C], A, 1, 10.1),  # referred by A over IPv4
        ev.LookupResponse(LID + 1, C, c6, 0.1, 0, 1, 10.2),
        ev.PeersFound(LID + 1, C, (("::1", 40000),), 10.2),
        ev.LookupFinished(LID + 1, TARGET, "get_peers", (("::1", 40000),), ((C, c6), (A, a6)),
                          2, 2, 0.3, False, 10.3, 6),
    ]
    for e in events:
        assert tracker.apply(e) is not None
    assert len(tracker) == 1
    state = tracker.get(LID + 1)
    assert state is tracker.get(LID) and state is not None
    assert state.families == (4, 6) and state.families_text == "IPv4+IPv6"
    assert state.state == RUNNING  # the IPv4 lookup has not finished
    edges = {(p.addr, n.addr) for p, n in state.edges()}
    assert edges == {(ADDR[A], ADDR[C]), (a6, c6)}  # never across families
    six_c = state.node_by_id(C, 6)
    assert six_c is not None and six_c.outcome == RETURNED_PEERS
    four_c = state.node_by_id(C, 4)
    assert four_c is not None and four_c.outcome not in (RETURNED_PEERS, ANSWERED)
    tracker.apply(ev.LookupFinished(LID, TARGET, "get_peers", (P1,), ((C, ADDR[C]),),
                                    2, 1, 0.5, False, 10.5, 4))
    assert state.state == DONE and state.elapsed() == 0.5
    assert set(state.peers) == {P1, ("::1", 40000)}
    assert [n.addr for n in state.closest_nodes()][:1] == [ADDR[C]]  # C (IPv4 and IPv6)
    assert {n.addr for n in state.closest_nodes()} == {ADDR[C], c6, a6}
