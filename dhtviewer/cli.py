"""The ``dhtviewer`` command: the GUI by default, and headless subcommands for scripts.

Subcommands: ``lookup`` (``--scrape``: BEP 33 swarm estimate), ``announce``, ``ping``, ``get`` and
``put`` (BEP 44 items), ``sample`` (BEP 51: one node, or ``--crawl``) (one operation, human or
``--json`` output; ``get``/``put``/``sample`` are in ``cli_items.py``),
``node`` (a headless node until interrupted), ``testnet`` (a local test network until
interrupted), ``simnet`` (a simulated internet-scale Mainline until interrupted),
``selftest`` (the whole application, checked offline in a few seconds) and ``settings`` (every
DHT setting with its range and default, or a TOML template).
Every command that runs a node takes ``--config FILE.toml`` and ``--set KEY=VALUE`` (see
``config.py``).
Exit codes: 0 success, 1 the operation failed (no answer, stored nowhere, bootstrap timed out),
2 bad arguments (malformed info-hash or address, busy port, a setting out of range) with a
one-line message on stderr, 130 interrupted.

The one-shot commands run a BEP 43 read-only node: it queries the DHT but answers nothing and
stays out of other nodes' routing tables, as befits a node that exits a moment later.

Every command but ``ping`` joins the IPv4 and the IPv6 DHT (BEP 32; ``--set
address_families=ipv4`` keeps to one) and reports per family where the figures differ (lookup,
announce, node); ``ping`` uses one socket, of the target's family.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from dhtviewer import __version__
from dhtviewer.config import ConfigError, setting_changes, toml_template
from dhtviewer.dht.addresses import (
    format_addr,
    ip_family,
    is_loopback,
    parse_hostport,
    socket_family,
)
from dhtviewer.dht.families import AddressFamilies, family_name
from dhtviewer.dht.settings import DhtSettings, editable_specs
from dhtviewer.infohash import InfohashError, parse_infohash_note
from dhtviewer.net.session import (
    DEFAULT_BOOTSTRAP,
    BindError,
    BootstrapError,
    DhtSession,
    SessionEvent,
    StateChanged,
    resolve_addrs,
)
from dhtviewer.net.state_store import default_state_path
from dhtviewer.net.testnet import LocalTestnet

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_PORT = 6881

log = logging.getLogger("dhtviewer")


class UsageError(Exception):
    """A bad argument found after parsing (busy port, unresolvable name): exit 2."""


class Failure(Exception):
    """The operation could not be done (network unreachable...): exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: scripts log it, people read it.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# --- argument types (argparse turns ValueError/ArgumentTypeError into the error line) ----------
def _info_hash(text: str) -> bytes:
    try:
        info_hash, note = parse_infohash_note(text)
    except InfohashError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if note is not None:  # a v2 magnet: say which hash is looked up
        print(f"note: {note}: {info_hash.hex()}", file=sys.stderr)
    return info_hash


def _hostport(text: str) -> tuple[str, int]:
    try:
        return parse_hostport(text, DEFAULT_PORT)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _bind(text: str) -> tuple[str, int]:
    try:
        return parse_hostport(text, allow_port_zero=True)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(kind: type[int] | type[float]) -> argparse._ActionType:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return convert


