"""External address votes: several distinct responders must agree before we believe them."""

from __future__ import annotations

from dhtviewer.dht.external_ip import MIN_VOTES, VOTERS, ExternalIpVoter


def test_needs_min_votes_from_distinct_voters() -> None:
    v = ExternalIpVoter()
    for _ in range(10):
        assert v.vote("9.9.9.1", "1.2.3.4") is None  # one voter, however often
    assert v.vote("9.9.9.2", "1.2.3.4") is None
    assert v.vote("9.9.9.3", "1.2.3.4") == ("1.2.3.4", MIN_VOTES)
    assert v.external_ip == "1.2.3.4"
    assert v.vote("9.9.9.4", "1.2.3.4") is None  # no change, nothing to report


def test_majority_moves_and_memory_is_bounded() -> None:
    v = ExternalIpVoter("1.2.3.4")  # restored belief
    for i in range(VOTERS * 2):
        v.vote(f"9.9.{i // 250}.{i % 250}", "5.6.7.8")
        assert len(v) <= VOTERS
    assert v.external_ip == "5.6.7.8"
