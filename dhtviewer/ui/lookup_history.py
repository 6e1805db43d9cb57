"""The lookup history kept between runs: a bounded JSON file beside the node state.

The user's finished lookups (not the node's own bootstrap and refresh lookups) are written when
the window closes, the newest ``MAX_SAVED`` of them, each with its path graph and peers (capped,
so one huge lookup cannot make the file huge), and read back at the next launch, so a lookup
history row selected after a relaunch redraws its graph and lists its peers as before: every
query's outcome (slow ones, error replies and their text included) and a scrape's BEP 33
estimate. BEP 44 get/put lookups are not kept: their results live in the Items panel.

Times are stored as wall-clock seconds: the core's clock restarts with the process. Restored
lookups get negative ids, which no live lookup ever has, so they can never be confused with
one. A restored record is rebuilt by replaying the events that made it, through the same code
that follows a live lookup. How many nodes returned a peer is kept as a count, replayed as that
many stand-in sources (the ids themselves would be most of the file, and only their number is
ever shown). A lookup run in both address families (BEP 32: one row for the IPv4 and the IPv6
lookup) is saved as one record naming its families and comes back as one record with a part per
family, each node and peer replayed in its own family's part (so the graph never joins the two
DHTs). A missing file is an empty history; an unreadable one is logged and skipped, the
app starts all the same. Writes are atomic (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dhtviewer.dht import events as ev
from dhtviewer.dht.families import FAMILIES
from dhtviewer.dht.kinds import LookupKind
from dhtviewer.net.state_store import replace_file
from dhtviewer.ui.lookup_state import ERROR, OUTCOMES, RETURNED_PEERS, TIMED_OUT, LookupState

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILE_NAME = "lookup-history.json"
MAX_SAVED = 50
"""Lookups kept: the newest finished ones."""
MAX_NODES = 500
"""Queried nodes kept per lookup (the first ones: the path as it was walked)."""
MAX_PEERS = 1000
"""Peers kept per lookup (the first found)."""
SAVED_KINDS = frozenset({"get_peers", "find_node", "announce"})

Params = dict[str, int | float]


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected hex text, got {value!r}")
    data = bytes.fromhex(value)
    if len(data) != 20:
        raise ValueError(f"expected a 20-byte id, got {len(data)} bytes")
    return data


def encode(state: LookupState, wall_offset: float, params: Params) -> dict[str, Any]:
    """``state`` as JSON-ready data; times in wall-clock seconds (``at + wall_offset``)."""
    start = state.started_at
    nodes = [
        [n.addr[0], n.addr[1], _hex(n.node_id), n.depth, _hex(n.referrer),
         round(n.sent_at - start, 4), n.outcome, n.rtt, n.nodes_returned, n.peers_returned,
         n.error, n.slow]
        for n in list(state.nodes.values())[:MAX_NODES]
    ]
    scrape = state.scrape
    peers = [[p.addr[0], p.addr[1], round(p.first_seen - start, 4), p.count]
             for p in list(state.peers.values())[:MAX_PEERS]]
    return {
        "target": state.target.hex(),
        "kind": state.kind,
        # the first lookup's family first (a record's id is its first lookup's)
        "families": [state.family, *(f for f in state.families if f != state.family)],
        "started": start + wall_offset,
        "elapsed": state.elapsed(),
        "cancelled": state.cancelled,
        "announce_done": state.announce_done,
        "stored_at": [list(a) for a in state.stored_at],
        "announce_failed": [list(a) for a in state.announce_failed],
        "closest": [[i.hex(), a[0], a[1]] for i, a in state.closest],
        # the BEP 33 estimate of a lookup started with "Scrape" (every family's added up)
        "scrape": None if scrape is None else [
            scrape.seeds, scrape.downloaders, scrape.nodes, scrape.legacy, scrape.saturated,
            scrape.cancelled],
        "params": dict(params),
        "nodes": nodes,
        "peers": peers,
    }


def _addr(value: object) -> tuple[str, int]:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str)
            or not isinstance(value[1], int)):
        raise ValueError(f"expected [ip, port], got {value!r}")
    return (value[0], value[1])


_STAND_IN = b"\xff" * 18
"""Prefix of the stand-in source ids of restored peers (see the module docstring)."""


def _family(addr: tuple[str, int]) -> int:
    return 6 if ":" in addr[0] else 4


def _families(doc: Mapping[str, Any]) -> list[int]:
    raw = doc.get("families", [4])
    if (not isinstance(raw, list) or not raw or len(set(raw)) != len(raw)
            or any(f not in FAMILIES for f in raw)):
        raise ValueError(f"families must list 4 and/or 6, got {raw!r}")
    return [int(f) for f in raw]


def decode(doc: Mapping[str, Any], lookup_ids: Sequence[int], wall_offset: float) -> tuple[
        LookupState, Params]:
    """A finished ``LookupState`` from ``encode``'s data, and its parameters. ``lookup_ids``:
    the id of its lookup in each of its families, in the order saved (the record's id is the
    first); give at least as many as the record has families. The record is rebuilt by
    replaying the events that made it, so it is folded by the same code as a live lookup.
    Raises ``ValueError`` (or ``KeyError``/``TypeError``) on malformed data."""
    target = _unhex(doc["target"])
    assert target is not None
    kind = LookupKind(str(doc["kind"]))  # ValueError if unknown
    families = _families(doc)
    if len(lookup_ids) < len(families):
        raise ValueError(f"{len(families)} families need as many lookup ids")
    part = dict(zip(families, lookup_ids, strict=False))
    first = lookup_ids[0]

    def lid(addr: tuple[str, int]) -> int:
        # a node or peer of a family the record does not name goes to the first lookup
        return part.get(_family(addr), first)

    start = float(doc["started"]) - wall_offset
    elapsed = float(doc["elapsed"])
    state = LookupState(first, target, kind, start, families[0])
    for fam in families[1:]:
        state.add_part(part[fam], fam, start)
    events: list[ev.Event] = []
    answers: list[ev.Event] = []
    for raw in doc["nodes"]:
        ip, port, node_id, depth, referrer, sent, outcome, rtt, returned, peers, error, slow = raw
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        if slow not in (None, False, True):  # None: a file written before slow queries
            raise ValueError(f"slow must be true or false, got {slow!r}")
        addr, ident, at = (str(ip), int(port)), _unhex(node_id), start + float(sent)
        events.append(ev.LookupQuerySent(lid(addr), ident, addr, _unhex(referrer), int(depth),
                                         at))
        if slow:
            # before its answer or its end: a slow query may still answer
            answers.append(ev.LookupQuerySlow(lid(addr), ident, addr, at))
        if outcome == ERROR:
            answers.append(ev.LookupQueryError(lid(addr), ident, addr,
                                               "" if error is None else str(error), at))
        elif ident is not None and rtt is not None:
            answers.append(ev.LookupResponse(lid(addr), ident, addr, float(rtt), int(returned),
                                             int(peers), at + float(rtt)))
            if outcome == RETURNED_PEERS and not peers:
                answers.append(ev.PeersFound(lid(addr), ident, (), at + float(rtt)))
        elif outcome == TIMED_OUT:
            answers.append(ev.LookupTimeout(lid(addr), ident, addr, at))
    events.extend(answers)
    # each peer first found when it was, then returned again by as many stand-in sources as
    # the nodes that returned it
    counts: list[tuple[tuple[str, int], int]] = []
    for ip, port, seen, count in doc["peers"]:
        addr = (str(ip), int(port))
        events.append(ev.PeersFound(lid(addr), _STAND_IN + (0).to_bytes(2, "big"), (addr,),
                                    start + float(seen)))
        counts.append((addr, int(count)))
    for i in range(1, max((c for _, c in counts), default=1)):
        for lookup_id in lookup_ids[:len(families)]:
            again = tuple(a for a, c in counts if c > i and lid(a) == lookup_id)
            if again:
                events.append(ev.PeersFound(lookup_id, _STAND_IN + i.to_bytes(2, "big"), again,
                                            start + elapsed))
    closest = tuple((_unhex(i) or b"", (str(ip), int(port))) for i, ip, port in doc["closest"])
    stored_at = tuple(_addr(a) for a in doc["stored_at"])
    failed = tuple(_addr(a) for a in doc["announce_failed"])
    for fam in families:
        mine = part[fam]
        events.append(ev.LookupFinished(
            mine, target, kind, (), tuple(c for c in closest if lid(c[1]) == mine), 0, 0,
            elapsed, bool(doc["cancelled"]), start + elapsed, fam))
        if doc["announce_done"]:
            events.append(ev.AnnounceFinished(
                mine, target, 0, tuple(a for a in stored_at if lid(a) == mine),
                tuple(a for a in failed if lid(a) == mine), start + elapsed))
    scrape = doc.get("scrape")
    if scrape is not None:
        seeds, downloaders, nodes, legacy, saturated, cancelled = scrape
        # the sum over the families, as the record shows it: replayed as the first's report
        events.append(ev.ScrapeFinished(first, target, float(seeds), float(downloaders),
                                        int(nodes), int(legacy), bool(saturated),
                                        bool(cancelled), start + elapsed))
    for event in events:
        state.apply(event)
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params is not an object")
    return state, {str(k): v for k, v in params.items() if isinstance(v, int | float)}


def save_history(path: Path, lookups: Iterable[LookupState], wall_offset: float,
                 params: Mapping[int, Params]) -> int:
    """Write the newest ``MAX_SAVED`` finished user lookups of ``lookups`` (oldest first);
    returns how many. Raises ``OSError`` if the file cannot be written (the old one stays)."""
    kept = [s for s in lookups if s.finished and s.kind in SAVED_KINDS][-MAX_SAVED:]
    doc = {"version": FORMAT_VERSION,
           "lookups": [encode(s, wall_offset, params.get(s.lookup_id, {})) for s in kept]}
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)
    return len(kept)


def load_history(path: Path, wall_offset: float) -> list[tuple[LookupState, Params]]:
    """The lookups saved in ``path`` (oldest first), with ids -1, -2, ... from the newest (the
    parts of a lookup of both families: ids after every record's); [] if there is no file. A
    malformed file or record is logged and skipped, never raised."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as err:
        log.warning("cannot read the lookup history %s: %s", path, err)
        return []
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a version {FORMAT_VERSION} lookup history")
        records = doc["lookups"]
        if not isinstance(records, list):
            raise ValueError("'lookups' is not a list")
    except (ValueError, KeyError) as err:
        log.warning("lookup history %s not restored: %s", path, err)
        return []
    out: list[tuple[LookupState, Params]] = []
    records = records[-MAX_SAVED:]
    for n, record in enumerate(records):
        ids = (-(len(records) - n), -(2 * len(records) - n))
        try:
            out.append(decode(record, ids, wall_offset))
        except (ValueError, KeyError, TypeError, AssertionError) as err:
            log.warning("lookup history %s: record %d skipped: %s", path, n + 1, err)
    return out