def _metrics_addr(text: str) -> tuple[str, int]:
    """``PORT`` (on 127.0.0.1) or ``HOST:PORT``."""
    if text.isdigit():
        return "127.0.0.1", _port(text)
    try:
        return parse_hostport(text, allow_port_zero=True)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _simnet_size(text: str) -> int:
    if not text.isdigit() or not 1000 <= int(text) <= 10_000_000:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (expected 1000-10000000 nodes)")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (expected 0-65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dhtviewer",
        description="A BitTorrent Mainline DHT node with a live view of what it does. "
        "Without a subcommand the desktop application starts.",
    )
    p.add_argument("--version", action="version", version=f"dhtviewer {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv)")
    gui = p.add_argument_group("desktop application")
    gui.add_argument("--testnet", type=_positive(int), metavar="N",
                     help="also run a local test network of N nodes and bootstrap from it")
    gui.add_argument("--simnet", type=_simnet_size, metavar="N",
                     help="also run a simulated Mainline of N nodes (a child process) and "
                     "bootstrap from it")
    gui.add_argument("--bind", type=_bind, metavar="HOST:PORT", help="UDP address of the node")
    gui.add_argument("--bootstrap", type=_hostport, action="append", metavar="HOST:PORT",
                     help="bootstrap node (repeatable; default: the public routers)")
    gui.add_argument("--state-file", metavar="PATH", help="node id and contacts are kept here")

    verbose = _Parser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="more log output (-vv)")
    net = _Parser(add_help=False)
    net.add_argument("--bootstrap", type=_hostport, action="append", metavar="HOST:PORT",
                     help="bootstrap node (repeatable; default: the public routers)")
    net.add_argument("--bind", type=_bind, metavar="HOST:PORT",
                     help="local UDP address (default 0.0.0.0:0, or 127.0.0.1:0 when every "
                     "bootstrap node is on loopback)")
    net.add_argument("--allow-local", action="store_true",
                     help="accept private and loopback contacts (automatic when every "
                     "bootstrap node is local)")
    net.add_argument("--timeout", type=_positive(float), default=30.0, metavar="S",
                     help="give up each phase (bootstrap, lookup) after S seconds (default 30)")
    out = _Parser(add_help=False)
    out.add_argument("--json", action="store_true", help="one JSON object on stdout")
    cfg = _Parser(add_help=False)
    dht = cfg.add_argument_group("DHT settings (list them with: dhtviewer settings)")
    dht.add_argument("--config", metavar="FILE.toml",
                     help="read DHT settings from a TOML file (dhtviewer settings --toml "
                     "writes a template)")
    dht.add_argument("--set", action="append", default=[], dest="set_values",
                     metavar="KEY=VALUE",
                     help="change one DHT setting, e.g. --set k=20 --set rate_limit=off "
                     "(repeatable; wins over --config)")

    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    lk = sub.add_parser("lookup", parents=[verbose, net, out, cfg],
                        help="find peers for an info-hash",
                        description="Bootstrap, then find peers for an info-hash.")
    lk.add_argument("info_hash", type=_info_hash, metavar="INFOHASH_OR_MAGNET")
    lk.add_argument("--scrape", action="store_true",
                    help="also estimate the swarm's seeds and downloaders (BEP 33 scrape of "
                    "the closest nodes)")

    from dhtviewer.cli_items import add_item_commands

    add_item_commands(sub, [verbose, net, out, cfg])

    an = sub.add_parser("announce", parents=[verbose, net, out, cfg],
                        help="announce that we have an info-hash",
                        description="Bootstrap, then announce an info-hash to the nodes "
                        "closest to it. Exit 1 if no node stored it.")
    an.add_argument("info_hash", type=_info_hash, metavar="INFOHASH_OR_MAGNET")
    an.add_argument("--port", type=_port, metavar="P", help="TCP port peers should connect to")
    an.add_argument("--implied-port", action="store_true",
                    help="peers use our UDP source port instead of --port")

    pg = sub.add_parser("ping", parents=[verbose, out, cfg], help="ping one DHT node",
                        description="Send one KRPC ping and report the answer.")
    pg.add_argument("target", type=_hostport, metavar="HOST:PORT")
    pg.add_argument("--bind", type=_bind, metavar="HOST:PORT",
                    help="local UDP address (default 0.0.0.0:0, 127.0.0.1:0 for a loopback target)")
    pg.add_argument("--timeout", type=_positive(float), default=5.0, metavar="S",
                    help="wait this long for the answer (default 5)")

    nd = sub.add_parser("node", parents=[verbose, cfg],
                        help="run a headless node until interrupted",
                        description="Run a DHT node without the GUI until SIGINT/SIGTERM, "
                        "printing a stats line every few seconds; the state is saved on exit.")
    nd.add_argument("--bootstrap", type=_hostport, action="append", metavar="HOST:PORT",
                    help="bootstrap node (repeatable; default: the public routers)")
    nd.add_argument("--bind", type=_bind, metavar="HOST:PORT",
                    help="local UDP address (default 0.0.0.0:6881, 127.0.0.1:6881 when every "
                    "bootstrap node is on loopback)")
    nd.add_argument("--state-file", metavar="PATH",
                    help="where the node id and contacts are kept (default: user state dir)")
    nd.add_argument("--read-only", action="store_true",
                    help="BEP 43 read-only: query the DHT but answer no queries")
    nd.add_argument("--allow-local", action="store_true",
                    help="accept private and loopback contacts")
    nd.add_argument("--stats-interval", type=_positive(float), default=5.0, metavar="S",
                    help="seconds between stats lines (default 5)")
    nd.add_argument("--metrics", type=_metrics_addr, metavar="[HOST:]PORT",
                    help="serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults "
                    "to 127.0.0.1: give 0.0.0.0 to let other machines scrape)")

    tn = sub.add_parser("testnet", parents=[verbose, cfg], help="run a local test network",
                        description="Run N DHT nodes on consecutive loopback addresses with a "
                        "few info-hashes announced, until interrupted.")
    tn.add_argument("--nodes", type=_positive(int), required=True, metavar="N")
    tn.add_argument("--bind-base", default="127.0.1.1", metavar="IP",
                    help="address of the first node; the others follow (default 127.0.1.1)")
    tn.add_argument("--port", type=_port, default=DEFAULT_PORT, metavar="P",
                    help="UDP port of every node (default 6881; 0: ephemeral ports)")
    tn.add_argument("--seed", type=int, default=None, help="seed for ids and info-hashes")
    tn.add_argument("--announced", type=int, default=3, metavar="K",
                    help="random info-hashes announced in the network (default 3)")
    tn.add_argument("--json", action="store_true",
                    help="print one JSON line (bootstrap addresses, announced peers) when ready")

    sn = sub.add_parser("simnet", parents=[verbose], help="run a simulated Mainline DHT",
                        description="Serve a simulated, internet-scale Mainline DHT over real "
                        "UDP on loopback (127.64.0.0/10 by default) that any client can join; "
                        "print one JSON line (routers, control API) when ready and run until "
                        "SIGINT/SIGTERM.")
    from dhtviewer.simnet.options import add_arguments as simnet_arguments

    simnet_arguments(sn)

    st = sub.add_parser("selftest", parents=[verbose], help="check that the application works",
                        description="Open the main window, start a local test network, "
                        "bootstrap, look up and announce; print a one-line verdict. Exit 0 only "
                        "if everything worked. Offline and offscreen when there is no display.")
    st.add_argument("--offscreen", action="store_true",
                    help="do not show the window even when a display is available")
    st.add_argument("--timeout", type=_positive(float), default=60.0, metavar="S",
                    help="give up after S seconds (default 60)")
    st.add_argument("--json", action="store_true", help="one JSON object instead of the line")
    st.add_argument("--screenshot", metavar="PNG",
                    help="save a picture of the window as it looks at the end")

    se = sub.add_parser("settings", parents=[verbose], help="list the DHT settings",
                        description="Print every DHT setting that --set and --config accept, "
                        "with its default, range and unit.")
    se.add_argument("--toml", action="store_true",
                    help="print a commented TOML file with every default instead")
    return p


