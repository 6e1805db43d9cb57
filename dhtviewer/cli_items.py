"""The ``get``, ``put`` and ``sample`` subcommands: BEP 44 items and BEP 51 samples from the
command line.

    dhtviewer get TARGET_HEX [--salt S] [--json]
    dhtviewer put --immutable [--format F] VALUE
    dhtviewer put --mutable --key FILE [--salt S] [--seq N] [--format F] VALUE
    dhtviewer sample HOST:PORT | --crawl --minutes M [--rate R] [--db PATH] [--csv PATH]

``VALUE`` and ``--salt`` are taken as the bytes typed (a value is stored as a bencoded string,
as libtorrent's ``dht_put_mutable_item`` stores its data); ``--format hex`` reads VALUE as hex
digits, ``--format json`` as JSON (integers, lists and dicts stay themselves; the GUI's Items
panel reads values the same way, ``item_format.parse_value``). ``--key FILE`` holds a 32-byte
ed25519 seed and is created (mode 0600) when missing. Output is a few lines for people, or one
JSON object (``--json``): ``target`` and ``public_key`` in hex, ``seq``, ``stored_at`` (how
many nodes stored it), ``value`` (text; hex with ``"value_encoding": "hex"`` when it is not
UTF-8; other bencoded types as JSON). Exit codes as for the other commands: 1 when nothing was
found, stored or sampled; 2 for bad arguments (a malformed target, an unusable key file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from dhtviewer.cli import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _error,
    _hostport,
    _positive,
    _print_json,
    _start_session,
    _wait_ready,
    node_settings,
)
from dhtviewer.dht.addresses import format_addr, ip_family, is_loopback
from dhtviewer.dht.item_lookup import PutRequest
from dhtviewer.dht.items import MAX_SEQ, ItemError
from dhtviewer.dht.settings import DhtSettings
from dhtviewer.item_format import (
    TargetError,
    ValueFormat,
    ValueFormatError,
    parse_target,
    parse_value,
    value_json,
    value_text,
)
from dhtviewer.net.keys import KeyFileError, load_or_create_key
from dhtviewer.net.resolve import resolve_addrs
from dhtviewer.net.sample_store import SampleStore, default_sample_db_path
from dhtviewer.net.session import BindError, DhtSession

__all__ = ["RUNNERS", "add_item_commands"]

_PROGRESS_EVERY = 10.0


def _target(text: str) -> bytes:
    try:
        return parse_target(text)
    except TargetError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _seq(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= MAX_SEQ:
        raise argparse.ArgumentTypeError(f"seq must be 0..2**63-1, got {text}")
    return value


def _raw(text: str) -> bytes:
    """The bytes the user typed (undecodable bytes of the command line kept as they were)."""
    return os.fsencode(text)


def add_item_commands(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Add ``get``, ``put`` and ``sample`` to the subcommand parsers ``sub``."""
    g = sub.add_parser(
        "get", parents=parents, help="fetch a BEP 44 item",
        description="Bootstrap, then look up the newest valid BEP 44 item under a target "
        "(SHA-1 of an immutable value, or of a public key and salt). Exit 1 if none is found.",
    )
    g.add_argument("target", type=_target, metavar="TARGET_HEX")
    g.add_argument("--salt", type=_raw, default=b"", metavar="S",
                   help="the salt a mutable item was put with (it is not on the wire, but "
                   "every copy is checked against it)")

    p = sub.add_parser(
        "put", parents=parents, help="store a BEP 44 item",
        description="Bootstrap, then store VALUE (as a bencoded string) on the nodes closest "
        "to its target. Exit 1 if no node stored it.",
    )
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--immutable", action="store_true",
                      help="stored under the SHA-1 of the value; cannot change")
    kind.add_argument("--mutable", action="store_true",
                      help="signed with --key; stored under SHA-1(public key + salt)")
    p.add_argument("--key", metavar="FILE",
                   help="ed25519 key file (32-byte seed), created (mode 0600) if missing")
    p.add_argument("--salt", type=_raw, default=b"", metavar="S",
                   help="up to 64 bytes: one key can publish several items")
    p.add_argument("--seq", type=_seq, metavar="N",
                   help="sequence number (default: the newest found + 1)")
    p.add_argument("--format", choices=[str(f) for f in ValueFormat], default="text",
                   help="how VALUE is read: text (default: the bytes typed, stored as a "
                   "string), hex (the bytes the digits spell) or json")
    p.add_argument("value", type=_raw, metavar="VALUE")

    s = sub.add_parser(
        "sample", parents=parents, help="BEP 51 samples: one node, or a crawl",
        description="Ask one node for a sample of the info-hashes it stores, or crawl the DHT "
        "for --minutes (samples kept in SQLite, optionally exported as CSV).",
    )
    s.add_argument("node", type=_hostport, nargs="?", metavar="HOST:PORT")
    s.add_argument("--crawl", action="store_true", help="walk the DHT instead of one node")
    s.add_argument("--minutes", type=_positive(float), default=1.0, metavar="M",
                   help="how long to crawl (default 1)")
    s.add_argument("--rate", type=_positive(float), metavar="R",
                   help=f"queries per second at most (default {DhtSettings().crawl_rate:g})")
    s.add_argument("--db", metavar="PATH",
                   help="sample database (default: samples.sqlite3 in the user state dir)")
    s.add_argument("--csv", metavar="PATH", help="export every sampled info-hash here")


