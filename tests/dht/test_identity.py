"""NodeIdentity: our id follows our voted external address (BEP 42), from the secrets source,
and a node that takes a new id keeps its contacts and uses the new id everywhere at once."""

from __future__ import annotations

import random
from dataclasses import replace

from dhtviewer.dht import events as ev
from dhtviewer.dht import krpc
from dhtviewer.dht.identity import ID_CHANGE_INTERVAL, NodeIdentity
from dhtviewer.dht.kinds import LookupKind
from dhtviewer.dht.messages import Addr, NodeInfo, PingQuery, Query, Response
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.node_id import bep42_id, bep42_valid
from dhtviewer.dht.settings import DhtSettings

OLD_ID = b"\x42" * 20
PUBLIC = "81.4.19.7"
"""Our external address in these tests (public: BEP 42 applies)."""
VOTERS: list[Addr] = [(f"11.{i}.0.1", 6881) for i in range(1, 6)]
"""Responders in five distinct /24s."""


def test_an_address_that_needs_it_gets_a_bep42_id_from_the_secrets() -> None:
    a = NodeIdentity(OLD_ID, secrets=random.Random(1))
    b = NodeIdentity(OLD_ID, secrets=random.Random(2))
    for ident in (a, b):
        assert ident.vote("11.1.0.1", PUBLIC, 0.0) is None
        assert ident.vote("11.2.0.1", PUBLIC, 0.0) is None
        settled = ident.vote("11.3.0.1", PUBLIC, 0.0)
        assert settled is not None and (settled.ip, settled.votes) == (PUBLIC, 3)
        assert settled.old_id == OLD_ID and settled.new_id == ident.node_id
        assert bep42_valid(ident.node_id, PUBLIC) and ident.external_ip == PUBLIC
    assert a.node_id != b.node_id  # the free bits come from the secrets source


def test_a_derived_id_is_deterministic_for_seeded_secrets() -> None:
    ids = []
    for _ in range(2):
        ident = NodeIdentity(OLD_ID, secrets=random.Random(7))
        for voter, _port in VOTERS[:3]:
            ident.vote(voter, PUBLIC, 0.0)
        ids.append(ident.node_id)
    assert ids[0] == ids[1] != OLD_ID


def test_no_new_id_when_it_matches_is_exempt_or_derivation_is_off() -> None:
    matching = bep42_id(PUBLIC, random.Random(3))
    cases = [
        (NodeIdentity(matching, secrets=random.Random(1)), PUBLIC),
        (NodeIdentity(OLD_ID, secrets=random.Random(1)), "192.168.1.20"),  # private: exempt
        (NodeIdentity(OLD_ID, secrets=random.Random(1)), "127.0.0.1"),
        (NodeIdentity(OLD_ID, secrets=random.Random(1), derive=False), PUBLIC),
    ]
    for ident, ip in cases:
        before = ident.node_id
        settled = None
        for voter, _port in VOTERS[:3]:
            settled = ident.vote(voter, ip, 0.0) or settled
        assert settled is not None and settled.ip == ip and settled.new_id is None
        assert ident.node_id == before


def test_a_restored_address_our_id_does_not_match_is_fixed_once_votes_confirm_it() -> None:
    ident = NodeIdentity(OLD_ID, secrets=random.Random(1), external_ip=PUBLIC)
    assert ident.node_id == OLD_ID  # nothing proven yet
    settled = None
    for voter, _port in VOTERS[:3]:
        settled = ident.vote(voter, PUBLIC, 0.0) or settled
    assert settled is not None and settled.new_id is not None
    assert bep42_valid(ident.node_id, PUBLIC)


# --- the node -------------------------------------------------------------------------------------
S = DhtSettings(prefer_bep42=False)  # the contacts below have made-up ids
CONTACTS = [NodeInfo(bytes([0x10 * i + 3]) * 20, (f"12.{i}.0.1", 6881)) for i in range(1, 7)]


def voted_node(settings: DhtSettings = S) -> DhtNode:
    node = DhtNode(rng=random.Random(1), secrets=random.Random(2), now=0.0, node_id=OLD_ID,
                   settings=settings)
    node.preload_contacts(CONTACTS, 0.0)
    node.drain_events()
    return node


