"""ExternalIpVoter: our own address as other nodes see it, from the BEP 42 ``ip`` field of their
replies.

Every responder reports the address our query came from. One report proves nothing (a node may
lie, or sit behind another NAT than ours), so the voter keeps the latest report of each of the
last ``VOTERS`` distinct responders and settles on the address most of them agree on, once at
least ``MIN_VOTES`` do. The BEP 42 node id follows that address (``DhtNode``).
"""

from __future__ import annotations

from collections import OrderedDict

VOTERS = 64
"""Recent distinct responders whose reports count."""
MIN_VOTES = 3
"""Reports needed before an address is believed."""


class ExternalIpVoter:
    def __init__(self, external_ip: str | None = None) -> None:
        """``external_ip``: what we believed before (restored state), until votes say otherwise."""
        self.external_ip = external_ip
        self._votes: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        """Voters currently remembered (at most ``VOTERS``)."""
        return len(self._votes)

    def vote(self, voter: str, ip: str) -> tuple[str, int] | None:
        """``voter`` (a responder's IP) says we are ``ip``. Returns (new address, its votes) when
        the belief changes, else None."""
        votes = self._votes
        votes[voter] = ip
        votes.move_to_end(voter)
        while len(votes) > VOTERS:
            votes.popitem(last=False)
        tally: dict[str, int] = {}
        for v in votes.values():
            tally[v] = tally.get(v, 0) + 1
        best, count = max(tally.items(), key=lambda kv: kv[1])
        if best != self.external_ip and count >= MIN_VOTES:
            self.external_ip = best
            return best, count
        return None
