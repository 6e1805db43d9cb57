"""The BEP 51 samples a crawl collects, kept in SQLite (the standard library's ``sqlite3``).

Tables (schema version 1):

- ``infohashes``: every distinct info-hash sampled: first and last time seen, how many times it
  came back in a reply (``times``), and from how many distinct nodes (``nodes``);
- ``sightings``: (info-hash, node) pairs with the last time that node returned it: the incidence
  data the population estimate (``dht/population.py``) needs;
- ``nodes``: every node asked: its address, whether it speaks BEP 51 (``supported``), its last
  ``num`` (info-hashes it stores) and ``interval``, samples and replies received;
- ``replies``: one row per reply (time, node, samples, new info-hashes), for the per-minute
  rates of the Activity view.

Times are wall-clock seconds (``time.time()``), so a database outlives the process that wrote
it. Writes are grouped: ``record`` adds to the open transaction and ``commit`` ends it (the
session commits every second and at stop), so a busy crawl does not fsync per reply. The file
lives in the user state directory; a file that is not a usable database is moved aside
(``samples.sqlite3.corrupt-<time>``) and a fresh one started, as ``state_store`` does.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from dhtviewer.dht.messages import Addr
from dhtviewer.dht.population import PopulationEstimate, chao2

__all__ = [
    "SAMPLE_DB_NAME",
    "SampleStore",
    "SampleTotals",
    "SampledInfohash",
    "SamplerNode",
    "default_sample_db_path",
]

log = logging.getLogger(__name__)

SAMPLE_DB_NAME = "samples.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS infohashes (
    info_hash BLOB PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    times INTEGER NOT NULL,
    nodes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sightings (
    info_hash BLOB NOT NULL,
    node BLOB NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (info_hash, node)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sightings_at ON sightings (at);
CREATE TABLE IF NOT EXISTS nodes (
    node BLOB PRIMARY KEY,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    supported INTEGER NOT NULL,
    num INTEGER,
    interval INTEGER,
    samples INTEGER NOT NULL,
    replies INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replies (
    at REAL NOT NULL,
    node BLOB NOT NULL,
    samples INTEGER NOT NULL,
    new INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_at ON replies (at);
"""


