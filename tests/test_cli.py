"""The command line as scripts use it: each subcommand runs in a real subprocess against a
50-node LocalTestnet on 127.0.20.x (served from a thread of this process), and its JSON output,
exit codes and one-line errors are checked. Argument handling is also checked in-process."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dhtviewer import __version__, cli
from dhtviewer.dht.addresses import format_addr
from dhtviewer.net.binds import ipv6_loopback_available
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet

ROOT = Path(__file__).resolve().parents[1]
POSIX = os.name == "posix"


def dhtviewer(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dhtviewer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_lookup_of_a_v2_magnet_says_which_hash_it_looks_up(testnet: LocalTestnet) -> None:
    v2 = bytes(range(1, 33))
    result = dhtviewer("lookup", f"magnet:?xt=urn:btmh:1220{v2.hex()}", "--json",
                       *bootstrap_args(testnet))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["info_hash"] == v2[:20].hex()
    assert "BitTorrent v2 magnet" in result.stderr and v2[:20].hex() in result.stderr


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dhtviewer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def read_line(proc: subprocess.Popen[str], timeout: float, contains: str = "") -> str:
    """The first stdout line containing ``contains``, or fail after ``timeout`` seconds."""
    assert proc.stdout is not None
    lines: list[str] = []
    found = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if contains in line:
                found.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    if not found.wait(timeout):
        proc.kill()
        pytest.fail(f"no line with {contains!r} within {timeout} s; got {lines!r}")
    return lines[-1]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def testnet() -> Iterator[LocalTestnet]:
    with BackgroundTestnet(LocalTestnet(50, "127.0.20.1", port=0, seed=20)) as net:
        yield net


def bootstrap_args(net: LocalTestnet) -> list[str]:
    out: list[str] = []
    for addr in net.bootstrap_addrs:
        out += ["--bootstrap", format_addr(addr)]
    return out


# --- subprocess, against the testnet ---------------------------------------------------------
def test_lookup_json_finds_the_announced_peers(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))
    result = dhtviewer("lookup", info_hash.hex(), *bootstrap_args(testnet), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {
        "info_hash", "peers", "queried", "responded", "bootstrap_s", "elapsed_s", "closest",
        "families",
    }
    # An IPv4 testnet: the IPv6 lookup (on ::1, with nobody to ask) finds nothing.
    assert set(doc["families"]) <= {"4", "6"} and doc["families"]["4"]["peers"] >= len(peers)
    assert doc["families"]["4"]["responded"] == doc["responded"]
    assert doc["info_hash"] == info_hash.hex()
    assert {format_addr(p) for p in peers} <= set(doc["peers"])
    assert doc["queried"] >= doc["responded"] >= 1
    assert 0 <= doc["bootstrap_s"] < 30 and 0 <= doc["elapsed_s"] < 30
    assert doc["closest"] and set(doc["closest"][0]) == {"id", "addr"}
    assert all(len(c["id"]) == 40 for c in doc["closest"])


def test_lookup_accepts_a_magnet_and_prints_a_human_summary(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))
    magnet = f"magnet:?xt=urn:btih:{info_hash.hex().upper()}&dn=test"
    result = dhtviewer("lookup", magnet, *bootstrap_args(testnet))
    assert result.returncode == 0, result.stderr
    assert f"info_hash  {info_hash.hex()}" in result.stdout
    assert format_addr(peers[0]) in result.stdout


def test_announce_json_reports_stored_at_and_the_peer_is_then_found(
    testnet: LocalTestnet,
) -> None:
    info_hash = "ab" * 20
    result = dhtviewer("announce", info_hash, "--port", "45001", *bootstrap_args(testnet), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"info_hash", "stored_at", "stored_by_family"}
    assert doc["info_hash"] == info_hash
    assert doc["stored_at"]
    assert doc["stored_by_family"]["4"] == len(doc["stored_at"])  # an IPv4 testnet
    assert set(doc["stored_at"]) <= {format_addr(a) for a in testnet.addrs}
    found = json.loads(dhtviewer("lookup", info_hash, *bootstrap_args(testnet), "--json").stdout)
    # No bind given and a loopback testnet: the client bound 127.0.0.1.
    assert "127.0.0.1:45001" in found["peers"]


def test_ping_json(testnet: LocalTestnet) -> None:
    target = testnet.addrs[7]
    result = dhtviewer("ping", format_addr(target), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["id"] == testnet.nodes[7].node_id.hex()
    assert isinstance(doc["rtt_ms"], float) and 0 <= doc["rtt_ms"] < 5000
    assert doc["version"] == "DV0001"


def test_ping_without_answer_exits_1() -> None:
    result = dhtviewer("ping", "127.0.20.250:9", "--timeout", "0.5")
    assert result.returncode == 1
    assert "no answer from 127.0.20.250:9 within 0.5 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_infohash_exits_2_with_one_line() -> None:
    line = one_line_error(dhtviewer("lookup", "ab" * 19 + "a", "--bootstrap", "127.0.20.1:1"))
    assert "expected 40 hex characters, got 39" in line


def test_busy_port_exits_2_naming_the_port(testnet: LocalTestnet) -> None:
    host, port = testnet.addrs[0]
    info_hash = next(iter(testnet.announced)).hex()
    result = dhtviewer(
        "lookup", info_hash, *bootstrap_args(testnet), "--bind", format_addr((host, port))
    )
    line = one_line_error(result)
    assert f"UDP port {port} on {host} is already in use" in line


@pytest.mark.skipif(not POSIX, reason="sends SIGINT")
def test_testnet_command_prints_its_bootstrap_and_stops_on_sigint() -> None:
    proc = popen("testnet", "--nodes", "8", "--bind-base", "127.0.21.1", "--port", "0", "--json")
    try:
        doc = json.loads(read_line(proc, 60, "bootstrap"))
        assert doc["nodes"] == 8 and len(doc["announced"]) == 3
        assert doc["bootstrap"][0].startswith("127.0.21.1:")
        ping = dhtviewer("ping", doc["bootstrap"][0], "--json")
        assert ping.returncode == 0, ping.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.skipif(not POSIX, reason="sends SIGTERM")
def test_node_command_runs_until_sigterm_and_saves_its_state(
    testnet: LocalTestnet, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    proc = popen(
        "node", "--bind", "127.0.20.240:0", *bootstrap_args(testnet),
        "--state-file", str(state), "--stats-interval", "0.2",
    )
    try:
        line = read_line(proc, 60, "] ready")
        assert "nodes" in line and "good" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    saved = json.loads(state.read_text())["families"]["4"]
    assert len(saved["node_id"]) == 40 and len(saved["nodes"]) >= 8


# --- in-process: argument handling --------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"dhtviewer {__version__}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lookup", "xyz"], "argument INFOHASH_OR_MAGNET: expected 40 hex or 32 base32"),
        (["lookup", "magnet:?dn=x"], "magnet link has no xt parameter"),
        (["lookup", "ab" * 20, "--bootstrap", "host:notaport"], "invalid port 'notaport'"),
        (["lookup", "ab" * 20, "--bind", "1.2.3.4"], "missing port in '1.2.3.4'"),
        (["lookup", "ab" * 20, "--timeout", "-1"], "must be positive"),
        (["announce", "ab" * 20, "--port", "70000"], "invalid port '70000'"),
        (["ping", "[::1"], "missing ']'"),
        (["testnet"], "the following arguments are required: --nodes"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_announce_needs_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["announce", "ab" * 20, "--bootstrap", "127.0.20.1:1"]) == 2
    assert "announce needs --port P (or --implied-port)" in capsys.readouterr().err


def test_testnet_outside_loopback_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["testnet", "--nodes", "2", "--bind-base", "10.0.0.1"]) == 2
    assert "must be in 127.0.0.0/8" in capsys.readouterr().err


def test_no_subcommand_starts_the_gui_with_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import dhtviewer.ui.app

    got: list[argparse.Namespace] = []

    def fake_gui(args: argparse.Namespace) -> int:
        got.append(args)
        return 0

    monkeypatch.setattr(dhtviewer.ui.app, "main", fake_gui)
    assert cli.main(["--testnet", "64", "--bootstrap", "127.0.0.1:6881"]) == 0
    assert got[0].command is None and got[0].testnet == 64
    assert got[0].bootstrap == [("127.0.0.1", 6881)]


@pytest.mark.parametrize(
    ("version", "text"),
    [
        (b"LT\x02\x11", "LT0211"),
        (b"DV\x00\x01", "DV0001"),
        (b"UT", "UT"),
        (b"\x00\x01\x02\x03", "00010203"),
        (None, None),
    ],
)
def test_client_version_text(version: bytes | None, text: str | None) -> None:
    assert cli.format_version(version) == text


def test_timings_are_reasonable(testnet: LocalTestnet) -> None:
    """A lookup against a local 50-node network, bootstrap included, is quick."""
    info_hash = next(iter(testnet.announced)).hex()
    t0 = time.perf_counter()
    doc: dict[str, Any] = json.loads(
        dhtviewer("lookup", info_hash, *bootstrap_args(testnet), "--json").stdout
    )
    wall = time.perf_counter() - t0
    assert doc["bootstrap_s"] + doc["elapsed_s"] < 5
    assert wall < 30  # interpreter start included, on a loaded machine


# --- DHT settings: --config / --set on every command that runs a node ---------------------------
class _SessionSpy:
    """Stands in for DhtSession: records the settings, then refuses to bind (exit 2)."""

    seen: ClassVar[list[Any]] = []

    def __init__(self, settings: Any, **_kw: Any) -> None:
        _SessionSpy.seen.append(settings)

    async def start(self, *_a: Any, **_kw: Any) -> None:
        from dhtviewer.net.session import BindError

        raise BindError("spy: not binding", "127.0.0.1", 1)

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize(("argv", "read_only"), [
    (["node", "--bootstrap", "127.0.0.1:1"], False),
    (["lookup", "ab" * 20, "--bootstrap", "127.0.0.1:1"], True),
    (["announce", "ab" * 20, "--port", "1", "--bootstrap", "127.0.0.1:1"], True),
    (["get", "ab" * 20, "--bootstrap", "127.0.0.1:1"], True),
    (["put", "--immutable", "v", "--bootstrap", "127.0.0.1:1"], True),
    (["sample", "127.0.0.1:1"], True),
    (["sample", "--crawl", "--bootstrap", "127.0.0.1:1"], True),
    (["ping", "127.0.0.1:1"], True),
])
def test_every_node_command_applies_config_then_set(
    argv: list[str], read_only: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dhtviewer.cli_items

    monkeypatch.setattr(cli, "DhtSession", _SessionSpy)
    monkeypatch.setattr(dhtviewer.cli_items, "DhtSession", _SessionSpy)
    _SessionSpy.seen = []
    config = tmp_path / "node.toml"
    config.write_text("k = 12\nalpha = 2\n")
    extra = ["--db", str(tmp_path / "s.db")] if "--crawl" in argv else []
    if argv[0] == "node":
        extra = ["--state-file", str(tmp_path / "st.json")]
    code = cli.main([*argv, *extra, "--config", str(config), "--set", "alpha=3",
                     "--set", "rate_limit=off"])
    assert code == 2
    (settings,) = _SessionSpy.seen
    assert settings.read_only is read_only
    assert (settings.k, settings.alpha, settings.rate_limit) == (12, 3, False)


def test_set_overrides_a_command_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "DhtSession", _SessionSpy)
    _SessionSpy.seen = []
    assert cli.main(["lookup", "ab" * 20, "--bootstrap", "127.0.0.1:1",
                     "--set", "read_only=false", "--allow-local"]) == 2
    assert _SessionSpy.seen[0].read_only is False and _SessionSpy.seen[0].allow_local is True


def test_testnet_takes_the_settings_too(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[Any] = []

    class Spy:
        def __init__(self, *_a: Any, settings: Any, **_kw: Any) -> None:
            got.append(settings)
            raise ValueError("spy: no testnet")

    monkeypatch.setattr(cli, "LocalTestnet", Spy)
    assert cli.main(["testnet", "--nodes", "2", "--set", "k=4"]) == 2
    assert got[0].k == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["node", "--set", "k=0"], "dhtviewer: error: --set k=0: k must be 1..64 nodes (got 0)"),
    (["lookup", "ab" * 20, "--set", "alpha=-3"], "alpha must be 1..64 queries (got -3)"),
    (["ping", "127.0.0.1:1", "--set", "nope=1"], "unknown setting 'nope'"),
    (["testnet", "--nodes", "2", "--set", "per_ip_burst=0"], "per_ip_burst must be 1..1000000"),
    (["get", "ab" * 20, "--set", "rate_limit=2"], "rate_limit must be true or false"),
    (["node", "--set", "hard_timeout=0.5"], "must not exceed hard_timeout"),
    (["node", "--config", "no-such-file.toml"], "cannot read config no-such-file.toml"),
])
def test_bad_settings_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_settings_command_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from dhtviewer.dht.settings import editable_specs

    assert cli.main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KEY", "DEFAULT", "RANGE", "MEANING"]
    assert [line.split()[0] for line in lines[1:]] == [s.name for s in editable_specs()]
    k = next(line for line in lines if line.startswith("k "))
    assert k.split()[:4] == ["k", "8", "1..64", "nodes"] and "Bucket size (K)" in k
    assert cli.main(["settings", "--toml"]) == 0
    assert "# k = 8" in capsys.readouterr().out


def test_lookup_with_settings_from_a_file_and_set(testnet: LocalTestnet, tmp_path: Path) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))
    config = tmp_path / "lookup.toml"
    config.write_text("alpha = 2\nk = 8\n")
    result = dhtviewer("lookup", info_hash.hex(), *bootstrap_args(testnet), "--json",
                       "--config", str(config), "--set", "hard_timeout=4")
    assert result.returncode == 0, result.stderr
    assert {format_addr(p) for p in peers} <= set(json.loads(result.stdout)["peers"])
    bad = dhtviewer("node", "--set", "k=0")
    assert one_line_error(bad) == "dhtviewer: error: --set k=0: k must be 1..64 nodes (got 0)"


# --- dual stack (BEP 32) -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dual_testnet() -> Iterator[LocalTestnet]:
    if not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback")
    with BackgroundTestnet(LocalTestnet(16, "127.0.22.1", port=0, seed=22, ipv6=True)) as net:
        yield net


def test_lookup_and_announce_report_each_family(dual_testnet: LocalTestnet) -> None:
    net = dual_testnet
    info_hash, peers = next(iter(net.announced.items()))
    boot = bootstrap_args(net)  # both families' addresses
    assert any("[::1]" in a for a in boot)
    text = dhtviewer("lookup", info_hash.hex(), *boot)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(ln.startswith("  IPv4 ") and " peers, " in ln for ln in lines)
    assert any(ln.startswith("  IPv6 ") and " peers, " in ln for ln in lines)
    assert all(format_addr(p) in text.stdout for p in peers)  # "[::1]:40000" and "127.0.22.x"
    doc = json.loads(dhtviewer("lookup", info_hash.hex(), *boot, "--json").stdout)
    assert doc["families"]["4"]["peers"] >= 1 and doc["families"]["6"]["peers"] >= 1
    # --set keeps to one DHT.
    only4 = json.loads(dhtviewer("lookup", info_hash.hex(), *boot, "--json",
                                 "--set", "address_families=ipv4").stdout)
    assert set(only4["families"]) == {"4"} and all("[" not in p for p in only4["peers"])
    announced = dhtviewer("announce", "cd" * 20, "--port", "45002", *boot)
    assert announced.returncode == 0, announced.stderr
    first = announced.stdout.splitlines()[0]
    assert "(IPv4 " in first and ", IPv6 " in first


# --- node --metrics ------------------------------------------------------------------------------
@pytest.mark.skipif(not POSIX, reason="sends SIGTERM")
def test_node_serves_prometheus_metrics_on_loopback(testnet: LocalTestnet,
                                                    tmp_path: Path) -> None:
    import re
    import urllib.request

    proc = popen("node", "--bind", "127.0.20.241:0", *bootstrap_args(testnet),
                 "--state-file", str(tmp_path / "state.json"), "--metrics", "0",
                 "--stats-interval", "0.2")
    try:
        line = read_line(proc, 60, "metrics on ")
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert m, line
        read_line(proc, 60, "] ready")
        with urllib.request.urlopen(m.group(0), timeout=10) as response:
            text = response.read().decode()
        assert re.search(r'^dhtviewer_routing_nodes\{family="4",state="good"\} [1-9]', text,
                         re.MULTILINE), text[:2000]
        assert "dhtviewer_query_rtt_seconds_bucket" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_metrics_address_errors_exit_2(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    import socket

    with pytest.raises(SystemExit) as info:
        cli.main(["node", "--metrics", "localhost:notaport"])
    assert info.value.code == 2 and "invalid port 'notaport'" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["node", "--bind", "127.0.20.242:0", "--bootstrap", "127.0.20.1:1",
                         "--state-file", str(tmp_path / "state.json"), "--metrics",
                         str(port)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"dhtviewer: error: cannot serve metrics on 127.0.0.1:{port}")
