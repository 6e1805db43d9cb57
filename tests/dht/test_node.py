"""DhtNode: server side (every query answered correctly), reply matching, lookups, announce,
robustness against malformed input, read-only mode and external address votes."""

from __future__ import annotations

import base64
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from dhtviewer.dht import bencoding, krpc
from dhtviewer.dht import events as ev
from dhtviewer.dht.kinds import QueryRole
from dhtviewer.dht.messages import (
    Addr,
    AnnouncePeerQuery,
    ErrorMessage,
    FindNodeQuery,
    GetPeersQuery,
    GetQuery,
    Message,
    NodeInfo,
    PingQuery,
    Query,
    Response,
    SampleInfohashesQuery,
    UnknownQuery,
)
from dhtviewer.dht.node import DhtNode, LookupLimitError
from dhtviewer.dht.node_id import distance, random_id
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.dht.transactions import Pending, TransactionOwner
from tests.support.wire import LOCAL, Wire, build_network

ME = ("127.0.0.1", 6881)
CLIENT = ("127.0.0.2", 5000)
OTHER_ID = b"\x11" * 20


def make_node(settings: DhtSettings = LOCAL, seed: int = 1) -> DhtNode:
    return DhtNode(rng=random.Random(seed), now=0.0, settings=settings)


def ask(node: DhtNode, msg: Message, addr: Addr = CLIENT, now: float = 1.0) -> Message:
    """Send one query to ``node`` and return its reply (verification pings it sends are skipped)."""
    node.receive(krpc.encode(msg), addr, now)
    replies = [krpc.decode(d) for d, dst in node.datagrams_to_send() if dst == addr]
    replies = [r for r in replies if not isinstance(r, Query)]
    assert len(replies) == 1, replies
    return replies[0]


# --- server side -------------------------------------------------------------------------------
def test_ping_reply_has_id_tid_ip_and_version() -> None:
    node = make_node()
    r = ask(node, PingQuery(b"aa", OTHER_ID))
    assert isinstance(r, Response)
    assert r.tid == b"aa" and r.sender_id == node.node_id
    assert r.external_ip == CLIENT  # BEP 42: the address we saw the query come from
    assert r.version == LOCAL.client_version


def test_find_node_returns_closest_known_nodes() -> None:
    node = make_node()
    rng = random.Random(5)
    known = []
    for i in range(40):
        nid = random_id(rng)
        addr = (f"127.0.3.{i + 1}", 7000)
        node.receive(krpc.encode(PingQuery(b"p%d" % i, nid)), addr, 0.5)
        known.append(nid)
    # queries alone make nodes questionable candidates; make them answer so they are good
    for data, dst in node.datagrams_to_send():
        msg = krpc.decode(data)
        if isinstance(msg, PingQuery):
            idx = int(dst[0].split(".")[-1]) - 1
            node.receive(krpc.encode(Response(msg.tid, known[idx])), dst, 0.6)
    target = random_id(rng)
    r = ask(node, FindNodeQuery(b"fn", OTHER_ID, target=target))
    assert isinstance(r, Response)
    assert 1 <= len(r.nodes) <= 8
    in_table = {e.id for e in node.table}
    expected = sorted(in_table, key=lambda x: distance(x, target))[: len(r.nodes)]
    assert [n.id for n in r.nodes] == expected


def test_get_peers_token_announce_then_values() -> None:
    node = make_node()
    ih = b"\xaa" * 20
    r = ask(node, GetPeersQuery(b"g1", OTHER_ID, info_hash=ih))
    assert isinstance(r, Response) and r.token and r.values == ()
    r2 = ask(node, AnnouncePeerQuery(b"a1", OTHER_ID, info_hash=ih, port=51413, token=r.token))
    assert isinstance(r2, Response)
    events = node.drain_events()
    assert any(
        isinstance(e, ev.AnnounceReceived) and e.peer == ("127.0.0.2", 51413) for e in events
    )
    r3 = ask(node, GetPeersQuery(b"g2", b"\x22" * 20, info_hash=ih), addr=("127.0.0.9", 1))
    assert isinstance(r3, Response) and r3.values == (("127.0.0.2", 51413),)


def test_implied_port_uses_source_port() -> None:
    node = make_node()
    ih = b"\xab" * 20
    tok = ask(node, GetPeersQuery(b"g1", OTHER_ID, info_hash=ih)).token
    ask(
        node, AnnouncePeerQuery(b"a1", OTHER_ID, info_hash=ih, port=1, token=tok, implied_port=True)
    )
    r = ask(node, GetPeersQuery(b"g2", OTHER_ID, info_hash=ih))
    assert r.values == (CLIENT,)