# --- entry points ----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    if args.command is None:
        return _gui(args)
    if args.command == "settings":
        print(toml_template() if args.toml else _settings_table())
        return EXIT_OK
    if hasattr(args, "set_values"):
        # Checked before anything starts: a bad setting is exit 2, not a node half started.
        try:
            args.setting_changes = setting_changes(args.config, args.set_values)
        except ConfigError as err:
            _error(str(err))
            return EXIT_USAGE
    if args.command == "selftest":
        # Runs the Qt event loop itself (qasync), not asyncio.run.
        from dhtviewer.selftest import run as selftest

        return selftest(args.timeout, args.offscreen, args.json, args.verbose > 0,
                        args.screenshot)
    if args.command == "simnet":
        from dhtviewer.simnet.command import run as simnet

        return simnet(args)
    from dhtviewer.cli_items import RUNNERS

    runner = {
        **RUNNERS,
        "lookup": _lookup,
        "announce": _announce,
        "ping": _ping,
        "node": _node,
        "testnet": _testnet,
    }[args.command]
    try:
        return asyncio.run(runner(args))
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    except Failure as err:
        _error(str(err))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def gui_main() -> int:
    """Entry point of the ``dhtviewer-gui`` script (no console on Windows)."""
    return main(sys.argv[1:])


