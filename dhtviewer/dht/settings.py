"""Every tunable limit of the DHT core, in one frozen dataclass with documented defaults.

Each field carries its description as data (``SettingInfo`` in the field's metadata): a human
label, a unit, a group, the inclusive range of accepted values and a help text. The
preferences dialog, the command line's ``--set``/``--config`` and the stored GUI preferences
are all built from it, and the help survives packaging (no source parsing). ``DhtSettings``
checks every value against it when built, so a bad limit fails at once with a message naming
the field, not later inside the node.

A new field is declared with ``setting(default, label, group, help, unit=..., low=..., high=...)``,
or ``choice(default, label, group, help)`` for one of an enum's members (given as the member or
its value: ``address_families="ipv6"``); tests and benchmarks build variants with
``dataclasses.replace`` (validated too).
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import math
from dataclasses import Field, dataclass, field, fields, replace
from functools import cache
from typing import Any, TypeVar

from dhtviewer.dht.families import AddressFamilies

#: Our client code and version for the KRPC ``v`` key: 2 letters + 2 version bytes.
CLIENT_VERSION = b"DV\x00\x01"

_META = "dhtviewer"
"""Key of a field's ``SettingInfo`` in its dataclass metadata."""

T = TypeVar("T", bool, int, float, bytes)
E = TypeVar("E", bound=enum.Enum)
Value = bool | int | float


class SettingGroup(enum.Enum):
    """Where a setting belongs; the value is the title people see (a tab of the preferences)."""

    ROUTING = "Routing table"
    QUERIES = "Queries and lookups"
    SERVER = "Serving other nodes"
    CRAWLER = "BEP 51 crawler"
    ABUSE = "Abuse protection"
    INPUT = "Input"
    FAMILIES = "Address families"


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """What people and parsers need to know about one setting."""

    label: str
    """Short human name ("Bucket size (K)")."""
    group: SettingGroup
    help: str
    """What it does and why one would change it (plain text, one paragraph)."""
    unit: str = ""
    """Shown after the value: "s", "/s", "bytes", "nodes"... (empty for plain counts/flags)."""
    low: float | None = None
    """Smallest accepted value (inclusive); None for flags."""
    high: float | None = None
    """Largest accepted value (inclusive); None for flags."""
    editable: bool = True
    """False for values that are not user settings (the client version)."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One field of ``DhtSettings``: its name, Python type, default and description."""

    name: str
    kind: type
    """bool, int, float, an ``enum.Enum`` for a choice (or bytes for the non-editable client
    version)."""
    default: Any
    info: SettingInfo

    @property
    def choices(self) -> tuple[enum.Enum, ...]:
        """The members a choice may take (empty for other settings)."""
        kind = self.kind
        return tuple(kind) if issubclass(kind, enum.Enum) else ()

    def range_text(self) -> str:
        """"1..64" (integers), "0.01..60" (floats), "ipv4|ipv6|both" (a choice), "" for
        flags."""
        if self.choices:
            return "|".join(str(m.value) for m in self.choices)
        if self.info.low is None or self.info.high is None:
            return ""
        return f"{_number(self.info.low)}..{_number(self.info.high)}"


class SettingsError(ValueError):
    """One or more values are not acceptable. ``problems`` lists (field name, reason) pairs;
    ``str()`` is one line naming each, e.g. ``k must be 1..64 nodes (got 0)``. A rule between
    two fields (the short timeout within the hard one) is listed under both names."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(dict.fromkeys(reason for _name, reason in problems)))


def setting(default: T, label: str, group: SettingGroup, help: str, *, unit: str = "",
            low: float | None = None, high: float | None = None,
            editable: bool = True) -> T:
    """A ``DhtSettings`` field: its default and its ``SettingInfo``. Typed as the default so
    that ``k: int = setting(8, ...)`` type-checks; at run time it is a dataclass ``Field``."""
    if not isinstance(default, bool | bytes) and (low is None or high is None):
        raise TypeError(f"a numeric setting needs low and high (label {label!r})")
    info = SettingInfo(label, group, " ".join(help.split()), unit, low, high, editable)
    return field(default=default, metadata={_META: info})


def choice(default: E, label: str, group: SettingGroup, help: str) -> E:
    """A ``DhtSettings`` field that takes one member of ``default``'s enum (checked like the
    others; text and TOML give the member's value)."""
    info = SettingInfo(label, group, " ".join(help.split()))
    return field(default=default, metadata={_META: info})