def test_bad_token_and_token_from_other_ip_get_203() -> None:
    node = make_node()
    ih = b"\xac" * 20
    tok = ask(node, GetPeersQuery(b"g1", OTHER_ID, info_hash=ih)).token
    e1 = ask(node, AnnouncePeerQuery(b"a1", OTHER_ID, info_hash=ih, port=1, token=b"nope"))
    assert isinstance(e1, ErrorMessage) and e1.code == 203 and "token" in e1.message
    e2 = ask(
        node,
        AnnouncePeerQuery(b"a2", OTHER_ID, info_hash=ih, port=1, token=tok),
        addr=("127.0.0.77", 5000),
    )
    assert isinstance(e2, ErrorMessage) and e2.code == 203
    assert node.store.peer_count() == 0


def test_unknown_method_gets_204() -> None:
    node = make_node()
    r = ask(node, UnknownQuery(b"u1", OTHER_ID, name=b"vote"))
    assert isinstance(r, ErrorMessage) and r.code == 204


def test_sample_infohashes_reply_fits_and_lists_stored_hashes() -> None:
    node = make_node()
    for i in range(200):
        node.store.add(bytes([i % 256]) * 20, ("127.0.5.1", 1000 + i), 0.0)
    r = ask(node, SampleInfohashesQuery(b"s1", OTHER_ID, target=b"\x00" * 20))
    assert isinstance(r, Response)
    assert r.num == 200 and r.interval is not None and len(r.samples) == LOCAL.max_samples
    assert set(r.samples) <= {bytes([i]) * 20 for i in range(200)}


def test_replies_never_exceed_reply_budget() -> None:
    node = make_node()
    ih = b"\xad" * 20
    for i in range(400):
        node.store.add(ih, (f"127.0.{i // 200 + 6}.{i % 200 + 1}", 2000), 0.0)
    data_len = []
    for i in range(20):
        node.receive(
            krpc.encode(GetPeersQuery(b"g%d" % i, OTHER_ID, info_hash=ih)),
            (f"127.0.9.{i + 1}", 1),
            1.0,
        )
        data_len.extend(len(d) for d, _ in node.datagrams_to_send())
    assert data_len and max(data_len) <= LOCAL.max_reply_bytes


def test_malformed_query_with_tid_gets_error_and_is_counted() -> None:
    node = make_node()
    bad = b"d1:ad2:id5:short e1:q4:ping1:t2:xy1:y1:qe".replace(b" ", b"")
    node.receive(bad, CLIENT, 1.0)
    out = node.datagrams_to_send()
    assert len(out) == 1
    err = krpc.decode(out[0][0])
    assert isinstance(err, ErrorMessage) and err.code == 203 and err.tid == b"xy"
    assert node.counters.malformed == 1
    evs = [e for e in node.drain_events() if isinstance(e, ev.MalformedReceived)]
    assert evs and evs[0].replied


def test_garbage_is_dropped_silently_and_counted() -> None:
    node = make_node()
    for junk in (b"", b"garbage", b"i42e", b"d1:y1:re" + b"x", b"\xff" * 100, b"l" * 5000):
        node.receive(junk, CLIENT, 1.0)
    assert node.datagrams_to_send() == []
    assert node.counters.malformed == 6


def test_oversized_datagram_dropped_unparsed() -> None:
    node = make_node()
    node.receive(b"d" + b"x" * 20000, CLIENT, 1.0)
    assert node.counters.oversized == 1 and node.datagrams_to_send() == []


def test_malformed_events_carry_a_bounded_prefix_of_the_datagram() -> None:
    # the packet log shows what a malformed datagram contained, without keeping all of it
    node = make_node()
    junk = b"garbage\x00\xff"
    node.receive(junk, CLIENT, 1.0)
    big = b"d" + b"x" * 20000
    node.receive(big, CLIENT, 1.1)
    long_junk = b"l" * 5000
    node.receive(long_junk, CLIENT, 1.2)
    evs = [e for e in node.drain_events() if isinstance(e, ev.MalformedReceived)]
    assert [e.data for e in evs] == [
        junk, big[: ev.MALFORMED_PREFIX], long_junk[: ev.MALFORMED_PREFIX]
    ]
    assert [e.size for e in evs] == [len(junk), len(big), len(long_junk)]