# --- get / put -----------------------------------------------------------------------------------
def _value_fields(raw: bytes) -> dict[str, object]:
    value, encoding = value_json(raw)
    return {"value": value, "value_encoding": encoding}


async def _ready_session(args: argparse.Namespace) -> DhtSession | None:
    session = await _start_session(args, 0)
    if not await _wait_ready(session, args.timeout):
        await session.stop()
        return None
    return session


async def _get(args: argparse.Namespace) -> int:
    session = await _ready_session(args)
    if session is None:
        return EXIT_FAILED
    try:
        result = await session.get_item(args.target, args.salt, timeout=args.timeout)
    finally:
        await session.stop()
    doc: dict[str, object] = {
        "target": result.target.hex(),
        "found": result.found,
        "public_key": result.public_key.hex() if result.public_key else None,
        "seq": result.seq,
        "holders": len(result.holders),
        "rejected": result.rejected,
        "reasons": list(result.reasons),
        "elapsed_s": round(result.lookup.elapsed, 4),
    }
    if result.value is not None:
        doc.update(_value_fields(result.value))
    if args.json:
        _print_json(doc)
    else:
        print(f"target     {result.target.hex()}")
        if result.value is None:
            print("value      none found")
        else:
            if result.public_key is not None:
                print(f"public key {result.public_key.hex()}")
                print(f"seq        {result.seq}")
            print(f"value      {value_text(result.value)}")
            print(f"holders    {len(result.holders)} nodes returned it")
        for reason in result.reasons:
            print(f"rejected   {reason}")
    if result.value is None:
        why = f" ({result.rejected} copies rejected: {result.reasons[0]})" if result.reasons else ""
        _error(f"no valid item found under {result.target.hex()}{why}")
        return EXIT_FAILED
    return EXIT_OK


def _value(args: argparse.Namespace) -> object:
    if args.format == ValueFormat.TEXT:
        return args.value  # the bytes typed, undecodable ones included
    try:
        return parse_value(os.fsdecode(args.value), args.format)
    except ValueFormatError as err:
        raise UsageError(f"VALUE ({args.format}): {err}") from None


def _put_request(args: argparse.Namespace) -> tuple[PutRequest, str | None]:
    value = _value(args)
    if args.immutable:
        if args.key or args.salt or args.seq is not None:
            raise UsageError("--key, --salt and --seq are for --mutable items")
        try:
            return PutRequest(value), None
        except ItemError as err:
            raise UsageError(err.reason) from None
    if not args.key:
        raise UsageError("a --mutable item needs --key FILE (created if missing)")
    try:
        seed, created = load_or_create_key(args.key)
    except KeyFileError as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot create key file {args.key}: {err.strerror or err}") from None
    try:
        request = PutRequest(value, seed=seed, salt=args.salt, seq=args.seq)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return request, (args.key if created else None)


async def _put(args: argparse.Namespace) -> int:
    request, created = _put_request(args)
    if created is not None:
        pk = request.public_key
        print(f"dhtviewer: created key {created} (public key {pk.hex() if pk else '?'})",
              file=sys.stderr)
    session = await _ready_session(args)
    if session is None:
        return EXIT_FAILED
    try:
        result = await session.put_item(request, timeout=args.timeout)
    finally:
        await session.stop()
    doc: dict[str, object] = {
        "target": result.target.hex(),
        "public_key": result.public_key.hex() if result.public_key else None,
        "seq": result.seq,
        "stored_at": len(result.stored_at),
        "stored_at_nodes": [format_addr(a) for a in result.stored_at],
        "failed": [{"addr": format_addr(a), "reason": why} for a, why in result.failed],
        "elapsed_s": round(result.lookup.elapsed, 4),
        **_value_fields(request.raw_value),
    }
    if args.json:
        _print_json(doc)
    else:
        print(f"target     {result.target.hex()}")
        if result.public_key is not None:
            print(f"public key {result.public_key.hex()}")
            print(f"seq        {result.seq}")
        print(f"stored at  {len(result.stored_at)} nodes")
        for a in result.stored_at:
            print(f"  {format_addr(a)}")
        for a, why in result.failed:
            print(f"refused    {format_addr(a)}: {why}")
    if not result.stored_at:
        _error("no node stored the item")
        return EXIT_FAILED
    return EXIT_OK


