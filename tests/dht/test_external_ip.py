"""External address votes: responders in several distinct networks (/24, /64) must agree before
we believe them, by a clear majority; one network's addresses count as one voter."""

from __future__ import annotations

from dhtviewer.dht.external_ip import MIN_VOTES, VOTERS, ExternalIpVoter, voter_key


def test_needs_min_votes_from_distinct_networks() -> None:
    v = ExternalIpVoter()
    for _ in range(10):
        assert v.vote("9.9.1.1", "1.2.3.4") is None  # one voter, however often
    assert v.vote("9.9.2.1", "1.2.3.4") is None
    assert v.vote("9.9.3.1", "1.2.3.4") == ("1.2.3.4", MIN_VOTES)
    assert v.external_ip == "1.2.3.4" and v.confirmed and v.votes == MIN_VOTES
    assert v.vote("9.9.4.1", "1.2.3.4") is None  # no change, nothing to report
    assert v.votes == MIN_VOTES + 1


def test_one_network_is_one_voter_however_many_addresses_it_has() -> None:
    """An attacker answering from a whole /24 (or /64) cannot outvote two honest networks."""
    v = ExternalIpVoter()
    assert v.vote("20.0.0.1", "1.2.3.4") is None
    assert v.vote("30.0.0.1", "1.2.3.4") is None
    for i in range(1, 250):
        assert v.vote(f"66.6.6.{i}", "6.6.6.6") is None
    for i in range(1, 50):
        assert v.vote(f"2a00:666::{i:x}", "2a00:1::1") is None
    assert v.external_ip is None and len(v) == 4
    assert v.vote("40.0.0.1", "1.2.3.4") == ("1.2.3.4", 3)


def test_a_clear_majority_is_needed_to_move() -> None:
    v = ExternalIpVoter()
    for i in range(3):
        v.vote(f"20.0.{i}.1", "1.2.3.4")
    assert v.external_ip == "1.2.3.4"
    # Three other networks say otherwise: a tie does not move the belief, nor 4 against 3.
    for i in range(4):
        assert v.vote(f"30.0.{i}.1", "5.6.7.8") is None
    assert v.external_ip == "1.2.3.4"
    # 5 against 3 is a clear lead (at least 3:2).
    assert v.vote("30.0.4.1", "5.6.7.8") == ("5.6.7.8", 5)


def test_reports_of_another_family_or_not_an_address_are_not_votes() -> None:
    v = ExternalIpVoter()
    for i in range(5):
        assert v.vote(f"20.0.{i}.1", "2a00::1") is None  # an IPv4 voter on our IPv6 address
        assert v.vote(f"2a00:{i}::1", "1.2.3.4") is None
        assert v.vote(f"20.1.{i}.1", "not an ip") is None
        assert v.vote("nonsense", "1.2.3.4") is None
    assert v.external_ip is None and len(v) == 0


def test_local_voters_count_one_per_address() -> None:
    """A local testnet shares 127.0.0.0/24: there every node counts (as the subnet rule relaxes)."""
    v = ExternalIpVoter()
    assert voter_key("127.0.0.2") != voter_key("127.0.0.3")
    assert voter_key("20.0.0.2") == voter_key("20.0.0.3")
    assert voter_key("2a00::1") == voter_key("2a00::ffff:1")
    v.vote("127.0.0.2", "127.0.0.1")
    v.vote("127.0.0.3", "127.0.0.1")
    assert v.vote("127.0.0.4", "127.0.0.1") == ("127.0.0.1", 3)


def test_a_restored_belief_is_reported_once_confirmed() -> None:
    v = ExternalIpVoter("1.2.3.4")
    assert not v.confirmed
    v.vote("20.0.0.1", "1.2.3.4")
    v.vote("20.0.1.1", "1.2.3.4")
    assert v.vote("20.0.2.1", "1.2.3.4") == ("1.2.3.4", 3)  # confirmed now: its id is checked
    assert v.vote("20.0.3.1", "1.2.3.4") is None


def test_majority_moves_and_memory_is_bounded() -> None:
    v = ExternalIpVoter("1.2.3.4")  # restored belief
    for i in range(VOTERS * 2):
        v.vote(f"9.{i // 250}.{i % 250}.1", "5.6.7.8")
        assert len(v) <= VOTERS
    assert v.external_ip == "5.6.7.8"