def test_keeps_answering_pings_under_malformed_stream() -> None:
    node = make_node(replace(LOCAL, rate_limit=False))
    rng = random.Random(11)
    valid = krpc.encode(PingQuery(b"ok", OTHER_ID))
    answered = 0
    for i in range(3000):
        size = rng.randrange(0, 200)
        junk = bytes(rng.getrandbits(8) for _ in range(size))
        if i % 3 == 0:  # mutated valid message
            pos = rng.randrange(len(valid))
            junk = valid[:pos] + bytes([rng.getrandbits(8)]) + valid[pos + 1 :]
        node.receive(junk, (f"127.0.{i % 200}.{i % 250 + 1}", 4000), i * 0.001)
        node.datagrams_to_send()
        if i % 100 == 0:
            node.receive(valid, CLIENT, i * 0.001)
            out = node.datagrams_to_send()
            answered += sum(
                1 for d, a in out if a == CLIENT and isinstance(krpc.decode(d), Response)
            )
    assert answered == 30


def test_read_only_node_does_not_answer_and_marks_queries() -> None:
    node = make_node(replace(LOCAL, read_only=True))
    node.receive(krpc.encode(PingQuery(b"aa", OTHER_ID)), CLIENT, 1.0)
    assert node.datagrams_to_send() == []
    node.ping(CLIENT, 1.0)
    ((data, _),) = node.datagrams_to_send()
    q = krpc.decode(data)
    assert isinstance(q, PingQuery) and q.read_only


def test_read_only_querier_not_added_to_table() -> None:
    node = make_node()
    ask(node, PingQuery(b"aa", OTHER_ID, read_only=True))
    assert len(node.table) == 0


def test_every_libtorrent_capture_query_gets_a_correct_answer() -> None:
    path = Path(__file__).resolve().parents[1] / "data" / "krpc-captures" / "libtorrent-2.1.json"
    records = json.loads(path.read_text())["records"]
    node = make_node()
    answered = 0
    for rec in records:
        data = base64.b64decode(rec["b64"])
        raw = bencoding.decode(data)
        assert isinstance(raw, dict)
        if raw.get(b"y") != b"q":
            continue
        node.receive(data, CLIENT, 1.0)
        replies = [krpc.decode(d) for d, dst in node.datagrams_to_send() if dst == CLIENT]
        replies = [r for r in replies if not isinstance(r, Query)]
        assert len(replies) == 1, rec["note"]
        reply = replies[0]
        assert reply.tid == raw[b"t"], rec["note"]
        try:
            msg = krpc.decode(data)
        except krpc.KrpcError as err:  # a malformed query: answered with its error code
            assert isinstance(reply, ErrorMessage) and reply.code == err.code, rec["note"]
            answered += 1
            continue
        if isinstance(msg, AnnouncePeerQuery):
            assert (
                isinstance(reply, ErrorMessage) and reply.code == 203
            )  # captured token is not ours
        elif isinstance(msg, UnknownQuery):
            assert isinstance(reply, ErrorMessage) and reply.code == 204
        else:
            assert isinstance(reply, Response) and reply.sender_id == node.node_id, rec["note"]
            assert reply.external_ip == CLIENT
            if isinstance(msg, (GetPeersQuery, GetQuery)):
                assert reply.token
            if isinstance(msg, SampleInfohashesQuery):
                assert reply.num is not None and reply.interval is not None
        answered += 1
    assert answered == sum(
        1
        for r in records
        if bencoding.decode(base64.b64decode(r["b64"])).get(b"y") == b"q"  # type: ignore[union-attr]
    )


# --- client side -------------------------------------------------------------------------------
def test_unsolicited_and_misaddressed_replies_are_dropped() -> None:
    node = make_node()
    op = node.ping(("127.0.0.5", 7000), 0.0)
    ((data, _),) = node.datagrams_to_send()
    tid = krpc.decode(data).tid
    reply = krpc.encode(Response(tid, OTHER_ID))
    node.receive(reply, ("127.0.0.5", 7001), 0.1)  # right tid, wrong port
    node.receive(krpc.encode(Response(b"zz", OTHER_ID)), ("127.0.0.5", 7000), 0.1)  # wrong tid
    assert node.counters.unsolicited == 2
    assert not any(isinstance(e, ev.PingFinished) for e in node.drain_events())
    node.receive(reply, ("127.0.0.5", 7000), 0.2)
    done = [e for e in node.drain_events() if isinstance(e, ev.PingFinished)]
    assert done and done[0].op_id == op and done[0].node_id == OTHER_ID
    assert done[0].rtt == pytest.approx(0.2)