def _gui(args: argparse.Namespace) -> int:
    try:
        from dhtviewer.ui.app import main as app_main
    except ImportError as err:
        _error(f"the desktop application cannot start: {err}")
        return EXIT_FAILED
    return app_main(args)


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _error(message: str) -> None:
    print(f"dhtviewer: error: {message}", file=sys.stderr)


def _print_json(doc: object) -> None:
    print(json.dumps(doc), flush=True)


# --- shared setup ----------------------------------------------------------------------------
def node_settings(args: argparse.Namespace, **command_defaults: Any) -> DhtSettings:
    """The command's own defaults (``read_only=True`` for one-shot commands...), then what
    ``--config`` and ``--set`` asked for (already checked in ``main``)."""
    settings = DhtSettings(**command_defaults)
    changes = getattr(args, "setting_changes", {})
    return replace(settings, **changes) if changes else settings


def _settings_table() -> str:
    rows = [("KEY", "DEFAULT", "RANGE", "MEANING")]
    for spec in editable_specs():
        default = spec.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, enum.Enum):  # a choice (address families)
            shown = str(default.value)
        else:
            shown = f"{default:g}"
        unit = f" {spec.info.unit}" if spec.info.unit and spec.range_text() else ""
        rows.append((spec.name, shown, spec.range_text() + unit, spec.info.label))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        for r in rows
    ).rstrip()


async def _start_session(
    args: argparse.Namespace, default_port: int, state_path: Path | str | None = None
) -> DhtSession:
    """Resolve the bootstrap list, pick the bind address and start a session (not waiting for
    it to be ready). Raises UsageError for a bad or busy address."""
    given = args.bootstrap
    spec: list[str | tuple[str, int]] = list(given) if given else list(DEFAULT_BOOTSTRAP)
    addrs, errors = await resolve_addrs(spec, socket.AF_UNSPEC)
    if not addrs and state_path is None:
        msg = "cannot resolve any bootstrap address: " + "; ".join(errors)
        raise UsageError(msg) if given else Failure(msg)
    if args.bind is not None:
        bind = args.bind
    else:
        # The session binds the other family to the matching address (::1 for 127.0.0.1).
        local = bool(addrs) and all(is_loopback(a[0]) for a in addrs)
        bind = ("127.0.0.1" if local else "0.0.0.0", default_port)
    defaults: dict[str, bool] = {}
    if getattr(args, "allow_local", False):
        defaults["allow_local"] = True
    if getattr(args, "read_only", True):
        # One-shot commands are BEP 43 read-only nodes: gone a second later, they must not
        # leave a dead entry in other nodes' routing tables (which would slow their lookups).
        defaults["read_only"] = True
    settings = node_settings(args, **defaults)
    session = DhtSession(settings, bind=bind, state_path=state_path)
    try:
        # The names, not their addresses: each family resolves them for itself.
        await session.start(spec, wait=False)
    except (BindError, BootstrapError) as err:
        raise UsageError(str(err)) from None
    return session


