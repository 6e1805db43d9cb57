"""NodeEntry: BEP 5 states from answers, queries and failures; the smoothed RTT."""

from __future__ import annotations

import pytest

from dhtviewer.dht.kinds import NodeState
from dhtviewer.dht.node_entry import RTT_GAIN, NodeEntry, record


def test_states_follow_answers_queries_and_failures() -> None:
    e = NodeEntry(b"\x01" * 20, ("1.2.3.4", 6881), 0.0)
    assert e.state(0.0, 900.0, 3) == NodeState.QUESTIONABLE and not e.answered
    record(e, 1.0, False, None, b"LT\x01\x02")  # a query proves little
    assert e.state(1.0, 900.0, 3) == NodeState.QUESTIONABLE and e.version == b"LT\x01\x02"
    record(e, 2.0, True, 0.1, None)
    assert e.answered and e.state(2.0, 900.0, 3) == NodeState.GOOD and e.last_seen == 2.0
    e.failures = 3
    assert e.state(2.0, 900.0, 3) == NodeState.BAD
    record(e, 3.0, True, 0.3, None)  # an answer clears the failures
    assert e.failures == 0 and e.rtt == pytest.approx(0.1 + (0.3 - 0.1) * RTT_GAIN)


def test_move_keeps_the_contact_consistent() -> None:
    e = NodeEntry(b"\x01" * 20, ("1.2.3.4", 6881), 0.0)
    e.move(("1.2.3.4", 7000))
    assert e.addr == ("1.2.3.4", 7000) and e.info.addr == ("1.2.3.4", 7000)