def answer_pings(node: DhtNode, voters: list[Addr], claimed: str, now: float) -> None:
    """Each voter answers a ping of ours, saying our address is ``claimed``."""
    for i, voter in enumerate(voters):
        node.ping(voter, now)
        sent = [krpc.decode(d) for d, dst in node.datagrams_to_send() if dst == voter]
        (tid,) = [q.tid for q in sent if isinstance(q, PingQuery)]
        reply = Response(tid, bytes([0xE0 + i]) * 20, external_ip=(claimed, 6881))
        node.receive(krpc.encode(reply), voter, now + 0.01)


def test_the_node_takes_a_bep42_id_and_keeps_its_contacts() -> None:
    node = voted_node()
    inserted = node.counters.nodes_inserted
    answer_pings(node, VOTERS[:3], PUBLIC, 1.0)
    new = node.node_id
    assert new != OLD_ID and bep42_valid(new, PUBLIC) and node.bep42_ok()
    events = node.drain_events()
    changed = [e for e in events if isinstance(e, ev.NodeIdChanged)]
    assert changed == [ev.NodeIdChanged(OLD_ID, new, PUBLIC, 4, 1.01)]
    assert [e.ip for e in events if isinstance(e, ev.ExternalAddressChanged)] == [PUBLIC]
    assert node.counters.node_id_changes == 1
    # The table is laid out around the new id, and no contact was lost (nor re-counted).
    table = node.table
    assert table.own_id == new and node.routing_snapshot(2.0).own_id == new
    kept = {n.id for n in table}
    assert {c.id for c in CONTACTS} <= kept
    assert node.counters.nodes_inserted == inserted + 3  # the three voters, nothing else
    # A lookup of the new id lets its new neighbours hear of us.
    assert any(isinstance(e, ev.LookupStarted) and e.target == new
               and e.kind == LookupKind.REFRESH for e in events)
    # The new id is on the wire at once: in our queries and in our replies.
    queries = [krpc.decode(d) for d, _ in node.datagrams_to_send()]
    assert queries and all(isinstance(q, Query) and q.sender_id == new for q in queries)
    node.receive(krpc.encode(PingQuery(b"pp", b"\x77" * 20)), ("13.0.0.1", 4000), 2.0)
    out = [krpc.decode(d) for d, dst in node.datagrams_to_send() if dst == ("13.0.0.1", 4000)]
    (reply,) = [m for m in out if isinstance(m, Response)]
    assert reply.sender_id == new
    assert node.export_state()["node_id"] == new.hex()


def test_one_network_cannot_change_our_id() -> None:
    """Many addresses of one /24 are one voter: an attacker cannot force id changes with them."""
    node = voted_node()
    answer_pings(node, [(f"66.6.6.{i}", 6881) for i in range(1, 9)], PUBLIC, 1.0)
    assert node.node_id == OLD_ID and node.external_ip is None
    assert not any(isinstance(e, ev.NodeIdChanged) for e in node.drain_events())


def test_exempt_addresses_and_a_fixed_id_keep_the_id() -> None:
    node = voted_node()
    answer_pings(node, VOTERS[:3], "10.0.0.7", 1.0)  # behind a NAT that shows a private address
    assert node.node_id == OLD_ID and node.external_ip == "10.0.0.7"
    fixed = voted_node(replace(S, derive_node_id=False))
    answer_pings(fixed, VOTERS[:3], PUBLIC, 1.0)
    assert fixed.node_id == OLD_ID and fixed.external_ip == PUBLIC and not fixed.bep42_ok()


def test_a_second_change_of_address_derives_again() -> None:
    node = voted_node()
    answer_pings(node, VOTERS[:3], PUBLIC, 1.0)
    first = node.node_id
    later = 2.0 + ID_CHANGE_INTERVAL
    answer_pings(node, VOTERS + [(f"11.{i}.0.1", 6881) for i in range(6, 12)], "82.5.20.8", later)
    assert node.external_ip == "82.5.20.8" and node.node_id != first
    assert bep42_valid(node.node_id, "82.5.20.8")
    changes = [e for e in node.drain_events() if isinstance(e, ev.NodeIdChanged)]
    assert [(e.old_id, e.new_id) for e in changes] == [(OLD_ID, first), (first, node.node_id)]