# --- lookup / announce ---------------------------------------------------------------------------
async def _lookup(args: argparse.Namespace) -> int:
    session = await _start_session(args, 0)
    try:
        t0 = time.perf_counter()
        if not await _wait_ready(session, args.timeout):
            return EXIT_FAILED
        bootstrap_s = time.perf_counter() - t0
        scrape = None
        if getattr(args, "scrape", False):
            scrape = await session.scrape(args.info_hash, timeout=args.timeout)
            result = scrape.lookup
        else:
            result = await session.find_peers(args.info_hash, timeout=args.timeout)
    finally:
        await session.stop()
    if result.cancelled:
        print(f"dhtviewer: lookup timed out after {args.timeout:g} s; partial result",
              file=sys.stderr)
    if args.json:
        _print_json({
            "info_hash": result.info_hash.hex(),
            "peers": [format_addr(p) for p in result.peers],
            "queried": result.queried,
            "responded": result.responded,
            "bootstrap_s": round(bootstrap_s, 4),
            "elapsed_s": round(result.elapsed, 4),
            "closest": [{"id": i.hex(), "addr": format_addr(a)} for i, a in result.closest],
            "families": {
                str(f.family): {
                    "peers": len(f.peers),
                    "queried": f.queried,
                    "responded": f.responded,
                    "elapsed_s": round(f.elapsed, 4),
                    "cancelled": f.cancelled,
                }
                for f in result.by_family
            },
            **({} if scrape is None else {"scrape": {
                "seeds": round(scrape.seeds, 1),
                "downloaders": round(scrape.downloaders, 1),
                "nodes": scrape.nodes,
                "legacy_nodes": scrape.legacy,
                "saturated": scrape.saturated,
                "cancelled": scrape.cancelled,
            }}),
        })
        return EXIT_OK
    print(f"info_hash  {result.info_hash.hex()}")
    print(f"bootstrap  {bootstrap_s:.2f} s")
    print(f"lookup     {result.elapsed:.2f} s, {result.queried} nodes queried, "
          f"{result.responded} responded")
    print(f"peers      {len(result.peers)}")
    if len(result.by_family) > 1:
        for f in result.by_family:
            print(f"  {family_name(f.family)}     {len(f.peers)} peers, {f.queried} queried, "
                  f"{f.responded} responded, {f.elapsed:.2f} s")
    if scrape is not None:
        if scrape.cancelled or scrape.nodes == 0:
            print("swarm      no scrape answer (BEP 33)")
        else:
            more = "at least " if scrape.saturated else "~"
            print(f"swarm      {more}{scrape.seeds:.0f} seeds, {more}{scrape.downloaders:.0f} "
                  f"downloaders (BEP 33, {scrape.nodes} nodes)")
    for peer in result.peers:
        print(f"  {format_addr(peer)}")
    print("closest nodes")
    for node_id, addr in result.closest:
        print(f"  {node_id.hex()}  {format_addr(addr)}")
    return EXIT_OK


async def _announce(args: argparse.Namespace) -> int:
    if args.port is None and not args.implied_port:
        raise UsageError("announce needs --port P (or --implied-port)")
    port = args.port or 0
    if not args.implied_port and port == 0:
        raise UsageError("--port must be 1-65535 (or use --implied-port)")
    session = await _start_session(args, 0)
    try:
        if not await _wait_ready(session, args.timeout):
            return EXIT_FAILED
        result = await session.announce(
            args.info_hash, port, implied_port=args.implied_port, timeout=args.timeout
        )
    finally:
        await session.stop()
    stored = [format_addr(a) for a in result.stored_at]
    by_family = result.stored_by_family()
    if args.json:
        _print_json({"info_hash": result.info_hash.hex(), "stored_at": stored,
                     "stored_by_family": {str(f): n for f, n in by_family.items()}})
    else:
        what = "our UDP port" if args.implied_port else f"port {port}"
        per = ", ".join(f"{family_name(f)} {n}" for f, n in by_family.items())
        print(f"announced {result.info_hash.hex()} ({what}) to {len(stored)} nodes"
              + (f" ({per})" if len(by_family) > 1 else ""))
        for a in stored:
            print(f"  {a}")
    if not stored:
        _error("no node stored the announce")
        return EXIT_FAILED
    return EXIT_OK


async def _wait_ready(session: DhtSession, timeout: float) -> bool:
    try:
        await session.wait_ready(timeout)
    except TimeoutError as err:
        _error(str(err))
        return False
    return True


# --- ping ----------------------------------------------------------------------------------------
def format_version(version: bytes | None) -> str | None:
    """KRPC ``v`` as text: the two client letters then the version bytes in hex
    (b"LT\\x02\\x11" -> "LT0211"); all hex when the letters are not printable."""
    if version is None:
        return None
    head = version[:2]
    if len(head) == 2 and all(0x20 < b < 0x7F for b in head):
        return head.decode("ascii") + version[2:].hex()
    return version.hex()


async def _ping(args: argparse.Namespace) -> int:
    family = socket.AF_UNSPEC
    if args.bind is not None:
        family = socket_family(args.bind[0])
    targets, errors = await resolve_addrs([args.target], family)
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
    # One socket, of the target's family: a ping needs no other.
    only = AddressFamilies.IPV6 if ip_family(target[0]) == 6 else AddressFamilies.IPV4
    settings = replace(node_settings(args, read_only=True), address_families=only)
    session = DhtSession(settings, bind=bind)
    try:
        await session.start([], wait=False)
    except BindError as err:
        raise UsageError(str(err)) from None
    try:
        result = await session.ping(target, timeout=args.timeout)
    except TimeoutError:
        _error(f"no answer from {format_addr(target)} within {args.timeout:g} s")
        return EXIT_FAILED
    finally:
        await session.stop()
    doc = {
        "id": result.id.hex(),
        "rtt_ms": round(result.rtt * 1000, 3),
        "version": format_version(result.version),
    }
    if args.json:
        _print_json(doc)
    else:
        print(f"{format_addr(target)}  id {doc['id']}  rtt {doc['rtt_ms']} ms  "
              f"version {doc['version'] or '-'}")
    return EXIT_OK