def default_sample_db_path() -> Path:
    """``<user state dir>/dhtviewer/samples.sqlite3``."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("dhtviewer", appauthor=False)) / SAMPLE_DB_NAME


@dataclass(frozen=True, slots=True)
class SampledInfohash:
    info_hash: bytes
    times: int
    """Replies it came back in."""
    nodes: int
    """Distinct nodes that returned it."""
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class SamplerNode:
    node_id: bytes
    addr: Addr
    supported: bool
    """Answered ``sample_infohashes`` with a ``samples`` field (BEP 51)."""
    num: int | None
    """Info-hashes the node said it stores."""
    interval: int | None
    samples: int
    replies: int
    last_seen: float


@dataclass(frozen=True, slots=True)
class SampleTotals:
    info_hashes: int
    """Distinct info-hashes sampled."""
    samples: int
    """Samples received (with repeats)."""
    replies: int
    nodes_supporting: int
    nodes_without: int
    """Nodes that answered without BEP 51 (an error, or no ``samples``)."""


class SampleStore:
    """One sample database. ``path`` may be ``":memory:"`` (tests). ``readonly``: open an
    existing database for reading only (``sqlite3.OperationalError`` if there is none): what
    the Activity view does from a worker thread while the crawl writes through another
    connection (WAL mode lets a reader see the last commit without blocking the writer)."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = str(path)
        if readonly:
            uri = Path(self.path).absolute().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=True)
        else:
            self._db = _open(self.path)

    # --- writing -----------------------------------------------------------------------------
    def record(
        self,
        node_id: bytes,
        addr: Addr,
        samples: Sequence[bytes],
        num: int | None,
        interval: int | None,
        at: float,
    ) -> int:
        """A BEP 51 reply from ``node_id``: returns how many of ``samples`` are new info-hashes
        (never sampled before from any node)."""
        db = self._db
        new = 0
        for h in dict.fromkeys(samples):
            new_pair = db.execute(
                "INSERT OR IGNORE INTO sightings (info_hash, node, at) VALUES (?, ?, ?)",
                (h, node_id, at),
            ).rowcount
            if not new_pair:
                db.execute(
                    "UPDATE sightings SET at = ? WHERE info_hash = ? AND node = ?",
                    (at, h, node_id),
                )
            if db.execute(
                "INSERT OR IGNORE INTO infohashes VALUES (?, ?, ?, 1, 1)", (h, at, at)
            ).rowcount:
                new += 1
            else:
                db.execute(
                    "UPDATE infohashes SET last_seen = ?, times = times + 1, nodes = nodes + ? "
                    "WHERE info_hash = ?",
                    (at, new_pair, h),
                )
        self._upsert_node(node_id, addr, at, True, num, interval, len(samples))
        db.execute(
            "INSERT INTO replies VALUES (?, ?, ?, ?)", (at, node_id, len(samples), new)
        )
        return new

    def record_unsupported(self, node_id: bytes, addr: Addr, at: float) -> None:
        """``node_id`` answered ``sample_infohashes`` without BEP 51 (error or no samples)."""
        self._upsert_node(node_id, addr, at, False, None, None, 0)

    def _upsert_node(
        self,
        node_id: bytes,
        addr: Addr,
        at: float,
        supported: bool,
        num: int | None,
        interval: int | None,
        samples: int,
    ) -> None:
        replies = 1 if supported else 0
        self._db.execute(
            "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (node) DO UPDATE SET ip = excluded.ip, port = excluded.port, "
            "last_seen = excluded.last_seen, supported = excluded.supported, "
            "num = coalesce(excluded.num, num), interval = coalesce(excluded.interval, interval), "
            "samples = samples + excluded.samples, replies = replies + excluded.replies",
            (node_id, addr[0], addr[1], at, at, int(supported), num, interval, samples, replies),
        )

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.commit()
        self._db.close()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading -----------------------------------------------------------------------------
    def totals(self) -> SampleTotals:
        db = self._db
        (info_hashes,) = db.execute("SELECT count(*) FROM infohashes").fetchone()
        samples, replies = db.execute(
            "SELECT coalesce(sum(samples), 0), count(*) FROM replies"
        ).fetchone()
        supporting, without = db.execute(
            "SELECT coalesce(sum(supported), 0), coalesce(sum(1 - supported), 0) FROM nodes"
        ).fetchone()
        return SampleTotals(info_hashes, samples, replies, supporting, without)

    def top(self, limit: int = 50) -> list[SampledInfohash]:
        """The most frequently sampled info-hashes (by distinct nodes, then by replies)."""
        rows = self._db.execute(
            "SELECT info_hash, times, nodes, first_seen, last_seen FROM infohashes "
            "ORDER BY nodes DESC, times DESC, last_seen DESC LIMIT ?",
            (limit,),
        )
        return [SampledInfohash(*row) for row in rows]

    def nodes(self, limit: int = 200, supported: bool | None = True) -> list[SamplerNode]:
        """Nodes asked, most recently seen first (``supported``: only those that speak BEP 51,
        only those that do not, or None for all)."""
        where = "" if supported is None else f"WHERE supported = {int(supported)} "
        rows = self._db.execute(
            "SELECT node, ip, port, supported, num, interval, samples, replies, last_seen "
            f"FROM nodes {where}ORDER BY last_seen DESC LIMIT ?",
            (limit,),
        )
        return [
            SamplerNode(r[0], (r[1], r[2]), bool(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows
        ]

    def per_minute(self, since: float) -> list[tuple[float, int, int]]:
        """(minute start, samples received, new info-hashes) per minute from ``since`` on,
        minutes without replies left out."""
        rows = self._db.execute(
            "SELECT CAST(at / 60 AS INTEGER) * 60 AS minute, sum(samples), sum(new) "
            "FROM replies WHERE at >= ? GROUP BY minute ORDER BY minute",
            (since,),
        )
        return [(float(m), int(s), int(n)) for m, s, n in rows]

    def estimate(self, since: float | None = None) -> PopulationEstimate:
        """How many distinct info-hashes exist (Chao2), from the sightings since ``since``
        (all of them by default). The sampling units are the nodes that answered with BEP 51
        samples in that time, empty replies included."""
        start = float("-inf") if since is None else since
        db = self._db
        counts = dict(
            db.execute(
                "SELECT c, count(*) FROM (SELECT count(*) AS c FROM sightings WHERE at >= ? "
                "GROUP BY info_hash) GROUP BY c",
                (start,),
            ).fetchall()
        )
        (nodes,) = db.execute(
            "SELECT count(DISTINCT node) FROM replies WHERE at >= ?", (start,)
        ).fetchone()
        observed = sum(counts.values())
        return chao2(observed, counts.get(1, 0), counts.get(2, 0), max(nodes, 1 if observed else 0))

    def export_csv(self, dest: str | os.PathLike[str] | TextIO) -> int:
        """Every sampled info-hash as CSV (``info_hash,first_seen,last_seen,times,nodes``;
        times in ISO 8601 UTC). Returns the number of rows written."""
        if isinstance(dest, (str, os.PathLike)):
            with open(dest, "w", newline="", encoding="utf-8") as fh:
                return self.export_csv(fh)
        writer = csv.writer(dest)
        writer.writerow(["info_hash", "first_seen", "last_seen", "times", "nodes"])
        count = 0
        for h, first, last, times, nodes in self._db.execute(
            "SELECT info_hash, first_seen, last_seen, times, nodes FROM infohashes "
            "ORDER BY first_seen, info_hash"
        ):
            writer.writerow([h.hex(), _iso(first), _iso(last), times, nodes])
            count += 1
        return count

    def info_hashes(self) -> Iterable[bytes]:
        for (h,) in self._db.execute("SELECT info_hash FROM infohashes"):
            yield h


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _open(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        return _connect(path)
    except sqlite3.DatabaseError as err:
        if path == ":memory:":
            raise
        backup = f"{path}.corrupt-{int(time.time())}"
        log.warning("sample database %s is unusable (%s); moved to %s", path, err, backup)
        os.replace(path, backup)
        return _connect(path)


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"schema version {row[0]}, expected {SCHEMA_VERSION}")
        db.commit()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
