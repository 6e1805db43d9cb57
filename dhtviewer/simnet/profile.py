"""How the simulated Mainline behaves: the ``realistic`` and ``friendly`` profiles.

Every parameter says where its value comes from. Three kinds of source appear:

- a measurement or a protocol document (cited by author, venue and year, or by BEP);
- a deployed implementation's own constant (libtorrent, uTorrent as documented by its authors);
- a *working figure*: no published measurement was at hand, the value is a plausible choice,
  said to be one, and can be changed on the command line or here.

``friendly`` turns every imperfection off (no loss, no dead or away nodes, no latency, no
misbehaving nodes, no churn): what tests use when they must be fast and exact. (It keeps the
share of ids that fail BEP 42: clients exempt loopback from the check, and that share is what
keeps ids evenly spread.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["CLIENTS", "FRIENDLY", "PROFILES", "REALISTIC", "ClientShare", "Profile"]


@dataclass(frozen=True, slots=True)
class ClientShare:
    """One client family: its KRPC ``v`` (None: the key is left out) and share of the nodes."""

    name: str
    version: bytes | None
    share: float
    bep51: bool
    """Whether it answers ``sample_infohashes`` (BEP 51); the others answer error 204."""


CLIENTS: tuple[ClientShare, ...] = (
    # ``v`` layouts: two letters and two version bytes (libtorrent's docs/dht_extensions,
    # "client identification"; BEP 20 lists the two-letter codes).
    # Shares: a working figure. No census of ``v`` on today's Mainline was at hand; the split
    # follows what is known of the deployed base: libtorrent under qBittorrent, Deluge and many
    # others is the largest family, uTorrent/BitTorrent the historic majority, Transmission
    # (jech/dht) common on NAS devices and Linux, and a sizeable part sends no ``v`` at all.
    # BEP 51 support: libtorrent implements it since 1.2 (its changelog); mldht too; uTorrent
    # and Transmission do not (BEP 51 "Implementations" and the protocol notes of this repo).
    ClientShare("libtorrent 2.0", b"LT\x02\x00", 0.22, True),
    ClientShare("libtorrent 1.2", b"LT\x01\x02", 0.20, True),
    ClientShare("uTorrent 3.5", b"UT\xb4\x45", 0.24, False),
    ClientShare("Transmission", b"TR\x0f\x00", 0.10, False),
    ClientShare("mldht", b"ml\x00\x03", 0.02, True),
    ClientShare("other", b"AZ\x05\x07", 0.04, False),
    ClientShare("no version", None, 0.18, False),
)


@dataclass(frozen=True, slots=True)
class Profile:
    """Parameters of a simulated network. Shares are fractions of all simulated nodes."""

    name: str

    rtt_median: float = 0.080
    """Median round-trip time in seconds, per (asker, node) pair, applied as the reply delay.
    Source: issue 13's figure; consistent with the 50-100 ms medians between DHT nodes that
    Jimenez, Osmani and Knutsson measured ("Sub-second lookups on a large-scale Kademlia-based
    overlay", IEEE P2P 2011), and the same median as ``sim``'s log-normal latency model."""
    rtt_sigma: float = 0.6
    """Log-normal shape (standard deviation of ln RTT). Working figure: 0.6 puts the 90th
    percentile near 175 ms and the 99th near 320 ms, the long intercontinental tail."""
    loss: float = 0.01
    """Probability that a query or its reply is lost. Source: issue 13 (1%); the order of
    end-to-end loss on Internet paths (Paxson, "End-to-end Internet packet dynamics",
    SIGCOMM 1997, found loss of a few percent on the paths of his time)."""
    dead: float = 0.15
    """Nodes that never answer although others still list them (gone for good, or behind a NAT
    that closed the mapping). Together with ``away`` about 20% of routing entries do not
    answer: the working figure of this repo's protocol notes (measurement studies report
    "a large share"; e.g. Wolchok and Halderman, "Crawling BitTorrent DHTs for fun and
    profit", WOOT 2010, found many contacts unresponsive)."""
    away: float = 0.05
    """Nodes temporarily offline because of churn (they come back; others keep them)."""
    churn_per_second: float | None = None
    """Nodes leaving per second, and as many joining (the size stays steady); None:
    ``nodes * away / session_seconds``, so that the away set turns over once a session.
    ``--scenario churn:RATE`` sets it."""
    churn_new_ids: float = 0.5
    """Share of joins that bring an id nobody has seen (the rest are nodes coming back with the
    id they left with). Working figure: deployed clients keep their id across restarts
    (libtorrent and uTorrent save it), but BEP 42 ids follow the external address, which most
    home connections change every day or two, and new users arrive."""
    session_seconds: float = 3600.0
    """The churn period: with the default rate the away set turns over once in this time (its
    nodes come back, oldest first, or give way to new ids). Source: Stutzbach and Rejaie,
    "Understanding churn in peer-to-peer networks" (IMC 2006): heavy-tailed sessions, most of
    them minutes to hours long, in BitTorrent as in Kad and Gnutella; an hour is a round middle
    value."""
    bep42_fail: float = 0.5
    """Nodes whose id does not match their address under BEP 42 (computed as if the loopback
    address were public; clients exempt loopback unless told otherwise). Working figure, and
    the only value that keeps ids evenly spread: on 127/8 valid ids can only take half of the
    id space (``index.loopback_bep42_prefixes``), so the failing half fills the other. On the
    Internet BEP 42 is generated by libtorrent and uTorrent (about two thirds of nodes here),
    and nodes behind NATs or with stale addresses fail it, so about half is plausible."""
    read_only: float = 0.03
    """BEP 43 read-only nodes: they query (members see ``ro=1`` in background queries from
    them), never answer and are in nobody's routing table. Working figure: libtorrent marks
    itself read-only on mobile and metered links; such nodes are a small minority."""
    erroring: float = 0.005
    """Nodes that answer every query with a KRPC error (202 server error). Working figure."""
    malformed: float = 0.005
    """Nodes that answer with a datagram that is not valid KRPC (truncated bencode).
    Working figure; every client must survive them."""
    swarms: int | None = None
    """Seeded info-hashes, each stored by the nodes closest to it; None: one per two nodes.
    Working figure: with 8 storers each, an answering node then holds about 5 info-hashes,
    so a BEP 51 crawl meets what it meets on the Internet: most libtorrent nodes report a few
    stored info-hashes (``num``) and hand out all of them. (Mainline is said to carry
    10 to 20 million active torrents among 10 to 27 million nodes; each announce lands on
    a dozen or more nodes, BEP 33.) ``--swarms`` sets it."""
    swarm_zipf: float = 1.0
    """Exponent of the Zipf law of swarm sizes (size of the r-th largest ~ r^-s). Source:
    BitTorrent content popularity is Zipf-like over most of its range (Dán and Carlsson,
    "Power-laws revisited: a large scale measurement study of P2P content popularity",
    IPTPS 2010); an exponent of 1 is the classic choice. ``--zipf`` sets it."""
    swarm_max_peers: int = 400
    """Peers of the largest swarm (storers hand out at most 50 per reply, as deployed nodes).
    Working figure."""
    storers: int = 8
    """Nodes closest to an info-hash that store its peers: K = 8, where announces land
    (BEP 5)."""
    member_rate: float = 20.0
    """Background queries per second that the network sends each joined client. Source:
    the order of what a node reachable on the public Mainline receives from strangers (this
    repo's issue 13 says 20/s; the protocol notes report "hundreds of queries per second"
    for busy, long-lived nodes, settable with ``--member-rate``)."""
    member_mix: tuple[tuple[str, float], ...] = field(
        default=(
            ("get_peers", 0.55),
            ("find_node", 0.30),
            ("ping", 0.10),
            ("announce_peer", 0.04),
            ("sample_infohashes", 0.01),
        )
    )
    """Share of each method among background queries. Working figure with the ordering that
    studies of DHT traffic report (get_peers most, then find_node, ping, announce_peer,
    sample_infohashes rare: it came with BEP 51 in 2016 and only indexers send it)."""
    member_timeout: float = 600.0
    """A member that sent nothing and answered nothing for this long is forgotten (its
    entries leave the network's replies). Working figure, the order of BEP 5's 15 minutes."""


REALISTIC = Profile("realistic")
FRIENDLY = replace(
    REALISTIC,
    name="friendly",
    rtt_median=0.0,
    loss=0.0,
    dead=0.0,
    away=0.0,
    churn_per_second=0.0,
    read_only=0.0,
    erroring=0.0,
    malformed=0.0,
)
PROFILES = {p.name: p for p in (REALISTIC, FRIENDLY)}