# --- sample --------------------------------------------------------------------------------------
async def _sample(args: argparse.Namespace) -> int:
    if args.crawl == (args.node is not None):
        raise UsageError("give either HOST:PORT (one node) or --crawl")
    if args.crawl:
        return await _crawl(args)
    targets, errors = await resolve_addrs([args.node])
    if not targets:
        raise UsageError(errors[0])
    target = targets[0]
    six = ip_family(target[0]) == 6
    if args.bind is not None:
        bind = args.bind
    elif is_loopback(target[0]):
        bind = ("::1" if six else "127.0.0.1", 0)
    else:
        bind = ("::" if six else "0.0.0.0", 0)
    session = DhtSession(node_settings(args, read_only=True), bind=bind)
    try:
        await session.start([], wait=False)
    except BindError as err:
        raise UsageError(str(err)) from None
    try:
        result = await session.sample(target, timeout=args.timeout)
    except TimeoutError:
        _error(f"no answer from {format_addr(target)} within {args.timeout:g} s")
        return EXIT_FAILED
    finally:
        await session.stop()
    doc = {
        "node": format_addr(target),
        "id": result.node_id.hex() if result.node_id else None,
        "bep51": result.error is None,
        "num": result.num,
        "interval": result.interval,
        "samples": [h.hex() for h in result.samples],
        "error": result.error,
    }
    if args.json:
        _print_json(doc)
    elif result.error is None:
        print(f"{format_addr(target)}  stores {result.num} info-hashes, sample of "
              f"{len(result.samples)}, ask again after {result.interval} s")
        for h in result.samples:
            print(f"  {h.hex()}")
    if result.error is not None:
        _error(f"{format_addr(target)} does not answer BEP 51: {result.error}")
        return EXIT_FAILED
    return EXIT_OK


async def _crawl(args: argparse.Namespace) -> int:
    db_path = Path(args.db) if args.db else default_sample_db_path()
    store = SampleStore(db_path)
    session = await _ready_session(args)
    if session is None:
        store.close()
        return EXIT_FAILED
    started = time.time()
    try:
        recorder = session.start_crawl(store, rate=args.rate)
        end = time.monotonic() + args.minutes * 60
        next_line = time.monotonic() + _PROGRESS_EVERY
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.5))
            if not args.json and time.monotonic() >= next_line:
                f = recorder.figures()
                print(f"crawl {f.elapsed:5.0f} s: {f.replies} replies from "
                      f"{f.supporting} BEP 51 nodes, {f.samples} samples, {f.distinct} "
                      f"distinct info-hashes", file=sys.stderr, flush=True)
                next_line += _PROGRESS_EVERY
        session.stop_crawl()
    finally:
        await session.stop()
    fig = recorder.figures()
    estimate = store.estimate(since=started)
    exported = store.export_csv(args.csv) if args.csv else None
    store.close()
    doc = {
        "database": str(db_path),
        "elapsed_s": round(fig.elapsed, 1),
        "rate": fig.rate,
        "replies": fig.replies,
        "samples": fig.samples,
        "samples_per_minute": round(fig.samples_per_minute, 1),
        "distinct_info_hashes": fig.distinct,
        "bep51_nodes": fig.supporting,
        "other_nodes": fig.without,
        "timeouts": fig.failed,
        "estimate": {
            "info_hashes": round(estimate.estimate),
            "low": round(estimate.low),
            "high": round(estimate.high),
            "reliable": estimate.reliable,
            "method": "Chao2 (bias-corrected), 95% log-normal interval",
        },
        "csv": args.csv,
        "csv_rows": exported,
    }
    if args.json:
        _print_json(doc)
    else:
        print(f"crawled    {fig.elapsed:.0f} s at up to {fig.rate:g} queries/s")
        print(f"replies    {fig.replies} from {fig.supporting} BEP 51 nodes "
              f"({fig.without} without BEP 51, {fig.failed} timeouts)")
        print(f"samples    {fig.samples} ({fig.samples_per_minute:.0f} per minute), "
              f"{fig.distinct} distinct info-hashes")
        flag = "" if estimate.reliable else " (too few repeat sightings to be reliable)"
        print(f"estimate   {estimate.estimate:.0f} info-hashes exist "
              f"(95%: {estimate.low:.0f}-{estimate.high:.0f}){flag}")
        print(f"database   {db_path}")
        if args.csv:
            print(f"csv        {args.csv} ({exported} rows)")
    if fig.replies == 0:
        _error("no node answered with BEP 51 samples")
        return EXIT_FAILED
    return EXIT_OK


RUNNERS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "get": _get,
    "put": _put,
    "sample": _sample,
}
