"""ExternalIpVoter: our own address as other nodes see it, from the BEP 42 ``ip`` field of their
replies.

Every responder reports the address our query came from. One report proves nothing (a node may
lie, or sit behind another NAT than ours), and one attacker may answer from many addresses of
its own network, so votes are counted per *network*: the voter's /24 (IPv4) or /64 (IPv6), as
the subnet rule of the routing table counts nodes. The voter keeps the latest report from each
of the last ``VOTERS`` distinct networks and settles on the address that at least
``MIN_VOTES`` of them report, with a clear lead over the runner-up (libtorrent's voter asks a
2:3 majority too), so a few networks cannot flip our address back and forth against the rest.
A report of an address of another family than the voter's, or of no address at all, is not a
vote. Loopback and private voters (a local testnet, where many nodes share 127.0.0.0/24)
count one per address, as the subnet rule relaxes there.

The BEP 42 node id follows the voted address (``identity.NodeIdentity``).
"""

from __future__ import annotations

from collections import OrderedDict

from dhtviewer.dht.addresses import ip_family, is_local, pack_ip, subnet_key

VOTERS = 64
"""Recent distinct voter networks whose reports count."""
MIN_VOTES = 3
"""Distinct networks that must agree before an address is believed."""


def voter_key(ip: str) -> bytes:
    """What one vote is counted under: the voter's /24 or /64, its whole address when local."""
    return pack_ip(ip) if is_local(ip) else subnet_key(ip)


class ExternalIpVoter:
    def __init__(self, external_ip: str | None = None) -> None:
        """``external_ip``: what we believed before (restored state), until votes say otherwise;
        ``confirmed`` stays False until votes agree with it."""
        self.external_ip = external_ip
        self.votes = 0
        """Distinct networks that agreed on ``external_ip`` when it was last settled (0: none
        yet)."""
        self._votes: OrderedDict[bytes, str] = OrderedDict()

    def __len__(self) -> int:
        """Voter networks currently remembered (at most ``VOTERS``)."""
        return len(self._votes)

    @property
    def confirmed(self) -> bool:
        """Votes settled on ``external_ip`` (not just restored from a previous run)."""
        return self.votes > 0

    def vote(self, voter: str, ip: str) -> tuple[str, int] | None:
        """``voter`` (a responder's IP) says we are ``ip``. Returns (address, agreeing networks)
        when the belief is settled anew: a new address, or the restored one confirmed for the
        first time; else None. Reports that are not votes (see the module) return None."""
        try:
            if ip_family(ip) != ip_family(voter):
                return None
            key = voter_key(voter)
        except ValueError:
            return None
        votes = self._votes
        votes[key] = ip
        votes.move_to_end(key)
        while len(votes) > VOTERS:
            votes.popitem(last=False)
        tally: dict[str, int] = {}
        for v in votes.values():
            tally[v] = tally.get(v, 0) + 1
        ranked = sorted(tally.items(), key=lambda kv: kv[1], reverse=True)
        best, count = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0
        if count < MIN_VOTES or count * 2 < runner_up * 3:
            return None
        if best == self.external_ip and self.confirmed:
            self.votes = count
            return None
        self.external_ip = best
        self.votes = count
        return best, count
