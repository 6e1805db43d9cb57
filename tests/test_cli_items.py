"""``dhtviewer get``, ``put``, ``sample`` and ``lookup --scrape``, as subprocesses against a
30-node LocalTestnet on 127.0.21.x: JSON fields, human output, exit codes, key files."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.items import Item
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet
from tests.test_cli import bootstrap_args, dhtviewer, one_line_error


@pytest.fixture(scope="module")
def testnet() -> Iterator[LocalTestnet]:
    with BackgroundTestnet(LocalTestnet(30, "127.0.21.1", port=0, seed=21)) as net:
        yield net


def run_json(*args: str) -> dict[str, object]:
    result = dhtviewer(*args, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def test_put_then_get_immutable(testnet: LocalTestnet) -> None:
    boot = bootstrap_args(testnet)
    put = run_json("put", "--immutable", "Hello World!", *boot)
    assert put["target"] == "e5f96f6f38320f0f33959cb4d3d656452117aadb"  # BEP 44 test vector 3
    assert put["stored_at"] == 8 and put["public_key"] is None and put["seq"] is None
    assert put["value"] == "Hello World!" and put["value_encoding"] == "utf-8"
    got = run_json("get", str(put["target"]), *boot)
    assert got["found"] and got["value"] == "Hello World!" and got["public_key"] is None
    human = dhtviewer("get", str(put["target"]), *boot)
    assert human.returncode == 0 and "Hello World!" in human.stdout


def test_mutable_put_creates_the_key_and_get_needs_the_salt(
    testnet: LocalTestnet, tmp_path: Path
) -> None:
    boot = bootstrap_args(testnet)
    key = tmp_path / "keys" / "me.key"
    first = dhtviewer("put", "--mutable", "--key", str(key), "--salt", "blog", "v1", *boot,
                      "--json")
    assert first.returncode == 0, first.stderr
    assert "created key" in first.stderr
    assert key.stat().st_size == 32
    if os.name == "posix":
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    doc = json.loads(first.stdout)
    assert doc["seq"] == 1 and doc["stored_at"] == 8 and len(str(doc["public_key"])) == 64
    second = run_json("put", "--mutable", "--key", str(key), "--salt", "blog", "v2", *boot)
    assert second["seq"] == 2 and second["target"] == doc["target"]
    got = run_json("get", str(doc["target"]), "--salt", "blog", *boot)
    assert got["value"] == "v2" and got["seq"] == 2 and got["public_key"] == doc["public_key"]
    wrong = dhtviewer("get", str(doc["target"]), "--salt", "nope", *boot, "--json")
    assert wrong.returncode == 1
    bad = json.loads(wrong.stdout)
    assert not bad["found"] and bad["rejected"] >= 1
    assert bad["reasons"] == ["SHA-1 of key and salt does not match the target"]
    stale = dhtviewer("put", "--mutable", "--key", str(key), "--salt", "blog", "--seq", "1",
                      "old", *boot, "--json")
    assert stale.returncode == 1
    refused = json.loads(stale.stdout)["failed"]
    assert refused and all(f["reason"].startswith("error 302") for f in refused)


def test_binary_values_are_shown_as_hex(testnet: LocalTestnet) -> None:
    boot = bootstrap_args(testnet)
    value = b"\xff\xfe raw"
    put = dhtviewer("put", "--immutable", os.fsdecode(value), *boot, "--json")
    assert put.returncode == 0, put.stderr
    target = Item.immutable(value).target.hex()
    assert json.loads(put.stdout)["target"] == target
    got = run_json("get", target, *boot)
    assert got["value"] == value.hex() and got["value_encoding"] == "hex"


def test_hex_and_json_values(testnet: LocalTestnet) -> None:
    boot = bootstrap_args(testnet)
    put = run_json("put", "--immutable", "--format", "hex", "ff00ff", *boot)
    assert put["value"] == "ff00ff" and put["value_encoding"] == "hex"
    assert put["target"] == Item.immutable(b"\xff\x00\xff").target.hex()
    put = run_json("put", "--immutable", "--format", "json", '{"n": 7, "tags": ["a"]}', *boot)
    assert put["value"] == {"n": 7, "tags": ["a"]} and put["value_encoding"] == "json"
    got = run_json("get", str(put["target"]), *boot)
    assert got["value"] == {"n": 7, "tags": ["a"]}


def test_lookup_scrape(testnet: LocalTestnet) -> None:
    info_hash, peers = next(iter(testnet.announced.items()))
    doc = run_json("lookup", info_hash.hex(), "--scrape", *bootstrap_args(testnet))
    scrape = doc["scrape"]
    assert isinstance(scrape, dict) and scrape["nodes"] >= 1 and not scrape["cancelled"]
    ips = {ip for ip, _ in peers}
    assert round(float(scrape["seeds"]) + float(scrape["downloaders"])) == len(ips)
    human = dhtviewer("lookup", info_hash.hex(), "--scrape", *bootstrap_args(testnet))
    assert "downloaders (BEP 33" in human.stdout


def test_sample_one_node_and_crawl(testnet: LocalTestnet, tmp_path: Path) -> None:
    node = format_addr(testnet.addrs[0])
    one = run_json("sample", node)
    assert one["bep51"] and isinstance(one["num"], int) and one["interval"] is not None
    db, csv_path = tmp_path / "s.sqlite3", tmp_path / "s.csv"
    crawl = run_json("sample", "--crawl", "--minutes", "0.05", "--rate", "100", "--db",
                     str(db), "--csv", str(csv_path), *bootstrap_args(testnet))
    assert crawl["bep51_nodes"] == len(testnet.addrs)
    assert crawl["distinct_info_hashes"] >= len(testnet.announced)
    assert crawl["csv_rows"] == crawl["distinct_info_hashes"]
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "info_hash,first_seen,last_seen,times,nodes"
    assert {h.hex() for h in testnet.announced} <= {row.split(",")[0] for row in lines[1:]}
    estimate = crawl["estimate"]
    assert isinstance(estimate, dict) and estimate["info_hashes"] >= len(testnet.announced)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["get", "abc"], "40 hex digits"),
        (["put", "v"], "one of the arguments --immutable --mutable is required"),
        (["put", "--mutable", "v"], "needs --key"),
        (["put", "--immutable", "--salt", "s", "v"], "for --mutable items"),
        (["put", "--immutable", "x" * 1000], "more than 1000"),
        (["put", "--mutable", "--key", "/k", "--seq", "-1", "v"], "seq must be"),
        (["sample"], "either HOST:PORT"),
        (["put", "--immutable", "--format", "json", "[1.5]"], "VALUE (json): the value[0] is a"),
        (["put", "--immutable", "--format", "hex", "abc"], "even number of digits"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], says: str) -> None:
    assert says in one_line_error(dhtviewer(*args, "--bootstrap", "127.0.0.1:1"))


def test_unsafe_key_file_exits_2(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    key = tmp_path / "k"
    key.write_bytes(bytes(32))
    key.chmod(0o644)
    line = one_line_error(dhtviewer("put", "--mutable", "--key", str(key), "v",
                                    "--bootstrap", "127.0.0.1:1"))
    assert "chmod 600" in line
