"""Churn: nodes leave and join at the configured rate, as many join as leave (some coming
back, some with new ids), and a new node answers and enters its neighbours' tables."""

from __future__ import annotations

import pytest

from dhtviewer.dht.messages import FindNodeQuery, PingQuery, Response
from dhtviewer.simnet import index as ix
from dhtviewer.simnet.network import ANSWERS_BADLY
from dhtviewer.simnet.profile import REALISTIC
from tests.support.simnet_kit import CLIENT_ID, T0, ask, drive, make, reply


def test_churn_brings_as_many_nodes_as_it_takes_and_new_ids() -> None:
    # The default session length (an hour): the nodes that leave are replaced at once, some
    # by nodes coming back, some by new ids, so the network does not drain.
    net = make(10_000, REALISTIC, scenarios=["churn:500"], loss=0.0)
    flags = net.index.flags
    unborn = [p for p in range(net.index.n) if flags[p] & ix.UNBORN]
    assert len(unborn) == 1000  # the pool: at most a tenth of the network
    before = net.size()
    drive(net, 3.0, step=0.1, answer=False)
    churn = net.churn
    assert 1300 < churn.left < 1600
    assert churn.came_back + churn.joined == churn.left
    assert 0.35 < churn.joined / churn.left < 0.65  # the profile's share of new ids
    after = net.size()
    assert abs(after["online"] - before["online"]) < 20
    assert abs(after["responsive"] - before["responsive"]) < 100
    assert after["nodes"] == before["nodes"] + churn.joined
    # A node that joined answers, and is now in the tables of the nodes near it.
    born = next(p for p in unborn if not flags[p] & ix.SILENT and not flags[p] & ANSWERS_BADLY)
    assert isinstance(reply(ask(net, born, PingQuery(b"c1", CLIENT_ID), now=T0 + 3)), Response)
    t = net.index.keys[born]
    near = net.index.true_closest(t, 9, ANSWERS_BADLY)
    assert born in near
    listed = [n.id for q in near if q != born
              for n in reply(ask(net, q, FindNodeQuery(b"c2", CLIENT_ID,
                                                       target=net.index.node_id(born)),
                                 now=T0 + 3)).nodes]
    assert net.index.node_id(born) in listed


def test_the_default_churn_turns_the_away_set_over_in_a_session() -> None:
    net = make(20_000, REALISTIC)
    away = net.index.count(ix.AWAY, 0)
    assert net.churn.rate == pytest.approx(away / REALISTIC.session_seconds, rel=0.05)
    drive(net, 20.0, step=0.1, answer=False)
    assert net.churn.left == pytest.approx(20 * net.churn.rate, abs=3)
    assert net.churn.came_back + net.churn.joined == net.churn.left


