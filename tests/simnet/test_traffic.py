"""Traffic: the queries the network sends joined clients (rate, mix, announces after a token,
sources), forgetting silent members, and the spoof and flood scenarios."""

from __future__ import annotations

from dhtviewer.dht import krpc
from dhtviewer.dht.messages import PingQuery
from tests.support.simnet_kit import CLIENT, CLIENT_ID, ask, drive, make


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