def test_ping_timeout_reports_failure() -> None:
    node = make_node()
    op = node.ping(("127.0.0.5", 7000), 0.0)
    node.datagrams_to_send()
    deadline = node.next_deadline()
    assert deadline is not None
    node.handle_timer(LOCAL.hard_timeout)
    done = [e for e in node.drain_events() if isinstance(e, ev.PingFinished)]
    assert done == [ev.PingFinished(op, ("127.0.0.5", 7000), None, None, None, LOCAL.hard_timeout)]


def test_external_ip_needs_several_agreeing_voters() -> None:
    node = make_node()
    for i in range(3):
        addr = (f"127.0.0.{10 + i}", 7000)
        node.ping(addr, 0.0)
        ((data, _),) = node.datagrams_to_send()
        tid = krpc.decode(data).tid
        node.receive(
            krpc.encode(Response(tid, bytes([i + 1]) * 20, external_ip=("203.0.113.7", 6881))),
            addr,
            0.1,
        )
        assert node.external_ip == (None if i < 2 else "203.0.113.7")
    assert any(isinstance(e, ev.ExternalAddressChanged) for e in node.drain_events())


def test_network_bootstrap_lookup_and_announce() -> None:
    wire = Wire()
    addrs = build_network(wire, 40)
    sizes = [wire.nodes[a].routing_size() for a in addrs]
    assert min(sizes) >= 8
    assert all(wire.nodes[a].bootstrapped for a in addrs[1:])
    ih = random_id(random.Random(77))
    announcer = wire.nodes[addrs[5]]
    aid = announcer.announce(ih, 6000, wire.now)
    wire.run(wire.now + 10)
    fin = [
        e
        for e in wire.events[addrs[5]]
        if isinstance(e, ev.AnnounceFinished) and e.lookup_id == aid
    ]
    assert fin and len(fin[0].stored_at) >= 4
    seeker = wire.nodes[addrs[30]]
    lid = seeker.start_lookup(ih, wire.now)
    wire.run(wire.now + 10)
    done = [
        e for e in wire.events[addrs[30]] if isinstance(e, ev.LookupFinished) and e.lookup_id == lid
    ]
    assert done and ("127.0.40.6", 6000) in done[0].peers
    # lookup path events are consistent: one first query per node queried (resends and the
    # neighbourhood probe go to nodes already asked)
    sent = [
        e
        for e in wire.events[addrs[30]]
        if isinstance(e, ev.LookupQuerySent) and e.lookup_id == lid and e.role == QueryRole.ASK
    ]
    assert len(sent) == done[0].queried
    # and it found the true closest nodes to the info_hash
    truth = sorted((n.node_id for n in wire.nodes.values()), key=lambda x: distance(x, ih))[:8]
    assert [c[0] for c in done[0].closest] == [t for t in truth if t != seeker.node_id][:8] or len(
        set(c[0] for c in done[0].closest) & set(truth)
    ) >= 7


def test_lookup_limit_and_cancel() -> None:
    node = make_node(replace(LOCAL, max_lookups=2))
    node.add_contacts([], 0.0)
    a = node.start_lookup(b"\x01" * 20, 0.0, seeds=[("127.0.0.5", 1)])
    node.start_lookup(b"\x02" * 20, 0.0, seeds=[("127.0.0.5", 1)])
    with pytest.raises(LookupLimitError):
        node.start_lookup(b"\x03" * 20, 0.0)
    node.cancel_lookup(a, 0.5)
    fin = [e for e in node.drain_events() if isinstance(e, ev.LookupFinished)]
    assert fin and fin[0].cancelled and fin[0].lookup_id == a
    node.start_lookup(b"\x03" * 20, 0.6)  # a slot is free again