# --- long-running commands ----------------------------------------------------------------------
async def _until_signalled() -> None:
    """Return on SIGINT or SIGTERM (KeyboardInterrupt where signal handlers are unsupported)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass  # Windows: Ctrl-C raises KeyboardInterrupt instead
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _node(args: argparse.Namespace) -> int:
    state_path = Path(args.state_file) if args.state_file else default_state_path()
    session = await _start_session(args, DEFAULT_PORT, state_path)
    # A bad state file was already reported through logging (moved aside, fresh start).

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, StateChanged):
            print(f"state: {event.new} ({event.detail})", flush=True)

    session.subscribe(on_event, traffic=False)
    local = " and ".join(format_addr(a) for a in session.local_addresses.values()) or "?"
    print(f"node {session.node_id.hex()} on {local}; state file {state_path}", flush=True)
    metrics = None
    if args.metrics is not None:
        from dhtviewer.net.metrics import MetricsServer

        metrics = MetricsServer(session, *args.metrics)
        try:
            where = metrics.start()
        except OSError as err:
            await session.stop()
            raise UsageError(f"cannot serve metrics on {format_addr(args.metrics)}: "
                             f"{err.strerror or err}") from None
        print(f"metrics on http://{format_addr(where)}/metrics", flush=True)
    try:
        waiter = asyncio.ensure_future(_until_signalled())
        while not waiter.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), args.stats_interval)
            if not waiter.done():
                print(_stats_line(session), flush=True)
    finally:
        if metrics is not None:
            metrics.close()
        await session.stop()
        print(f"state saved to {state_path}", flush=True)
    return EXIT_OK


def _stats_line(session: DhtSession) -> str:
    s = session.stats()
    ext = " ".join(session.external_ips.values()) or "?"
    families = session.families
    per = ""
    if len(families) > 1:
        per = " [" + " ".join(
            f"v{f} {int(s.get(f'routing_nodes_v{f}', 0))}/{int(s.get(f'good_nodes_v{f}', 0))}"
            for f in families
        ) + "]"
    return (
        f"[{s.get('uptime', 0):7.0f}s] {session.state:<13} "
        f"nodes {int(s.get('routing_nodes', 0))} (good {int(s.get('good_nodes', 0))}){per}  "
        f"in {int(s.get('packets_in', 0))}  out {int(s.get('packets_out', 0))}  "
        f"lookups {int(s.get('lookups', 0))}  stored {int(s.get('stored_peers', 0))} peers  "
        f"external {ext}"
    )


async def _testnet(args: argparse.Namespace) -> int:
    try:
        net = LocalTestnet(args.nodes, args.bind_base, args.port, seed=args.seed,
                           announced=args.announced, settings=node_settings(args))
    except ValueError as err:
        raise UsageError(str(err)) from None
    t0 = time.perf_counter()
    try:
        await net.start()
    except BindError as err:
        raise UsageError(str(err)) from None
    started = time.perf_counter() - t0
    try:
        boot = [format_addr(a) for a in net.bootstrap_addrs]
        announced = {
            ih.hex(): [format_addr(p) for p in peers] for ih, peers in net.announced.items()
        }
        if args.json:
            _print_json({"nodes": args.nodes, "bootstrap": boot, "announced": announced,
                         "started_s": round(started, 3)})
        else:
            print(f"testnet: {args.nodes} nodes from {format_addr(net.addrs[0])}, "
                  f"started in {started:.2f} s")
            print(f"bootstrap: {' '.join(boot)}")
            for ih, peers in announced.items():
                print(f"announced {ih}: {' '.join(peers)}")
            if announced:
                first = next(iter(announced))
                print(f"try: dhtviewer lookup {first} --bootstrap {boot[0]}")
            print("Ctrl-C to stop", flush=True)
        await _until_signalled()
    finally:
        await net.stop()
    return EXIT_OK