def _number(value: float) -> str:
    """21600 rather than 21600.0 or 2.16e+04: a value people can type back."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


G = SettingGroup


@dataclass(frozen=True, slots=True)
class DhtSettings:
    # --- routing table -------------------------------------------------------------------------
    k: int = setting(
        8, "Bucket size (K)", G.ROUTING, unit="nodes", low=1, high=64,
        help="Nodes per routing-table bucket, and how many closest nodes a lookup must settle.")
    replacement_cache_size: int = setting(
        8, "Replacement candidates", G.ROUTING, unit="per bucket", low=0, high=64,
        help="Candidates kept per bucket to replace nodes that go bad (0: none kept).")
    good_period: float = setting(
        15 * 60, "Node stays good for", G.ROUTING, unit="s", low=1, high=86_400,
        help="A node that answered within this many seconds is good; after it, questionable "
             "(pinged before it is relied on).")
    bad_after_failures: int = setting(
        3, "Failures before a node is bad", G.ROUTING, unit="queries", low=1, high=100,
        help="Consecutive failed queries after which a node is bad (evicted first).")
    bucket_refresh_interval: float = setting(
        15 * 60, "Refresh idle buckets after", G.ROUTING, unit="s", low=1, high=86_400,
        help="A bucket unchanged for this long is refreshed with a lookup of a random id in "
             "its range.")
    max_refresh_lookups: int = setting(
        2, "Refresh lookups at once", G.ROUTING, unit="lookups", low=1, high=64,
        help="Bucket refresh lookups running at once; more stale buckets wait their turn.")
    allow_local: bool = setting(
        False, "Accept local addresses", G.ROUTING,
        help="Accept loopback, private and reserved addresses in the routing table (local "
             "test networks need it).")
    enforce_bep42: bool = setting(
        False, "Enforce BEP 42 node ids", G.ROUTING,
        help="Refuse routing entries whose id does not match their IP (BEP 42). Whether an id "
             "matches is always recorded anyway.")
    derive_node_id: bool = setting(
        True, "Derive our id from our address", G.ROUTING,
        help="BEP 42: once responders in several networks agree on our public address, "
             "and whenever it changes, take a node id derived from it if ours does not "
             "match (loopback and private addresses are exempt). Off: keep the id we "
             "were given.")
    prefer_bep42: bool = setting(
        True, "Prefer BEP 42 node ids", G.ROUTING,
        help="Prefer nodes whose id matches their IP (BEP 42) when promoting a replacement "
             "candidate, and let only such nodes split our own bucket (libtorrent's "
             "dht_prefer_verified_node_ids).")
    restrict_subnets: bool = setting(
        True, "One node per subnet", G.ROUTING,
        help="At most one node per /24 (IPv4) or /64 (IPv6) in each bucket and among a "
             "lookup's K closest (libtorrent's dht_restrict_routing_ips and "
             "dht_restrict_search_ips): one host cannot surround a target with made-up ids.")
    restrict_local_subnets: bool = setting(
        False, "Subnet rule for local addresses", G.ROUTING,
        help="Apply the subnet rule to loopback and private addresses too. Off, the rule "
             "relaxes by itself on local test networks (where many nodes share 127.0.x.0/24); "
             "the simulated Mainline, which spreads its nodes over many /24s, turns it on.")
    verify_interval: float = setting(
        5 * 60, "Verification ping interval", G.ROUTING, unit="s", low=0, high=86_400,
        help="A node that never answered us is sent at most one verification ping per this "
             "many seconds (only an answer lets a node into a bucket).")
    verify_rate: float = setting(
        10.0, "Verification pings", G.ROUTING, unit="/s", low=0.1, high=10_000,
        help="Verification pings per second over all addresses (bursts of up to this many): "
             "a flood of spoofed queries cannot make us send more.")

    # --- address families (BEP 32) -------------------------------------------------------------
    # (choice(), like setting(), returns a dataclass field: nothing is called per instance)
    address_families: AddressFamilies = choice(  # noqa: RUF009
        AddressFamilies.BOTH, "DHTs to join", G.FAMILIES,
        help="ipv4, ipv6 or both: the IPv4 and the IPv6 DHT are two independent networks "
             "(BEP 32), each with its own node, socket and routing table; lookups and "
             "announces run in every DHT joined and their results are merged. With both, "
             "IPv6 is left out when the host cannot open an IPv6 socket.")

    # --- queries and lookups -------------------------------------------------------------------
    alpha: int = setting(
        5, "Parallel queries per lookup (α)", G.QUERIES, unit="queries", low=1, high=64,
        help="Queries a lookup keeps in flight to its K closest candidates (not counting those "
             "past the short timeout, nor those overtaken by closer candidates).")
    short_timeout: float = setting(
        1.0, "Short timeout", G.QUERIES, unit="s", low=0.01, high=60,
        help="After this, a silent query stops holding one of the α slots but may still "
             "answer. With the adaptive timeout this is its ceiling.")
    adaptive_timeout: bool = setting(
        True, "Adaptive short timeout", G.QUERIES,
        help="Derive the short timeout from recently observed round-trip times (twice their "
             "90th percentile), so a dead node costs about one slow round trip instead of a "
             "fixed second.")
    min_short_timeout: float = setting(
        0.25, "Adaptive timeout floor", G.QUERIES, unit="s", low=0.001, high=60,
        help="Floor of the adaptive short timeout (protects against a burst of very fast "
             "replies).")
    hard_timeout: float = setting(
        5.0, "Query timeout", G.QUERIES, unit="s", low=0.01, high=300,
        help="After this, a silent query has failed. At least the short timeout.")
    max_inflight_queries: int = setting(
        512, "Queries in flight", G.QUERIES, unit="queries", low=0, high=100_000,
        help="Transactions outstanding at once over the whole node; more are refused (0: the "
             "node sends no queries at all).")
    max_lookups: int = setting(
        64, "Concurrent lookups", G.QUERIES, unit="lookups", low=1, high=10_000,
        help="Lookups running at once; starting more is refused with an error.")
    max_peers_per_lookup: int = setting(
        5000, "Peers per lookup", G.QUERIES, unit="peers", low=1, high=1_000_000,
        help="Distinct peers one lookup collects: hostile nodes returning endless fake peers "
             "cannot grow a lookup (and its events) past this. Peers already known are still "
             "counted.")

    # --- server side ---------------------------------------------------------------------------
    read_only: bool = setting(
        False, "Read-only node (BEP 43)", G.SERVER,
        help="Send ro=1 and answer no queries: the node uses the DHT without serving it and "
             "stays out of other nodes' routing tables.")
    token_rotation: float = setting(
        5 * 60, "Token secret rotation", G.SERVER, unit="s", low=1, high=86_400,
        help="Announce-token secrets rotate this often; the previous secret is still accepted.")
    peer_ttl: float = setting(
        30 * 60, "Announced peers expire after", G.SERVER, unit="s", low=1, high=604_800,
        help="A stored peer is forgotten this long after its last announce.")
    max_info_hashes: int = setting(
        3000, "Info-hashes stored", G.SERVER, unit="info-hashes", low=0, high=10_000_000,
        help="Distinct info-hashes the peer store keeps.")
    max_peers_per_info_hash: int = setting(
        500, "Peers per info-hash", G.SERVER, unit="peers", low=0, high=1_000_000,
        help="Peers kept per info-hash.")
    max_stored_peers: int = setting(
        50_000, "Peers stored in all", G.SERVER, unit="peers", low=0, high=10_000_000,
        help="Peers kept over all info-hashes; past it, a new peer replaces the least recently "
             "announced one. A stored peer costs 460 to 680 bytes of memory, so without this "
             "cap whoever announces from enough addresses could grow the store to 1.5 million "
             "peers (about 700 MB). A node typically stores a few thousand.")
    max_peers_per_reply: int = setting(
        50, "Peers per reply", G.SERVER, unit="peers", low=1, high=1000,
        help="Peers returned in one get_peers reply (keeps the datagram small).")
    max_samples: int = setting(
        20, "Info-hashes per sample (BEP 51)", G.SERVER, unit="info-hashes", low=0, high=1000,
        help="Info-hashes returned in one sample_infohashes reply (libtorrent's figure). More "
             "would fit in a datagram, but would make a 100-byte query draw a 1,400-byte reply.")
    max_reply_bytes: int = setting(
        1400, "Largest reply", G.SERVER, unit="bytes", low=576, high=65_507,
        help="No reply datagram may exceed this (no amplification).")
    sample_interval: int = setting(
        300, "Sample refresh interval (BEP 51)", G.SERVER, unit="s", low=0, high=21_600,
        help="The BEP 51 interval we announce: when we store more info-hashes than one reply "
             "holds, the sample we return is drawn anew only this often (and a crawler should "
             "not ask again sooner). Deployed nodes say 21600; a monitoring node on a small "
             "network wants fresh samples sooner.")
    max_items: int = setting(
        2000, "Items stored (BEP 44)", G.SERVER, unit="items", low=0, high=1_000_000,
        help="BEP 44 items other nodes may store on us (each up to ~1.2 KB: 2.4 MB at the "
             "default); past it a new item replaces the least-put, least recently put one.")
    item_ttl: float = setting(
        2 * 3600, "Items expire after (BEP 44)", G.SERVER, unit="s", low=1, high=604_800,
        help="A stored BEP 44 item expires this long after its last put (the BEP allows 2 "
             "hours; publishers re-put hourly).")

    # --- BEP 51 crawler -------------------------------------------------------------------------
    crawl_rate: float = setting(
        20.0, "Crawl rate", G.CRAWLER, unit="queries/s", low=0.1, high=10_000,
        help="sample_infohashes queries per second a crawl sends at most (average; bursts of "
             "one second's worth).")
    crawl_max_inflight: int = setting(
        16, "Crawl queries in flight", G.CRAWLER, unit="queries", low=1, high=1000,
        help="sample_infohashes queries a crawl keeps outstanding at once.")
    crawl_max_known: int = setting(
        100_000, "Nodes a crawl remembers", G.CRAWLER, unit="nodes", low=1, high=10_000_000,
        help="Contacts beyond this are dropped: bounds a crawl's memory (about 200 bytes "
             "each).")
    crawl_max_visits: int = setting(
        4, "Visits per node", G.CRAWLER, unit="visits", low=1, high=100,
        help="Times a crawl asks one node (again only after its interval, and only while it "
             "holds more info-hashes than it returned).")

    # --- abuse protection ---------------------------------------------------------------------
    rate_limit: bool = setting(
        True, "Rate-limit incoming queries", G.ABUSE,
        help="Apply the per-IP and global budgets below to incoming queries. Malformed "
             "datagrams and unsolicited replies are charged to the sender's budget too (never "
             "answered, so not to the global one); while an IP is blocked its datagrams are "
             "dropped unparsed, except those that look like replies (a spoofed flood must not "
             "cut us off from a node we are querying).")
    per_ip_rate: float = setting(
        5.0, "Queries per IP", G.ABUSE, unit="/s", low=0.1, high=1_000_000,
        help="Queries per second one IP may send, averaged (token bucket refill rate).")
    per_ip_burst: float = setting(
        25.0, "Burst per IP", G.ABUSE, unit="queries", low=1, high=1_000_000,
        help="Queries one IP may send in a burst before the rate applies (at least 1, or "
             "nothing would ever be answered).")
    block_seconds: float = setting(
        60.0, "Block a flooding IP for", G.ABUSE, unit="s", low=0, high=86_400,
        help="An IP that keeps flooding past its budget is ignored this long.")
    max_tracked_ips: int = setting(
        10_000, "IPs tracked", G.ABUSE, unit="IPs", low=1, high=10_000_000,
        help="Bound on the rate limiter's per-IP table (the least recently seen is evicted).")
    global_reply_rate: float = setting(
        2000.0, "Replies in all", G.ABUSE, unit="/s", low=1, high=10_000_000,
        help="Replies per second over all IPs (token bucket refill rate).")
    global_reply_burst: float = setting(
        4000.0, "Reply burst in all", G.ABUSE, unit="replies", low=1, high=10_000_000,
        help="Replies that may go out in a burst over all IPs before the global rate applies.")
    max_queued_events: int = setting(
        200_000, "Undelivered events kept", G.ABUSE, unit="events", low=1, high=10_000_000,
        help="Events the node holds for a consumer that stops draining; past this the oldest "
             "are dropped (and counted).")

    # --- input ---------------------------------------------------------------------------------
    max_datagram_size: int = setting(
        8192, "Largest datagram accepted", G.INPUT, unit="bytes", low=1024, high=65_536,
        help="Larger incoming datagrams are dropped unparsed and counted as malformed.")
    max_bencode_depth: int = setting(
        8, "Nesting depth", G.INPUT, unit="levels", low=3, high=64,
        help="Deeper bencode nesting is a protocol error (KRPC needs at most 3; BEP 44 values "
             "may nest more).")

    client_version: bytes = setting(
        CLIENT_VERSION, "Client version", G.INPUT, editable=False,
        help="Our client code and version in the KRPC v key (2 letters and 2 version bytes).")

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for spec in setting_specs():
            value = getattr(self, spec.name)
            try:
                checked = check_value(spec, value)
            except SettingsError as err:
                problems.extend(err.problems)
                continue
            if checked is not value:
                object.__setattr__(self, spec.name, checked)  # an int given for a float
        if not problems and self.short_timeout > self.hard_timeout:
            why = (f"short_timeout ({self.short_timeout:g} s) must not exceed hard_timeout "
                   f"({self.hard_timeout:g} s)")
            problems += [("short_timeout", why), ("hard_timeout", why)]
        if problems:
            raise SettingsError(problems)


del G


@cache
def setting_specs() -> tuple[SettingSpec, ...]:
    """Every field of ``DhtSettings`` with its description, in declaration order."""
    out = []
    for f in fields(DhtSettings):
        # The annotation, not the default's type: ``good_period: float = setting(15 * 60, ...)``.
        default: Any = f.default
        name = f.type if isinstance(f.type, str) else f.type.__name__
        kind = type(default) if isinstance(default, enum.Enum) else _KINDS[name]
        default = float(default) if kind is float else default
        out.append(SettingSpec(f.name, kind, default, _info(f)))
    return tuple(out)


_KINDS: dict[str, type] = {"bool": bool, "int": int, "float": float, "bytes": bytes}


def _info(f: Field[Any]) -> SettingInfo:
    info = f.metadata.get(_META)
    if not isinstance(info, SettingInfo):
        raise TypeError(f"DhtSettings.{f.name} is not declared with setting()")
    return info


@cache
def _specs_by_name() -> dict[str, SettingSpec]:
    return {s.name: s for s in setting_specs()}


def spec_of(name: str) -> SettingSpec:
    """The spec of field ``name``; SettingsError (naming the closest known keys) if none."""
    spec = _specs_by_name().get(name)
    if spec is None:
        raise SettingsError([(name, f"unknown setting {name!r}{_did_you_mean(name)}")])
    return spec


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, list(_specs_by_name()), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_value(spec: SettingSpec, value: object) -> Any:
    """``value`` if it has the field's type and lies in its range (an int is accepted, as a
    float, for a float field); else SettingsError with one line saying what is expected."""
    name, kind = spec.name, spec.kind
    if spec.choices:
        try:
            return kind(value)  # a member, or a member's value
        except ValueError:
            raise SettingsError([(name, f"{name} must be one of {spec.range_text()} "
                                        f"(got {value!r})")]) from None
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError([(name, f"{name} must be true or false (got {value!r})")])
        return value
    if kind is bytes:
        if not isinstance(value, bytes):
            raise SettingsError([(name, f"{name} must be bytes (got {value!r})")])
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SettingsError([(name, f"{name} must be an integer in {spec.range_text()} "
                                        f"(got {value!r})")])
    elif not isinstance(value, int | float) or isinstance(value, bool):
        raise SettingsError([(name, f"{name} must be a number in {spec.range_text()} "
                                    f"(got {value!r})")])
    elif not math.isfinite(value):
        raise SettingsError([(name, f"{name} must be a finite number (got {value!r})")])
    else:
        value = float(value) if not isinstance(value, float) else value
    low, high = spec.info.low, spec.info.high
    assert low is not None and high is not None
    if not low <= value <= high:
        unit = f" {spec.info.unit}" if spec.info.unit else ""
        raise SettingsError([(name, f"{name} must be {spec.range_text()}{unit} "
                                    f"(got {_number(value)})")])
    return value


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_value(spec: SettingSpec, text: str) -> Any:
    """The value typed as ``text`` ("20", "0.5", "off"...), checked against ``spec`` (type and
    range); SettingsError saying what was expected. For the command line's ``--set`` and the
    preferences' text fields alike."""
    raw = text.strip()
    value: object = raw
    if spec.kind is bool:
        low = raw.lower()
        value = True if low in _TRUE else False if low in _FALSE else raw
    elif spec.kind in (int, float):
        with contextlib.suppress(ValueError):  # unparsed, check_value says what was expected
            value = int(raw, 10) if spec.kind is int else float(raw)
    return check_value(spec, value)


def format_value(value: object) -> str:
    """A value as people type it back: 8, 0.25, 900 (not 900.0 or 9e+02), true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def editable_specs() -> tuple[SettingSpec, ...]:
    """The user settings: every field but the client version."""
    return tuple(s for s in setting_specs() if s.info.editable)


def settings_with(base: DhtSettings, changes: dict[str, Any]) -> DhtSettings:
    """``base`` with ``changes`` (field name -> value); SettingsError naming every unknown key,
    wrong type or out-of-range value at once."""
    problems: list[tuple[str, str]] = []
    for name in changes:
        try:
            spec_of(name)
        except SettingsError as err:
            problems.extend(err.problems)
    if problems:
        raise SettingsError(problems)
    return replace(base, **changes)