def test_operation_ids_start_where_the_previous_node_stopped() -> None:
    # a program running nodes one after another (the desktop app's Stop/Start) keys its records
    # of lookups by id: the next node's ids must not repeat the first one's
    first = make_node()
    first.add_contacts([], 0.0)
    ids = [first.start_lookup(bytes([i]) * 20, 0.0, seeds=[("127.0.0.5", 1)]) for i in (1, 2)]
    ping = first.ping(("127.0.0.6", 1), 0.0)
    assert first.next_op_id == max(*ids, ping) + 1
    second = DhtNode(rng=random.Random(2), now=1.0, settings=LOCAL,
                     first_op_id=first.next_op_id)
    again = second.start_lookup(b"\x03" * 20, 1.0, seeds=[("127.0.0.5", 1)])
    assert again == first.next_op_id and again not in (*ids, ping)
    started = [e for e in second.drain_events() if isinstance(e, ev.LookupStarted)]
    assert [e.lookup_id for e in started] == [again]


def test_bad_arguments_raise_clear_errors() -> None:
    node = make_node()
    with pytest.raises(ValueError, match="20 bytes"):
        node.start_lookup(b"\x01" * 19, 0.0)
    with pytest.raises(ValueError, match="kind"):
        node.start_lookup(b"\x01" * 20, 0.0, kind="scrape")
    with pytest.raises(ValueError, match="port"):
        node.announce(b"\x01" * 20, 0, 0.0)


def test_export_state_lists_table_nodes() -> None:
    wire = Wire()
    addrs = build_network(wire, 12)
    state = wire.nodes[addrs[3]].export_state()
    assert state["node_id"] == wire.nodes[addrs[3]].node_id.hex() and state["family"] == 4
    nodes = state["nodes"]
    assert isinstance(nodes, list) and len(nodes) >= 8
    assert all(len(bytes.fromhex(n[0])) == 20 for n in nodes)


def test_offered_contacts_are_pinged_within_the_budget_and_of_our_family_only() -> None:
    """Contacts the other family's node learned (BEP 32) are unverified: the node pings them
    as it would pings anyone who queried it, within the verification budget."""
    node = make_node(replace(LOCAL, verify_rate=5.0))
    mine = [NodeInfo(bytes([i + 1]) * 20, (f"127.0.5.{i + 1}", 6881)) for i in range(20)]
    other = [NodeInfo(b"\x66" * 20, ("::1", 6881)), NodeInfo(node.node_id, ("127.0.5.99", 1))]
    node.offer_contacts([*mine, *other], 0.0)
    pinged = [a for _, a in node.datagrams_to_send()]
    assert len(pinged) == 5 and set(pinged) <= {n.addr for n in mine}  # the budget: 5/s
    assert node.counters.verify_pings_skipped == 15
    assert len(node.table) == 0  # nobody enters before answering


def answer_pings(node: DhtNode, rtt: float, start: float, count: int) -> float:
    """Ping ``count`` addresses and answer each after ``rtt``; returns the clock at the end."""
    now = start
    for i in range(count):
        addr = (f"127.0.11.{i % 250 + 1}", 7000 + i)
        node.ping(addr, now)
        ((data, _),) = node.datagrams_to_send()
        now += rtt
        node.receive(krpc.encode(Response(krpc.decode(data).tid, bytes([i % 256]) * 20)), addr, now)
    return now


def test_short_timeout_adapts_to_observed_rtt() -> None:
    node = make_node()
    assert node.short_timeout == LOCAL.short_timeout
    answer_pings(node, 0.05, 0.0, 64)
    # twice the 90th percentile, but never below the floor
    assert node.short_timeout == pytest.approx(max(LOCAL.min_short_timeout, 0.1))
    slow = make_node(seed=2)
    answer_pings(slow, 0.2, 0.0, 64)
    assert slow.short_timeout == pytest.approx(0.4)
    very_slow = make_node(seed=3)
    answer_pings(very_slow, 0.9, 0.0, 64)
    assert very_slow.short_timeout == LOCAL.short_timeout  # capped by the setting


def test_adaptive_timeout_can_be_disabled() -> None:
    node = make_node(replace(LOCAL, adaptive_timeout=False))
    answer_pings(node, 0.05, 0.0, 64)
    assert node.short_timeout == LOCAL.short_timeout


# --- extension points ----------------------------------------------------------------------------
class EchoClient(TransactionOwner):
    def __init__(self) -> None:
        self.outcomes: list[object] = []

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        self.outcomes.append(dict(r.extra))

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self.outcomes.append(reason)

    def on_timeout(self, p: Pending, now: float) -> None:
        self.outcomes.append("timeout")