MORE_VOTERS: list[Addr] = [(f"11.{i}.0.1", 6881) for i in range(6, 30)]


def test_an_id_change_soon_after_another_waits_for_the_hold_off() -> None:
    """The address is believed at once; the id follows only after the hold-off, at the first
    vote then, and only if the votes still agree."""
    node = voted_node()
    answer_pings(node, VOTERS[:3], PUBLIC, 1.0)
    first = node.node_id
    node.drain_events()
    answer_pings(node, VOTERS + MORE_VOTERS[:6], "82.5.20.8", 30.0)
    assert node.external_ip == "82.5.20.8" and node.node_id == first and not node.bep42_ok()
    assert node.id_change_held_until == 1.01 + ID_CHANGE_INTERVAL
    events = node.drain_events()
    assert [e.ip for e in events if isinstance(e, ev.ExternalAddressChanged)] == ["82.5.20.8"]
    assert not any(isinstance(e, ev.NodeIdChanged) for e in events)
    answer_pings(node, MORE_VOTERS[6:7], "82.5.20.8", 1.0 + ID_CHANGE_INTERVAL - 1)
    assert node.node_id == first  # still inside the hold-off
    answer_pings(node, MORE_VOTERS[7:8], "82.5.20.8", 1.02 + ID_CHANGE_INTERVAL)
    assert node.node_id != first and bep42_valid(node.node_id, "82.5.20.8")
    events = node.drain_events()
    assert [(e.old_id, e.external_ip) for e in events if isinstance(e, ev.NodeIdChanged)] == [
        (first, "82.5.20.8")]
    assert not any(isinstance(e, ev.ExternalAddressChanged) for e in events)  # not news
    assert node.counters.node_id_changes == 2


def test_a_flip_flopping_majority_changes_our_id_at_most_once_per_hold_off() -> None:
    """An attacker who holds enough networks to sway the vote, alternating two addresses every
    ten seconds for an hour, gets at most one id change per hold-off."""
    ident = NodeIdentity(OLD_ID, secrets=random.Random(1))
    changes = 0
    addresses = ("81.4.19.7", "82.5.20.8")
    for step in range(360):
        now = step * 10.0
        claimed = addresses[step % 2]
        for i in range(12):
            settled = ident.vote(f"20.{i}.0.1", claimed, now)
            if settled is not None and settled.new_id is not None:
                changes += 1
    assert 2 <= changes <= 1 + 3600 / ID_CHANGE_INTERVAL


def test_refreshes_running_when_the_id_changes_end_cleanly() -> None:
    """A bucket refresh started before the change refers to a bucket of the old layout: when it
    ends, nothing is touched that no longer exists (the owner never raises)."""
    settings = replace(S, max_refresh_lookups=16)
    node = DhtNode(rng=random.Random(1), secrets=random.Random(2), now=0.0, node_id=OLD_ID,
                   settings=settings)
    # Contacts ever nearer our id: the table splits into many buckets. Around a new id, far
    # from them all, it has only a few.
    old_int = int.from_bytes(OLD_ID, "big")
    near = [NodeInfo((old_int ^ (1 << (159 - depth)) ^ i).to_bytes(20, "big"),
                     (f"12.{depth}.{i}.1", 6881)) for depth in range(8) for i in range(1, 4)]
    node.preload_contacts(near, 0.0)
    depth = node.routing_snapshot(0.0).depth
    assert depth >= 6
    node.handle_timer(S.bucket_refresh_interval + 1)  # stale buckets: refresh lookups start
    refreshing = [e for e in node.drain_events()
                  if isinstance(e, ev.LookupStarted) and e.kind == LookupKind.REFRESH]
    assert refreshing
    node.datagrams_to_send()
    answer_pings(node, VOTERS[:3], PUBLIC, S.bucket_refresh_interval + 2)
    assert node.node_id != OLD_ID and node.routing_snapshot(0.0).depth < depth
    for t in range(5, 120, 5):  # nobody answers: every lookup runs out of nodes to ask
        node.handle_timer(S.bucket_refresh_interval + t)
        node.datagrams_to_send()
    ended = {e.lookup_id for e in node.drain_events() if isinstance(e, ev.LookupFinished)}
    assert {e.lookup_id for e in refreshing} <= ended
    assert node.counters.owner_errors == 0 and not node.lookups