def test_custom_method_between_two_nodes() -> None:
    wire = Wire()
    a, b = ("127.0.7.1", 6881), ("127.0.7.2", 6881)
    client, server = wire.add(a, 1), wire.add(b, 2)

    def echo(q: Query, addr: Addr, now: float) -> Message:
        assert isinstance(q, UnknownQuery)
        return server.responder.response(q, addr, extra={b"echo": q.args[b"say"]})

    server.register_handler(b"echo", echo)
    owner = EchoClient()
    assert client.send_query(b, b"echo", {b"say": b"hello"}, wire.now, owner) is not None
    wire.run(1.0)
    assert owner.outcomes == [{b"echo": b"hello"}]
    assert client.table.get(server.node_id) is not None  # an answer is an answer
    server.unregister_handler(b"echo")
    client.send_query(b, b"echo", {b"say": b"again"}, wire.now, owner)
    wire.run(2.0)
    assert owner.outcomes[-1] == "error 204: method unknown"
    client.send_query(("127.0.7.9", 6881), b"echo", {}, wire.now, owner)  # nobody there
    wire.run(10.0)
    assert owner.outcomes[-1] == "timeout"


def test_a_raising_handler_gets_a_server_error_and_the_node_goes_on() -> None:
    node = make_node()

    def broken(q: Query, addr: Addr, now: float) -> Message:
        raise RuntimeError("bug")

    node.register_handler(b"ping", broken)
    r = ask(node, PingQuery(b"aa", OTHER_ID))
    assert isinstance(r, ErrorMessage) and r.code == 202
    assert node.stats(1.0)["handler_errors"] == 1
    with pytest.raises(ValueError):
        node.register_handler(b"", broken)


def test_settings_and_state_are_read_only_from_outside() -> None:
    node = make_node()
    for name, value in (("settings", LOCAL), ("external_ip", "1.2.3.4"), ("bootstrapped", True),
                        ("short_timeout", 0.1), ("limiter", None), ("node_id", b"x" * 20)):
        with pytest.raises(AttributeError):
            setattr(node, name, value)
    restored = DhtNode(rng=random.Random(1), now=0.0, external_ip="5.6.7.8", traffic_events=False)
    assert restored.external_ip == "5.6.7.8" and not restored.traffic_events
    restored.set_traffic_events(True)
    assert restored.traffic_events


# --- randomness: what others see, and secrets ---------------------------------------------------
def secrets_of(node: DhtNode) -> tuple[bytes, bytes, list[bytes]]:
    """The node's id, a token it issues, and the tids of three pings it sends."""
    token = node.tokens.issue("1.2.3.4", b"\x01" * 20, 0.0)
    tids = []
    for i in range(3):
        node.ping((f"127.0.3.{i + 1}", 6881), 0.0)
        tids += [krpc.decode(d).tid for d, _ in node.datagrams_to_send()]
    return node.node_id, token, tids


def test_the_public_rng_does_not_determine_tids_tokens_or_the_id() -> None:
    """Tids, token secrets and our id come from the secrets source alone: whoever sees (or
    seeds) the public rng learns nothing of them."""
    def node(public: int, secret: int | None) -> DhtNode:
        s = None if secret is None else random.Random(secret)
        return DhtNode(rng=random.Random(public), secrets=s, now=0.0, settings=LOCAL)

    same_public = [secrets_of(node(1, 100)), secrets_of(node(1, 200))]
    assert all(a != b for a, b in zip(*same_public, strict=True))  # id, token and tids differ
    same_secrets = [secrets_of(node(1, 100)), secrets_of(node(2, 100))]
    assert same_secrets[0] == same_secrets[1]  # the secrets alone decide them (simulations)
    # By default the operating system's generator: nothing seeded can reproduce them.
    default = [secrets_of(node(1, None)), secrets_of(node(1, None))]
    assert default[0][0] != default[1][0] and default[0][1] != default[1][1]


# --- bad arguments to the API: refused up front, nothing left behind -----------------------------
@pytest.mark.parametrize(
    ("addr", "why"),
    [
        (("not-an-ip", 6881), "not an IP address"),
        (("example.org", 6881), "not an IP address"),
        (("1.2.3.4", 0), "port 0"),
        (("1.2.3.4", 70000), "bad port"),
        (("1.2.3.4", "6881"), "bad port"),
        (("224.0.0.1", 6881), "multicast"),
        (("0.0.0.0", 6881), "unspecified"),
        (("::1", 6881), "speaks IPv4 only"),
        ("1.2.3.4:6881", "not an \\(ip, port\\) pair"),
        (("1.2.3.4", 6881, 0), "not an \\(ip, port\\) pair"),
    ],
)
def test_queries_to_bad_addresses_are_refused_up_front(addr: object, why: str) -> None:
    node = make_node()
    owner = TransactionOwner()
    with pytest.raises(ValueError, match=why):
        node.ping(addr, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=why):
        node.sample(addr, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=why):
        node.send_query(addr, b"x", {}, 0.0, owner)  # type: ignore[arg-type]
    assert len(node.txns) == 0 and node.datagrams_to_send() == []
    node.handle_timer(100.0)  # and nothing left to trip over later
    assert node.drain_events() == []


def test_a_local_address_may_be_queried_directly() -> None:
    node = make_node(replace(LOCAL, allow_local=False))
    node.ping(("192.168.1.20", 6881), 0.0)
    assert len(node.txns) == 1


def test_a_custom_query_that_cannot_be_encoded_is_refused_and_leaves_nothing() -> None:
    node = make_node()
    owner = TransactionOwner()
    with pytest.raises(ValueError, match="cannot encode the b'x' query"):
        node.send_query(CLIENT, b"x", {b"f": 1.5}, 0.0, owner)
    with pytest.raises(ValueError, match="cannot encode"):
        node.send_query(CLIENT, b"x", {b"f": [b"ok", None]}, 0.0, owner)
    for bad in (0, -1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            node.send_query(CLIENT, b"x", {}, 0.0, owner, hard_timeout=bad)  # type: ignore[arg-type]
    assert len(node.txns) == 0 and node.datagrams_to_send() == []
    assert node.next_deadline() is None


class Outcomes(TransactionOwner):
    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def on_slow(self, p: Pending, now: float) -> None:
        self.seen.append(("slow", now))

    def on_timeout(self, p: Pending, now: float) -> None:
        self.seen.append(("timeout", now))


def test_send_query_takes_its_own_timeouts() -> None:
    node = make_node()
    owner = Outcomes()
    p = node.send_query(CLIENT, b"x", {}, 10.0, owner, short_timeout=0.2, hard_timeout=0.7)
    assert p is not None and node.next_deadline() == pytest.approx(10.2)
    node.handle_timer(10.2)
    node.handle_timer(10.7)
    assert owner.seen == [("slow", 10.2), ("timeout", 10.7)]


def test_cancel_queries_forgets_an_owners_queries() -> None:
    node = make_node()
    mine, other = Outcomes(), Outcomes()
    for i in range(3):
        node.send_query((f"127.0.4.{i + 1}", 6881), b"x", {}, 0.0, mine)
    node.send_query(("127.0.4.9", 6881), b"x", {}, 0.0, other)
    sent = {dst: krpc.decode(d).tid for d, dst in node.datagrams_to_send()}
    assert node.cancel_queries(mine) == 3 and node.cancel_queries(mine) == 0
    assert len(node.txns) == 1
    late = Response(sent[("127.0.4.1", 6881)], b"\x21" * 20)
    node.receive(krpc.encode(late), ("127.0.4.1", 6881), 0.5)  # dropped as unsolicited
    node.handle_timer(LOCAL.hard_timeout)
    assert mine.seen == [] and other.seen[-1] == ("timeout", LOCAL.hard_timeout)
    assert node.counters.unsolicited == 1


def test_an_owner_that_raises_does_not_strand_a_concurrent_lookup() -> None:
    """A custom owner raising in on_timeout must not stop the timer pass: the lookup whose
    query timed out at the same moment still hears of it and finishes."""
    class Broken(TransactionOwner):
        def on_timeout(self, p: Pending, now: float) -> None:
            raise RuntimeError("bug in a script")

    node = make_node()
    node.send_query(("127.0.5.1", 6881), b"x", {}, 0.0, Broken())
    lid = node.start_lookup(b"\x07" * 20, 0.0, seeds=[("127.0.5.2", 6881)])
    node.handle_timer(LOCAL.hard_timeout)  # must not raise
    events = node.drain_events()
    assert any(isinstance(e, ev.LookupFinished) and e.lookup_id == lid for e in events)
    (failed,) = [e for e in events if isinstance(e, ev.OwnerFailed)]
    assert failed.callback == "on_timeout" and "bug in a script" in failed.error
    assert node.stats(LOCAL.hard_timeout)["owner_errors"] == 1
    assert not node.lookups and len(node.txns) == 0
